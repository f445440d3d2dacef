//! A background thread that runs a pass every period until stopped: the
//! shape of the `Reclaimer` and the `Sampler`, written once. Started only
//! by the application; never on an allocation path.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// A named thread calling `pass` every `period`; stopped (and joined) by
/// [`Background::stop`] or on drop.
pub(crate) struct Background {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Background {
    /// Start the thread. If it cannot be started, nothing runs
    /// ([`Background::is_running`] says so).
    pub(crate) fn spawn(
        name: &str,
        period: Duration,
        mut pass: impl FnMut() + Send + 'static,
    ) -> Background {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                while !flag.load(Ordering::Acquire) {
                    pass();
                    std::thread::park_timeout(period);
                }
            })
            .ok();
        Background { stop, handle }
    }

    /// Whether the thread runs.
    pub(crate) fn is_running(&self) -> bool {
        self.handle.is_some()
    }

    /// Stop the thread and wait for it (idempotent).
    pub(crate) fn stop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(h) = self.handle.take() {
            h.thread().unpark();
            let _ = h.join();
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop();
    }
}
