//! Container subcommands (owner: the containers work).

use clap::Args;

use super::RuntimeFlags;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Give the container a pod sandbox with networking (its own IP on the bridge).
    #[arg(long)]
    pub net: bool,
    pub image: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PsArgs {
    /// Show stopped containers too.
    #[arg(short, long)]
    pub all: bool,
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    #[arg(short, long)]
    pub follow: bool,
    pub id: String,
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Allocate a TTY.
    #[arg(short, long)]
    pub tty: bool,
    pub id: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct StopArgs {
    /// Seconds to wait after SIGTERM before SIGKILL.
    #[arg(long, default_value_t = 10)]
    pub time: u64,
    pub id: String,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Stop it first if it is running.
    #[arg(short, long)]
    pub force: bool,
    pub id: String,
}

pub fn run(_flags: &RuntimeFlags, _args: RunArgs) -> anyhow::Result<i32> {
    anyhow::bail!("k1s runtime run: not implemented yet")
}
pub fn ps(_flags: &RuntimeFlags, _args: PsArgs) -> anyhow::Result<i32> {
    anyhow::bail!("k1s runtime ps: not implemented yet")
}
pub fn logs(_flags: &RuntimeFlags, _args: LogsArgs) -> anyhow::Result<i32> {
    anyhow::bail!("k1s runtime logs: not implemented yet")
}
pub fn exec(_flags: &RuntimeFlags, _args: ExecArgs) -> anyhow::Result<i32> {
    anyhow::bail!("k1s runtime exec: not implemented yet")
}
pub fn stop(_flags: &RuntimeFlags, _args: StopArgs) -> anyhow::Result<i32> {
    anyhow::bail!("k1s runtime stop: not implemented yet")
}
pub fn rm(_flags: &RuntimeFlags, _args: RmArgs) -> anyhow::Result<i32> {
    anyhow::bail!("k1s runtime rm: not implemented yet")
}
