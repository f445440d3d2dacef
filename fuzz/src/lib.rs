//! Fuzz targets over the allocator, shared by `cargo fuzz` (libFuzzer, the
//! binaries in `fuzz_targets/`) and the plain `cargo test` replay in
//! `tests/replay.rs` (committed corpus plus seeded random inputs).
//!
//! The input bytes are read as a program: each operation takes a few bytes
//! (an opcode, then its arguments). Running out of bytes ends the program.

#![allow(clippy::undocumented_unsafe_blocks)] // see the SAFETY note per fn

use pool_alloc::PoolAlloc;
use std::alloc::{GlobalAlloc, Layout};

/// The allocator under test, called directly (the fuzzing process keeps the
/// system allocator as its global one, so the harness never disturbs it).
pub static A: PoolAlloc = PoolAlloc::new();

/// Reads little-endian integers from the input.
pub struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    /// Wrap the bytes.
    pub fn new(data: &'a [u8]) -> Self {
        Input(data)
    }
    /// One byte, or `None` at the end.
    pub fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    /// Two bytes.
    pub fn u16(&mut self) -> Option<u16> {
        Some(u16::from(self.u8()?) | (u16::from(self.u8()?) << 8))
    }
    /// Four bytes.
    pub fn u32(&mut self) -> Option<u32> {
        Some(u32::from(self.u16()?) | (u32::from(self.u16()?) << 16))
    }
}

/// A size drawn from all three bands (small, pooled, large).
fn size(inp: &mut Input) -> Option<usize> {
    let band = inp.u8()?;
    let r = inp.u32()? as usize;
    Some(match band % 8 {
        0..=3 => 1 + r % 3584,
        4 | 5 => 3585 + r % ((1 << 20) - 3584),
        6 => 1 + r % 64,
        _ => (1 << 20) + 1 + r % (3 << 20),
    })
}

/// An alignment: mostly small, sometimes up to 4 MiB.
fn align(inp: &mut Input) -> Option<usize> {
    let a = inp.u8()?;
    Some(match a % 16 {
        0..=9 => 1 << (a % 5),    // 1..16
        10..=13 => 1 << (a % 13), // up to 4 KiB
        _ => 1 << (a % 23),       // up to 4 MiB
    })
}

struct Live {
    p: usize,
    layout: Layout,
    seed: u8,
}

fn byte_at(seed: u8, i: usize) -> u8 {
    seed.wrapping_add((i as u8).wrapping_mul(31)) ^ (i >> 8) as u8
}

/// Offsets written and checked in a block of `size` bytes: the first 4 KiB,
/// every 997th byte after, and the last byte. A prefix of a block (after a
/// shrinking realloc) is checked at the probes of the original size.
fn probes(size: usize) -> impl Iterator<Item = usize> {
    (0..size.min(4096))
        .chain((4096..size).step_by(997))
        .chain(std::iter::once(size - 1))
}

fn fill(b: &Live) {
    for i in probes(b.layout.size()) {
        // SAFETY: `i < size` of a live block we own.
        unsafe { *(b.p as *mut u8).add(i) = byte_at(b.seed, i) };
    }
}

fn check(b: &Live, upto: usize) {
    for i in probes(b.layout.size()).filter(|&i| i < upto) {
        // SAFETY: `i < size` of a live block we own.
        let got = unsafe { *(b.p as *const u8).add(i) };
        assert_eq!(
            got,
            byte_at(b.seed, i),
            "block {:#x} byte {i} corrupted",
            b.p
        );
    }
}

/// Check a block's contents, then free it.
fn release(b: Live) {
    check(&b, b.layout.size());
    // SAFETY: a live block of `A` with its layout, owned by the caller.
    unsafe { A.dealloc(b.p as *mut u8, b.layout) };
}

fn check_new(live: &[Live], p: *mut u8, layout: Layout) {
    assert!(!p.is_null(), "null for {layout:?}");
    assert_eq!(p as usize % layout.align(), 0, "misaligned for {layout:?}");
    let (a0, a1) = (p as usize, p as usize + layout.size());
    for b in live {
        let (b0, b1) = (b.p, b.p + b.layout.size());
        assert!(
            a1 <= b0 || b1 <= a0,
            "{layout:?} at {a0:#x} overlaps a live block at {b0:#x}"
        );
    }
}

/// Target `ops`: alloc / alloc_zeroed / realloc / dealloc sequences with
/// sizes across all bands and alignments up to 4 MiB, against a model:
/// contents, alignment and non-overlap are checked.
pub fn ops(data: &[u8]) {
    let mut inp = Input::new(data);
    let mut live: Vec<Live> = Vec::new();
    let mut seed = 0u8;
    while let Some(op) = inp.u8() {
        match op % 6 {
            0..=2 => {
                let (Some(size), Some(align)) = (size(&mut inp), align(&mut inp)) else {
                    break;
                };
                let layout = Layout::from_size_align(size, align).unwrap();
                let zeroed = op % 6 == 2;
                if std::env::var_os("FUZZ_TRACE").is_some() {
                    eprintln!("alloc {layout:?} zeroed={zeroed}");
                }
                // SAFETY: a valid non-zero layout.
                let p = unsafe {
                    if zeroed {
                        A.alloc_zeroed(layout)
                    } else {
                        A.alloc(layout)
                    }
                };
                check_new(&live, p, layout);
                if zeroed {
                    for i in probes(size) {
                        // SAFETY: inside the new block.
                        assert_eq!(unsafe { *p.add(i) }, 0, "alloc_zeroed byte {i} not zero");
                    }
                }
                seed = seed.wrapping_add(1);
                let b = Live {
                    p: p as usize,
                    layout,
                    seed,
                };
                fill(&b);
                live.push(b);
                if live.len() > 64 {
                    let b = live.swap_remove(0);
                    release(b);
                }
            }
            3 | 4 if !live.is_empty() => {
                let Some(i) = inp.u8() else { break };
                let Some(new_size) = size(&mut inp) else {
                    break;
                };
                let i = i as usize % live.len();
                let b = live.swap_remove(i);
                if std::env::var_os("FUZZ_TRACE").is_some() {
                    eprintln!("realloc {:#x} {:?} -> {new_size}", b.p, b.layout);
                }
                check(&b, b.layout.size());
                // SAFETY: live block, its layout, a non-zero new size.
                let p = unsafe { A.realloc(b.p as *mut u8, b.layout, new_size) };
                let layout = Layout::from_size_align(new_size, b.layout.align()).unwrap();
                check_new(&live, p, layout);
                // The kept prefix still holds the old block's probes.
                let kept = Live {
                    p: p as usize,
                    layout: b.layout,
                    seed: b.seed,
                };
                check(&kept, new_size.min(b.layout.size()));
                let moved = Live {
                    p: p as usize,
                    layout,
                    seed: b.seed,
                };
                fill(&moved);
                live.push(moved);
            }
            _ if !live.is_empty() => {
                let Some(i) = inp.u8() else { break };
                let b = live.swap_remove(i as usize % live.len());
                if std::env::var_os("FUZZ_TRACE").is_some() {
                    eprintln!("free {:#x} {:?}", b.p, b.layout);
                }
                release(b);
            }
            _ => {}
        }
    }
    for b in live {
        release(b);
    }
}

/// Target `threads`: two threads allocate; blocks cross to the other
/// thread, which checks and frees them (remote frees), as the input says.
pub fn threads(data: &[u8]) {
    use std::sync::mpsc;
    let half = data.len() / 2;
    let (d0, d1) = data.split_at(half);
    let (tx0, rx0) = mpsc::channel::<Live>();
    let (tx1, rx1) = mpsc::channel::<Live>();
    let run = |d: &[u8], tx: mpsc::Sender<Live>, rx: mpsc::Receiver<Live>| {
        let mut inp = Input::new(d);
        let mut mine: Vec<Live> = Vec::new();
        let mut seed = 0u8;
        while let Some(op) = inp.u8() {
            for b in rx.try_iter() {
                release(b);
            }
            let Some(sz) = size(&mut inp) else { break };
            let sz = if op % 4 == 0 { sz } else { 1 + sz % 2048 };
            let layout = Layout::from_size_align(sz, 8).unwrap();
            // SAFETY: a valid non-zero layout.
            let p = unsafe { A.alloc(layout) };
            assert!(!p.is_null());
            seed = seed.wrapping_add(1);
            let b = Live {
                p: p as usize,
                layout,
                seed,
            };
            fill(&b);
            if op % 2 == 0 {
                let _ = tx.send(b);
            } else {
                mine.push(b);
            }
            if mine.len() > 32 {
                let b = mine.swap_remove(op as usize % mine.len());
                release(b);
            }
        }
        drop(tx);
        for b in mine {
            release(b);
        }
        rx
    };
    let rx_left = std::thread::scope(|s| {
        let a = s.spawn(|| run(d0, tx1, rx0));
        let b = s.spawn(|| run(d1, tx0, rx1));
        [a.join().unwrap(), b.join().unwrap()]
    });
    for rx in rx_left {
        for b in rx.try_iter() {
            release(b);
        }
    }
}

// A `Live` crossing threads is a uniquely owned allocation.
// SAFETY: no aliasing: the sender gives it up.
unsafe impl Send for Live {}

/// Target `size_class`: the class of any size is the smallest that fits,
/// and `usable_size` covers the request.
pub fn size_class(data: &[u8]) {
    let mut inp = Input::new(data);
    while let Some(r) = inp.u32() {
        let size = 1 + (r as usize % (2 << 20));
        match pool_alloc::size_class::class_for_size(size) {
            Some(c) => {
                let bs = pool_alloc::size_class::class_block_size(c).unwrap();
                assert!(bs >= size, "class {c} ({bs} B) too small for {size}");
                if c > 0 {
                    let prev = pool_alloc::size_class::class_block_size(c - 1).unwrap();
                    assert!(prev < size, "class {c} not the smallest for {size}");
                }
            }
            None => assert!(size > pool_alloc::POOLED_MAX),
        }
    }
}

/// Target `config`: any bytes as environment values never panic, leave a
/// configuration within bounds, and produce warnings that are one line of
/// printable text.
pub fn config(data: &[u8]) {
    let leaked: &'static [u8] = Box::leak(data.to_vec().into_boxed_slice());
    let mut lines = 0;
    let cfg = pool_alloc::config::apply_env_reporting(
        pool_alloc::Config::new(),
        |_| Some(leaked),
        |parts| {
            let msg: Vec<u8> = parts.concat();
            assert!(msg.ends_with(b"\n"), "a warning is one whole line");
            assert!(
                msg[..msg.len() - 1]
                    .iter()
                    .all(|&b| b.is_ascii_graphic() || b == b' '),
                "a warning is printable text: {msg:?}"
            );
            lines += 1;
        },
    );
    let parsed = pool_alloc::config::parse_u64(leaked);
    let vars = pool_alloc::config::ENV_VARS.len();
    assert!(lines <= vars, "at most one warning per variable");
    if parsed == Some(1) {
        // 1 is in range for every numeric variable; the two that take
        // words or a list (`POOL_ALLOC_DECOMMIT`, `POOL_ALLOC_PRESSURE_PCT`)
        // reject it.
        assert_eq!(lines, 2, "1 is accepted by every numeric variable");
    }
    let _ = format!("{cfg:?}");
    // SAFETY: reclaim the leaked copy (no reference to it survives).
    drop(unsafe { Box::from_raw(leaked as *const [u8] as *mut [u8]) });
}
