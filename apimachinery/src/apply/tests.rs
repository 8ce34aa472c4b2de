use super::*;
use crate::patch::builtin_patch_meta;
use serde_json::json;

const T0: &str = "2024-01-01T00:00:00Z";
const T1: &str = "2024-01-01T00:01:00Z";
const T2: &str = "2024-01-01T00:02:00Z";

fn deploy(replicas: i64, labels: Value, containers: Value) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": containers}
            }
        }
    })
}

fn ssa(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    now: &str,
) -> Result<Value, ApplyError> {
    apply(
        live,
        applied,
        manager,
        force,
        &*builtin_patch_meta("apps", "Deployment"),
        now,
    )
}

fn entry<'a>(obj: &'a Value, manager: &str) -> Option<&'a Value> {
    obj["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|e| e["manager"] == manager)
}

#[test]
fn create_by_apply_records_fields_like_upstream() {
    let cfg = deploy(
        2,
        json!({"app": "web"}),
        json!([{"name": "nginx", "image": "nginx:1"}]),
    );
    let out = ssa(None, &cfg, "kubectl", false, T0).unwrap();
    assert_eq!(out["spec"]["replicas"], 2);
    let e = entry(&out, "kubectl").unwrap();
    assert_eq!(e["operation"], "Apply");
    assert_eq!(e["apiVersion"], "apps/v1");
    assert_eq!(e["time"], T0);
    assert_eq!(e["fieldsType"], "FieldsV1");
    assert_eq!(
        e["fieldsV1"],
        json!({
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {
                "f:replicas": {},
                "f:selector": {},
                "f:template": {
                    "f:metadata": {"f:labels": {"f:app": {}}},
                    "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {".": {}, "f:image": {}, "f:name": {}}}}
                }
            }
        })
    );
}

#[test]
fn reapply_removes_dropped_fields() {
    let cfg = deploy(
        2,
        json!({"app": "web", "tier": "fe"}),
        json!([{"name": "nginx", "image": "nginx:1", "env": [{"name": "A", "value": "1"}]}, {"name": "side", "image": "busy"}]),
    );
    let live = ssa(None, &cfg, "kubectl", false, T0).unwrap();
    let cfg2 = deploy(
        2,
        json!({"app": "web"}),
        json!([{"name": "nginx", "image": "nginx:2"}]),
    );
    let out = ssa(Some(&live), &cfg2, "kubectl", false, T1).unwrap();
    assert_eq!(out["metadata"]["labels"], json!({"app": "web"}));
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"],
        json!([{"name": "nginx", "image": "nginx:2"}])
    );
    assert_eq!(entry(&out, "kubectl").unwrap()["time"], T1);
    assert_eq!(
        out["metadata"]["managedFields"].as_array().unwrap().len(),
        1
    );
}

#[test]
fn scale_conflict_then_force() {
    let cfg = deploy(
        2,
        json!({"app": "web"}),
        json!([{"name": "nginx", "image": "nginx:1"}]),
    );
    let live = ssa(None, &cfg, "kubectl", false, T0).unwrap();
    // Another manager scales through a plain update.
    let mut scaled = live.clone();
    scaled["spec"]["replicas"] = json!(5);
    track_update(Some(&live), &mut scaled, "kubectl-scale", "apps/v1", T1);
    let scaler = entry(&scaled, "kubectl-scale").unwrap();
    assert_eq!(scaler["operation"], "Update");
    assert_eq!(scaler["fieldsV1"], json!({"f:spec": {"f:replicas": {}}}));
    assert!(
        entry(&scaled, "kubectl").unwrap()["fieldsV1"]["f:spec"]
            .get("f:replicas")
            .is_none()
    );

    // Re-applying the same config (replicas 2) conflicts.
    let err = ssa(Some(&scaled), &cfg, "kubectl", false, T2).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"Apply failed with 1 conflict: conflict with "kubectl-scale" using apps/v1: .spec.replicas"#
    );
    let st = err.to_status();
    assert_eq!((st.code, st.reason.as_str()), (409, "Conflict"));
    let cause = &st.details.unwrap().causes[0];
    assert_eq!(cause.reason, "FieldManagerConflict");
    assert_eq!(cause.field, ".spec.replicas");
    assert_eq!(
        cause.message,
        r#"conflict with "kubectl-scale" using apps/v1"#
    );

    // Applying without replicas does not conflict and leaves replicas to the scaler.
    let mut no_replicas = cfg.clone();
    no_replicas["spec"]
        .as_object_mut()
        .unwrap()
        .remove("replicas");
    let out = ssa(Some(&scaled), &no_replicas, "kubectl", false, T2).unwrap();
    assert_eq!(out["spec"]["replicas"], 5);

    // --force-conflicts takes the field over; the scaler's entry disappears.
    let out = ssa(Some(&scaled), &cfg, "kubectl", true, T2).unwrap();
    assert_eq!(out["spec"]["replicas"], 2);
    assert!(entry(&out, "kubectl-scale").is_none());
    assert!(
        entry(&out, "kubectl").unwrap()["fieldsV1"]["f:spec"]
            .get("f:replicas")
            .is_some()
    );
}

#[test]
fn two_appliers_share_and_conflict() {
    let a_cfg = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"a": "1", "shared": "x"}}});
    let b_cfg = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"b": "2", "shared": "x"}}});
    let meta = builtin_patch_meta("", "ConfigMap");
    let live = apply(None, &a_cfg, "a", false, &*meta, T0).unwrap();
    let live = apply(Some(&live), &b_cfg, "b", false, &*meta, T1).unwrap();
    assert_eq!(
        live["metadata"]["labels"],
        json!({"a": "1", "shared": "x", "b": "2"})
    );
    // a stops applying its labels: "a" goes, "shared" stays (b owns it too).
    let a2 = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}});
    let out = apply(Some(&live), &a2, "a", false, &*meta, T2).unwrap();
    assert_eq!(out["metadata"]["labels"], json!({"shared": "x", "b": "2"}));
    assert_eq!(out["data"], json!({"k": "v"}));
    // b changing the shared value conflicts with a... once a owns it again.
    let b3 = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"b": "2", "shared": "y"}}});
    let err = apply(Some(&live), &b3, "b", false, &*meta, T2).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"Apply failed with 1 conflict: conflict with "a": .metadata.labels.shared"#
    );
}

#[test]
fn multiple_conflicts_message() {
    let c = vec![
        Conflict {
            manager: "\"a\"".into(),
            field: ".spec.x".into(),
        },
        Conflict {
            manager: "\"a\"".into(),
            field: ".spec.y".into(),
        },
        Conflict {
            manager: "\"b\" using v1".into(),
            field: ".spec.z".into(),
        },
    ];
    assert_eq!(
        conflict_message(&c),
        "Apply failed with 3 conflicts: conflicts with \"a\":\n- .spec.x\n- .spec.y\nconflicts with \"b\" using v1:\n- .spec.z"
    );
}

#[test]
fn client_side_create_then_server_side_apply() {
    let mut obj = deploy(
        1,
        json!({"app": "web"}),
        json!([{"name": "nginx", "image": "nginx:1", "ports": [{"containerPort": 80}]}]),
    );
    track_update(None, &mut obj, "kubectl-client-side-apply", "apps/v1", T0);
    let e = entry(&obj, "kubectl-client-side-apply").unwrap();
    assert_eq!(e["operation"], "Update");
    let f = &e["fieldsV1"];
    assert_eq!(f["f:metadata"]["f:labels"], json!({".": {}, "f:app": {}}));
    assert!(f["f:metadata"].get("f:name").is_none());
    assert!(f["f:metadata"].get(".").is_none());
    assert_eq!(
        f["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"nginx\"}"]["f:ports"]["k:{\"containerPort\":80}"],
        json!({".": {}, "f:containerPort": {}})
    );
    assert_eq!(f["f:spec"]["f:selector"], json!({}));

    let cfg = deploy(
        3,
        json!({"app": "web"}),
        json!([{"name": "nginx", "image": "nginx:2"}]),
    );
    let err = ssa(Some(&obj), &cfg, "kubectl", false, T1).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 2 conflicts: conflicts with \"kubectl-client-side-apply\" using apps/v1:\n- .spec.replicas\n- .spec.template.spec.containers[name=\"nginx\"].image"
    );
}

#[test]
fn update_transfers_and_removes_ownership() {
    let mut obj = deploy(
        1,
        json!({"app": "web", "x": "1"}),
        json!([{"name": "nginx", "image": "nginx:1"}]),
    );
    track_update(None, &mut obj, "creator", "apps/v1", T0);
    let mut next = obj.clone();
    next["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
    next["metadata"]["labels"]
        .as_object_mut()
        .unwrap()
        .remove("x");
    track_update(Some(&obj), &mut next, "editor", "apps/v1", T1);
    let ed = entry(&next, "editor").unwrap();
    assert_eq!(
        ed["fieldsV1"],
        json!({"f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {"f:image": {}}}}}}})
    );
    let cr = &entry(&next, "creator").unwrap()["fieldsV1"];
    assert!(cr["f:metadata"]["f:labels"].get("f:x").is_none());
    assert!(
        cr["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"nginx\"}"]
            .get("f:image")
            .is_none()
    );
    // A no-op update leaves entries and times alone.
    let mut same = next.clone();
    track_update(Some(&next), &mut same, "other", "apps/v1", T2);
    assert_eq!(same, next);
    // Entries are sorted by operation, then time.
    let order: Vec<&str> = next["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["manager"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["creator", "editor"]);
}

#[test]
fn finalizers_are_a_set() {
    let meta = builtin_patch_meta("", "ConfigMap");
    let a = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "finalizers": ["a.io/x"]}});
    let b = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "finalizers": ["b.io/y"]}});
    let live = apply(None, &a, "a", false, &*meta, T0).unwrap();
    let out = apply(Some(&live), &b, "b", false, &*meta, T1).unwrap();
    assert_eq!(out["metadata"]["finalizers"], json!(["a.io/x", "b.io/y"]));
    assert_eq!(
        entry(&out, "b").unwrap()["fieldsV1"],
        json!({"f:metadata": {"f:finalizers": {"v:\"b.io/y\"": {}}}})
    );
}

#[test]
fn garbage_never_panics() {
    let meta = builtin_patch_meta("apps", "Deployment");
    assert!(matches!(
        apply(None, &json!(1), "m", false, &*meta, T0),
        Err(ApplyError::Invalid(_))
    ));
    let weird_live = json!({"metadata": {"managedFields": [1, {"manager": "x", "fieldsV1": {"f:spec": {"k:notjson": {"f:a": {}}}}}]}, "spec": {"template": {"spec": {"containers": [1, {"name": 2}]}}}});
    for cfg in [
        json!({}),
        json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}, 3]}}}}),
        json!({"spec": null, "metadata": {"managedFields": 3}}),
        json!({"spec": {"template": {"spec": {"containers": {"a": 1}}}}}),
    ] {
        let _ = apply(Some(&weird_live), &cfg, "m", false, &*meta, T0);
        let _ = apply(Some(&weird_live), &cfg, "x", true, &*meta, T0);
        let mut n = cfg.clone();
        track_update(Some(&weird_live), &mut n, "m", "apps/v1", T0);
    }
}

#[test]
fn owning_a_map_itself_then_applying_only_its_children_keeps_the_map() {
    let meta = crate::patch::builtin_patch_meta("apps", "Deployment");
    let applied = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {"template": {"metadata": {"labels": {"app": "x"}}}}
    });
    let mut live = applied.clone();
    live["metadata"]["managedFields"] = json!([{
        "manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
        "fieldsV1": {"f:spec": {"f:template": {".": {}, "f:metadata": {".": {}, "f:labels": {".": {}, "f:app": {}}}}}}
    }]);
    let out = apply(
        Some(&live),
        &applied,
        "kubectl",
        false,
        meta.as_ref(),
        "2026-01-01T00:00:00Z",
    )
    .unwrap();
    assert_eq!(out["spec"]["template"]["metadata"]["labels"]["app"], "x");
}

#[test]
fn repeated_apply_keeps_the_entry_time() {
    let cfg = deploy(
        2,
        json!({"app": "web"}),
        json!([{"name": "nginx", "image": "nginx:1"}]),
    );
    let live = ssa(None, &cfg, "kubectl", false, T0).unwrap();
    // The same configuration a minute later changes nothing, not even the time.
    let again = ssa(Some(&live), &cfg, "kubectl", false, T1).unwrap();
    assert_eq!(again, live);
    // A real change moves the time.
    let cfg2 = deploy(
        3,
        json!({"app": "web"}),
        json!([{"name": "nginx", "image": "nginx:1"}]),
    );
    let changed = ssa(Some(&live), &cfg2, "kubectl", false, T2).unwrap();
    assert_eq!(entry(&changed, "kubectl").unwrap()["time"], T2);
}
