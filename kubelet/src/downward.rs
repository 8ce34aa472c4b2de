//! The downward API's resource side: `resourceFieldRef` (`limits.cpu`, `requests.memory`, ...,
//! scaled by a `divisor` and rounded up, as upstream's `ExtractContainerResourceValue`), with
//! unset limits falling back to the node's allocatable; and the `key="value"` map format of
//! `metadata.labels`/`metadata.annotations` files.
//!
//! Invariant: pure functions of the pod and the node's allocatable; never panic on any input
//! (bad quantities and zero divisors are errors).

use serde_json::Value;

use crate::node::{parse_bytes, parse_cpu};

/// The node's allocatable resources, for limits a container leaves unset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Allocatable {
    pub cpu_millis: u64,
    pub memory_bytes: u64,
    pub ephemeral_storage_bytes: u64,
}

/// Why a `resourceFieldRef` cannot be resolved.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ResourceFieldError {
    #[error("unsupported container resource: {0}")]
    Unsupported(String),
    #[error("container {0:?} not found in the pod")]
    NoContainer(String),
    #[error("invalid quantity {0:?}")]
    Quantity(String),
}

fn quantity_str(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The container named `name` among the pod's containers and init containers.
pub fn find_container<'a>(pod: &'a Value, name: &str) -> Option<&'a Value> {
    ["containers", "initContainers"]
        .iter()
        .flat_map(|f| pod["spec"][*f].as_array().into_iter().flatten())
        .find(|c| c["name"] == name)
}

/// Resolves `r` (`{resource, divisor, containerName}`) against container `c`.
pub fn resource_value(
    c: &Value,
    r: &Value,
    alloc: Allocatable,
) -> Result<String, ResourceFieldError> {
    let resource = r["resource"].as_str().unwrap_or_default();
    let (kind, name) = resource
        .split_once('.')
        .ok_or_else(|| ResourceFieldError::Unsupported(resource.to_string()))?;
    if !matches!(kind, "limits" | "requests") {
        return Err(ResourceFieldError::Unsupported(resource.to_string()));
    }
    let divisor = quantity_str(&r["divisor"]).unwrap_or_else(|| "1".to_string());
    let raw = quantity_str(&c["resources"][kind][name]).or_else(|| {
        // Requests default to limits, as the API server defaults them.
        (kind == "requests")
            .then(|| quantity_str(&c["resources"]["limits"][name]))
            .flatten()
    });
    let bad = |q: &str| ResourceFieldError::Quantity(q.to_string());
    match name {
        "cpu" => {
            let millis = match raw {
                Some(q) => parse_cpu(&q).ok_or_else(|| bad(&q))?,
                None if kind == "limits" => alloc.cpu_millis,
                None => 0,
            };
            let div = parse_cpu(&divisor)
                .filter(|d| *d > 0)
                .ok_or_else(|| bad(&divisor))?;
            Ok(millis.div_ceil(div).to_string())
        }
        "memory" | "ephemeral-storage" => {
            let fallback = if name == "memory" {
                alloc.memory_bytes
            } else {
                alloc.ephemeral_storage_bytes
            };
            let bytes = match raw {
                Some(q) => parse_bytes(&q).ok_or_else(|| bad(&q))?,
                None if kind == "limits" => fallback,
                None => 0,
            };
            let div = parse_bytes(&divisor)
                .filter(|d| *d > 0)
                .ok_or_else(|| bad(&divisor))?;
            Ok(bytes.div_ceil(div).to_string())
        }
        _ => Err(ResourceFieldError::Unsupported(resource.to_string())),
    }
}

/// A label or annotation map as upstream writes it: `key="value"` lines (Go `%q` quoting),
/// sorted by key, without a final newline.
pub fn format_map(m: &Value) -> String {
    let mut pairs: Vec<(&String, &str)> = m
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k, v.as_str().unwrap_or_default()))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", Value::String(v.to_string())))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resource_fields_scale_and_fall_back() {
        let c = json!({"resources": {"limits": {"cpu": "500m", "memory": "64Mi"},
                                     "requests": {"cpu": "250m"}}});
        let alloc = Allocatable {
            cpu_millis: 2000,
            memory_bytes: 4 << 30,
            ephemeral_storage_bytes: 10 << 30,
        };
        let v = |r: Value| resource_value(&c, &r, alloc);
        // Rounded up to whole cores by default, as upstream.
        assert_eq!(v(json!({"resource": "limits.cpu"})).unwrap(), "1");
        assert_eq!(
            v(json!({"resource": "limits.cpu", "divisor": "1m"})).unwrap(),
            "500"
        );
        assert_eq!(
            v(json!({"resource": "requests.cpu", "divisor": "1m"})).unwrap(),
            "250"
        );
        assert_eq!(
            v(json!({"resource": "limits.memory", "divisor": "1Mi"})).unwrap(),
            "64"
        );
        assert_eq!(
            v(json!({"resource": "requests.memory"})).unwrap(),
            "67108864"
        );
        assert_eq!(
            v(json!({"resource": "limits.ephemeral-storage", "divisor": "1Gi"})).unwrap(),
            "10"
        );
        let none = json!({});
        assert_eq!(
            resource_value(&none, &json!({"resource": "limits.cpu"}), alloc).unwrap(),
            "2"
        );
        assert_eq!(
            resource_value(&none, &json!({"resource": "requests.memory"}), alloc).unwrap(),
            "0"
        );
        assert!(v(json!({"resource": "limits.gpu"})).is_err());
        assert!(v(json!({"resource": "limits.cpu", "divisor": "0"})).is_err());
    }

    #[test]
    fn maps_are_quoted_and_sorted() {
        let m = json!({"b": "x\"y", "a": "1"});
        assert_eq!(format_map(&m), "a=\"1\"\nb=\"x\\\"y\"");
        assert_eq!(format_map(&json!(null)), "");
    }
}
