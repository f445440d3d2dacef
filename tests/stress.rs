//! Multi-thread stress: 8 threads, random sizes across all bands, about a
//! third of the blocks freed by another thread, contents checksummed.

// SAFETY (all unsafe blocks in this file): each raw call passes a pointer
// this test got from the same allocator with the same layout, still live.
#![allow(clippy::undocumented_unsafe_blocks)]

use pool_alloc::PoolAlloc;
use std::alloc::{alloc, dealloc, Layout};
use std::sync::mpsc;

#[global_allocator]
static GLOBAL: PoolAlloc = PoolAlloc::new();

const THREADS: usize = 8;
const OPS: usize = 60_000;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn size(&mut self) -> usize {
        match self.next() % 1000 {
            0..=899 => 1 + (self.next() % 512) as usize,
            900..=989 => 513 + (self.next() % (256 << 10)) as usize,
            990..=997 => (256 << 10) + (self.next() % (768 << 10)) as usize,
            _ => (1 << 20) + (self.next() % (3 << 20)) as usize,
        }
    }
}

struct Block {
    p: usize,
    layout: Layout,
    seed: u8,
}
// SAFETY (test): a Block is a uniquely owned allocation.
unsafe impl Send for Block {}

fn positions(size: usize) -> impl Iterator<Item = usize> {
    let step = if size > 8192 { 509 } else { 1 };
    (0..size).step_by(step).chain(std::iter::once(size - 1))
}

fn make(rng: &mut Rng) -> Block {
    let size = rng.size();
    let align = 1usize << (rng.next() % 7); // 1..64
    let layout = Layout::from_size_align(size, align).unwrap();
    let p = unsafe { alloc(layout) };
    assert!(!p.is_null());
    assert_eq!(p as usize % align, 0);
    let seed = rng.next() as u8;
    for i in positions(size) {
        unsafe { *p.add(i) = seed.wrapping_add(i as u8) };
    }
    Block {
        p: p as usize,
        layout,
        seed,
    }
}

fn free(b: Block) {
    let p = b.p as *mut u8;
    for i in positions(b.layout.size()) {
        assert_eq!(
            unsafe { *p.add(i) },
            b.seed.wrapping_add(i as u8),
            "corrupted block"
        );
    }
    unsafe { dealloc(p, b.layout) };
}

#[test]
fn eight_threads_with_cross_thread_frees() {
    let mut senders = Vec::new();
    let mut receivers = Vec::new();
    for _ in 0..THREADS {
        let (tx, rx) = mpsc::channel::<Block>();
        senders.push(tx);
        receivers.push(rx);
    }
    let handles: Vec<_> = receivers
        .into_iter()
        .enumerate()
        .map(|(t, rx)| {
            let next = senders[(t + 1) % THREADS].clone();
            std::thread::spawn(move || {
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((t as u64 + 1) * 0x1234_5678));
                let mut mine: Vec<Block> = Vec::new();
                for _ in 0..OPS {
                    while let Ok(b) = rx.try_recv() {
                        free(b);
                    }
                    if mine.len() < 200 || rng.next().is_multiple_of(2) {
                        mine.push(make(&mut rng));
                    } else {
                        let i = (rng.next() as usize) % mine.len();
                        let b = mine.swap_remove(i);
                        if rng.next().is_multiple_of(3) {
                            let _ = next.send(b);
                        } else {
                            free(b);
                        }
                    }
                }
                for b in mine {
                    free(b);
                }
                drop(next);
                rx
            })
        })
        .collect();
    drop(senders);
    let rxs: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    for rx in rxs {
        while let Ok(b) = rx.try_recv() {
            free(b);
        }
    }
    let s = pool_alloc::snapshot();
    let live_blocks: u64 = s.live_blocks();
    assert!(
        live_blocks < 10_000,
        "blocks leaked by the stress run: {live_blocks}"
    );
}
