//! The scheduler's view of the cluster: nodes, what every node already carries, and the pods it
//! could not place.
//!
//! Invariants:
//! - every non-terminal pod with a `nodeName` (seen by the informer) or assumed by the scheduler
//!   (bind in flight) is accounted exactly once, in `placed`, against one node's `usage`;
//! - an assumed pod stays accounted until the informer shows it bound (then it is the same entry) or
//!   the bind fails (then it is released), so concurrent decisions never oversubscribe a node.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::filter::{self, Allocatable, Reasons, Request, Usage};

/// A node as the filters need it.
pub struct NodeEntry {
    pub obj: Arc<Value>,
    pub alloc: Allocatable,
}

/// Backoff of a pod that did not fit: 1 s doubling to 10 s, as upstream's pod backoff.
pub struct Unschedulable {
    pub attempts: u32,
    pub last_attempt: Instant,
    /// A delayed retry is already scheduled.
    pub timer_pending: bool,
    /// The last `FailedScheduling` event (name, count, message), so a repeat bumps its count.
    pub event: Option<(String, i64, String)>,
}

impl Unschedulable {
    pub fn backoff(&self) -> Duration {
        let exp = self.attempts.saturating_sub(1).min(4);
        Duration::from_secs(1 << exp).min(MAX_BACKOFF)
    }

    /// When the pod may be tried again.
    pub fn ready_at(&self) -> Instant {
        self.last_attempt + self.backoff()
    }
}

pub const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// The outcome of one scheduling decision.
pub enum Decision {
    /// Assumed on this node; bind it.
    Fit(String),
    /// Nothing fits; the `FailedScheduling` message.
    NoFit(String),
}

#[derive(Default)]
pub struct Cache {
    /// By name: iteration order is the tie-break.
    pub nodes: BTreeMap<String, NodeEntry>,
    pub usage: HashMap<String, Usage>,
    /// Pod key → (node, requests) of every accounted pod.
    pub placed: HashMap<String, (String, Request)>,
    /// Pods placed by the scheduler whose binding the informer has not shown yet.
    pub assumed: HashSet<String>,
    pub unschedulable: HashMap<String, Unschedulable>,
}

impl Cache {
    /// Accounts `key` on `node`, replacing whatever it was accounted as before.
    pub fn account(&mut self, key: &str, node: &str, req: Request) {
        self.release(key);
        let u = self.usage.entry(node.to_string()).or_default();
        u.requested.add(&req);
        u.pods += 1;
        self.placed.insert(key.to_string(), (node.to_string(), req));
    }

    /// Stops accounting `key`; whether it was accounted.
    pub fn release(&mut self, key: &str) -> bool {
        self.assumed.remove(key);
        let Some((node, req)) = self.placed.remove(key) else {
            return false;
        };
        if let Some(u) = self.usage.get_mut(&node) {
            u.requested.sub(&req);
            u.pods -= 1;
            if u.pods <= 0 {
                self.usage.remove(&node);
            }
        }
        true
    }

    pub fn set_node(&mut self, obj: Arc<Value>) {
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let alloc = Allocatable::of_node(&obj);
        self.nodes.insert(name, NodeEntry { obj, alloc });
    }

    /// Filters every node, then picks the least loaded fitting one (ties: first by name) and assumes
    /// the pod there.
    pub fn decide(&mut self, key: &str, pod: &Value) -> Decision {
        if self.nodes.is_empty() {
            return Decision::NoFit("no nodes available to schedule pods".into());
        }
        let req = Request::of_pod(pod);
        let mut best: Option<(&str, f64)> = None;
        let mut rejections: Vec<Reasons> = Vec::new();
        let empty = Usage::default();
        for (name, n) in &self.nodes {
            let usage = self.usage.get(name).unwrap_or(&empty);
            match filter::fits(pod, &req, &n.obj, &n.alloc, usage) {
                Ok(()) => {
                    let load = filter::load_after(&req, &n.alloc, usage);
                    if best.is_none_or(|(_, b)| load < b) {
                        best = Some((name, load));
                    }
                }
                Err(r) => rejections.push(r),
            }
        }
        match best {
            Some((name, _)) => {
                let name = name.to_string();
                self.account(key, &name, req);
                self.assumed.insert(key.to_string());
                self.unschedulable.remove(key);
                Decision::Fit(name)
            }
            None => Decision::NoFit(filter::fit_error_message(self.nodes.len(), &rejections)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, cpu: &str) -> Arc<Value> {
        Arc::new(json!({
            "metadata": {"name": name},
            "status": {"allocatable": {"cpu": cpu, "memory": "1Gi", "pods": "10"},
                       "conditions": [{"type": "Ready", "status": "True"}]}
        }))
    }

    fn pod(cpu: &str) -> Value {
        json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]}})
    }

    #[test]
    fn least_loaded_with_ties_by_name_and_no_oversubscription() {
        let mut c = Cache::default();
        c.set_node(node("b", "2"));
        c.set_node(node("a", "2"));
        let fit = |d: Decision| match d {
            Decision::Fit(n) => n,
            Decision::NoFit(m) => panic!("{m}"),
        };
        assert_eq!(fit(c.decide("ns/p1", &pod("1"))), "a");
        assert_eq!(fit(c.decide("ns/p2", &pod("1"))), "b");
        assert_eq!(fit(c.decide("ns/p3", &pod("1"))), "a");
        assert_eq!(fit(c.decide("ns/p4", &pod("1"))), "b");
        match c.decide("ns/p5", &pod("1")) {
            Decision::NoFit(m) => assert_eq!(m, "0/2 nodes are available: 2 Insufficient cpu."),
            Decision::Fit(n) => panic!("oversubscribed {n}"),
        }
        // A failed bind releases the assumption.
        assert!(c.release("ns/p4"));
        assert_eq!(fit(c.decide("ns/p5", &pod("1"))), "b");
        // The informer's view of a bound pod replaces the assumption without double counting.
        c.account("ns/p5", "b", Request::of_pod(&pod("1")));
        assert_eq!(c.usage["b"].pods, 2);
        assert_eq!(c.usage["b"].requested.milli_cpu, 2000);
    }

    #[test]
    fn backoff_doubles_to_ten_seconds() {
        let mut u = Unschedulable {
            attempts: 1,
            last_attempt: Instant::now(),
            timer_pending: false,
            event: None,
        };
        let mut seen = Vec::new();
        for _ in 0..6 {
            seen.push(u.backoff().as_secs());
            u.attempts += 1;
        }
        assert_eq!(seen, [1, 2, 4, 8, 10, 10]);
    }

    #[test]
    fn no_nodes() {
        let mut c = Cache::default();
        match c.decide("ns/p", &pod("1")) {
            Decision::NoFit(m) => assert_eq!(m, "no nodes available to schedule pods"),
            Decision::Fit(_) => panic!(),
        }
    }
}
