//! The comparison: command line, child processes, interleaving, progress.
//!
//! One binary does everything, by subcommand:
//!
//! * `run`: the driver. Spawns the children below, interleaves them, prints
//!   the table and writes CSV, JSON, markdown and SVG.
//! * `inproc WORKLOAD`: one-process mode; calls every compiled-in peer
//!   through `GlobalAlloc`, alternating A B C D for `--rounds` rounds.
//! * `worker WORKLOAD`: one run against the installed `#[global_allocator]`.
//!
//! Children print `RESULT peer=NAME round=R key=value ...` lines on stdout.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::peers::{self, Peer, ALL_NAMES};
use crate::report::{self, Mode, Sample};
use crate::sys::Machine;
use crate::workloads::{self, needs_installed, Metrics, Params, WORKLOADS};

/// Parsed `--flag value` arguments after the subcommand.
#[derive(Debug, Default)]
pub struct Args {
    pub positional: Vec<String>,
    pub flags: BTreeMap<String, String>,
}

impl Args {
    /// Splits `args` into positionals and `--flag [value]` pairs.
    pub fn parse(args: &[String]) -> Self {
        let mut a = Args::default();
        let mut i = 0;
        while i < args.len() {
            if let Some(name) = args[i].strip_prefix("--") {
                if let Some((k, v)) = name.split_once('=') {
                    a.flags.insert(k.into(), v.into());
                } else if i + 1 < args.len() && !args[i + 1].starts_with("--") && !is_switch(name) {
                    a.flags.insert(name.into(), args[i + 1].clone());
                    i += 1;
                } else {
                    a.flags.insert(name.into(), String::new());
                }
            } else {
                a.positional.push(args[i].clone());
            }
            i += 1;
        }
        a
    }

    pub fn has(&self, k: &str) -> bool {
        self.flags.contains_key(k)
    }

    pub fn get<T: std::str::FromStr>(&self, k: &str) -> Result<Option<T>, String> {
        self.flags
            .get(k)
            .map(|v| v.parse().map_err(|_| format!("bad value for --{k}: {v:?}")))
            .transpose()
    }

    pub fn list(&self, k: &str) -> Option<Vec<String>> {
        self.flags.get(k).map(|v| {
            v.split(',')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
    }
}

fn is_switch(name: &str) -> bool {
    matches!(
        name,
        "quick" | "rss" | "no-inproc" | "no-installed" | "help"
    )
}

/// Reads workload parameters from `args` on top of `base`.
pub fn params_from(args: &Args, mut p: Params) -> Result<Params, String> {
    if let Some(v) = args.get("ops")? {
        p.ops = v;
    }
    if let Some(v) = args.get("ws")? {
        p.ws = v;
    }
    if let Some(v) = args.get("threads")? {
        p.threads = v;
    }
    if let Some(v) = args.get("seed")? {
        p.seed = v;
    }
    if let Some(v) = args.get("total-mib")? {
        p.total_mib = v;
    }
    if let Some(v) = args.list("delays") {
        p.delays = v
            .iter()
            .map(|s| s.parse().map_err(|_| format!("bad delay {s}")))
            .collect::<Result<_, _>>()?;
    }
    p.measure_rss |= args.has("rss");
    Ok(p)
}

fn params_args(p: &Params) -> Vec<String> {
    let delays: Vec<String> = p.delays.iter().map(|d| d.to_string()).collect();
    let mut v: Vec<String> = [
        ("--ops", p.ops.to_string()),
        ("--ws", p.ws.to_string()),
        ("--threads", p.threads.to_string()),
        ("--seed", p.seed.to_string()),
        ("--total-mib", p.total_mib.to_string()),
        ("--delays", delays.join(",")),
    ]
    .into_iter()
    .flat_map(|(k, v)| [k.to_string(), v])
    .collect();
    if p.measure_rss {
        v.push("--rss".into());
    }
    v
}

fn result_line(peer: &str, round: usize, m: &Metrics) -> String {
    let mut s = format!("RESULT peer={peer} round={round}");
    for (k, v) in m {
        s.push_str(&format!(" {k}={v}"));
    }
    s
}

/// Parses the `RESULT` lines of a child's stdout.
pub fn parse_results(out: &str) -> Vec<(String, usize, Metrics)> {
    out.lines()
        .filter_map(|l| l.strip_prefix("RESULT "))
        .filter_map(|l| {
            let mut peer = None;
            let mut round = 0;
            let mut m = Metrics::new();
            for kv in l.split_whitespace() {
                let (k, v) = kv.split_once('=')?;
                match k {
                    "peer" => peer = Some(v.to_string()),
                    "round" => round = v.parse().ok()?,
                    _ => m.push((k.to_string(), v.parse().ok()?)),
                }
            }
            Some((peer?, round, m))
        })
        .collect()
}

fn headline(m: &Metrics) -> String {
    m.iter()
        .find(|(k, _)| report::metric_info(k).headline)
        .map_or(String::new(), |(k, v)| {
            format!("{} {k}", report::fmt_value(*v, report::metric_info(k).unit))
        })
}

/// `worker WORKLOAD [params]`: one run against the installed allocator.
pub fn worker(args: &Args) -> Result<(), String> {
    let w = args.positional.first().ok_or("worker: which workload?")?;
    let p = params_from(args, Params::default())?;
    let m = workloads::run(&peers::Installed, w, &p)?;
    println!("{}", result_line(peers::installed_name(), 0, &m));
    // The leak investigator's own counters (ours installed): how many
    // samples a run took and how their stacks were captured.
    if peers::installed_name() == "ours" && std::env::var_os("POOL_ALLOC_BENCH_PROFILE").is_some() {
        println!("PROFILE {:?}", pool_alloc::profile::counters());
    }
    Ok(())
}

/// `inproc WORKLOAD [--rounds R] [--peers a,b] [--warmup 0|1] [params]`.
pub fn inproc(args: &Args) -> Result<(), String> {
    let w = args.positional.first().ok_or("inproc: which workload?")?;
    if needs_installed(w) {
        return Err(format!("{w} needs the allocator installed: use `worker`"));
    }
    let p = params_from(args, Params::default())?;
    let rounds: usize = args.get("rounds")?.unwrap_or(5);
    let warmup: usize = args.get("warmup")?.unwrap_or(1);
    let list: Vec<Peer> = match args.list("peers") {
        None => Peer::compiled(),
        Some(names) => names
            .iter()
            .map(|n| Peer::by_name(n).ok_or(format!("peer {n} is not compiled into this binary")))
            .collect::<Result<_, _>>()?,
    };
    // NB: `START` lines tell the driver which peer was running if this
    // process dies, so it can rerun the others without it.
    if warmup > 0 {
        let mut wp = p.clone();
        wp.ops = (p.ops / 10).max(1);
        for &peer in &list {
            println!("START peer={}", peer.name());
            crate::with_peer!(peer, |a| workloads::run(a, w, &wp))?;
        }
    }
    for round in 0..rounds {
        let mut line = String::new();
        for &peer in &list {
            println!("START peer={}", peer.name());
            let m = crate::with_peer!(peer, |a| workloads::run(a, w, &p))?;
            println!("{}", result_line(peer.name(), round, &m));
            line.push_str(&format!(" {}={}", peer.name(), headline(&m)));
        }
        eprintln!("    in-process {w} round {}/{rounds}:{line}", round + 1);
    }
    Ok(())
}

/// Spawns `cmd` with stdout captured; kills it after `limit`.
fn spawn(cmd: &mut Command) -> Result<Child, String> {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("spawn {cmd:?}: {e}"))
}

/// How a child ended badly: why, and what it had printed.
struct ChildError {
    why: String,
    stdout: String,
}

fn wait(child: Child, limit: Duration, what: &str) -> Result<String, String> {
    wait_full(child, limit, what).map_err(|e| e.why)
}

fn wait_full(mut child: Child, limit: Duration, what: &str) -> Result<String, ChildError> {
    let fail = |why: String, stdout: String| ChildError { why, stdout };
    let Some(mut stdout) = child.stdout.take() else {
        return Err(fail("no stdout".into(), String::new()));
    };
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let t = Instant::now();
    let status = loop {
        match child.try_wait() {
            Err(e) => return Err(fail(e.to_string(), String::new())),
            Ok(Some(s)) => break s,
            Ok(None) if t.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                let out = reader.join().unwrap_or_default();
                return Err(fail(format!("{what}: killed after {limit:?}"), out));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
        }
    };
    let out = reader.join().unwrap_or_default();
    if status.success() {
        Ok(out)
    } else {
        Err(fail(format!("{what}: {status}"), out))
    }
}

/// Whether an in-process child printed all `rounds × peers` results.
fn complete(stdout: &str, rounds: usize, peers: usize) -> bool {
    let last = stdout.lines().rev().find(|l| !l.trim().is_empty());
    last.is_some_and(|l| l.starts_with("RESULT ")) && parse_results(stdout).len() == rounds * peers
}

/// What the `run` driver does.
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub quick: bool,
    pub rounds: usize,
    pub burst_rounds: usize,
    pub bins: PathBuf,
    pub out: PathBuf,
    pub workloads: Vec<String>,
    pub peers: Vec<String>,
    pub max_idle: f64,
    pub scale: f64,
    pub inproc: bool,
    pub installed: bool,
    pub timeout: Duration,
}

impl RunConfig {
    pub fn from_args(args: &Args) -> Result<Self, String> {
        let quick = args.has("quick");
        let here = Path::new(env!("CARGO_MANIFEST_DIR"));
        let out = args.get::<PathBuf>("out")?.unwrap_or_else(|| {
            if quick {
                here.join("results/quick")
            } else {
                here.join("results")
            }
        });
        let exe_dir = std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_default();
        Ok(RunConfig {
            quick,
            rounds: args.get("rounds")?.unwrap_or(5),
            burst_rounds: args
                .get("burst-rounds")?
                .unwrap_or(if quick { 1 } else { 3 }),
            bins: args.get("bins")?.unwrap_or(exe_dir),
            out,
            workloads: args
                .list("only")
                .unwrap_or_else(|| WORKLOADS.iter().map(|s| s.to_string()).collect()),
            peers: args
                .list("peers")
                .unwrap_or_else(|| ALL_NAMES.iter().map(|s| s.to_string()).collect()),
            max_idle: args.get("max-idle")?.unwrap_or(1.0),
            scale: args.get("scale")?.unwrap_or(1.0),
            inproc: !args.has("no-inproc"),
            installed: !args.has("no-installed"),
            timeout: Duration::from_secs(args.get("timeout")?.unwrap_or(600)),
        })
    }

    /// The parameters of `workload` in this run.
    pub fn params(&self, workload: &str) -> Params {
        let q = self.quick;
        let pick = |quick: u64, full: u64| if q { quick } else { full };
        let mut p = Params::default();
        let (ops, ws) = match workload {
            "small" => (pick(400_000, 3_000_000), 10_000),
            "pooled" | "pooled-limit" | "footprint" => (pick(8_000, 40_000), 1_000),
            "mixed" => (pick(30_000, 200_000), 1_000),
            "xthread" => (pick(200_000, 1_000_000), 0),
            w if w.starts_with("threads-") => (pick(200_000, 1_000_000), 10_000),
            "churn" => (pick(2_000, 10_000), 0),
            "latency-small" => (pick(200_000, 1_000_000), 10_000),
            "latency-pooled" => (pick(4_000, 20_000), 1_000),
            _ => (p.ops, p.ws),
        };
        p.ops = ((ops as f64 * self.scale) as u64).max(1);
        p.ws = ws;
        p.total_mib = ((1024.0 * self.scale.min(1.0)) as usize).max(1);
        p.delays = if q {
            vec![0.0, 0.5, 1.0, 2.0]
        } else {
            vec![0.0, 1.0, 10.0, 2.0 * self.max_idle]
        };
        p
    }
}

struct Progress {
    done: usize,
    total: usize,
    start: Instant,
}

impl Progress {
    fn tick(&mut self, what: &str) {
        self.done += 1;
        let el = self.start.elapsed().as_secs();
        eprintln!(
            "[{:>4}/{}] {:>3}:{:02} {what}",
            self.done,
            self.total,
            el / 60,
            el % 60
        );
    }
}

/// The whole comparison.
pub fn run(args: &Args) -> Result<(), String> {
    let cfg = RunConfig::from_args(args)?;
    let mut machine = Machine::detect();
    // build.sh records what our allocator was built from (HEAD, HEAD+dirty,
    // or the BENCH_REV snapshot); that, not the tree now, is what ran.
    if let Ok(c) = std::fs::read_to_string(cfg.bins.join("commit.txt")) {
        machine.commit = c.trim().to_string();
    }
    let command = format!(
        "pool-alloc-bench {}",
        std::env::args().skip(1).collect::<Vec<_>>().join(" ")
    );
    eprintln!("machine: {}", machine.summary());
    let inproc_bin = std::env::current_exe().map_err(|e| e.to_string())?;
    let v2_bin = cfg.bins.join("bench-inproc-v2");
    let want = |p: &str| cfg.peers.iter().any(|x| x == p);
    let installed: Vec<(String, PathBuf)> = ALL_NAMES
        .iter()
        .filter(|p| want(p))
        .map(|p| (p.to_string(), cfg.bins.join(format!("bench-{p}"))))
        .filter(|(p, path)| {
            let ok = path.exists();
            if !ok && cfg.installed {
                eprintln!(
                    "warning: no installed binary for {p} at {} (skipped)",
                    path.display()
                );
            }
            ok
        })
        .collect();
    let inproc_peers: Vec<String> = Peer::compiled()
        .into_iter()
        .map(|p| p.name().to_string())
        .filter(|p| want(p))
        .collect();
    let use_v2 = cfg.inproc && want("mimalloc-v2") && v2_bin.exists();
    let in_w: Vec<&String> = cfg
        .workloads
        .iter()
        .filter(|w| !needs_installed(w))
        .collect();
    let inst_w: Vec<&String> = cfg
        .workloads
        .iter()
        .filter(|w| !matches!(w.as_str(), "burst" | "footprint"))
        .collect();
    let burst = cfg.workloads.iter().any(|w| w == "burst");
    let mut total = 0;
    if cfg.inproc {
        total += in_w.len() * (1 + usize::from(use_v2));
    }
    if cfg.installed {
        total +=
            inst_w.len() * cfg.rounds * installed.len() + usize::from(burst) * cfg.burst_rounds;
    }
    let mut prog = Progress {
        done: 0,
        total,
        start: Instant::now(),
    };
    let mut samples: Vec<Sample> = Vec::new();
    let mut failures: Vec<String> = Vec::new();

    if cfg.inproc {
        for w in &in_w {
            let p = cfg.params(w);
            let mut runs = vec![(inproc_bin.clone(), inproc_peers.clone(), 0)];
            if use_v2 {
                runs.push((
                    v2_bin.clone(),
                    vec!["system".into(), "mimalloc-v2".into()],
                    1,
                ));
            }
            for (bin, mut list, group) in runs {
                let what = format!("in-process {w} [{}]", list.join(","));
                // A peer that kills the process is dropped and the rest rerun.
                loop {
                    let mut cmd = Command::new(&bin);
                    cmd.arg("inproc")
                        .arg(w)
                        .args([
                            "--rounds",
                            &cfg.rounds.to_string(),
                            "--peers",
                            &list.join(","),
                        ])
                        .args(params_args(&p));
                    let res = spawn(&mut cmd)
                        .map_err(|why| ChildError {
                            why,
                            stdout: String::new(),
                        })
                        .and_then(|c| wait_full(c, cfg.timeout, &what));
                    match res {
                        Ok(out) => {
                            file_inproc(&mut samples, &out, w, group);
                            break;
                        }
                        // Died after its last result (at exit): keep them.
                        Err(e) if complete(&e.stdout, cfg.rounds, list.len()) => {
                            let msg = format!("{} after printing every result (kept)", e.why);
                            eprintln!("FAILED {msg}");
                            failures.push(msg);
                            file_inproc(&mut samples, &e.stdout, w, group);
                            break;
                        }
                        Err(e) => {
                            let culprit = e
                                .stdout
                                .lines()
                                .filter_map(|l| l.strip_prefix("START peer="))
                                .next_back()
                                .map(str::to_string);
                            let msg = format!(
                                "{} (while running {})",
                                e.why,
                                culprit.as_deref().unwrap_or("?")
                            );
                            eprintln!("FAILED {msg}");
                            failures.push(msg);
                            match culprit {
                                Some(c) if c != "system" && list.len() > 2 => {
                                    list.retain(|p| *p != c)
                                }
                                _ => break,
                            }
                            eprintln!("    rerunning in-process {w} without the failed peer");
                        }
                    }
                }
                prog.tick(&what);
            }
        }
    }

    if cfg.installed {
        for w in &inst_w {
            let mut p = cfg.params(w);
            p.measure_rss = true;
            for round in 0..cfg.rounds {
                for (peer, bin) in &installed {
                    let what = format!("installed {w} round {}/{} {peer}", round + 1, cfg.rounds);
                    let mut cmd = Command::new(bin);
                    cmd.arg("worker").arg(w).args(params_args(&p));
                    match spawn(&mut cmd).and_then(|c| wait(c, cfg.timeout, &what)) {
                        Ok(out) => {
                            for (name, _, metrics) in parse_results(&out) {
                                prog.tick(&format!("{what}: {}", headline(&metrics)));
                                push_installed(&mut samples, w, &name, round, metrics);
                            }
                        }
                        Err(e) => {
                            prog.tick(&format!("{what}: FAILED"));
                            eprintln!("FAILED {e}");
                            failures.push(e);
                        }
                    }
                }
            }
        }
        if burst {
            // NB: burst is mostly sleeping and reads only its own RSS, so all
            // peers run at once (one process each); this keeps a full run
            // short. Memory: 1 GiB per peer at the peak.
            let mut p = cfg.params("burst");
            p.measure_rss = true;
            for round in 0..cfg.burst_rounds {
                let what = format!(
                    "installed burst round {}/{} (all peers at once)",
                    round + 1,
                    cfg.burst_rounds
                );
                let children: Vec<_> = installed
                    .iter()
                    .map(|(peer, bin)| {
                        let mut cmd = Command::new(bin);
                        cmd.arg("worker").arg("burst").args(params_args(&p));
                        (peer.clone(), spawn(&mut cmd))
                    })
                    .collect();
                let mut line = String::new();
                for (peer, child) in children {
                    match child.and_then(|c| wait(c, cfg.timeout, &format!("burst {peer}"))) {
                        Ok(out) => {
                            for (name, _, metrics) in parse_results(&out) {
                                let last =
                                    metrics.iter().rev().find(|(k, _)| k.starts_with("rss_t"));
                                if let Some((k, v)) = last {
                                    line.push_str(&format!(" {name}: {k}={v:.1}"));
                                }
                                push_installed(&mut samples, "burst", &name, round, metrics);
                            }
                        }
                        Err(e) => {
                            eprintln!("FAILED {e}");
                            failures.push(e);
                        }
                    }
                }
                prog.tick(&format!("{what}:{line}"));
            }
        }
    }

    let recs = report::aggregate(&samples);
    let table = report::table(&recs);
    let mode = if cfg.quick { "quick" } else { "full" };
    let header = format!(
        "{mode} run, {} rounds (burst {}), {}\n\nCommand: `{command}`\n",
        cfg.rounds,
        cfg.burst_rounds,
        machine.summary()
    );
    println!("\n{header}\n{table}");
    if !failures.is_empty() {
        println!("Failures:");
        for f in &failures {
            println!("* {f}");
        }
    }
    std::fs::create_dir_all(&cfg.out).map_err(|e| format!("{}: {e}", cfg.out.display()))?;
    let write = |name: &str, body: &str| {
        let path = cfg.out.join(name);
        std::fs::write(&path, body).map_err(|e| format!("{}: {e}", path.display()))
    };
    write("results.csv", &report::csv(&recs))?;
    write("results.json", &report::json(&machine, &command, &recs))?;
    write("results.md", &format!("{header}\n{table}"))?;
    let subtitle = format!(
        "{mode} run, {} rounds (burst {}), {}, commit {}",
        cfg.rounds, cfg.burst_rounds, machine.date, machine.commit
    );
    report::charts(&cfg.out, &recs, &subtitle)?;
    eprintln!(
        "wrote {}/results.{{csv,json,md}}, throughput.svg, memory.svg",
        cfg.out.display()
    );
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!("{} run(s) failed", failures.len()))
    }
}

/// Files an installed sample; `pooled`'s memory figures become `footprint`.
fn push_installed(samples: &mut Vec<Sample>, w: &str, peer: &str, round: usize, metrics: Metrics) {
    let (foot, rest): (Metrics, Metrics) = metrics.into_iter().partition(|(k, _)| {
        w == "pooled" && matches!(k.as_str(), "footprint" | "peak_rss_mib" | "peak_live_mib")
    });
    for (workload, metrics) in [(w, rest), ("footprint", foot)] {
        if !metrics.is_empty() {
            samples.push(Sample {
                mode: Mode::Installed,
                workload: workload.to_string(),
                peer: peer.to_string(),
                round,
                group: 0,
                metrics,
            });
        }
    }
}

/// `report DIR`: redraws `results.md` (keeping its header) and the charts
/// from `DIR/results.csv`, e.g. after a change to the table or the charts.
pub fn redraw(args: &Args) -> Result<(), String> {
    let dir = PathBuf::from(args.positional.first().ok_or("report: which directory?")?);
    let read = |name: &str| {
        std::fs::read_to_string(dir.join(name))
            .map_err(|e| format!("{}: {e}", dir.join(name).display()))
    };
    let recs = report::from_csv(&read("results.csv")?)?;
    let old = read("results.md").unwrap_or_default();
    let header = old
        .split("\n| mode |")
        .next()
        .unwrap_or_default()
        .trim_end()
        .to_string();
    let table = report::table(&recs);
    std::fs::write(dir.join("results.md"), format!("{header}\n\n{table}"))
        .map_err(|e| e.to_string())?;
    let first = header.lines().next().unwrap_or_default();
    let parts: Vec<&str> = first.split(" | ").collect();
    let subtitle = format!("{}, {}", parts[0], parts[parts.len() - 1]);
    report::charts(&dir, &recs, &subtitle)?;
    println!("{header}\n\n{table}");
    Ok(())
}

/// Files the one-process results a child printed.
fn file_inproc(samples: &mut Vec<Sample>, out: &str, workload: &str, group: usize) {
    for (peer, round, metrics) in parse_results(out) {
        samples.push(Sample {
            mode: Mode::InProcess,
            workload: workload.to_string(),
            peer,
            round,
            group,
            metrics,
        });
    }
}

/// Prints usage.
pub fn usage() -> &'static str {
    "usage:
  pool-alloc-bench run [--quick] [--rounds N] [--burst-rounds N] [--bins DIR] [--out DIR]
                       [--only w1,w2] [--peers p1,p2] [--max-idle SECS] [--scale F]
                       [--no-inproc] [--no-installed] [--timeout SECS]
  pool-alloc-bench inproc WORKLOAD [--rounds N] [--peers p1,p2] [--warmup 0|1] [PARAMS]
  pool-alloc-bench worker WORKLOAD [PARAMS]
  pool-alloc-bench report DIR     (redraw DIR/results.md and the charts from DIR/results.csv)
PARAMS: --ops N --ws N --threads N --seed N --total-mib N --delays a,b,c --rss
workloads: pooled small mixed xthread threads-N churn burst latency-small latency-pooled footprint
Normally run through benches/run.sh, which builds one binary per installed allocator."
}
