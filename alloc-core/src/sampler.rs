//! History for the leak-risk model: a [`Sampler`] thread the application
//! starts (never the allocator itself) records a snapshot every interval
//! into a bounded [`History`]; or the application calls [`tick`] itself.
//! Sampling reuses the history's slots: it allocates nothing once every
//! slot has been filled once. Readers take the history's mutex, which no
//! allocating thread ever touches.

use crate::stats::snapshot_into;
use alloc_stats::{History, LeakDetector, LeakReport, Snapshot};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Record one snapshot into `detector` now (in place, see
/// [`snapshot_into`]).
///
/// ```
/// let mut d = alloc_core::stats_history(8);
/// alloc_core::tick(&mut d);
/// assert_eq!(d.history().len(), 1);
/// ```
pub fn tick(detector: &mut LeakDetector) {
    detector.record_with(snapshot_into);
}

/// A leak detector over the last `capacity` snapshots (fill it with
/// [`tick`]).
pub fn stats_history(capacity: usize) -> LeakDetector {
    LeakDetector::with_capacity(capacity)
}

/// A background thread recording a snapshot every interval.
///
/// ```
/// use std::time::Duration;
/// let s = alloc_core::Sampler::start(Duration::from_millis(10), 32);
/// std::thread::sleep(Duration::from_millis(50));
/// assert!(s.with_history(|h| h.len()) >= 1);
/// println!("{}", s.report());
/// s.stop();
/// ```
pub struct Sampler {
    detector: Arc<Mutex<LeakDetector>>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Sampler {
    /// Start sampling every `interval` into a history of `capacity`.
    pub fn start(interval: Duration, capacity: usize) -> Sampler {
        let detector = Arc::new(Mutex::new(LeakDetector::with_capacity(capacity)));
        let stop = Arc::new(AtomicBool::new(false));
        let (d, flag) = (detector.clone(), stop.clone());
        let handle = std::thread::Builder::new()
            .name("pool-alloc-sampler".into())
            .spawn(move || {
                while !flag.load(Ordering::Acquire) {
                    if let Ok(mut d) = d.lock() {
                        tick(&mut d);
                    }
                    std::thread::park_timeout(interval);
                }
            })
            .ok();
        Sampler {
            detector,
            stop,
            handle,
        }
    }

    /// The leak-risk report over the history so far.
    pub fn report(&self) -> LeakReport {
        self.with_history(alloc_stats::assess)
    }

    /// The newest snapshot, if any.
    pub fn latest(&self) -> Option<Snapshot> {
        self.with_history(|h| h.latest().cloned())
    }

    /// Run `f` on the history (the sampler waits meanwhile).
    pub fn with_history<R>(&self, f: impl FnOnce(&History) -> R) -> R {
        let d = self.detector.lock().unwrap_or_else(|e| e.into_inner());
        f(d.history())
    }

    /// Stop the thread and wait for it.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(h) = self.handle.take() {
            h.thread().unpark();
            let _ = h.join();
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.halt();
    }
}
