//! End-to-end: a CustomResourceDefinition from the examples, and kubectl on its custom resources
//! (printer columns, short names, validation, defaulting, status and scale subresources).

mod common;

use std::time::Duration;

use common::{Cluster, Table, examples_dir};

fn install_crd(c: &Cluster) {
    let crd = examples_dir().join("30-crd-widgets.yaml");
    assert_eq!(
        c.ok(&["apply", "-f", crd.to_str().unwrap()]),
        "customresourcedefinition.apiextensions.k8s.io/widgets.example.com created\n"
    );
    c.namespace("demo");
}

fn apply_widgets(c: &Cluster) {
    let widgets = examples_dir().join("widgets");
    assert_eq!(
        c.ok(&["apply", "-f", widgets.to_str().unwrap()]),
        "widget.example.com/small created\nwidget.example.com/large created\n"
    );
}

#[test]
fn crd_is_established_and_discoverable() {
    let c = Cluster::start();
    install_crd(&c);
    assert_eq!(
        c.jsonpath(
            &["crd", "widgets.example.com"],
            "{.status.conditions[?(@.type==\"Established\")].status}"
        ),
        "True"
    );
    assert_eq!(
        c.jsonpath(
            &["crd", "widgets.example.com"],
            "{.status.acceptedNames.kind}"
        ),
        "Widget"
    );
    let out = c.ok(&["get", "crd"]);
    let t = Table::parse(&out);
    assert_eq!(t.headers, ["NAME", "CREATED AT"], "{out}");
    assert_eq!(t.names(), ["widgets.example.com"], "{out}");

    let out = c.ok(&["api-resources", "--api-group=example.com"]);
    let t = Table::parse(&out);
    assert_eq!(
        t.rows,
        [["widgets", "wd", "example.com/v1", "true", "Widget"]],
        "{out}"
    );
    let out = c.ok(&["explain", "wd.spec"]);
    for want in [
        "KIND:       Widget\n",
        "The desired state of the widget.",
        "  size\t<integer> -required-\n",
        "How many parts the widget has.",
        "  color\t<string>\n",
    ] {
        assert!(out.contains(want), "explain lacks {want:?}:\n{out}");
    }
}

#[test]
fn get_widgets_shows_printer_columns_and_defaults() {
    let c = Cluster::start();
    install_crd(&c);
    apply_widgets(&c);
    // The status subresource: kubectl patch --subresource=status.
    assert_eq!(
        c.ok(&[
            "patch",
            "wd",
            "small",
            "-n",
            "demo",
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"phase":"Ready","size":1}}"#
        ]),
        "widget.example.com/small patched\n"
    );

    let out = c.ok(&["get", "wd", "-n", "demo"]);
    let t = Table::parse(&out);
    assert_eq!(
        t.headers,
        ["NAME", "SIZE", "COLOR", "PHASE", "AGE"],
        "{out}"
    );
    assert_eq!(t.names(), ["large", "small"], "{out}");
    assert_eq!(t.cell("small", "SIZE"), "1");
    assert_eq!(t.cell("small", "COLOR"), "red");
    assert_eq!(t.cell("small", "PHASE"), "Ready");
    assert_eq!(t.cell("large", "SIZE"), "5");
    // spec.color defaults to blue from the schema.
    assert_eq!(t.cell("large", "COLOR"), "blue", "{out}");

    let out = c.ok(&["get", "widgets.example.com", "-A", "-o", "wide"]);
    let t = Table::parse(&out);
    assert_eq!(
        t.headers,
        ["NAMESPACE", "NAME", "SIZE", "COLOR", "PHASE", "AGE"],
        "{out}"
    );
    // Widgets are in the "all" category.
    let out = c.ok(&["get", "all", "-n", "demo"]);
    assert!(out.contains("widget.example.com/small"), "{out}");

    // Status writes ignore spec; main-resource writes ignore status.
    c.ok(&[
        "patch",
        "wd",
        "small",
        "-n",
        "demo",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"spec":{"size":9}}"#,
    ]);
    assert_eq!(
        c.jsonpath(&["wd", "small", "-n", "demo"], "{.spec.size}"),
        "1"
    );
    c.ok(&[
        "patch",
        "wd",
        "small",
        "-n",
        "demo",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"Broken"}}"#,
    ]);
    assert_eq!(
        c.jsonpath(&["wd", "small", "-n", "demo"], "{.status.phase}"),
        "Ready"
    );
}

#[test]
fn watch_widgets_prints_printer_columns() {
    let c = Cluster::start();
    install_crd(&c);
    apply_widgets(&c);
    let mut watch = c.kubectl_stream(&["get", "wd", "-n", "demo", "-w"]);
    let header = watch.expect_line(Duration::from_secs(20), |l| l.starts_with("NAME"));
    assert!(
        header
            .split_whitespace()
            .eq(["NAME", "SIZE", "COLOR", "PHASE", "AGE"]),
        "{header}"
    );
    watch.expect_line(Duration::from_secs(20), |l| l.starts_with("small "));
    c.ok(&[
        "patch",
        "wd",
        "small",
        "-n",
        "demo",
        "--type=merge",
        "-p",
        r#"{"spec":{"size":4,"color":"green"}}"#,
    ]);
    let row = watch.expect_line(Duration::from_secs(20), |l| {
        l.starts_with("small ") && l.contains("green")
    });
    assert_eq!(
        row.split_whitespace().take(3).collect::<Vec<_>>(),
        ["small", "4", "green"],
        "{row}"
    );
}

#[test]
fn scale_a_widget_through_the_scale_subresource() {
    let c = Cluster::start();
    install_crd(&c);
    apply_widgets(&c);
    assert_eq!(
        c.ok(&["scale", "wd", "small", "-n", "demo", "--replicas=3"]),
        "widget.example.com/small scaled\n"
    );
    assert_eq!(
        c.jsonpath(&["wd", "small", "-n", "demo"], "{.spec.size}"),
        "3"
    );
    let scale = c.ok(&[
        "get",
        "--raw",
        "/apis/example.com/v1/namespaces/demo/widgets/small/scale",
    ]);
    let scale: serde_json::Value = serde_json::from_str(&scale).unwrap();
    assert_eq!(scale["kind"], "Scale", "{scale}");
    assert_eq!(scale["apiVersion"], "autoscaling/v1", "{scale}");
    assert_eq!(scale["spec"]["replicas"], 3, "{scale}");
}

#[test]
fn widget_validation_errors() {
    let c = Cluster::start();
    install_crd(&c);
    let widget = |spec: &str| {
        format!(
            "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: bad\n  namespace: demo\nspec:\n{spec}"
        )
    };
    let out = c.kubectl_stdin(&["create", "-f", "-"], &widget("  size: 0\n"));
    assert!(
        out.err().contains(r#"The Widget "bad" is invalid: spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1"#),
        "{out}"
    );
    let out = c.kubectl_stdin(
        &["create", "-f", "-"],
        &widget("  size: 1\n  color: pink\n"),
    );
    assert!(
        out.err().contains(r#"The Widget "bad" is invalid: spec.color: Unsupported value: "pink": supported values: "red", "green", "blue""#),
        "{out}"
    );
    let out = c.kubectl_stdin(&["create", "-f", "-"], &widget("  color: red\n"));
    assert!(
        out.err()
            .contains(r#"The Widget "bad" is invalid: spec.size: Required value"#),
        "{out}"
    );
    let out = c.kubectl_stdin(&["create", "-f", "-"], &widget("  size: 1\n  foo: 1\n"));
    assert!(
        out.err()
            .contains(r#"strict decoding error: unknown field "spec.foo""#),
        "{out}"
    );
    let err = c.fails(&["get", "wd", "bad", "-n", "demo"]);
    assert_eq!(
        err,
        "Error from server (NotFound): widgets.example.com \"bad\" not found\n"
    );
}

#[test]
fn deleting_the_crd_removes_its_resources() {
    let c = Cluster::start();
    install_crd(&c);
    apply_widgets(&c);
    assert_eq!(
        c.ok(&["delete", "crd", "widgets.example.com"]),
        "customresourcedefinition.apiextensions.k8s.io \"widgets.example.com\" deleted\n"
    );
    // kubectl still has `wd` in its discovery cache, so it lists and gets a 404, as against
    // kube-apiserver; with a fresh cache it does not know the short name at all.
    let err = c.fails(&["get", "wd", "-n", "demo"]);
    assert_eq!(
        err,
        "Error from server (NotFound): Unable to list \"example.com/v1, Resource=widgets\": the server could not find the requested resource\n"
    );
    std::fs::remove_dir_all(c.home().join(".kube/cache")).unwrap();
    let err = c.fails(&["get", "wd", "-n", "demo"]);
    assert_eq!(
        err,
        "error: the server doesn't have a resource type \"wd\"\n"
    );
    // Re-creating it does not resurrect the old objects.
    install_crd_again(&c);
    let out = c.kubectl(&["get", "wd", "-n", "demo"]);
    assert_eq!(out.ok(), "", "{out}");
}

fn install_crd_again(c: &Cluster) {
    let crd = examples_dir().join("30-crd-widgets.yaml");
    c.ok(&["apply", "-f", crd.to_str().unwrap()]);
}

/// kubectl resolves every object's kind before it applies any, so a CRD and its objects in one `apply`
/// behave as against kube-apiserver: the CRD and everything else is created, each custom object is
/// reported as unmapped (exit 1), and a second apply creates them.
#[test]
fn crd_and_its_objects_in_one_apply_need_a_second_apply() {
    let c = Cluster::start();
    let dir = c.scratch().join("both");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        examples_dir().join("30-crd-widgets.yaml"),
        dir.join("30-crd.yaml"),
    )
    .unwrap();
    std::fs::copy(
        examples_dir().join("widgets/widgets.yaml"),
        dir.join("60-widgets.yaml"),
    )
    .unwrap();
    c.namespace("demo");
    let out = c.kubectl(&["apply", "-f", dir.to_str().unwrap()]);
    assert_eq!(out.code, Some(1), "{out}");
    assert_eq!(
        out.stdout,
        "customresourcedefinition.apiextensions.k8s.io/widgets.example.com created\n"
    );
    assert!(
        out.stderr.contains(
            "no matches for kind \"Widget\" in version \"example.com/v1\"\nensure CRDs are installed first"
        ),
        "{out}"
    );
    let out = c.ok(&["apply", "-f", dir.to_str().unwrap()]);
    assert_eq!(
        out,
        "customresourcedefinition.apiextensions.k8s.io/widgets.example.com unchanged\n\
         widget.example.com/small created\nwidget.example.com/large created\n"
    );
}
