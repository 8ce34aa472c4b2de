//! The `k1s` binary: a single-node Kubernetes in one process.

mod bench;
mod server;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "k1s", version = concat!(env!("CARGO_PKG_VERSION"), " (Kubernetes v1.33.0)"), about = "A single-node Kubernetes in one binary")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start the cluster: store, API server (and, as they land, controllers, scheduler, kubelet).
    Server(server::ServerArgs),
    /// Benchmarks against a running server or the store.
    Bench(bench::BenchArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Server(args) => server::main(args),
        Command::Bench(args) => bench::main(args),
    }
}
