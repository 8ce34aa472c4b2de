//! Resource metrics for `metrics.k8s.io` (`kubectl top`), as metrics-server computes them from
//! the kubelet: CPU as a rate (cumulative CPU time between two readings over their window),
//! memory as the working set, per container from its cgroup and for the node from `/proc`.
//!
//! Invariants: a sampler task reads every running container every [`PERIOD`] (off the async
//! workers) and keeps only the last two readings per container, so memory is bounded by the
//! number of containers; a request reads once more and rates against the newest kept reading at
//! least [`MIN_WINDOW`] older, so `kubectl top` shows current figures without waiting for a tick;
//! a container without such a reading yet (just started) is left out, as metrics-server does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use k1s_apiserver::client::{Client, Gvr};
use k1s_apiserver::metrics_api::{ResourceMetrics, Snapshot, SnapshotFuture};
use k1s_runtime::container::{ContainerManager, Phase};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::api::PODS;
use crate::containers::parse_id;

/// How often the sampler reads.
pub const PERIOD: Duration = Duration::from_secs(5);
/// The shortest window a rate is computed over.
pub const MIN_WINDOW: Duration = Duration::from_secs(1);
/// `/proc/stat` counts in USER_HZ, fixed at 100 by the kernel's ABI.
const NS_PER_TICK: u64 = 10_000_000;
const NODES: Gvr = Gvr::new("", "v1", "nodes");
/// The node's key among the readings.
const NODE: &str = "";

/// One reading of cumulative CPU time and current working set.
#[derive(Debug, Clone, Copy)]
pub struct Reading {
    pub at: Instant,
    pub cpu_ns: u64,
    pub working_set: u64,
}

/// Usage between an older and a newer reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    pub nano_cores: u64,
    pub working_set: u64,
    pub window: Duration,
}

/// The newest of `kept` at least [`MIN_WINDOW`] older than `now`, rated against `now`.
pub fn rate(kept: &[Reading], now: &Reading) -> Option<Usage> {
    let old = kept
        .iter()
        .rev()
        .find(|r| now.at.saturating_duration_since(r.at) >= MIN_WINDOW)?;
    let window = now.at.duration_since(old.at);
    // A counter that went backwards (a new cgroup under the same id) gives no rate.
    let used = now.cpu_ns.checked_sub(old.cpu_ns)?;
    let nano_cores = (used as u128 * 1_000_000_000 / window.as_nanos().max(1)) as u64;
    Some(Usage {
        nano_cores,
        working_set: now.working_set,
        window,
    })
}

/// Node CPU time (non-idle) and working set (total minus available) from `/proc`.
fn node_reading() -> Reading {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: u64 = stat
        .lines()
        .next()
        .filter(|l| l.starts_with("cpu "))
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .filter_map(|n| n.parse::<u64>().ok())
                .enumerate()
                // user nice system idle iowait irq softirq steal: idle and iowait are not usage.
                .filter(|(i, _)| *i != 3 && *i != 4 && *i < 8)
                .map(|(_, n)| n)
                .sum()
        })
        .unwrap_or(0);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kib = |key: &str| -> u64 {
        meminfo
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    Reading {
        at: Instant::now(),
        cpu_ns: ticks.saturating_mul(NS_PER_TICK),
        working_set: kib("MemTotal:").saturating_sub(kib("MemAvailable:")) * 1024,
    }
}

/// Readings of the node (key [`NODE`]) and of every running container (by runtime id). Blocking.
fn read_all(containers: &ContainerManager) -> HashMap<String, Reading> {
    let mut out = HashMap::new();
    out.insert(NODE.to_string(), node_reading());
    for c in containers.list().unwrap_or_default() {
        if c.phase != Phase::Running {
            continue;
        }
        if let Ok(s) = containers.stats(&c.id) {
            let r = Reading {
                at: Instant::now(),
                cpu_ns: s.cpu_usage_ns,
                working_set: s.memory_working_set_bytes,
            };
            out.insert(c.id, r);
        }
    }
    out
}

/// The sampler's kept readings and the source `metrics.k8s.io` reads.
#[derive(Clone)]
pub struct KubeletMetrics {
    client: Client,
    node: String,
    containers: ContainerManager,
    /// The last two readings per key, oldest first.
    kept: Arc<Mutex<HashMap<String, Vec<Reading>>>>,
}

impl KubeletMetrics {
    pub fn new(client: Client, node: String, containers: ContainerManager) -> Self {
        KubeletMetrics {
            client,
            node,
            containers,
            kept: Arc::default(),
        }
    }

    fn keep(&self, fresh: HashMap<String, Reading>) {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        // Containers that stopped running are forgotten.
        kept.retain(|k, _| fresh.contains_key(k));
        for (k, r) in fresh {
            let v = kept.entry(k).or_default();
            v.push(r);
            if v.len() > 2 {
                v.remove(0);
            }
        }
    }

    /// Reads every [`PERIOD`] until `shutdown`.
    pub async fn sample(self, shutdown: CancellationToken) {
        loop {
            let mgr = self.containers.clone();
            if let Ok(fresh) = tokio::task::spawn_blocking(move || read_all(&mgr)).await {
                self.keep(fresh);
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(PERIOD) => {}
            }
        }
    }

    async fn build(self) -> Snapshot {
        let mgr = self.containers.clone();
        let Ok(fresh) = tokio::task::spawn_blocking(move || read_all(&mgr)).await else {
            return Snapshot::default();
        };
        let now = Timestamp::now().to_string();
        let usage: HashMap<String, Usage> = {
            let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
            fresh
                .iter()
                .filter_map(|(k, r)| Some((k.clone(), rate(kept.get(k)?, r)?)))
                .collect()
        };
        let mut snap = Snapshot::default();
        if let Some(u) = usage.get(NODE) {
            let labels = match self.client.get(NODES, None, &self.node).await {
                Ok(Some(n)) => n["metadata"]["labels"].clone(),
                _ => json!({}),
            };
            snap.nodes.push(json!({
                "kind": "NodeMetrics",
                "apiVersion": "metrics.k8s.io/v1beta1",
                "metadata": {"name": self.node, "labels": labels, "creationTimestamp": now},
                "timestamp": now,
                "window": window(u.window),
                "usage": quantities(u),
            }));
        }
        let pods = match self.client.list(PODS, None, None).await {
            Ok((pods, _)) => pods,
            Err(_) => return snap,
        };
        for pod in pods
            .iter()
            .filter(|p| p["spec"]["nodeName"] == self.node.as_str())
        {
            let uid = pod["metadata"]["uid"].as_str().unwrap_or_default();
            let mut containers: Vec<(String, Usage)> = usage
                .iter()
                .filter_map(|(id, u)| {
                    let (u_id, name, _) = parse_id(id)?;
                    (u_id == uid).then(|| (name.to_string(), *u))
                })
                .collect();
            if containers.is_empty() {
                continue;
            }
            containers.sort_by(|a, b| a.0.cmp(&b.0));
            let window_of = containers
                .iter()
                .map(|(_, u)| u.window)
                .max()
                .unwrap_or_default();
            let meta = &pod["metadata"];
            snap.pods.push(json!({
                "kind": "PodMetrics",
                "apiVersion": "metrics.k8s.io/v1beta1",
                "metadata": {
                    "name": meta["name"],
                    "namespace": meta["namespace"],
                    "labels": meta["labels"],
                    "creationTimestamp": now,
                },
                "timestamp": now,
                "window": window(window_of),
                "containers": containers
                    .iter()
                    .map(|(name, u)| json!({"name": name, "usage": quantities(u)}))
                    .collect::<Vec<Value>>(),
            }));
        }
        snap
    }
}

impl ResourceMetrics for KubeletMetrics {
    fn snapshot(&self) -> SnapshotFuture {
        Box::pin(self.clone().build())
    }
}

/// Usage as metrics-server writes it: nanocores and KiB.
fn quantities(u: &Usage) -> Value {
    json!({
        "cpu": format!("{}n", u.nano_cores),
        "memory": format!("{}Ki", u.working_set / 1024),
    })
}

fn window(d: Duration) -> String {
    format!("{:.3}s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_over_the_newest_reading_a_window_back() {
        let t0 = Instant::now();
        let r = |s: u64, cpu: u64| Reading {
            at: t0 + Duration::from_millis(s),
            cpu_ns: cpu,
            working_set: 4096,
        };
        // Half a core over 2 s against the reading 2 s back; the one 0.5 s back is too close.
        let kept = [r(0, 0), r(1500, 900_000_000)];
        let now = r(2000, 1_000_000_000);
        let u = rate(&kept, &now).unwrap();
        assert_eq!(u.nano_cores, 500_000_000);
        assert_eq!(u.window, Duration::from_secs(2));
        assert_eq!(
            quantities(&u),
            json!({"cpu": "500000000n", "memory": "4Ki"})
        );
        // Nothing old enough, or a counter that went back: no figure.
        assert_eq!(rate(&[r(1500, 0)], &now), None);
        assert_eq!(rate(&[r(0, 2_000_000_000)], &now), None);
    }

    #[test]
    fn the_node_reads_plausible_figures() {
        let a = node_reading();
        assert!(a.cpu_ns > 0);
        assert!(a.working_set > 1024 * 1024);
    }
}
