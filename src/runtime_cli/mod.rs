//! `k1s runtime ...` and `k1s images ...`: a `ctr`/`crictl`-like CLI over the built-in runtime, against
//! the same state (`<data-dir>/runtime`) the kubelet uses.

mod containers;
mod images;

pub use images::registry_config;

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// Flags shared with `k1s server`.
#[derive(Args, Debug, Clone)]
pub struct RuntimeFlags {
    /// Data directory (the runtime keeps its state under <data-dir>/runtime).
    #[arg(long, env = "K1S_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// A registry that may be reached over plain HTTP (HOST:PORT); repeatable.
    #[arg(long = "insecure-registry", value_name = "HOST:PORT", global = true)]
    pub insecure_registries: Vec<String>,
    /// A containerd/k3s style registries.yaml (mirrors, per-host auth and TLS).
    #[arg(long = "registry-config", value_name = "FILE", global = true)]
    pub registry_config: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct RuntimeArgs {
    #[command(flatten)]
    pub flags: RuntimeFlags,
    #[command(subcommand)]
    pub command: RuntimeCommand,
}

#[derive(Subcommand, Debug)]
pub enum RuntimeCommand {
    /// Pull an image.
    Pull(images::PullArgs),
    /// List images.
    Images,
    /// Run a container.
    Run(containers::RunArgs),
    /// List containers.
    Ps(containers::PsArgs),
    /// Print a container's logs.
    Logs(containers::LogsArgs),
    /// Run a command in a running container.
    Exec(containers::ExecArgs),
    /// Attach to a running container's stdio (its stdin if it keeps one open, its output from now on).
    Attach(containers::AttachArgs),
    /// Stop a container (SIGTERM, then SIGKILL after the grace period).
    Stop(containers::StopArgs),
    /// Remove a stopped container.
    Rm(containers::RmArgs),
}

#[derive(Args, Debug)]
pub struct ImagesArgs {
    #[command(flatten)]
    pub flags: RuntimeFlags,
    #[command(subcommand)]
    pub command: images::ImagesCommand,
}

impl RuntimeFlags {
    /// `<data-dir>/runtime`.
    pub fn runtime_root(&self) -> PathBuf {
        self.data_dir
            .clone()
            .unwrap_or_else(crate::server::default_data_dir)
            .join("runtime")
    }
}

pub fn main(args: RuntimeArgs) -> anyhow::Result<i32> {
    match args.command {
        RuntimeCommand::Pull(a) => images::pull(&args.flags, a),
        RuntimeCommand::Images => images::list(&args.flags),
        RuntimeCommand::Run(a) => containers::run(&args.flags, a),
        RuntimeCommand::Ps(a) => containers::ps(&args.flags, a),
        RuntimeCommand::Logs(a) => containers::logs(&args.flags, a),
        RuntimeCommand::Exec(a) => containers::exec(&args.flags, a),
        RuntimeCommand::Attach(a) => containers::attach(&args.flags, a),
        RuntimeCommand::Stop(a) => containers::stop(&args.flags, a),
        RuntimeCommand::Rm(a) => containers::rm(&args.flags, a),
    }
}

pub fn images_main(args: ImagesArgs) -> anyhow::Result<i32> {
    images::main(&args.flags, args.command)
}
