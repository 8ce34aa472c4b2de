//! Filters: whether a pod may run on a node, and if not, why, in kube-scheduler's words.
//!
//! Filters run in the default profile's order (NodeUnschedulable, NodeName, TaintToleration,
//! NodeAffinity, NodeResourcesFit) and a node is rejected by the first one that fails, so each node
//! contributes the reasons of one filter to the `FailedScheduling` message, as upstream.
//!
//! A node whose `Ready` condition is not `True` is treated as carrying the taint the node lifecycle
//! controller would put on it (`node.kubernetes.io/not-ready:NoSchedule`, or `unreachable` when the
//! condition is `Unknown`), which is how upstream keeps pods off such nodes.

use serde_json::Value;

use crate::quantity;

pub const REASON_UNSCHEDULABLE: &str = "node(s) were unschedulable";
pub const REASON_NODE_NAME: &str = "node(s) didn't match the requested node name";
pub const REASON_AFFINITY: &str = "node(s) didn't match Pod's node affinity/selector";
pub const REASON_TOO_MANY_PODS: &str = "Too many pods";
pub const REASON_CPU: &str = "Insufficient cpu";
pub const REASON_MEMORY: &str = "Insufficient memory";

pub const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";

/// Requests the scheduler accounts for scoring a container that requests nothing (upstream's
/// non-zero defaults).
pub const DEFAULT_MILLI_CPU: i64 = 100;
pub const DEFAULT_MEMORY: i64 = 200 << 20;

/// What a pod asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Request {
    pub milli_cpu: i64,
    pub memory: i64,
    /// With non-zero defaults, for scoring only.
    pub score_milli_cpu: i64,
    pub score_memory: i64,
}

impl Request {
    /// Effective requests of a pod: the larger of the containers' sum and any single init
    /// container (restartable init containers, i.e. sidecars, add to the sum), plus overhead. A
    /// missing request defaults to the limit, as API defaulting does.
    pub fn of_pod(pod: &Value) -> Request {
        let spec = &pod["spec"];
        let mut sum = Request::default();
        let mut sidecars = Request::default();
        let mut init_max = Request::default();
        for c in spec["containers"].as_array().into_iter().flatten() {
            sum.add(&container_request(c));
        }
        for c in spec["initContainers"].as_array().into_iter().flatten() {
            let r = container_request(c);
            if c["restartPolicy"] == "Always" {
                sidecars.add(&r);
                sum.add(&r);
            } else {
                // A regular init container runs next to the sidecars started before it.
                let mut with = r;
                with.add(&sidecars);
                init_max.max(&with);
            }
        }
        sum.max(&init_max);
        if let Some(o) = spec["overhead"].as_object() {
            let cpu = o.get("cpu").and_then(quantity::from_json);
            let mem = o.get("memory").and_then(quantity::from_json);
            let extra = Request {
                milli_cpu: cpu.map_or(0, |q| q.milli_value()),
                memory: mem.map_or(0, |q| q.value()),
                score_milli_cpu: cpu.map_or(0, |q| q.milli_value()),
                score_memory: mem.map_or(0, |q| q.value()),
            };
            sum.add(&extra);
        }
        sum
    }

    pub fn add(&mut self, o: &Request) {
        self.milli_cpu = self.milli_cpu.saturating_add(o.milli_cpu);
        self.memory = self.memory.saturating_add(o.memory);
        self.score_milli_cpu = self.score_milli_cpu.saturating_add(o.score_milli_cpu);
        self.score_memory = self.score_memory.saturating_add(o.score_memory);
    }

    pub fn sub(&mut self, o: &Request) {
        self.milli_cpu = self.milli_cpu.saturating_sub(o.milli_cpu);
        self.memory = self.memory.saturating_sub(o.memory);
        self.score_milli_cpu = self.score_milli_cpu.saturating_sub(o.score_milli_cpu);
        self.score_memory = self.score_memory.saturating_sub(o.score_memory);
    }

    fn max(&mut self, o: &Request) {
        self.milli_cpu = self.milli_cpu.max(o.milli_cpu);
        self.memory = self.memory.max(o.memory);
        self.score_milli_cpu = self.score_milli_cpu.max(o.score_milli_cpu);
        self.score_memory = self.score_memory.max(o.score_memory);
    }
}

fn container_request(c: &Value) -> Request {
    let res = &c["resources"];
    let get = |name: &str| {
        res["requests"]
            .get(name)
            .or_else(|| res["limits"].get(name))
            .and_then(quantity::from_json)
    };
    let cpu = get("cpu").map(|q| q.milli_value());
    let mem = get("memory").map(|q| q.value());
    Request {
        milli_cpu: cpu.unwrap_or(0),
        memory: mem.unwrap_or(0),
        score_milli_cpu: cpu.unwrap_or(DEFAULT_MILLI_CPU),
        score_memory: mem.unwrap_or(DEFAULT_MEMORY),
    }
}

/// What a node offers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Allocatable {
    pub milli_cpu: i64,
    pub memory: i64,
    pub pods: i64,
}

impl Allocatable {
    /// `status.allocatable`, falling back to `status.capacity`.
    pub fn of_node(node: &Value) -> Allocatable {
        let status = &node["status"];
        let get = |name: &str| {
            status["allocatable"]
                .get(name)
                .or_else(|| status["capacity"].get(name))
                .and_then(quantity::from_json)
        };
        Allocatable {
            milli_cpu: get("cpu").map_or(0, |q| q.milli_value()),
            memory: get("memory").map_or(0, |q| q.value()),
            pods: get("pods").map_or(0, |q| q.value()),
        }
    }
}

/// What is already placed on a node (bound or assumed, non-terminal pods).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub requested: Request,
    pub pods: i64,
}

/// Why a node was rejected: the reasons of the first failing filter.
pub type Reasons = Vec<String>;

/// Runs every filter; `Err` carries the reasons of the first that fails.
pub fn fits(
    pod: &Value,
    req: &Request,
    node: &Value,
    alloc: &Allocatable,
    usage: &Usage,
) -> Result<(), Reasons> {
    let one = |r: &str| Err(vec![r.to_string()]);
    let tolerations = pod["spec"]["tolerations"].as_array().map_or(&[][..], |v| v);
    if !node_schedulable(node, tolerations) {
        return one(REASON_UNSCHEDULABLE);
    }
    if !node_name_matches(pod, node) {
        return one(REASON_NODE_NAME);
    }
    if let Some((key, value)) = untolerated_taint(node, tolerations) {
        return Err(vec![format!(
            "node(s) had untolerated taint {{{key}: {value}}}"
        )]);
    }
    if !node_affinity_matches(pod, node) {
        return one(REASON_AFFINITY);
    }
    resources_fit(req, alloc, usage)
}

/// NodeUnschedulable: `spec.unschedulable` unless the pod tolerates its taint.
pub fn node_schedulable(node: &Value, tolerations: &[Value]) -> bool {
    if node["spec"]["unschedulable"] != true {
        return true;
    }
    tolerations
        .iter()
        .any(|t| tolerates(t, TAINT_UNSCHEDULABLE, "", "NoSchedule"))
}

/// NodeName: a pod naming a node fits only there.
pub fn node_name_matches(pod: &Value, node: &Value) -> bool {
    match pod["spec"]["nodeName"].as_str() {
        Some(n) if !n.is_empty() => node["metadata"]["name"].as_str() == Some(n),
        _ => true,
    }
}

/// Whether a toleration tolerates a taint (key, value, effect).
pub fn tolerates(t: &Value, key: &str, value: &str, effect: &str) -> bool {
    let t_effect = t["effect"].as_str().unwrap_or_default();
    if !t_effect.is_empty() && t_effect != effect {
        return false;
    }
    let t_key = t["key"].as_str().unwrap_or_default();
    if !t_key.is_empty() && t_key != key {
        return false;
    }
    match t["operator"].as_str().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => t["value"].as_str().unwrap_or_default() == value,
        _ => false,
    }
}

/// The node's taints with the effects that repel scheduling, plus the taint its `Ready` condition
/// implies.
fn scheduling_taints(node: &Value) -> Vec<(String, String, String)> {
    let mut taints: Vec<(String, String, String)> = node["spec"]["taints"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            (
                t["key"].as_str().unwrap_or_default().to_string(),
                t["value"].as_str().unwrap_or_default().to_string(),
                t["effect"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let implied = match ready_status(node) {
        "True" => None,
        "Unknown" => Some(TAINT_UNREACHABLE),
        _ => Some(TAINT_NOT_READY),
    };
    if let Some(key) = implied
        && !taints.iter().any(|(k, _, e)| k == key && e == "NoSchedule")
    {
        taints.push((key.to_string(), String::new(), "NoSchedule".to_string()));
    }
    taints.retain(|(_, _, e)| e == "NoSchedule" || e == "NoExecute");
    taints
}

/// `status` of the node's `Ready` condition (`""` when there is none).
pub fn ready_status(node: &Value) -> &str {
    node["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Ready")
        .and_then(|c| c["status"].as_str())
        .unwrap_or("")
}

/// TaintToleration: the first NoSchedule/NoExecute taint no toleration tolerates.
pub fn untolerated_taint(node: &Value, tolerations: &[Value]) -> Option<(String, String)> {
    scheduling_taints(node)
        .into_iter()
        .find(|(k, v, e)| !tolerations.iter().any(|t| tolerates(t, k, v, e)))
        .map(|(k, v, _)| (k, v))
}

/// NodeAffinity: `nodeSelector` and the required node affinity terms.
pub fn node_affinity_matches(pod: &Value, node: &Value) -> bool {
    let labels = &node["metadata"]["labels"];
    if let Some(sel) = pod["spec"]["nodeSelector"].as_object()
        && !sel
            .iter()
            .all(|(k, v)| labels.get(k).is_some_and(|l| l == v))
    {
        return false;
    }
    let required =
        &pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"];
    match required["nodeSelectorTerms"].as_array() {
        // Terms are ORed; an empty list matches nothing (validation refuses it anyway).
        Some(terms) => terms.iter().any(|t| term_matches(t, node)),
        None => true,
    }
}

/// One node selector term: its expressions and fields ANDed; a term with neither matches nothing.
fn term_matches(term: &Value, node: &Value) -> bool {
    let exprs = term["matchExpressions"].as_array().map_or(&[][..], |v| v);
    let fields = term["matchFields"].as_array().map_or(&[][..], |v| v);
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    let labels = &node["metadata"]["labels"];
    exprs
        .iter()
        .all(|e| requirement_matches(e, |k| labels.get(k).and_then(Value::as_str)))
        && fields.iter().all(|e| {
            e["key"] == "metadata.name"
                && requirement_matches(e, |k| {
                    (k == "metadata.name")
                        .then(|| node["metadata"]["name"].as_str())
                        .flatten()
                })
        })
}

/// A node selector requirement against a lookup (`In`, `NotIn`, `Exists`, `DoesNotExist`, `Gt`, `Lt`).
fn requirement_matches<'a>(req: &Value, lookup: impl Fn(&str) -> Option<&'a str>) -> bool {
    let key = req["key"].as_str().unwrap_or_default();
    let values: Vec<&str> = req["values"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let got = lookup(key);
    match req["operator"].as_str().unwrap_or_default() {
        "In" => got.is_some_and(|v| values.contains(&v)),
        "NotIn" => got.is_none_or(|v| !values.contains(&v)),
        "Exists" => got.is_some(),
        "DoesNotExist" => got.is_none(),
        op @ ("Gt" | "Lt") => {
            let (Some(got), [want]) = (got, values.as_slice()) else {
                return false;
            };
            match (got.parse::<i64>(), want.parse::<i64>()) {
                (Ok(g), Ok(w)) if op == "Gt" => g > w,
                (Ok(g), Ok(w)) => g < w,
                _ => false,
            }
        }
        _ => false,
    }
}

/// NodeResourcesFit: the pod count, then cpu and memory against what is left; every shortfall is a
/// reason.
pub fn resources_fit(req: &Request, alloc: &Allocatable, usage: &Usage) -> Result<(), Reasons> {
    let mut reasons = Vec::new();
    if usage.pods + 1 > alloc.pods {
        reasons.push(REASON_TOO_MANY_PODS.to_string());
    }
    if req.milli_cpu > 0 && req.milli_cpu > alloc.milli_cpu - usage.requested.milli_cpu {
        reasons.push(REASON_CPU.to_string());
    }
    if req.memory > 0 && req.memory > alloc.memory - usage.requested.memory {
        reasons.push(REASON_MEMORY.to_string());
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(reasons)
    }
}

/// How loaded a node would be with the pod: the mean of its cpu and memory fractions (scoring uses
/// non-zero defaults, so pods without requests still spread). Lower is better.
pub fn load_after(req: &Request, alloc: &Allocatable, usage: &Usage) -> f64 {
    let frac = |used: i64, want: i64, total: i64| {
        if total <= 0 {
            1.0
        } else {
            (used.saturating_add(want)) as f64 / total as f64
        }
    };
    (frac(
        usage.requested.score_milli_cpu,
        req.score_milli_cpu,
        alloc.milli_cpu,
    ) + frac(usage.requested.score_memory, req.score_memory, alloc.memory))
        / 2.0
}

/// The `FailedScheduling` message: `0/<n> nodes are available: <count> <reason>, ….` with the
/// reason histogram sorted as strings, as upstream's `FitError`.
pub fn fit_error_message(num_nodes: usize, rejections: &[Reasons]) -> String {
    let mut counts: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for reasons in rejections {
        for r in reasons {
            *counts.entry(r.as_str()).or_default() += 1;
        }
    }
    let mut parts: Vec<String> = counts.iter().map(|(r, n)| format!("{n} {r}")).collect();
    parts.sort();
    let mut msg = format!("0/{num_nodes} nodes are available:");
    if !parts.is_empty() {
        msg.push(' ');
        msg.push_str(&parts.join(", "));
        msg.push('.');
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, labels: Value) -> Value {
        json!({
            "metadata": {"name": name, "labels": labels},
            "spec": {},
            "status": {
                "allocatable": {"cpu": "2", "memory": "4Gi", "pods": "3"},
                "conditions": [{"type": "Ready", "status": "True"}],
            }
        })
    }

    fn pod(spec: Value) -> Value {
        let mut spec = spec;
        if spec.get("containers").is_none() {
            spec["containers"] = json!([{"name": "c", "image": "i"}]);
        }
        json!({"metadata": {"name": "p", "namespace": "default"}, "spec": spec})
    }

    fn check(p: &Value, n: &Value) -> Result<(), Reasons> {
        check_with(p, n, &Usage::default())
    }

    fn check_with(p: &Value, n: &Value, usage: &Usage) -> Result<(), Reasons> {
        fits(p, &Request::of_pod(p), n, &Allocatable::of_node(n), usage)
    }

    fn err(r: &str) -> Result<(), Reasons> {
        Err(vec![r.to_string()])
    }

    #[test]
    fn node_selector() {
        let n = node("a", json!({"disk": "ssd", "zone": "z1"}));
        assert_eq!(
            check(&pod(json!({"nodeSelector": {"disk": "ssd"}})), &n),
            Ok(())
        );
        assert_eq!(
            check(&pod(json!({"nodeSelector": {"disk": "hdd"}})), &n),
            err(REASON_AFFINITY)
        );
        assert_eq!(
            check(&pod(json!({"nodeSelector": {"gpu": "yes"}})), &n),
            err(REASON_AFFINITY)
        );
    }

    fn affinity(terms: Value) -> Value {
        pod(
            json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}}),
        )
    }

    #[test]
    fn required_node_affinity_operators() {
        let n = node("a", json!({"disk": "ssd", "cores": "16"}));
        let table = [
            (
                json!({"key": "disk", "operator": "In", "values": ["ssd", "nvme"]}),
                true,
            ),
            (
                json!({"key": "disk", "operator": "In", "values": ["hdd"]}),
                false,
            ),
            (
                json!({"key": "gpu", "operator": "In", "values": ["x"]}),
                false,
            ),
            (
                json!({"key": "disk", "operator": "NotIn", "values": ["hdd"]}),
                true,
            ),
            (
                json!({"key": "disk", "operator": "NotIn", "values": ["ssd"]}),
                false,
            ),
            (
                json!({"key": "gpu", "operator": "NotIn", "values": ["x"]}),
                true,
            ),
            (json!({"key": "disk", "operator": "Exists"}), true),
            (json!({"key": "gpu", "operator": "Exists"}), false),
            (json!({"key": "gpu", "operator": "DoesNotExist"}), true),
            (json!({"key": "disk", "operator": "DoesNotExist"}), false),
            (
                json!({"key": "cores", "operator": "Gt", "values": ["8"]}),
                true,
            ),
            (
                json!({"key": "cores", "operator": "Gt", "values": ["16"]}),
                false,
            ),
            (
                json!({"key": "cores", "operator": "Lt", "values": ["32"]}),
                true,
            ),
            (
                json!({"key": "cores", "operator": "Lt", "values": ["4"]}),
                false,
            ),
            (
                json!({"key": "disk", "operator": "Gt", "values": ["1"]}),
                false,
            ),
            (
                json!({"key": "gpu", "operator": "Lt", "values": ["1"]}),
                false,
            ),
        ];
        for (expr, want) in table {
            let p = affinity(json!([{"matchExpressions": [expr.clone()]}]));
            let got = check(&p, &n).is_ok();
            assert_eq!(got, want, "{expr}");
        }
    }

    #[test]
    fn affinity_terms_are_ored_and_fields_match_the_name() {
        let n = node("a", json!({"disk": "ssd"}));
        let miss =
            json!({"matchExpressions": [{"key": "disk", "operator": "In", "values": ["hdd"]}]});
        let hit =
            json!({"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["a"]}]});
        let other =
            json!({"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["b"]}]});
        let not_other = json!({"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["b"]}]});
        assert!(check(&affinity(json!([miss.clone(), hit])), &n).is_ok());
        assert!(check(&affinity(json!([miss.clone(), other])), &n).is_err());
        assert!(check(&affinity(json!([not_other])), &n).is_ok());
        assert!(check(&affinity(json!([{}])), &n).is_err());
        assert!(check(&affinity(json!([])), &n).is_err());
        // nodeSelector and affinity must both hold.
        let mut p =
            affinity(json!([{"matchExpressions": [{"key": "disk", "operator": "Exists"}]}]));
        p["spec"]["nodeSelector"] = json!({"disk": "hdd"});
        assert_eq!(check(&p, &n), err(REASON_AFFINITY));
    }

    #[test]
    fn taints_and_tolerations() {
        let mut n = node("a", json!({}));
        n["spec"]["taints"] = json!([
            {"key": "soft", "value": "x", "effect": "PreferNoSchedule"},
            {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"},
            {"key": "evict", "effect": "NoExecute"},
        ]);
        assert_eq!(
            check(&pod(json!({})), &n),
            err("node(s) had untolerated taint {dedicated: gpu}")
        );
        let gpu = json!({"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"});
        assert_eq!(
            check(&pod(json!({"tolerations": [gpu.clone()]})), &n),
            err("node(s) had untolerated taint {evict: }")
        );
        let evict = json!({"key": "evict", "operator": "Exists"});
        assert!(check(&pod(json!({"tolerations": [gpu, evict]})), &n).is_ok());
        let wrong_value = json!({"key": "dedicated", "value": "cpu"});
        let exists_any_key = json!({"operator": "Exists"});
        assert!(check(&pod(json!({"tolerations": [wrong_value]})), &n).is_err());
        assert!(check(&pod(json!({"tolerations": [exists_any_key]})), &n).is_ok());
        let wrong_effect = json!({"operator": "Exists", "effect": "PreferNoSchedule"});
        assert!(check(&pod(json!({"tolerations": [wrong_effect]})), &n).is_err());
    }

    #[test]
    fn unschedulable_and_not_ready_nodes() {
        let mut n = node("a", json!({}));
        n["spec"]["unschedulable"] = json!(true);
        assert_eq!(check(&pod(json!({})), &n), err(REASON_UNSCHEDULABLE));
        let t = json!({"key": TAINT_UNSCHEDULABLE, "operator": "Exists", "effect": "NoSchedule"});
        assert!(check(&pod(json!({"tolerations": [t]})), &n).is_ok());

        let mut n = node("b", json!({}));
        n["status"]["conditions"] = json!([{"type": "Ready", "status": "False"}]);
        // The default tolerations (NoExecute, 300 s) do not cover the NoSchedule taint.
        let defaults = json!([{"key": TAINT_NOT_READY, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]);
        assert_eq!(
            check(&pod(json!({"tolerations": defaults})), &n),
            err("node(s) had untolerated taint {node.kubernetes.io/not-ready: }")
        );
        n["status"]["conditions"] = json!([{"type": "Ready", "status": "Unknown"}]);
        assert_eq!(
            check(&pod(json!({})), &n),
            err("node(s) had untolerated taint {node.kubernetes.io/unreachable: }")
        );
        n["status"]["conditions"] = json!([]);
        assert!(check(&pod(json!({})), &n).is_err());
    }

    #[test]
    fn node_name() {
        let n = node("a", json!({}));
        assert!(check(&pod(json!({"nodeName": "a"})), &n).is_ok());
        assert_eq!(
            check(&pod(json!({"nodeName": "b"})), &n),
            err(REASON_NODE_NAME)
        );
    }

    #[test]
    fn requests_of_a_pod() {
        let p = pod(json!({
            "containers": [
                {"name": "a", "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}}},
                {"name": "b", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}},
                {"name": "c"},
            ],
            "initContainers": [
                {"name": "i", "resources": {"requests": {"cpu": "3"}}},
                {"name": "s", "restartPolicy": "Always", "resources": {"requests": {"memory": "1Mi"}}},
            ],
            "overhead": {"cpu": "10m"},
        }));
        let r = Request::of_pod(&p);
        assert_eq!(r.milli_cpu, 3010);
        assert_eq!(r.memory, (64 << 20) + (1 << 30) + (1 << 20));
        // `c` requests nothing: scoring counts the defaults for it.
        assert_eq!(
            r.score_memory,
            (64 << 20) + (1 << 30) + DEFAULT_MEMORY + (1 << 20)
        );
    }

    #[test]
    fn resources_against_what_is_left() {
        let n = node("a", json!({}));
        let big = pod(
            json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": "1500m", "memory": "3Gi"}}}]}),
        );
        assert!(check(&big, &n).is_ok());
        let used = Usage {
            requested: Request {
                milli_cpu: 1000,
                memory: 0,
                ..Default::default()
            },
            pods: 1,
        };
        assert_eq!(check_with(&big, &n, &used), err(REASON_CPU));
        let full = Usage {
            requested: Request {
                milli_cpu: 1000,
                memory: 2 << 30,
                ..Default::default()
            },
            pods: 3,
        };
        assert_eq!(
            check_with(&big, &n, &full),
            Err(vec![
                REASON_TOO_MANY_PODS.to_string(),
                REASON_CPU.to_string(),
                REASON_MEMORY.to_string()
            ])
        );
        // A pod requesting nothing only needs a pod slot.
        let none = pod(json!({}));
        assert!(check_with(&none, &n, &used).is_ok());
    }

    #[test]
    fn least_loaded_after_placement() {
        let alloc = Allocatable {
            milli_cpu: 1000,
            memory: 1000,
            pods: 10,
        };
        let req = Request {
            score_milli_cpu: 100,
            score_memory: 100,
            ..Default::default()
        };
        let mut usage = Usage::default();
        assert!((load_after(&req, &alloc, &usage) - 0.1).abs() < 1e-9);
        usage.requested.score_milli_cpu = 500;
        assert!((load_after(&req, &alloc, &usage) - 0.35).abs() < 1e-9);
    }

    #[test]
    fn fit_error_messages_like_upstream() {
        assert_eq!(
            fit_error_message(1, &[vec![REASON_CPU.into()]]),
            "0/1 nodes are available: 1 Insufficient cpu."
        );
        assert_eq!(
            fit_error_message(
                3,
                &[
                    vec![REASON_AFFINITY.into()],
                    vec![REASON_MEMORY.into()],
                    vec![REASON_AFFINITY.into()]
                ]
            ),
            "0/3 nodes are available: 1 Insufficient memory, 2 node(s) didn't match Pod's node affinity/selector."
        );
        assert_eq!(
            fit_error_message(
                2,
                &[
                    vec![REASON_CPU.into(), REASON_MEMORY.into()],
                    vec![REASON_CPU.into()]
                ]
            ),
            "0/2 nodes are available: 1 Insufficient memory, 2 Insufficient cpu."
        );
        // Upstream sorts the histogram as strings: "10 …" before "2 …".
        let mut many = vec![vec![REASON_UNSCHEDULABLE.to_string()]; 10];
        many.extend(vec![vec![REASON_CPU.to_string()]; 2]);
        assert_eq!(
            fit_error_message(12, &many),
            "0/12 nodes are available: 10 node(s) were unschedulable, 2 Insufficient cpu."
        );
        assert_eq!(fit_error_message(0, &[]), "0/0 nodes are available:");
    }
}
