//! `pool-alloc-bench`: see `driver` for the subcommands and README.md.

use pool_alloc_bench::driver;

// The installed allocator; `peers::installed_name` mirrors this precedence.
#[cfg(feature = "installed-ours")]
#[global_allocator]
static GLOBAL: pool_alloc::PoolAlloc = pool_alloc::PoolAlloc::new();

#[cfg(all(feature = "global-jemalloc", not(feature = "installed-ours")))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[cfg(all(
    any(feature = "global-mimalloc", feature = "global-mimalloc-v2"),
    not(any(feature = "installed-ours", feature = "global-jemalloc"))
))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(all(
    feature = "global-rpmalloc",
    not(any(
        feature = "installed-ours",
        feature = "global-jemalloc",
        feature = "global-mimalloc",
        feature = "global-mimalloc-v2"
    ))
))]
#[global_allocator]
static GLOBAL: rpmalloc::RpMalloc = rpmalloc::RpMalloc;

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, rest) = match argv.split_first() {
        Some((c, r)) => (c.as_str(), r),
        None => ("help", &[][..]),
    };
    let args = driver::Args::parse(rest);
    // Ours with its background reclaimer on (the burst figure "with the
    // reclaimer"): POOL_ALLOC_BENCH_RECLAIMER=1.
    #[cfg(feature = "installed-ours")]
    let _reclaimer = std::env::var_os("POOL_ALLOC_BENCH_RECLAIMER")
        .filter(|v| v == "1")
        .map(|_| pool_alloc::Reclaimer::start());
    let res = match cmd {
        "run" => driver::run(&args),
        "inproc" => driver::inproc(&args),
        "worker" => driver::worker(&args),
        "report" => driver::redraw(&args),
        _ => {
            println!("{}", driver::usage());
            Ok(())
        }
    };
    if let Err(e) = res {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
    if cmd == "inproc" || cmd == "worker" {
        // NB: children leave without running exit handlers. rpmalloc's
        // (preload build) finalizer unmaps its heaps while a just-joined
        // thread may still be in its TLS destructor, which crashes about
        // one run in two after cross-thread frees; results are printed by then.
        let _ = std::io::Write::flush(&mut std::io::stdout());
        // SAFETY: `_exit` has no preconditions; stdout is flushed above and
        // nothing else of this process needs to outlive it.
        unsafe { libc::_exit(0) }
    }
}
