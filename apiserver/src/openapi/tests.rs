use serde_json::{Value, json};

use super::*;

fn verbs() -> Vec<String> {
    [
        "get",
        "list",
        "watch",
        "create",
        "update",
        "patch",
        "delete",
        "deletecollection",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn res(group: &str, kind: &str, plural: &str, namespaced: bool, subs: &[&str]) -> ResourceDoc {
    ResourceDoc {
        group: group.into(),
        version: "v1".into(),
        kind: kind.into(),
        plural: plural.into(),
        namespaced,
        verbs: verbs(),
        subresources: subs.iter().map(|s| s.to_string()).collect(),
        schema: SchemaSource::Builtin,
    }
}

fn patch_ext(def: &str) -> Vec<(&'static str, Option<&'static str>, &'static str)> {
    match def {
        "io.k8s.api.core.v1.PodSpec" => vec![
            ("containers", Some("name"), "merge"),
            ("volumes", Some("name"), "merge,retainKeys"),
        ],
        "io.k8s.api.core.v1.Container" => vec![("ports", Some("containerPort"), "merge")],
        _ => vec![],
    }
}

fn core_doc() -> Value {
    group_version_document(
        "",
        "v1",
        &[
            res(
                "",
                "Pod",
                "pods",
                true,
                &["status", "log", "exec", "eviction", "binding"],
            ),
            res("", "Namespace", "namespaces", false, &["status"]),
            res("", "ConfigMap", "configmaps", true, &[]),
        ],
        &patch_ext,
    )
}

fn apps_doc() -> Value {
    group_version_document(
        "apps",
        "v1",
        &[res(
            "apps",
            "Deployment",
            "deployments",
            true,
            &["status", "scale"],
        )],
        &patch_ext,
    )
}

fn crontab_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "description": "CronTab spec",
                "properties": {
                    "cronSpec": {"type": "string"},
                    "replicas": {"type": "integer", "default": 1},
                    "image": {"type": "string"},
                    "settings": {"type": "object", "default": {},
                                 "properties": {"mode": {"type": "string", "default": "fast"},
                                                "opt": {"type": "string", "nullable": true, "default": "x"}}},
                    "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "port": {"x-kubernetes-int-or-string": true},
                    "items": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}},
                    "empty": {"type": "object"},
                    "pod": {"type": "object", "x-kubernetes-embedded-resource": true,
                            "properties": {"spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}
                }
            },
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
        }
    })
}

fn crd_doc() -> Value {
    let mut r = res(
        "stable.example.com",
        "CronTab",
        "crontabs",
        true,
        &["status", "scale"],
    );
    r.schema = SchemaSource::Custom(crontab_schema());
    group_version_document("stable.example.com", "v1", &[r], &|_| vec![])
}

/// Every `$ref` in `v` that does not name a component schema.
fn dangling_refs(doc: &Value) -> Vec<String> {
    fn walk(v: &Value, schemas: &serde_json::Map<String, Value>, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    let ok = r
                        .strip_prefix("#/components/schemas/")
                        .is_some_and(|n| schemas.contains_key(n));
                    if !ok {
                        out.push(r.clone());
                    }
                }
                m.values().for_each(|c| walk(c, schemas, out));
            }
            Value::Array(a) => a.iter().for_each(|c| walk(c, schemas, out)),
            _ => {}
        }
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let mut out = Vec::new();
    walk(doc, schemas, &mut out);
    out
}

/// What kubectl's `supportsQueryParamV3` does: the first PATCH operation tagged with the GVK
/// decides whether `fieldValidation` is supported.
fn supports_field_validation(doc: &Value, group: &str, version: &str, kind: &str) -> bool {
    let want = json!({"group": group, "version": version, "kind": kind});
    for item in doc["paths"].as_object().unwrap().values() {
        let Some(op) = item.get("patch") else {
            continue;
        };
        if op["x-kubernetes-group-version-kind"] != want {
            continue;
        }
        return op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "fieldValidation");
    }
    false
}

#[test]
fn kinds_carry_gvk_extensions() {
    let doc = core_doc();
    let s = &doc["components"]["schemas"];
    assert_eq!(
        s["io.k8s.api.core.v1.Pod"]["x-kubernetes-group-version-kind"],
        json!([{"group": "", "kind": "Pod", "version": "v1"}])
    );
    assert_eq!(
        s["io.k8s.api.core.v1.PodList"]["x-kubernetes-group-version-kind"],
        json!([{"group": "", "kind": "PodList", "version": "v1"}])
    );
    assert_eq!(
        s["io.k8s.apimachinery.pkg.apis.meta.v1.Status"]["x-kubernetes-group-version-kind"],
        json!([{"group": "", "kind": "Status", "version": "v1"}])
    );
    assert!(
        s["io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"]["x-kubernetes-group-version-kind"]
            .is_array()
    );
    assert_eq!(
        s["io.k8s.api.policy.v1.Eviction"]["x-kubernetes-group-version-kind"][0]["kind"],
        "Eviction"
    );
    let apps = apps_doc();
    assert_eq!(
        apps["components"]["schemas"]["io.k8s.api.autoscaling.v1.Scale"]["x-kubernetes-group-version-kind"],
        json!([{"group": "autoscaling", "kind": "Scale", "version": "v1"}])
    );
    assert_eq!(
        apps["components"]["schemas"]["io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"]["x-kubernetes-group-version-kind"],
        json!([{"group": "", "kind": "DeleteOptions", "version": "v1"},
               {"group": "apps", "kind": "DeleteOptions", "version": "v1"}])
    );
}

#[test]
fn field_validation_is_advertised_on_patch() {
    let core = core_doc();
    for kind in ["Pod", "Namespace", "ConfigMap"] {
        assert!(supports_field_validation(&core, "", "v1", kind), "{kind}");
    }
    assert!(supports_field_validation(
        &apps_doc(),
        "apps",
        "v1",
        "Deployment"
    ));
    assert!(supports_field_validation(
        &crd_doc(),
        "stable.example.com",
        "v1",
        "CronTab"
    ));
    assert!(!supports_field_validation(
        &core,
        "apps",
        "v1",
        "Deployment"
    ));
    let item = &core["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"];
    let names: Vec<&str> = item["patch"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["dryRun", "fieldManager", "fieldValidation", "force"]
    );
    assert_eq!(item["patch"]["x-kubernetes-action"], "patch");
    assert_eq!(item["patch"]["operationId"], "patchCoreV1NamespacedPod");
    for op in ["put", "post"] {
        let p = if op == "post" {
            &core["paths"]["/api/v1/namespaces/{namespace}/pods"]["post"]
        } else {
            &item["put"]
        };
        assert!(
            p["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "fieldValidation"),
            "{op}"
        );
    }
}

#[test]
fn paths_cover_collections_items_and_subresources() {
    let doc = core_doc();
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/api/v1/namespaces/{namespace}/pods",
        "/api/v1/namespaces/{namespace}/pods/{name}",
        "/api/v1/pods",
        "/api/v1/namespaces/{namespace}/pods/{name}/status",
        "/api/v1/namespaces/{namespace}/pods/{name}/log",
        "/api/v1/namespaces/{namespace}/pods/{name}/exec",
        "/api/v1/namespaces/{namespace}/pods/{name}/eviction",
        "/api/v1/namespaces/{namespace}/pods/{name}/binding",
        "/api/v1/namespaces",
        "/api/v1/namespaces/{name}",
        "/api/v1/namespaces/{name}/status",
    ] {
        assert!(paths.contains_key(p), "{p}");
    }
    assert!(!paths.contains_key("/api/v1/namespaces/{namespace}/namespaces"));
    let list = &paths["/api/v1/namespaces/{namespace}/pods"]["get"];
    assert_eq!(list["x-kubernetes-action"], "list");
    assert_eq!(list["operationId"], "listCoreV1NamespacedPod");
    assert_eq!(
        list["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/io.k8s.api.core.v1.PodList"
    );
    assert_eq!(
        paths["/api/v1/pods"]["get"]["operationId"],
        "listCoreV1PodForAllNamespaces"
    );
    assert_eq!(
        paths["/api/v1/namespaces/{namespace}/pods/{name}/exec"]["post"]["x-kubernetes-action"],
        "connect"
    );
    let apps = apps_doc();
    let scale = &apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"];
    assert_eq!(
        scale["patch"]["x-kubernetes-group-version-kind"],
        json!({"group": "autoscaling", "kind": "Scale", "version": "v1"})
    );
    assert_eq!(
        scale["get"]["operationId"],
        "readAppsV1NamespacedDeploymentScale"
    );
    assert!(
        scale["patch"]["requestBody"]["content"]
            .get("application/strategic-merge-patch+json")
            .is_some()
    );
}

#[test]
fn verbs_limit_operations() {
    let mut r = res("", "Event", "events", true, &[]);
    r.verbs = vec!["get".into(), "list".into()];
    let doc = group_version_document("", "v1", &[r], &|_| vec![]);
    let item = &doc["paths"]["/api/v1/namespaces/{namespace}/events/{name}"];
    assert!(item.get("get").is_some());
    assert!(
        item.get("patch").is_none() && item.get("put").is_none() && item.get("delete").is_none()
    );
    assert!(
        doc["paths"]["/api/v1/namespaces/{namespace}/events"]
            .get("post")
            .is_none()
    );
}

#[test]
fn refs_resolve() {
    for doc in [core_doc(), apps_doc(), crd_doc()] {
        assert_eq!(dangling_refs(&doc), Vec::<String>::new());
        assert_eq!(doc["openapi"], "3.0.0");
    }
}

#[test]
fn explain_descriptions_are_present() {
    let doc = apps_doc();
    let s = &doc["components"]["schemas"];
    let dep = &s["io.k8s.api.apps.v1.Deployment"];
    assert!(
        dep["description"]
            .as_str()
            .unwrap()
            .starts_with("Deployment enables declarative updates")
    );
    let spec = &dep["properties"]["spec"];
    assert_eq!(
        spec["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"
    );
    assert!(
        spec["description"]
            .as_str()
            .unwrap()
            .starts_with("Specification of the desired behavior")
    );
    let replicas = &s["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["replicas"];
    assert!(
        replicas["description"]
            .as_str()
            .unwrap()
            .contains("Number of desired pods")
    );
    assert_eq!(replicas["type"], "integer");
    assert!(
        s["io.k8s.api.apps.v1.DeploymentSpec"]["required"]
            .as_array()
            .unwrap()
            .contains(&json!("selector"))
    );
}

#[test]
fn patch_extensions_are_applied() {
    let doc = core_doc();
    let s = &doc["components"]["schemas"];
    let containers = &s["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
    assert_eq!(
        s["io.k8s.api.core.v1.PodSpec"]["properties"]["volumes"]["x-kubernetes-patch-strategy"],
        "merge,retainKeys"
    );
    assert_eq!(
        s["io.k8s.api.core.v1.Container"]["properties"]["ports"]["x-kubernetes-patch-merge-key"],
        "containerPort"
    );
}

#[test]
fn custom_resource_document() {
    let doc = crd_doc();
    let s = &doc["components"]["schemas"];
    let kind = &s["com.example.stable.v1.CronTab"];
    assert_eq!(
        kind["x-kubernetes-group-version-kind"],
        json!([{"group": "stable.example.com", "kind": "CronTab", "version": "v1"}])
    );
    assert_eq!(kind["properties"]["spec"]["description"], "CronTab spec");
    assert!(
        s.get("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")
            .is_some()
    );
    assert_eq!(
        s["com.example.stable.v1.CronTabList"]["x-kubernetes-group-version-kind"][0]["kind"],
        "CronTabList"
    );
    let item = &doc["paths"]["/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}"];
    assert_eq!(
        item["patch"]["operationId"],
        "patchStableExampleComV1NamespacedCronTab"
    );
    let patch_types = item["patch"]["requestBody"]["content"].as_object().unwrap();
    assert!(patch_types.contains_key("application/merge-patch+json"));
    assert!(!patch_types.contains_key("application/strategic-merge-patch+json"));
    assert!(
        doc["paths"]
            .get("/apis/stable.example.com/v1/crontabs")
            .is_some()
    );
}

#[test]
fn index_and_hash() {
    let a = core_doc();
    let h = hash(&a);
    assert_eq!(h.len(), 16);
    assert_eq!(h, hash(&core_doc()), "generation is deterministic");
    assert_ne!(h, hash(&apps_doc()));
    let idx = index(&[
        (group_version_path("", "v1"), h.clone()),
        (group_version_path("apps", "v1"), "AB".into()),
    ]);
    assert_eq!(
        idx,
        json!({"paths": {
            "api/v1": {"serverRelativeURL": format!("/openapi/v3/api/v1?hash={h}")},
            "apis/apps/v1": {"serverRelativeURL": "/openapi/v3/apis/apps/v1?hash=AB"},
        }})
    );
}

#[test]
fn builtin_names() {
    assert_eq!(
        builtin_kind_schema_name("", "v1", "Pod"),
        Some("io.k8s.api.core.v1.Pod")
    );
    assert_eq!(
        builtin_kind_schema_name("apps", "v1", "Deployment"),
        Some("io.k8s.api.apps.v1.Deployment")
    );
    assert_eq!(
        builtin_kind_schema_name("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
        Some("io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition")
    );
    assert_eq!(builtin_kind_schema_name("apps", "v1", "Nope"), None);
}

#[test]
fn unknown_fields_in_builtin_kinds() {
    let idx = SchemaIndex::from_document(&apps_doc());
    let name = "io.k8s.api.apps.v1.Deployment";
    let good = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}, "annotations": {"a": "b"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{
                    "name": "nginx", "image": "nginx",
                    "ports": [{"containerPort": 80}],
                    "resources": {"limits": {"cpu": "500m", "memory": 128}},
                    "env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
                }]}
            }
        },
        "status": {"replicas": 2}
    });
    assert_eq!(idx.unknown_fields(name, &good), Vec::<String>::new());

    let mut bad = good.clone();
    bad["spec"]["foo"] = json!(1);
    bad["metadata"]["bogus"] = json!("x");
    bad["spec"]["template"]["spec"]["containers"][0]["foo"] = json!({"deep": true});
    bad["spec"]["template"]["spec"]["containers"][0]["ports"][0]["bar"] = json!(1);
    bad["top"] = json!(null);
    assert_eq!(
        idx.unknown_fields(name, &bad),
        vec![
            "metadata.bogus",
            "spec.template.spec.containers[0].ports[0].bar",
            "spec.template.spec.containers[0].foo",
            "spec.foo",
            "top",
        ]
    );
    // Unknown kinds and odd values do not panic.
    assert!(idx.unknown_fields("no.such.Kind", &bad).is_empty());
    assert!(idx.unknown_fields(name, &json!("string")).is_empty());
    assert_eq!(
        idx.unknown_fields(name, &json!({"spec": {"template": 5}})),
        Vec::<String>::new()
    );
}

#[test]
fn raw_extension_and_crd_schemas_are_free_form_in_builtin_kinds() {
    let doc = group_version_document(
        "apiextensions.k8s.io",
        "v1",
        &[res(
            "apiextensions.k8s.io",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            false,
            &["status"],
        )],
        &|_| vec![],
    );
    let idx = SchemaIndex::from_document(&doc);
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "crontabs.stable.example.com"},
        "spec": {"group": "stable.example.com", "scope": "Namespaced",
                 "names": {"plural": "crontabs", "kind": "CronTab"},
                 "versions": [{"name": "v1", "served": true, "storage": true,
                               "schema": {"openAPIV3Schema": crontab_schema()}}]}
    });
    let name =
        builtin_kind_schema_name("apiextensions.k8s.io", "v1", "CustomResourceDefinition").unwrap();
    assert_eq!(idx.unknown_fields(name, &crd), Vec::<String>::new());
}

#[test]
fn custom_resource_unknown_fields_prune_and_default() {
    let idx = SchemaIndex::from_document(&crd_doc());
    let name = custom_kind_schema_name("stable.example.com", "v1", "CronTab");
    let obj = json!({
        "apiVersion": "stable.example.com/v1", "kind": "CronTab",
        "metadata": {"name": "c", "labels": {"a": "b"}},
        "spec": {
            "cronSpec": "* * * * */5",
            "bogus": 1,
            "extra": {"anything": {"goes": [1, 2]}},
            "labels": {"x": "y"},
            "port": "http",
            "items": [{"name": "a", "junk": true}],
            "empty": {"dropped": 1},
            "pod": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"x": 1}, "nope": 2},
            "settings": {"opt": null}
        },
        "status": {"whatever": 1},
        "weird": []
    });
    let want = vec![
        "spec.bogus",
        "spec.items[0].junk",
        "spec.empty.dropped",
        "spec.pod.nope",
        "weird",
    ];
    // Embedded resources accept ObjectMeta fields only.
    let mut embedded_meta = obj.clone();
    embedded_meta["spec"]["pod"]["metadata"]["nam"] = json!("typo");
    assert!(
        idx.unknown_fields(&name, &embedded_meta)
            .contains(&"spec.pod.metadata.nam".to_string())
    );
    assert_eq!(idx.unknown_fields(&name, &obj), want);

    let mut pruned = obj.clone();
    assert_eq!(idx.prune(&name, &mut pruned), want);
    assert_eq!(idx.unknown_fields(&name, &pruned), Vec::<String>::new());
    assert!(pruned.get("weird").is_none());
    assert_eq!(pruned["spec"]["empty"], json!({}));
    assert_eq!(pruned["spec"]["extra"], obj["spec"]["extra"]);
    assert_eq!(pruned["status"], obj["status"]);

    let mut defaulted = pruned.clone();
    idx.default(&name, &mut defaulted);
    assert_eq!(defaulted["spec"]["replicas"], 1);
    assert_eq!(
        defaulted["spec"]["settings"],
        json!({"opt": null, "mode": "fast"})
    );

    let mut bare = json!({"spec": {}});
    idx.default(&name, &mut bare);
    assert_eq!(
        bare["spec"]["settings"],
        json!({"mode": "fast", "opt": "x"})
    );
    // Defaults never overwrite values.
    let mut set = json!({"spec": {"replicas": 5}});
    idx.default(&name, &mut set);
    assert_eq!(set["spec"]["replicas"], 5);
    // A non-nullable null takes the default.
    let mut null = json!({"spec": {"replicas": null}});
    idx.default(&name, &mut null);
    assert_eq!(null["spec"]["replicas"], 1);
}

#[test]
fn builtin_components_for_validation() {
    let (name, comps) = builtin_schema_components("", "v1", "ConfigMap").unwrap();
    assert_eq!(name, "io.k8s.api.core.v1.ConfigMap");
    let idx = SchemaIndex::new(comps);
    assert!(idx.contains("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"));
    let cm = json!({"metadata": {"name": "c"}, "data": {"k": "v"}, "dat": {}});
    assert_eq!(idx.unknown_fields(&name, &cm), vec!["dat"]);
    assert!(builtin_schema_components("", "v1", "Nope").is_none());
}

#[test]
fn generation_is_fast_enough() {
    let start = std::time::Instant::now();
    let doc = group_version_document(
        "",
        "v1",
        &[
            res(
                "",
                "Pod",
                "pods",
                true,
                &[
                    "status",
                    "log",
                    "exec",
                    "attach",
                    "portforward",
                    "eviction",
                    "binding",
                    "ephemeralcontainers",
                ],
            ),
            res("", "Service", "services", true, &["status", "proxy"]),
            res("", "Node", "nodes", false, &["status", "proxy"]),
            res(
                "",
                "Namespace",
                "namespaces",
                false,
                &["status", "finalize"],
            ),
            res("", "Secret", "secrets", true, &[]),
            res("", "ServiceAccount", "serviceaccounts", true, &["token"]),
            res("", "Event", "events", true, &[]),
            res(
                "",
                "PersistentVolumeClaim",
                "persistentvolumeclaims",
                true,
                &["status"],
            ),
        ],
        &patch_ext,
    );
    let elapsed = start.elapsed();
    assert_eq!(dangling_refs(&doc), Vec::<String>::new());
    assert!(elapsed < std::time::Duration::from_secs(5), "{elapsed:?}");
}
