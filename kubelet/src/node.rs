//! The Node object and its Lease, shaped as the upstream kubelet registers and renews them, and
//! the loop that keeps them fresh.
//!
//! Invariants: a condition's `lastTransitionTime` moves only when its status changes; the Node's
//! status is written when it changed or when [`REPORT_EVERY`] passed (upstream's
//! `nodeStatusReportFrequency`), the Lease every [`RENEW_EVERY`]; a deleted Node is registered
//! again at the next tick.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use k1s_apimachinery::meta::{now_rfc3339, now_rfc3339_micro};
use k1s_apimachinery::status::StatusError;
use k1s_apiserver::client::{Client, Gvr};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::machine::{Capacity, Info};

const NODES: Gvr = Gvr::new("", "v1", "nodes");
const LEASES: Gvr = Gvr::new("coordination.k8s.io", "v1", "leases");
pub const LEASE_NAMESPACE: &str = "kube-node-lease";
const LEASE_DURATION_SECONDS: i64 = 40;
/// Upstream's `nodeLeaseRenewInterval` and `nodeStatusUpdateFrequency`.
pub const RENEW_EVERY: Duration = Duration::from_secs(10);
/// Upstream's `nodeStatusReportFrequency`: an unchanged status is still re-posted this often.
pub const REPORT_EVERY: Duration = Duration::from_secs(300);
/// Upstream's default hard eviction thresholds: `memory.available<100Mi`, `nodefs.available<10%`.
const MEMORY_PRESSURE_BYTES: u64 = 100 * 1024 * 1024;
const DISK_PRESSURE_PERCENT: u64 = 10;

/// Resources held back from pods (`--kube-reserved cpu=500m,memory=512Mi`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reserved {
    pub cpu_millis: u64,
    pub memory_bytes: u64,
}

/// Everything the Node object is built from.
#[derive(Debug, Clone)]
pub struct NodeFacts {
    pub name: String,
    pub capacity: Capacity,
    pub reserved: Reserved,
    pub internal_ip: IpAddr,
    pub info: Info,
    pub pod_cidr: String,
    /// The Kubernetes version the server reports (kubeletVersion, kubeProxyVersion).
    pub kube_version: String,
    pub data_dir: PathBuf,
}

/// Current pressure readings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pressure {
    pub memory: bool,
    pub disk: bool,
}

impl Pressure {
    /// Reads `MemAvailable` and the data dir's free space.
    pub fn read(facts: &NodeFacts) -> Self {
        let mem_available = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                let l = m.lines().find(|l| l.starts_with("MemAvailable:"))?;
                l.split_whitespace().nth(1)?.parse::<u64>().ok()
            })
            .map(|kb| kb * 1024);
        let disk = nix::sys::statvfs::statvfs(&facts.data_dir)
            .ok()
            .filter(|s| s.blocks() > 0)
            .map(|s| s.blocks_available() * 100 / s.blocks());
        Pressure {
            memory: mem_available.is_some_and(|a| a < MEMORY_PRESSURE_BYTES),
            disk: disk.is_some_and(|p| p < DISK_PRESSURE_PERCENT),
        }
    }
}

fn condition(type_: &str, status: bool, reason: &str, message: &str, now: &str) -> Value {
    json!({
        "type": type_,
        "status": if status { "True" } else { "False" },
        "lastHeartbeatTime": now,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    })
}

/// The four node conditions as upstream words them, heard from at `now`; transition times are
/// kept from `old` where the status did not change.
pub fn conditions(p: Pressure, old: &Value, now: &str) -> Value {
    let mem = if p.memory {
        condition(
            "MemoryPressure",
            true,
            "KubeletHasInsufficientMemory",
            "kubelet has insufficient memory available",
            now,
        )
    } else {
        condition(
            "MemoryPressure",
            false,
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
            now,
        )
    };
    let disk = if p.disk {
        condition(
            "DiskPressure",
            true,
            "KubeletHasDiskPressure",
            "kubelet has disk pressure",
            now,
        )
    } else {
        condition(
            "DiskPressure",
            false,
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure",
            now,
        )
    };
    let mut fresh = vec![
        mem,
        disk,
        condition(
            "PIDPressure",
            false,
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
            now,
        ),
        condition(
            "Ready",
            true,
            "KubeletReady",
            "kubelet is posting ready status",
            now,
        ),
    ];
    k1s_apimachinery::conditions::keep_transition_times(&mut fresh, old);
    Value::Array(fresh)
}

/// Kubernetes quantity of a byte count, in `Ki` as the kubelet reports memory.
fn kibibytes(bytes: u64) -> String {
    format!("{}Ki", bytes / 1024)
}

/// Kubernetes quantity of millicores: whole cores when they divide evenly.
fn cpu_quantity(millis: u64) -> String {
    if millis.is_multiple_of(1000) {
        (millis / 1000).to_string()
    } else {
        format!("{millis}m")
    }
}

pub fn labels(facts: &NodeFacts) -> Value {
    json!({
        "kubernetes.io/hostname": facts.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": facts.info.architecture,
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": facts.info.architecture,
        "node-role.kubernetes.io/control-plane": "true",
    })
}

/// The Node's status (conditions from `old`, see [`conditions`]).
pub fn status(facts: &NodeFacts, p: Pressure, old_conditions: &Value, now: &str) -> Value {
    let cap = &facts.capacity;
    let cpu_millis = cap.cpus * 1000;
    let capacity = json!({
        "cpu": cpu_quantity(cpu_millis),
        "memory": kibibytes(cap.memory_bytes),
        "ephemeral-storage": kibibytes(cap.ephemeral_storage_bytes),
        "pods": cap.pods.to_string(),
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
    });
    let allocatable = json!({
        "cpu": cpu_quantity(cpu_millis.saturating_sub(facts.reserved.cpu_millis)),
        "memory": kibibytes(cap.memory_bytes.saturating_sub(facts.reserved.memory_bytes)),
        "ephemeral-storage": kibibytes(cap.ephemeral_storage_bytes),
        "pods": cap.pods.to_string(),
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
    });
    let info = &facts.info;
    json!({
        "capacity": capacity,
        "allocatable": allocatable,
        "conditions": conditions(p, old_conditions, now),
        "addresses": [
            {"type": "InternalIP", "address": facts.internal_ip.to_string()},
            {"type": "Hostname", "address": facts.name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {
            "machineID": info.machine_id,
            "systemUUID": info.system_uuid,
            "bootID": info.boot_id,
            "kernelVersion": info.kernel_version,
            "osImage": info.os_image,
            "containerRuntimeVersion": format!("k1s://{}", env!("CARGO_PKG_VERSION")),
            "kubeletVersion": facts.kube_version,
            "kubeProxyVersion": facts.kube_version,
            "operatingSystem": "linux",
            "architecture": info.architecture,
        },
    })
}

/// The whole Node object to register.
pub fn node(facts: &NodeFacts, p: Pressure, now: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": facts.name,
            "labels": labels(facts),
            "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {"podCIDR": facts.pod_cidr, "podCIDRs": [facts.pod_cidr]},
        "status": status(facts, p, &Value::Null, now),
    })
}

/// A status with every heartbeat time blanked, to tell a real change from a heartbeat.
fn without_heartbeats(status: &Value) -> Value {
    let mut s = status.clone();
    for c in s["conditions"].as_array_mut().into_iter().flatten() {
        c["lastHeartbeatTime"] = Value::Null;
    }
    s
}

/// Registers the Node and keeps it and its Lease fresh until `shutdown`.
pub async fn run(client: Client, facts: NodeFacts, shutdown: CancellationToken) {
    let mut last_report: Option<(Instant, Value)> = None;
    loop {
        if let Err(e) = tick(&client, &facts, &mut last_report).await {
            tracing::warn!(node = %facts.name, error = %e.message, "node status update failed; retrying");
            last_report = None;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(RENEW_EVERY) => {}
        }
    }
}

/// One round: register if missing, post the status if due, renew the Lease.
async fn tick(
    client: &Client,
    facts: &NodeFacts,
    last: &mut Option<(Instant, Value)>,
) -> Result<(), StatusError> {
    let now = now_rfc3339();
    let pressure = Pressure::read(facts);
    let current = match client.get(NODES, None, &facts.name).await? {
        Some(n) => n,
        None => {
            let created = match client
                .create(NODES, None, &node(facts, pressure, &now))
                .await
            {
                Ok(n) => n,
                Err(e) if e.code == 409 => client
                    .get(NODES, None, &facts.name)
                    .await?
                    .ok_or_else(|| StatusError::internal("node vanished"))?,
                Err(e) => return Err(e),
            };
            tracing::info!(node = %facts.name, ip = %facts.internal_ip, "node registered");
            *last = None;
            created
        }
    };
    let status = status(facts, pressure, &current["status"]["conditions"], &now);
    let due = match last {
        Some((at, prev)) => {
            at.elapsed() >= REPORT_EVERY || without_heartbeats(prev) != without_heartbeats(&status)
        }
        None => true,
    };
    if due {
        let mut patch = json!({"status": status});
        if current["spec"]["podCIDR"]
            .as_str()
            .unwrap_or_default()
            .is_empty()
        {
            client
                .merge_patch(
                    NODES,
                    None,
                    &facts.name,
                    None,
                    &json!({"spec": {"podCIDR": facts.pod_cidr, "podCIDRs": [facts.pod_cidr]}, "metadata": {"labels": labels(facts)}}),
                )
                .await?;
        }
        client
            .merge_patch(NODES, None, &facts.name, Some("status"), &patch)
            .await?;
        *last = Some((Instant::now(), patch["status"].take()));
    }
    renew_lease(client, &facts.name, current["metadata"]["uid"].as_str()).await
}

async fn renew_lease(
    client: &Client,
    name: &str,
    node_uid: Option<&str>,
) -> Result<(), StatusError> {
    let renew = now_rfc3339_micro();
    let spec = json!({"holderIdentity": name, "leaseDurationSeconds": LEASE_DURATION_SECONDS, "renewTime": renew});
    match client
        .merge_patch(
            LEASES,
            Some(LEASE_NAMESPACE),
            name,
            None,
            &json!({"spec": spec}),
        )
        .await
    {
        Err(e) if e.code == 404 => {
            let lease = json!({
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {
                    "name": name,
                    "namespace": LEASE_NAMESPACE,
                    "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": name, "uid": node_uid.unwrap_or_default()}],
                },
                "spec": spec,
            });
            match client.create(LEASES, Some(LEASE_NAMESPACE), &lease).await {
                Err(e) if e.code != 409 => Err(e),
                _ => Ok(()),
            }
        }
        other => other.map(|_| ()),
    }
}

/// Parses `cpu=500m,memory=512Mi` (`--kube-reserved`).
pub fn parse_reserved(s: &str) -> Result<Reserved, String> {
    let mut r = Reserved::default();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?} is not KEY=QUANTITY"))?;
        match k {
            "cpu" => r.cpu_millis = parse_cpu(v).ok_or_else(|| format!("bad cpu {v:?}"))?,
            "memory" => {
                r.memory_bytes = parse_bytes(v).ok_or_else(|| format!("bad memory {v:?}"))?
            }
            other => return Err(format!("unknown resource {other:?} (cpu, memory)")),
        }
    }
    Ok(r)
}

/// Millicores of a cpu quantity (`2`, `500m`, `0.5`).
pub fn parse_cpu(v: &str) -> Option<u64> {
    if let Some(m) = v.strip_suffix('m') {
        return m.parse().ok();
    }
    let f: f64 = v.parse().ok()?;
    (f >= 0.0 && f.is_finite()).then(|| (f * 1000.0).round() as u64)
}

/// Bytes of a memory quantity (`512Mi`, `1G`, `1000`).
pub fn parse_bytes(v: &str) -> Option<u64> {
    const UNITS: [(&str, u64); 12] = [
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("Pi", 1 << 50),
        ("Ei", 1 << 60),
        ("k", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
        ("P", 1_000_000_000_000_000),
        ("E", 1_000_000_000_000_000_000),
    ];
    for (suffix, mult) in UNITS {
        if let Some(n) = v.strip_suffix(suffix) {
            let f: f64 = n.parse().ok()?;
            return (f >= 0.0 && f.is_finite()).then_some((f * mult as f64) as u64);
        }
    }
    if let Some(m) = v.strip_suffix('m') {
        return m.parse::<u64>().ok().map(|m| m / 1000);
    }
    let f: f64 = v.parse().ok()?;
    (f >= 0.0 && f.is_finite()).then_some(f as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn facts() -> NodeFacts {
        NodeFacts {
            name: "box".into(),
            capacity: Capacity {
                cpus: 2,
                memory_bytes: 4 << 30,
                ephemeral_storage_bytes: 100 << 30,
                pods: 110,
            },
            reserved: Reserved {
                cpu_millis: 500,
                memory_bytes: 512 << 20,
            },
            internal_ip: IpAddr::V4(Ipv4Addr::new(192, 168, 1, 5)),
            info: Info {
                kernel_version: "6.1.0".into(),
                os_image: "Debian GNU/Linux 12 (bookworm)".into(),
                architecture: "amd64".into(),
                machine_id: "m".into(),
                system_uuid: "u".into(),
                boot_id: "b".into(),
            },
            pod_cidr: "10.42.0.0/24".into(),
            kube_version: "v1.33.0-k1s".into(),
            data_dir: PathBuf::from("/"),
        }
    }

    #[test]
    fn capacity_and_allocatable() {
        let n = node(&facts(), Pressure::default(), "t0");
        let s = &n["status"];
        assert_eq!(s["capacity"]["cpu"], "2");
        assert_eq!(s["allocatable"]["cpu"], "1500m");
        assert_eq!(s["capacity"]["memory"], "4194304Ki");
        assert_eq!(s["allocatable"]["memory"], "3670016Ki");
        assert_eq!(s["allocatable"]["pods"], "110");
        assert_eq!(s["addresses"][0]["address"], "192.168.1.5");
        assert_eq!(s["nodeInfo"]["containerRuntimeVersion"], "k1s://0.1.0");
        assert_eq!(s["nodeInfo"]["kubeletVersion"], "v1.33.0-k1s");
        assert_eq!(n["spec"]["podCIDR"], "10.42.0.0/24");
        let ready = &s["conditions"][3];
        assert_eq!(ready["reason"], "KubeletReady");
        assert_eq!(ready["message"], "kubelet is posting ready status");
    }

    #[test]
    fn transitions_only_on_change() {
        let old = conditions(Pressure::default(), &Value::Null, "t0");
        let same = conditions(Pressure::default(), &old, "t1");
        assert_eq!(same[0]["lastTransitionTime"], "t0");
        assert_eq!(same[0]["lastHeartbeatTime"], "t1");
        let pressed = conditions(
            Pressure {
                memory: true,
                disk: false,
            },
            &old,
            "t2",
        );
        assert_eq!(pressed[0]["status"], "True");
        assert_eq!(pressed[0]["reason"], "KubeletHasInsufficientMemory");
        assert_eq!(pressed[0]["lastTransitionTime"], "t2");
        assert_eq!(pressed[1]["lastTransitionTime"], "t0");
        // A heartbeat alone is no change worth a report.
        let a = status(&facts(), Pressure::default(), &old, "t1");
        let b = status(&facts(), Pressure::default(), &old, "t9");
        assert_ne!(a, b);
        assert_eq!(without_heartbeats(&a), without_heartbeats(&b));
    }

    #[test]
    fn reservations() {
        assert_eq!(
            parse_reserved("cpu=250m, memory=1Gi"),
            Ok(Reserved {
                cpu_millis: 250,
                memory_bytes: 1 << 30
            })
        );
        assert_eq!(parse_cpu("1.5"), Some(1500));
        assert_eq!(parse_bytes("128M"), Some(128_000_000));
        assert_eq!(parse_bytes("64"), Some(64));
        assert!(parse_reserved("gpu=1").is_err());
        assert!(parse_reserved("cpu").is_err());
        assert!(parse_reserved("memory=-1Gi").is_err());
    }
}
