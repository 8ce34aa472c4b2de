//! One pod's worker: a task that syncs the pod's desired spec with what the runtime runs, woken by
//! pod updates, container exits (one waiting thread per running container) and back-off timers.
//!
//! Each sync, in order: terminate if the pod is being deleted (stop with the grace period, remove
//! containers, sandbox and cgroup, delete the object with a UID precondition); ensure the sandbox;
//! for each container: adopt the running one, restart an exited one per `restartPolicy` and
//! back-off, or pull its image and create and start it; then write the status if it changed.
//!
//! Invariants: the runtime is the source of truth for containers (ids encode pod, container and
//! attempt, see [`crate::containers::container_id`]), so a restarted kubelet re-adopts running
//! containers without restarting them; at most the current and the previous run of a container
//! exist (the previous one backs `lastState`); every blocking runtime call runs in
//! `spawn_blocking`; the worker ends only once the pod's runtime objects are gone.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use k1s_apimachinery::meta::now_rfc3339;
use k1s_runtime::container::{ContainerStatus, Phase, cgroup};
use k1s_runtime::image::Image;
use k1s_runtime::sandbox::{Sandbox, SandboxSpec};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::api::{self, PODS};
use crate::backoff::{Backoff, go_duration, go_duration_fine};
use crate::containers::{self, SpecInput, cgroup_parent, container_id, parse_id};
use crate::envvars;
use crate::probe;
use crate::qos::{self, QosClass};
use crate::status::{self, ContainerView, PodView, State, Terminated};
use crate::{Ctx, Runtime};

mod deadline;
mod hooks;
mod image;
mod probes;
mod report;
mod terminate;
mod volumes;

pub use image::{default_pull_policy, image_id};
pub use terminate::cleanup_pod;

/// What the dispatcher and the exit waiters tell a worker.
#[derive(Debug)]
pub enum Msg {
    Update(Value),
    /// The pod object is gone from the API.
    Deleted,
    /// A container of the pod exited.
    Exited,
    /// A probe's result flipped (after its thresholds) for container run `id`.
    Probe {
        id: String,
        kind: probe::Kind,
        ok: bool,
        message: Option<String>,
    },
    /// A probe failed without flipping the result (an Unhealthy event).
    ProbeFailed {
        id: String,
        message: String,
    },
}

/// Retry delay after a failed sandbox set-up or status write.
const RETRY: Duration = Duration::from_secs(2);
const SIGTERM: i32 = 15;
/// Retry delay of a container whose ConfigMap or Secret is missing.
const CONFIG_RETRY: Duration = Duration::from_secs(5);

/// One container's bookkeeping.
#[derive(Default)]
struct Cont {
    /// The attempt number of `current` (= restartCount).
    attempt: u32,
    current: Option<String>,
    last: Option<Terminated>,
    backoff: Backoff,
    waiting: Option<(String, Option<String>)>,
    image_id: String,
    /// The exited run a BackOff event was recorded for.
    backoff_reported: Option<String>,
}

struct Worker {
    ctx: Arc<Ctx>,
    pod: Value,
    uid: String,
    deleted: bool,
    tx: mpsc::UnboundedSender<Msg>,
    sandbox: Option<Sandbox>,
    conts: HashMap<String, Cont>,
    watched: HashSet<String>,
    pull_backoff: HashMap<String, (Backoff, Timestamp)>,
    start_time: String,
    last_status: Option<Value>,
    wake: Option<Instant>,
    /// An init container failed and the pod never restarts (the pod is Failed).
    init_failed: bool,
    /// Probers of running container runs, by runtime id.
    probers: HashMap<String, CancellationToken>,
    /// Readiness results by runtime id (none yet: not ready if a readiness probe is set).
    readiness: HashMap<String, bool>,
    /// Runs whose liveness or startup probe failed: to be killed (and restarted per policy).
    unhealthy: HashMap<String, probe::Kind>,
    /// Runs whose startup probe succeeded (runs without one count as started when running).
    started: HashSet<String>,
    shutdown: CancellationToken,
    /// The pod's volumes once set up.
    volumes: Option<crate::volumes::PodVolumes>,
    /// Keeps projected volumes current while the pod runs.
    projector: Option<volumes::Projector>,
    /// The pod ran past `activeDeadlineSeconds`: nothing starts again.
    deadline_exceeded: bool,
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(f).await.ok()
}

fn ts(s: Option<&str>) -> Option<Timestamp> {
    s.and_then(|s| s.parse().ok())
}

fn terminated(st: &ContainerStatus) -> Terminated {
    let code = st.exit_code.unwrap_or(-1);
    Terminated {
        exit_code: code,
        reason: st
            .reason
            .clone()
            .unwrap_or_else(|| if code == 0 { "Completed" } else { "Error" }.to_string()),
        message: st.message.clone(),
        started_at: st.started_at.clone(),
        finished_at: st.finished_at.clone(),
        container_id: format!("k1s://{}", st.id),
    }
}

/// Runs the worker of one pod until its runtime objects are gone and it is deleted.
pub async fn run(
    ctx: Arc<Ctx>,
    pod: Value,
    tx: mpsc::UnboundedSender<Msg>,
    mut rx: mpsc::UnboundedReceiver<Msg>,
    shutdown: CancellationToken,
) {
    let uid = pod["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let start_time = pod["status"]["startTime"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(now_rfc3339);
    let mut w = Worker {
        ctx,
        pod,
        uid,
        deleted: false,
        tx,
        sandbox: None,
        conts: HashMap::new(),
        watched: HashSet::new(),
        pull_backoff: HashMap::new(),
        start_time,
        last_status: None,
        wake: None,
        init_failed: false,
        probers: HashMap::new(),
        readiness: HashMap::new(),
        unhealthy: HashMap::new(),
        started: HashSet::new(),
        shutdown: shutdown.clone(),
        volumes: None,
        projector: None,
        deadline_exceeded: false,
    };
    w.adopt().await;
    loop {
        if w.sync().await {
            w.stop_probers(None);
            return;
        }
        let sleep = w
            .wake
            .map(|t| t.saturating_duration_since(Instant::now()))
            .unwrap_or(Duration::from_secs(3600));
        let msg = tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(sleep) => None,
            m = rx.recv() => match m { Some(m) => Some(m), None => return },
        };
        if shutdown.is_cancelled() {
            return;
        }
        let mut next = msg;
        // Take everything queued: one sync serves them all.
        loop {
            match next {
                Some(Msg::Update(p)) => w.pod = p,
                Some(Msg::Deleted) => w.deleted = true,
                Some(Msg::Probe {
                    id,
                    kind,
                    ok,
                    message,
                }) => w.on_probe(id, kind, ok, message),
                Some(Msg::ProbeFailed { id, message }) => w.unhealthy_event(&id, message),
                Some(Msg::Exited) | None => {}
            }
            next = match rx.try_recv() {
                Ok(m) => Some(m),
                Err(_) => break,
            };
        }
    }
}

impl Worker {
    fn runtime(&self) -> Runtime {
        self.ctx.runtime.clone()
    }

    fn node(&self) -> &str {
        &self.ctx.config.node_name
    }

    fn event(&self, field: Option<String>, type_: &str, reason: &str, message: String) {
        api::event(
            &self.ctx.client,
            self.node(),
            &self.pod,
            field.as_deref(),
            type_,
            reason,
            message,
        );
    }

    fn wake_at(&mut self, at: Instant) {
        self.wake = Some(self.wake.map_or(at, |w| w.min(at)));
    }

    fn qos(&self) -> QosClass {
        qos::of(&self.pod)
    }

    fn cgroup_parent(&self) -> String {
        cgroup_parent(&self.ctx.config.cgroup_root, self.qos(), &self.uid)
    }

    /// Finds the pod's sandbox and containers in the runtime (after a restart of k1s).
    async fn adopt(&mut self) {
        let rt = self.runtime();
        let uid = self.uid.clone();
        let found = blocking(move || {
            let sandbox = rt
                .sandboxes
                .get(&uid)
                .filter(|_| rt.sandboxes.is_alive(&uid));
            let mut conts: Vec<ContainerStatus> = rt
                .containers
                .list()
                .unwrap_or_default()
                .into_iter()
                .filter(|c| parse_id(&c.id).is_some_and(|(u, _, _)| u == uid))
                .collect();
            conts.sort_by_key(|c| parse_id(&c.id).map(|(_, _, a)| a));
            (sandbox, conts)
        })
        .await;
        let Some((sandbox, found)) = found else {
            return;
        };
        self.sandbox = sandbox;
        let mut by_name: HashMap<String, Vec<ContainerStatus>> = HashMap::new();
        for c in found {
            if let Some((_, name, _)) = parse_id(&c.id) {
                by_name.entry(name.to_string()).or_default().push(c);
            }
        }
        for (name, mut runs) in by_name {
            // Ascending attempts: the last is current, the one before backs lastState.
            let current = runs.pop();
            let previous = runs.pop();
            let stale: Vec<String> = runs.into_iter().map(|c| c.id).collect();
            if !stale.is_empty() {
                let rt = self.runtime();
                blocking(move || stale.iter().for_each(|id| drop(rt.containers.remove(id)))).await;
            }
            let Some(current) = current else { continue };
            let attempt = parse_id(&current.id).map_or(0, |(_, _, a)| a);
            let image_id = self.status_image_id(&name);
            tracing::info!(pod = %self.key(), container = %name, id = %current.id, "re-adopted container");
            self.conts.insert(
                name,
                Cont {
                    attempt,
                    current: Some(current.id),
                    last: previous.as_ref().map(terminated),
                    image_id,
                    ..Default::default()
                },
            );
        }
    }

    /// The imageID the API already shows for container `name` (kept across restarts).
    fn status_image_id(&self, name: &str) -> String {
        self.pod["status"]["containerStatuses"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| s["name"] == name)
            .and_then(|s| s["imageID"].as_str())
            .unwrap_or_default()
            .to_string()
    }

    fn key(&self) -> String {
        let (ns, name) = self.ns_name();
        format!("{ns}/{name}")
    }

    /// The pod's namespace and name.
    fn ns_name(&self) -> (String, String) {
        let meta = &self.pod["metadata"];
        (
            meta["namespace"].as_str().unwrap_or_default().to_string(),
            meta["name"].as_str().unwrap_or_default().to_string(),
        )
    }

    /// One sync; `true` once the pod is gone and its worker can end.
    async fn sync(&mut self) -> bool {
        self.wake = None;
        if self.deleted || !self.pod["metadata"]["deletionTimestamp"].is_null() {
            return self.terminate().await;
        }
        if self.check_deadline() {
            self.write_status().await;
            return false;
        }
        if !self.ensure_sandbox().await {
            self.wake_at(Instant::now() + RETRY);
            self.write_status().await;
            return false;
        }
        if !self.sync_volumes().await {
            self.write_status().await;
            return false;
        }
        if self.sync_init_containers().await {
            let specs = self.specs("containers");
            let policy = self.pod_policy().to_string();
            for c in &specs {
                self.sync_container(c, &policy).await;
            }
            // Ephemeral containers (`kubectl debug`) run once each, never restarted.
            for c in &self.specs("ephemeralContainers") {
                self.sync_container(c, "Never").await;
            }
        }
        self.write_status().await;
        false
    }

    async fn ensure_sandbox(&mut self) -> bool {
        if self.sandbox.is_some() {
            return true;
        }
        let name = self.pod["metadata"]["name"].as_str().unwrap_or_default();
        let hostname: String = self.pod["spec"]["hostname"]
            .as_str()
            .unwrap_or(name)
            .chars()
            .take(63)
            .collect();
        let spec = SandboxSpec {
            id: self.uid.clone(),
            hostname: hostname.trim_end_matches(['-', '.']).to_string(),
            host_network: self.pod["spec"]["hostNetwork"].as_bool().unwrap_or(false),
            resolv_conf: crate::dns::resolv_conf(&self.pod, self.ctx.config.cluster_dns.as_ref()),
        };
        let rt = self.runtime();
        let created = blocking(move || {
            // A dead leftover (its namespaces gone) is replaced.
            if rt.sandboxes.get(&spec.id).is_some() {
                let _ = rt.sandboxes.remove(&spec.id);
            }
            rt.sandboxes.create(&spec)
        })
        .await;
        match created {
            Some(Ok(sb)) => {
                self.sandbox = Some(sb);
                true
            }
            Some(Err(e)) => {
                self.event(
                    None,
                    "Warning",
                    "FailedCreatePodSandBox",
                    format!("Failed to create pod sandbox: {e}"),
                );
                false
            }
            None => false,
        }
    }

    fn pod_policy(&self) -> &str {
        self.pod["spec"]["restartPolicy"]
            .as_str()
            .unwrap_or("Always")
    }

    fn specs(&self, field: &str) -> Vec<Value> {
        self.pod["spec"][field]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The runtime status of container `name`'s current run.
    async fn current_status(&self, name: &str) -> Option<ContainerStatus> {
        let id = self.conts.get(name)?.current.clone()?;
        let rt = self.runtime();
        blocking(move || rt.containers.status(&id).ok())
            .await
            .flatten()
    }

    /// Runs init containers in order, each to completion (a sidecar, `restartPolicy: Always`,
    /// only to running); `true` once all are done and the regular containers may start.
    async fn sync_init_containers(&mut self) -> bool {
        self.init_failed = false;
        for c in &self.specs("initContainers") {
            let name = c["name"].as_str().unwrap_or_default();
            let sidecar = c["restartPolicy"] == "Always";
            // Init containers are retried on failure unless the pod never restarts anything.
            let policy = match (sidecar, self.pod_policy()) {
                (true, _) => "Always",
                (false, "Never") => "Never",
                (false, _) => "OnFailure",
            };
            self.sync_container(c, policy).await;
            let st = self.current_status(name).await;
            match st {
                Some(st) if sidecar && st.phase == Phase::Running => continue,
                Some(st) if !sidecar && st.phase == Phase::Exited && st.exit_code == Some(0) => {
                    continue;
                }
                Some(st)
                    if policy == "Never" && matches!(st.phase, Phase::Exited | Phase::Unknown) =>
                {
                    self.init_failed = true;
                    return false;
                }
                _ => return false,
            }
        }
        true
    }

    fn restart_wanted(policy: &str, exit_code: i32) -> bool {
        match policy {
            "Never" => false,
            "OnFailure" => exit_code != 0,
            _ => true,
        }
    }

    async fn sync_container(&mut self, c: &Value, policy: &str) {
        let name = c["name"].as_str().unwrap_or_default().to_string();
        let pod_name = self.pod["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let field = Some(self.field_path(&name));
        let current = self.conts.get(&name).and_then(|k| k.current.clone());
        if let Some(id) = current {
            let rt = self.runtime();
            let idc = id.clone();
            let st = blocking(move || rt.containers.status(&idc)).await;
            match st {
                Some(Ok(st)) if st.phase == Phase::Running => {
                    self.watch_exit(&id);
                    if let Some(kind) = self.unhealthy.remove(&id) {
                        self.kill_unhealthy(c, &name, &id, kind);
                    } else {
                        self.ensure_probers(c, &id);
                    }
                    return;
                }
                Some(Ok(st)) if matches!(st.phase, Phase::Exited | Phase::Unknown) => {
                    self.stop_probers(Some(&id));
                    let t = terminated(&st);
                    if !Self::restart_wanted(policy, t.exit_code) {
                        return;
                    }
                    let now = Timestamp::now();
                    let finished = ts(t.finished_at.as_deref()).unwrap_or(now);
                    let ns = self.pod["metadata"]["namespace"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    let cont = self.conts.entry(name.clone()).or_default();
                    if let Some(until) = cont.backoff.wait_until(finished, now) {
                        let msg = format!(
                            "back-off {} restarting failed container={name} pod={pod_name}_{ns}({})",
                            go_duration(cont.backoff.delay()),
                            self.uid
                        );
                        cont.waiting = Some(("CrashLoopBackOff".into(), Some(msg.clone())));
                        let report = cont.backoff_reported.as_deref() != Some(id.as_str());
                        cont.backoff_reported = Some(id.clone());
                        let left = until.duration_since(now).unsigned_abs();
                        self.wake_at(Instant::now() + left);
                        if report {
                            self.event(field, "Warning", "BackOff", format!("Back-off restarting failed container {name} in pod {pod_name}_{ns}({})", self.uid));
                        }
                        return;
                    }
                    cont.backoff.next(now);
                    // The run before this one goes; this one backs lastState.
                    let stale = cont
                        .last
                        .take()
                        .map(|l| l.container_id.trim_start_matches("k1s://").to_string());
                    cont.last = Some(t);
                    cont.current = None;
                    cont.attempt += 1;
                    if let Some(stale) = stale {
                        let rt = self.runtime();
                        blocking(move || drop(rt.containers.remove(&stale))).await;
                    }
                }
                // Created but never started (k1s died in between), or its state is gone.
                _ => {
                    let rt = self.runtime();
                    blocking(move || drop(rt.containers.remove(&id))).await;
                    if let Some(cont) = self.conts.get_mut(&name) {
                        cont.current = None;
                        cont.attempt += 1;
                    }
                }
            }
        }
        self.start_container(c, &name, field).await;
    }

    /// The event `fieldPath` of container `name`: `spec.containers{name}`, or the init or
    /// ephemeral list it is in.
    fn field_path(&self, name: &str) -> String {
        let list = ["initContainers", "ephemeralContainers"]
            .into_iter()
            .find(|l| {
                self.pod["spec"][*l]
                    .as_array()
                    .is_some_and(|cs| cs.iter().any(|c| c["name"] == name))
            })
            .unwrap_or("containers");
        format!("spec.{list}{{{name}}}")
    }

    /// The PID namespace of the running container `target` (an ephemeral container's
    /// `targetContainerName`), to join instead of a fresh one.
    async fn target_pid_namespace(&self, target: &str) -> Option<std::path::PathBuf> {
        let id = self.conts.get(target)?.current.clone()?;
        let rt = self.runtime();
        let st = blocking(move || rt.containers.status(&id).ok())
            .await
            .flatten()?;
        (st.phase == Phase::Running && st.pid > 0)
            .then(|| std::path::PathBuf::from(format!("/proc/{}/ns/pid", st.pid)))
    }

    /// Pulls the image if needed, then creates and starts attempt `attempt` of container `c`.
    async fn start_container(&mut self, c: &Value, name: &str, field: Option<String>) {
        let image = match self.ensure_image(c, field.clone()).await {
            Ok(image) => image,
            Err((reason, message)) => {
                self.conts.entry(name.to_string()).or_default().waiting =
                    Some((reason, Some(message)));
                return;
            }
        };
        let attempt = self.conts.get(name).map_or(0, |k| k.attempt);
        let id = container_id(&self.uid, name, attempt);
        let mut pod = self.pod.clone();
        let pod_ip = self
            .sandbox
            .as_ref()
            .and_then(|s| s.ip)
            .unwrap_or(self.ctx.host_ip);
        pod["status"]["podIP"] = json!(pod_ip.to_string());
        pod["status"]["hostIP"] = json!(self.ctx.host_ip.to_string());
        let Some(sandbox) = self.sandbox.clone() else {
            return;
        };
        let env_sources = self.env_sources(c).await;
        let mounts = match self.container_mounts(c).await {
            Ok(m) => m,
            Err(e) => {
                self.event(field, "Warning", "Failed", format!("Error: {e}"));
                self.conts.entry(name.to_string()).or_default().waiting =
                    Some(("CreateContainerConfigError".into(), Some(e)));
                self.wake_at(Instant::now() + CONFIG_RETRY);
                return;
            }
        };
        let spec = containers::spec(
            &pod,
            c,
            SpecInput {
                id: id.clone(),
                image: &image,
                sandbox: &sandbox,
                cgroup_parent: self.cgroup_parent(),
                env_sources: &env_sources,
            },
        );
        let target = match c["targetContainerName"].as_str() {
            Some(t) => self.target_pid_namespace(t).await,
            None => None,
        };
        let spec = match spec {
            Ok(mut s) => {
                s.mounts = mounts;
                if let Some(ns) = target {
                    s.namespaces.retain(|(kind, _)| kind != "pid");
                    s.namespaces.push(("pid".into(), ns));
                }
                s
            }
            Err(e) => {
                self.event(field, "Warning", "Failed", format!("Error: {e}"));
                self.conts.entry(name.to_string()).or_default().waiting =
                    Some(("CreateContainerConfigError".into(), Some(e.to_string())));
                // ConfigMaps and Secrets are not watched: look again later, as upstream does.
                self.wake_at(Instant::now() + CONFIG_RETRY);
                return;
            }
        };
        let rt = self.runtime();
        let result = blocking(move || {
            // A leftover of a failed attempt with the same id.
            let _ = rt.containers.remove(&spec.id);
            rt.containers
                .create(&spec)
                .map_err(|e| ("CreateContainerError", e))?;
            rt.containers
                .start(&spec.id)
                .map_err(|e| ("RunContainerError", e))
        })
        .await;
        let cont = self.conts.entry(name.to_string()).or_default();
        cont.image_id = image_id(&image);
        match result {
            Some(Ok(())) => {
                cont.current = Some(id.clone());
                cont.waiting = None;
                self.event(
                    field.clone(),
                    "Normal",
                    "Created",
                    format!("Created container: {name}"),
                );
                self.event(
                    field,
                    "Normal",
                    "Started",
                    format!("Started container {name}"),
                );
                self.watch_exit(&id);
                // Reported Running (and probed) only once postStart returned.
                self.post_start(c, name, &id).await;
            }
            Some(Err((reason, e))) => {
                // A failed start left an exited container: it counts as a run that failed, and
                // its exit (already recorded) wakes the worker to restart it per policy.
                let ran = reason == "RunContainerError";
                cont.current = ran.then(|| id.clone());
                if !ran {
                    let delay = cont.backoff.delay();
                    cont.backoff.next(Timestamp::now());
                    cont.waiting = Some((reason.to_string(), Some(e.to_string())));
                    self.wake_at(Instant::now() + delay);
                }
                self.event(field, "Warning", "Failed", format!("Error: {e}"));
                if ran {
                    self.watch_exit(&id);
                }
            }
            None => {}
        }
    }

    /// The ConfigMaps and Secrets container `c`'s environment refers to.
    async fn env_sources(&self, c: &Value) -> envvars::EnvSources {
        let ns = self.pod["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_string();
        let (cms, secrets) = envvars::referenced(c);
        let (configmaps, secrets) = api::fetch_config(&self.ctx.client, &ns, cms, secrets).await;
        let links = self.pod["spec"]["enableServiceLinks"].as_bool() != Some(false);
        let services = crate::service_env::fetch(&self.ctx.client, &ns, links).await;
        envvars::EnvSources {
            namespace: ns,
            configmaps,
            secrets,
            allocatable: self.ctx.allocatable,
            services,
        }
    }

    /// A thread that blocks in the runtime's `wait` and wakes the worker at the exit.
    fn watch_exit(&mut self, id: &str) {
        if !self.watched.insert(id.to_string()) {
            return;
        }
        let mgr = self.ctx.runtime.containers.clone();
        let tx = self.tx.clone();
        let id = id.to_string();
        let spawned = std::thread::Builder::new()
            .name("k1s-wait".into())
            .spawn(move || {
                let _ = mgr.wait(&id);
                let _ = tx.send(Msg::Exited);
            });
        if spawned.is_err() {
            self.wake_at(Instant::now() + RETRY);
        }
    }
}
