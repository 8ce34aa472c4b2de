//! `k1s bench pods`: real pods through the kubelet (issue 5, "Speed and memory").
//!
//! Runs only in a network namespace of its own (`bench::main` re-executes it under
//! `unshare --net`): the kubelet creates the pod bridge and veths. Everything it starts is its
//! own and is removed on the way out, also on failure: a `docker-registry` on 127.0.0.1 holding
//! an offline busybox image (built with umoci from busybox-static, pushed with skopeo), and a
//! `k1s server` with its kubelet on a temp data dir whose pods' cgroups live under a cgroup root
//! named after this process. Latencies are create (POST sent) to the first watch event showing
//! the pod Running with Ready=True; nothing here sleeps in place of waiting on a condition.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use clap::Args;
use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::Notify;

use super::api::{parse_duration, print_header};
use super::client::{Conn, Endpoint, Proto, endpoint_from_kubeconfig, snippet};
use super::cluster::{CLOCK_TICKS, cpu_ticks, get_json, watch_pods};
use super::offline::{Registry, busybox_rootfs, tool};
use super::smaps::{kb_field, print_breakdown};
use super::spawn::{self, mib};
use super::stats::{Samples, ms};

#[derive(Args, Debug)]
pub struct PodsArgs {
    /// The k1s binary to spawn as the server (default: this executable).
    #[arg(long)]
    pub bin: Option<PathBuf>,
    /// Pods started one after another in step 1.
    #[arg(long, default_value_t = 50)]
    pub pods: usize,
    /// Pods created at once in step 2 (and running for step 3's memory figures).
    #[arg(long, default_value_t = 100)]
    pub burst: usize,
    /// Pods left running for step 4's idle CPU.
    #[arg(long, default_value_t = 20)]
    pub idle_pods: usize,
    /// Quiet time before the idle CPU is measured.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub settle: Duration,
    /// How long the idle CPU is measured.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub idle: Duration,
    /// Longest wait of any one step.
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    pub step_timeout: Duration,
    /// Print the server's largest N mappings (from smaps) at each memory step (0: none).
    #[arg(long, default_value_t = 0)]
    pub smaps_top: usize,
    /// busybox-static binary the image is built from.
    #[arg(long, default_value = "/bin/busybox")]
    pub busybox: PathBuf,
}

const NS: &str = "default";

pub async fn run(args: PodsArgs) -> Result<()> {
    let bin = spawn::binary(&args.bin)?;
    let tmp = tempfile::Builder::new()
        .prefix("k1s-bench-pods-")
        .tempdir()?;
    print_header("pods");
    // The fresh network namespace's loopback starts down; the registry and the API need it.
    tool(Command::new("ip").args(["link", "set", "lo", "up"]))?;
    let (registry, image) = {
        let (dir, busybox) = (tmp.path().to_owned(), args.busybox.clone());
        tokio::task::spawn_blocking(move || registry_with_busybox(&dir, &busybox))
            .await
            .map_err(|e| anyhow!("registry set-up: {e}"))??
    };
    let cgroup_root = format!("k1s-bench-pods-{}", std::process::id());
    let data = tmp.path().join("data");
    let extra = [
        "--insecure-registry",
        registry.addr.as_str(),
        "--cgroup-root",
        cgroup_root.as_str(),
    ];
    let cleanup = Cleanup {
        cgroup_root: cgroup_root.clone(),
        data: data.clone(),
    };
    let (server, started) = spawn::start_with(&bin, &data, &extra, true).await?;
    println!(
        "spawned {} server with the kubelet (pid {}) on {}; ready in {:.0} ms; image {image}",
        bin.display(),
        server.pid,
        data.display(),
        started.elapsed().as_secs_f64() * 1e3
    );
    let ep = endpoint_from_kubeconfig(&server.kubeconfig)?;
    let result = steps(&args, &ep, server.pid, &image, &data).await;
    let stopped = server.stop().await;
    // The shims outlive the server by design; the bench's own must go with it.
    let left = cleanup.kill_shims();
    drop(cleanup);
    drop(registry);
    let summary = result?;
    stopped?;
    if left > 0 {
        println!("note: {left} shim(s) still ran after the pods were deleted; killed");
    }
    println!("summary: {}", summary.join("; "));
    Ok(())
}

async fn steps(
    args: &PodsArgs,
    ep: &Endpoint,
    pid: u32,
    image: &str,
    data: &Path,
) -> Result<Vec<String>> {
    let mut admin = ep.connect(Proto::Http2).await?;
    let watch = ReadyWatch::open(ep).await?;
    let mut summary = Vec::new();

    // Step 1: one pod after another; the first also pulls the image, so it is a warm-up.
    let (rss0, _) = spawn::rss_kib(pid)?;
    breakdown(args, pid, "before the first pod")?;
    warm_up(&mut admin, &watch, image, args.step_timeout).await?;
    let (rss1, _) = spawn::rss_kib(pid)?;
    breakdown(args, pid, "after the warm-up pod")?;
    println!(
        "   k1s server RSS before the first pod {}, after the warm-up pod (image pulled) {}",
        mib(rss0),
        mib(rss1)
    );
    let mut samples = Samples::with_capacity(args.pods);
    let mut events = 0u64;
    for i in 0..args.pods {
        let name = format!("seq{i}");
        let t0 = Instant::now();
        create_pod(&mut admin, &name, image).await?;
        let (ready, n) = watch
            .wait_ready_events(&name, t0 + args.step_timeout)
            .await?;
        samples.push(ready.saturating_duration_since(t0));
        events += u64::from(n);
    }
    let report = samples.report(
        "pod create -> Running+Ready (sequential)",
        args.pods as u64,
        None,
    );
    let ok = report.p50 <= Duration::from_millis(50) && report.p99 <= Duration::from_millis(150);
    println!(
        "1. pod start-up, image present: {} pods, p50 {} p99 {} max {} (targets p50 <= 50 ms, p99 <= 150 ms: {})",
        report.n,
        ms(report.p50),
        ms(report.p99),
        ms(report.max),
        met(ok)
    );
    println!(
        "   watch events per pod, create to Running+Ready: {:.1} (each is one write to the pod)",
        events as f64 / args.pods.max(1) as f64
    );
    summary.push(format!(
        "start-up p50 {} p99 {}",
        ms(report.p50),
        ms(report.p99)
    ));
    let names: Vec<String> = (0..args.pods).map(|i| format!("seq{i}")).collect();
    delete_and_wait(&mut admin, &names, args.step_timeout).await?;
    // Step 3 counts the burst's shims only.
    wait_shims_gone(data, args.step_timeout).await?;
    println!(
        "   k1s server RSS after step 1 (no pods left): {}",
        mib(spawn::rss_kib(pid)?.0)
    );
    breakdown(args, pid, "after step 1")?;

    // Step 2: a burst created on 8 concurrent streams.
    let t0 = Instant::now();
    let names: Vec<String> = (0..args.burst).map(|i| format!("burst{i}")).collect();
    let mut creating = tokio::task::JoinSet::new();
    for chunk in names.chunks(args.burst.div_ceil(8).max(1)) {
        let mut c = admin
            .stream()
            .ok_or_else(|| anyhow!("the admin connection is not HTTP/2"))?;
        let (chunk, image) = (chunk.to_vec(), image.to_owned());
        creating.spawn(async move {
            for n in chunk {
                create_pod(&mut c, &n, &image).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = creating.join_next().await {
        r.map_err(|e| anyhow!("create task: {e}"))??;
    }
    let created = t0.elapsed();
    let mut last = t0;
    for n in &names {
        last = last.max(watch.wait_ready(n, t0 + args.step_timeout).await?);
    }
    let all = last.saturating_duration_since(t0);
    println!(
        "2. {} pods created at once (created in {}): all Running+Ready after {:.2} s (target <= 3 s: {})",
        args.burst,
        ms(created),
        all.as_secs_f64(),
        met(all <= Duration::from_secs(3))
    );
    summary.push(format!("{} at once {:.2} s", args.burst, all.as_secs_f64()));

    // Step 3: memory with the burst running.
    let (rss, hwm) = spawn::rss_kib(pid)?;
    println!(
        "3. k1s server RSS with {} running pods: {} (peak {}) (target <= 80 MB: {})",
        args.burst,
        mib(rss),
        mib(hwm),
        met(rss <= 80 * 1024)
    );
    // File-backed pages (the k1s binary's text, shared with every shim) count in RSS in full.
    let rollup = format!("/proc/{pid}/smaps_rollup");
    println!(
        "   of which anonymous {} KiB, file-backed {} KiB; Pss {} KiB",
        kb_field(&rollup, "Anonymous:")?,
        kb_field(&rollup, "Rss:")?.saturating_sub(kb_field(&rollup, "Anonymous:")?),
        kb_field(&rollup, "Pss:")?
    );
    breakdown(args, pid, "with the burst running")?;
    let shims = shim_pids(data);
    let (mut rss_sum, mut pss_sum, mut rss_max, mut pss_max) = (0, 0, 0, 0);
    for p in &shims {
        let r = kb_field(&format!("/proc/{p}/status"), "VmRSS:")?;
        let s = kb_field(&format!("/proc/{p}/smaps_rollup"), "Pss:")?;
        (rss_sum, pss_sum) = (rss_sum + r, pss_sum + s);
        (rss_max, pss_max) = (rss_max.max(r), pss_max.max(s));
    }
    let n = shims.len().max(1) as u64;
    println!(
        "   pod shims: {} processes, VmRSS avg {} KiB max {} KiB, Pss avg {} KiB max {} KiB (target <= 2 MB: {})",
        shims.len(),
        rss_sum / n,
        rss_max,
        pss_sum / n,
        pss_max,
        met(!shims.is_empty() && pss_max <= 2048)
    );
    summary.push(format!(
        "RSS {} with {} pods, shim Pss avg {} KiB",
        mib(rss),
        args.burst,
        pss_sum / n
    ));

    // Step 4: idle node.
    let keep = args.idle_pods.min(names.len());
    delete_and_wait(&mut admin, &names[keep..], args.step_timeout).await?;
    tokio::time::sleep(args.settle).await;
    let tick = CLOCK_TICKS;
    let (c0, t0) = (cpu_ticks(pid)?, Instant::now());
    tokio::time::sleep(args.idle).await;
    let (c1, wall) = (cpu_ticks(pid)?, t0.elapsed());
    let pct = (c1 - c0) as f64 / tick / wall.as_secs_f64() * 100.0;
    println!(
        "4. idle node with {keep} pods: k1s server CPU {pct:.2} % over {:.1} s after {:.1} s settle (target < 1 %: {})",
        wall.as_secs_f64(),
        args.settle.as_secs_f64(),
        met(pct < 1.0)
    );
    summary.push(format!("idle {pct:.2} % CPU with {keep} pods"));
    delete_and_wait(&mut admin, &names[..keep], args.step_timeout).await?;
    watch.close();
    wait_shims_gone(data, args.step_timeout).await?;
    Ok(summary)
}

/// The server's largest mappings when `--smaps-top` asks for them.
fn breakdown(args: &PodsArgs, pid: u32, when: &str) -> Result<()> {
    if args.smaps_top == 0 {
        return Ok(());
    }
    print_breakdown(&format!("   [{when}]"), pid, args.smaps_top)
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

/// The first pod, which pulls the image; not counted.
async fn warm_up(
    conn: &mut Conn,
    watch: &ReadyWatch,
    image: &str,
    timeout: Duration,
) -> Result<()> {
    let t0 = Instant::now();
    create_pod(conn, "warmup", image).await?;
    let ready = watch.wait_ready("warmup", t0 + timeout).await?;
    println!(
        "   warm-up pod (pulls the image): Running+Ready after {}",
        ms(ready.saturating_duration_since(t0))
    );
    delete_and_wait(conn, &["warmup".to_owned()], timeout).await
}

async fn create_pod(conn: &mut Conn, name: &str, image: &str) -> Result<()> {
    let body = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "c", "image": image, "command": ["sleep", "100000"]}]
        }
    });
    let (status, resp) = conn
        .call_status(
            Method::POST,
            &format!("/api/v1/namespaces/{NS}/pods"),
            Some(body.to_string().into()),
        )
        .await?;
    if !status.is_success() {
        bail!("creating pod {name}: {status}: {}", snippet(&resp));
    }
    Ok(())
}

/// Deletes `names` and waits until none of them is left in the API (the kubelet has stopped
/// them and released the pods).
async fn delete_and_wait(conn: &mut Conn, names: &[String], timeout: Duration) -> Result<()> {
    for n in names {
        let (status, resp) = conn
            .call_status(
                Method::DELETE,
                &format!("/api/v1/namespaces/{NS}/pods/{n}"),
                None,
            )
            .await?;
        if !status.is_success() && status != StatusCode::NOT_FOUND {
            bail!("deleting pod {n}: {status}: {}", snippet(&resp));
        }
    }
    let deadline = Instant::now() + timeout;
    loop {
        let list = get_json(conn, &format!("/api/v1/namespaces/{NS}/pods")).await?;
        let left = list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| {
                p.pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| names.iter().any(|m| m == n))
            })
            .count();
        if left == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{left} of {} deleted pods still there after {timeout:?}",
                names.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until no shim of this data dir runs: the API forgets a pod deleted with a zero grace
/// period before the kubelet has stopped it.
async fn wait_shims_gone(data: &Path, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = shim_pids(data).len();
        if left == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{left} shim(s) still running {timeout:?} after their pods were deleted");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A pod watch on [`NS`] recording when each pod is first seen Running with Ready=True.
struct ReadyWatch {
    /// Pod name -> (first seen Running+Ready, watch events for it up to and including that one).
    ready: Arc<Mutex<HashMap<String, (Instant, u32)>>>,
    changed: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl ReadyWatch {
    async fn open(ep: &Endpoint) -> Result<ReadyWatch> {
        let ready: Arc<Mutex<HashMap<String, (Instant, u32)>>> = Arc::default();
        let changed = Arc::new(Notify::new());
        let (seen, notify) = (ready.clone(), changed.clone());
        // Events seen per pod before it is Running+Ready: how many writes its start took.
        let mut events: HashMap<String, u32> = HashMap::new();
        let task = watch_pods(ep, NS, move |at, ev| {
            let Some(name) = ev.pointer("/object/metadata/name").and_then(Value::as_str) else {
                return;
            };
            let count = events.entry(name.to_owned()).or_default();
            *count += 1;
            if !is_running_ready(&ev["object"]) {
                return;
            }
            seen.lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(name.to_owned())
                .or_insert((at, *count));
            notify.notify_waiters();
        })
        .await?;
        Ok(ReadyWatch {
            ready,
            changed,
            task,
        })
    }

    /// When `name` was first seen Running+Ready; an error past `deadline`.
    async fn wait_ready(&self, name: &str, deadline: Instant) -> Result<Instant> {
        Ok(self.wait_ready_events(name, deadline).await?.0)
    }

    /// [`ReadyWatch::wait_ready`], with the number of watch events up to Running+Ready.
    async fn wait_ready_events(&self, name: &str, deadline: Instant) -> Result<(Instant, u32)> {
        loop {
            // Register before looking, so an event between the look and the wait is not lost.
            let notified = self.changed.notified();
            if let Some(at) = self
                .ready
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(name)
            {
                return Ok(*at);
            }
            if self.task.is_finished() {
                bail!("the pod watch ended");
            }
            if tokio::time::timeout_at(deadline.into(), notified)
                .await
                .is_err()
            {
                bail!("pod {name} not Running+Ready in time");
            }
        }
    }

    fn close(self) {
        self.task.abort();
    }
}

fn is_running_ready(pod: &Value) -> bool {
    pod.pointer("/status/phase").and_then(Value::as_str) == Some("Running")
        && pod
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
}

/// Pids of the pod shims (`k1s __shim <dir under data> ...`) of this bench's data dir.
fn shim_pids(data: &Path) -> Vec<u32> {
    let data = data.to_string_lossy().into_owned();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                return false;
            };
            let args: Vec<&[u8]> = cmd.split(|&b| b == 0).collect();
            args.get(1) == Some(&&b"__shim"[..])
                && args
                    .iter()
                    .any(|a| String::from_utf8_lossy(a).starts_with(&data))
        })
        .collect()
}

/// Removes what the server's pods may leave if a step failed: shims of this data dir, then the
/// pods' cgroup tree.
struct Cleanup {
    cgroup_root: String,
    data: PathBuf,
}

impl Cleanup {
    /// SIGKILLs the shims still running for this data dir; returns how many there were.
    fn kill_shims(&self) -> usize {
        let pids = shim_pids(&self.data);
        for p in &pids {
            if let Some(pid) = rustix::process::Pid::from_raw(*p as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
        pids.len()
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.kill_shims();
        // Sandboxes the kubelet had no time to remove keep their namespaces bind-mounted under
        // the data dir (in the host's mount namespace); detach them so the temp dir can go.
        let data = self.data.to_string_lossy().into_owned();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        for point in mounts.lines().filter_map(|l| l.split(' ').nth(4)) {
            if point.starts_with(&data) {
                let _ = rustix::mount::unmount(point, rustix::mount::UnmountFlags::DETACH);
            }
        }
        let mut hierarchies = vec![PathBuf::from("/sys/fs/cgroup")];
        if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
            hierarchies.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
        }
        for h in hierarchies {
            remove_cgroup_tree(
                &h.join(&self.cgroup_root),
                Instant::now() + Duration::from_secs(5),
            );
        }
    }
}

/// rmdir a cgroup tree, children first; a cgroup whose killed processes are still exiting is
/// retried until `deadline`.
fn remove_cgroup_tree(dir: &Path, deadline: Instant) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&e.path(), deadline);
            }
        }
    }
    while dir.exists() && std::fs::remove_dir(dir).is_err() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts a registry under `dir` and pushes a busybox image built offline to it; returns the
/// image reference.
fn registry_with_busybox(dir: &Path, busybox: &Path) -> Result<(Registry, String)> {
    let reg = Registry::start(dir)?;
    let oci = build_image(dir, busybox)?;
    tool(
        Command::new("skopeo")
            .args(["copy", "--quiet", "--dest-tls-verify=false"])
            .arg(format!("oci:{}:base", oci.display()))
            .arg(format!("docker://{}/k1s/busybox:1", reg.addr)),
    )?;
    let image = format!("{}/k1s/busybox:1", reg.addr);
    Ok((reg, image))
}

/// An OCI layout with tag `base`: busybox plus a symlink per applet.
fn build_image(dir: &Path, busybox: &Path) -> Result<PathBuf> {
    let rootfs = busybox_rootfs(dir, busybox)?;
    let oci = dir.join("oci");
    let image = format!("{}:base", oci.display());
    tool(Command::new("umoci").args(["init", "--layout"]).arg(&oci))?;
    tool(Command::new("umoci").args(["new", "--image", &image]))?;
    tool(
        Command::new("umoci")
            .args(["insert", "--image", &image])
            .arg(&rootfs)
            .arg("/"),
    )?;
    Ok(oci)
}
