//! Stats for programs that cannot call Rust, switched on by the
//! environment when the library loads:
//!
//! | variable | effect |
//! | --- | --- |
//! | `POOL_ALLOC_STATS_AT_EXIT=1` | at exit, the stats table and the leak report on stderr |
//! | `POOL_ALLOC_STATS_FILE=path` | every interval, the snapshot as one JSON line appended to `path` |
//! | `POOL_ALLOC_STATS_INTERVAL_MS=n` | the interval (default 1000 ms; 10..=3600000) |
//!
//! Either one starts a reporter thread that records a snapshot every
//! interval into a leak detector's history (the same `alloc_stats`
//! formats as the Rust API). A malformed value gets one line on stderr
//! and the default.

use alloc_stats::LeakDetector;
use std::io::Write;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Snapshots kept for the leak report.
const HISTORY: usize = 256;

/// The reporter's detector (history of snapshots), once started.
static DETECTOR: OnceLock<Mutex<LeakDetector>> = OnceLock::new();

/// `name`'s value, if set and not empty.
fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The sampling interval from `POOL_ALLOC_STATS_INTERVAL_MS`.
fn interval() -> Duration {
    const DEFAULT: u64 = 1000;
    let ms = match var("POOL_ALLOC_STATS_INTERVAL_MS") {
        None => DEFAULT,
        Some(v) => match v.trim().parse::<u64>() {
            Ok(n) if (10..=3_600_000).contains(&n) => n,
            _ => {
                eprintln!(
                    "pool_alloc: POOL_ALLOC_STATS_INTERVAL_MS={v:?} is not a number of \
                     milliseconds in 10..=3600000; using {DEFAULT}"
                );
                DEFAULT
            }
        },
    };
    Duration::from_millis(ms)
}

/// Start what the environment asks for (called once, at load).
pub(crate) fn start_from_env() {
    let at_exit = match var("POOL_ALLOC_STATS_AT_EXIT").as_deref() {
        None | Some("0") => false,
        Some("1") => true,
        Some(v) => {
            eprintln!("pool_alloc: POOL_ALLOC_STATS_AT_EXIT={v:?} is not 0 or 1; using 0");
            false
        }
    };
    let file = var("POOL_ALLOC_STATS_FILE");
    if !at_exit && file.is_none() {
        return;
    }
    let every = interval();
    let detector = DETECTOR.get_or_init(|| Mutex::new(LeakDetector::with_capacity(HISTORY)));
    record(detector, file.as_deref());
    if at_exit {
        // SAFETY: `print_at_exit` has the signature atexit expects.
        unsafe { libc::atexit(print_at_exit) };
    }
    let spawned = std::thread::Builder::new()
        .name("pool_alloc-stats".into())
        .spawn(move || loop {
            std::thread::sleep(every);
            record(detector, file.as_deref());
        });
    if let Err(e) = spawned {
        eprintln!("pool_alloc: the stats reporter thread could not start: {e}");
    }
}

/// Take a snapshot into the detector's history and, with `file`, append it
/// as a JSON line.
fn record(detector: &Mutex<LeakDetector>, file: Option<&str>) {
    let mut d = detector.lock().unwrap_or_else(|e| e.into_inner());
    alloc_core::tick(&mut d);
    if let (Some(path), Some(s)) = (file, d.history().latest()) {
        let line = s.to_json();
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| writeln!(f, "{line}"));
        if let Err(e) = written {
            eprintln!("pool_alloc: cannot append the stats to {path}: {e}");
        }
    }
}

/// At exit: one last snapshot, then the table and the leak report.
extern "C" fn print_at_exit() {
    let Some(detector) = DETECTOR.get() else {
        return;
    };
    let mut d = detector.lock().unwrap_or_else(|e| e.into_inner());
    alloc_core::tick(&mut d);
    if let Some(s) = d.history().latest() {
        eprintln!("{s}");
    }
    eprintln!("{}", d.report());
}
