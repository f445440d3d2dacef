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
            let reuse = if self.reuse_unknown {
                "-".to_string()
            } else {
                format!("{:.1}%", c.reuse_rate() * 100.0)
            };
            writeln!(
                f,
                "{:>10} {:>11} {:>11} {:>9} {:>10} {:>10} {:>6} {:>6} {:>10}",
                human_bytes(c.block_size as u64),
                c.allocs,
                c.frees,
                c.live_blocks,
                human_bytes(c.live_requested_bytes),
                human_bytes(c.live_rounded_bytes),
                c.slabs,
                reuse,
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
                // Saturating: the figures are read one after another while
                // other threads run, so a moment's view may be uneven.
                self.large.allocs.saturating_sub(self.large.frees),
                human_bytes(self.large.live_bytes),
                human_bytes(
                    self.large
                        .mapped_bytes
                        .saturating_sub(self.large.cached_bytes)
                ),
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
        if self.components.iter().any(|c| !c.name.is_empty()) {
            write!(f, "\ncomponents (est.) ")?;
            for c in &self.components {
                let name = if c.name.is_empty() { "(none)" } else { &c.name };
                write!(f, " {name} {}", human_bytes(c.live_bytes_estimated))?;
            }
        }
        Ok(())
    }
}

/// Append `v` escaped for a JSON string or a Prometheus label value (both
/// escape `\\`, `"` and newlines the same way).
fn escape_into(out: &mut String, v: &str) {
    for ch in v.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// Write the Prometheus HELP and TYPE lines and one sample per row for
/// every figure of `fields` that is not a label.
fn prom_series(
    out: &mut String,
    prefix: &str,
    fields: &[crate::Field],
    rows: &[(Option<String>, Vec<f64>)],
) {
    for (i, f) in fields.iter().enumerate() {
        if f.kind == crate::Kind::Label {
            continue;
        }
        let name = f.series(prefix);
        let _ = writeln!(
            out,
            "# HELP {name} {}\n# TYPE {name} {}",
            f.help.trim_end_matches('.'),
            f.prom_type()
        );
        for (label, values) in rows {
            match label {
                Some(l) => {
                    let _ = writeln!(out, "{name}{{{l}}} {}", values[i]);
                }
                None => {
                    let _ = writeln!(out, "{name} {}", values[i]);
                }
            }
        }
    }
}

impl Snapshot {
    /// The snapshot as one JSON object: every figure of the lists in
    /// `fields.rs`, `fragmentation`, `large`, `classes` (every class, in
    /// class order, with its `reuse_rate`), `reclaim`, and `components` (name and
    /// figures each).
    pub fn to_json(&self) -> String {
        let mut s = String::with_capacity(4096);
        s.push('{');
        self.write_json_figures(&mut s);
        let _ = write!(
            s,
            ",\"fragmentation\":{:.4},\"reuse_unknown\":{},\"large\":{{",
            self.fragmentation(),
            self.reuse_unknown
        );
        self.large.write_json_figures(&mut s);
        s.push_str("},\"classes\":[");
        for (i, c) in self.classes.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push('{');
            c.write_json_figures(&mut s);
            if self.reuse_unknown {
                s.push_str(",\"reuse_rate\":null}");
            } else {
                let _ = write!(s, ",\"reuse_rate\":{:.4}}}", c.reuse_rate());
            }
        }
        s.push_str("],\"reclaim\":{");
        let r = &self.reclaim;
        r.write_json_figures(&mut s);
        let _ = write!(
            s,
            ",\"pressure\":\"{}\",\"runs\":{:?},\"bytes\":{:?},\"pressure_events\":{:?}}}",
            crate::PRESSURE_LEVELS[(r.pressure_level as usize).min(3)],
            r.runs,
            r.bytes,
            r.pressure_events
        );
        s.push_str(",\"components\":[");
        for (i, c) in self.components.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push_str("{\"name\":\"");
            escape_into(&mut s, &c.name);
            s.push_str("\",");
            c.write_json_figures(&mut s);
            s.push('}');
        }
        s.push_str("]}");
        s
    }

    /// The snapshot in the Prometheus text exposition format, from the
    /// lists of figures: `pool_alloc_*` for the process, `pool_alloc_large_*`
    /// for large blocks, `pool_alloc_class_*` labelled `class` (the block
    /// size in bytes) for the classes in use, and the reclaim and pressure
    /// series labelled `level`. `_total` series are counters, the rest
    /// gauges; every series has HELP and TYPE.
    pub fn to_prometheus(&self) -> String {
        let mut s = String::with_capacity(8192);
        prom_series(
            &mut s,
            "pool_alloc_",
            Snapshot::FIELDS,
            &[(None, self.values())],
        );
        prom_series(
            &mut s,
            "pool_alloc_",
            crate::ReclaimStats::FIELDS,
            &[(None, self.reclaim.values())],
        );
        prom_series(
            &mut s,
            "pool_alloc_large_",
            crate::LargeStats::FIELDS,
            &[(None, self.large.values())],
        );
        // Unmeasured figures are left out, not exported as 0.
        let keep: Vec<bool> = crate::ClassStats::FIELDS
            .iter()
            .map(|f| !(self.reuse_unknown && f.name == "carved"))
            .collect();
        let pick = |v: Vec<f64>| -> Vec<f64> {
            v.into_iter()
                .zip(&keep)
                .filter_map(|(x, &k)| k.then_some(x))
                .collect()
        };
        let fields: Vec<crate::Field> = crate::ClassStats::FIELDS
            .iter()
            .zip(&keep)
            .filter_map(|(f, &k)| k.then_some(*f))
            .collect();
        let rows: Vec<(Option<String>, Vec<f64>)> = self
            .classes
            .iter()
            .filter(|c| c.allocs > 0)
            .map(|c| {
                (
                    Some(format!("class=\"{}\"", c.block_size)),
                    pick(c.values()),
                )
            })
            .collect();
        prom_series(&mut s, "pool_alloc_class_", &fields, &rows);
        let rows: Vec<(Option<String>, Vec<f64>)> = self
            .components
            .iter()
            .map(|c| {
                let mut l = String::from("component=\"");
                escape_into(&mut l, &c.name);
                l.push('"');
                (Some(l), c.values())
            })
            .collect();
        if !rows.is_empty() {
            prom_series(
                &mut s,
                "pool_alloc_component_",
                crate::ComponentStats::FIELDS,
                &rows,
            );
        }
        let r = &self.reclaim;
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
