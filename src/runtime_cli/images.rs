//! Image subcommands: `k1s runtime pull|images` and `k1s images import|ls|rm|gc`, over the same
//! image store the kubelet uses (`<data-dir>/runtime/images`). The store is async; each command
//! runs it on a small current-thread tokio runtime.

use std::collections::HashSet;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use k1s_runtime::image::{DockerConfig, ImageStore, RegistryAuth, RegistryConfig};

use super::RuntimeFlags;

#[derive(Args, Debug)]
pub struct PullArgs {
    /// Image reference, e.g. `busybox` or `127.0.0.1:5000/busybox:1.35`.
    pub image: String,
    /// Registry credentials as USER:PASSWORD.
    #[arg(long, value_name = "USER:PASSWORD", conflicts_with = "pull_secret")]
    pub creds: Option<String>,
    /// A `.dockerconfigjson` file (the data of a kubernetes.io/dockerconfigjson secret).
    #[arg(long, value_name = "FILE")]
    pub pull_secret: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum ImagesCommand {
    /// Load an OCI-layout or `docker save` archive.
    Import {
        file: PathBuf,
        /// Name for images the archive leaves unnamed (for bare OCI tags: the repository).
        #[arg(long)]
        name: Option<String>,
    },
    /// List images.
    Ls,
    /// Remove images (by reference or image ID); their content goes at the next `gc`.
    Rm {
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Delete blobs and layers no image references (layers mounted by containers are kept).
    Gc,
}

/// The registry settings from the flags (`--insecure-registry`, `--registry-config`).
pub fn registry_config(flags: &RuntimeFlags) -> anyhow::Result<RegistryConfig> {
    let mut cfg = RegistryConfig {
        insecure: flags.insecure_registries.clone(),
        ..Default::default()
    };
    if let Some(path) = &flags.registry_config {
        cfg.load_file(path)?;
    }
    Ok(cfg)
}

/// Opens the image store under the runtime root.
pub fn open_store(flags: &RuntimeFlags) -> anyhow::Result<ImageStore> {
    let root = flags.runtime_root().join("images");
    ImageStore::open(&root, registry_config(flags)?)
        .with_context(|| format!("opening the image store at {}", root.display()))
}

fn block_on<T>(f: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(f)
}

pub fn pull(flags: &RuntimeFlags, args: PullArgs) -> anyhow::Result<i32> {
    let store = open_store(flags)?;
    let auth = match (&args.creds, &args.pull_secret) {
        (Some(c), _) => {
            let (u, p) = c.split_once(':').context("--creds wants USER:PASSWORD")?;
            RegistryAuth::Basic {
                username: u.to_string(),
                password: p.to_string(),
            }
        }
        (None, Some(f)) => RegistryAuth::DockerConfig(DockerConfig::from_json(
            &std::fs::read(f).with_context(|| format!("reading {}", f.display()))?,
        )?),
        (None, None) => RegistryAuth::Anonymous,
    };
    let image = block_on(async { Ok(store.pull(&args.image, &auth).await?) })?;
    println!("Image is up to date for {} ({})", image.reference, image.id);
    Ok(0)
}

pub fn list(flags: &RuntimeFlags) -> anyhow::Result<i32> {
    let store = open_store(flags)?;
    let rows: Vec<[String; 3]> = store
        .list()?
        .into_iter()
        .map(|r| {
            let id = r.id.trim_start_matches("sha256:");
            [
                r.reference.clone(),
                id[..id.len().min(12)].to_string(),
                human_size(r.size),
            ]
        })
        .collect();
    print_table(&["REF", "IMAGE ID", "SIZE"], &rows);
    Ok(0)
}

pub fn main(flags: &RuntimeFlags, command: ImagesCommand) -> anyhow::Result<i32> {
    match command {
        ImagesCommand::Ls => list(flags),
        ImagesCommand::Import { file, name } => {
            let store = open_store(flags)?;
            let images = block_on(async { Ok(store.import(&file, name.as_deref()).await?) })?;
            for i in images {
                println!("imported {} ({})", i.reference, i.id);
            }
            Ok(0)
        }
        ImagesCommand::Rm { images } => {
            let store = open_store(flags)?;
            let mut code = 0;
            for i in images {
                match store.remove(&i) {
                    Ok(removed) => removed.iter().for_each(|r| println!("Deleted: {r}")),
                    Err(e) => {
                        eprintln!("{i}: {e}");
                        code = 1;
                    }
                }
            }
            Ok(code)
        }
        ImagesCommand::Gc => {
            let store = open_store(flags)?;
            // Layers of running containers are overlay lower dirs, which GC finds in mountinfo.
            let stats = block_on(async { Ok(store.gc(&HashSet::new()).await?) })?;
            println!(
                "removed {} blobs and {} layers, freed {}",
                stats.blobs_removed,
                stats.layers_removed,
                human_size(stats.bytes_freed)
            );
            Ok(0)
        }
    }
}

fn print_table(header: &[&str; 3], rows: &[[String; 3]]) {
    let mut w = header.map(str::len);
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.len());
        }
    }
    println!(
        "{:<a$}   {:<b$}   {}",
        header[0],
        header[1],
        header[2],
        a = w[0],
        b = w[1]
    );
    for r in rows {
        println!("{:<a$}   {:<b$}   {}", r[0], r[1], r[2], a = w[0], b = w[1]);
    }
}

/// Decimal units with four significant digits, as crictl prints sizes (`1.236MB`).
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    let int_digits = if v < 1.0 {
        1
    } else {
        (v.log10().floor() as usize) + 1
    };
    let decimals = 4usize.saturating_sub(int_digits);
    let mut s = format!("{v:.decimals$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{s}{}", UNITS[u])
}

#[cfg(test)]
mod tests {
    use super::human_size;

    #[test]
    fn sizes_print_like_crictl() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1_236_000), "1.236MB");
        assert_eq!(human_size(12_000_000), "12MB");
        assert_eq!(human_size(123_456_789), "123.5MB");
    }
}
