//! Image subcommands (owner: the images work).

use clap::{Args, Subcommand};

use super::RuntimeFlags;

#[derive(Args, Debug)]
pub struct PullArgs {
    /// Image reference, e.g. `busybox` or `127.0.0.1:5000/busybox:1.35`.
    pub image: String,
}

#[derive(Subcommand, Debug)]
pub enum ImagesCommand {
    /// Load an OCI-layout or `docker save` archive.
    Import { file: std::path::PathBuf },
    /// List images.
    Ls,
    /// Remove images.
    Rm { images: Vec<String> },
    /// Delete blobs and layers no image references.
    Gc,
}

pub fn pull(_flags: &RuntimeFlags, _args: PullArgs) -> anyhow::Result<i32> {
    anyhow::bail!("k1s runtime pull: not implemented yet")
}

pub fn list(flags: &RuntimeFlags) -> anyhow::Result<i32> {
    anyhow::bail!(
        "k1s runtime images: not implemented yet (store: {})",
        flags.runtime_root().display()
    )
}

pub fn main(_flags: &RuntimeFlags, _command: ImagesCommand) -> anyhow::Result<i32> {
    anyhow::bail!("k1s images: not implemented yet")
}
