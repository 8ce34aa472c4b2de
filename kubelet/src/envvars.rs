//! A container's environment by Kubernetes' rules: `envFrom` sources first (ConfigMaps and
//! Secrets, with their prefix), then `env` entries in order, each value expanded with `$(VAR)`
//! against the entries before it (`$$` escapes, unknown references stay as written),
//! `valueFrom.fieldRef` from the pod (downward API), `configMapKeyRef`/`secretKeyRef` from the
//! objects the worker fetched ([`EnvSources`]), `resourceFieldRef` ([`crate::downward`]); and `$(VAR)` in command and args against the whole
//! environment.

use std::collections::HashMap;

use base64::Engine as _;
use serde_json::Value;

/// Why an environment could not be built (reported as `CreateContainerConfigError`).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvError {
    #[error(
        "unsupported env source for {0}: value, fieldRef, resourceFieldRef, configMapKeyRef and secretKeyRef are supported"
    )]
    Unsupported(String),
    #[error("resourceFieldRef of {name}: {source}")]
    ResourceField {
        name: String,
        #[source]
        source: crate::downward::ResourceFieldError,
    },
    #[error("unsupported fieldRef {path:?} for {name}")]
    FieldRef { name: String, path: String },
    #[error("{kind} \"{name}\" not found")]
    NotFound { kind: &'static str, name: String },
    #[error("couldn't find key {key} in {kind} {namespace}/{name}")]
    MissingKey {
        kind: &'static str,
        namespace: String,
        name: String,
        key: String,
    },
}

/// ConfigMaps and Secrets of the pod's namespace the container refers to, by name (`None`:
/// fetched and not found).
#[derive(Debug, Default, Clone)]
pub struct EnvSources {
    pub namespace: String,
    pub configmaps: HashMap<String, Option<Value>>,
    pub secrets: HashMap<String, Option<Value>>,
    /// Limits a container leaves unset resolve to these (`resourceFieldRef`).
    pub allocatable: crate::downward::Allocatable,
    /// Service variables ([`crate::service_env`]); the container's own env overrides them.
    pub services: Vec<(String, String)>,
}

/// Names of the ConfigMaps and Secrets container `c` refers to in `env` and `envFrom`.
pub fn referenced(c: &Value) -> (Vec<String>, Vec<String>) {
    let mut cms = Vec::new();
    let mut secrets = Vec::new();
    for e in c["env"].as_array().into_iter().flatten() {
        if let Some(n) = e
            .pointer("/valueFrom/configMapKeyRef/name")
            .and_then(Value::as_str)
        {
            cms.push(n.to_string());
        }
        if let Some(n) = e
            .pointer("/valueFrom/secretKeyRef/name")
            .and_then(Value::as_str)
        {
            secrets.push(n.to_string());
        }
    }
    for e in c["envFrom"].as_array().into_iter().flatten() {
        if let Some(n) = e.pointer("/configMapRef/name").and_then(Value::as_str) {
            cms.push(n.to_string());
        }
        if let Some(n) = e.pointer("/secretRef/name").and_then(Value::as_str) {
            secrets.push(n.to_string());
        }
    }
    cms.sort();
    cms.dedup();
    secrets.sort();
    secrets.dedup();
    (cms, secrets)
}

impl EnvSources {
    fn object(&self, secret: bool, name: &str) -> Option<&Value> {
        let map = if secret {
            &self.secrets
        } else {
            &self.configmaps
        };
        map.get(name).and_then(Option::as_ref)
    }

    /// Key/value pairs of a ConfigMap (`data`) or Secret (`data`, base64-decoded).
    fn entries(&self, secret: bool, name: &str) -> Option<Vec<(String, String)>> {
        let obj = self.object(secret, name)?;
        let mut out = Vec::new();
        for (k, v) in obj["data"].as_object().into_iter().flatten() {
            let Some(v) = v.as_str() else { continue };
            let v = if secret {
                let bytes = base64::engine::general_purpose::STANDARD.decode(v).ok()?;
                String::from_utf8_lossy(&bytes).into_owned()
            } else {
                v.to_string()
            };
            out.push((k.clone(), v));
        }
        Some(out)
    }

    fn key(&self, secret: bool, r: &Value) -> Result<Option<String>, EnvError> {
        let kind = if secret { "secret" } else { "configmap" };
        let name = r["name"].as_str().unwrap_or_default();
        let key = r["key"].as_str().unwrap_or_default();
        let optional = r["optional"].as_bool().unwrap_or(false);
        let Some(entries) = self.entries(secret, name) else {
            return if optional {
                Ok(None)
            } else {
                Err(EnvError::NotFound {
                    kind,
                    name: name.to_string(),
                })
            };
        };
        match entries.into_iter().find(|(k, _)| k == key) {
            Some((_, v)) => Ok(Some(v)),
            None if optional => Ok(None),
            None => Err(EnvError::MissingKey {
                kind: if secret { "Secret" } else { "ConfigMap" },
                namespace: self.namespace.clone(),
                name: name.to_string(),
                key: key.to_string(),
            }),
        }
    }
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
pub(crate) fn field(pod: &Value, path: &str) -> Option<String> {
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
pub fn container_env(
    pod: &Value,
    container: &Value,
    sources: &EnvSources,
) -> Result<Vec<(String, String)>, EnvError> {
    let mut out: Vec<(String, String)> = sources.services.clone();
    let put = |out: &mut Vec<(String, String)>, name: String, value: String| match out
        .iter_mut()
        .find(|(k, _)| *k == name)
    {
        Some(slot) => slot.1 = value,
        None => out.push((name, value)),
    };
    for e in container["envFrom"].as_array().into_iter().flatten() {
        let prefix = e["prefix"].as_str().unwrap_or_default();
        for (secret, field) in [(false, "configMapRef"), (true, "secretRef")] {
            let r = &e[field];
            let Some(name) = r["name"].as_str() else {
                continue;
            };
            match sources.entries(secret, name) {
                Some(entries) => {
                    for (k, v) in entries {
                        put(&mut out, format!("{prefix}{k}"), v);
                    }
                }
                None if r["optional"].as_bool().unwrap_or(false) => {}
                None => {
                    return Err(EnvError::NotFound {
                        kind: if secret { "secret" } else { "configmap" },
                        name: name.to_string(),
                    });
                }
            }
        }
    }
    for e in container["env"].as_array().into_iter().flatten() {
        let name = e["name"].as_str().unwrap_or_default().to_string();
        let value = if let Some(r) = e.pointer("/valueFrom/configMapKeyRef") {
            match sources.key(false, r)? {
                Some(v) => v,
                None => continue,
            }
        } else if let Some(r) = e.pointer("/valueFrom/secretKeyRef") {
            match sources.key(true, r)? {
                Some(v) => v,
                None => continue,
            }
        } else if let Some(path) = e
            .pointer("/valueFrom/fieldRef/fieldPath")
            .and_then(Value::as_str)
        {
            field(pod, path).ok_or_else(|| EnvError::FieldRef {
                name: name.clone(),
                path: path.to_string(),
            })?
        } else if let Some(r) = e.pointer("/valueFrom/resourceFieldRef") {
            let err = |source| EnvError::ResourceField {
                name: name.clone(),
                source,
            };
            let target = match r["containerName"].as_str().filter(|n| !n.is_empty()) {
                Some(n) => crate::downward::find_container(pod, n).ok_or_else(|| {
                    err(crate::downward::ResourceFieldError::NoContainer(
                        n.to_string(),
                    ))
                })?,
                None => container,
            };
            crate::downward::resource_value(target, r, sources.allocatable).map_err(err)?
        } else if e.get("valueFrom").is_some_and(|v| !v.is_null()) {
            return Err(EnvError::Unsupported(name));
        } else {
            let raw = e["value"].as_str().unwrap_or_default();
            let known: HashMap<&str, &str> =
                out.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            expand(raw, &|n| known.get(n).map(|v| v.to_string()))
        };
        put(&mut out, name, value);
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
    fn configmaps_and_secrets() {
        let mut src = EnvSources {
            namespace: "ns".into(),
            ..Default::default()
        };
        src.configmaps
            .insert("cm".into(), Some(json!({"data": {"A": "1", "B": "2"}})));
        src.secrets
            .insert("s".into(), Some(json!({"data": {"PASS": "aHVudGVyMg=="}})));
        src.configmaps.insert("gone".into(), None);
        let c = json!({
            "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CM_"}, {"secretRef": {"name": "s"}}],
            "env": [
                {"name": "CM_A", "value": "override"},
                {"name": "K", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "B"}}},
                {"name": "OPT", "valueFrom": {"configMapKeyRef": {"name": "gone", "key": "x", "optional": true}}},
            ],
        });
        let env = container_env(&json!({}), &c, &src).unwrap();
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("CM_A"), Some("override"));
        assert_eq!(get("CM_B"), Some("2"));
        assert_eq!(get("PASS"), Some("hunter2"));
        assert_eq!(get("K"), Some("2"));
        assert_eq!(get("OPT"), None);
        let missing = json!({"env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "nope"}}}]});
        assert_eq!(
            container_env(&json!({}), &missing, &src)
                .unwrap_err()
                .to_string(),
            "couldn't find key nope in ConfigMap ns/cm"
        );
        let (cms, secrets) = referenced(&c);
        assert_eq!(
            (cms, secrets),
            (
                vec!["cm".to_string(), "gone".to_string()],
                vec!["s".to_string()]
            )
        );
    }

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
        let env = container_env(&pod, &c, &EnvSources::default()).unwrap();
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("B"), Some("1-$(C)"));
        assert_eq!(get("IP"), Some("10.42.0.7"));
        assert_eq!(get("APP"), Some("web"));
        let bad = json!({"env": [{"name": "S", "valueFrom": {"secretKeyRefs": {}}}]});
        assert_eq!(
            container_env(&pod, &bad, &EnvSources::default()),
            Err(EnvError::Unsupported("S".into()))
        );
        let res = json!({"resources": {"limits": {"memory": "32Mi"}}, "env": [
            {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
        ]});
        let env = container_env(&pod, &res, &EnvSources::default()).unwrap();
        assert_eq!(env, vec![("MEM".to_string(), "32".to_string())]);
        let args = expand_all(&["echo $(A)".into()], &["A=hi".into()]);
        assert_eq!(args, vec!["echo hi".to_string()]);
    }
}
