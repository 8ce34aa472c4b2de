//! The `k1s` binary: a single-node Kubernetes in one process.

mod alloc;
mod bench;
mod runtime_cli;
mod server;

use clap::{Parser, Subcommand};

/// jemalloc instead of glibc malloc: with 10,000 pods in the caches the server's RSS is ≈ 8 %
/// lower (glibc's per-thread arenas stay fragmented after bursts of JSON parsing), and allocation
/// is faster on the bind path. The pod shim keeps glibc's malloc, which is smaller for it (see
/// [`alloc`]).
#[global_allocator]
static ALLOC: alloc::K1sAlloc = alloc::K1sAlloc::new();

#[derive(Parser, Debug)]
#[command(name = "k1s", version = concat!(env!("CARGO_PKG_VERSION"), " (Kubernetes v1.33.0)"), about = "A single-node Kubernetes in one binary")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start the cluster: store, API server, controllers, scheduler, kubelet.
    Server(Box<server::ServerArgs>),
    /// Benchmarks against a running server or the store.
    Bench(bench::BenchArgs),
    /// Debug the built-in container runtime (like ctr/crictl): images, containers, logs, exec.
    Runtime(runtime_cli::RuntimeArgs),
    /// Manage images in the runtime's store: import archives, list, remove, garbage-collect.
    Images(runtime_cli::ImagesArgs),
}

fn main() -> anyhow::Result<()> {
    // The container shim is this binary re-executed: dispatch it before clap or anything else
    // initialises, so a shim costs as little memory as possible.
    if std::env::args_os().nth(1).is_some_and(|a| a == "__shim") {
        k1s_runtime::container::shim::main();
    }
    let cli = Cli::parse();
    match cli.command {
        Command::Server(args) => server::main(*args),
        Command::Bench(args) => bench::main(args),
        Command::Runtime(args) => exit_with(runtime_cli::main(args)?),
        Command::Images(args) => exit_with(runtime_cli::images_main(args)?),
    }
}

/// Exits with `code` unless it is 0 (the container's exit code for `k1s runtime run`/`exec`).
fn exit_with(code: i32) -> anyhow::Result<()> {
    if code != 0 {
        std::process::exit(code);
    }
    Ok(())
}
