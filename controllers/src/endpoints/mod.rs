//! Endpoints and EndpointSlice controllers (one reconciler, keyed by Service): for every Service with
//! a selector, an Endpoints object of the same name and `discovery.k8s.io/v1` EndpointSlices listing
//! the selected pods, ready and not ready, with named target ports resolved per pod.
//!
//! - Endpoints: ready pods in `addresses`, not-ready ones in `notReadyAddresses` (all in `addresses`
//!   with `publishNotReadyAddresses`); terminating pods and pods without an IP are left out; labels
//!   are the Service's plus `endpoints.kubernetes.io/managed-by: endpoint-controller` (as since
//!   Kubernetes 1.33) and `service.kubernetes.io/headless` for headless Services; at most 1,000
//!   addresses, then `endpoints.kubernetes.io/over-capacity: truncated`. Deleted with the Service
//!   (only those carrying the managed-by label: Endpoints written by hand are never touched).
//! - EndpointSlices: named `<service>-<random>` (generateName), owned by the Service (the garbage
//!   collector deletes them with it), labelled with the service name and
//!   `endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io`; terminating pods
//!   stay with `ready: false, terminating: true`. See [`slices`] for how endpoints are packed.
//! - Both are written only when their content changes, with the
//!   `endpoints.kubernetes.io/last-change-trigger-time` annotation.
//! - Services without a selector (and ExternalName Services) are left alone, except the `kubernetes`
//!   Service in `default`, whose Endpoints and EndpointSlice point at the node (see [`kubernetes`]).
//!
//! The cache decides whether anything must change; EndpointSlice writes are planned again against a
//! live list, so a lagging cache never creates duplicate slices.

mod compute;
pub mod kubernetes;
pub mod slices;

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k1s_apimachinery::selector::label::LabelSelector;
use k1s_apimachinery::status::StatusError;
use k1s_apiserver::client::{Client, Gvr};
use serde_json::{Map, Value, json};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::sync::CancellationToken;

use crate::informers::Informers;
use crate::runtime::{Event, Informer, WorkQueue, key_of, split_key};

const SERVICES: Gvr = Gvr::new("", "v1", "services");
const PODS: Gvr = Gvr::new("", "v1", "pods");
const ENDPOINTS: Gvr = Gvr::new("", "v1", "endpoints");
const SLICES: Gvr = Gvr::new("discovery.k8s.io", "v1", "endpointslices");

/// Label naming a slice's Service.
pub const SERVICE_NAME: &str = "kubernetes.io/service-name";
/// Label naming a slice's manager.
pub const MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
/// When the change that led to this content happened.
pub const TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";
const OVER_CAPACITY: &str = "endpoints.kubernetes.io/over-capacity";
const HEADLESS: &str = "service.kubernetes.io/headless";
/// Label marking the Endpoints this controller writes.
pub const ENDPOINTS_MANAGED_BY: &str = "endpoints.kubernetes.io/managed-by";
/// Its value.
pub const ENDPOINTS_CONTROLLER: &str = "endpoint-controller";

const WORKERS: usize = 4;

type Result<T = (), E = StatusError> = std::result::Result<T, E>;

#[derive(Clone)]
struct Ctl {
    client: Client,
    services: Informer,
    pods: Informer,
    endpoints: Informer,
    slices: Informer,
    queue: WorkQueue,
    /// The node address for the `kubernetes` Service.
    host: Option<Ipv4Addr>,
    failures: Arc<Mutex<HashMap<String, u32>>>,
}

/// Runs the controller until `shutdown` with its own informers.
pub async fn run(client: Client, shutdown: CancellationToken) {
    let informers = Informers::new(client.clone(), shutdown.clone());
    run_with(client, &informers, shutdown).await
}

/// Runs the controller until `shutdown` on shared informers.
pub async fn run_with(client: Client, informers: &Informers, shutdown: CancellationToken) {
    let host = kubernetes::host_address(&client.state().config().advertise_address);
    if host.is_none() {
        tracing::warn!(
            "no non-loopback IPv4 address found: the kubernetes Service gets no endpoints"
        );
    }
    let start = |gvr| informers.get(gvr);
    let ctl = Ctl {
        services: start(SERVICES),
        pods: start(PODS),
        endpoints: start(ENDPOINTS),
        slices: start(SLICES),
        client: client.clone(),
        queue: WorkQueue::new(),
        host,
        failures: Arc::default(),
    };
    let mut rx = [
        ctl.services.subscribe(),
        ctl.pods.subscribe(),
        ctl.endpoints.subscribe(),
        ctl.slices.subscribe(),
    ];
    for i in [&ctl.services, &ctl.pods, &ctl.endpoints, &ctl.slices] {
        i.wait_synced().await;
    }
    ctl.queue_all();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..WORKERS {
        tasks.spawn(ctl.clone().worker());
    }
    let [svc_rx, pod_rx, ep_rx, slice_rx] = &mut rx;
    let events = async {
        loop {
            tokio::select! {
                ev = svc_rx.recv() => ctl.on_service(ev),
                ev = pod_rx.recv() => ctl.on_pod(ev),
                ev = ep_rx.recv() => ctl.on_endpoints(ev),
                ev = slice_rx.recv() => ctl.on_slice(ev),
            }
        }
    };
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = events => {}
    }
    tasks.abort_all();
}

/// What of a pod matters to its endpoints (other changes are ignored).
fn pod_projection(p: &Value) -> Value {
    json!([
        p["metadata"]["labels"],
        p["metadata"]["deletionTimestamp"],
        p["spec"]["nodeName"],
        p["spec"]["hostname"],
        p["spec"]["subdomain"],
        p["spec"]["containers"]
            .as_array()
            .map(|cs| cs.iter().map(|c| c["ports"].clone()).collect::<Vec<_>>()),
        p["status"]["phase"],
        p["status"]["podIP"],
        p["status"]["podIPs"],
        compute::pod_ready(p),
    ])
}

fn selector_of(svc: &Value) -> Option<LabelSelector> {
    let sel = svc["spec"]["selector"]
        .as_object()
        .filter(|s| !s.is_empty())?;
    let set: BTreeMap<String, String> = sel
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect();
    Some(LabelSelector::from_set(&set))
}

impl Ctl {
    fn queue_all(&self) {
        for k in self.services.keys() {
            self.queue.add(k);
        }
        for k in self.endpoints.keys() {
            self.queue.add(k);
        }
    }

    fn on_service(&self, ev: Result<Event, RecvError>) {
        match ev {
            Ok(Event::Upsert { new: o, .. }) | Ok(Event::Delete(o)) => self.queue.add(key_of(&o)),
            Ok(Event::Resync) | Err(_) => self.queue_all(),
        }
    }

    fn on_pod(&self, ev: Result<Event, RecvError>) {
        let pods: Vec<Arc<Value>> = match ev {
            Ok(Event::Upsert { old, new }) => {
                if old
                    .as_ref()
                    .is_some_and(|o| pod_projection(o) == pod_projection(&new))
                {
                    return;
                }
                old.into_iter().chain([new]).collect()
            }
            Ok(Event::Delete(p)) => vec![p],
            Ok(Event::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => {
                return self.queue_all();
            }
            Err(RecvError::Closed) => return,
        };
        let ns = pods[0]["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default();
        for svc in self.services.list(Some(ns)) {
            if let Some(sel) = selector_of(&svc)
                && pods.iter().any(|p| sel.matches_object(p))
            {
                self.queue.add(key_of(&svc));
            }
        }
    }

    fn on_endpoints(&self, ev: Result<Event, RecvError>) {
        match ev {
            Ok(Event::Upsert { new, .. }) => {
                let k = key_of(&new);
                if self.services.get(&k).is_some() {
                    self.queue.add(k);
                }
            }
            Ok(Event::Delete(o)) => self.queue.add(key_of(&o)),
            Ok(Event::Resync) | Err(_) => self.queue_all(),
        }
    }

    fn on_slice(&self, ev: Result<Event, RecvError>) {
        match ev {
            Ok(Event::Upsert { new: o, .. }) | Ok(Event::Delete(o)) => {
                if let (Some(ns), Some(svc)) = (
                    o["metadata"]["namespace"].as_str(),
                    o["metadata"]["labels"][SERVICE_NAME].as_str(),
                ) {
                    self.queue.add(format!("{ns}/{svc}"));
                }
            }
            Ok(Event::Resync) | Err(_) => self.queue_all(),
        }
    }

    async fn worker(self) {
        loop {
            let key = self.queue.next().await;
            let result = self.sync(&key).await;
            {
                let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
                match result {
                    Ok(()) => {
                        failures.remove(&key);
                    }
                    Err(e) => {
                        let n = failures.entry(key.clone()).or_default();
                        *n = (*n + 1).min(8);
                        let delay = Duration::from_millis(25u64 << *n);
                        tracing::debug!(service = %key, error = %e.message, "endpoints sync failed; retrying");
                        self.queue.add_after(key.clone(), delay);
                    }
                }
            }
            self.queue.done(&key);
        }
    }

    async fn sync(&self, key: &str) -> Result {
        let (ns, name) = split_key(key);
        let Some(ns) = ns else { return Ok(()) };
        if ns == kubernetes::NAMESPACE && name == kubernetes::NAME {
            return self.sync_kubernetes().await;
        }
        let Some(svc) = self.services.get(key) else {
            // The Service is gone: so are its Endpoints (slices go with their owner).
            if let Some(ep) = self.endpoints.get(key)
                && ep["metadata"]["labels"][ENDPOINTS_MANAGED_BY] == ENDPOINTS_CONTROLLER
            {
                return self.client.delete(ENDPOINTS, Some(ns), name, None).await;
            }
            return Ok(());
        };
        if svc["spec"]["type"] == "ExternalName" {
            return Ok(());
        }
        let Some(selector) = selector_of(&svc) else {
            return Ok(());
        };
        let pods: Vec<Arc<Value>> = self
            .pods
            .list(Some(ns))
            .into_iter()
            .filter(|p| selector.matches_object(p))
            .collect();
        let now = k1s_apimachinery::meta::now_rfc3339();
        self.sync_endpoints(&svc, &pods, &now).await?;
        self.sync_slices(&svc, &pods, &now).await
    }

    async fn sync_endpoints(&self, svc: &Value, pods: &[Arc<Value>], now: &str) -> Result {
        let (subsets, truncated) = compute::subsets(svc, pods);
        let mut labels: Map<String, Value> = svc["metadata"]["labels"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        labels.remove(HEADLESS);
        if compute::headless(svc) {
            labels.insert(HEADLESS.into(), json!(""));
        }
        labels.insert(ENDPOINTS_MANAGED_BY.into(), json!(ENDPOINTS_CONTROLLER));
        let key = key_of(svc);
        let current = self.endpoints.get(&key);
        if let Some(cur) = &current {
            let cur_subsets = cur["subsets"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default();
            let cur_labels = cur["metadata"]["labels"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            let cur_over = !cur["metadata"]["annotations"][OVER_CAPACITY].is_null();
            if cur_subsets == subsets.as_slice() && cur_labels == labels && cur_over == truncated {
                return Ok(());
            }
        }
        let (ns, name) = (
            svc["metadata"]["namespace"].as_str(),
            svc["metadata"]["name"].as_str().unwrap_or_default(),
        );
        let mut ep = current.as_deref().cloned().unwrap_or_else(|| {
            json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name, "namespace": ns}})
        });
        let meta = &mut ep["metadata"];
        meta["labels"] = Value::Object(labels);
        if !meta["annotations"].is_object() {
            meta["annotations"] = json!({});
        }
        meta["annotations"][TRIGGER_TIME] = json!(now);
        if truncated {
            meta["annotations"][OVER_CAPACITY] = json!("truncated");
        } else {
            remove(&mut meta["annotations"], OVER_CAPACITY);
        }
        if subsets.is_empty() {
            remove(&mut ep, "subsets");
        } else {
            ep["subsets"] = Value::Array(subsets);
        }
        let r = match current {
            Some(_) => self.client.update(ENDPOINTS, &ep).await,
            None => self.client.create(ENDPOINTS, ns, &ep).await,
        };
        ignore_terminating(r)
    }

    async fn sync_slices(&self, svc: &Value, pods: &[Arc<Value>], now: &str) -> Result {
        let ns = svc["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = svc["metadata"]["name"].as_str().unwrap_or_default();
        let ours = |s: &Value| {
            s["metadata"]["labels"][SERVICE_NAME] == name
                && s["metadata"]["labels"][MANAGED_BY] == slices::CONTROLLER
        };
        let cached: Vec<Arc<Value>> = self
            .slices
            .list(Some(ns))
            .into_iter()
            .filter(|s| ours(s))
            .collect();
        if slices::plan(svc, pods, &cached, now).is_empty() {
            return Ok(());
        }
        // Something changes: plan against the stored slices, not a possibly lagging cache.
        let selector = format!("{SERVICE_NAME}={name},{MANAGED_BY}={}", slices::CONTROLLER);
        let (live, _) = self.client.list(SLICES, Some(ns), Some(&selector)).await?;
        let live: Vec<Arc<Value>> = live.into_iter().map(Arc::new).collect();
        for op in slices::plan(svc, pods, &live, now) {
            let r = match op {
                slices::Op::Create(s) => self.client.create(SLICES, Some(ns), &s).await,
                slices::Op::Update(s) => self.client.update(SLICES, &s).await,
                slices::Op::Delete(n) => self
                    .client
                    .delete(SLICES, Some(ns), &n, None)
                    .await
                    .map(|_| Value::Null),
            };
            ignore_terminating(r)?;
        }
        Ok(())
    }

    async fn sync_kubernetes(&self) -> Result {
        let key = format!("{}/{}", kubernetes::NAMESPACE, kubernetes::NAME);
        let (Some(svc), Some(ip)) = (self.services.get(&key), self.host) else {
            return Ok(());
        };
        let ns = Some(kubernetes::NAMESPACE);
        for (gvr, informer, desired) in [
            (ENDPOINTS, &self.endpoints, kubernetes::endpoints(&svc, ip)),
            (SLICES, &self.slices, kubernetes::slice(&svc, ip)),
        ] {
            match informer.get(&key) {
                Some(cur) if kubernetes::matches(&cur, &desired) => {}
                Some(cur) => {
                    self.client
                        .update(gvr, &kubernetes::merged(&cur, &desired))
                        .await?;
                }
                None => {
                    self.client.create(gvr, ns, &desired).await?;
                }
            }
        }
        Ok(())
    }
}

fn remove(obj: &mut Value, key: &str) {
    if let Some(m) = obj.as_object_mut() {
        m.remove(key);
    }
}

/// Writes into a namespace that is going away (403/404) are dropped: its objects are being deleted.
fn ignore_terminating(r: Result<Value>) -> Result {
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.code == 403 || e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}
