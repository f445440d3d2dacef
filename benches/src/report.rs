//! Turning samples into the report: medians, per-round ratios to system,
//! a markdown table, CSV, JSON and SVG charts.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;

use crate::peers::ALL_NAMES;
use crate::sys::Machine;
use crate::workloads::{Metrics, WORKLOADS};

/// How a figure was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mode {
    /// All allocators called through `GlobalAlloc` in one process.
    InProcess,
    /// One process per allocator, installed as `#[global_allocator]`.
    Installed,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::InProcess => "in-process",
            Mode::Installed => "installed",
        }
    }
}

/// One run of one workload by one peer.
#[derive(Clone, Debug)]
pub struct Sample {
    pub mode: Mode,
    pub workload: String,
    pub peer: String,
    pub round: usize,
    /// Ratios are taken against `system` of the same group and round
    /// (group 1: the second in-process binary that carries mimalloc v2).
    pub group: usize,
    pub metrics: Metrics,
}

/// Everything measured for one (mode, workload, metric, peer).
#[derive(Clone, Debug)]
pub struct Record {
    pub mode: Mode,
    pub workload: String,
    pub metric: String,
    pub peer: String,
    /// Value per round.
    pub values: Vec<f64>,
    /// value / system's value in the same round (and process, in-process).
    pub ratios: Vec<f64>,
}

/// Median of a non-empty slice (mean of the middle two for even lengths).
pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

impl Record {
    pub fn median(&self) -> f64 {
        median(&self.values)
    }
    pub fn ratio(&self) -> Option<f64> {
        (!self.ratios.is_empty()).then(|| median(&self.ratios))
    }
}

/// What a metric means: its unit and which way is better.
pub struct MetricInfo {
    pub unit: &'static str,
    pub higher_is_better: bool,
    /// Shown in the stdout/markdown table (everything goes to CSV/JSON).
    pub headline: bool,
}

/// Describes `metric`.
pub fn metric_info(metric: &str) -> MetricInfo {
    let (unit, higher_is_better, headline) = match metric {
        "ops_per_s" | "threads_per_s" => ("/s", true, true),
        "ops_per_s_per_thread" => ("/s/thread", true, true),
        "footprint" => ("x", false, true),
        "p50_ns" | "p99_ns" | "p999_ns" | "max_ns" => ("ns", false, true),
        "timer_p50_ns" => ("ns", false, false),
        "rss_after_mib" | "rss_full_mib" => ("MiB", false, true),
        m if m.starts_with("rss_t") => ("MiB", false, true),
        m if m.ends_with("_mib") => ("MiB", false, false),
        "seconds" => ("s", false, false),
        _ => ("", true, false),
    };
    MetricInfo {
        unit,
        higher_is_better,
        headline,
    }
}

fn workload_rank(w: &str) -> usize {
    WORKLOADS.iter().position(|x| *x == w).unwrap_or(usize::MAX)
}

fn peer_rank(p: &str) -> usize {
    ALL_NAMES.iter().position(|x| *x == p).unwrap_or(usize::MAX)
}

/// Groups samples into records and computes the per-round ratios.
pub fn aggregate(samples: &[Sample]) -> Vec<Record> {
    // (mode, workload, metric, group, round) -> system's value
    let mut system: BTreeMap<(Mode, &str, &str, usize, usize), f64> = BTreeMap::new();
    for s in samples.iter().filter(|s| s.peer == "system") {
        for (k, v) in &s.metrics {
            system.insert((s.mode, &s.workload, k, s.group, s.round), *v);
        }
    }
    let mut recs: BTreeMap<(Mode, usize, String, String, usize, String), Record> = BTreeMap::new();
    for s in samples {
        // The system of the second in-process binary is only a reference.
        if s.peer == "system" && s.group != 0 {
            continue;
        }
        for (k, v) in &s.metrics {
            let key = (
                s.mode,
                workload_rank(&s.workload),
                s.workload.clone(),
                k.clone(),
                peer_rank(&s.peer),
                s.peer.clone(),
            );
            let r = recs.entry(key).or_insert_with(|| Record {
                mode: s.mode,
                workload: s.workload.clone(),
                metric: k.clone(),
                peer: s.peer.clone(),
                values: Vec::new(),
                ratios: Vec::new(),
            });
            r.values.push(*v);
            if let Some(sys) =
                system.get(&(s.mode, s.workload.as_str(), k.as_str(), s.group, s.round))
            {
                if *sys != 0.0 {
                    r.ratios.push(*v / *sys);
                }
            }
        }
    }
    recs.into_values().collect()
}

/// Formats a value for the table by its unit.
pub fn fmt_value(v: f64, unit: &str) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    match unit {
        "/s" | "/s/thread" => {
            let (div, suffix) = if v >= 1e9 {
                (1e9, "G")
            } else if v >= 1e6 {
                (1e6, "M")
            } else if v >= 1e3 {
                (1e3, "k")
            } else {
                (1.0, "")
            };
            format!("{:.3}{suffix}", v / div)
        }
        "MiB" => format!("{v:.1}"),
        "ns" => format!("{v:.0}"),
        "x" => format!("{v:.2}"),
        _ => format!("{v:.3}"),
    }
}

/// The peers that appear in `recs`, in report order.
pub fn peers_of(recs: &[Record]) -> Vec<String> {
    let mut p: Vec<String> = recs.iter().map(|r| r.peer.clone()).collect();
    p.sort_by_key(|x| (peer_rank(x), x.clone()));
    p.dedup();
    p
}

/// Orders a workload's metrics: throughput first, percentiles in order,
/// RSS checkpoints by time.
fn metric_sort_key(metric: &str) -> String {
    let fixed = [
        "ops_per_s",
        "ops_per_s_per_thread",
        "threads_per_s",
        "p50_ns",
        "p99_ns",
        "p999_ns",
        "max_ns",
        "rss_full_mib",
    ];
    if let Some(i) = fixed.iter().position(|m| *m == metric) {
        return format!("{i:02}");
    }
    if let Some(t) = metric
        .strip_prefix("rss_t")
        .and_then(|m| m.strip_suffix("s_mib"))
    {
        if let Ok(t) = t.parse::<f64>() {
            return format!("50 {t:012.3}");
        }
    }
    format!("99 {metric}")
}

/// The markdown table: one row per (mode, workload, headline metric), one
/// column per peer with `median (ratio to system)`.
pub fn table(recs: &[Record]) -> String {
    let peers = peers_of(recs);
    type Row = (Mode, usize, String, String, String);
    let mut rows: BTreeMap<Row, BTreeMap<String, &Record>> = BTreeMap::new();
    for r in recs.iter().filter(|r| metric_info(&r.metric).headline) {
        rows.entry((
            r.mode,
            workload_rank(&r.workload),
            r.workload.clone(),
            metric_sort_key(&r.metric),
            r.metric.clone(),
        ))
        .or_default()
        .insert(r.peer.clone(), r);
    }
    let mut out = String::new();
    let _ = write!(out, "| mode | workload | metric | better |");
    for p in &peers {
        let _ = write!(out, " {p} |");
    }
    out.push('\n');
    out.push_str("| --- | --- | --- | --- |");
    for _ in &peers {
        out.push_str(" ---: |");
    }
    out.push('\n');
    for ((mode, _, workload, _, metric), cells) in &rows {
        let info = metric_info(metric);
        let better = if info.higher_is_better {
            "higher"
        } else {
            "lower"
        };
        let _ = write!(
            out,
            "| {} | {workload} | {metric} | {better} |",
            mode.name()
        );
        for p in &peers {
            match cells.get(p) {
                None => out.push_str(" - |"),
                Some(r) => {
                    let v = fmt_value(r.median(), info.unit);
                    match r.ratio() {
                        Some(x) if p != "system" => {
                            let _ = write!(out, " {v} ({x:.2}x) |");
                        }
                        _ => {
                            let _ = write!(out, " {v} |");
                        }
                    }
                }
            }
        }
        out.push('\n');
    }
    out
}

fn join(v: &[f64]) -> String {
    v.iter()
        .map(|x| format!("{x}"))
        .collect::<Vec<_>>()
        .join(";")
}

/// CSV: one line per record, rounds and ratios `;`-separated.
pub fn csv(recs: &[Record]) -> String {
    let mut out = String::from(
        "mode,workload,metric,unit,better,peer,median,ratio_median,ratio_min,ratio_max,rounds,values,ratios\n",
    );
    for r in recs {
        let info = metric_info(&r.metric);
        let (rmin, rmax) = r
            .ratios
            .iter()
            .fold((f64::NAN, f64::NAN), |(a, b), &x| (a.min(x), b.max(x)));
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{},{}",
            r.mode.name(),
            r.workload,
            r.metric,
            info.unit,
            if info.higher_is_better {
                "higher"
            } else {
                "lower"
            },
            r.peer,
            r.median(),
            r.ratio().map_or(String::new(), |x| x.to_string()),
            if rmin.is_nan() {
                String::new()
            } else {
                rmin.to_string()
            },
            if rmax.is_nan() {
                String::new()
            } else {
                rmax.to_string()
            },
            r.values.len(),
            join(&r.values),
            join(&r.ratios),
        );
    }
    out
}

/// Reads back what [`csv`] wrote (to redraw a report without rerunning).
pub fn from_csv(text: &str) -> Result<Vec<Record>, String> {
    let nums = |f: &str| -> Result<Vec<f64>, String> {
        f.split(';')
            .filter(|x| !x.is_empty())
            .map(|x| x.parse().map_err(|_| format!("bad number {x:?}")))
            .collect()
    };
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            if f.len() != 13 {
                return Err(format!("bad CSV line {l:?}"));
            }
            let mode = match f[0] {
                "in-process" => Mode::InProcess,
                "installed" => Mode::Installed,
                m => return Err(format!("bad mode {m:?}")),
            };
            Ok(Record {
                mode,
                workload: f[1].to_string(),
                metric: f[2].to_string(),
                peer: f[5].to_string(),
                values: nums(f[11])?,
                ratios: nums(f[12])?,
            })
        })
        .collect()
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_num(x: f64) -> String {
    if x.is_finite() {
        format!("{x}")
    } else {
        "null".into()
    }
}

fn json_arr(v: &[f64]) -> String {
    format!(
        "[{}]",
        v.iter().map(|x| json_num(*x)).collect::<Vec<_>>().join(",")
    )
}

/// JSON: the machine, the command, and every record.
pub fn json(machine: &Machine, command: &str, recs: &[Record]) -> String {
    let mut out = String::from("{\n");
    let _ = writeln!(out, "  \"date\": {},", json_str(&machine.date));
    let _ = writeln!(out, "  \"commit\": {},", json_str(&machine.commit));
    let _ = writeln!(out, "  \"command\": {},", json_str(command));
    let _ = writeln!(
        out,
        "  \"machine\": {{\"cpus\": {}, \"cpu_model\": {}, \"mem_gib\": {}, \"kernel\": {}, \"rustc\": {}}},",
        machine.cpus,
        json_str(&machine.cpu_model),
        json_num(machine.mem_gib),
        json_str(&machine.kernel),
        json_str(&machine.rustc)
    );
    out.push_str("  \"records\": [\n");
    for (i, r) in recs.iter().enumerate() {
        let info = metric_info(&r.metric);
        let _ = write!(
            out,
            "    {{\"mode\": {}, \"workload\": {}, \"metric\": {}, \"unit\": {}, \"higher_is_better\": {}, \"peer\": {}, \"median\": {}, \"ratio_median\": {}, \"values\": {}, \"ratios\": {}}}",
            json_str(r.mode.name()),
            json_str(&r.workload),
            json_str(&r.metric),
            json_str(info.unit),
            info.higher_is_better,
            json_str(&r.peer),
            json_num(r.median()),
            r.ratio().map_or("null".into(), json_num),
            json_arr(&r.values),
            json_arr(&r.ratios),
        );
        out.push_str(if i + 1 < recs.len() { ",\n" } else { "\n" });
    }
    out.push_str("  ]\n}\n");
    out
}

/// A fixed colour per peer, the same in every chart.
pub fn peer_color(peer: &str) -> RGBColor {
    match peer {
        "system" => RGBColor(140, 140, 140),
        "mimalloc-v3" => RGBColor(31, 119, 180),
        "mimalloc-v2" => RGBColor(120, 180, 230),
        "jemalloc" => RGBColor(255, 127, 14),
        "rpmalloc" => RGBColor(44, 160, 44),
        "ours" => RGBColor(214, 39, 40),
        _ => RGBColor(148, 103, 189),
    }
}

/// A grouped horizontal bar chart: one group per category (top to bottom),
/// one bar per series. `reference` draws a vertical line (1.0 for ratios).
// NB: horizontal, so that long category names stay readable without rotated
// text; plotters' SVG backend writes text as <text>, so no fonts are needed.
pub fn bar_chart(
    path: &Path,
    title: &str,
    x_desc: &str,
    categories: &[String],
    series: &[(String, Vec<Option<f64>>)],
    reference: Option<f64>,
    log: bool,
) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("chart {}: {e}", path.display());
    let n = categories.len().max(1);
    let k = series.len().max(1);
    // NB: a log axis is drawn as log10 of the values on a linear axis, with
    // the tick labels turned back into values; bars start at the left edge.
    let tx = |v: f64| if log { v.max(1e-3).log10() } else { v };
    let all = || {
        series
            .iter()
            .flat_map(|(_, v)| v.iter().flatten().copied())
            .chain(reference)
    };
    let hi = all().fold(f64::MIN, f64::max);
    let lo = all().fold(f64::MAX, f64::min);
    let (xmin, xmax) = if log {
        let (lo, hi) = (tx(lo.min(1.0)), tx(hi.max(1.0)));
        let pad = ((hi - lo) * 0.08).max(0.05);
        (lo - pad, hi + pad + (hi - lo + 2.0 * pad) * 0.25)
    } else {
        // Room on the right for the legend.
        (0.0, if hi > 0.0 { hi * 1.35 } else { 1.0 })
    };
    let height = 110 + (n * (k * 7 + 12)) as u32;
    let root = SVGBackend::new(path, (960, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(190)
        .build_cartesian_2d(xmin..xmax, -0.5f64..(n as f64 - 0.5))
        .map_err(|e| err(&e))?;
    // Category i is drawn at y = n - 1 - i so that the first is on top.
    let labels = categories.to_vec();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .light_line_style(TRANSPARENT)
        .y_labels(n)
        .y_label_formatter(&|y| {
            let r = y.round();
            if (y - r).abs() < 1e-6 && r >= 0.0 && (r as usize) < labels.len() {
                labels[labels.len() - 1 - r as usize].clone()
            } else {
                String::new()
            }
        })
        .y_label_style(("sans-serif", 13))
        .x_label_formatter(&|x| {
            if log {
                let v = 10f64.powf(*x);
                if v >= 10.0 {
                    format!("{v:.0}")
                } else {
                    format!("{v:.2}")
                }
            } else {
                format!("{x:.0}")
            }
        })
        .x_desc(x_desc)
        .draw()
        .map_err(|e| err(&e))?;
    let band = 0.8 / k as f64;
    for (j, (name, values)) in series.iter().enumerate() {
        let color = peer_color(name);
        let bars = values.iter().enumerate().filter_map(|(i, v)| {
            let y1 = (n - 1 - i) as f64 + 0.4 - j as f64 * band;
            v.map(|x| Rectangle::new([(xmin, y1), (tx(x), y1 - band * 0.85)], color.filled()))
        });
        chart
            .draw_series(bars)
            .map_err(|e| err(&e))?
            .label(name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
    }
    if let Some(r) = reference {
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(tx(r), -0.5), (tx(r), n as f64 - 0.5)],
                BLACK.stroke_width(1),
            )))
            .map_err(|e| err(&e))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// `throughput.svg`: median ratio to system of every throughput metric;
/// `memory.svg`: burst RSS at each checkpoint and the pooled footprint.
pub fn charts(dir: &Path, recs: &[Record], subtitle: &str) -> Result<(), String> {
    let peers = peers_of(recs);
    // Throughput ratios.
    let mut cats: Vec<(Mode, usize, String, String)> = recs
        .iter()
        .filter(|r| {
            matches!(r.metric.as_str(), "ops_per_s_per_thread" | "threads_per_s")
                || (r.metric == "ops_per_s" && !r.workload.starts_with("threads"))
        })
        .map(|r| {
            (
                r.mode,
                workload_rank(&r.workload),
                r.workload.clone(),
                r.metric.clone(),
            )
        })
        .collect();
    cats.sort();
    cats.dedup();
    let labels: Vec<String> = cats
        .iter()
        .map(|(m, _, w, _)| {
            format!(
                "{w} ({})",
                if *m == Mode::InProcess {
                    "one process"
                } else {
                    "installed"
                }
            )
        })
        .collect();
    let find = |mode: Mode, w: &str, metric: &str, p: &str| {
        recs.iter()
            .find(|r| r.mode == mode && r.workload == w && r.metric == metric && r.peer == p)
    };
    let series: Vec<(String, Vec<Option<f64>>)> = peers
        .iter()
        .filter(|p| *p != "system")
        .map(|p| {
            let v = cats
                .iter()
                .map(|(m, _, w, metric)| find(*m, w, metric, p).and_then(Record::ratio))
                .collect();
            (p.clone(), v)
        })
        .collect();
    bar_chart(
        &dir.join("throughput.svg"),
        &format!("Throughput / system's, median of per-round ratios ({subtitle})"),
        "times system, log scale (higher is better)",
        &labels,
        &series,
        Some(1.0),
        true,
    )?;
    // Memory.
    let mut mcats: Vec<(String, String, String)> = Vec::new(); // (workload, metric, label)
    let mut burst: Vec<String> = recs
        .iter()
        .filter(|r| r.workload == "burst" && r.metric.starts_with("rss_t"))
        .map(|r| r.metric.clone())
        .collect();
    burst.sort_by(|a, b| {
        let num = |s: &str| {
            s.trim_start_matches("rss_t")
                .trim_end_matches("s_mib")
                .parse::<f64>()
                .unwrap_or(0.0)
        };
        num(a).total_cmp(&num(b))
    });
    burst.dedup();
    mcats.push((
        "burst".into(),
        "rss_full_mib".into(),
        "burst: all live".into(),
    ));
    for b in burst {
        let t = b
            .trim_start_matches("rss_t")
            .trim_end_matches("_mib")
            .to_string();
        mcats.push(("burst".into(), b, format!("burst: freed +{t}")));
    }
    mcats.push((
        "footprint".into(),
        "peak_rss_mib".into(),
        "pooled: peak RSS".into(),
    ));
    mcats.push((
        "churn".into(),
        "rss_after_mib".into(),
        "churn: RSS after".into(),
    ));
    let labels: Vec<String> = mcats.iter().map(|c| c.2.clone()).collect();
    let series: Vec<(String, Vec<Option<f64>>)> = peers
        .iter()
        .map(|p| {
            let v = mcats
                .iter()
                .map(|(w, metric, _)| find(Mode::Installed, w, metric, p).map(Record::median))
                .collect();
            (p.clone(), v)
        })
        .collect();
    bar_chart(
        &dir.join("memory.svg"),
        &format!("Resident memory in MiB, median ({subtitle})"),
        "MiB (lower is better)",
        &labels,
        &series,
        None,
        false,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(peer: &str, round: usize, v: f64) -> Sample {
        Sample {
            mode: Mode::InProcess,
            workload: "small".into(),
            peer: peer.into(),
            round,
            group: 0,
            metrics: vec![("ops_per_s".into(), v)],
        }
    }

    #[test]
    fn ratios_are_per_round() {
        let s = vec![
            sample("system", 0, 10.0),
            sample("ours", 0, 20.0),
            sample("system", 1, 100.0),
            sample("ours", 1, 150.0),
            sample("system", 2, 1.0),
            sample("ours", 2, 3.0),
        ];
        let recs = aggregate(&s);
        let ours = recs.iter().find(|r| r.peer == "ours").unwrap();
        assert_eq!(ours.ratios, vec![2.0, 1.5, 3.0]);
        assert_eq!(ours.ratio(), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(table(&recs).contains("(2.00x)"));
        let back = from_csv(&csv(&recs)).unwrap();
        assert_eq!(back.len(), recs.len());
        assert_eq!(back[1].ratios, recs[1].ratios);
    }

    #[test]
    fn charts_render_to_svg() {
        let dir =
            std::env::temp_dir().join(format!("pool-alloc-bench-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let recs = aggregate(&[sample("system", 0, 10.0), sample("ours", 0, 20.0)]);
        charts(&dir, &recs, "test").unwrap();
        let svg = std::fs::read_to_string(dir.join("throughput.svg")).unwrap();
        assert!(svg.contains("<svg") && svg.contains("ours"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
