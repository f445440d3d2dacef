//! The leak investigator: a sampled profile of the live heap, with ages,
//! call sites and components, on by default.
//!
//! The allocator samples about one allocation per mean interval of bytes
//! allocated (default 1 MiB, `POOL_ALLOC_PROFILE_INTERVAL` or
//! [`start`]/[`stop`] at run time), with exponentially distributed gaps, and
//! keeps a record of each sampled block while it lives: size, class, birth
//! time, thread, component and call stack (see `alloc-core`'s `profile.rs`
//! for how, at what cost, and what happens when its table is full).
//! [`Profile::capture`] copies the live records and symbolises their
//! stacks here, outside the allocation path, with the `backtrace` crate;
//! estimates scale each sample by the inverse of its probability of being
//! sampled, so they are unbiased.
//!
//! ```
//! #[global_allocator]
//! static GLOBAL: pool_alloc::PoolAlloc = pool_alloc::PoolAlloc::new();
//!
//! fn main() {
//!     use pool_alloc::profile::{self, Profile};
//!     profile::start(16 << 10); // a sample per 16 KiB on average
//!     let cache = profile::component("cache");
//!     let kept: Vec<Vec<u8>> = {
//!         let _in_cache = cache.enter();
//!         (0..1000).map(|_| vec![1u8; 1000]).collect()
//!     };
//!     let p = Profile::capture();
//!     assert!(p.estimated_bytes() > 500_000.0);
//!     assert!(p.by_component().iter().any(|(name, _)| name == "cache"));
//!     println!("{p}"); // top call sites, ages per class, components
//!     let _folded = p.collapsed(); // for flame-graph tools
//!     let _svg = p.flamegraph_svg();
//!     drop(kept);
//!     profile::start(profile::DEFAULT_INTERVAL);
//! }
//! ```

use alloc_core::profile as core;
use alloc_stats::{human_bytes, LeakReport};
use std::collections::{BTreeMap, HashMap};
use std::fmt;

pub use alloc_core::profile::{interval, ProfileCounters, Sample, CAPACITY, FRAMES, LARGE_CLASS};

/// The sampler's own figures: samples taken, dropped and removed, stacks
/// walked. Each thread's heap adds its counts in batches; every heap's
/// batch not yet added is read too, so no thread's samples are missing (a
/// batch being added during this read may count twice or not at all, for
/// this read only).
pub fn counters() -> ProfileCounters {
    alloc_core::profile_counters()
}

/// The default mean sampling interval (1 MiB).
pub const DEFAULT_INTERVAL: u64 = alloc_core::config::DEFAULT_PROFILE_INTERVAL;

/// Sample about one allocation per `mean_bytes` allocated (at least 1: 1
/// samples every allocation, as far as the table's [`CAPACITY`] allows).
/// Threads switch at their next allocation slow path.
pub fn start(mean_bytes: u64) {
    core::set_interval(mean_bytes.max(1));
}

/// Stop sampling. Samples already taken stay until their blocks are freed.
pub fn stop() {
    core::set_interval(0);
}

/// A named component (an interned name): samples taken while a thread is
/// inside it ([`Component::enter`]) are attributed to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Component(u32);

/// The component `name` (interned on first use; at most
/// [`alloc_core::profile::COMPONENTS`] names, then the "none" component).
pub fn component(name: &'static str) -> Component {
    Component(core::component(name))
}

impl Component {
    /// Make this the calling thread's component until the scope is
    /// dropped (a thread-local store each way).
    pub fn enter(self) -> ComponentScope {
        ComponentScope {
            previous: core::set_component(self.0),
        }
    }

    /// Run `f` inside this component.
    pub fn run<R>(self, f: impl FnOnce() -> R) -> R {
        let _scope = self.enter();
        f()
    }

    /// The component's name ("" for none).
    pub fn name(self) -> &'static str {
        core::component_name(self.0).unwrap_or("")
    }
}

/// The calling thread is inside a component until this is dropped.
#[must_use = "the component ends when the scope is dropped"]
pub struct ComponentScope {
    previous: u32,
}

impl Drop for ComponentScope {
    fn drop(&mut self) {
        core::set_component(self.previous);
    }
}

/// One symbolised frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Demangled function name (without the hash), or the address.
    pub function: String,
    /// Source file and line, when debug info has them.
    pub location: Option<String>,
}

impl Frame {
    fn label(&self) -> String {
        match &self.location {
            Some(l) => format!("{} ({l})", self.function),
            None => self.function.clone(),
        }
    }
}

/// Frames of the allocator, of Rust's allocation and collection code and
/// of the C allocation functions: skipped at the top of a stack, so a
/// sample's call site is the code that asked for the memory.
fn internal(function: &str) -> bool {
    const PREFIXES: [&str; 13] = [
        "alloc_core::",
        "pool_alloc::",
        "alloc_preload::",
        "__rustc::",
        "__rust_",
        "__rg_",
        "__rdl_",
        "alloc::",
        "core::",
        "std::",
        "hashbrown::",
        "_Unwind",
        "0x",
    ];
    let path_internal = |f: &str| PREFIXES.iter().any(|p| f.starts_with(p));
    if let Some(rest) = function.strip_prefix('<') {
        // `<Type as Trait>::method`: the standard library's if the type is
        // (`<alloc::vec::Vec<T> as Clone>`), or if a primitive implements
        // a trait of it (`<u8 as alloc::vec::spec_from_elem::SpecFromElem>`).
        let (ty, tr) = rest.split_once(" as ").unwrap_or((rest, ""));
        return path_internal(ty) || (!ty.contains("::") && path_internal(tr));
    }
    path_internal(function)
        || matches!(
            function,
            "malloc" | "calloc" | "realloc" | "free" | "posix_memalign" | "aligned_alloc"
        )
}

/// A sampled live block, symbolised.
#[derive(Clone, Debug)]
pub struct LiveSample {
    /// The raw record.
    pub sample: Sample,
    /// Its stack, innermost first, from the call site outwards (the
    /// allocator's and the standard library's frames on top removed).
    pub stack: Vec<Frame>,
    /// How long it has lived, in milliseconds.
    pub age_ms: u64,
}

impl LiveSample {
    /// Estimated live bytes this sample stands for.
    pub fn estimated_bytes(&self) -> f64 {
        self.sample.size as f64 / self.sample.probability()
    }

    /// Estimated live blocks this sample stands for.
    pub fn estimated_blocks(&self) -> f64 {
        1.0 / self.sample.probability()
    }

    /// The call site: the first frame outside the allocator and the
    /// standard library.
    pub fn site(&self) -> String {
        self.stack
            .first()
            .map(Frame::label)
            .unwrap_or_else(|| "<unknown>".to_string())
    }

    /// The component it was allocated in ("" for none).
    pub fn component(&self) -> &'static str {
        core::component_name(self.sample.component).unwrap_or("")
    }

    /// Block size of its class (0 for the large band).
    pub fn block_size(&self) -> usize {
        if self.sample.class == LARGE_CLASS {
            0
        } else {
            alloc_core::size_class::class_block_size(self.sample.class as usize).unwrap_or(0)
        }
    }
}

/// Live memory from one call site.
#[derive(Clone, Debug)]
pub struct Site {
    /// The call site ([`LiveSample::site`]).
    pub site: String,
    /// Estimated live bytes.
    pub bytes: f64,
    /// Estimated live blocks.
    pub blocks: f64,
    /// Samples behind the estimate.
    pub samples: usize,
    /// Age of its oldest sample (ms).
    pub oldest_ms: u64,
}

/// Ages for [`Profile::ages_by_class`]: live memory older than 0 s (all of
/// it), 1 s, 10 s, 1 min and 10 min.
pub const AGE_BOUNDS_MS: [u64; 5] = [0, 1_000, 10_000, 60_000, 600_000];

/// A copy of the live heap's samples, symbolised.
#[derive(Clone, Debug)]
pub struct Profile {
    /// Every live sample, oldest first.
    pub samples: Vec<LiveSample>,
    /// The sampler's counters when it was captured.
    pub counters: ProfileCounters,
    /// The mean interval in force when it was captured (0: off).
    pub interval: u64,
}

impl Profile {
    /// Copy and symbolise the live samples now. Allocates (outside the
    /// allocation path); never blocks an allocating thread.
    pub fn capture() -> Profile {
        let mut raw = Vec::with_capacity(256);
        core::samples(&mut raw);
        let now = core::clock_ms();
        let mut symbols: HashMap<usize, Vec<Frame>> = HashMap::new();
        let mut samples: Vec<LiveSample> = raw
            .into_iter()
            .map(|s| {
                let mut stack = Vec::new();
                for &ip in &s.frames[..s.depth] {
                    let frames = symbols.entry(ip).or_insert_with(|| resolve(ip));
                    stack.extend(frames.iter().cloned());
                }
                let top = stack.iter().take_while(|f| internal(&f.function)).count();
                if top < stack.len() {
                    stack.drain(..top);
                }
                LiveSample {
                    age_ms: now.saturating_sub(s.birth_ms),
                    sample: s,
                    stack,
                }
            })
            .collect();
        // backtrace keeps the parsed debug info of every object it read
        // (tens of MiB for a big binary): give it back after each capture.
        backtrace::clear_symbol_cache();
        samples.sort_by_key(|s| std::cmp::Reverse(s.age_ms));
        Profile {
            samples,
            counters: counters(),
            interval: interval(),
        }
    }

    /// Estimated live bytes in all.
    pub fn estimated_bytes(&self) -> f64 {
        self.samples.iter().map(LiveSample::estimated_bytes).sum()
    }

    /// Live memory by call site, most bytes first.
    pub fn by_site(&self) -> Vec<Site> {
        site_table(self.samples.iter())
    }

    /// Live memory by call site among the samples of the class whose
    /// block size is `block_size` (0: the large band), most bytes first.
    pub fn by_site_in_class(&self, block_size: usize) -> Vec<Site> {
        site_table(self.samples.iter().filter(|s| s.block_size() == block_size))
    }

    /// Estimated live bytes per component, most first ("" for none).
    pub fn by_component(&self) -> Vec<(String, f64)> {
        let mut m: HashMap<&'static str, f64> = HashMap::new();
        for s in &self.samples {
            *m.entry(s.component()).or_default() += s.estimated_bytes();
        }
        let mut v: Vec<(String, f64)> = m.into_iter().map(|(k, b)| (k.to_string(), b)).collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1));
        v
    }

    /// Per class (by block size, 0 for the large band): estimated live
    /// bytes older than each of [`AGE_BOUNDS_MS`].
    pub fn ages_by_class(&self) -> BTreeMap<usize, [f64; 5]> {
        let mut m: BTreeMap<usize, [f64; 5]> = BTreeMap::new();
        for s in &self.samples {
            let row = m.entry(s.block_size()).or_default();
            for (slot, &bound) in row.iter_mut().zip(&AGE_BOUNDS_MS) {
                if s.age_ms >= bound {
                    *slot += s.estimated_bytes();
                }
            }
        }
        m
    }

    /// The collapsed-stack text flame-graph tools read: one line per
    /// distinct stack, outermost frame first, `;`-separated, then the
    /// estimated live bytes.
    pub fn collapsed(&self) -> String {
        let mut m: BTreeMap<String, f64> = BTreeMap::new();
        for s in &self.samples {
            let key: Vec<String> = s
                .stack
                .iter()
                .rev()
                .map(|f| f.function.replace(';', ":"))
                .collect();
            *m.entry(key.join(";")).or_default() += s.estimated_bytes();
        }
        let mut out = String::new();
        for (stack, bytes) in m {
            let stack = if stack.is_empty() {
                "<unknown>".to_string()
            } else {
                stack
            };
            out.push_str(&format!("{stack} {}\n", bytes.round() as u64));
        }
        out
    }

    /// A flame graph (SVG) of live memory by stack.
    pub fn flamegraph_svg(&self) -> String {
        let folded = self.collapsed();
        let mut opts = inferno::flamegraph::Options::default();
        opts.title = "Live heap (estimated bytes)".to_string();
        opts.count_name = "bytes".to_string();
        let mut out = Vec::new();
        if folded.is_empty() {
            return "<svg xmlns=\"http://www.w3.org/2000/svg\"/>\n".to_string();
        }
        match inferno::flamegraph::from_lines(&mut opts, folded.lines(), &mut out) {
            Ok(()) => String::from_utf8_lossy(&out).into_owned(),
            Err(e) => format!("<!-- flame graph failed: {e} -->\n"),
        }
    }

    /// What the profile says about the suspects of a leak report: for
    /// each suspect class, its top call sites and its oldest sample.
    pub fn explain(&self, report: &LeakReport) -> String {
        let mut out = String::new();
        for s in &report.suspects {
            out.push_str(&format!("class {}: {}\n", s.class_name(), s.reason()));
            let sites = self.by_site_in_class(s.block_size);
            let total: f64 = sites.iter().map(|x| x.bytes).sum();
            if sites.is_empty() {
                out.push_str("  no live sample in this class yet\n");
                continue;
            }
            for x in sites.iter().take(3) {
                out.push_str(&format!(
                    "  {:>5.1}% of its sampled live bytes ({}, {} samples) from {}\n",
                    100.0 * x.bytes / total.max(1.0),
                    human_bytes(x.bytes as u64),
                    x.samples,
                    x.site
                ));
            }
            if let Some(old) = self.samples.iter().find(|x| x.block_size() == s.block_size) {
                let comp = match old.component() {
                    "" => String::new(),
                    c => format!(", component {c}"),
                };
                out.push_str(&format!(
                    "  oldest sample: {:.1} s old, {} B from {} on thread {}{}\n",
                    old.age_ms as f64 / 1000.0,
                    old.sample.size,
                    old.site(),
                    old.sample.thread,
                    comp
                ));
            }
        }
        out
    }
}

fn site_table<'a>(samples: impl Iterator<Item = &'a LiveSample>) -> Vec<Site> {
    let mut m: HashMap<String, Site> = HashMap::new();
    for s in samples {
        let site = s.site();
        let e = m.entry(site.clone()).or_insert(Site {
            site,
            bytes: 0.0,
            blocks: 0.0,
            samples: 0,
            oldest_ms: 0,
        });
        e.bytes += s.estimated_bytes();
        e.blocks += s.estimated_blocks();
        e.samples += 1;
        e.oldest_ms = e.oldest_ms.max(s.age_ms);
    }
    let mut v: Vec<Site> = m.into_values().collect();
    v.sort_by(|a, b| b.bytes.total_cmp(&a.bytes));
    v
}

/// Symbolise one return address (the frames inlined there, innermost
/// first). A return address points after the call: look up `ip - 1`.
fn resolve(ip: usize) -> Vec<Frame> {
    let mut frames = Vec::new();
    backtrace::resolve(ip.saturating_sub(1) as *mut std::ffi::c_void, |sym| {
        let function = sym
            .name()
            .map(|n| format!("{n:#}"))
            .unwrap_or_else(|| format!("{ip:#x}"));
        let location = match (sym.filename(), sym.lineno()) {
            (Some(f), Some(l)) => Some(format!("{}:{l}", short_path(f))),
            _ => None,
        };
        frames.push(Frame { function, location });
    });
    if frames.is_empty() {
        frames.push(Frame {
            function: format!("{ip:#x}"),
            location: None,
        });
    }
    frames
}

/// The last two components of a source path.
fn short_path(p: &std::path::Path) -> String {
    let parts: Vec<_> = p.iter().collect();
    let tail = &parts[parts.len().saturating_sub(2)..];
    tail.iter()
        .map(|s| s.to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

fn age(ms: u64) -> String {
    match ms {
        0..=59_999 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..=3_599_999 => format!("{:.1} min", ms as f64 / 60_000.0),
        _ => format!("{:.1} h", ms as f64 / 3_600_000.0),
    }
}

fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let t: String = s.chars().take(n - 1).collect();
        format!("{t}…")
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let blocks: f64 = self.samples.iter().map(LiveSample::estimated_blocks).sum();
        writeln!(
            f,
            "live heap profile: {} samples at a mean interval of {}, estimated {} in {:.0} blocks",
            self.samples.len(),
            human_bytes(self.interval),
            human_bytes(self.estimated_bytes() as u64),
            blocks
        )?;
        if self.counters.dropped > 0 {
            writeln!(
                f,
                "  ({} samples dropped: the table of {CAPACITY} was full; estimates are low)",
                self.counters.dropped
            )?;
        }
        writeln!(f, "\ntop call sites (estimated live memory):")?;
        writeln!(
            f,
            "{:>10} {:>9} {:>7} {:>8}  site",
            "bytes", "blocks", "samples", "oldest"
        )?;
        for s in self.by_site().iter().take(10) {
            writeln!(
                f,
                "{:>10} {:>9.0} {:>7} {:>8}  {}",
                human_bytes(s.bytes as u64),
                s.blocks,
                s.samples,
                age(s.oldest_ms),
                cut(&s.site, 58)
            )?;
        }
        writeln!(
            f,
            "\nage of live memory by class (estimated bytes older than):"
        )?;
        writeln!(
            f,
            "{:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
            "class", "all", "1 s", "10 s", "1 min", "10 min"
        )?;
        for (bs, row) in self.ages_by_class() {
            let name = if bs == 0 {
                "large".to_string()
            } else {
                human_bytes(bs as u64)
            };
            write!(f, "{name:>10}")?;
            for v in row {
                write!(f, " {:>10}", human_bytes(v as u64))?;
            }
            writeln!(f)?;
        }
        let comps = self.by_component();
        if comps.iter().any(|(n, _)| !n.is_empty()) {
            writeln!(f, "\nby component:")?;
            for (name, bytes) in comps {
                let name = if name.is_empty() { "(none)" } else { &name };
                writeln!(f, "{:>10}  {name}", human_bytes(bytes as u64))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_frames_are_the_allocators_and_std() {
        assert!(internal("alloc_core::heap::alloc::alloc_slow"));
        assert!(internal(
            "<alloc::vec::Vec<T> as core::clone::Clone>::clone"
        ));
        assert!(internal("malloc"));
        assert!(internal("__rustc::__rust_alloc"));
        assert!(internal(
            "<u8 as alloc::vec::spec_from_elem::SpecFromElem>::from_elem"
        ));
        assert!(!internal("<my::Cache as core::clone::Clone>::clone"));
        assert!(!internal("my_service::handler"));
        assert!(!internal("leak_hunt::register"));
    }

    #[test]
    fn short_paths_keep_two_parts() {
        assert_eq!(
            short_path(std::path::Path::new("/a/b/src/x.rs")),
            "src/x.rs"
        );
    }
}
