//! Programs nobody wrote for this allocator, on it: C test programs
//! compiled with the system `cc` during the run (linked against
//! `libpool_alloc.so` and preloaded into a plain build), Python running a
//! slice of its own test suite, and `sqlite3` doing real work, each under
//! `LD_PRELOAD`, with the same results as without it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// `libpool_alloc.so` (with `features`), built for this test run by
/// cargo in a target directory of its own (cargo does not build a cdylib
/// for integration tests, and a second lib target of the same name would
/// collide with the main crate's). Returns the library's path.
fn build_library(features: &str) -> PathBuf {
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("preload-{features}"));
    let mut cargo = Command::new(env!("CARGO"));
    cargo
        .args(["build", "--quiet", "-p", "alloc-preload", "--target-dir"])
        .arg(&target)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if !features.is_empty() {
        cargo.args(["--features", features]);
    }
    let st = cargo.status().expect("cargo");
    assert!(
        st.success(),
        "building libpool_alloc.so ({features}) failed"
    );
    target.join("debug/libpool_alloc.so")
}

/// The plain library, built once per test run.
fn library() -> &'static Path {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| build_library(""))
}

fn lib_dir() -> PathBuf {
    library().parent().expect("target/debug").to_path_buf()
}

fn preload() -> String {
    library().display().to_string()
}

/// The hardened build of the library.
fn hardened() -> String {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| build_library("hardened"))
        .display()
        .to_string()
}

/// Compile `tests/c/<name>.c`, linked against our library or not.
fn compile(name: &str, linked: bool) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/c/{name}.c"));
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    // A path of its own per call: tests running in parallel compile the
    // same program, and one that runs its copy while another test's
    // linker rewrites it fails with ETXTBSY ("Text file busy").
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let out = out_dir.join(format!("{name}{}-{n}", if linked { "-linked" } else { "" }));
    let mut cc = Command::new("cc");
    if name == "misuse" {
        // Misuse on purpose: no warnings about it, and no optimisation that
        // would drop a freed-twice block's malloc/free pair.
        cc.args(["-O0", "-w"]);
    } else {
        cc.args(["-O1", "-Wall"]);
    }
    cc.args(["-pthread", "-o"]).arg(&out).arg(&src);
    if linked {
        let dir = lib_dir();
        cc.arg(format!("-L{}", dir.display()))
            .arg("-lpool_alloc")
            .arg(format!("-Wl,-rpath,{}", dir.display()));
    }
    let st = cc.status().expect("the system C compiler `cc`");
    assert!(st.success(), "cc failed on {}", src.display());
    out
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("spawn");
    if !out.status.success() {
        panic!(
            "{cmd:?} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn every_export_keeps_its_c_contract() {
    // The program itself against glibc: the checks are C's, not ours.
    let plain = compile("abi", false);
    assert!(stdout(&run(&mut Command::new(&plain))).starts_with("ok "));
    let pre = run(Command::new(&plain).env("LD_PRELOAD", preload()));
    assert_eq!(stdout(&pre), "ok pool_alloc\n", "preloaded");
    let linked = compile("abi", true);
    assert_eq!(
        stdout(&run(&mut Command::new(&linked))),
        "ok pool_alloc\n",
        "linked"
    );
}

#[test]
fn allocations_before_the_library_initialises() {
    // A library whose constructor allocates, preloaded before and after
    // ours: its constructor may run before ours does.
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/early.c");
    let lib = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("libearly.so");
    let st = Command::new("cc")
        .args(["-O1", "-shared", "-fPIC", "-o"])
        .arg(&lib)
        .arg(&src)
        .status()
        .expect("cc");
    assert!(st.success());
    let abi = compile("abi", false);
    let early = lib.display().to_string();
    for order in [
        format!("{early}:{}", preload()),
        format!("{}:{early}", preload()),
    ] {
        let out = run(Command::new(&abi).env("LD_PRELOAD", &order));
        assert_eq!(stdout(&out), "ok pool_alloc\n", "LD_PRELOAD={order}");
    }
}

#[test]
fn forked_children_of_a_threaded_program_allocate_and_exit() {
    let bin = compile("fork", false);
    let out = run(Command::new(&bin).env("LD_PRELOAD", preload()));
    assert_eq!(stdout(&out), "ok 40\n");
}

#[test]
fn stats_at_exit_and_as_json_lines() {
    let bin = compile("stats", false);
    let json = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("stats.jsonl");
    let _ = std::fs::remove_file(&json);
    let out = run(Command::new(&bin)
        .env("LD_PRELOAD", preload())
        .env("POOL_ALLOC_STATS_AT_EXIT", "1")
        .env("POOL_ALLOC_STATS_FILE", &json));
    let err = String::from_utf8_lossy(&out.stderr);
    let row = err
        .lines()
        .find(|l| l.trim_start().starts_with("48 B "))
        .unwrap_or_else(|| panic!("no 48 B row in the table:\n{err}"));
    let cols: Vec<u64> = row
        .split_whitespace()
        .skip(2)
        .take(3)
        .map(|v| v.parse().unwrap())
        .collect();
    // allocs, frees, live: the program's 100 000 and 50 000, plus the C
    // library's own few blocks of that class.
    assert!((100_000..100_100).contains(&cols[0]), "allocs in {row:?}");
    assert!((50_000..50_100).contains(&cols[1]), "frees in {row:?}");
    assert!(err.contains("leak risk"), "no leak report:\n{err}");
    let lines = std::fs::read_to_string(&json).expect("the JSON lines file");
    let first = lines.lines().next().expect("one line at least");
    assert!(first.starts_with('{') && first.contains("\"classes\""));
    // A malformed setting: one message, the default, and the program runs.
    let out = run(Command::new(&bin)
        .env("LD_PRELOAD", preload())
        .env("POOL_ALLOC_STATS_AT_EXIT", "yes"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("POOL_ALLOC_STATS_AT_EXIT").count(), 1, "{err}");
    assert_eq!(stdout(&out), "done\n");
}

/// A Python interpreter itself (not a wrapper script such as pyenv's)
/// that ships its test suite.
fn python() -> PathBuf {
    let o = run(Command::new("python3").args(["-c", "import sys; print(sys.executable)"]));
    let found = [
        PathBuf::from(stdout(&o).trim()),
        PathBuf::from("/usr/bin/python3"),
    ]
    .into_iter()
    .find(|py| {
        Command::new(py)
            .args(["-c", "import test.test_list"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    found.expect(
        "no python3 with its test suite (Debian: apt-get install libpython3.11-testsuite; \
         .ci/run installs it)",
    )
}

#[test]
fn python_runs_its_own_tests_on_it() {
    let py = python();
    let tests = ["test_list", "test_dict", "test_set", "test_bytes"];
    // Every object through malloc (not Python's own small-object pool).
    let summary = |preloaded: bool| {
        let mut cmd = Command::new(&py);
        cmd.args(["-m", "test"])
            .args(tests)
            .env("PYTHONMALLOC", "malloc");
        if preloaded {
            cmd.env("LD_PRELOAD", preload());
        }
        let out = run(&mut cmd);
        let text = stdout(&out);
        assert!(text.contains("Result: SUCCESS"), "{text}");
        text.lines()
            .find(|l| l.starts_with("Total tests:"))
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no summary in:\n{text}"))
    };
    assert_eq!(summary(true), summary(false));
}

#[test]
fn sqlite_gives_the_same_answers_on_it() {
    let sql = "create table t(a, b);
        with recursive c(x) as (select 1 union all select x + 1 from c where x < 100000)
        insert into t select x, printf('%08x-%d', (x * 2654435761) % 4294967296, x % 977) from c;
        create index i on t(b);
        select count(*), sum(length(b)), sum(a % 7) from t;
        select b from t order by b limit 3;
        select count(distinct substr(b, 1, 3)) from t;
        update t set b = b || b where a % 3 = 0;
        delete from t where a % 5 = 0;
        vacuum;
        select count(*), sum(length(b)) from t;";
    let go = |preloaded: bool| {
        let mut cmd = Command::new("sqlite3");
        cmd.args([":memory:", sql]);
        if preloaded {
            cmd.env("LD_PRELOAD", preload());
        }
        stdout(&run(&mut cmd))
    };
    let (ours, theirs) = (go(true), go(false));
    assert!(ours.lines().count() >= 6, "{ours}");
    assert_eq!(ours, theirs);
}

/// Every injected misuse, and the words its message must carry.
const MISUSES: [(&str, &str); 11] = [
    ("double-small", "double free"),
    ("double-small-written", "double free"),
    ("double-run", "double free"),
    ("double-large", "does not hold"),
    ("double-aligned", "double free"),
    ("interior-small", "interior pointer"),
    ("interior-run", "interior pointer"),
    ("interior-large", "interior pointer"),
    ("foreign-stack", "does not hold"),
    ("foreign-static", "does not hold"),
    ("realloc-freed", "double free"),
];

#[test]
fn hardened_mode_detects_every_injected_misuse() {
    let bin = compile("misuse", false);
    let mut detected = 0;
    for (case, words) in MISUSES {
        let out = Command::new(&bin)
            .arg(case)
            .env("LD_PRELOAD", hardened())
            .env("POOL_ALLOC_HARDENED", "1")
            .output()
            .expect("spawn");
        let err = String::from_utf8_lossy(&out.stderr);
        let line = err.lines().find(|l| l.starts_with("pool_alloc: "));
        match line {
            Some(l) if l.contains(words) && !out.status.success() && out.stdout.is_empty() => {
                detected += 1;
            }
            _ => eprintln!("{case}: not detected as {words:?}: {}\n{err}", out.status),
        }
    }
    assert_eq!(detected, MISUSES.len(), "misuses detected");
    // Right use is not taken for misuse.
    let ok = run(Command::new(&bin)
        .arg("none")
        .env("LD_PRELOAD", hardened())
        .env("POOL_ALLOC_HARDENED", "1"));
    assert_eq!(stdout(&ok), "ok\n");
}

#[test]
fn hardened_mode_runs_correct_programs_unchanged() {
    let abi = compile("abi", false);
    for zero in ["0", "1"] {
        let out = run(Command::new(&abi)
            .env("LD_PRELOAD", hardened())
            .env("POOL_ALLOC_HARDENED", "1")
            .env("POOL_ALLOC_ZERO_ON_FREE", zero));
        assert_eq!(stdout(&out), "ok pool_alloc\n", "zero on free {zero}");
    }
    let out = run(Command::new(compile("fork", false))
        .env("LD_PRELOAD", hardened())
        .env("POOL_ALLOC_HARDENED", "1"));
    assert_eq!(stdout(&out), "ok 40\n");
    let out = run(Command::new(python())
        .args(["-m", "test", "test_list", "test_dict"])
        .env("PYTHONMALLOC", "malloc")
        .env("LD_PRELOAD", hardened())
        .env("POOL_ALLOC_HARDENED", "1"));
    assert!(stdout(&out).contains("Result: SUCCESS"));
}
