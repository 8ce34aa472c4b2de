//! Discovery documents, legacy (`APIVersions`, `APIGroupList`, `APIResourceList`) and aggregated
//! (`APIGroupDiscoveryList`, apidiscovery.k8s.io/v2), all derived from the resource table.

use serde_json::{Value, json};

use crate::resources::{Resource, ResourceTable};

/// Upstream's `storageVersionHash`: a short stable hash of group/version/kind.
fn storage_hash(r: &Resource) -> String {
    use base64::Engine;
    let mut h: u64 = 0xcbf29ce484222325;
    for b in format!("{}/{}/{}", r.group, r.version, r.kind).bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    base64::engine::general_purpose::STANDARD.encode(h.to_be_bytes())[..11].to_string()
}

pub fn core_versions(advertise: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": advertise}],
    })
}

fn group_entry(group: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({"name": group, "versions": vs, "preferredVersion": vs.first().cloned().unwrap_or(Value::Null)})
}

pub fn group_list(table: &ResourceTable) -> Value {
    let groups: Vec<Value> = table
        .groups()
        .into_iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, vs)| group_entry(&g, &vs))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub fn group(table: &ResourceTable, name: &str) -> Option<Value> {
    let (g, vs) = table
        .groups()
        .into_iter()
        .find(|(g, _)| g == name && !g.is_empty())?;
    let mut entry = group_entry(&g, &vs);
    entry["kind"] = json!("APIGroup");
    entry["apiVersion"] = json!("v1");
    Some(entry)
}

pub fn resource_list(table: &ResourceTable, group: &str, version: &str) -> Option<Value> {
    let rows = table.group_version(group, version);
    if rows.is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for r in &rows {
        let mut entry = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": r.verbs(),
            "storageVersionHash": storage_hash(r),
        });
        if !r.short_names.is_empty() {
            entry["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            entry["categories"] = json!(r.categories);
        }
        resources.push(entry);
        for sub in &r.subresources {
            let (verbs, g, v, k) = Resource::subresource_verbs(sub);
            let mut e = json!({
                "name": format!("{}/{}", r.plural, sub),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": if k.is_empty() { r.kind.as_str() } else { k },
                "verbs": verbs,
            });
            if !g.is_empty() {
                e["group"] = json!(g);
                e["version"] = json!(v);
            }
            resources.push(e);
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
    )
}

/// Aggregated discovery for `/api` (core only) or `/apis` (every named group).
pub fn aggregated(table: &ResourceTable, core: bool) -> Value {
    let mut items = Vec::new();
    for (g, versions) in table.groups() {
        if g.is_empty() != core {
            continue;
        }
        let mut vs = Vec::new();
        for v in &versions {
            let mut resources = Vec::new();
            for r in table.group_version(&g, v) {
                let subs: Vec<Value> = r
                    .subresources
                    .iter()
                    .map(|s| {
                        let (verbs, sg, sv, sk) = Resource::subresource_verbs(s);
                        let kind = if sk.is_empty() {
                            json!({"group": r.group, "version": r.version, "kind": r.kind})
                        } else {
                            json!({"group": sg, "version": sv, "kind": sk})
                        };
                        json!({"subresource": s, "responseKind": kind, "verbs": verbs})
                    })
                    .collect();
                let mut e = json!({
                    "resource": r.plural,
                    "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
                    "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
                    "singularResource": r.singular,
                    "verbs": r.verbs(),
                });
                if !r.short_names.is_empty() {
                    e["shortNames"] = json!(r.short_names);
                }
                if !r.categories.is_empty() {
                    e["categories"] = json!(r.categories);
                }
                if !subs.is_empty() {
                    e["subresources"] = json!(subs);
                }
                resources.push(e);
            }
            vs.push(json!({"version": v, "resources": resources, "freshness": "Current"}));
        }
        let meta = if g.is_empty() {
            json!({"creationTimestamp": null})
        } else {
            json!({"name": g, "creationTimestamp": null})
        };
        items.push(json!({"metadata": meta, "versions": vs}));
    }
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::builtin;

    #[test]
    fn core_resource_list_has_short_names_and_subresources() {
        let table = ResourceTable::new(builtin());
        let list = resource_list(&table, "", "v1").unwrap();
        let res = list["resources"].as_array().unwrap();
        let pods = res.iter().find(|r| r["name"] == "pods").unwrap();
        assert_eq!(pods["shortNames"][0], "po");
        assert_eq!(pods["categories"][0], "all");
        assert!(res.iter().any(|r| r["name"] == "pods/status"));
        let scale = resource_list(&table, "apps", "v1").unwrap();
        let s = scale["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "deployments/scale")
            .unwrap()
            .clone();
        assert_eq!(s["kind"], "Scale");
        assert_eq!(s["group"], "autoscaling");
    }

    #[test]
    fn aggregated_splits_core_and_groups() {
        let table = ResourceTable::new(builtin());
        let core = aggregated(&table, true);
        assert_eq!(core["items"].as_array().unwrap().len(), 1);
        let apis = aggregated(&table, false);
        assert!(
            apis["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["metadata"]["name"] == "apps")
        );
    }
}
