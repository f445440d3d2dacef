//! What the harness reads from the OS: resident memory and the machine.

use std::fs;
use std::process::Command;

const MIB: f64 = 1024.0 * 1024.0;

/// The OS page size in bytes.
pub fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions; it only reads a constant.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 {
        n as usize
    } else {
        4096
    }
}

/// Resident set size now: second field of `/proc/self/statm` × page size.
pub fn rss_bytes() -> u64 {
    fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * page_size() as u64)
}

/// Peak resident set size of this process (`VmHWM` in `/proc/self/status`).
pub fn peak_rss_bytes() -> u64 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kib| kib * 1024)
}

/// Bytes to MiB.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / MIB
}

/// Where and when a run happened; printed with every report.
#[derive(Clone, Debug)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub mem_gib: f64,
    pub kernel: String,
    pub rustc: String,
    pub date: String,
    pub commit: String,
}

fn command_line(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

impl Machine {
    /// Reads the machine description (nproc, /proc/cpuinfo, git, date).
    pub fn detect() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let cpu_model = fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                let l = s.lines().find(|l| l.starts_with("model name"))?;
                Some(l.split_once(':')?.1.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        let mem_gib = fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|s| {
                let l = s.lines().find(|l| l.starts_with("MemTotal:"))?;
                l.split_whitespace().nth(1)?.parse::<f64>().ok()
            })
            .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
        let kernel = command_line("uname", &["-r"]).unwrap_or_else(|| "unknown".into());
        let rustc = command_line("rustc", &["--version"]).unwrap_or_else(|| "unknown".into());
        let date = command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
            .unwrap_or_else(|| "unknown".into());
        let mut commit = command_line("git", &["rev-parse", "--short", "HEAD"])
            .unwrap_or_else(|| "unknown".into());
        // NB: the allocator under test is built from the work tree, which may
        // differ from HEAD; say so rather than credit HEAD with it.
        let dirty = Command::new("git")
            .args([
                "diff",
                "--quiet",
                "HEAD",
                "--",
                "src",
                "alloc-core",
                "alloc-stats",
            ])
            .status()
            .map(|s| !s.success())
            .unwrap_or(false);
        if dirty {
            commit.push_str("+dirty");
        }
        Machine {
            cpus,
            cpu_model,
            mem_gib,
            kernel,
            rustc,
            date,
            commit,
        }
    }

    /// One line for logs and the README.
    pub fn summary(&self) -> String {
        format!(
            "{} | {} CPUs ({}) | {:.0} GiB | Linux {} | {} | commit {}",
            self.date,
            self.cpus,
            self.cpu_model,
            self.mem_gib,
            self.kernel,
            self.rustc,
            self.commit
        )
    }
}
