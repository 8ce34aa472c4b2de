//! End-to-end: `kubectl apply` (client-side and server-side), `diff`, `edit` and `delete` against the real
//! `k1s server`, using the example manifests users apply.

mod common;

use common::{Cluster, Table, examples_dir};

/// The lines kube-apiserver makes kubectl print for the first `kubectl apply -f manifests/examples/`.
const CREATED: &[&str] = &[
    "namespace/demo created",
    "namespace/tools created",
    "configmap/web-config created",
    "configmap/feature-flags created",
    "configmap/toolbox created",
    "secret/web-credentials created",
    "customresourcedefinition.apiextensions.k8s.io/widgets.example.com created",
    "deployment.apps/web created",
    "service/web created",
    "service/web-nodeport created",
];

fn apply_examples(c: &Cluster) -> String {
    let dir = examples_dir();
    c.ok(&["apply", "-f", dir.to_str().unwrap()])
}

#[test]
fn apply_examples_creates_everything_then_reapply_is_unchanged() {
    let c = Cluster::start();
    let out = apply_examples(&c);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, CREATED, "{out}");

    // Re-applying the same files changes nothing. The Secret is the upstream exception: its stringData is
    // folded into data on write, so the three-way merge always re-sends stringData and kubectl prints
    // "configured" for it against kube-apiserver too.
    let again = apply_examples(&c);
    let expected: Vec<String> = CREATED
        .iter()
        .map(|l| {
            let name = l.strip_suffix(" created").unwrap();
            if name.starts_with("secret/") {
                format!("{name} configured")
            } else {
                format!("{name} unchanged")
            }
        })
        .collect();
    assert_eq!(again.lines().collect::<Vec<_>>(), expected, "{again}");

    // The Widget objects go in a second apply, once the CRD exists (see widgets/widgets.yaml).
    let widgets = examples_dir().join("widgets");
    assert_eq!(
        c.ok(&["apply", "-f", widgets.to_str().unwrap()]),
        "widget.example.com/small created\nwidget.example.com/large created\n"
    );

    // What was applied is what is stored.
    assert_eq!(
        c.jsonpath(&["deploy", "web", "-n", "demo"], "{.spec.replicas}"),
        "2"
    );
    assert_eq!(
        c.jsonpath(
            &["secret", "web-credentials", "-n", "demo"],
            "{.data.username}"
        ),
        "YWRtaW4=" // base64("admin"), from stringData
    );
    assert_eq!(
        c.jsonpath(
            &["secret", "web-credentials", "-n", "demo"],
            "{.data.api-token}"
        ),
        "YXBpLXRva2VuLTEyMw=="
    );
    assert_eq!(
        c.jsonpath(&["svc", "web", "-n", "demo"], "{.spec.ports[0].targetPort}"),
        "8080"
    );
    let last_applied = c.jsonpath(
        &["cm", "web-config", "-n", "demo"],
        "{.metadata.annotations.kubectl\\.kubernetes\\.io/last-applied-configuration}",
    );
    assert!(
        last_applied.contains("\"GREETING\":\"hello from k1s\""),
        "{last_applied}"
    );
}

#[test]
fn apply_examples_then_get_all_wide_and_describe() {
    let c = Cluster::start();
    apply_examples(&c);

    let out = c.ok(&["get", "all", "-A", "-o", "wide"]);
    let tables = Table::parse_many(&out);
    let svc = tables
        .iter()
        .find(|t| t.rows.iter().any(|r| r[1] == "service/web"))
        .unwrap_or_else(|| panic!("no service table in:\n{out}"));
    assert_eq!(
        svc.headers,
        [
            "NAMESPACE",
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE",
            "SELECTOR"
        ],
        "{out}"
    );
    let web = svc.row("service/web");
    assert_eq!(web[0], "demo");
    assert_eq!(web[svc.col("TYPE")], "ClusterIP", "{out}");
    assert_eq!(web[svc.col("EXTERNAL-IP")], "<none>", "{out}");
    assert_eq!(web[svc.col("PORT(S)")], "80/TCP", "{out}");
    assert_eq!(web[svc.col("SELECTOR")], "app=web", "{out}");
    assert_eq!(
        svc.cell("service/web-nodeport", "PORT(S)"),
        "80:30080/TCP",
        "{out}"
    );
    assert_eq!(
        svc.cell("service/web-nodeport", "TYPE"),
        "NodePort",
        "{out}"
    );

    let deploy = tables
        .iter()
        .find(|t| t.rows.iter().any(|r| r[1] == "deployment.apps/web"))
        .unwrap_or_else(|| panic!("no deployment table in:\n{out}"));
    assert_eq!(
        deploy.headers,
        [
            "NAMESPACE",
            "NAME",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "AGE",
            "CONTAINERS",
            "IMAGES",
            "SELECTOR"
        ],
        "{out}"
    );
    let row = deploy.row("deployment.apps/web");
    assert_eq!(row[deploy.col("READY")], "0/2", "{out}");
    assert_eq!(row[deploy.col("CONTAINERS")], "httpd", "{out}");
    assert_eq!(
        row[deploy.col("IMAGES")],
        "127.0.0.1:5000/busybox:1.35",
        "{out}"
    );
    assert_eq!(row[deploy.col("SELECTOR")], "app=web", "{out}");

    let out = c.ok(&["describe", "deploy", "web", "-n", "demo"]);
    for want in [
        "Name:                   web\n",
        "Namespace:              demo\n",
        "Labels:                 app=web\n",
        "Selector:               app=web\n",
        // The deployment controller created the pods; with no node they are not available.
        "Replicas:               2 desired | 2 updated | 2 total | 0 available | 2 unavailable\n",
        "StrategyType:           RollingUpdate\n",
        "RollingUpdateStrategy:  0 max unavailable, 1 max surge\n",
        "Pod Template:\n",
        "   httpd:\n",
        "    Image:      127.0.0.1:5000/busybox:1.35\n",
        "    Port:       8080/TCP\n",
        "Events:",
    ] {
        assert!(out.contains(want), "describe lacks {want:?}:\n{out}");
    }
    assert!(
        !out.contains("last-applied-configuration"),
        "describe hides last-applied:\n{out}"
    );
}

const WEB_V1: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
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
          command: [busybox, httpd, -f, -p, '8080', -h, /var/www]
          ports:
            - containerPort: 8080
";

#[test]
fn server_side_apply_with_conflicts_and_force() {
    let c = Cluster::start();
    let v1 = c.write_file("web.yaml", WEB_V1);
    let f = v1.to_str().unwrap();
    let out = c.ok(&["apply", "--server-side", "-f", f]);
    assert_eq!(out, "deployment.apps/web serverside-applied\n");
    let managers = c.jsonpath(&["deploy", "web"], "{.metadata.managedFields[*].manager}");
    // The deployment controller's status writes are a second manager, as upstream's are.
    assert!(
        managers.split(' ').any(|m| m == "kubectl"),
        "SSA records kubectl as a manager: {managers}"
    );
    let out = c.ok(&["apply", "--server-side", "-f", f]);
    assert_eq!(out, "deployment.apps/web serverside-applied\n");

    // Another manager takes .spec.replicas through the scale subresource.
    assert_eq!(
        c.ok(&["scale", "deploy", "web", "--replicas=5"]),
        "deployment.apps/web scaled\n"
    );
    assert_eq!(c.jsonpath(&["deploy", "web"], "{.spec.replicas}"), "5");

    // Applying a different value for a field someone else owns is a conflict.
    let v2 = c.write_file("web3.yaml", &WEB_V1.replace("replicas: 2", "replicas: 3"));
    let f2 = v2.to_str().unwrap();
    let err = c.fails(&["apply", "--server-side", "-f", f2]);
    // kubectl scale sends no fieldManager: the manager is "kubectl" from the user agent, and the entry
    // records the scale subresource.
    assert!(
        err.starts_with(
            "error: Apply failed with 1 conflict: conflict with \"kubectl\" with subresource \"scale\" using apps/v1: .spec.replicas\n"
        ),
        "{err}"
    );
    assert_eq!(c.jsonpath(&["deploy", "web"], "{.spec.replicas}"), "5");

    // --force-conflicts takes the field over.
    let out = c.ok(&["apply", "--server-side", "--force-conflicts", "-f", f2]);
    assert_eq!(out, "deployment.apps/web serverside-applied\n");
    assert_eq!(c.jsonpath(&["deploy", "web"], "{.spec.replicas}"), "3");
}

#[test]
fn diff_shows_changes_with_exit_code_1_and_none_with_0() {
    let c = Cluster::start();
    let v1 = c.write_file("web.yaml", WEB_V1);
    c.ok(&["apply", "-f", v1.to_str().unwrap()]);

    let same = c.kubectl(&["diff", "-f", v1.to_str().unwrap()]);
    assert_eq!(same.code, Some(0), "{same}");
    assert_eq!(same.stdout, "", "{same}");

    let v2 = c.write_file("web4.yaml", &WEB_V1.replace("replicas: 2", "replicas: 4"));
    let changed = c.kubectl(&["diff", "-f", v2.to_str().unwrap()]);
    assert_eq!(changed.code, Some(1), "{changed}");
    assert!(changed.stdout.contains("-  replicas: 2\n"), "{changed}");
    assert!(changed.stdout.contains("+  replicas: 4\n"), "{changed}");
    // diff is a dry run: nothing changed.
    assert_eq!(c.jsonpath(&["deploy", "web"], "{.spec.replicas}"), "2");
}

#[test]
fn edit_with_an_editor_script() {
    let c = Cluster::start();
    let v1 = c.write_file("web.yaml", WEB_V1);
    c.ok(&["apply", "-f", v1.to_str().unwrap()]);
    let editor = c.write_file(
        "editor.sh",
        "#!/bin/sh\nset -e\nsed -i 's/replicas: 2/replicas: 6/' \"$1\"\n",
    );
    make_executable(&editor);
    let out = c.kubectl_env(
        &["edit", "deploy", "web"],
        &[("KUBE_EDITOR", editor.to_str().unwrap())],
    );
    assert_eq!(out.ok(), "deployment.apps/web edited\n", "{out}");
    assert_eq!(c.jsonpath(&["deploy", "web"], "{.spec.replicas}"), "6");

    // An editor that changes nothing: kubectl says so and exits 0.
    let noop = c.write_file("noop.sh", "#!/bin/sh\ntrue\n");
    make_executable(&noop);
    let out = c.kubectl_env(
        &["edit", "deploy", "web"],
        &[("KUBE_EDITOR", noop.to_str().unwrap())],
    );
    assert!(out.success(), "{out}");
    assert!(
        out.stderr.contains("Edit cancelled, no changes made."),
        "{out}"
    );
}

fn make_executable(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn delete_with_and_without_wait() {
    let c = Cluster::start();
    let v1 = c.write_file("web.yaml", WEB_V1);
    c.ok(&["apply", "-f", v1.to_str().unwrap()]);
    c.configmap("default", "gone", &[("a", "b")]);

    assert_eq!(
        c.ok(&["delete", "deploy", "web"]),
        "deployment.apps \"web\" deleted\n"
    );
    assert_eq!(
        c.ok(&["delete", "cm", "gone", "--wait=false"]),
        "configmap \"gone\" deleted\n"
    );
    let err = c.fails(&["get", "deploy", "web"]);
    assert_eq!(
        err,
        "Error from server (NotFound): deployments.apps \"web\" not found\n"
    );
    let err = c.fails(&["delete", "cm", "gone"]);
    assert_eq!(
        err,
        "Error from server (NotFound): configmaps \"gone\" not found\n"
    );
    // delete -f of what apply created.
    c.ok(&["apply", "-f", v1.to_str().unwrap()]);
    assert_eq!(
        c.ok(&["delete", "-f", v1.to_str().unwrap()]),
        "deployment.apps \"web\" deleted\n"
    );
}

#[test]
fn server_dry_run_stores_nothing() {
    let c = Cluster::start();
    let v1 = c.write_file("web.yaml", WEB_V1);
    let f = v1.to_str().unwrap();
    assert_eq!(
        c.ok(&["apply", "--dry-run=server", "-f", f]),
        "deployment.apps/web created (server dry run)\n"
    );
    let err = c.fails(&["get", "deploy", "web"]);
    assert_eq!(
        err,
        "Error from server (NotFound): deployments.apps \"web\" not found\n"
    );
    c.ok(&["apply", "-f", f]);
    let v2 = c.write_file("web5.yaml", &WEB_V1.replace("replicas: 2", "replicas: 5"));
    assert_eq!(
        c.ok(&["apply", "--dry-run=server", "-f", v2.to_str().unwrap()]),
        "deployment.apps/web configured (server dry run)\n"
    );
    assert_eq!(c.jsonpath(&["deploy", "web"], "{.spec.replicas}"), "2");
    assert_eq!(
        c.ok(&["delete", "--dry-run=server", "deploy", "web"]),
        "deployment.apps \"web\" deleted (server dry run)\n"
    );
    assert_eq!(c.jsonpath(&["deploy", "web"], "{.metadata.name}"), "web");
}

#[test]
fn deleting_a_namespace_deletes_its_contents() {
    let c = Cluster::start();
    apply_examples(&c);
    assert_eq!(
        c.ok(&["delete", "namespace", "demo"]),
        "namespace \"demo\" deleted\n"
    );
    // kubectl waited for the namespace to be finalized.
    let err = c.fails(&["get", "ns", "demo"]);
    assert_eq!(
        err,
        "Error from server (NotFound): namespaces \"demo\" not found\n"
    );
    let out = c.kubectl(&["get", "deploy,svc,cm,secret", "-n", "demo"]);
    assert_eq!(out.ok(), "", "{out}");
    assert_eq!(out.stderr, "No resources found in demo namespace.\n");
    // Other namespaces are untouched.
    assert_eq!(
        c.jsonpath(&["cm", "toolbox", "-n", "tools"], "{.data.motd}"),
        "Welcome to the tools namespace"
    );
    // The system namespaces cannot be deleted.
    let err = c.fails(&["delete", "namespace", "kube-system"]);
    assert_eq!(
        err,
        "Error from server (Forbidden): namespaces \"kube-system\" is forbidden: this namespace may not be deleted\n"
    );
}

#[test]
fn reapply_with_changes_merges_lists_by_key() {
    let c = Cluster::start();
    let v1 = WEB_V1.replace(
        "          ports:\n",
        "          env:\n            - name: A\n              value: '1'\n            - name: B\n              value: '2'\n          ports:\n",
    );
    let f1 = c.write_file("v1.yaml", &v1);
    assert_eq!(
        c.ok(&["apply", "-f", f1.to_str().unwrap()]),
        "deployment.apps/web created\n"
    );
    // Someone else adds a label; apply must keep what it does not own.
    c.ok(&["label", "deploy", "web", "team=a"]);

    // v2 drops env B, changes A and the image, adds a second container port.
    let v2 = v1
        .replace("            - name: B\n              value: '2'\n", "")
        .replace("value: '1'", "value: 'one'")
        .replace("busybox:1.35", "busybox:1.36")
        .replace(
            "            - containerPort: 8080\n",
            "            - containerPort: 8080\n            - containerPort: 9090\n",
        );
    let f2 = c.write_file("v2.yaml", &v2);
    assert_eq!(
        c.ok(&["apply", "-f", f2.to_str().unwrap()]),
        "deployment.apps/web configured\n"
    );
    let get = |path: &str| c.jsonpath(&["deploy", "web"], path);
    assert_eq!(get("{.spec.template.spec.containers[0].env[*].name}"), "A");
    assert_eq!(
        get("{.spec.template.spec.containers[0].env[0].value}"),
        "one"
    );
    assert_eq!(
        get("{.spec.template.spec.containers[0].image}"),
        "127.0.0.1:5000/busybox:1.36"
    );
    assert_eq!(
        get("{.spec.template.spec.containers[0].ports[*].containerPort}"),
        "8080 9090"
    );
    assert_eq!(get("{.metadata.labels.team}"), "a");
    assert_eq!(get("{.metadata.generation}"), "2");
    assert_eq!(
        c.ok(&["apply", "-f", f2.to_str().unwrap()]),
        "deployment.apps/web unchanged\n"
    );
}
