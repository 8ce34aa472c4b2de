//! End-to-end: stock kubectl against the real `k1s server` for reads, watches and imperative verbs.

mod common;

use std::time::Duration;

use common::{Cluster, Table};

#[test]
fn get_namespaces_lists_the_four_system_namespaces() {
    let c = Cluster::start();
    let out = c.ok(&["get", "ns"]);
    let t = Table::parse(&out);
    assert_eq!(t.headers, ["NAME", "STATUS", "AGE"], "{out}");
    let mut names = t.names();
    names.sort();
    assert_eq!(
        names,
        ["default", "kube-node-lease", "kube-public", "kube-system"],
        "{out}"
    );
    for name in t.names() {
        assert_eq!(t.cell(name, "STATUS"), "Active", "{out}");
    }
}

#[test]
fn version_reports_a_server_within_skew() {
    let c = Cluster::start();
    let out = c.ok(&["version", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let minor: u32 = v["serverVersion"]["minor"]
        .as_str()
        .unwrap()
        .trim_end_matches('+')
        .parse()
        .unwrap();
    assert_eq!(v["serverVersion"]["major"], "1", "{out}");
    // kubectl v1.32 supports servers v1.31..=v1.33.
    assert!((31..=33).contains(&minor), "{out}");
}

#[test]
fn create_get_and_not_found_messages() {
    let c = Cluster::start();
    let err = c.fails(&["get", "cm", "nope"]);
    assert_eq!(
        err,
        "Error from server (NotFound): configmaps \"nope\" not found\n"
    );
    let out = c.kubectl(&["get", "cm", "-n", "kube-public", "-l", "nothing=here"]);
    assert_eq!(out.ok(), "", "{out}");
    assert_eq!(out.stderr, "No resources found in kube-public namespace.\n");

    assert_eq!(
        c.ok(&[
            "create",
            "configmap",
            "foo",
            "--from-literal=a=1",
            "--from-literal=b=2"
        ]),
        "configmap/foo created\n"
    );
    let out = c.ok(&["get", "cm", "foo"]);
    let t = Table::parse(&out);
    assert_eq!(t.headers, ["NAME", "DATA", "AGE"], "{out}");
    assert_eq!(t.cell("foo", "DATA"), "2", "{out}");
    assert_eq!(c.jsonpath(&["cm", "foo"], "{.data.b}"), "2");
    let err = c.fails(&["create", "configmap", "foo"]);
    assert_eq!(
        err,
        "error: failed to create configmap: configmaps \"foo\" already exists\n"
    );
}

#[test]
fn typed_create_verbs() {
    // kubectl's `create <kind>` generators use the typed clients (protobuf bodies).
    let c = Cluster::start();
    for (args, want) in [
        (
            &["create", "namespace", "ns1"][..],
            "namespace/ns1 created\n",
        ),
        (
            &["create", "secret", "generic", "s1", "--from-literal=k=v"][..],
            "secret/s1 created\n",
        ),
        (
            &[
                "create",
                "deployment",
                "d1",
                "--image=busybox",
                "--replicas=2",
            ][..],
            "deployment.apps/d1 created\n",
        ),
        (
            &["create", "service", "clusterip", "svc1", "--tcp=80:8080"][..],
            "service/svc1 created\n",
        ),
        (
            &["create", "serviceaccount", "sa1"][..],
            "serviceaccount/sa1 created\n",
        ),
    ] {
        assert_eq!(c.ok(args), want, "{args:?}");
    }
    assert_eq!(c.jsonpath(&["secret", "s1"], "{.data.k}"), "dg=="); // base64("v")
    assert_eq!(c.jsonpath(&["deploy", "d1"], "{.spec.replicas}"), "2");
    assert_eq!(
        c.jsonpath(&["svc", "svc1"], "{.spec.ports[0].targetPort}"),
        "8080"
    );
    assert_eq!(c.jsonpath(&["ns", "ns1"], "{.status.phase}"), "Active");
    assert_eq!(
        c.ok(&["create", "configmap", "in-ns1", "-n", "ns1"]),
        "configmap/in-ns1 created\n"
    );
}

#[test]
fn watch_prints_updated_rows() {
    let c = Cluster::start();
    c.configmap("default", "before", &[("a", "1")]);
    let mut watch = c.kubectl_stream(&["get", "cm", "-w"]);
    let header = watch.expect_line(Duration::from_secs(20), |l| l.starts_with("NAME"));
    assert!(
        header.split_whitespace().eq(["NAME", "DATA", "AGE"]),
        "{header}"
    );
    watch.expect_line(Duration::from_secs(20), |l| l.starts_with("before "));

    c.configmap("default", "live", &[("a", "1")]);
    let row = watch.expect_line(Duration::from_secs(20), |l| l.starts_with("live "));
    assert_eq!(row.split_whitespace().nth(1), Some("1"), "{row}");

    c.ok(&["patch", "cm", "live", "-p", r#"{"data":{"b":"2","c":"3"}}"#]);
    let row = watch.expect_line(Duration::from_secs(20), |l| l.starts_with("live "));
    assert_eq!(row.split_whitespace().nth(1), Some("3"), "{row}");

    // kubectl get -w prints the last state of a deleted object as one more row.
    c.ok(&["delete", "cm", "before"]);
    watch.expect_line(Duration::from_secs(20), |l| l.starts_with("before "));
}

#[test]
fn explain_prints_field_descriptions() {
    let c = Cluster::start();
    let out = c.ok(&["explain", "deployment.spec"]);
    for want in [
        "GROUP:      apps\n",
        "KIND:       Deployment\n",
        "VERSION:    v1\n",
        "FIELD: spec <DeploymentSpec>\n",
        "DESCRIPTION:\n",
        "Specification of the desired behavior of the Deployment.",
        "FIELDS:\n",
        "  replicas\t<integer>\n",
        "  selector\t<LabelSelector> -required-\n",
        "  template\t<PodTemplateSpec> -required-\n",
    ] {
        assert!(out.contains(want), "explain lacks {want:?}:\n{out}");
    }
    let out = c.ok(&["explain", "configmap.data"]);
    assert!(out.contains("FIELD: data <map[string]string>"), "{out}");
}

const WEB: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
        - name: httpd
          image: 127.0.0.1:5000/busybox:1.35
          env:
            - name: MODE
              value: demo
";

#[test]
fn label_annotate_patch_and_scale() {
    let c = Cluster::start();
    c.ok_stdin(&["apply", "-f", "-"], WEB);
    let replicas = || c.jsonpath(&["deploy", "web"], "{.spec.replicas}");

    assert_eq!(
        c.ok(&["label", "deploy", "web", "env=prod"]),
        "deployment.apps/web labeled\n"
    );
    assert_eq!(
        c.jsonpath(&["deploy", "web"], "{.metadata.labels.env}"),
        "prod"
    );
    let err = c.fails(&["label", "deploy", "web", "env=dev"]);
    assert_eq!(
        err,
        "error: 'env' already has a value (prod), and --overwrite is false\n"
    );
    assert_eq!(
        c.ok(&["label", "deploy", "web", "env=dev", "--overwrite"]),
        "deployment.apps/web labeled\n"
    );
    assert_eq!(
        c.ok(&["label", "deploy", "web", "env-"]),
        "deployment.apps/web unlabeled\n"
    );
    let out = c.ok(&["get", "deploy", "-l", "app=web,env!=dev"]);
    assert_eq!(Table::parse(&out).names(), ["web"], "{out}");

    assert_eq!(
        c.ok(&["annotate", "deploy", "web", "owner=team-a"]),
        "deployment.apps/web annotated\n"
    );
    assert_eq!(
        c.jsonpath(&["deploy", "web"], "{.metadata.annotations.owner}"),
        "team-a"
    );

    // JSON patch.
    assert_eq!(
        c.ok(&[
            "patch",
            "deploy",
            "web",
            "--type",
            "json",
            "-p",
            r#"[{"op":"replace","path":"/spec/replicas","value":3}]"#
        ]),
        "deployment.apps/web patched\n"
    );
    assert_eq!(replicas(), "3");
    // Merge patch.
    assert_eq!(
        c.ok(&[
            "patch",
            "deploy",
            "web",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"replicas":4}}"#
        ]),
        "deployment.apps/web patched\n"
    );
    assert_eq!(replicas(), "4");
    // Strategic merge patch (the default type): containers merge by name, env by name.
    assert_eq!(
        c.ok(&[
            "patch",
            "deploy",
            "web",
            "--type",
            "strategic",
            "-p",
            r#"{"spec":{"template":{"spec":{"containers":[{"name":"httpd","env":[{"name":"EXTRA","value":"1"}]}]}}}}"#
        ]),
        "deployment.apps/web patched\n"
    );
    assert_eq!(
        c.jsonpath(
            &["deploy", "web"],
            "{.spec.template.spec.containers[0].env[*].name}"
        ),
        "EXTRA MODE"
    );
    assert_eq!(
        c.jsonpath(
            &["deploy", "web"],
            "{.spec.template.spec.containers[0].image}"
        ),
        "127.0.0.1:5000/busybox:1.35"
    );
    // A patch that changes nothing.
    assert_eq!(
        c.ok(&["patch", "deploy", "web", "-p", r#"{"spec":{"replicas":4}}"#]),
        "deployment.apps/web patched (no change)\n"
    );
    // A JSON patch that does not apply.
    let err = c.fails(&[
        "patch",
        "deploy",
        "web",
        "--type",
        "json",
        "-p",
        r#"[{"op":"test","path":"/spec/replicas","value":99}]"#,
    ]);
    assert!(
        err.starts_with("The request is invalid: "),
        "a failed JSON patch test is 422: {err}"
    );

    assert_eq!(
        c.ok(&["scale", "deploy", "web", "--replicas=7"]),
        "deployment.apps/web scaled\n"
    );
    assert_eq!(replicas(), "7");
    let err = c.fails(&[
        "scale",
        "deploy",
        "web",
        "--replicas=1",
        "--current-replicas=2",
    ]);
    assert!(
        err.contains("Expected replicas to be 2, was 7"),
        "precondition failure: {err}"
    );
    // generation counts spec changes only: create, 4 replicas/template changes, scale.
    let generation: u32 = c
        .jsonpath(&["deploy", "web"], "{.metadata.generation}")
        .parse()
        .unwrap();
    assert_eq!(generation, 5);
}

#[test]
fn api_resources_lists_builtin_kinds() {
    let c = Cluster::start();
    let out = c.ok(&["api-resources"]);
    let t = Table::parse(&out);
    assert_eq!(
        t.headers,
        ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"],
        "{out}"
    );
    for want in [
        ["deployments", "deploy", "apps/v1", "true", "Deployment"],
        ["configmaps", "cm", "v1", "true", "ConfigMap"],
        ["namespaces", "ns", "v1", "false", "Namespace"],
        ["pods", "po", "v1", "true", "Pod"],
        ["services", "svc", "v1", "true", "Service"],
        ["secrets", "", "v1", "true", "Secret"],
        ["nodes", "no", "v1", "false", "Node"],
        ["replicasets", "rs", "apps/v1", "true", "ReplicaSet"],
        ["leases", "", "coordination.k8s.io/v1", "true", "Lease"],
        [
            "customresourcedefinitions",
            "crd,crds",
            "apiextensions.k8s.io/v1",
            "false",
            "CustomResourceDefinition",
        ],
    ] {
        assert!(
            t.rows.iter().any(|r| r == &want),
            "api-resources lacks {want:?}:\n{out}"
        );
    }
    let out = c.ok(&["api-resources", "--namespaced=false", "-o", "name"]);
    assert!(out.lines().any(|l| l == "namespaces"), "{out}");
    assert!(!out.lines().any(|l| l == "configmaps"), "{out}");
}

#[test]
fn paging_with_chunk_size_returns_everything() {
    let c = Cluster::start();
    c.namespace("paged");
    for i in 0..7 {
        c.configmap("paged", &format!("cm-{i}"), &[]);
    }
    let out = c.kubectl(&["get", "cm", "-n", "paged", "--chunk-size=2", "-v=6"]);
    let t = Table::parse(out.ok());
    let mut names: Vec<&str> = t
        .names()
        .into_iter()
        .filter(|n| n.starts_with("cm-"))
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["cm-0", "cm-1", "cm-2", "cm-3", "cm-4", "cm-5", "cm-6"],
        "{out}"
    );
    assert!(
        out.stderr.contains("limit=2") && out.stderr.contains("continue="),
        "kubectl followed continue tokens: {out}"
    );
    // One header for all chunks.
    assert_eq!(out.stdout.matches("NAME").count(), 1, "{out}");
}

#[test]
fn objects_survive_a_clean_restart() {
    let mut c = Cluster::start();
    c.ok_stdin(&["apply", "-f", "-"], WEB);
    c.namespace("keep");
    c.configmap("keep", "kept", &[("k", "v")]);
    let rv_before: u64 = c
        .jsonpath(&["cm", "kept", "-n", "keep"], "{.metadata.resourceVersion}")
        .parse()
        .unwrap();
    let uid = c.jsonpath(&["cm", "kept", "-n", "keep"], "{.metadata.uid}");

    let status = c.stop();
    assert!(status.success(), "SIGTERM is a clean shutdown: {status:?}");
    c.restart();

    assert_eq!(c.jsonpath(&["cm", "kept", "-n", "keep"], "{.data.k}"), "v");
    assert_eq!(
        c.jsonpath(&["cm", "kept", "-n", "keep"], "{.metadata.uid}"),
        uid
    );
    assert_eq!(c.jsonpath(&["deploy", "web"], "{.spec.replicas}"), "2");
    let out = c.ok(&["get", "ns"]);
    assert_eq!(Table::parse(&out).names().len(), 5, "{out}");
    // The revision keeps counting up across restarts.
    c.configmap("keep", "after", &[]);
    let rv_after: u64 = c
        .jsonpath(
            &["cm", "after", "-n", "keep"],
            "{.metadata.resourceVersion}",
        )
        .parse()
        .unwrap();
    assert!(rv_after > rv_before, "{rv_after} > {rv_before}");
}

#[test]
fn selectors_and_output_formats() {
    let c = Cluster::start();
    c.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1
kind: ConfigMap
metadata:
  name: red
  labels: {color: red, size: small}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: blue
  labels: {color: blue, size: large}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: plain
",
    );
    let names = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["get", "cm", "-o", "name"];
        all.extend_from_slice(args);
        let mut v: Vec<String> = c.ok(&all).lines().map(str::to_string).collect();
        v.sort();
        v
    };
    assert_eq!(names(&["-l", "color=red"]), ["configmap/red"]);
    assert_eq!(
        names(&["-l", "color in (red,blue)"]),
        ["configmap/blue", "configmap/red"]
    );
    assert_eq!(
        names(&["-l", "color notin (red),color"]),
        ["configmap/blue"]
    );
    // kube-root-ca.crt (published in every namespace, as upstream) has no color label either.
    assert_eq!(
        names(&["-l", "!color"]),
        ["configmap/kube-root-ca.crt", "configmap/plain"]
    );
    assert_eq!(
        names(&["--field-selector", "metadata.name=blue"]),
        ["configmap/blue"]
    );
    assert_eq!(
        names(&["--field-selector", "metadata.name!=blue", "-l", "size"]),
        ["configmap/red"]
    );
    let err = c.fails(&["get", "cm", "--field-selector", "data.x=1"]);
    assert!(
        err.starts_with("Error from server (BadRequest): "),
        "unsupported field selector: {err}"
    );

    let out = c.ok(&["get", "cm", "-l", "color", "--show-labels"]);
    let t = Table::parse(&out);
    assert_eq!(t.headers, ["NAME", "DATA", "AGE", "LABELS"], "{out}");
    assert_eq!(t.cell("red", "LABELS"), "color=red,size=small");
    let out = c.ok(&["get", "cm", "-l", "color", "-L", "size"]);
    let t = Table::parse(&out);
    assert_eq!(t.headers, ["NAME", "DATA", "AGE", "SIZE"], "{out}");
    assert_eq!(t.cell("blue", "SIZE"), "large");

    let out = c.ok(&[
        "get",
        "cm",
        "-l",
        "color",
        "-o",
        "custom-columns=NAME:.metadata.name,COLOR:.metadata.labels.color",
        "--sort-by=.metadata.name",
    ]);
    assert_eq!(out, "NAME   COLOR\nblue   blue\nred    red\n");
    let list = c.get_json(&["cm", "-l", "color"]);
    assert_eq!(list["kind"], "List");
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    let yaml = c.ok(&["get", "cm", "red", "-o", "yaml"]);
    assert!(
        yaml.starts_with("apiVersion: v1\nkind: ConfigMap\nmetadata:\n"),
        "{yaml}"
    );
}

#[test]
fn health_endpoints_and_binary_version() {
    let c = Cluster::start();
    assert_eq!(c.ok(&["get", "--raw", "/readyz"]), "ok");
    assert_eq!(c.ok(&["get", "--raw", "/livez"]), "ok");
    assert_eq!(c.ok(&["get", "--raw", "/healthz"]), "ok");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_k1s"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    let version = String::from_utf8(out.stdout).unwrap();
    assert!(version.starts_with("k1s "), "{version}");
}

#[test]
fn auth_can_i_and_whoami_answer_for_the_admin() {
    let c = Cluster::start();
    assert_eq!(
        c.ok(&["auth", "can-i", "create", "deployments"]).trim(),
        "yes"
    );
    let out = c.ok(&["auth", "whoami"]);
    let t = Table::parse(&out);
    assert_eq!(t.headers, ["ATTRIBUTE", "VALUE"], "{out}");
    assert!(out.contains("k1s-admin"), "{out}");
    assert!(out.contains("system:masters"), "{out}");
}
