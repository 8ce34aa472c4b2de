//! Payloads of the projected volume kinds, as pure functions of the pod and the objects it
//! refers to: `configMap` (`data` and `binaryData`), `secret` (`data`, base64), `downwardAPI`
//! (`fieldRef`, `resourceFieldRef`) and `projected` (a merge of those sources and
//! `serviceAccountToken`, whose tokens the caller obtained: [`crate::satoken`]).
//!
//! Invariants: file modes are the item's `mode`, else the volume's `defaultMode`, else 0644;
//! a missing object or key fails the volume unless `optional`; item paths are validated by the
//! atomic writer before anything is written.

use std::collections::HashMap;

use base64::Engine as _;
use serde_json::Value;

use super::atomic::{File, Payload};
use crate::downward::{self, Allocatable};

/// The default file mode of projected files (upstream's `0644`).
pub const DEFAULT_MODE: u32 = 0o644;

/// Why a volume's payload cannot be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProjectError {
    #[error("{kind} \"{name}\" not found")]
    NotFound { kind: &'static str, name: String },
    #[error("configmap or secret references non-existent key {key} in {kind} {name}")]
    MissingKey {
        kind: &'static str,
        name: String,
        key: String,
    },
    #[error("invalid base64 in secret {name} key {key}")]
    Base64 { name: String, key: String },
    #[error("unsupported downward API field {0:?}")]
    Field(String),
    #[error("{0}")]
    Resource(#[from] downward::ResourceFieldError),
    #[error("unsupported projected source {0}")]
    Unsupported(String),
    #[error("no service account token for the pod yet")]
    NoToken,
}

/// What the pod's volumes refer to: ConfigMaps and Secrets by name (`None`: not found), and
/// the node's allocatable for `resourceFieldRef`.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    pub configmaps: HashMap<String, Option<Value>>,
    pub secrets: HashMap<String, Option<Value>>,
    pub allocatable: Allocatable,
    /// Service-account tokens by [`crate::satoken::source_key`].
    pub tokens: HashMap<String, String>,
}

fn mode_of(v: &Value, default: u32) -> u32 {
    v.as_u64()
        .and_then(|m| u32::try_from(m).ok())
        .map_or(default, |m| m & 0o7777)
}

/// Key → bytes of a ConfigMap (`data` + `binaryData`) or a Secret (`data` decoded).
fn entries(obj: &Value, secret: bool, name: &str) -> Result<Vec<(String, Vec<u8>)>, ProjectError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out = Vec::new();
    for (k, v) in obj["data"].as_object().into_iter().flatten() {
        let Some(v) = v.as_str() else { continue };
        let bytes = if secret {
            b64.decode(v).map_err(|_| ProjectError::Base64 {
                name: name.to_string(),
                key: k.clone(),
            })?
        } else {
            v.as_bytes().to_vec()
        };
        out.push((k.clone(), bytes));
    }
    if !secret {
        for (k, v) in obj["binaryData"].as_object().into_iter().flatten() {
            if let Some(bytes) = v.as_str().and_then(|v| b64.decode(v).ok()) {
                out.push((k.clone(), bytes));
            }
        }
    }
    Ok(out)
}

/// A `configMap`/`secret` volume or projected source into `out`.
fn keyed(
    out: &mut Payload,
    src: &Value,
    secret: bool,
    sources: &Sources,
    default_mode: u32,
) -> Result<(), ProjectError> {
    let (kind, field, map) = if secret {
        ("secret", "secretName", &sources.secrets)
    } else {
        ("configmap", "name", &sources.configmaps)
    };
    // A projected secret source names its Secret with `name`, a secret volume with `secretName`.
    let name = src[field]
        .as_str()
        .or_else(|| src["name"].as_str())
        .unwrap_or_default();
    let optional = src["optional"].as_bool().unwrap_or(false);
    let Some(obj) = map.get(name).and_then(Option::as_ref) else {
        return if optional {
            Ok(())
        } else {
            Err(ProjectError::NotFound {
                kind,
                name: name.to_string(),
            })
        };
    };
    let entries = entries(obj, secret, name)?;
    match src["items"].as_array() {
        Some(items) if !items.is_empty() => {
            for item in items {
                let key = item["key"].as_str().unwrap_or_default();
                let Some((_, data)) = entries.iter().find(|(k, _)| k == key) else {
                    if optional {
                        continue;
                    }
                    return Err(ProjectError::MissingKey {
                        kind,
                        name: name.to_string(),
                        key: key.to_string(),
                    });
                };
                let path = item["path"].as_str().unwrap_or(key).to_string();
                let mode = mode_of(&item["mode"], default_mode);
                out.insert(
                    path,
                    File {
                        data: data.clone(),
                        mode,
                    },
                );
            }
        }
        _ => {
            for (k, data) in entries {
                out.insert(
                    k,
                    File {
                        data,
                        mode: default_mode,
                    },
                );
            }
        }
    }
    Ok(())
}

/// Downward API `items` into `out`.
fn downward_items(
    out: &mut Payload,
    pod: &Value,
    items: &Value,
    sources: &Sources,
    default_mode: u32,
) -> Result<(), ProjectError> {
    for item in items.as_array().into_iter().flatten() {
        let path = item["path"].as_str().unwrap_or_default().to_string();
        let data = if let Some(fp) = item.pointer("/fieldRef/fieldPath").and_then(Value::as_str) {
            match fp {
                "metadata.labels" | "metadata.annotations" => {
                    let m = fp.trim_start_matches("metadata.");
                    downward::format_map(&pod["metadata"][m])
                }
                _ => crate::envvars::field(pod, fp)
                    .ok_or_else(|| ProjectError::Field(fp.to_string()))?,
            }
        } else if let Some(r) = item.get("resourceFieldRef").filter(|r| !r.is_null()) {
            let name = r["containerName"].as_str().unwrap_or_default();
            let c = downward::find_container(pod, name)
                .ok_or_else(|| downward::ResourceFieldError::NoContainer(name.to_string()))?;
            downward::resource_value(c, r, sources.allocatable)?
        } else {
            return Err(ProjectError::Field(path));
        };
        let mode = mode_of(&item["mode"], default_mode);
        out.insert(
            path,
            File {
                data: data.into_bytes(),
                mode,
            },
        );
    }
    Ok(())
}

/// The payload of volume `vol` if it is a projected kind (`None` for other kinds).
/// A `serviceAccountToken` source without a token in `sources` fails the volume.
pub fn payload(
    pod: &Value,
    vol: &Value,
    sources: &Sources,
) -> Option<Result<Payload, ProjectError>> {
    let mut out = Payload::new();
    let result = if let Some(cm) = vol.get("configMap").filter(|v| v.is_object()) {
        keyed(
            &mut out,
            cm,
            false,
            sources,
            mode_of(&cm["defaultMode"], DEFAULT_MODE),
        )
    } else if let Some(s) = vol.get("secret").filter(|v| v.is_object()) {
        keyed(
            &mut out,
            s,
            true,
            sources,
            mode_of(&s["defaultMode"], DEFAULT_MODE),
        )
    } else if let Some(d) = vol.get("downwardAPI").filter(|v| v.is_object()) {
        let mode = mode_of(&d["defaultMode"], DEFAULT_MODE);
        downward_items(&mut out, pod, &d["items"], sources, mode)
    } else if let Some(p) = vol.get("projected").filter(|v| v.is_object()) {
        let mode = mode_of(&p["defaultMode"], DEFAULT_MODE);
        (|| {
            for src in p["sources"].as_array().into_iter().flatten() {
                if src["configMap"].is_object() {
                    keyed(&mut out, &src["configMap"], false, sources, mode)?;
                } else if src["secret"].is_object() {
                    keyed(&mut out, &src["secret"], true, sources, mode)?;
                } else if src["downwardAPI"].is_object() {
                    downward_items(&mut out, pod, &src["downwardAPI"]["items"], sources, mode)?;
                } else if let Some(t) = src.get("serviceAccountToken").filter(|t| t.is_object()) {
                    let key = crate::satoken::source_key(t);
                    let token = sources.tokens.get(&key).ok_or(ProjectError::NoToken)?;
                    let path = t["path"].as_str().unwrap_or("token").to_string();
                    let data = token.clone().into_bytes();
                    out.insert(path, File { data, mode });
                } else {
                    let kind = src
                        .as_object()
                        .and_then(|o| o.keys().next().cloned())
                        .unwrap_or_default();
                    return Err(ProjectError::Unsupported(kind));
                }
            }
            Ok(())
        })()
    } else {
        return None;
    };
    Some(result.map(|()| out))
}

/// Names of the ConfigMaps and Secrets the pod's volumes refer to.
pub fn referenced(pod: &Value) -> (Vec<String>, Vec<String>) {
    let mut cms = Vec::new();
    let mut secrets = Vec::new();
    for v in pod["spec"]["volumes"].as_array().into_iter().flatten() {
        if let Some(n) = v.pointer("/configMap/name").and_then(Value::as_str) {
            cms.push(n.to_string());
        }
        if let Some(n) = v.pointer("/secret/secretName").and_then(Value::as_str) {
            secrets.push(n.to_string());
        }
        for s in v
            .pointer("/projected/sources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(n) = s.pointer("/configMap/name").and_then(Value::as_str) {
                cms.push(n.to_string());
            }
            if let Some(n) = s.pointer("/secret/name").and_then(Value::as_str) {
                secrets.push(n.to_string());
            }
        }
    }
    cms.sort();
    cms.dedup();
    secrets.sort();
    secrets.dedup();
    (cms, secrets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sources() -> Sources {
        let mut s = Sources::default();
        s.configmaps.insert(
            "cfg".into(),
            Some(json!({"data": {"a": "1", "b": "2"}, "binaryData": {"bin": "AAE="}})),
        );
        s.configmaps.insert("gone".into(), None);
        s.secrets
            .insert("sec".into(), Some(json!({"data": {"pw": "aHVudGVyMg=="}})));
        s
    }

    fn text(p: &Payload, k: &str) -> (String, u32) {
        let f = &p[k];
        (String::from_utf8_lossy(&f.data).into_owned(), f.mode)
    }

    #[test]
    fn configmap_all_keys_and_items() {
        let pod = json!({});
        let p = payload(&pod, &json!({"configMap": {"name": "cfg"}}), &sources())
            .unwrap()
            .unwrap();
        assert_eq!(text(&p, "a"), ("1".into(), 0o644));
        assert_eq!(p["bin"].data, vec![0, 1]);
        let v = json!({"configMap": {"name": "cfg", "defaultMode": 0o600,
            "items": [{"key": "a", "path": "x/y.txt"}, {"key": "b", "path": "b", "mode": 0o400}]}});
        let p = payload(&pod, &v, &sources()).unwrap().unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(text(&p, "x/y.txt"), ("1".into(), 0o600));
        assert_eq!(text(&p, "b"), ("2".into(), 0o400));
        let missing = json!({"configMap": {"name": "cfg", "items": [{"key": "zz", "path": "z"}]}});
        assert!(matches!(
            payload(&pod, &missing, &sources()),
            Some(Err(ProjectError::MissingKey { .. }))
        ));
    }

    #[test]
    fn secret_and_optional() {
        let pod = json!({});
        let p = payload(&pod, &json!({"secret": {"secretName": "sec"}}), &sources())
            .unwrap()
            .unwrap();
        assert_eq!(text(&p, "pw"), ("hunter2".into(), 0o644));
        let gone = json!({"configMap": {"name": "gone"}});
        assert!(matches!(
            payload(&pod, &gone, &sources()),
            Some(Err(ProjectError::NotFound { .. }))
        ));
        let opt = json!({"configMap": {"name": "gone", "optional": true}});
        assert!(payload(&pod, &opt, &sources()).unwrap().unwrap().is_empty());
        assert!(payload(&pod, &json!({"emptyDir": {}}), &sources()).is_none());
    }

    #[test]
    fn downward_and_projected() {
        let pod = json!({"metadata": {"name": "p", "namespace": "ns", "labels": {"app": "web", "a": "b"}},
            "spec": {"containers": [{"name": "c", "resources": {"limits": {"memory": "64Mi"}}}]}});
        let v = json!({"projected": {"defaultMode": 0o440, "sources": [
            {"configMap": {"name": "cfg", "items": [{"key": "a", "path": "a"}]}},
            {"secret": {"name": "sec"}},
            {"downwardAPI": {"items": [
                {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
                {"path": "mem", "resourceFieldRef": {"containerName": "c", "resource": "limits.memory", "divisor": "1Mi"}, "mode": 0o400},
            ]}},
        ]}});
        let p = payload(&pod, &v, &sources()).unwrap().unwrap();
        assert_eq!(text(&p, "a"), ("1".into(), 0o440));
        assert_eq!(text(&p, "pw"), ("hunter2".into(), 0o440));
        assert_eq!(text(&p, "labels").0, "a=\"b\"\napp=\"web\"");
        assert_eq!(text(&p, "name").0, "p");
        assert_eq!(text(&p, "mem"), ("64".into(), 0o400));
        let tok = json!({"projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}});
        assert!(matches!(
            payload(&pod, &tok, &sources()),
            Some(Err(ProjectError::NoToken))
        ));
        let mut with_token = sources();
        with_token.tokens.insert("\n3600".into(), "jwt".into());
        let p = payload(&pod, &tok, &with_token).unwrap().unwrap();
        assert_eq!(text(&p, "token"), ("jwt".into(), 0o644));
        let other = json!({"projected": {"sources": [{"clusterTrustBundle": {"path": "b"}}]}});
        assert!(matches!(
            payload(&pod, &other, &sources()),
            Some(Err(ProjectError::Unsupported(_)))
        ));
        let (cms, secrets) = referenced(&json!({"spec": {"volumes": [v]}}));
        assert_eq!(
            (cms, secrets),
            (vec!["cfg".to_string()], vec!["sec".to_string()])
        );
    }
}
