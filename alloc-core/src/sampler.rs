//! History for the leak-risk model: a [`Sampler`] thread the application
//! starts (never the allocator itself) records a snapshot every interval
//! into a bounded [`History`]; or the application calls [`tick`] itself.
//! Sampling reuses the history's slots: it allocates nothing once every
//! slot has been filled once. Readers take the history's mutex, which no
//! allocating thread ever touches.

use crate::background::Background;
use crate::stats::snapshot_into;
use alloc_stats::{History, LeakDetector, LeakReport, Snapshot};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Record one snapshot into `detector` now (in place, see
/// [`snapshot_into`]).
///
/// ```
/// let mut d = alloc_stats::LeakDetector::with_capacity(8);
/// alloc_core::tick(&mut d);
/// assert_eq!(d.history().len(), 1);
/// ```
pub fn tick(detector: &mut LeakDetector) {
    detector.record_with(snapshot_into);
}

/// A background thread recording a snapshot every interval.
///
/// ```
/// use std::time::Duration;
/// let s = alloc_core::Sampler::start(Duration::from_millis(10), 32);
/// // The first snapshot within ten seconds (a loaded machine may run the
/// // thread late; the test waits for it rather than for a fixed time).
/// let mut waited = 0;
/// while s.with_history(|h| h.len()) == 0 && waited < 2000 {
///     std::thread::sleep(Duration::from_millis(5));
///     waited += 1;
/// }
/// assert!(s.with_history(|h| h.len()) >= 1);
/// println!("{}", s.report());
/// s.stop();
/// ```
pub struct Sampler {
    detector: Arc<Mutex<LeakDetector>>,
    thread: Background,
}

impl Sampler {
    /// Start sampling every `interval` into a history of `capacity`.
    pub fn start(interval: Duration, capacity: usize) -> Sampler {
        let detector = Arc::new(Mutex::new(LeakDetector::with_capacity(capacity)));
        let d = detector.clone();
        let thread = Background::spawn("pool-alloc-sampler", interval, move || {
            if let Ok(mut d) = d.lock() {
                tick(&mut d);
                #[cfg(feature = "metrics")]
                if let Some(s) = d.history().latest() {
                    publish(s);
                }
            }
        });
        Sampler { detector, thread }
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

    /// Stop the thread and wait for it (dropping the `Sampler` does too).
    pub fn stop(mut self) {
        self.thread.stop();
    }
}

/// Publish every figure of `s` to the `metrics` facade, under the same
/// names as the Prometheus text (`pool_alloc_*`, `pool_alloc_class_*` with
/// a `class` label). The `Sampler` calls it after each snapshot (feature
/// `metrics`); never called on an allocation path.
#[cfg(feature = "metrics")]
pub fn publish(s: &Snapshot) {
    use alloc_stats::{ClassStats, Field, Kind, LargeStats, ReclaimStats};
    fn one(prefix: &str, fields: &[Field], values: &[f64], class: Option<&str>) {
        for (f, &v) in fields.iter().zip(values) {
            let name = f.series(prefix);
            match (f.kind, class) {
                (Kind::Label, _) => {}
                (Kind::Counter, None) => metrics::counter!(name).absolute(v as u64),
                (Kind::Counter, Some(c)) => {
                    metrics::counter!(name, "class" => c.to_string()).absolute(v as u64)
                }
                (_, None) => metrics::gauge!(name).set(v),
                (_, Some(c)) => metrics::gauge!(name, "class" => c.to_string()).set(v),
            }
        }
    }
    one("pool_alloc_", Snapshot::FIELDS, &s.values(), None);
    one(
        "pool_alloc_",
        ReclaimStats::FIELDS,
        &s.reclaim.values(),
        None,
    );
    one(
        "pool_alloc_large_",
        LargeStats::FIELDS,
        &s.large.values(),
        None,
    );
    for c in s.classes.iter().filter(|c| c.allocs > 0) {
        let label = c.block_size.to_string();
        one(
            "pool_alloc_class_",
            ClassStats::FIELDS,
            &c.values(),
            Some(&label),
        );
    }
}

#[cfg(all(test, feature = "metrics"))]
mod tests {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    #[test]
    fn publish_sends_every_figure_to_the_metrics_facade() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        use std::alloc::{GlobalAlloc, Layout};
        let a = crate::PoolAlloc::new();
        let layout = Layout::from_size_align(5000, 8).unwrap();
        // SAFETY: a valid non-zero layout; freed below with it.
        let p = unsafe { a.alloc(layout) };
        assert!(!p.is_null());
        let snap = crate::snapshot();
        metrics::with_local_recorder(&recorder, || super::publish(&snap));
        let got = snapshotter.snapshot().into_vec();
        let find = |name: &str| {
            got.iter()
                .find(|(k, ..)| k.key().name() == name)
                .map(|(_, _, _, v)| v)
        };
        assert!(
            matches!(find("pool_alloc_live_bytes"), Some(DebugValue::Gauge(g)) if g.into_inner() > 0.0)
        );
        assert!(
            matches!(find("pool_alloc_class_allocs_total"), Some(DebugValue::Counter(n)) if *n > 0)
        );
        // SAFETY: allocated above with `layout`.
        unsafe { a.dealloc(p, layout) };
    }
}
