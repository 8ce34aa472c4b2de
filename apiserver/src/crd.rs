//! CustomResourceDefinitions: turning stored CRDs into resource-table rows, and CRD status.
//!
//! The table is rebuilt from the store after every CRD write (and at start-up), so what is served is
//! always exactly what the stored CRDs say.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::resources::{CustomSpec, Resource, ResourceTable, StrategyKind, builtin};
use crate::state::AppState;

/// Rows for one CRD: one per served version.
pub fn rows(crd: &Value) -> Vec<Resource> {
    let spec = &crd["spec"];
    let group = spec["group"].as_str().unwrap_or_default();
    let names = &spec["names"];
    let kind = names["kind"].as_str().unwrap_or_default();
    let plural = names["plural"].as_str().unwrap_or_default();
    if group.is_empty() || kind.is_empty() || plural.is_empty() {
        return Vec::new();
    }
    let str_list = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    let storage = versions
        .iter()
        .find(|v| v["storage"] == true)
        .and_then(|v| v["name"].as_str())
        .unwrap_or_default();
    let mut out = Vec::new();
    for v in versions.iter().filter(|v| v["served"] == true) {
        let version = v["name"].as_str().unwrap_or_default();
        let subs = &v["subresources"];
        let mut subresources = Vec::new();
        if subs.get("status").is_some() {
            subresources.push("status".to_string());
        }
        if subs.get("scale").is_some() {
            subresources.push("scale".to_string());
        }
        out.push(Resource {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            list_kind: names["listKind"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("{kind}List")),
            plural: plural.into(),
            singular: names["singular"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| kind.to_ascii_lowercase()),
            namespaced: spec["scope"] == "Namespaced",
            short_names: str_list(&names["shortNames"]),
            categories: str_list(&names["categories"]),
            subresources,
            strategy: StrategyKind::Custom,
            custom: Some(Arc::new(CustomSpec {
                schema: v.pointer("/schema/openAPIV3Schema").cloned(),
                printer_columns: v["additionalPrinterColumns"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
                scale: subs.get("scale").cloned(),
            })),
            preferred: version == storage,
        });
    }
    out
}

/// Rebuilds the resource table from the built-ins and every stored CRD.
pub fn rebuild_table(state: &AppState) {
    let mut all = builtin();
    match state.store().list(
        "/registry/apiextensions.k8s.io/customresourcedefinitions/",
        Default::default(),
    ) {
        Ok(list) => {
            for kv in list.items {
                if let Ok(crd) = serde_json::from_slice::<Value>(&kv.value)
                    && crd
                        .pointer("/metadata/deletionTimestamp")
                        .is_none_or(Value::is_null)
                {
                    all.extend(rows(&crd));
                }
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "listing CRDs failed; custom resources are not served")
        }
    }
    state.set_table(ResourceTable::new(all));
}

/// The status a CRD gets on every write: names accepted and established (names are checked by
/// validation, and serving starts as soon as the write is acknowledged).
pub fn set_status(crd: &mut Value, now: &str) {
    let names = crd["spec"]["names"].clone();
    let storage: Vec<Value> = crd["spec"]["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["storage"] == true)
        .map(|v| v["name"].clone())
        .collect();
    let mut stored = crd["status"]["storedVersions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for s in storage {
        if !stored.contains(&s) {
            stored.push(s);
        }
    }
    let condition = |ty: &str, reason: &str, message: &str| json!({"type": ty, "status": "True", "lastTransitionTime": now, "reason": reason, "message": message});
    let old_conditions = crd["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let keep_time = |ty: &str, fresh: Value| -> Value {
        match old_conditions
            .iter()
            .find(|c| c["type"] == ty && c["status"] == "True")
        {
            Some(old) => old.clone(),
            None => fresh,
        }
    };
    crd["status"] = json!({
        "acceptedNames": names,
        "conditions": [
            keep_time("NamesAccepted", condition("NamesAccepted", "NoConflicts", "no conflicts found")),
            keep_time("Established", condition("Established", "InitialNamesAccepted", "the initial names have been accepted")),
        ],
        "storedVersions": stored,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd() -> Value {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"kind": "Widget", "plural": "widgets", "shortNames": ["wd"]},
                "versions": [
                    {"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {"type": "object"}},
                     "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}}},
                    {"name": "v1beta1", "served": false, "storage": false, "schema": {"openAPIV3Schema": {"type": "object"}}}
                ]}
        })
    }

    #[test]
    fn served_versions_become_rows() {
        let rows = rows(&crd());
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].list_kind, "WidgetList");
        assert_eq!(rows[0].singular, "widget");
        assert_eq!(rows[0].subresources, vec!["status", "scale"]);
        assert!(rows[0].namespaced);
    }

    #[test]
    fn status_is_established() {
        let mut c = crd();
        set_status(&mut c, "2026-01-01T00:00:00Z");
        assert_eq!(c["status"]["conditions"][1]["type"], "Established");
        assert_eq!(c["status"]["storedVersions"], json!(["v1"]));
    }
}
