//! A tiny deterministic PRNG (wyrand) so every allocator sees the same
//! sequence of sizes and slots, and the generator costs a few instructions.

/// wyrand: one multiply per number, passes BigCrush, 64-bit state.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded deterministically.
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    /// The next 64 random bits.
    #[inline(always)]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0xa076_1d64_78bd_642f);
        let t = u128::from(self.0) * u128::from(self.0 ^ 0xe703_7ed1_a0b4_28db);
        ((t >> 64) as u64) ^ (t as u64)
    }

    /// Uniform in `0..n` (Lemire's multiply-shift, no division).
    #[inline(always)]
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    #[inline(always)]
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below((hi - lo + 1) as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn range_is_inclusive_and_deterministic() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        let (mut lo, mut hi) = (false, false);
        for _ in 0..100_000 {
            let x = a.range(8, 12);
            assert_eq!(x, b.range(8, 12));
            assert!((8..=12).contains(&x));
            lo |= x == 8;
            hi |= x == 12;
        }
        assert!(lo && hi, "both ends of the range must be reachable");
    }
}
