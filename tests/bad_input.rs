//! End-to-end: bad input gets the error kube-apiserver gives, and nothing is stored.

mod common;

use common::Cluster;

#[test]
fn unknown_field_is_a_strict_decoding_error() {
    let c = Cluster::start();
    let manifest = "apiVersion: v1
kind: Service
metadata:
  name: strict
spec:
  foo: bar
  ports:
    - port: 80
";
    let out = c.kubectl_stdin(&["apply", "-f", "-"], manifest);
    let err = out.err();
    assert!(
        err.contains("Error from server (BadRequest): error when creating \"STDIN\": Service in version \"v1\" cannot be handled as a Service: strict decoding error: unknown field \"spec.foo\""),
        "{out}"
    );
    c.fails(&["get", "svc", "strict"]);

    // --validate=false sends fieldValidation=Ignore: the unknown field is dropped.
    let out = c.ok_stdin(&["apply", "--validate=false", "-f", "-"], manifest);
    assert_eq!(out, "service/strict created\n");
    assert_eq!(c.jsonpath(&["svc", "strict"], "{.spec.foo}"), "");
}

#[test]
fn invalid_name_is_422_invalid() {
    let c = Cluster::start();
    let manifest = "apiVersion: v1
kind: ConfigMap
metadata:
  name: Bad_Name
data:
  a: b
";
    let out = c.kubectl_stdin(&["create", "-f", "-", "-v=6"], manifest);
    let err = out.err();
    assert!(err.contains("422 Unprocessable Entity"), "{out}");
    assert!(
        err.contains(r#"The ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"#),
        "{out}"
    );
    let err = c.fails(&["create", "configmap", "Bad_Name"]);
    assert!(
        err.starts_with("error: failed to create configmap: ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\""),
        "{err}"
    );

    // A label value that is too long.
    let long = "x".repeat(64);
    c.configmap("default", "labelled", &[]);
    let patch = format!(r#"{{"metadata":{{"labels":{{"too":"{long}"}}}}}}"#);
    let err = c.fails(&["patch", "cm", "labelled", "-p", &patch]);
    assert!(
        err.contains(&format!(
            r#"The ConfigMap "labelled" is invalid: metadata.labels: Invalid value: "{long}": must be no more than 63 characters"#
        )),
        "{err}"
    );
}

#[test]
fn malformed_yaml_and_json() {
    let c = Cluster::start();
    // kubectl rejects malformed YAML itself, before talking to the server.
    let bad = c.write_file(
        "bad.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n data: [\n",
    );
    let err = c.fails(&["apply", "-f", bad.to_str().unwrap()]);
    assert!(err.contains("error converting YAML to JSON"), "{err}");

    // The server rejects a malformed body with 400 BadRequest.
    let bad = c.write_file(
        "bad.json",
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"#,
    );
    let err = c.fails(&[
        "create",
        "--raw",
        "/api/v1/namespaces/default/configmaps",
        "-f",
        bad.to_str().unwrap(),
    ]);
    assert!(err.starts_with("Error from server (BadRequest)"), "{err}");

    // A body whose kind does not match the URL.
    let secret = c.write_file(
        "secret.json",
        r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"}}"#,
    );
    let err = c.fails(&[
        "create",
        "--raw",
        "/api/v1/namespaces/default/configmaps",
        "-f",
        secret.to_str().unwrap(),
    ]);
    assert!(err.starts_with("Error from server (BadRequest)"), "{err}");
    c.fails(&["get", "cm", "s"]);
    c.fails(&["get", "secret", "s"]);
}

#[test]
fn wrong_kind_and_wrong_api_version() {
    let c = Cluster::start();
    let out = c.kubectl_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMapp\nmetadata:\n  name: x\n",
    );
    assert!(
        out.err()
            .contains(r#"no matches for kind "ConfigMapp" in version "v1""#),
        "{out}"
    );
    let out = c.kubectl_stdin(
        &["apply", "-f", "-"],
        "apiVersion: apps/v9\nkind: Deployment\nmetadata:\n  name: x\n",
    );
    assert!(
        out.err()
            .contains(r#"no matches for kind "Deployment" in version "apps/v9""#),
        "{out}"
    );
    let err = c.fails(&["get", "widgets"]);
    assert_eq!(
        err,
        "error: the server doesn't have a resource type \"widgets\"\n"
    );
}

#[test]
fn namespace_that_does_not_exist_is_not_found() {
    let c = Cluster::start();
    let out = c.kubectl_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  namespace: nope\n",
    );
    assert!(
        out.err()
            .contains("Error from server (NotFound): error when creating \"STDIN\": namespaces \"nope\" not found"),
        "{out}"
    );
    // Listing in a namespace that does not exist is an empty list, as upstream.
    let out = c.kubectl(&["get", "cm", "-n", "nope"]);
    assert_eq!(out.ok(), "");
    assert_eq!(out.stderr, "No resources found in nope namespace.\n");
    let err = c.fails(&["create", "configmap", "x", "-n", "nope"]);
    assert_eq!(
        err,
        "error: failed to create configmap: namespaces \"nope\" not found\n"
    );
}

#[test]
fn immutable_fields_and_stale_updates() {
    let c = Cluster::start();
    c.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: frozen\nimmutable: true\ndata:\n  a: b\n",
    );
    let err = c.fails(&["patch", "cm", "frozen", "-p", r#"{"data":{"a":"c"}}"#]);
    assert!(
        err.contains(r#"The ConfigMap "frozen" is invalid: data: Forbidden: field is immutable when `immutable` is set"#),
        "{err}"
    );
    // An update with a stale resourceVersion is a 409 Conflict.
    c.configmap("default", "cas", &[("a", "1")]);
    let mut obj = c.get_json(&["cm", "cas"]);
    obj["metadata"]["resourceVersion"] = "1".into();
    obj["data"]["a"] = "2".into();
    let out = c.kubectl_stdin(&["replace", "-f", "-"], &obj.to_string());
    assert!(
        out.err().contains("Error from server (Conflict): error when replacing \"STDIN\": Operation cannot be fulfilled on configmaps \"cas\": the object has been modified; please apply your changes to the latest version and try again"),
        "{out}"
    );
    assert_eq!(c.jsonpath(&["cm", "cas"], "{.data.a}"), "1");
}

#[test]
fn requests_without_credentials_are_unauthorized() {
    let c = Cluster::start();
    let url = c.url().to_string();
    // (Without any credentials kubectl would prompt for a basic-auth user name; a bad token it sends.)
    let out = c.kubectl(&[
        "--kubeconfig=/dev/null",
        "--server",
        &url,
        "--insecure-skip-tls-verify",
        "--token",
        "not-a-token",
        "get",
        "ns",
    ]);
    // kube-apiserver's answer to a bad token, as kubectl reports it (after logging each failed
    // discovery attempt).
    assert_eq!(
        out.err().lines().last(),
        Some(
            "error: You must be logged in to the server (the server has asked for the client to provide credentials)"
        ),
        "{out}"
    );
    // Health and version stay open without credentials.
    let out = c.kubectl(&[
        "--kubeconfig=/dev/null",
        "--server",
        &url,
        "--insecure-skip-tls-verify",
        "--token",
        "not-a-token",
        "get",
        "--raw",
        "/readyz",
    ]);
    assert_eq!(out.ok(), "ok", "{out}");
}

#[test]
fn oversized_body_is_413() {
    let c = Cluster::start();
    let big = format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"big"}},"data":{{"x":"{}"}}}}"#,
        "x".repeat(3 * 1024 * 1024 + 10)
    );
    let path = c.write_file("big.json", &big);
    let err = c.fails(&[
        "create",
        "--raw",
        "/api/v1/namespaces/default/configmaps",
        "-f",
        path.to_str().unwrap(),
    ]);
    assert!(
        err.starts_with("Error from server (RequestEntityTooLarge)"),
        "{err}"
    );
    c.fails(&["get", "cm", "big"]);
}
