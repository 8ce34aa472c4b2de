//! The Node and Lease objects of a simulated node, shaped as a kubelet registers and renews them.
//!
//! Node `i` is `k1s-sim-<i>`, its (never contacted) address is `10.44.x.y` with `x.y` = `i + 1`,
//! and its pods get addresses from `10.42.<i>.0/24` (nodes past 255 use `10.<100 + i/256>.<i%256>`).

use std::net::Ipv4Addr;

use serde_json::{Value, json};

use crate::Capacity;

pub const NODE_PREFIX: &str = "k1s-sim-";
pub const LEASE_NAMESPACE: &str = "kube-node-lease";
pub const LEASE_DURATION_SECONDS: i64 = 40;
pub const KUBELET_VERSION: &str = "v1.33.0";
pub const RUNTIME_VERSION: &str = "k1s-sim://0.1";

pub fn node_name(i: usize) -> String {
    format!("{NODE_PREFIX}{i}")
}

/// The node's InternalIP.
pub fn node_ip(i: usize) -> Ipv4Addr {
    let n = i as u32 + 1;
    Ipv4Addr::new(10, 44, ((n >> 8) & 0xff) as u8, (n & 0xff) as u8)
}

/// The first three octets of the node's pod range.
pub fn pod_subnet(i: usize) -> [u8; 3] {
    if i < 256 {
        [10, 42, i as u8]
    } else {
        [10, (100 + (i / 256).min(155)) as u8, (i % 256) as u8]
    }
}

pub fn pod_cidr(i: usize) -> String {
    let [a, b, c] = pod_subnet(i);
    format!("{a}.{b}.{c}.0/24")
}

fn condition(type_: &str, status: &str, reason: &str, message: &str, now: &str) -> Value {
    json!({
        "type": type_,
        "status": status,
        "lastHeartbeatTime": now,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    })
}

/// Node conditions of a healthy kubelet, all transitioned and heard from at `now`.
pub fn conditions(now: &str) -> Value {
    json!([
        condition(
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
            now
        ),
        condition(
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure",
            now
        ),
        condition(
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
            now
        ),
        condition(
            "Ready",
            "True",
            "KubeletReady",
            "kubelet is posting ready status",
            now
        ),
    ])
}

/// Conditions with a fresh heartbeat, keeping each condition's transition time.
pub fn heartbeat(old: &Value, now: &str) -> Value {
    let mut fresh = conditions(now);
    if let Some(list) = fresh.as_array_mut() {
        k1s_apimachinery::conditions::keep_transition_times(list, old);
    }
    fresh
}

pub fn labels(i: usize) -> Value {
    json!({
        "kubernetes.io/hostname": node_name(i),
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "amd64",
        "node.kubernetes.io/instance-type": "k1s-sim",
    })
}

/// The node's status as its kubelet posts it.
pub fn status(i: usize, cap: &Capacity, now: &str) -> Value {
    let resources = json!({
        "cpu": cap.cpu,
        "memory": cap.memory,
        "pods": cap.pods.to_string(),
        "ephemeral-storage": "100Gi",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
    });
    let id = format!(
        "{:032x}",
        0x6b31_7300_0000_0000_0000_0000_0000_0000u128 + i as u128
    );
    json!({
        "capacity": resources,
        "allocatable": resources,
        "conditions": conditions(now),
        "addresses": [
            {"type": "InternalIP", "address": node_ip(i).to_string()},
            {"type": "Hostname", "address": node_name(i)},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {
            "machineID": id,
            "systemUUID": format!("{}-{}-{}-{}-{}", &id[0..8], &id[8..12], &id[12..16], &id[16..20], &id[20..32]),
            "bootID": id,
            "kernelVersion": "6.1.0-k1s-sim",
            "osImage": "k1s simulated node",
            "containerRuntimeVersion": RUNTIME_VERSION,
            "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": KUBELET_VERSION,
            "operatingSystem": "linux",
            "architecture": "amd64",
        },
    })
}

/// The whole Node object to register.
pub fn node(i: usize, cap: &Capacity, now: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": node_name(i),
            "labels": labels(i),
            "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {"podCIDR": pod_cidr(i), "podCIDRs": [pod_cidr(i)]},
        "status": status(i, cap, now),
    })
}

/// The node's Lease in `kube-node-lease`, owned by the Node.
pub fn lease(name: &str, node_uid: &str, renew: &str) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": name,
            "namespace": LEASE_NAMESPACE,
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": name, "uid": node_uid}],
        },
        "spec": {
            "holderIdentity": name,
            "leaseDurationSeconds": LEASE_DURATION_SECONDS,
            "renewTime": renew,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(node_ip(0).to_string(), "10.44.0.1");
        assert_eq!(node_ip(255).to_string(), "10.44.1.0");
        assert_eq!(pod_cidr(3), "10.42.3.0/24");
        assert_eq!(pod_cidr(256), "10.101.0.0/24");
    }

    #[test]
    fn node_shape() {
        let n = node(2, &Capacity::default(), "2026-01-01T00:00:00Z");
        assert_eq!(n["metadata"]["name"], "k1s-sim-2");
        assert_eq!(
            n["metadata"]["labels"]["kubernetes.io/hostname"],
            "k1s-sim-2"
        );
        assert_eq!(n["status"]["allocatable"]["pods"], "110");
        assert_eq!(n["status"]["nodeInfo"]["kubeletVersion"], "v1.33.0");
        let ready = &n["status"]["conditions"][3];
        assert_eq!(
            (ready["type"].as_str(), ready["reason"].as_str()),
            (Some("Ready"), Some("KubeletReady"))
        );
    }

    #[test]
    fn heartbeat_keeps_transition_times() {
        let old = conditions("2026-01-01T00:00:00Z");
        let new = heartbeat(&old, "2026-01-01T00:00:10Z");
        assert_eq!(new[3]["lastTransitionTime"], "2026-01-01T00:00:00Z");
        assert_eq!(new[3]["lastHeartbeatTime"], "2026-01-01T00:00:10Z");
    }
}
