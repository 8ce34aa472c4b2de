//! `k1s bench image`: pull throughput of the k1s image store against `skopeo copy` from the same
//! registry in the same run, and layer unpack throughput on its own.
//!
//! Without `--registry` it starts its own `docker-registry` on 127.0.0.1 (random port, temp
//! storage) and pushes a generated image of about `--size-mb` MB: half random (incompressible)
//! files, half compressible text, built with umoci and pushed with skopeo. Every run pulls into a
//! fresh store (k1s: download, verify, unpack, sync) and a fresh `dir:` target (skopeo: download
//! and verify only); the two take turns, each after an untimed `sync(2)`. Unpack MB/s counts uncompressed tar bytes of every layer, unpacked from the
//! blobs the k1s pull stored, without the final sync, next to GNU tar unpacking the same blobs,
//! and per CPU-second of the unpacking thread (a figure other load on the machine does not skew).
//! Nothing is deleted until the end: on ext4, creating inodes right after deleting many is slow
//! (the allocator skips recently deleted inodes), which would penalise later runs.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use k1s_runtime::image::{ImageStore, RegistryAuth, RegistryConfig, UnpackLimits, unpack};

use super::offline::{Registry, tool};
use super::stats::Samples;

#[derive(Args, Debug)]
pub struct ImageArgs {
    /// Registry to pull from (HOST:PORT, plain HTTP); default: start one with a generated image.
    #[arg(long)]
    pub registry: Option<String>,
    /// Repository and tag to pull from --registry.
    #[arg(long, default_value = "bench/image:1")]
    pub image: String,
    /// Size of the generated image, in MB.
    #[arg(long, default_value_t = 100)]
    pub size_mb: u64,
    /// Measured runs per tool.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
}

/// Runs blocking process work on a blocking-pool thread (never fork from a tokio worker).
async fn off_worker<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f).await?
}

/// Writes the rootfs of the generated image: `size_mb / 2` MB of random files (1 MB each) and as
/// much compressible text in files of 4 kB to 256 kB.
fn generate_rootfs(root: &Path, size_mb: u64) -> Result<()> {
    let random = root.join("random");
    let text = root.join("text");
    std::fs::create_dir_all(&random)?;
    std::fs::create_dir_all(&text)?;
    let mut urandom = std::fs::File::open("/dev/urandom")?;
    let mut buf = vec![0u8; 1 << 20];
    for i in 0..size_mb / 2 {
        std::io::Read::read_exact(&mut urandom, &mut buf)?;
        std::fs::write(random.join(format!("r{i:04}.bin")), &buf)?;
    }
    let line = b"k1s benchmark line: the quick brown fox jumps over the lazy dog 0123456789\n";
    let mut left = size_mb / 2 * 1_000_000;
    let mut i = 0u64;
    while left > 0 {
        let size = (4096u64 << (i % 7)).min(left);
        let mut f =
            std::io::BufWriter::new(std::fs::File::create(text.join(format!("t{i:05}.txt")))?);
        let mut written = 0u64;
        while written < size {
            let n = (line.len() as u64).min(size - written) as usize;
            f.write_all(&line[..n])?;
            f.write_all(
                &(i ^ written).to_le_bytes()[..(size - written - n as u64).min(8) as usize],
            )?;
            written += n as u64 + (size - written - n as u64).min(8);
        }
        f.flush()?;
        left -= size;
        i += 1;
    }
    Ok(())
}

fn push_generated(reg: &Registry, repo_tag: &str, size_mb: u64) -> Result<()> {
    let work = tempfile::tempdir()?;
    let rootfs = work.path().join("rootfs");
    generate_rootfs(&rootfs, size_mb)?;
    let oci = work.path().join("oci");
    let image = format!("{}:bench", oci.display());
    tool(Command::new("umoci").args(["init", "--layout"]).arg(&oci))?;
    tool(Command::new("umoci").args(["new", "--image", &image]))?;
    // Two layers, as images usually have several.
    tool(
        Command::new("umoci")
            .args(["insert", "--image", &image])
            .arg(rootfs.join("random"))
            .arg("/random"),
    )?;
    tool(
        Command::new("umoci")
            .args(["insert", "--image", &image])
            .arg(rootfs.join("text"))
            .arg("/text"),
    )?;
    tool(
        Command::new("skopeo")
            .args(["copy", "--quiet", "--dest-tls-verify=false"])
            .arg(format!("oci:{image}"))
            .arg(format!("docker://{}/{repo_tag}", reg.addr)),
    )?;
    Ok(())
}

/// Writes back every dirty page on the machine (`sync(2)`) before a timed pull, untimed. The k1s
/// pull ends with `syncfs` of its filesystem, which also writes what others left dirty there (the
/// previous skopeo copy, which never syncs; the files a previous bench run deleted); each run
/// starts from the same clean state instead.
async fn settle_disk() -> Result<()> {
    off_worker(|| {
        rustix::fs::sync();
        Ok(())
    })
    .await
}

fn dir_size(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// CPU time (user + system) of the calling thread, from `/proc/thread-self/stat` (clock ticks,
/// taken as the usual 100 Hz).
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    // Fields after the `(comm)`, which may contain spaces: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|x| x.parse().ok())
        .collect();
    Duration::from_millis(f.iter().sum::<u64>() * 10)
}

fn mbs(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64().max(1e-9)
}

fn line(name: &str, mut s: Samples, bytes: u64) {
    s.0.sort_unstable();
    let p50 = Samples::percentile(&s.0, 50.0);
    let p99 = Samples::percentile(&s.0, 99.0);
    println!(
        "{name:<26} {:>5} {:>9.3} {:>9.3} {:>10.0} {:>10.0}",
        s.0.len(),
        p50.as_secs_f64(),
        p99.as_secs_f64(),
        mbs(bytes, p50),
        mbs(bytes, p99),
    );
}

pub async fn run_bench(args: ImageArgs) -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (own, addr) = match &args.registry {
        Some(a) => (None, a.clone()),
        None => {
            let size = args.size_mb;
            let tag = args.image.clone();
            let reg = off_worker(move || {
                let dir = tempfile::tempdir()?;
                let reg = Registry::start(dir.path())?;
                eprintln!(
                    "generating a ~{size} MB image and pushing it to {}",
                    reg.addr
                );
                push_generated(&reg, &tag, size)?;
                // Dropped in this order: the registry is killed before its storage goes.
                Ok((reg, dir))
            })
            .await?;
            let addr = reg.0.addr.clone();
            (Some(reg), addr)
        }
    };
    let reference = format!("{addr}/{}", args.image);
    let work = tempfile::tempdir()?;

    let mut k1s = Samples::default();
    let mut skopeo = Samples::default();
    let mut skopeo_bytes = 0;
    let mut compressed = 0u64;
    let mut blobs: Vec<PathBuf> = Vec::new();
    // The tools take turns, run by run, so drift in the machine's state (other load, writeback)
    // falls on both alike; the first k1s run, untimed, warms the registry's page cache for both.
    for i in 0..args.runs + 1 {
        let root = work.path().join(format!("k1s-{i}"));
        let store = ImageStore::open(
            &root,
            RegistryConfig {
                insecure: vec![addr.clone()],
                ..Default::default()
            },
        )?;
        settle_disk().await?;
        let t = Instant::now();
        let image = store.pull(&reference, &RegistryAuth::Anonymous).await?;
        let d = t.elapsed();
        compressed = image.size;
        if i == 0 {
            let rec = store
                .list()?
                .into_iter()
                .next()
                .context("no image record")?;
            blobs = rec
                .layers
                .iter()
                .map(|l| {
                    root.join("blobs/sha256")
                        .join(l.digest.trim_start_matches("sha256:"))
                })
                .collect();
            continue;
        }
        k1s.push(d);

        let dest = work.path().join(format!("skopeo-{i}"));
        let src = format!("docker://{reference}");
        let d2 = dest.clone();
        settle_disk().await?;
        let t = Instant::now();
        off_worker(move || {
            tool(
                Command::new("skopeo")
                    .args(["copy", "--quiet", "--src-tls-verify=false"])
                    .arg(&src)
                    .arg(format!("dir:{}", d2.display())),
            )
            .map(drop)
        })
        .await
        .context("skopeo copy (Debian package skopeo)")?;
        skopeo.push(t.elapsed());
        skopeo_bytes = dir_size(&dest);
    }

    let mut unpack_s = Samples::default();
    let mut tar_s = Samples::default();
    let mut tar_bytes = 0;
    let mut unpack_cpu = Duration::ZERO;
    for i in 0..args.runs {
        let blobs = blobs.clone();
        let base = work.path().join(format!("unpack-{i}"));
        let (d, cpu, gnu, bytes) = off_worker(move || {
            let (mut total, mut cpu, mut gnu) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
            let mut bytes = 0;
            for (n, b) in blobs.iter().enumerate() {
                let dest = base.join(format!("k1s-{n}"));
                std::fs::create_dir_all(&dest)?;
                let f = std::fs::File::open(b)?;
                let (t, c) = (Instant::now(), thread_cpu());
                let stats = unpack::unpack(f, &dest, &UnpackLimits::default(), None)?;
                total += t.elapsed();
                cpu += thread_cpu().saturating_sub(c);
                bytes += stats.tar_bytes;
                // GNU tar on the same blob, as a peer: `tar -xzf` also runs gzip as a second
                // process. umoci ends its tars without the end-of-archive blocks, which GNU tar
                // refuses, so they are appended.
                let dest = base.join(format!("tar-{n}"));
                std::fs::create_dir_all(&dest)?;
                let t = Instant::now();
                tool(
                    Command::new("sh")
                        .arg("-c")
                        .arg(r#"{ gzip -dc "$1"; head -c 10240 /dev/zero; } | tar -x -C "$2""#)
                        .arg("sh")
                        .arg(b)
                        .arg(&dest),
                )?;
                gnu += t.elapsed();
            }
            Ok((total, cpu, gnu, bytes))
        })
        .await?;
        unpack_s.push(d);
        tar_s.push(gnu);
        unpack_cpu += cpu;
        tar_bytes = bytes;
    }

    println!(
        "image {reference}: {:.1} MB compressed, {:.1} MB uncompressed, {} layers",
        compressed as f64 / 1e6,
        tar_bytes as f64 / 1e6,
        blobs.len()
    );
    println!(
        "{:<26} {:>5} {:>9} {:>9} {:>10} {:>10}",
        "scenario", "runs", "p50 s", "p99 s", "p50 MB/s", "p99 MB/s"
    );
    line("pull k1s (fetch+unpack)", k1s, compressed);
    line("pull skopeo copy dir:", skopeo, skopeo_bytes.max(1));
    line("unpack k1s (uncompressed)", unpack_s, tar_bytes);
    line("unpack GNU tar -x", tar_s, tar_bytes);
    println!(
        "unpack k1s per CPU-second: {:.0} MB/s (thread CPU time, insensitive to other load)",
        mbs(tar_bytes * args.runs as u64, unpack_cpu)
    );
    drop(own);
    Ok(())
}
