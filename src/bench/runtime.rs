//! `k1s bench runtime`: container start latency of `/bin/true` in a busybox rootfs (image
//! present), side by side in the same run with `runc run`, `crun run` and the floor
//! `unshare -pmuin -f chroot ROOTFS /bin/true`; the same as a further container of a running pod
//! (its shim creates it); and the pod shims' memory with 10 containers running, 2 a pod, right
//! after their starts and once they have logged for `--rss-settle-ms`. `--peer-seccomp` also times
//! runc and crun with k1s's RuntimeDefault filter in their bundle, as k1s always loads one.
//!
//! One k1s sample is `create` + `start` + `wait` (exit recorded, logs drained) through
//! [`ContainerManager`]; removal is outside the timing. runc and the floor are timed around the
//! process from here. crun refuses this host's cgroup v1/v2 hybrid unless the cgroup2 mount is
//! hidden, which takes a private mount namespace, so its loop runs in `unshare -m sh` and is timed
//! by the shell (`date +%s%N` around each run); the same loop around `/bin/true` alone is reported
//! as that method's own overhead. Everything runs on a blocking thread (the shim is spawned with
//! `std::process::Command`, never forked from a tokio worker).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use k1s_runtime::container::{ContainerManager, ContainerSpec, Phase};

use super::smaps::kb_field;
use super::stats::Samples;

#[derive(Args, Debug)]
pub struct RuntimeArgs {
    /// Container starts per runtime.
    #[arg(long, default_value_t = 50)]
    pub runs: usize,
    /// Containers kept running for the shim memory figure.
    #[arg(long, default_value_t = 10)]
    pub rss_containers: usize,
    /// Containers per pod (so per shim) for the shim memory figure.
    #[arg(long, default_value_t = 2)]
    pub per_pod: usize,
    /// How long the memory figure's containers log before the shims are sampled again.
    #[arg(long, default_value_t = 3000)]
    pub rss_settle_ms: u64,
    /// busybox-static binary the rootfs is built from.
    #[arg(long, default_value = "/bin/busybox")]
    pub busybox: PathBuf,
    /// Also time runc and crun with k1s's RuntimeDefault seccomp filter in their config.json (the
    /// `runc spec` bundle has none, while every k1s container loads it).
    #[arg(long)]
    pub peer_seccomp: bool,
    /// Skip the runc/crun/unshare peers.
    #[arg(long)]
    pub no_peers: bool,
}

pub async fn run(args: RuntimeArgs) -> Result<()> {
    tokio::task::spawn_blocking(move || run_blocking(args)).await?
}

fn run_blocking(args: RuntimeArgs) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let rootfs = super::offline::busybox_rootfs(tmp.path(), &args.busybox)?;
    let exe = std::env::current_exe()?;
    let mgr = ContainerManager::open(&tmp.path().join("runtime"), exe)?;
    let parent = format!("k1s-bench-{}", std::process::id());
    let result = measure(&args, tmp.path(), &rootfs, &mgr, &parent);
    let _ = k1s_runtime::container::cgroup::remove_pod(&parent);
    result
}

fn measure(
    args: &RuntimeArgs,
    tmp: &Path,
    rootfs: &Path,
    mgr: &ContainerManager,
    parent: &str,
) -> Result<()> {
    // No pod: each container starts a shim of its own, as a pod's first container does.
    let spec = |id: String, cmd: &[&str]| ContainerSpec {
        id,
        layers: vec![rootfs.to_path_buf()],
        args: cmd.iter().map(|s| s.to_string()).collect(),
        cgroup_parent: parent.to_string(),
        hostname: "bench".into(),
        ..Default::default()
    };
    // Warm-up: page cache, first cgroup creation.
    for i in 0..3 {
        let id = format!("warm{i}");
        mgr.create(&spec(id.clone(), &["/bin/true"]))?;
        mgr.start(&id)?;
        mgr.wait(&id)?;
        mgr.remove(&id)?;
    }
    let mut samples = Samples::with_capacity(args.runs);
    let mut phases = [
        Samples::with_capacity(args.runs),
        Samples::with_capacity(args.runs),
        Samples::with_capacity(args.runs),
    ];
    let mut busy = Duration::ZERO;
    for i in 0..args.runs {
        let id = format!("b{i}");
        let t = Instant::now();
        mgr.create(&spec(id.clone(), &["/bin/true"]))?;
        let created = t.elapsed();
        mgr.start(&id)?;
        let started = t.elapsed();
        let st = mgr.wait(&id)?;
        let d = t.elapsed();
        if st.exit_code != Some(0) {
            bail!("k1s: /bin/true exited with {:?}", st.exit_code);
        }
        samples.push(d);
        phases[0].push(created);
        phases[1].push(started - created);
        phases[2].push(d - started);
        busy += d;
        mgr.remove(&id)?;
    }
    samples
        .report(
            "runtime k1s create+start+wait",
            args.runs as u64,
            Some(busy),
        )
        .note("new shim (a pod's first container), cgroup, overlayfs, seccomp")
        .print();
    for (name, p) in ["create", "start", "wait"].iter().zip(phases) {
        p.report(&format!("runtime k1s   of which {name}"), 0, None)
            .print();
    }
    in_running_pod(args, mgr, &spec)?;

    if !args.no_peers {
        peers(args, tmp, rootfs)?;
    }
    shim_memory(args, mgr, &spec)
}

fn peers(args: &RuntimeArgs, tmp: &Path, rootfs: &Path) -> Result<()> {
    let bundle = tmp.join("bundle");
    std::fs::create_dir_all(&bundle)?;
    let st = Command::new("runc")
        .arg("spec")
        .current_dir(&bundle)
        .status()
        .context("runc spec (apt-get install runc)")?;
    if !st.success() {
        bail!("runc spec failed");
    }
    let cfg_path = bundle.join("config.json");
    let mut cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(&cfg_path)?)?;
    cfg["root"] = serde_json::json!({ "path": rootfs, "readonly": false });
    cfg["process"]["args"] = serde_json::json!(["/bin/true"]);
    cfg["process"]["terminal"] = serde_json::json!(false);
    std::fs::write(&cfg_path, serde_json::to_vec(&cfg)?)?;

    peer_runs(args, tmp, &bundle, "")?;
    if args.peer_seccomp {
        let caps = k1s_runtime::container::capabilities::compute(false, &[], &[])?;
        cfg["linux"]["seccomp"] = k1s_runtime::container::seccomp::runtime_default_oci(&caps);
        std::fs::write(&cfg_path, serde_json::to_vec(&cfg)?)?;
        peer_runs(args, tmp, &bundle, " +seccomp")?;
    }

    let mut samples = Samples::with_capacity(args.runs);
    let mut busy = Duration::ZERO;
    for _ in 0..args.runs {
        let t = Instant::now();
        let st = Command::new("unshare")
            .args(["-pmuin", "-f", "chroot"])
            .arg(rootfs)
            .arg("/bin/true")
            .status()?;
        let d = t.elapsed();
        if !st.success() {
            bail!("unshare failed: {st}");
        }
        samples.push(d);
        busy += d;
    }
    samples
        .report(
            "runtime floor unshare -pmuin chroot",
            args.runs as u64,
            Some(busy),
        )
        .print();
    Ok(())
}

/// `runc run` then `crun run` of the bundle's config as it is; `tag` names the variant.
fn peer_runs(args: &RuntimeArgs, tmp: &Path, bundle: &Path, tag: &str) -> Result<()> {
    let state = tmp.join("runc-state");
    let mut samples = Samples::with_capacity(args.runs);
    let mut busy = Duration::ZERO;
    for i in 0..args.runs + 3 {
        let t = Instant::now();
        let st = Command::new("runc")
            .arg("--root")
            .arg(&state)
            .args(["run", "-b"])
            .arg(bundle)
            .arg(format!(
                "k1s-bench-runc-{}-{}{i}",
                std::process::id(),
                tag.len()
            ))
            .stdin(Stdio::null())
            .status()?;
        let d = t.elapsed();
        if !st.success() {
            bail!("runc run failed: {st}");
        }
        if i >= 3 {
            samples.push(d);
            busy += d;
        }
    }
    samples
        .report(
            &format!("runtime runc run{tag}"),
            args.runs as u64,
            Some(busy),
        )
        .print();

    let (crun, overhead) = crun_loop(
        args.runs,
        bundle,
        &tmp.join(format!("crun-state{}", tag.len())),
    )?;
    let mut s = Samples::with_capacity(crun.len());
    let total: Duration = crun.iter().sum();
    crun.into_iter().for_each(|d| s.push(d));
    let mut o = Samples::with_capacity(overhead.len());
    overhead.into_iter().for_each(|d| o.push(d));
    let o = o.report("", 0, None);
    s.report(
        &format!("runtime crun run{tag} (shell-timed)"),
        args.runs as u64,
        Some(total),
    )
    .note(format!(
        "timing overhead of the shell loop itself: p50 {}",
        super::stats::ms(o.p50)
    ))
    .print();

    Ok(())
}

/// crun in a private mount namespace with the cgroup2 mount hidden, timed by the shell; also the
/// same loop around `/bin/true` (the method's overhead).
fn crun_loop(runs: usize, bundle: &Path, state: &Path) -> Result<(Vec<Duration>, Vec<Duration>)> {
    let script = format!(
        "set -e; umount /sys/fs/cgroup/unified 2>/dev/null || true; \
         for i in $(seq 1 {n}); do s=$(date +%s%N); crun --root '{state}' run -b '{bundle}' k1s-bench-crun-$$-$i; \
         e=$(date +%s%N); echo c $((e-s)); done; \
         for i in $(seq 1 {n}); do s=$(date +%s%N); /bin/true; e=$(date +%s%N); echo t $((e-s)); done",
        n = runs + 3,
        state = state.display(),
        bundle = bundle.display()
    );
    let out = Command::new("unshare")
        .args(["-m", "--", "sh", "-c", &script])
        .stdin(Stdio::null())
        .output()
        .context("crun (apt-get install crun)")?;
    if !out.status.success() {
        bail!("crun loop failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let pick = |tag: &str| -> Vec<Duration> {
        text.lines()
            .filter_map(|l| l.strip_prefix(tag)?.trim().parse::<u64>().ok())
            .map(Duration::from_nanos)
            .skip(3)
            .collect()
    };
    Ok((pick("c "), pick("t ")))
}

/// Create + start + wait of `/bin/true` as a further container of a pod whose shim runs.
fn in_running_pod(
    args: &RuntimeArgs,
    mgr: &ContainerManager,
    spec: &dyn Fn(String, &[&str]) -> ContainerSpec,
) -> Result<()> {
    let in_pod = |id: &str, cmd: &[&str]| ContainerSpec {
        pod_id: "bench-pod".into(),
        ..spec(id.to_string(), cmd)
    };
    let result = (|| -> Result<()> {
        mgr.create(&in_pod("holder", &["sleep", "1000"]))?;
        mgr.start("holder")?;
        let mut samples = Samples::with_capacity(args.runs);
        let mut busy = Duration::ZERO;
        for i in 0..args.runs {
            let id = format!("p{i}");
            let t = Instant::now();
            mgr.create(&in_pod(&id, &["/bin/true"]))?;
            mgr.start(&id)?;
            let st = mgr.wait(&id)?;
            let d = t.elapsed();
            if st.exit_code != Some(0) {
                bail!("k1s: /bin/true in a pod exited with {:?}", st.exit_code);
            }
            samples.push(d);
            busy += d;
            mgr.remove(&id)?;
        }
        samples
            .report(
                "runtime k1s create+start+wait in a running pod",
                args.runs as u64,
                Some(busy),
            )
            .note("the pod's shim creates it")
            .print();
        Ok(())
    })();
    let _ = mgr.stop("holder", 9, Duration::from_secs(5));
    let _ = mgr.remove("holder");
    result
}

/// VmRSS and Pss of the pod shims with `rss_containers` containers running, `per_pod` a pod, each
/// container printing a line every 0.2 s: sampled right after the starts, and again after
/// `--rss-settle-ms` (a shim sheds its set-up's pages once it has had nothing but output to handle
/// for a second).
fn shim_memory(
    args: &RuntimeArgs,
    mgr: &ContainerManager,
    spec: &dyn Fn(String, &[&str]) -> ContainerSpec,
) -> Result<()> {
    let ids: Vec<String> = (0..args.rss_containers)
        .map(|i| format!("rss{i}"))
        .collect();
    let logger = ["sh", "-c", "while :; do echo tick; sleep 0.2; done"];
    let result = (|| -> Result<()> {
        let per_pod = args.per_pod.max(1);
        for (i, id) in ids.iter().enumerate() {
            mgr.create(&ContainerSpec {
                pod_id: format!("rss-pod{}", i / per_pod),
                ..spec(id.clone(), &logger)
            })?;
            mgr.start(id)?;
        }
        let mut shims = std::collections::BTreeSet::new();
        for id in &ids {
            let st = mgr.status(id)?;
            if st.phase != Phase::Running {
                bail!("{id} is not running");
            }
            shims.insert(st.shim_pid);
        }
        print_shim_memory("right after the starts", ids.len(), &shims)?;
        // A measurement period, not a wait for a condition: the figure is the steady state.
        std::thread::sleep(Duration::from_millis(args.rss_settle_ms));
        for id in &ids {
            if mgr.status(id)?.phase != Phase::Running {
                bail!("{id} stopped while settling");
            }
        }
        print_shim_memory(
            &format!("after {} ms of logging", args.rss_settle_ms),
            ids.len(),
            &shims,
        )?;
        if let Some(first) = ids.first() {
            let log = std::fs::read_to_string(mgr.log_path(first)?)?;
            let logged = log.lines().filter(|l| l.ends_with(" tick")).count();
            println!("runtime shim memory: {first} logged {logged} lines meanwhile");
        }
        Ok(())
    })();
    for id in &ids {
        let _ = mgr.stop(id, 9, Duration::from_secs(5));
        let _ = mgr.remove(id);
    }
    result
}

/// One line of VmRSS and Pss over `shims`, then the first shim's breakdown.
fn print_shim_memory(
    when: &str,
    containers: usize,
    shims: &std::collections::BTreeSet<i32>,
) -> Result<()> {
    let mut rss = Vec::new();
    let mut pss = Vec::new();
    for pid in shims {
        rss.push(kb_field(&format!("/proc/{pid}/status"), "VmRSS:")?);
        pss.push(kb_field(&format!("/proc/{pid}/smaps_rollup"), "Pss:")?);
    }
    if let Some(first) = shims.iter().next() {
        super::smaps::print_breakdown(&format!("runtime shim {first}"), *first as u32, 10)?;
    }
    let avg = |v: &[u64]| v.iter().sum::<u64>() / v.len().max(1) as u64;
    println!(
        "runtime shim memory {when} ({containers} containers, {} pod shims)  VmRSS avg {} KiB max {} KiB  Pss avg {} KiB max {} KiB",
        shims.len(),
        avg(&rss),
        rss.iter().max().unwrap_or(&0),
        avg(&pss),
        pss.iter().max().unwrap_or(&0)
    );
    Ok(())
}
