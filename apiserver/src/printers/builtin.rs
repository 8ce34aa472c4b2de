//! Column definitions and cells for built-in kinds, following upstream's
//! `pkg/printers/internalversion/printers.go`: same names, types, priorities and cell formats.
//!
//! Cells are always computed for every column (the server prints "wide"); kubectl hides
//! `priority: 1` columns itself. Cells keep upstream's Go types: counts are JSON integers even
//! where the column says `string` (e.g. a Secret's `Data`), exactly as kube-apiserver sends them.

use std::collections::HashMap;
use std::sync::LazyLock;

use jiff::Timestamp;
use k8s_openapi::api::{
    apps::v1 as apps, batch::v1 as batch, certificates::v1 as certs, coordination::v1 as coord,
    core::v1 as core, discovery::v1 as disc, networking::v1 as net, rbac::v1 as rbac,
    scheduling::v1 as sched, storage::v1 as storage,
};
use serde_json::{Value, json};

use super::docs::{age_column, col, doc, name_column, object_meta_doc, wide};
use super::pod::pod_cells;
use super::util::{
    arr_at, at, bool_at, container_cells, format_label_selector, format_labels, int_at, map_len,
    opt_int_at, parse_time, present, selector_string, since, str_at,
};
use super::{Column, default_cells, human_duration};

/// Every `(group, kind)` with a built-in printer.
const KINDS: &[(&str, &str)] = &[
    ("", "Pod"),
    ("", "PodTemplate"),
    ("", "ReplicationController"),
    ("", "Service"),
    ("", "Endpoints"),
    ("", "Node"),
    ("", "Event"),
    ("", "Namespace"),
    ("", "Secret"),
    ("", "ServiceAccount"),
    ("", "PersistentVolume"),
    ("", "PersistentVolumeClaim"),
    ("", "ConfigMap"),
    ("", "ResourceQuota"),
    ("apps", "ReplicaSet"),
    ("apps", "DaemonSet"),
    ("apps", "Deployment"),
    ("apps", "StatefulSet"),
    ("apps", "ControllerRevision"),
    ("batch", "Job"),
    ("batch", "CronJob"),
    ("networking.k8s.io", "Ingress"),
    ("networking.k8s.io", "IngressClass"),
    ("networking.k8s.io", "NetworkPolicy"),
    ("policy", "PodDisruptionBudget"),
    ("rbac.authorization.k8s.io", "RoleBinding"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("storage.k8s.io", "StorageClass"),
    ("scheduling.k8s.io", "PriorityClass"),
    ("coordination.k8s.io", "Lease"),
    ("discovery.k8s.io", "EndpointSlice"),
    ("events.k8s.io", "Event"),
    ("node.k8s.io", "RuntimeClass"),
    (
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
    ),
    ("certificates.k8s.io", "CertificateSigningRequest"),
];

static COLUMNS: LazyLock<HashMap<(&'static str, &'static str), Vec<Column>>> =
    LazyLock::new(|| {
        KINDS
            .iter()
            .filter_map(|&(g, k)| build_columns(g, k).map(|c| ((g, k), c)))
            .collect()
    });

/// Column definitions of the built-in printer for `(group, kind)`; `None` when upstream has no
/// printer for it (use [`super::default_columns`] then).
pub fn builtin_columns(group: &str, kind: &str) -> Option<Vec<Column>> {
    COLUMNS.get(&(group, kind)).cloned()
}

/// Cells for one object, in [`builtin_columns`] order. Kinds without a printer get
/// [`default_cells`], matching [`super::default_columns`].
pub fn builtin_cells(group: &str, kind: &str, obj: &Value, now: Timestamp) -> Vec<Value> {
    let name = json!(str_at(obj, &["metadata", "name"]));
    let age = json!(since(str_at(obj, &["metadata", "creationTimestamp"]), now));
    let spec = |path: &[&str]| -> Value {
        let mut full = vec!["spec"];
        full.extend_from_slice(path);
        at(obj, &full).cloned().unwrap_or(Value::Null)
    };
    match (group, kind) {
        ("", "Pod") => pod_cells(obj, now),
        ("", "PodTemplate") => {
            let (names, images) = container_cells(arr_at(obj, &["template", "spec", "containers"]));
            vec![
                name,
                json!(names),
                json!(images),
                json!(format_labels(at(obj, &["template", "metadata", "labels"]))),
            ]
        }
        ("", "ReplicationController") => {
            let (names, images) =
                container_cells(arr_at(obj, &["spec", "template", "spec", "containers"]));
            vec![
                name,
                json!(replicas(obj)),
                json!(int_at(obj, &["status", "replicas"])),
                json!(int_at(obj, &["status", "readyReplicas"])),
                age,
                json!(names),
                json!(images),
                json!(format_labels(at(obj, &["spec", "selector"]))),
            ]
        }
        ("apps", "ReplicaSet") => {
            let (names, images) =
                container_cells(arr_at(obj, &["spec", "template", "spec", "containers"]));
            vec![
                name,
                json!(replicas(obj)),
                json!(int_at(obj, &["status", "replicas"])),
                json!(int_at(obj, &["status", "readyReplicas"])),
                age,
                json!(names),
                json!(images),
                json!(format_label_selector(at(obj, &["spec", "selector"]))),
            ]
        }
        ("apps", "Deployment") => {
            let (names, images) =
                container_cells(arr_at(obj, &["spec", "template", "spec", "containers"]));
            let selector = selector_string(at(obj, &["spec", "selector"]))
                .unwrap_or_else(|| "<invalid>".into());
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    int_at(obj, &["status", "readyReplicas"]),
                    replicas(obj)
                )),
                json!(int_at(obj, &["status", "updatedReplicas"])),
                json!(int_at(obj, &["status", "availableReplicas"])),
                age,
                json!(names),
                json!(images),
                json!(selector),
            ]
        }
        ("apps", "StatefulSet") => {
            let (names, images) =
                container_cells(arr_at(obj, &["spec", "template", "spec", "containers"]));
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    int_at(obj, &["status", "readyReplicas"]),
                    replicas(obj)
                )),
                age,
                json!(names),
                json!(images),
            ]
        }
        ("apps", "DaemonSet") => {
            let (names, images) =
                container_cells(arr_at(obj, &["spec", "template", "spec", "containers"]));
            let status = |f: &str| json!(int_at(obj, &["status", f]));
            vec![
                name,
                status("desiredNumberScheduled"),
                status("currentNumberScheduled"),
                status("numberReady"),
                status("updatedNumberScheduled"),
                status("numberAvailable"),
                json!(format_labels(at(
                    obj,
                    &["spec", "template", "spec", "nodeSelector"]
                ))),
                age,
                json!(names),
                json!(images),
                json!(format_label_selector(at(obj, &["spec", "selector"]))),
            ]
        }
        ("apps", "ControllerRevision") => {
            let controller = arr_at(obj, &["metadata", "ownerReferences"])
                .iter()
                .find(|r| bool_at(r, &["controller"]))
                .map(|r| {
                    let group = str_at(r, &["apiVersion"])
                        .rsplit_once('/')
                        .map_or("", |(g, _)| g);
                    let kind = str_at(r, &["kind"]);
                    let gk = if group.is_empty() {
                        kind.to_string()
                    } else {
                        format!("{kind}.{group}")
                    };
                    let name = str_at(r, &["name"]);
                    if gk.is_empty() {
                        name.to_string()
                    } else {
                        format!("{}/{name}", gk.to_lowercase())
                    }
                })
                .unwrap_or_else(|| "<none>".into());
            vec![
                name,
                json!(controller),
                json!(int_at(obj, &["revision"])),
                age,
            ]
        }
        ("batch", "Job") => job_cells(obj, name, age, now),
        ("batch", "CronJob") => {
            let job_spec = &["spec", "jobTemplate", "spec"];
            let mut containers_path = job_spec.to_vec();
            containers_path.extend(["template", "spec", "containers"]);
            let (names, images) = container_cells(arr_at(obj, &containers_path));
            let last = str_at(obj, &["status", "lastScheduleTime"]);
            let last = if present(obj, &["status", "lastScheduleTime"]) {
                since(last, now)
            } else {
                "<none>".into()
            };
            let tz = at(obj, &["spec", "timeZone"])
                .and_then(Value::as_str)
                .unwrap_or("<none>");
            let suspend = match at(obj, &["spec", "suspend"]).and_then(Value::as_bool) {
                Some(true) => "True",
                Some(false) => "False",
                None => "<unset>",
            };
            let mut selector_path = job_spec.to_vec();
            selector_path.push("selector");
            vec![
                name,
                json!(str_at(obj, &["spec", "schedule"])),
                json!(tz),
                json!(suspend),
                json!(arr_at(obj, &["status", "active"]).len()),
                json!(last),
                age,
                json!(names),
                json!(images),
                json!(format_label_selector(at(obj, &selector_path))),
            ]
        }
        ("", "Service") => service_cells(obj, name, age),
        ("", "Endpoints") => vec![name, json!(format_endpoints(obj)), age],
        ("", "Node") => node_cells(obj, name, age),
        ("", "Event") => event_cells(obj, now, false),
        ("events.k8s.io", "Event") => event_cells(obj, now, true),
        ("", "Namespace") => vec![name, json!(str_at(obj, &["status", "phase"])), age],
        ("", "Secret") => vec![
            name,
            json!(str_at(obj, &["type"])),
            json!(map_len(obj, &["data"])),
            age,
        ],
        ("", "ServiceAccount") => vec![name, json!(arr_at(obj, &["secrets"]).len()), age],
        ("", "ConfigMap") => vec![
            name,
            json!(map_len(obj, &["data"]) + map_len(obj, &["binaryData"])),
            age,
        ],
        ("", "PersistentVolume") => pv_cells(obj, name, age),
        ("", "PersistentVolumeClaim") => pvc_cells(obj, name, age),
        ("", "ResourceQuota") => {
            let (request, limit) = quota_columns(obj);
            vec![name, json!(request), json!(limit), age]
        }
        ("networking.k8s.io", "Ingress") => {
            let class = at(obj, &["spec", "ingressClassName"])
                .and_then(Value::as_str)
                .unwrap_or("<none>");
            let ports = if arr_at(obj, &["spec", "tls"]).is_empty() {
                "80"
            } else {
                "80, 443"
            };
            vec![
                name,
                json!(class),
                json!(format_hosts(arr_at(obj, &["spec", "rules"]))),
                json!(load_balancer_ips(obj)),
                json!(ports),
                age,
            ]
        }
        ("networking.k8s.io", "IngressClass") => {
            let parameters = match at(obj, &["spec", "parameters"]).filter(|p| p.is_object()) {
                Some(p) => {
                    let mut s = str_at(p, &["kind"]).to_string();
                    if let Some(g) = p.get("apiGroup").and_then(Value::as_str) {
                        s = format!("{s}.{g}");
                    }
                    format!("{s}/{}", str_at(p, &["name"]))
                }
                None => "<none>".into(),
            };
            vec![
                name,
                json!(str_at(obj, &["spec", "controller"])),
                json!(parameters),
                age,
            ]
        }
        ("networking.k8s.io", "NetworkPolicy") => vec![
            name,
            json!(format_label_selector(at(obj, &["spec", "podSelector"]))),
            age,
        ],
        ("policy", "PodDisruptionBudget") => {
            let int_or_string = |v: Value| match v {
                Value::Null => "N/A".to_string(),
                Value::String(s) => s,
                other => other.to_string(),
            };
            vec![
                name,
                json!(int_or_string(spec(&["minAvailable"]))),
                json!(int_or_string(spec(&["maxUnavailable"]))),
                json!(int_at(obj, &["status", "disruptionsAllowed"])),
                age,
            ]
        }
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => {
            let role = format!(
                "{}/{}",
                str_at(obj, &["roleRef", "kind"]),
                str_at(obj, &["roleRef", "name"])
            );
            let (mut users, mut groups, mut sas) = (vec![], vec![], vec![]);
            for s in arr_at(obj, &["subjects"]) {
                let n = str_at(s, &["name"]).to_string();
                match str_at(s, &["kind"]) {
                    "User" => users.push(n),
                    "Group" => groups.push(n),
                    "ServiceAccount" => sas.push(format!("{}/{n}", str_at(s, &["namespace"]))),
                    _ => {}
                }
            }
            vec![
                name,
                json!(role),
                age,
                json!(users.join(", ")),
                json!(groups.join(", ")),
                json!(sas.join(", ")),
            ]
        }
        ("storage.k8s.io", "StorageClass") => {
            let annotations = at(obj, &["metadata", "annotations"]);
            let is_default = [
                "storageclass.kubernetes.io/is-default-class",
                "storageclass.beta.kubernetes.io/is-default-class",
            ]
            .iter()
            .any(|a| annotations.and_then(|m| m.get(*a)).and_then(Value::as_str) == Some("true"));
            let mut display = str_at(obj, &["metadata", "name"]).to_string();
            if is_default {
                display.push_str(" (default)");
            }
            let or = |key: &str, default: &'static str| {
                obj.get(key)
                    .and_then(Value::as_str)
                    .unwrap_or(default)
                    .to_string()
            };
            vec![
                json!(display),
                json!(str_at(obj, &["provisioner"])),
                json!(or("reclaimPolicy", "Delete")),
                json!(or("volumeBindingMode", "Immediate")),
                json!(bool_at(obj, &["allowVolumeExpansion"])),
                age,
            ]
        }
        ("scheduling.k8s.io", "PriorityClass") => vec![
            name,
            json!(int_at(obj, &["value"])),
            json!(bool_at(obj, &["globalDefault"])),
            age,
            json!(str_at(obj, &["preemptionPolicy"])),
        ],
        ("coordination.k8s.io", "Lease") => {
            vec![name, json!(str_at(obj, &["spec", "holderIdentity"])), age]
        }
        ("discovery.k8s.io", "EndpointSlice") => vec![
            name,
            json!(str_at(obj, &["addressType"])),
            json!(format_slice_ports(arr_at(obj, &["ports"]))),
            json!(format_slice_endpoints(arr_at(obj, &["endpoints"]))),
            age,
        ],
        ("node.k8s.io", "RuntimeClass") => vec![name, json!(str_at(obj, &["handler"])), age],
        (
            "admissionregistration.k8s.io",
            "MutatingWebhookConfiguration" | "ValidatingWebhookConfiguration",
        ) => vec![name, json!(arr_at(obj, &["webhooks"]).len()), age],
        ("certificates.k8s.io", "CertificateSigningRequest") => csr_cells(obj, name, age),
        _ => default_cells(obj),
    }
}

/// `spec.replicas`, which defaulting sets to 1 when absent.
fn replicas(obj: &Value) -> i64 {
    opt_int_at(obj, &["spec", "replicas"]).unwrap_or(1)
}

fn job_cells(obj: &Value, name: Value, age: Value, now: Timestamp) -> Vec<Value> {
    let succeeded = int_at(obj, &["status", "succeeded"]);
    let completions = match opt_int_at(obj, &["spec", "completions"]) {
        Some(c) => format!("{succeeded}/{c}"),
        None => {
            let parallelism = int_at(obj, &["spec", "parallelism"]);
            if parallelism > 1 {
                format!("{succeeded}/1 of {parallelism}")
            } else {
                format!("{succeeded}/1")
            }
        }
    };
    let start = parse_time(str_at(obj, &["status", "startTime"]));
    let completion = parse_time(str_at(obj, &["status", "completionTime"]));
    let duration = match (start, completion) {
        (None, _) => String::new(),
        (Some(s), None) => human_duration(now.duration_since(s)),
        (Some(s), Some(c)) => human_duration(c.duration_since(s)),
    };
    let conditions = arr_at(obj, &["status", "conditions"]);
    let has = |t: &str| {
        conditions
            .iter()
            .find(|c| str_at(c, &["type"]) == t)
            .is_some_and(|c| str_at(c, &["status"]) == "True")
    };
    let status = if has("Complete") {
        "Complete"
    } else if has("Failed") {
        "Failed"
    } else if present(obj, &["metadata", "deletionTimestamp"]) {
        "Terminating"
    } else if has("Suspended") {
        "Suspended"
    } else if has("FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let (names, images) = container_cells(arr_at(obj, &["spec", "template", "spec", "containers"]));
    vec![
        name,
        json!(status),
        json!(completions),
        json!(duration),
        age,
        json!(names),
        json!(images),
        json!(format_label_selector(at(obj, &["spec", "selector"]))),
    ]
}

/// Sorted, de-duplicated IPs (or hostnames) of `status.loadBalancer.ingress`, comma-joined.
/// The server prints wide, so the list is not clipped.
fn load_balancer_ips(obj: &Value) -> String {
    let mut ips: Vec<&str> = arr_at(obj, &["status", "loadBalancer", "ingress"])
        .iter()
        .filter_map(|i| {
            let ip = str_at(i, &["ip"]);
            let host = str_at(i, &["hostname"]);
            if !ip.is_empty() {
                Some(ip)
            } else if !host.is_empty() {
                Some(host)
            } else {
                None
            }
        })
        .collect();
    ips.sort_unstable();
    ips.dedup();
    ips.join(",")
}

fn service_cells(obj: &Value, name: Value, age: Value) -> Vec<Value> {
    let svc_type = str_at(obj, &["spec", "type"]);
    let cluster_ip = arr_at(obj, &["spec", "clusterIPs"])
        .first()
        .and_then(Value::as_str)
        .unwrap_or("<none>");
    let external_ips: Vec<&str> = arr_at(obj, &["spec", "externalIPs"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let external = match svc_type {
        "ClusterIP" | "NodePort" => {
            if external_ips.is_empty() {
                "<none>".to_string()
            } else {
                external_ips.join(",")
            }
        }
        "LoadBalancer" => {
            let lb = load_balancer_ips(obj);
            if !external_ips.is_empty() {
                let mut all: Vec<&str> = lb.split(',').filter(|s| !s.is_empty()).collect();
                all.extend(external_ips.iter().copied());
                all.join(",")
            } else if !lb.is_empty() {
                lb
            } else {
                "<pending>".to_string()
            }
        }
        "ExternalName" => str_at(obj, &["spec", "externalName"]).to_string(),
        _ => "<unknown>".to_string(),
    };
    let ports: Vec<String> = arr_at(obj, &["spec", "ports"])
        .iter()
        .map(|p| {
            let port = int_at(p, &["port"]);
            let proto = str_at(p, &["protocol"]);
            let node_port = int_at(p, &["nodePort"]);
            if node_port > 0 {
                format!("{port}:{node_port}/{proto}")
            } else {
                format!("{port}/{proto}")
            }
        })
        .collect();
    let ports = if ports.is_empty() {
        "<none>".to_string()
    } else {
        ports.join(",")
    };
    vec![
        name,
        json!(svc_type),
        json!(cluster_ip),
        json!(external),
        json!(ports),
        age,
        json!(format_labels(at(obj, &["spec", "selector"]))),
    ]
}

/// Up to three `ip:port` endpoints, then `+ N more...`; `<none>` without subsets.
fn format_endpoints(obj: &Value) -> String {
    const MAX: usize = 3;
    let subsets = arr_at(obj, &["subsets"]);
    if subsets.is_empty() {
        return "<none>".into();
    }
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0usize;
    for ss in subsets {
        let addresses = arr_at(ss, &["addresses"]);
        let ports = arr_at(ss, &["ports"]);
        if ports.is_empty() {
            count += addresses.len();
            for a in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(str_at(a, &["ip"]).to_string());
            }
            continue;
        }
        for p in ports {
            count += addresses.len();
            for a in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                let ip = str_at(a, &["ip"]);
                let port = int_at(p, &["port"]);
                // net.JoinHostPort brackets IPv6 addresses.
                if ip.contains(':') {
                    list.push(format!("[{ip}]:{port}"));
                } else {
                    list.push(format!("{ip}:{port}"));
                }
            }
        }
    }
    let joined = list.join(",");
    if more {
        format!("{joined} + {} more...", count - MAX)
    } else {
        joined
    }
}

fn list_with_more(list: &[String], more: bool, count: usize, max: usize) -> String {
    let joined = list.join(",");
    if more {
        format!("{joined} + {} more...", count - max)
    } else if joined.is_empty() {
        "<unset>".into()
    } else {
        joined
    }
}

fn format_slice_ports(ports: &[Value]) -> String {
    const MAX: usize = 3;
    let mut list = Vec::new();
    let mut more = false;
    for p in ports {
        if list.len() < MAX {
            let s = match (
                opt_int_at(p, &["port"]),
                p.get("name").and_then(Value::as_str),
            ) {
                (Some(n), _) => n.to_string(),
                (None, Some(name)) => name.to_string(),
                (None, None) => "*".to_string(),
            };
            list.push(s);
        } else if list.len() == MAX {
            more = true;
        }
    }
    list_with_more(&list, more, ports.len(), MAX)
}

fn format_slice_endpoints(endpoints: &[Value]) -> String {
    const MAX: usize = 3;
    let mut list = Vec::new();
    let mut more = false;
    let mut count = 0;
    for e in endpoints {
        for a in arr_at(e, &["addresses"]) {
            if list.len() < MAX {
                list.push(a.as_str().unwrap_or("").to_string());
            } else if list.len() == MAX {
                more = true;
            }
            count += 1;
        }
    }
    list_with_more(&list, more, count, MAX)
}

fn node_cells(obj: &Value, name: Value, age: Value) -> Vec<Value> {
    let mut status: Vec<&str> = Vec::new();
    // Upstream keeps the last condition of each type.
    if let Some(ready) = arr_at(obj, &["status", "conditions"])
        .iter()
        .rev()
        .find(|c| str_at(c, &["type"]) == "Ready")
    {
        status.push(if str_at(ready, &["status"]) == "True" {
            "Ready"
        } else {
            "NotReady"
        });
    }
    if status.is_empty() {
        status.push("Unknown");
    }
    if bool_at(obj, &["spec", "unschedulable"]) {
        status.push("SchedulingDisabled");
    }
    let mut roles: Vec<String> = Vec::new();
    if let Some(labels) = at(obj, &["metadata", "labels"]).and_then(Value::as_object) {
        for (k, v) in labels {
            if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                if !role.is_empty() {
                    roles.push(role.to_string());
                }
            } else if k == "kubernetes.io/role" {
                let v = v.as_str().unwrap_or("");
                if !v.is_empty() {
                    roles.push(v.to_string());
                }
            }
        }
    }
    roles.sort();
    roles.dedup();
    let roles = if roles.is_empty() {
        "<none>".to_string()
    } else {
        roles.join(",")
    };
    let address = |t: &str| {
        arr_at(obj, &["status", "addresses"])
            .iter()
            .find(|a| str_at(a, &["type"]) == t)
            .map_or("<none>", |a| str_at(a, &["address"]))
            .to_string()
    };
    let info = |f: &str| {
        let v = str_at(obj, &["status", "nodeInfo", f]);
        if v.is_empty() { "<unknown>" } else { v }.to_string()
    };
    vec![
        name,
        json!(status.join(",")),
        json!(roles),
        age,
        json!(str_at(obj, &["status", "nodeInfo", "kubeletVersion"])),
        json!(address("InternalIP")),
        json!(address("ExternalIP")),
        json!(info("osImage")),
        json!(info("kernelVersion")),
        json!(info("containerRuntimeVersion")),
    ]
}

/// Core and `events.k8s.io` events print alike (upstream converts both to the internal type);
/// `events_api` selects the `events.k8s.io/v1` field names.
fn event_cells(obj: &Value, now: Timestamp, events_api: bool) -> Vec<Value> {
    let f = |core: &'static str, events: &'static str| if events_api { events } else { core };
    let regarding = f("involvedObject", "regarding");
    let first = str_at(obj, &[f("firstTimestamp", "deprecatedFirstTimestamp")]);
    let last = str_at(obj, &[f("lastTimestamp", "deprecatedLastTimestamp")]);
    let first_seen = if parse_time(first).is_some() {
        since(first, now)
    } else {
        since(str_at(obj, &["eventTime"]), now)
    };
    let mut last_seen = if parse_time(last).is_some() {
        since(last, now)
    } else {
        first_seen.clone()
    };
    let mut count = int_at(obj, &[f("count", "deprecatedCount")]);
    if present(obj, &["series"]) {
        last_seen = since(str_at(obj, &["series", "lastObservedTime"]), now);
        count = int_at(obj, &["series", "count"]);
    } else if count == 0 {
        count = 1;
    }
    let kind = str_at(obj, &[regarding, "kind"]).to_lowercase();
    let involved_name = str_at(obj, &[regarding, "name"]);
    let target = if involved_name.is_empty() {
        kind
    } else {
        format!("{kind}/{involved_name}")
    };
    let source = f("source", "deprecatedSource");
    let first_non_empty = |a: &'static str, b: &str| {
        let v = str_at(obj, &[source, a]);
        if v.is_empty() {
            str_at(obj, &[b]).to_string()
        } else {
            v.to_string()
        }
    };
    let component = first_non_empty("component", "reportingController");
    let instance = first_non_empty("host", "reportingInstance");
    let source = if instance.is_empty() {
        component
    } else {
        format!("{component}, {instance}")
    };
    vec![
        json!(last_seen),
        json!(str_at(obj, &["type"])),
        json!(str_at(obj, &["reason"])),
        json!(target),
        json!(str_at(obj, &[regarding, "fieldPath"])),
        json!(source),
        json!(str_at(obj, &[f("message", "note")]).trim()),
        json!(first_seen),
        json!(count),
        json!(str_at(obj, &["metadata", "name"])),
    ]
}

/// `RWO,ROX,RWX,RWOP` in that order, as `GetAccessModesAsString`.
fn access_modes(modes: &[Value]) -> String {
    let has = |m: &str| modes.iter().any(|v| v.as_str() == Some(m));
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(m, _)| has(m))
    .map(|(_, s)| *s)
    .collect::<Vec<_>>()
    .join(",")
}

/// A storage quantity as printed; Go prints a missing `Quantity` as `0`.
fn quantity(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "0".into(),
    }
}

/// The beta storage-class annotation wins over `spec.storageClassName`.
fn storage_class(obj: &Value) -> String {
    at(
        obj,
        &[
            "metadata",
            "annotations",
            "volume.beta.kubernetes.io/storage-class",
        ],
    )
    .and_then(Value::as_str)
    .unwrap_or_else(|| str_at(obj, &["spec", "storageClassName"]))
    .to_string()
}

fn unset_or(obj: &Value, path: &[&str]) -> String {
    at(obj, path)
        .and_then(Value::as_str)
        .unwrap_or("<unset>")
        .to_string()
}

fn phase_or_terminating(obj: &Value) -> String {
    if present(obj, &["metadata", "deletionTimestamp"]) {
        "Terminating".into()
    } else {
        str_at(obj, &["status", "phase"]).into()
    }
}

fn pv_cells(obj: &Value, name: Value, age: Value) -> Vec<Value> {
    let claim = if present(obj, &["spec", "claimRef"]) {
        format!(
            "{}/{}",
            str_at(obj, &["spec", "claimRef", "namespace"]),
            str_at(obj, &["spec", "claimRef", "name"])
        )
    } else {
        String::new()
    };
    vec![
        name,
        json!(quantity(at(obj, &["spec", "capacity", "storage"]))),
        json!(access_modes(arr_at(obj, &["spec", "accessModes"]))),
        json!(str_at(obj, &["spec", "persistentVolumeReclaimPolicy"])),
        json!(phase_or_terminating(obj)),
        json!(claim),
        json!(storage_class(obj)),
        json!(unset_or(obj, &["spec", "volumeAttributesClassName"])),
        json!(str_at(obj, &["status", "reason"])),
        age,
        json!(unset_or(obj, &["spec", "volumeMode"])),
    ]
}

fn pvc_cells(obj: &Value, name: Value, age: Value) -> Vec<Value> {
    let volume = str_at(obj, &["spec", "volumeName"]);
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            quantity(at(obj, &["status", "capacity", "storage"])),
            access_modes(arr_at(obj, &["status", "accessModes"])),
        )
    };
    vec![
        name,
        json!(phase_or_terminating(obj)),
        json!(volume),
        json!(capacity),
        json!(modes),
        json!(storage_class(obj)),
        json!(unset_or(obj, &["spec", "volumeAttributesClassName"])),
        age,
        json!(unset_or(obj, &["spec", "volumeMode"])),
    ]
}

/// `resource: used/hard` pairs sorted by resource, split into requests and `limits.*`.
fn quota_columns(obj: &Value) -> (String, String) {
    let Some(hard) = at(obj, &["status", "hard"]).and_then(Value::as_object) else {
        return (String::new(), String::new());
    };
    let mut names: Vec<&String> = hard.keys().collect();
    names.sort();
    let (mut request, mut limit) = (Vec::new(), Vec::new());
    for r in names {
        let used = quantity(at(obj, &["status", "used", r]));
        let entry = format!("{r}: {used}/{}", quantity(hard.get(r)));
        let mut pieces = r.split('.');
        if pieces.next() == Some("limits") && pieces.next().is_some() {
            limit.push(entry);
        } else {
            request.push(entry);
        }
    }
    (request.join(", "), limit.join(", "))
}

/// Up to three rule hosts, then `+ N more...`; `*` when no rule names a host.
fn format_hosts(rules: &[Value]) -> String {
    const MAX: usize = 3;
    let mut list: Vec<&str> = Vec::new();
    let mut more = false;
    for r in rules {
        if list.len() == MAX {
            more = true;
        }
        let host = str_at(r, &["host"]);
        if !more && !host.is_empty() {
            list.push(host);
        }
    }
    if list.is_empty() {
        return "*".into();
    }
    let joined = list.join(",");
    if more {
        format!("{joined} + {} more...", rules.len() - MAX)
    } else {
        joined
    }
}

fn csr_cells(obj: &Value, name: Value, age: Value) -> Vec<Value> {
    let (mut approved, mut denied, mut failed) = (false, false, false);
    for c in arr_at(obj, &["status", "conditions"]) {
        match str_at(c, &["type"]) {
            "Approved" => approved = true,
            "Denied" => denied = true,
            "Failed" => failed = true,
            _ => {}
        }
    }
    let mut status = if denied {
        "Denied"
    } else if approved {
        "Approved"
    } else {
        "Pending"
    }
    .to_string();
    if failed {
        status.push_str(",Failed");
    }
    if !str_at(obj, &["status", "certificate"]).is_empty() {
        status.push_str(",Issued");
    }
    let signer = match str_at(obj, &["spec", "signerName"]) {
        "" => "<none>",
        s => s,
    };
    let requested = opt_int_at(obj, &["spec", "expirationSeconds"]).map_or_else(
        || "<none>".to_string(),
        |s| human_duration(jiff::SignedDuration::from_secs(s)),
    );
    vec![
        name,
        age,
        json!(signer),
        json!(str_at(obj, &["spec", "username"])),
        json!(requested),
        json!(status),
    ]
}

const CONTAINERS_DOC: &str = "Names of each container in the template.";
const IMAGES_DOC: &str = "Images referenced by each container in the template.";

fn build_columns(group: &str, kind: &str) -> Option<Vec<Column>> {
    let n = name_column;
    let age = age_column;
    let containers = || wide("Containers", "string", CONTAINERS_DOC);
    let images = || wide("Images", "string", IMAGES_DOC);
    let cols = match (group, kind) {
        ("", "Pod") => vec![
            n(),
            col(
                "Ready",
                "string",
                "The aggregate readiness state of this pod for accepting traffic.",
            ),
            col(
                "Status",
                "string",
                "The aggregate status of the containers in this pod.",
            ),
            col(
                "Restarts",
                "string",
                "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
            ),
            age(),
            wide("IP", "string", doc::<core::PodStatus>("podIP")),
            wide("Node", "string", doc::<core::PodSpec>("nodeName")),
            wide(
                "Nominated Node",
                "string",
                doc::<core::PodStatus>("nominatedNodeName"),
            ),
            wide(
                "Readiness Gates",
                "string",
                doc::<core::PodSpec>("readinessGates"),
            ),
        ],
        ("", "PodTemplate") => vec![
            n(),
            col("Containers", "string", CONTAINERS_DOC),
            col("Images", "string", IMAGES_DOC),
            col("Pod Labels", "string", "The labels for the pod template."),
        ],
        ("", "ReplicationController") => vec![
            n(),
            col(
                "Desired",
                "integer",
                doc::<core::ReplicationControllerSpec>("replicas"),
            ),
            col(
                "Current",
                "integer",
                doc::<core::ReplicationControllerStatus>("replicas"),
            ),
            col(
                "Ready",
                "integer",
                doc::<core::ReplicationControllerStatus>("readyReplicas"),
            ),
            age(),
            containers(),
            images(),
            wide(
                "Selector",
                "string",
                doc::<core::ReplicationControllerSpec>("selector"),
            ),
        ],
        ("apps", "ReplicaSet") => vec![
            n(),
            col(
                "Desired",
                "integer",
                doc::<apps::ReplicaSetSpec>("replicas"),
            ),
            col(
                "Current",
                "integer",
                doc::<apps::ReplicaSetStatus>("replicas"),
            ),
            col(
                "Ready",
                "integer",
                doc::<apps::ReplicaSetStatus>("readyReplicas"),
            ),
            age(),
            containers(),
            images(),
            wide(
                "Selector",
                "string",
                doc::<apps::ReplicaSetSpec>("selector"),
            ),
        ],
        ("apps", "DaemonSet") => vec![
            n(),
            col(
                "Desired",
                "integer",
                doc::<apps::DaemonSetStatus>("desiredNumberScheduled"),
            ),
            col(
                "Current",
                "integer",
                doc::<apps::DaemonSetStatus>("currentNumberScheduled"),
            ),
            col(
                "Ready",
                "integer",
                doc::<apps::DaemonSetStatus>("numberReady"),
            ),
            col(
                "Up-to-date",
                "integer",
                doc::<apps::DaemonSetStatus>("updatedNumberScheduled"),
            ),
            col(
                "Available",
                "integer",
                doc::<apps::DaemonSetStatus>("numberAvailable"),
            ),
            col(
                "Node Selector",
                "string",
                doc::<core::PodSpec>("nodeSelector"),
            ),
            age(),
            containers(),
            images(),
            wide("Selector", "string", doc::<apps::DaemonSetSpec>("selector")),
        ],
        ("apps", "Deployment") => vec![
            n(),
            col("Ready", "string", "Number of the pod with ready state"),
            col(
                "Up-to-date",
                "string",
                doc::<apps::DeploymentStatus>("updatedReplicas"),
            ),
            col(
                "Available",
                "string",
                doc::<apps::DeploymentStatus>("availableReplicas"),
            ),
            age(),
            containers(),
            images(),
            wide(
                "Selector",
                "string",
                doc::<apps::DeploymentSpec>("selector"),
            ),
        ],
        ("apps", "StatefulSet") => vec![
            n(),
            col("Ready", "string", "Number of the pod with ready state"),
            age(),
            containers(),
            images(),
        ],
        ("apps", "ControllerRevision") => vec![
            n(),
            col("Controller", "string", "Controller of the object"),
            col(
                "Revision",
                "string",
                doc::<apps::ControllerRevision>("revision"),
            ),
            age(),
        ],
        ("batch", "Job") => vec![
            n(),
            col("Status", "string", "Status of the job."),
            col(
                "Completions",
                "string",
                doc::<batch::JobStatus>("succeeded"),
            ),
            col("Duration", "string", "Time required to complete the job."),
            age(),
            containers(),
            images(),
            wide("Selector", "string", doc::<batch::JobSpec>("selector")),
        ],
        ("batch", "CronJob") => vec![
            n(),
            col("Schedule", "string", doc::<batch::CronJobSpec>("schedule")),
            col("Timezone", "string", doc::<batch::CronJobSpec>("timeZone")),
            col("Suspend", "boolean", doc::<batch::CronJobSpec>("suspend")),
            col("Active", "integer", doc::<batch::CronJobStatus>("active")),
            col(
                "Last Schedule",
                "string",
                doc::<batch::CronJobStatus>("lastScheduleTime"),
            ),
            age(),
            containers(),
            images(),
            wide("Selector", "string", doc::<batch::JobSpec>("selector")),
        ],
        ("", "Service") => vec![
            n(),
            col("Type", "string", doc::<core::ServiceSpec>("type")),
            col(
                "Cluster-IP",
                "string",
                doc::<core::ServiceSpec>("clusterIP"),
            ),
            col(
                "External-IP",
                "string",
                doc::<core::ServiceSpec>("externalIPs"),
            ),
            col("Port(s)", "string", doc::<core::ServiceSpec>("ports")),
            age(),
            wide("Selector", "string", doc::<core::ServiceSpec>("selector")),
        ],
        ("", "Endpoints") => vec![
            n(),
            col("Endpoints", "string", doc::<core::Endpoints>("subsets")),
            age(),
        ],
        ("", "Node") => vec![
            n(),
            col("Status", "string", "The status of the node"),
            col("Roles", "string", "The roles of the node"),
            age(),
            col(
                "Version",
                "string",
                doc::<core::NodeSystemInfo>("kubeletVersion"),
            ),
            wide(
                "Internal-IP",
                "string",
                doc::<core::NodeStatus>("addresses"),
            ),
            wide(
                "External-IP",
                "string",
                doc::<core::NodeStatus>("addresses"),
            ),
            wide("OS-Image", "string", doc::<core::NodeSystemInfo>("osImage")),
            wide(
                "Kernel-Version",
                "string",
                doc::<core::NodeSystemInfo>("kernelVersion"),
            ),
            wide(
                "Container-Runtime",
                "string",
                doc::<core::NodeSystemInfo>("containerRuntimeVersion"),
            ),
        ],
        ("", "Event") | ("events.k8s.io", "Event") => vec![
            col("Last Seen", "string", doc::<core::Event>("lastTimestamp")),
            col("Type", "string", doc::<core::Event>("type")),
            col("Reason", "string", doc::<core::Event>("reason")),
            col("Object", "string", doc::<core::Event>("involvedObject")),
            wide(
                "Subobject",
                "string",
                doc::<core::ObjectReference>("fieldPath"),
            ),
            wide("Source", "string", doc::<core::Event>("source")),
            col("Message", "string", doc::<core::Event>("message")),
            wide("First Seen", "string", doc::<core::Event>("firstTimestamp")),
            wide("Count", "string", doc::<core::Event>("count")),
            Column {
                priority: 1,
                ..name_column()
            },
        ],
        ("", "Namespace") => vec![
            n(),
            col("Status", "string", "The status of the namespace"),
            age(),
        ],
        ("", "Secret") => vec![
            n(),
            col("Type", "string", doc::<core::Secret>("type")),
            col("Data", "string", doc::<core::Secret>("data")),
            age(),
        ],
        ("", "ServiceAccount") => vec![
            n(),
            col("Secrets", "string", doc::<core::ServiceAccount>("secrets")),
            age(),
        ],
        ("", "PersistentVolume") => vec![
            n(),
            col(
                "Capacity",
                "string",
                doc::<core::PersistentVolumeSpec>("capacity"),
            ),
            col(
                "Access Modes",
                "string",
                doc::<core::PersistentVolumeSpec>("accessModes"),
            ),
            col(
                "Reclaim Policy",
                "string",
                doc::<core::PersistentVolumeSpec>("persistentVolumeReclaimPolicy"),
            ),
            col(
                "Status",
                "string",
                doc::<core::PersistentVolumeStatus>("phase"),
            ),
            col(
                "Claim",
                "string",
                doc::<core::PersistentVolumeSpec>("claimRef"),
            ),
            col("StorageClass", "string", "StorageClass of the pv"),
            col(
                "VolumeAttributesClass",
                "string",
                "VolumeAttributesClass of the pv",
            ),
            col(
                "Reason",
                "string",
                doc::<core::PersistentVolumeStatus>("reason"),
            ),
            age(),
            wide(
                "VolumeMode",
                "string",
                doc::<core::PersistentVolumeSpec>("volumeMode"),
            ),
        ],
        ("", "PersistentVolumeClaim") => vec![
            n(),
            col(
                "Status",
                "string",
                doc::<core::PersistentVolumeClaimStatus>("phase"),
            ),
            col(
                "Volume",
                "string",
                doc::<core::PersistentVolumeClaimSpec>("volumeName"),
            ),
            col(
                "Capacity",
                "string",
                doc::<core::PersistentVolumeClaimStatus>("capacity"),
            ),
            col(
                "Access Modes",
                "string",
                doc::<core::PersistentVolumeClaimStatus>("accessModes"),
            ),
            col("StorageClass", "string", "StorageClass of the pvc"),
            col(
                "VolumeAttributesClass",
                "string",
                "VolumeAttributesClass of the pvc",
            ),
            age(),
            wide(
                "VolumeMode",
                "string",
                doc::<core::PersistentVolumeClaimSpec>("volumeMode"),
            ),
        ],
        ("", "ConfigMap") => vec![
            n(),
            col("Data", "string", doc::<core::ConfigMap>("data")),
            age(),
        ],
        ("", "ResourceQuota") => vec![
            n(),
            col(
                "Request",
                "string",
                "Request represents a minimum amount of cpu/memory that a container may consume.",
            ),
            col(
                "Limit",
                "string",
                "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.",
            ),
            age(),
        ],
        ("networking.k8s.io", "Ingress") => vec![
            n(),
            col(
                "Class",
                "string",
                "The name of the IngressClass resource that should be used for additional configuration",
            ),
            col(
                "Hosts",
                "string",
                "Hosts that incoming requests are matched against before the ingress rule",
            ),
            col(
                "Address",
                "string",
                "Address is a list containing ingress points for the load-balancer",
            ),
            col("Ports", "string", "Ports of TLS configurations that open"),
            age(),
        ],
        ("networking.k8s.io", "IngressClass") => vec![
            n(),
            col(
                "Controller",
                "string",
                "Controller that is responsible for handling this class",
            ),
            col(
                "Parameters",
                "string",
                "A reference to a resource with additional parameters",
            ),
            age(),
        ],
        ("networking.k8s.io", "NetworkPolicy") => vec![
            n(),
            col(
                "Pod-Selector",
                "string",
                doc::<net::NetworkPolicySpec>("podSelector"),
            ),
            age(),
        ],
        ("policy", "PodDisruptionBudget") => vec![
            n(),
            col(
                "Min Available",
                "string",
                "The minimum number of pods that must be available.",
            ),
            col(
                "Max Unavailable",
                "string",
                "The maximum number of pods that may be unavailable.",
            ),
            col(
                "Allowed Disruptions",
                "integer",
                "Calculated number of pods that may be disrupted at this time.",
            ),
            age(),
        ],
        ("rbac.authorization.k8s.io", "RoleBinding") => {
            binding_columns("roleBinding", doc::<rbac::RoleBinding>("roleRef"))
        }
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => binding_columns(
            "clusterRoleBinding",
            doc::<rbac::ClusterRoleBinding>("roleRef"),
        ),
        ("storage.k8s.io", "StorageClass") => vec![
            n(),
            col(
                "Provisioner",
                "string",
                doc::<storage::StorageClass>("provisioner"),
            ),
            col(
                "ReclaimPolicy",
                "string",
                doc::<storage::StorageClass>("reclaimPolicy"),
            ),
            col(
                "VolumeBindingMode",
                "string",
                doc::<storage::StorageClass>("volumeBindingMode"),
            ),
            col(
                "AllowVolumeExpansion",
                "string",
                doc::<storage::StorageClass>("allowVolumeExpansion"),
            ),
            age(),
        ],
        ("scheduling.k8s.io", "PriorityClass") => vec![
            n(),
            col("Value", "integer", doc::<sched::PriorityClass>("value")),
            col(
                "Global-Default",
                "boolean",
                doc::<sched::PriorityClass>("globalDefault"),
            ),
            age(),
            col(
                "PreemptionPolicy",
                "string",
                doc::<sched::PriorityClass>("preemptionPolicy"),
            ),
        ],
        ("coordination.k8s.io", "Lease") => vec![
            n(),
            col(
                "Holder",
                "string",
                doc::<coord::LeaseSpec>("holderIdentity"),
            ),
            age(),
        ],
        ("discovery.k8s.io", "EndpointSlice") => vec![
            n(),
            col(
                "AddressType",
                "string",
                doc::<disc::EndpointSlice>("addressType"),
            ),
            col("Ports", "string", doc::<disc::EndpointSlice>("ports")),
            col(
                "Endpoints",
                "string",
                doc::<disc::EndpointSlice>("endpoints"),
            ),
            age(),
        ],
        ("node.k8s.io", "RuntimeClass") => {
            // Upstream looks the description up on ObjectMeta, where it is empty.
            vec![
                n(),
                col("Handler", "string", object_meta_doc("handler")),
                age(),
            ]
        }
        (
            "admissionregistration.k8s.io",
            "MutatingWebhookConfiguration" | "ValidatingWebhookConfiguration",
        ) => {
            vec![
                n(),
                col(
                    "Webhooks",
                    "integer",
                    "Webhooks indicates the number of webhooks registered in this configuration",
                ),
                age(),
            ]
        }
        ("certificates.k8s.io", "CertificateSigningRequest") => vec![
            n(),
            age(),
            col(
                "SignerName",
                "string",
                doc::<certs::CertificateSigningRequestSpec>("signerName"),
            ),
            col(
                "Requestor",
                "string",
                doc::<certs::CertificateSigningRequestSpec>("request"),
            ),
            col(
                "RequestedDuration",
                "string",
                doc::<certs::CertificateSigningRequestSpec>("expirationSeconds"),
            ),
            col(
                "Condition",
                "string",
                doc::<certs::CertificateSigningRequestStatus>("conditions"),
            ),
        ],
        _ => return None,
    };
    Some(cols)
}

fn binding_columns(what: &str, role_doc: String) -> Vec<Column> {
    vec![
        name_column(),
        col("Role", "string", role_doc),
        age_column(),
        wide("Users", "string", format!("Users in the {what}")),
        wide("Groups", "string", format!("Groups in the {what}")),
        wide(
            "ServiceAccounts",
            "string",
            format!("ServiceAccounts in the {what}"),
        ),
    ]
}

#[cfg(test)]
mod tests;
