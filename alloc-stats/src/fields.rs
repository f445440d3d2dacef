//! The stat fields, listed once.
//!
//! Each figure is one line in a [`stat_struct!`] list: its name, type,
//! kind, unit and help text. From that line come the struct field (with
//! the help as its doc), its place in `FIELDS`, its merge, its JSON member
//! and its Prometheus series (name, HELP, TYPE: `_total` counters, gauges).
//! Adding a figure is adding a line.

/// How a figure behaves: how it merges and how Prometheus types it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Names the row (a class index, a block size): not exported as a
    /// series, kept on merge.
    Label,
    /// Only grows: a Prometheus `counter` named `..._total`; merged by
    /// adding.
    Counter,
    /// A level now: a Prometheus `gauge`; merged by adding.
    Gauge,
    /// The highest level seen: a `gauge`; merged by taking the larger.
    Peak,
    /// A ratio or level that does not add up (utilisation, a pressure
    /// level): a `gauge`; merged by taking the larger.
    Level,
}

/// One figure of a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    /// Its name (the struct field; the JSON member; the series name's
    /// stem).
    pub name: &'static str,
    /// How it behaves.
    pub kind: Kind,
    /// `bytes`, `blocks`, `slabs`, `ms`, `ratio`, or empty.
    pub unit: &'static str,
    /// One line saying what it is.
    pub help: &'static str,
}

impl Field {
    /// Its Prometheus series name under `prefix` (`pool_alloc_`,
    /// `pool_alloc_class_`, ...): counters get `_total`.
    pub fn series(&self, prefix: &str) -> String {
        match self.kind {
            Kind::Counter => format!("{prefix}{}_total", self.name),
            _ => format!("{prefix}{}", self.name),
        }
    }

    /// Its Prometheus type.
    pub fn prom_type(&self) -> &'static str {
        match self.kind {
            Kind::Counter => "counter",
            _ => "gauge",
        }
    }
}

/// A number a figure can be: written to JSON as itself, and to Prometheus
/// as a float.
pub trait Figure: Copy {
    /// As `f64`, for Prometheus and models.
    fn as_f64(self) -> f64;
    /// Written as a JSON number.
    fn json(self, out: &mut String);
    /// `self` merged with `other` for `kind`.
    fn merged(self, other: Self, kind: Kind) -> Self;
}

macro_rules! int_figure {
    ($($t:ty),*) => {$(
        impl Figure for $t {
            fn as_f64(self) -> f64 {
                self as f64
            }
            fn json(self, out: &mut String) {
                use std::fmt::Write as _;
                let _ = write!(out, "{self}");
            }
            fn merged(self, other: Self, kind: Kind) -> Self {
                match kind {
                    Kind::Label => self,
                    Kind::Counter | Kind::Gauge => self.wrapping_add(other),
                    Kind::Peak | Kind::Level => self.max(other),
                }
            }
        }
    )*};
}
int_figure!(u8, u64, usize);

impl Figure for f64 {
    fn as_f64(self) -> f64 {
        self
    }
    fn json(self, out: &mut String) {
        use std::fmt::Write as _;
        let _ = write!(out, "{:.4}", if self.is_finite() { self } else { 0.0 });
    }
    fn merged(self, other: Self, kind: Kind) -> Self {
        match kind {
            Kind::Label => self,
            Kind::Counter | Kind::Gauge => self + other,
            Kind::Peak | Kind::Level => self.max(other),
        }
    }
}

/// Define a stats struct from its list of figures, plus fields that are not
/// figures (`extra`), and generate `FIELDS`, `values`, `merge_figures` and
/// `write_json_figures`.
macro_rules! stat_struct {
    (
        $(#[$meta:meta])*
        pub struct $S:ident {
            $( ($name:ident: $ty:ty, $kind:ident, $unit:literal, $help:literal) ),* $(,)?
        }
        extra {
            $( $(#[$xmeta:meta])* $xname:ident: $xty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        pub struct $S {
            $( #[doc = $help] pub $name: $ty, )*
            $( $(#[$xmeta])* pub $xname: $xty, )*
        }

        impl $S {
            /// Every figure of the struct, in order.
            pub const FIELDS: &'static [$crate::fields::Field] = &[
                $( $crate::fields::Field {
                    name: stringify!($name),
                    kind: $crate::fields::Kind::$kind,
                    unit: $unit,
                    help: $help,
                }, )*
            ];

            /// The figures as numbers, in [`Self::FIELDS`] order.
            pub fn values(&self) -> Vec<f64> {
                vec![ $( $crate::fields::Figure::as_f64(self.$name) ),* ]
            }

            /// Merge the figures of `other` into `self`: counters and gauges
            /// add, peaks and levels take the larger, labels stay.
            pub fn merge_figures(&mut self, other: &Self) {
                $( self.$name = $crate::fields::Figure::merged(
                    self.$name, other.$name, $crate::fields::Kind::$kind); )*
            }

            /// The figures as JSON members (`"name":value,...`), no braces.
            pub fn write_json_figures(&self, out: &mut String) {
                let mut first = true;
                $(
                    if !first {
                        out.push(',');
                    }
                    first = false;
                    out.push('"');
                    out.push_str(stringify!($name));
                    out.push_str("\":");
                    $crate::fields::Figure::json(self.$name, out);
                )*
                let _ = first;
            }
        }
    };
}

pub(crate) use stat_struct;

#[cfg(test)]
mod tests {
    use crate::{ClassStats, LargeStats, ReclaimStats, Snapshot};

    fn sample() -> Snapshot {
        let mut s = Snapshot {
            live_bytes: 7,
            returned_bytes: 9,
            ..Default::default()
        };
        for c in 0..3 {
            s.classes.push(ClassStats {
                class: c,
                block_size: 16 << c,
                allocs: 10,
                frees: 4,
                live_blocks: 6,
                peak_live_bytes: 100 * c as u64,
                ..Default::default()
            });
        }
        s
    }

    /// Every figure of every list shows up in JSON and Prometheus (so a
    /// new line in a list is exported without more edits), with its type.
    #[test]
    fn every_figure_is_exported() {
        let s = sample();
        let json = s.to_json();
        let prom = s.to_prometheus();
        for (prefix, fields) in [
            ("pool_alloc_", Snapshot::FIELDS),
            ("pool_alloc_", ReclaimStats::FIELDS),
            ("pool_alloc_large_", LargeStats::FIELDS),
            ("pool_alloc_class_", ClassStats::FIELDS),
        ] {
            for f in fields {
                assert!(!f.help.is_empty(), "{} has help", f.name);
                assert!(
                    json.contains(&format!("\"{}\":", f.name)),
                    "{} in JSON",
                    f.name
                );
                if f.kind != super::Kind::Label {
                    let series = f.series(prefix);
                    let ty = format!("# TYPE {series} {}\n", f.prom_type());
                    assert!(prom.contains(&ty), "{ty} in {prom}");
                    assert_eq!(series.ends_with("_total"), f.kind == super::Kind::Counter);
                }
            }
        }
    }

    #[test]
    fn merging_adds_counters_and_keeps_the_larger_peak() {
        let mut a = sample();
        let mut b = sample();
        // Theirs larger in one class, smaller in another: the merge must
        // take the larger each time (not mine, not theirs, not the sum).
        b.classes[1].peak_live_bytes = 150;
        b.classes[2].peak_live_bytes = 50;
        b.classes[1].block_size = 999;
        b.taken_at_ms = a.taken_at_ms + 7;
        a.merge(&b);
        assert_eq!(a.live_bytes, 14);
        assert_eq!(a.classes[1].allocs, 20);
        assert_eq!(a.classes[1].block_size, 32, "labels stay");
        assert_eq!(a.classes[1].peak_live_bytes, 150, "peaks take the larger");
        assert_eq!(a.classes[2].peak_live_bytes, 200, "peaks take the larger");
        assert_eq!(a.taken_at_ms, b.taken_at_ms, "levels take the larger");
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serde_json_agrees_with_to_json() {
        let s = sample();
        let ours: serde_json::Value = serde_json::from_str(&s.to_json()).unwrap();
        let theirs: serde_json::Value = serde_json::to_value(&s).unwrap();
        assert_eq!(ours["live_bytes"], theirs["live_bytes"]);
        assert_eq!(ours["classes"][2]["allocs"], theirs["classes"][2]["allocs"]);
        let back: Snapshot = serde_json::from_value(theirs).unwrap();
        assert_eq!(back, s);
    }

    /// Our hand-made JSON is valid JSON.
    #[test]
    fn to_json_parses() {
        let v: serde_json::Value = serde_json::from_str(&sample().to_json()).expect("valid JSON");
        assert_eq!(v["classes"].as_array().unwrap().len(), 3);
        assert_eq!(v["reclaim"]["pressure"], "low");
    }
}
