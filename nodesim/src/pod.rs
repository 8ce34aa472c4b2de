//! Pod status as a kubelet reports it for a pod whose containers started at once, and the per-node
//! pod address allocator.
//!
//! Invariants: a pod keeps its address, start time and container IDs once reported (a rewrite of
//! the status reuses them); no two live pods of a node share an address.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::net::Ipv4Addr;

use serde_json::{Value, json};

/// Per-node pod addresses, by pod uid.
#[derive(Default)]
pub struct IpAllocator {
    by_uid: HashMap<String, Ipv4Addr>,
    used: HashSet<Ipv4Addr>,
    /// Next host number to try, per subnet.
    cursor: HashMap<[u8; 3], u8>,
}

impl IpAllocator {
    /// Records an address already reported for a pod (after a restart).
    pub fn reserve(&mut self, uid: &str, ip: Ipv4Addr) {
        if self.used.insert(ip) {
            self.by_uid.insert(uid.to_string(), ip);
        }
    }

    /// The pod's address, allocating the next free one of `subnet` (`.2` … `.254`); `None` when the
    /// range is full.
    pub fn allocate(&mut self, uid: &str, subnet: [u8; 3]) -> Option<Ipv4Addr> {
        if let Some(ip) = self.by_uid.get(uid) {
            return Some(*ip);
        }
        let start = *self.cursor.get(&subnet).unwrap_or(&2);
        for k in 0..253u16 {
            let host = (((start as u16 - 2) + k) % 253 + 2) as u8;
            let ip = Ipv4Addr::new(subnet[0], subnet[1], subnet[2], host);
            if self.used.insert(ip) {
                self.by_uid.insert(uid.to_string(), ip);
                self.cursor
                    .insert(subnet, if host == 254 { 2 } else { host + 1 });
                return Some(ip);
            }
        }
        None
    }

    pub fn release(&mut self, uid: &str) {
        if let Some(ip) = self.by_uid.remove(uid) {
            self.used.remove(&ip);
        }
    }

    /// Forgets every pod whose uid `live` does not hold.
    pub fn retain(&mut self, live: &HashSet<String>) {
        let used = &mut self.used;
        self.by_uid.retain(|uid, ip| {
            let keep = live.contains(uid);
            if !keep {
                used.remove(ip);
            }
            keep
        });
    }

    pub fn len(&self) -> usize {
        self.by_uid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_uid.is_empty()
    }
}

/// A stable fake digest of a string: 64 hex digits.
fn digest(s: &str) -> String {
    (0u64..4)
        .map(|i| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (i, s).hash(&mut h);
            format!("{:016x}", h.finish())
        })
        .collect()
}

/// `repo@sha256:<digest>` for an image reference, as a runtime reports the resolved image.
pub fn image_id(image: &str) -> String {
    if image.contains("@sha256:") {
        return image.to_string();
    }
    let slash = image.rfind('/').map_or(0, |i| i + 1);
    let repo = match image[slash..].find(':') {
        Some(colon) => &image[..slash + colon],
        None => image,
    };
    format!("{repo}@sha256:{}", digest(image))
}

/// What the status rewrite needs besides the pod.
pub struct Observed<'a> {
    pub now: &'a str,
    /// Seconds since the pod started (for readiness probes' initial delays).
    pub running_for: i64,
    pub host_ip: &'a str,
    pub pod_ip: Option<Ipv4Addr>,
}

/// Seconds a container waits before it reports ready: its readiness probe's initial delay (no
/// probe: ready at once).
pub fn ready_delay(c: &Value) -> i64 {
    c["readinessProbe"]["initialDelaySeconds"]
        .as_i64()
        .unwrap_or(0)
        .max(0)
}

/// Seconds until every container is ready (0 when they are).
pub fn not_ready_for(pod: &Value, running_for: i64) -> i64 {
    pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| ready_delay(c) - running_for)
        .max()
        .unwrap_or(0)
        .max(0)
}

fn previous<'a>(list: &'a Value, name: &Value) -> Option<&'a Value> {
    list.as_array()
        .into_iter()
        .flatten()
        .find(|s| s["name"] == *name)
}

fn container_id(prev: Option<&Value>) -> Value {
    prev.and_then(|p| p.get("containerID"))
        .filter(|v| v.as_str().is_some_and(|s| !s.is_empty()))
        .cloned()
        .unwrap_or_else(|| {
            json!(format!(
                "k1s-sim://{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            ))
        })
}

fn running_status(c: &Value, prev: Option<&Value>, started: &Value, ready: bool) -> Value {
    let started_at = prev
        .and_then(|p| p.pointer("/state/running/startedAt"))
        .cloned()
        .unwrap_or_else(|| started.clone());
    json!({
        "name": c["name"],
        "image": c["image"],
        "imageID": image_id(c["image"].as_str().unwrap_or_default()),
        "containerID": container_id(prev),
        "ready": ready,
        "started": true,
        "restartCount": 0,
        "state": {"running": {"startedAt": started_at}},
        "lastState": {},
    })
}

fn condition(type_: &str, ok: bool, since: &Value, reason: Option<&str>) -> Value {
    let mut c = json!({
        "type": type_,
        "status": if ok { "True" } else { "False" },
        "lastProbeTime": null,
        "lastTransitionTime": since,
    });
    if let Some(r) = reason {
        c["reason"] = json!(r);
    }
    c
}

/// The status a kubelet would report for the running pod.
pub fn running(pod: &Value, o: &Observed) -> Value {
    let spec = &pod["spec"];
    let old = &pod["status"];
    let start = old
        .get("startTime")
        .filter(|t| t.is_string())
        .cloned()
        .unwrap_or_else(|| json!(o.now));
    let containers: Vec<Value> = spec["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let ready = ready_delay(c) <= o.running_for;
            running_status(
                c,
                previous(&old["containerStatuses"], &c["name"]),
                &start,
                ready,
            )
        })
        .collect();
    let inits: Vec<Value> = spec["initContainers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let prev = previous(&old["initContainerStatuses"], &c["name"]);
            if c["restartPolicy"] == "Always" {
                return running_status(c, prev, &start, ready_delay(c) <= o.running_for);
            }
            json!({
                "name": c["name"],
                "image": c["image"],
                "imageID": image_id(c["image"].as_str().unwrap_or_default()),
                "containerID": container_id(prev),
                "ready": true,
                "started": false,
                "restartCount": 0,
                "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": start, "finishedAt": start}},
                "lastState": {},
            })
        })
        .collect();
    let all_ready = containers.iter().all(|c| c["ready"] == true);
    // A condition keeps its transition time while its status holds.
    let since = |type_: &str, ok: bool| {
        let want = if ok { "True" } else { "False" };
        old["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == type_ && c["status"] == want)
            .map(|c| c["lastTransitionTime"].clone())
            .unwrap_or_else(|| json!(o.now))
    };
    let not_ready = (!all_ready).then_some("ContainersNotReady");
    let scheduled = old["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "PodScheduled")
        .cloned()
        .unwrap_or_else(|| condition("PodScheduled", true, &start, None));
    let mut status = json!({
        "phase": "Running",
        "conditions": [
            condition("PodReadyToStartContainers", true, &since("PodReadyToStartContainers", true), None),
            condition("Initialized", true, &since("Initialized", true), None),
            condition("Ready", all_ready, &since("Ready", all_ready), not_ready),
            condition("ContainersReady", all_ready, &since("ContainersReady", all_ready), not_ready),
            scheduled,
        ],
        "hostIP": o.host_ip,
        "hostIPs": [{"ip": o.host_ip}],
        "startTime": start,
        "containerStatuses": containers,
    });
    if let Some(ip) = o.pod_ip {
        status["podIP"] = json!(ip.to_string());
        status["podIPs"] = json!([{"ip": ip.to_string()}]);
    }
    if !inits.is_empty() {
        status["initContainerStatuses"] = json!(inits);
    }
    status
}

/// Whether the reported status already says what [`running`] would with `pod_ip` (so nothing is
/// written).
pub fn up_to_date(pod: &Value, running_for: i64, pod_ip: Option<Ipv4Addr>) -> bool {
    let status = &pod["status"];
    let ip_matches = match pod_ip {
        Some(ip) => status["podIP"].as_str() == Some(ip.to_string().as_str()),
        None => status["podIP"].is_null(),
    };
    if status["phase"] != "Running" || !ip_matches {
        return false;
    }
    let containers = pod["spec"]["containers"].as_array().map_or(&[][..], |v| v);
    let reported = status["containerStatuses"]
        .as_array()
        .map_or(&[][..], |v| v);
    containers.len() == reported.len()
        && containers.iter().all(|c| {
            previous(&status["containerStatuses"], &c["name"])
                .is_some_and(|s| s["ready"] == (ready_delay(c) <= running_for))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_unique_addresses_and_reuses_freed_ones() {
        let mut a = IpAllocator::default();
        let s = [10, 42, 1];
        let first = a.allocate("u1", s).unwrap();
        assert_eq!(first.to_string(), "10.42.1.2");
        assert_eq!(a.allocate("u1", s), Some(first));
        a.reserve("u0", "10.42.1.3".parse().unwrap());
        assert_eq!(a.allocate("u2", s).unwrap().to_string(), "10.42.1.4");
        for i in 3..=252 {
            assert!(a.allocate(&format!("x{i}"), s).is_some(), "{i}");
        }
        assert_eq!(a.len(), 253);
        assert_eq!(a.allocate("full", s), None);
        a.release("u1");
        assert_eq!(a.allocate("again", s).unwrap().to_string(), "10.42.1.2");
        // Another node's range is independent.
        assert_eq!(
            a.allocate("other", [10, 42, 2]).unwrap().to_string(),
            "10.42.2.2"
        );
    }

    #[test]
    fn image_ids() {
        assert!(image_id("nginx:1.27").starts_with("nginx@sha256:"));
        assert!(image_id("localhost:5000/app").starts_with("localhost:5000/app@sha256:"));
        assert_eq!(image_id("nginx:1.27").len(), "nginx@sha256:".len() + 64);
        assert_eq!(image_id("a@sha256:00"), "a@sha256:00");
        assert_eq!(image_id("busybox"), image_id("busybox"));
    }

    fn pod() -> Value {
        json!({
            "metadata": {"name": "p", "namespace": "default", "uid": "u"},
            "spec": {
                "nodeName": "k1s-sim-0",
                "containers": [
                    {"name": "a", "image": "nginx"},
                    {"name": "b", "image": "busybox", "readinessProbe": {"initialDelaySeconds": 5}},
                ],
                "initContainers": [{"name": "i", "image": "busybox"}],
            },
            "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": "t0"}]},
        })
    }

    #[test]
    fn running_status_like_a_kubelet() {
        let mut p = pod();
        let o = Observed {
            now: "t1",
            running_for: 0,
            host_ip: "10.44.0.1",
            pod_ip: Some("10.42.0.2".parse().unwrap()),
        };
        let s = running(&p, &o);
        assert_eq!(s["phase"], "Running");
        assert_eq!(s["podIP"], "10.42.0.2");
        assert_eq!(s["hostIPs"][0]["ip"], "10.44.0.1");
        assert_eq!(s["startTime"], "t1");
        let types: Vec<&str> = s["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["type"].as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            [
                "PodReadyToStartContainers",
                "Initialized",
                "Ready",
                "ContainersReady",
                "PodScheduled"
            ]
        );
        assert_eq!(s["conditions"][2]["status"], "False");
        assert_eq!(s["conditions"][2]["reason"], "ContainersNotReady");
        assert_eq!(s["conditions"][4]["lastTransitionTime"], "t0");
        assert_eq!(s["containerStatuses"][0]["ready"], true);
        assert_eq!(s["containerStatuses"][1]["ready"], false);
        assert!(
            s["containerStatuses"][0]["containerID"]
                .as_str()
                .unwrap()
                .starts_with("k1s-sim://")
        );
        assert_eq!(
            s["initContainerStatuses"][0]["state"]["terminated"]["reason"],
            "Completed"
        );
        p["status"] = s.clone();
        let ip = Some("10.42.0.2".parse().unwrap());
        assert!(up_to_date(&p, 0, ip));
        assert!(!up_to_date(&p, 6, ip));
        assert!(!up_to_date(&p, 0, Some("10.42.0.3".parse().unwrap())));
        assert_eq!(not_ready_for(&p, 2), 3);
        // Five seconds later everything is ready; IDs and start times are kept.
        let o = Observed {
            now: "t6",
            running_for: 6,
            ..o
        };
        let s2 = running(&p, &o);
        assert_eq!(s2["conditions"][2]["status"], "True");
        assert_eq!(s2["conditions"][0]["lastTransitionTime"], "t1");
        assert_eq!(s2["conditions"][2]["lastTransitionTime"], "t6");
        assert_eq!(
            s2["containerStatuses"][0]["containerID"],
            s["containerStatuses"][0]["containerID"]
        );
        assert_eq!(
            s2["containerStatuses"][1]["state"]["running"]["startedAt"],
            "t1"
        );
        p["status"] = s2;
        assert!(up_to_date(&p, 6, ip));
        // A full range reports no address, and that is up to date too (no rewrite loop).
        let o = Observed { pod_ip: None, ..o };
        p["status"] = running(&p, &o);
        assert!(p["status"]["podIP"].is_null());
        assert!(up_to_date(&p, 6, None));
    }
}
