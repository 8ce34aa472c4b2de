//! `k1s bench cluster`: the control plane at scale (issue 3, "Speed and scale").
//!
//! Spawns `k1s server --simulated-nodes N` on a temporary data dir and, over HTTPS:
//! 1. creates a `--replicas` Deployment and times it to `availableReplicas == replicas` with
//!    `observedGeneration == generation` (the deployment is polled every `--poll`);
//! 2. changes its image and times the rolling update until `updatedReplicas ==
//!    availableReplicas == replicas` and no old ReplicaSet has replicas (spec or status);
//! 3. reports scheduler throughput from a pod watch opened before step 1: the instant each pod
//!    is first seen with `spec.nodeName`, pods/s from the first to the last bind (and, to tell
//!    the scheduler from the ReplicaSet controller, the rate pods appeared at and the
//!    create-to-bind lag);
//! 4. deletes that Deployment, waits for its pods to go, then creates `--deployments` Deployments
//!    of `--per-deployment` replicas, times them to all available and reads the server's
//!    VmRSS/VmHWM;
//! 5. with those pods in place, reads the server's utime+stime over `--idle` of quiet and reports
//!    it as a percentage of one core.
//!
//! Every wait is bounded by `--step-timeout`; a step that does not finish reports what it saw
//! (status counts, pod phases, warning events) and the run goes on with the next independent step.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use clap::Args;
use http_body_util::BodyExt;
use hyper::{Method, StatusCode};
use serde_json::{Value, json};

use super::api::{parse_duration, print_header};
use super::client::{Conn, Endpoint, Proto, endpoint_from_kubeconfig, snippet};
use super::spawn::{self, mib};

#[derive(Args, Debug)]
pub struct ClusterArgs {
    /// The k1s binary to spawn (default: this executable).
    #[arg(long)]
    pub bin: Option<PathBuf>,
    /// Simulated nodes (`--simulated-nodes`).
    #[arg(long, default_value_t = 10)]
    pub nodes: usize,
    /// Capacity of each simulated node (`--simulated-node-capacity`).
    #[arg(long, default_value = "cpu=64,memory=256Gi,pods=1100")]
    pub node_capacity: String,
    /// Replicas of the Deployment in steps 1-3.
    #[arg(long, default_value_t = 1000)]
    pub replicas: u64,
    /// Deployments in step 4.
    #[arg(long, default_value_t = 100)]
    pub deployments: u64,
    /// Replicas of each Deployment in step 4.
    #[arg(long, default_value_t = 100)]
    pub per_deployment: u64,
    /// Skip steps 4 and 5 (the many-Deployments RSS and idle CPU).
    #[arg(long)]
    pub skip_10k: bool,
    /// Longest wait of any one step before it is reported as not finished.
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    pub step_timeout: Duration,
    /// Poll interval while waiting for a Deployment's status.
    #[arg(long, default_value = "20ms", value_parser = parse_duration)]
    pub poll: Duration,
    /// Quiet time before the idle CPU is measured (step 5).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub settle: Duration,
    /// How long the idle CPU is measured (step 5).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub idle: Duration,
    /// Where the temporary data dir goes (default: the system temp dir).
    #[arg(long)]
    pub tmp: Option<PathBuf>,
}

const NS_BIG: &str = "bench-big";
const NS_MANY: &str = "bench-many";
const IMAGE_V1: &str = "registry.k8s.io/pause:3.9";
const IMAGE_V2: &str = "registry.k8s.io/pause:3.10";
/// USER_HZ: the unit of utime/stime in /proc/PID/stat on Linux.
pub(super) const CLOCK_TICKS: f64 = 100.0;

pub async fn run(args: ClusterArgs) -> Result<()> {
    let bin = spawn::binary(&args.bin)?;
    let mut b = tempfile::Builder::new();
    b.prefix("k1s-bench-cluster-");
    let tmp = match &args.tmp {
        Some(d) => b.tempdir_in(d)?,
        None => b.tempdir()?,
    };
    let nodes = args.nodes.to_string();
    let extra = [
        "--simulated-nodes",
        nodes.as_str(),
        "--simulated-node-capacity",
        args.node_capacity.as_str(),
    ];
    print_header("cluster");
    let (server, started) = spawn::start(&bin, tmp.path(), &extra).await?;
    println!(
        "spawned {} server --simulated-nodes {} --simulated-node-capacity {} (pid {}) on {} at {}; ready in {:.0} ms",
        bin.display(),
        args.nodes,
        args.node_capacity,
        server.pid,
        tmp.path().display(),
        server.url,
        started.elapsed().as_secs_f64() * 1e3
    );
    let ep = endpoint_from_kubeconfig(&server.kubeconfig)?;
    let result = steps(&args, &ep, server.pid).await;
    if let Ok((rss, hwm)) = server.rss_kib() {
        // After step 5's list of every pod (the bench's own, as a `kubectl get pods -A`).
        println!("server RSS at the end: {} (peak {})", mib(rss), mib(hwm));
    }
    let stopped = server.stop().await;
    let failed = result?;
    stopped?;
    if !failed.is_empty() {
        bail!("steps not finished: {}", failed.join(", "));
    }
    Ok(())
}

/// Runs the steps; returns the names of those that did not finish.
async fn steps(args: &ClusterArgs, ep: &Endpoint, pid: u32) -> Result<Vec<String>> {
    let mut admin = ep.connect(Proto::Http2).await?;
    admin
        .call(Method::GET, "/version", None)
        .await
        .context("the server does not answer /version")?;
    wait_nodes_ready(&mut admin, args.nodes, args.step_timeout).await?;
    let mut failed = Vec::new();
    let mut summary = Vec::new();

    // Steps 1 and 3: create, with a pod watch recording binds.
    ensure_namespace(&mut admin, NS_BIG).await?;
    let binds = BindWatch::open(ep, NS_BIG).await?;
    let deploy_path = format!("/apis/apps/v1/namespaces/{NS_BIG}/deployments");
    let created = Instant::now();
    admin
        .call(
            Method::POST,
            &deploy_path,
            Some(deployment("big", args.replicas, IMAGE_V1)),
        )
        .await?;
    let one = format!("{deploy_path}/big");
    let step1 = wait_deployment(&mut admin, &one, args, None).await;
    let mut rolled_out = false;
    match &step1 {
        Ok(d) => {
            println!(
                "1. {} replicas created -> available: {:.2} s (target <= 5 s: {})",
                args.replicas,
                d.as_secs_f64(),
                met(d.as_secs_f64() <= 5.0)
            );
            summary.push(format!("create {:.2} s", d.as_secs_f64()));
            rolled_out = true;
        }
        Err(e) => {
            println!("1. NOT FINISHED: {e:#}");
            report_stuck(&mut admin, NS_BIG).await;
            failed.push("1 create".to_owned());
        }
    }
    // Step 3 from the watch: give late events a moment.
    tokio::time::sleep(Duration::from_millis(200)).await;
    match binds.throughput(created) {
        Some(t) => {
            println!(
                "3. scheduler: {} pods bound; first bind {:.0} ms after the create, last {:.0} ms; {:.0} pods/s first to last bind (target >= 1000: {})",
                t.bound,
                t.first.as_secs_f64() * 1e3,
                t.last.as_secs_f64() * 1e3,
                t.rate,
                met(t.rate >= 1000.0)
            );
            println!(
                "   pods appeared at {:.0} pods/s (first to last ADDED); create-to-bind lag p50 {:.0} ms, max {:.0} ms",
                t.created_rate,
                t.lag_p50.as_secs_f64() * 1e3,
                t.lag_max.as_secs_f64() * 1e3
            );
            summary.push(format!("bind {:.0} pods/s", t.rate));
        }
        None => {
            println!("3. NOT MEASURED: the pod watch saw fewer than two binds");
            failed.push("3 scheduler".to_owned());
        }
    }
    binds.close();

    // Step 2: rolling update.
    if rolled_out {
        match rolling_update(&mut admin, &one, args).await {
            Ok(d) => {
                println!(
                    "2. rolling update of {} replicas: {:.2} s (target <= 10 s: {})",
                    args.replicas,
                    d.as_secs_f64(),
                    met(d.as_secs_f64() <= 10.0)
                );
                summary.push(format!("roll {:.2} s", d.as_secs_f64()));
            }
            Err(e) => {
                println!("2. NOT FINISHED: {e:#}");
                report_stuck(&mut admin, NS_BIG).await;
                failed.push("2 rolling update".to_owned());
            }
        }
    } else {
        println!("2. SKIPPED: step 1 did not finish");
        failed.push("2 rolling update".to_owned());
    }
    if let Ok((rss, hwm)) = spawn::rss_kib(pid) {
        println!(
            "   server RSS after steps 1-3: {} (peak {})",
            mib(rss),
            mib(hwm)
        );
    }

    if args.skip_10k {
        println!("summary: {}", summary.join("; "));
        return Ok(failed);
    }

    // Step 4: many deployments.
    let total = args.deployments * args.per_deployment;
    let cleared = Instant::now();
    admin
        .call_status(
            Method::DELETE,
            &format!("{one}?propagationPolicy=Background"),
            None,
        )
        .await?;
    match wait_no_pods(&mut admin, NS_BIG, args.step_timeout).await {
        Ok(()) => println!(
            "   deleted the {}-replica Deployment; its pods gone after {:.2} s",
            args.replicas,
            cleared.elapsed().as_secs_f64()
        ),
        Err(e) => println!("   warning: {e:#}; going on"),
    }
    ensure_namespace(&mut admin, NS_MANY).await?;
    match many(&mut admin, args).await {
        Ok(d) => {
            let (rss, hwm) = spawn::rss_kib(pid)?;
            println!(
                "4. {total} pods in {} Deployments of {}: all available after {:.2} s ({:.0} pods/s); server RSS {} (peak {}) (target <= 300 MB: {})",
                args.deployments,
                args.per_deployment,
                d.as_secs_f64(),
                total as f64 / d.as_secs_f64(),
                mib(rss),
                mib(hwm),
                met(rss as f64 * 1024.0 <= 300e6)
            );
            summary.push(format!(
                "{total} pods {:.2} s, RSS {} peak {}",
                d.as_secs_f64(),
                mib(rss),
                mib(hwm)
            ));
        }
        Err(e) => {
            println!("4. NOT FINISHED: {e:#}");
            report_stuck(&mut admin, NS_MANY).await;
            if let Ok((rss, hwm)) = spawn::rss_kib(pid) {
                println!("   server RSS now {} (peak {})", mib(rss), mib(hwm));
            }
            failed.push("4 many deployments".to_owned());
        }
    }

    // Step 5: idle CPU. Nothing of ours runs meanwhile (the admin connection stays open, idle).
    tokio::time::sleep(args.settle).await;
    let before = cpu_ticks(pid)?;
    let t0 = Instant::now();
    tokio::time::sleep(args.idle).await;
    let after = cpu_ticks(pid)?;
    let secs = t0.elapsed().as_secs_f64();
    let pct = (after - before) as f64 / CLOCK_TICKS / secs * 100.0;
    // Before the list below: answering a list of every pod is itself a burst of server memory.
    if let Ok((rss, hwm)) = spawn::rss_kib(pid) {
        println!(
            "   server RSS after the idle phase: {} (peak {})",
            mib(rss),
            mib(hwm)
        );
    }
    let pods = count_pods(&mut admin).await.unwrap_or(0);
    println!(
        "5. idle CPU with {pods} pods: {pct:.2}% of one core over {secs:.1} s ({} ticks, after {:.0} s settling) (target < 1%: {})",
        after - before,
        args.settle.as_secs_f64(),
        met(pct < 1.0)
    );
    summary.push(format!("idle {pct:.2}% CPU"));
    println!("summary: {}", summary.join("; "));
    Ok(failed)
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

fn deployment(name: &str, replicas: u64, image: &str) -> Bytes {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{
                    "name": "app",
                    "image": image,
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}
                }]}
            }
        }
    })
    .to_string()
    .into()
}

async fn ensure_namespace(conn: &mut Conn, name: &str) -> Result<()> {
    let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    let (status, resp) = conn
        .call_status(
            Method::POST,
            "/api/v1/namespaces",
            Some(body.to_string().into()),
        )
        .await?;
    if !status.is_success() && status != StatusCode::CONFLICT {
        bail!("creating namespace {name}: {status}: {}", snippet(&resp));
    }
    Ok(())
}

pub(super) async fn get_json(conn: &mut Conn, path: &str) -> Result<Value> {
    let body = conn.call(Method::GET, path, None).await?;
    serde_json::from_slice(&body).with_context(|| format!("parsing the response to {path}"))
}

fn int(v: &Value, ptr: &str) -> i64 {
    v.pointer(ptr).and_then(Value::as_i64).unwrap_or(0)
}

/// Waits for `nodes` Ready nodes.
async fn wait_nodes_ready(conn: &mut Conn, nodes: usize, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let list = get_json(conn, "/api/v1/nodes").await?;
        let ready = list["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter(|n| {
                        n.pointer("/status/conditions")
                            .and_then(Value::as_array)
                            .is_some_and(|cs| {
                                cs.iter()
                                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
                            })
                    })
                    .count()
            })
            .unwrap_or(0);
        if ready >= nodes {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("only {ready} of {nodes} simulated nodes Ready after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls one Deployment until it is fully available at its current generation (and, with
/// `image`, fully updated with no old ReplicaSet holding replicas). Returns the time from the
/// call; on timeout the error holds the last status seen.
async fn wait_deployment(
    conn: &mut Conn,
    path: &str,
    args: &ClusterArgs,
    image: Option<&str>,
) -> Result<Duration> {
    let t0 = Instant::now();
    let deadline = t0 + args.step_timeout;
    loop {
        let d = get_json(conn, path).await?;
        let want = int(&d, "/spec/replicas");
        let generation = int(&d, "/metadata/generation");
        let observed = int(&d, "/status/observedGeneration");
        let replicas = int(&d, "/status/replicas");
        let updated = int(&d, "/status/updatedReplicas");
        let available = int(&d, "/status/availableReplicas");
        let mut last = format!(
            "generation {generation}, observed {observed}, replicas {replicas}, updated {updated}, available {available} of {want}"
        );
        let mut done = observed == generation && available == want;
        if done && image.is_some() {
            done = updated == want && replicas == want;
        }
        if done && let Some(image) = image {
            let (old, holding) = old_replicasets(conn, path, image).await?;
            last = format!("{last}; {holding} of {old} old ReplicaSets still hold replicas");
            done = holding == 0;
        }
        if done {
            return Ok(t0.elapsed());
        }
        if Instant::now() > deadline {
            bail!("after {:?}: {last}", args.step_timeout);
        }
        tokio::time::sleep(args.poll).await;
    }
}

/// ReplicaSets of the Deployment at `path` whose image is not `image`: (count, how many of them
/// still have spec or status replicas).
async fn old_replicasets(conn: &mut Conn, deploy_path: &str, image: &str) -> Result<(u64, u64)> {
    let rs_path = deploy_path
        .rsplit_once("/deployments/")
        .map(|(ns, _)| format!("{ns}/replicasets"))
        .ok_or_else(|| anyhow!("bad deployment path {deploy_path}"))?;
    let list = get_json(conn, &rs_path).await?;
    let (mut old, mut holding) = (0, 0);
    for rs in list["items"].as_array().into_iter().flatten() {
        let img = rs.pointer("/spec/template/spec/containers/0/image");
        if img.and_then(Value::as_str) == Some(image) {
            continue;
        }
        old += 1;
        if int(rs, "/spec/replicas") != 0 || int(rs, "/status/replicas") != 0 {
            holding += 1;
        }
    }
    Ok((old, holding))
}

/// Step 2: PUTs the Deployment with a new image and waits for the rollout.
async fn rolling_update(conn: &mut Conn, path: &str, args: &ClusterArgs) -> Result<Duration> {
    let mut d = get_json(conn, path).await?;
    let image = d
        .pointer_mut("/spec/template/spec/containers/0/image")
        .ok_or_else(|| anyhow!("the Deployment has no container image"))?;
    *image = Value::from(IMAGE_V2);
    let t0 = Instant::now();
    conn.call(Method::PUT, path, Some(d.to_string().into()))
        .await?;
    wait_deployment(conn, path, args, Some(IMAGE_V2)).await?;
    Ok(t0.elapsed())
}

/// Waits until namespace `ns` holds no pods.
async fn wait_no_pods(conn: &mut Conn, ns: &str, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let list = get_json(conn, &format!("/api/v1/namespaces/{ns}/pods")).await?;
        let n = list["items"].as_array().map_or(0, Vec::len);
        if n == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{n} pods still in {ns} after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn count_pods(conn: &mut Conn) -> Result<usize> {
    let list = get_json(conn, "/api/v1/pods").await?;
    Ok(list["items"].as_array().map_or(0, Vec::len))
}

/// Step 4: creates the Deployments (8 concurrent streams) and polls their list until all are
/// available at their generation.
async fn many(conn: &mut Conn, args: &ClusterArgs) -> Result<Duration> {
    let path = format!("/apis/apps/v1/namespaces/{NS_MANY}/deployments");
    let t0 = Instant::now();
    let mut creating = tokio::task::JoinSet::new();
    let per_stream = args.deployments.div_ceil(8).max(1);
    for s in 0..8u64 {
        let mut c = conn
            .stream()
            .ok_or_else(|| anyhow!("the admin connection is not HTTP/2"))?;
        let path = path.clone();
        let (from, to) = (s * per_stream, ((s + 1) * per_stream).min(args.deployments));
        let per = args.per_deployment;
        creating.spawn(async move {
            for i in from..to {
                let body = deployment(&format!("d{i:03}"), per, IMAGE_V1);
                c.call(Method::POST, &path, Some(body)).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = creating.join_next().await {
        r.map_err(|e| anyhow!("create task: {e}"))??;
    }
    println!(
        "   created {} Deployments in {:.2} s",
        args.deployments,
        t0.elapsed().as_secs_f64()
    );
    let deadline = t0 + args.step_timeout;
    let want = args.deployments * args.per_deployment;
    loop {
        let list = get_json(conn, &path).await?;
        let items = list["items"].as_array().cloned().unwrap_or_default();
        let available: i64 = items
            .iter()
            .map(|d| int(d, "/status/availableReplicas"))
            .sum();
        let done_deploys = items
            .iter()
            .filter(|d| {
                int(d, "/status/observedGeneration") == int(d, "/metadata/generation")
                    && int(d, "/status/availableReplicas") == int(d, "/spec/replicas")
            })
            .count();
        if done_deploys as u64 == args.deployments {
            return Ok(t0.elapsed());
        }
        if Instant::now() > deadline {
            bail!(
                "after {:?}: {available} of {want} replicas available, {done_deploys} of {} Deployments complete",
                args.step_timeout,
                args.deployments
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What a stuck step looked like: pods by phase and binding, ReplicaSets, warning events.
async fn report_stuck(conn: &mut Conn, ns: &str) {
    let report = async {
        let pods = get_json(conn, &format!("/api/v1/namespaces/{ns}/pods")).await?;
        let mut phases: BTreeMap<String, u64> = BTreeMap::new();
        for p in pods["items"].as_array().into_iter().flatten() {
            let phase = p
                .pointer("/status/phase")
                .and_then(Value::as_str)
                .unwrap_or("-");
            let bound = p
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .is_some_and(|n| !n.is_empty());
            let ready = p
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                });
            let deleting = p.pointer("/metadata/deletionTimestamp").is_some();
            let key = format!(
                "{phase}{}{}{}",
                if bound { "" } else { " unbound" },
                if ready { " ready" } else { "" },
                if deleting { " deleting" } else { "" }
            );
            *phases.entry(key).or_default() += 1;
        }
        println!("   pods in {ns}: {phases:?}");
        let rss = get_json(conn, &format!("/apis/apps/v1/namespaces/{ns}/replicasets")).await?;
        for rs in rss["items"].as_array().into_iter().flatten().take(5) {
            println!(
                "   ReplicaSet {}: spec {}, status replicas {}, ready {}, available {}",
                rs.pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("?"),
                int(rs, "/spec/replicas"),
                int(rs, "/status/replicas"),
                int(rs, "/status/readyReplicas"),
                int(rs, "/status/availableReplicas")
            );
        }
        let events = get_json(conn, &format!("/api/v1/namespaces/{ns}/events")).await?;
        let mut reasons: BTreeMap<String, (u64, String)> = BTreeMap::new();
        for e in events["items"].as_array().into_iter().flatten() {
            if e["type"] != "Warning" {
                continue;
            }
            let reason = e["reason"].as_str().unwrap_or("?").to_owned();
            let entry = reasons.entry(reason).or_default();
            entry.0 += 1;
            entry.1 = e["message"].as_str().unwrap_or("").to_owned();
        }
        for (reason, (n, msg)) in reasons {
            println!("   warning events {reason} x{n}, e.g. {msg:?}");
        }
        anyhow::Ok(())
    };
    if let Err(e) = report.await {
        println!("   (could not read the cluster state: {e:#})");
    }
}

/// utime + stime of a process, in clock ticks.
pub(super) fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    let after_comm = stat
        .rsplit_once(')')
        .ok_or_else(|| anyhow!("unexpected /proc/{pid}/stat"))?
        .1;
    // Fields after the command name start at field 3 (state); utime is 14, stime 15.
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let field = |n: usize| -> Result<u64> {
        fields
            .get(n - 3)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| anyhow!("no field {n} in /proc/{pid}/stat"))
    };
    Ok(field(14)? + field(15)?)
}

/// Pod name -> (first seen, first seen with `spec.nodeName`).
type Seen = HashMap<String, (Instant, Option<Instant>)>;

/// A pod watch on one namespace that records when each pod is first seen (created) and first
/// seen bound.
struct BindWatch {
    bound: Arc<Mutex<Seen>>,
    task: tokio::task::JoinHandle<()>,
}

struct Throughput {
    bound: usize,
    first: Duration,
    last: Duration,
    rate: f64,
    /// Pods/s from the first to the last pod seen created.
    created_rate: f64,
    /// Median and largest time from a pod's creation to its bind, as seen by the watch.
    lag_p50: Duration,
    lag_max: Duration,
}

/// Watches the pods of `ns` from now on (a LIST for the resourceVersion, then a watch on its own
/// connection) and calls `on_event` with each event's arrival time and the parsed event, on a
/// task that ends with the watch.
pub(super) async fn watch_pods(
    ep: &Endpoint,
    ns: &str,
    mut on_event: impl FnMut(Instant, Value) + Send + 'static,
) -> Result<tokio::task::JoinHandle<()>> {
    let mut conn = ep.connect(Proto::Http1).await?;
    let path = format!("/api/v1/namespaces/{ns}/pods");
    let listed = get_json(&mut conn, &format!("{path}?limit=1")).await?;
    let rv = listed
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("the pod LIST has no metadata.resourceVersion"))?
        .to_owned();
    let resp = conn
        .send(
            Method::GET,
            &format!("{path}?watch=1&resourceVersion={rv}&timeoutSeconds=3600"),
            None,
        )
        .await?;
    if resp.status() != StatusCode::OK {
        bail!("pod watch: {}", resp.status());
    }
    let mut body = resp.into_body();
    Ok(tokio::spawn(async move {
        let _conn = conn;
        let mut buf: Vec<u8> = Vec::new();
        while let Some(Ok(frame)) = body.frame().await {
            let at = Instant::now();
            let Ok(data) = frame.into_data() else {
                continue;
            };
            for line in super::client::lines(&mut buf, &data) {
                if let Ok(ev) = serde_json::from_slice::<Value>(&line) {
                    on_event(at, ev);
                }
            }
        }
    }))
}

impl BindWatch {
    async fn open(ep: &Endpoint, ns: &str) -> Result<BindWatch> {
        let bound: Arc<Mutex<Seen>> = Arc::default();
        let seen = bound.clone();
        let task = watch_pods(ep, ns, move |at, ev| {
            let node = ev
                .pointer("/object/spec/nodeName")
                .and_then(Value::as_str)
                .unwrap_or("");
            let name = ev
                .pointer("/object/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            if name.is_empty() {
                return;
            }
            let mut m = seen.lock().unwrap_or_else(|e| e.into_inner());
            let entry = m.entry(name.to_owned()).or_insert((at, None));
            if !node.is_empty() && entry.1.is_none() {
                entry.1 = Some(at);
            }
        })
        .await?;
        Ok(BindWatch { bound, task })
    }

    fn throughput(&self, since: Instant) -> Option<Throughput> {
        let m = self.bound.lock().unwrap_or_else(|e| e.into_inner());
        let binds: Vec<Instant> = m.values().filter_map(|(_, b)| *b).collect();
        let first = *binds.iter().min()?;
        let last = *binds.iter().max()?;
        if binds.len() < 2 || last <= first {
            return None;
        }
        let c_first = m.values().map(|(c, _)| *c).min()?;
        let c_last = m.values().map(|(c, _)| *c).max()?;
        let mut lags: Vec<Duration> = m
            .values()
            .filter_map(|(c, b)| b.map(|b| b.saturating_duration_since(*c)))
            .collect();
        lags.sort();
        Some(Throughput {
            bound: binds.len(),
            first: first.saturating_duration_since(since),
            last: last.saturating_duration_since(since),
            rate: (binds.len() - 1) as f64 / (last - first).as_secs_f64(),
            created_rate: (m.len() - 1) as f64
                / c_last
                    .saturating_duration_since(c_first)
                    .as_secs_f64()
                    .max(1e-9),
            lag_p50: lags[lags.len() / 2],
            lag_max: lags[lags.len() - 1],
        })
    }

    fn close(self) {
        self.task.abort();
    }
}
