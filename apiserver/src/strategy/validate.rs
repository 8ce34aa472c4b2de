//! Per-kind validation of what k1s serves, with upstream's field paths and messages.
//!
//! Every function returns all causes found (never stops at the first), so a 422 lists them all like
//! kube-apiserver does.

use k1s_apimachinery::status::{Cause, StatusCause};
use k1s_apimachinery::validation as v;
use serde_json::Value;

use crate::resources::{Resource, StrategyKind};

pub fn required(field: &str) -> StatusCause {
    Cause::required(field, "")
}

pub fn invalid(field: &str, value: &Value, detail: &str) -> StatusCause {
    Cause::invalid(field, value, detail)
}

pub fn not_supported(field: &str, value: &Value, valid: &[&str]) -> StatusCause {
    Cause::not_supported(field, value, valid)
}

fn duplicate(field: &str, value: &Value) -> StatusCause {
    Cause::duplicate(field, value)
}

fn forbidden(field: &str, detail: &str) -> StatusCause {
    Cause::forbidden(field, detail)
}

/// Upstream reports an immutable field as an invalid value.
pub fn immutable(field: &str, value: &Value) -> StatusCause {
    Cause::invalid(field, value, "field is immutable")
}

fn each_error(field: &str, value: &str, errors: Vec<String>, out: &mut Vec<StatusCause>) {
    for e in errors {
        out.push(invalid(field, &Value::String(value.into()), &e));
    }
}

/// Name rule of a kind.
fn name_errors(res: &Resource, name: &str) -> Vec<String> {
    match res.strategy {
        StrategyKind::Namespace => v::is_dns1123_label(name),
        StrategyKind::Service => v::is_dns1035_label(name),
        StrategyKind::Crd | StrategyKind::Custom | StrategyKind::Event | StrategyKind::EventsV1 => {
            // Events and custom resources only need a path-segment-safe name.
            path_segment_errors(name)
        }
        _ => v::is_dns1123_subdomain(name),
    }
}

fn path_segment_errors(name: &str) -> Vec<String> {
    if name == "." || name == ".." {
        return vec![format!("may not be '{name}'")];
    }
    for bad in ["/", "%"] {
        if name.contains(bad) {
            return vec![format!("may not contain '{bad}'")];
        }
    }
    Vec::new()
}

/// Validates `metadata` (name, labels, annotations, owner references, finalizers).
pub fn object_meta(res: &Resource, obj: &Value, out: &mut Vec<StatusCause>) {
    let meta = &obj["metadata"];
    match meta.get("name").and_then(Value::as_str) {
        Some(name) if !name.is_empty() => {
            each_error("metadata.name", name, name_errors(res, name), out)
        }
        _ => out.push(StatusCause {
            reason: "FieldValueRequired".into(),
            message: "Required value: name or generateName is required".into(),
            field: "metadata.name".into(),
        }),
    }
    if let Some(labels) = meta.get("labels").filter(|l| !l.is_null()) {
        out.extend(v::validate_labels(labels, "metadata.labels"));
    }
    if let Some(annotations) = meta.get("annotations").filter(|a| !a.is_null()) {
        out.extend(v::validate_annotations(annotations, "metadata.annotations"));
    }
    if let Some(Value::Array(fins)) = meta.get("finalizers") {
        for (i, f) in fins.iter().enumerate() {
            let field = format!("metadata.finalizers[{i}]");
            match f.as_str() {
                Some(s) => each_error(&field, s, v::is_qualified_name(s), out),
                None => out.push(invalid(&field, f, "must be a string")),
            }
        }
    }
}

/// Kind-specific validation of a new or updated object; `old` is set on update.
pub fn validate(res: &Resource, obj: &Value, old: Option<&Value>) -> Vec<StatusCause> {
    let mut out = Vec::new();
    object_meta(res, obj, &mut out);
    let spec = &obj["spec"];
    use StrategyKind as S;
    match res.strategy {
        S::Pod => {
            pod_spec(spec, "spec", &mut out);
            if let Some(old) = old {
                pod_update(&old["spec"], spec, &mut out);
            }
        }
        S::Deployment | S::ReplicaSet | S::StatefulSet | S::DaemonSet => {
            workload(res.strategy, spec, &mut out);
            if let Some(old) = old
                && old["spec"]["selector"] != spec["selector"]
            {
                out.push(immutable("spec.selector", &spec["selector"]));
            }
        }
        S::Service => service(spec, old.map(|o| &o["spec"]), &mut out),
        S::ConfigMap | S::Secret => {
            data_keys(obj, &mut out);
            if let Some(old) = old {
                if old.get("immutable") == Some(&Value::Bool(true)) {
                    for key in ["data", "binaryData", "stringData"] {
                        if old.get(key) != obj.get(key) && key != "stringData" {
                            out.push(forbidden(key, "field is immutable when `immutable` is set"));
                        }
                    }
                    if obj.get("immutable") != Some(&Value::Bool(true)) {
                        out.push(forbidden(
                            "immutable",
                            "field is immutable when `immutable` is set",
                        ));
                    }
                }
                if res.strategy == S::Secret && old.get("type") != obj.get("type") {
                    out.push(immutable("type", &obj["type"]));
                }
            }
        }
        S::PodDisruptionBudget => disruption_budget(spec, &mut out),
        S::Crd => crd(obj, &mut out),
        S::Custom => {
            if let Some(schema) = res.custom.as_ref().and_then(|c| c.schema.as_ref()) {
                super::custom::validate(schema, obj, &mut out);
            }
        }
        _ => {}
    }
    out
}

fn pod_spec(spec: &Value, path: &str, out: &mut Vec<StatusCause>) {
    let containers = spec.get("containers").and_then(Value::as_array);
    match containers {
        Some(list) if !list.is_empty() => {}
        _ => out.push(required(&format!("{path}.containers"))),
    }
    let mut names = std::collections::HashSet::new();
    for list_name in ["initContainers", "containers", "ephemeralContainers"] {
        let Some(list) = spec.get(list_name).and_then(Value::as_array) else {
            continue;
        };
        for (i, c) in list.iter().enumerate() {
            let cpath = format!("{path}.{list_name}[{i}]");
            if list_name == "ephemeralContainers" {
                ephemeral_container(c, &cpath, out);
            }
            match c.get("name").and_then(Value::as_str) {
                Some(n) if !n.is_empty() => {
                    each_error(&format!("{cpath}.name"), n, v::is_dns1123_label(n), out);
                    if !names.insert(n.to_string()) {
                        out.push(duplicate(&format!("{cpath}.name"), &c["name"]));
                    }
                }
                _ => out.push(required(&format!("{cpath}.name"))),
            }
            match c.get("image").and_then(Value::as_str) {
                Some(i) if !i.trim().is_empty() => {}
                _ => out.push(required(&format!("{cpath}.image"))),
            }
            if let Some(policy) = c.get("imagePullPolicy") {
                let ok = ["Always", "IfNotPresent", "Never"];
                if !policy.as_str().is_some_and(|p| ok.contains(&p)) {
                    out.push(not_supported(
                        &format!("{cpath}.imagePullPolicy"),
                        policy,
                        &ok,
                    ));
                }
            }
            if let Some(ports) = c.get("ports").and_then(Value::as_array) {
                for (j, p) in ports.iter().enumerate() {
                    let ppath = format!("{cpath}.ports[{j}]");
                    port_number(
                        &format!("{ppath}.containerPort"),
                        p.get("containerPort"),
                        true,
                        out,
                    );
                    protocol(&format!("{ppath}.protocol"), p.get("protocol"), out);
                }
            }
        }
    }
    if let Some(rp) = spec.get("restartPolicy") {
        let ok = ["Always", "OnFailure", "Never"];
        if !rp.as_str().is_some_and(|p| ok.contains(&p)) {
            out.push(not_supported(&format!("{path}.restartPolicy"), rp, &ok));
        }
    }
    if let Some(dp) = spec.get("dnsPolicy") {
        let ok = ["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];
        if !dp.as_str().is_some_and(|p| ok.contains(&p)) {
            out.push(not_supported(&format!("{path}.dnsPolicy"), dp, &ok));
        }
    }
    if let Some(g) = spec.get("terminationGracePeriodSeconds")
        && g.as_i64().is_none_or(|g| g < 0)
    {
        out.push(invalid(
            &format!("{path}.terminationGracePeriodSeconds"),
            g,
            "must be greater than or equal to 0",
        ));
    }
}

/// What an ephemeral container may not have (upstream's `validateEphemeralContainers`).
fn ephemeral_container(c: &Value, path: &str, out: &mut Vec<StatusCause>) {
    for field in [
        "ports",
        "livenessProbe",
        "readinessProbe",
        "startupProbe",
        "lifecycle",
        "resizePolicy",
        "restartPolicy",
    ] {
        if c.get(field).is_some_and(|v| !v.is_null()) {
            out.push(forbidden(
                &format!("{path}.{field}"),
                "cannot be set for an Ephemeral Container",
            ));
        }
    }
    let resources_set = c
        .get("resources")
        .and_then(Value::as_object)
        .is_some_and(|r| {
            r.values()
                .any(|v| v.as_object().is_some_and(|m| !m.is_empty()))
        });
    if resources_set {
        out.push(forbidden(
            &format!("{path}.resources"),
            "cannot be set for an Ephemeral Container",
        ));
    }
}

/// Ephemeral containers may be added, never changed or removed (upstream's
/// `ValidatePodEphemeralContainersUpdate`).
fn ephemeral_update(old: &Value, new: &Value, out: &mut Vec<StatusCause>) {
    let list = |spec: &Value| -> Vec<Value> {
        spec.get("ephemeralContainers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let new_list = list(new);
    for o in list(old) {
        let name = o["name"].as_str().unwrap_or_default();
        match new_list.iter().find(|n| n["name"] == o["name"]) {
            None => out.push(forbidden(
                "spec.ephemeralContainers",
                &format!("existing ephemeral containers \"{name}\" may not be removed"),
            )),
            Some(n) if *n != o => out.push(forbidden(
                "spec.ephemeralContainers",
                &format!("existing ephemeral containers \"{name}\" may not be changed"),
            )),
            Some(_) => {}
        }
    }
}

/// Only a few pod spec fields may change after creation.
fn pod_update(old: &Value, new: &Value, out: &mut Vec<StatusCause>) {
    ephemeral_update(old, new, out);
    let strip = |spec: &Value| {
        let mut s = spec.clone();
        if let Some(obj) = s.as_object_mut() {
            for key in [
                "activeDeadlineSeconds",
                "tolerations",
                "terminationGracePeriodSeconds",
                "schedulingGates",
                "ephemeralContainers",
            ] {
                obj.remove(key);
            }
            for list in ["containers", "initContainers"] {
                if let Some(Value::Array(cs)) = obj.get_mut(list) {
                    for c in cs.iter_mut().filter_map(Value::as_object_mut) {
                        c.remove("image");
                    }
                }
            }
        }
        s
    };
    if strip(old) != strip(new) {
        out.push(forbidden(
            "spec",
            "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
        ));
    }
}

fn port_number(field: &str, value: Option<&Value>, required_: bool, out: &mut Vec<StatusCause>) {
    match value {
        None if required_ => out.push(required(field)),
        Some(p) if p.as_i64().is_none_or(|p| !(1..=65535).contains(&p)) => {
            out.push(invalid(field, p, "must be between 1 and 65535, inclusive"));
        }
        _ => {}
    }
}

fn protocol(field: &str, value: Option<&Value>, out: &mut Vec<StatusCause>) {
    if let Some(p) = value {
        let ok = ["SCTP", "TCP", "UDP"];
        if !p.as_str().is_some_and(|p| ok.contains(&p)) {
            out.push(not_supported(field, p, &ok));
        }
    }
}

/// An int-or-percent field: a non-negative integer or `N%`; returns the percent (or the integer).
fn int_or_percent(field: &str, v: &Value, out: &mut Vec<StatusCause>) -> Option<(i64, bool)> {
    match v {
        Value::Number(n) => match n.as_i64() {
            Some(i) if i >= 0 => Some((i, false)),
            _ => {
                out.push(invalid(field, v, "must be greater than or equal to 0"));
                None
            }
        },
        Value::String(s) => {
            let digits = s
                .strip_suffix('%')
                .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()));
            match digits.and_then(|d| d.parse::<i64>().ok()) {
                Some(p) => Some((p, true)),
                None => {
                    out.push(invalid(
                        field,
                        v,
                        "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
                    ));
                    None
                }
            }
        }
        _ => {
            out.push(invalid(field, v, "must be an integer or a percent string"));
            None
        }
    }
}

/// `spec` of a PodDisruptionBudget, as upstream's `ValidatePodDisruptionBudgetSpec`.
fn disruption_budget(spec: &Value, out: &mut Vec<StatusCause>) {
    let min = spec.get("minAvailable").filter(|v| !v.is_null());
    let max = spec.get("maxUnavailable").filter(|v| !v.is_null());
    if min.is_some() && max.is_some() {
        out.push(invalid(
            "spec",
            spec,
            "minAvailable and maxUnavailable cannot be both set",
        ));
    }
    for (field, value) in [("spec.minAvailable", min), ("spec.maxUnavailable", max)] {
        if let Some(v) = value
            && let Some((n, true)) = int_or_percent(field, v, out)
            && n > 100
        {
            out.push(invalid(field, v, "must not be greater than 100%"));
        }
    }
    if let Some(sel) = spec.get("selector").filter(|s| !s.is_null())
        && let Err(e) = k1s_apimachinery::selector::label::LabelSelector::from_metav1(sel)
    {
        out.push(invalid("spec.selector", sel, &e.to_string()));
    }
    if let Some(p) = spec
        .get("unhealthyPodEvictionPolicy")
        .filter(|v| !v.is_null())
        && !matches!(p.as_str(), Some("IfHealthyBudget" | "AlwaysAllow"))
    {
        out.push(not_supported(
            "spec.unhealthyPodEvictionPolicy",
            p,
            &["AlwaysAllow", "IfHealthyBudget"],
        ));
    }
}

/// `spec.strategy` of a Deployment.
fn deployment_strategy(spec: &Value, out: &mut Vec<StatusCause>) {
    let strategy = &spec["strategy"];
    let ty = strategy
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("RollingUpdate");
    if !matches!(ty, "RollingUpdate" | "Recreate") {
        out.push(not_supported(
            "spec.strategy.type",
            &strategy["type"],
            &["Recreate", "RollingUpdate"],
        ));
        return;
    }
    let Some(ru) = strategy.get("rollingUpdate").filter(|r| !r.is_null()) else {
        return;
    };
    if ty == "Recreate" {
        out.push(forbidden(
            "spec.strategy.rollingUpdate",
            "may not be specified when strategy `type` is 'Recreate'",
        ));
        return;
    }
    let base = "spec.strategy.rollingUpdate";
    let surge = ru
        .get("maxSurge")
        .and_then(|v| int_or_percent(&format!("{base}.maxSurge"), v, out));
    let unavailable = ru
        .get("maxUnavailable")
        .and_then(|v| int_or_percent(&format!("{base}.maxUnavailable"), v, out));
    if let Some((p, true)) = unavailable
        && p > 100
    {
        out.push(invalid(
            &format!("{base}.maxUnavailable"),
            &ru["maxUnavailable"],
            "must not be greater than 100%",
        ));
    }
    if let (Some((0, _)), Some((0, _))) = (surge, unavailable) {
        out.push(invalid(
            &format!("{base}.maxUnavailable"),
            &ru["maxUnavailable"],
            "may not be 0 when `maxSurge` is 0",
        ));
    }
}

fn workload(kind: StrategyKind, spec: &Value, out: &mut Vec<StatusCause>) {
    if kind == StrategyKind::Deployment {
        deployment_strategy(spec, out);
    }
    if let Some(r) = spec.get("replicas")
        && r.as_i64().is_none_or(|r| r < 0)
    {
        out.push(invalid(
            "spec.replicas",
            r,
            "must be greater than or equal to 0",
        ));
    }
    let selector = spec.get("selector").filter(|s| !s.is_null());
    match selector {
        None => out.push(required("spec.selector")),
        Some(sel) => {
            let empty = sel
                .get("matchLabels")
                .and_then(Value::as_object)
                .is_none_or(|m| m.is_empty())
                && sel
                    .get("matchExpressions")
                    .and_then(Value::as_array)
                    .is_none_or(|m| m.is_empty());
            if empty {
                out.push(invalid(
                    "spec.selector",
                    sel,
                    "empty selector is invalid for deployment",
                ));
            } else {
                match k1s_apimachinery::selector::label::LabelSelector::from_metav1(sel) {
                    Err(e) => out.push(invalid("spec.selector", sel, &e.to_string())),
                    Ok(parsed) => {
                        let labels = k1s_apimachinery::meta::labels(&spec["template"]);
                        if !parsed.matches(&labels) {
                            // Upstream prints the labels as a Go map literal.
                            let pairs: Vec<String> =
                                labels.iter().map(|(k, v)| format!("{k:?}:{v:?}")).collect();
                            out.push(StatusCause {
                                reason: "FieldValueInvalid".into(),
                                message: format!(
                                    "Invalid value: map[string]string{{{}}}: `selector` does not match template `labels`",
                                    pairs.join(", ")
                                ),
                                field: "spec.template.metadata.labels".into(),
                            });
                        }
                    }
                }
            }
        }
    }
    let template = &spec["template"];
    if let Some(labels) = template.pointer("/metadata/labels") {
        out.extend(v::validate_labels(labels, "spec.template.metadata.labels"));
    }
    pod_spec(&template["spec"], "spec.template.spec", out);
    if matches!(
        kind,
        StrategyKind::Deployment
            | StrategyKind::ReplicaSet
            | StrategyKind::DaemonSet
            | StrategyKind::StatefulSet
    ) && let Some(rp) = template.pointer("/spec/restartPolicy")
        && rp != "Always"
    {
        out.push(not_supported(
            "spec.template.spec.restartPolicy",
            rp,
            &["Always"],
        ));
    }
}

fn service(spec: &Value, old: Option<&Value>, out: &mut Vec<StatusCause>) {
    let ty = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP");
    let types = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
    if !types.contains(&ty) {
        out.push(not_supported("spec.type", &spec["type"], &types));
    }
    let headless = spec.get("clusterIP").and_then(Value::as_str) == Some("None");
    let ports = spec.get("ports").and_then(Value::as_array);
    if ty != "ExternalName" && !headless && ports.is_none_or(|p| p.is_empty()) {
        out.push(required("spec.ports"));
    }
    if ty == "ExternalName"
        && spec
            .get("externalName")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
    {
        out.push(required("spec.externalName"));
    }
    if let Some(ports) = ports {
        let mut names = std::collections::HashSet::new();
        for (i, p) in ports.iter().enumerate() {
            let path = format!("spec.ports[{i}]");
            match p.get("name").and_then(Value::as_str) {
                Some(n) if !n.is_empty() => {
                    each_error(&format!("{path}.name"), n, v::is_dns1123_label(n), out);
                    if !names.insert(n.to_string()) {
                        out.push(duplicate(&format!("{path}.name"), &p["name"]));
                    }
                }
                _ if ports.len() > 1 => out.push(required(&format!("{path}.name"))),
                _ => {}
            }
            port_number(&format!("{path}.port"), p.get("port"), true, out);
            protocol(&format!("{path}.protocol"), p.get("protocol"), out);
            if let Some(np) = p.get("nodePort") {
                if ty == "ClusterIP" {
                    out.push(forbidden(
                        &format!("{path}.nodePort"),
                        "may not be used when `type` is 'ClusterIP'",
                    ));
                } else if np.as_i64().is_none_or(|n| !(1..=65535).contains(&n)) {
                    out.push(invalid(
                        &format!("{path}.nodePort"),
                        np,
                        "must be between 1 and 65535, inclusive",
                    ));
                }
            }
        }
    }
    if let Some(old) = old {
        let old_ip = old
            .get("clusterIP")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let new_ip = spec
            .get("clusterIP")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let type_change = old.get("type") != spec.get("type");
        if !old_ip.is_empty() && old_ip != new_ip && !type_change {
            out.push(immutable("spec.clusterIPs[0]", &spec["clusterIP"]));
        }
    }
}

/// ConfigMap and Secret keys: `[-._a-zA-Z0-9]+`, and a total size limit of 1 MiB.
fn data_keys(obj: &Value, out: &mut Vec<StatusCause>) {
    let mut total = 0usize;
    for field in ["data", "binaryData", "stringData"] {
        let Some(map) = obj.get(field).and_then(Value::as_object) else {
            continue;
        };
        for (k, val) in map {
            let ok = !k.is_empty()
                && k.len() <= 253
                && k.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
                && k != "."
                && k != ".."
                && !k.starts_with("..");
            if !ok {
                out.push(invalid(
                    &format!("{field}[{k}]"),
                    &Value::String(k.clone()),
                    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                ));
            }
            total += k.len() + val.as_str().map_or(0, str::len);
        }
    }
    if total > 1024 * 1024 {
        out.push(StatusCause {
            reason: "FieldValueTooLong".into(),
            message: "Too long: must have at most 1048576 bytes".into(),
            field: "data".into(),
        });
    }
}

fn crd(obj: &Value, out: &mut Vec<StatusCause>) {
    let spec = &obj["spec"];
    let group = spec
        .get("group")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if group.is_empty() {
        out.push(required("spec.group"));
    } else if !group.contains('.') {
        out.push(invalid(
            "spec.group",
            &spec["group"],
            "should be a domain with at least one dot",
        ));
    }
    let plural = spec
        .pointer("/names/plural")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if plural.is_empty() {
        out.push(required("spec.names.plural"));
    }
    if spec
        .pointer("/names/kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .is_empty()
    {
        out.push(required("spec.names.kind"));
    }
    let expected = format!("{plural}.{group}");
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !plural.is_empty() && !group.is_empty() && name != expected {
        out.push(invalid(
            "metadata.name",
            &Value::String(name.into()),
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    let scope = spec.get("scope");
    if !scope
        .and_then(Value::as_str)
        .is_some_and(|s| s == "Namespaced" || s == "Cluster")
    {
        match scope {
            None => out.push(required("spec.scope")),
            Some(s) => out.push(not_supported("spec.scope", s, &["Cluster", "Namespaced"])),
        }
    }
    let versions = spec.get("versions").and_then(Value::as_array);
    match versions {
        None => out.push(required("spec.versions")),
        Some(vs) if vs.is_empty() => out.push(invalid(
            "spec.versions",
            &spec["versions"],
            "must have exactly one version marked as storage version",
        )),
        Some(vs) => {
            let storage = vs
                .iter()
                .filter(|v| v.get("storage") == Some(&Value::Bool(true)))
                .count();
            if storage != 1 {
                out.push(invalid(
                    "spec.versions",
                    &spec["versions"],
                    "must have exactly one version marked as storage version",
                ));
            }
            for (i, ver) in vs.iter().enumerate() {
                if ver
                    .get("name")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    out.push(required(&format!("spec.versions[{i}].name")));
                }
                if ver.get("served").is_none() {
                    out.push(required(&format!("spec.versions[{i}].served")));
                }
                if ver.get("storage").is_none() {
                    out.push(required(&format!("spec.versions[{i}].storage")));
                }
                if ver.pointer("/schema/openAPIV3Schema").is_none() {
                    out.push(required(&format!(
                        "spec.versions[{i}].schema.openAPIV3Schema"
                    )));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn strategy_causes(ru: Value) -> Vec<String> {
        let mut out = Vec::new();
        deployment_strategy(
            &json!({"strategy": {"type": "RollingUpdate", "rollingUpdate": ru}}),
            &mut out,
        );
        out.into_iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect()
    }

    #[test]
    fn rolling_update_parameters() {
        assert!(strategy_causes(json!({"maxSurge": "25%", "maxUnavailable": 1})).is_empty());
        assert_eq!(
            strategy_causes(json!({"maxSurge": 0, "maxUnavailable": "0%"})),
            [
                "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: \"0%\": may not be 0 when `maxSurge` is 0"
            ]
        );
        let c = strategy_causes(json!({"maxSurge": "abc"}));
        assert!(c[0].starts_with("spec.strategy.rollingUpdate.maxSurge: Invalid value: \"abc\": a valid percent string"), "{c:?}");
        let c = strategy_causes(json!({"maxUnavailable": "150%"}));
        assert!(c[0].ends_with("must not be greater than 100%"), "{c:?}");
        let c = strategy_causes(json!({"maxSurge": -1}));
        assert!(
            c[0].ends_with("must be greater than or equal to 0"),
            "{c:?}"
        );
    }
}
