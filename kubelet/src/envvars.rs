//! A container's environment by Kubernetes' rules: `env` entries in order, each value expanded
//! with `$(VAR)` against the entries before it (`$$` escapes, unknown references stay as
//! written), `valueFrom.fieldRef` from the pod (downward API); and `$(VAR)` in command and args
//! against the whole environment.

use std::collections::HashMap;

use serde_json::Value;

/// Why an environment could not be built (reported as `CreateContainerConfigError`).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvError {
    #[error("unsupported env source for {0}: only value and fieldRef are supported")]
    Unsupported(String),
    #[error("unsupported fieldRef {path:?} for {name}")]
    FieldRef { name: String, path: String },
}

/// Kubernetes' `expansion.Expand`.
pub fn expand(input: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        match after.chars().next() {
            Some('$') => {
                out.push('$');
                rest = &after[1..];
            }
            Some('(') => match after.find(')') {
                Some(close) => {
                    let name = &after[1..close];
                    match lookup(name) {
                        Some(v) if !name.is_empty() => out.push_str(&v),
                        _ => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &after[close + 1..];
                }
                None => {
                    out.push('$');
                    rest = after;
                }
            },
            _ => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The downward API's `fieldRef` paths the kubelet resolves.
fn field(pod: &Value, path: &str) -> Option<String> {
    let v = match path {
        "metadata.name" => &pod["metadata"]["name"],
        "metadata.namespace" => &pod["metadata"]["namespace"],
        "metadata.uid" => &pod["metadata"]["uid"],
        "spec.nodeName" => &pod["spec"]["nodeName"],
        "spec.serviceAccountName" => &pod["spec"]["serviceAccountName"],
        "status.podIP" => &pod["status"]["podIP"],
        "status.hostIP" => &pod["status"]["hostIP"],
        _ => {
            for (prefix, map) in [
                ("metadata.labels['", "labels"),
                ("metadata.annotations['", "annotations"),
            ] {
                if let Some(key) = path.strip_prefix(prefix).and_then(|k| k.strip_suffix("']")) {
                    return Some(
                        pod["metadata"][map][key]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                    );
                }
            }
            return None;
        }
    };
    Some(v.as_str().unwrap_or_default().to_string())
}

/// `KEY=VALUE` entries of the container's `env`, expanded; `pod` must carry the pod IP already
/// for `status.podIP`.
pub fn container_env(pod: &Value, container: &Value) -> Result<Vec<(String, String)>, EnvError> {
    let mut out: Vec<(String, String)> = Vec::new();
    for e in container["env"].as_array().into_iter().flatten() {
        let name = e["name"].as_str().unwrap_or_default().to_string();
        let value = if let Some(path) = e
            .pointer("/valueFrom/fieldRef/fieldPath")
            .and_then(Value::as_str)
        {
            field(pod, path).ok_or_else(|| EnvError::FieldRef {
                name: name.clone(),
                path: path.to_string(),
            })?
        } else if e.get("valueFrom").is_some_and(|v| !v.is_null()) {
            return Err(EnvError::Unsupported(name));
        } else {
            let raw = e["value"].as_str().unwrap_or_default();
            let known: HashMap<&str, &str> =
                out.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            expand(raw, &|n| known.get(n).map(|v| v.to_string()))
        };
        match out.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = value,
            None => out.push((name, value)),
        }
    }
    Ok(out)
}

/// `$(VAR)` in each of `args` against `env` (`KEY=VALUE`).
pub fn expand_all(args: &[String], env: &[String]) -> Vec<String> {
    let map: HashMap<&str, &str> = env.iter().filter_map(|e| e.split_once('=')).collect();
    args.iter()
        .map(|a| expand(a, &|n| map.get(n).map(|v| v.to_string())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn expansion_rules() {
        let lookup = |n: &str| (n == "A").then(|| "x".to_string());
        assert_eq!(expand("$(A)-$(B)", &lookup), "x-$(B)");
        assert_eq!(expand("$$(A)", &lookup), "$(A)");
        assert_eq!(expand("$A $(A", &lookup), "$A $(A");
        assert_eq!(expand("cost $5", &lookup), "cost $5");
        assert_eq!(expand("$", &lookup), "$");
    }

    #[test]
    fn env_in_order_with_downward_api() {
        let pod = json!({"metadata": {"name": "p", "namespace": "ns", "labels": {"app": "web"}},
                         "status": {"podIP": "10.42.0.7"}});
        let c = json!({"env": [
            {"name": "A", "value": "1"},
            {"name": "B", "value": "$(A)-$(C)"},
            {"name": "C", "value": "3"},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
        ]});
        let env = container_env(&pod, &c).unwrap();
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("B"), Some("1-$(C)"));
        assert_eq!(get("IP"), Some("10.42.0.7"));
        assert_eq!(get("APP"), Some("web"));
        let bad = json!({"env": [{"name": "S", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]});
        assert_eq!(
            container_env(&pod, &bad),
            Err(EnvError::Unsupported("S".into()))
        );
        let args = expand_all(&["echo $(A)".into()], &["A=hi".into()]);
        assert_eq!(args, vec!["echo hi".to_string()]);
    }
}
