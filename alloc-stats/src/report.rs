//! Readable and machine formats of a [`Snapshot`].

use crate::Snapshot;
use std::fmt::{self, Write as _};

/// Bytes in a short human form (B, KiB, MiB, GiB).
///
/// ```
/// use alloc_stats::human_bytes;
/// assert_eq!(human_bytes(100), "100 B");
/// assert_eq!(human_bytes(1536), "1.5 KiB");
/// assert_eq!(human_bytes(3 << 30), "3.0 GiB");
/// ```
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

impl fmt::Display for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:>10} {:>11} {:>11} {:>9} {:>10} {:>10} {:>6} {:>6} {:>10}",
            "class",
            "allocs",
            "frees",
            "live",
            "live req",
            "live held",
            "slabs",
            "reuse",
            "returned"
        )?;
        for c in self.classes.iter().filter(|c| c.allocs > 0) {
            writeln!(
                f,
                "{:>10} {:>11} {:>11} {:>9} {:>10} {:>10} {:>6} {:>5.1}% {:>10}",
                human_bytes(c.block_size as u64),
                c.allocs,
                c.frees,
                c.live_blocks,
                human_bytes(c.live_requested_bytes),
                human_bytes(c.live_rounded_bytes),
                c.slabs,
                c.reuse_rate() * 100.0,
                human_bytes(c.returned_bytes)
            )?;
        }
        if self.large.allocs > 0 {
            writeln!(
                f,
                "{:>10} {:>11} {:>11} {:>9} {:>10} {:>10} {:>6}",
                "large",
                self.large.allocs,
                self.large.frees,
                self.large.allocs - self.large.frees,
                human_bytes(self.large.live_bytes),
                human_bytes(self.large.mapped_bytes - self.large.cached_bytes),
                "-"
            )?;
        }
        writeln!(f)?;
        writeln!(f, "live (requested)   {}", human_bytes(self.live_bytes))?;
        writeln!(f, "mapped             {}", human_bytes(self.mapped_bytes))?;
        writeln!(f, "resident (process) {}", human_bytes(self.resident_bytes))?;
        writeln!(f, "cached for reuse   {}", human_bytes(self.cached_bytes))?;
        writeln!(f, "returned to the OS {}", human_bytes(self.returned_bytes))?;
        writeln!(
            f,
            "fragmentation      {:.2} (resident / live)",
            self.fragmentation()
        )?;
        writeln!(
            f,
            "threads            {} live, {} exited heaps awaiting reuse",
            self.threads_live, self.heaps_abandoned
        )?;
        let r = &self.reclaim;
        writeln!(
            f,
            "idle (for reuse)   {} beside {} in slabs; utilisation {:.1}% of a {} budget",
            human_bytes(r.idle_bytes),
            human_bytes(r.in_use_bytes),
            r.utilisation * 100.0,
            human_bytes(r.pool_budget_bytes)
        )?;
        writeln!(
            f,
            "pressure           {} (limit {})",
            crate::PRESSURE_LEVELS[(r.pressure_level as usize).min(3)],
            human_bytes(r.limit_bytes)
        )?;
        write!(f, "reclaim runs      ")?;
        for (i, name) in crate::RECLAIM_LEVELS.iter().enumerate() {
            write!(f, " {name} {} ({})", r.runs[i], human_bytes(r.bytes[i]))?;
        }
        Ok(())
    }
}

impl Snapshot {
    /// The snapshot as one JSON object: the totals, `large`, and `classes`
    /// as an array with every class (in class order).
    pub fn to_json(&self) -> String {
        let mut s = String::with_capacity(1024);
        let _ = write!(
            s,
            "{{\"taken_at_ms\":{},\"mapped_bytes\":{},\"resident_bytes\":{},\"live_bytes\":{},\
             \"cached_bytes\":{},\"returned_bytes\":{},\"fragmentation\":{:.4},\
             \"threads_live\":{},\"heaps_abandoned\":{},\"large\":{{\"allocs\":{},\"frees\":{},\
             \"live_bytes\":{},\"mapped_bytes\":{},\"cached_bytes\":{}}},\"classes\":[",
            self.taken_at_ms,
            self.mapped_bytes,
            self.resident_bytes,
            self.live_bytes,
            self.cached_bytes,
            self.returned_bytes,
            self.fragmentation(),
            self.threads_live,
            self.heaps_abandoned,
            self.large.allocs,
            self.large.frees,
            self.large.live_bytes,
            self.large.mapped_bytes,
            self.large.cached_bytes
        );
        for (i, c) in self.classes.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            let _ = write!(
                s,
                "{{\"class\":{},\"block_size\":{},\"allocs\":{},\"frees\":{},\"live_blocks\":{},\
                 \"live_requested_bytes\":{},\"live_rounded_bytes\":{},\"slabs\":{},\
                 \"slabs_released\":{},\"returned_bytes\":{},\"slabs_kept\":{},\"carved\":{},\
                 \"peak_live_bytes\":{},\"reuse_rate\":{:.4}}}",
                c.class,
                c.block_size,
                c.allocs,
                c.frees,
                c.live_blocks,
                c.live_requested_bytes,
                c.live_rounded_bytes,
                c.slabs,
                c.slabs_released,
                c.returned_bytes,
                c.slabs_kept,
                c.carved,
                c.peak_live_bytes,
                c.reuse_rate()
            );
        }
        let r = &self.reclaim;
        let _ = write!(
            s,
            "],\"reclaim\":{{\"in_use_bytes\":{},\"idle_bytes\":{},\"limit_bytes\":{},\
             \"pool_budget_bytes\":{},\"utilisation\":{:.4},\"pressure_level\":\"{}\",\
             \"runs\":{:?},\"bytes\":{:?},\"pressure_events\":{:?}}}}}",
            r.in_use_bytes,
            r.idle_bytes,
            r.limit_bytes,
            r.pool_budget_bytes,
            r.utilisation,
            crate::PRESSURE_LEVELS[(r.pressure_level as usize).min(3)],
            r.runs,
            r.bytes,
            r.pressure_events
        );
        s
    }

    /// The snapshot in the Prometheus text exposition format: `pool_alloc_*`
    /// for the totals, and per-class series labelled `class` (the block size
    /// in bytes) for the classes in use; `_total` series are counters, the
    /// rest gauges.
    pub fn to_prometheus(&self) -> String {
        let mut s = String::with_capacity(2048);
        let gauges: [(&str, &str, u64); 6] = [
            (
                "pool_alloc_mapped_bytes",
                "Address space mapped from the OS",
                self.mapped_bytes,
            ),
            (
                "pool_alloc_resident_bytes",
                "Resident memory of the process",
                self.resident_bytes,
            ),
            (
                "pool_alloc_live_bytes",
                "Bytes requested and live",
                self.live_bytes,
            ),
            (
                "pool_alloc_cached_bytes",
                "Free memory kept for reuse",
                self.cached_bytes,
            ),
            (
                "pool_alloc_returned_bytes_total",
                "Bytes given back to the OS",
                self.returned_bytes,
            ),
            (
                "pool_alloc_threads",
                "Threads with a heap",
                self.threads_live,
            ),
        ];
        for (name, help, v) in gauges {
            let kind = if name.ends_with("_total") {
                "counter"
            } else {
                "gauge"
            };
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        }
        type Field = fn(&crate::ClassStats) -> u64;
        let per_class: [(&str, &str, Field); 9] = [
            (
                "pool_alloc_class_carved_total",
                "Blocks carved fresh per size class (the other allocations reused a block)",
                |c| c.carved,
            ),
            (
                "pool_alloc_class_peak_live_bytes",
                "Highest live requested bytes a snapshot saw, per size class",
                |c| c.peak_live_bytes,
            ),
            (
                "pool_alloc_class_slabs_kept",
                "Empty slabs kept for reuse per size class",
                |c| c.slabs_kept,
            ),
            (
                "pool_alloc_class_slabs_released_total",
                "Slabs released per size class (their memory made idle)",
                |c| c.slabs_released,
            ),
            (
                "pool_alloc_class_returned_bytes_total",
                "Bytes given back to the OS per size class",
                |c| c.returned_bytes,
            ),
            (
                "pool_alloc_class_allocs_total",
                "Allocations per size class",
                |c| c.allocs,
            ),
            (
                "pool_alloc_class_frees_total",
                "Frees per size class",
                |c| c.frees,
            ),
            (
                "pool_alloc_class_live_blocks",
                "Live blocks per size class",
                |c| c.live_blocks,
            ),
            (
                "pool_alloc_class_live_bytes",
                "Live requested bytes per size class",
                |c| c.live_requested_bytes,
            ),
        ];
        for (name, help, get) in per_class {
            let kind = if name.ends_with("_total") {
                "counter"
            } else {
                "gauge"
            };
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for c in self.classes.iter().filter(|c| c.allocs > 0) {
                let _ = writeln!(s, "{name}{{class=\"{}\"}} {}", c.block_size, get(c));
            }
        }
        let r = &self.reclaim;
        let reclaim_gauges: [(&str, &str, f64); 6] = [
            (
                "pool_alloc_in_use_bytes",
                "Bytes of slabs in use",
                r.in_use_bytes as f64,
            ),
            (
                "pool_alloc_idle_bytes",
                "Free memory still committed, kept for reuse",
                r.idle_bytes as f64,
            ),
            (
                "pool_alloc_limit_bytes",
                "The memory limit in force",
                r.limit_bytes as f64,
            ),
            (
                "pool_alloc_pool_budget_bytes",
                "The pool budget",
                r.pool_budget_bytes as f64,
            ),
            (
                "pool_alloc_utilisation_ratio",
                "Committed pooled memory over the pool budget",
                r.utilisation,
            ),
            (
                "pool_alloc_pressure_level",
                "Pressure level: 0 low, 1 medium, 2 high, 3 critical",
                r.pressure_level as f64,
            ),
        ];
        for (name, help, v) in reclaim_gauges {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
        let per_level: [(&str, &str, &[&str; 4], [u64; 4]); 3] = [
            (
                "pool_alloc_reclaim_runs_total",
                "reclaim() calls per level",
                &crate::RECLAIM_LEVELS,
                r.runs,
            ),
            (
                "pool_alloc_reclaim_bytes_total",
                "Bytes given back by reclaim() per level",
                &crate::RECLAIM_LEVELS,
                r.bytes,
            ),
            (
                "pool_alloc_pressure_events_total",
                "Pressure callback rounds per level",
                &crate::PRESSURE_LEVELS,
                r.pressure_events,
            ),
        ];
        for (name, help, levels, vals) in per_level {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} counter");
            for (l, v) in levels.iter().zip(vals) {
                let _ = writeln!(s, "{name}{{level=\"{l}\"}} {v}");
            }
        }
        s
    }
}
