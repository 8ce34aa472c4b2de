//! `k1s bench`: latency and throughput figures against a running server.

use clap::Args;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// What to measure.
    pub target: String,
}

pub fn main(args: BenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("unknown benchmark {:?}", args.target)
}
