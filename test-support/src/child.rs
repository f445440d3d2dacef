//! Re-run the current test binary as a child process that runs one test
//! with an environment variable set. The test checks the variable first:
//! set, it does the child's work; unset, it is the parent and runs the child
//! (under `setrlimit`, under valgrind, ...).
//!
//! ```no_run
//! const CHILD: &str = "MY_TEST_CHILD";
//!
//! #[test]
//! fn the_test() {
//!     if test_support::child::role(CHILD).is_some() {
//!         // the child's work
//!         return;
//!     }
//!     let out = test_support::child::run("the_test", CHILD, "1");
//!     assert!(out.status.success());
//! }
//! ```

use std::process::{Command, Output};

/// The value of `var` when this process is the child, `None` in the parent.
pub fn role(var: &str) -> Option<String> {
    std::env::var(var).ok()
}

/// A command that runs this test binary's test `test` (its full name; in an
/// integration test, the function name) alone, output shown, with `var` set
/// to `value`.
pub fn command(test: &str, var: &str, value: &str) -> Command {
    command_under(&[], test, var, value)
}

/// Like [`command`], under a wrapper program: `wrapper[0]` with the rest of
/// `wrapper` as its arguments, then this binary and its arguments (for
/// example `["valgrind", "--tool=memcheck"]`). An empty `wrapper` runs the
/// binary itself.
pub fn command_under(wrapper: &[&str], test: &str, var: &str, value: &str) -> Command {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut cmd = match wrapper.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    cmd.args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(var, value);
    cmd
}

/// Run `cmd` to completion and return its output. Panics if it cannot be
/// started, or if the child's test harness did not run exactly one test: a
/// renamed test must not turn the child into a run of nothing that passes.
#[track_caller]
pub fn output(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("running 1 test\n"),
        "the child did not run exactly one test ({cmd:?}):\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// [`command`] run through [`output`].
#[track_caller]
pub fn run(test: &str, var: &str, value: &str) -> Output {
    output(&mut command(test, var, value))
}
