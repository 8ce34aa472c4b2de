//! Service-account tokens end to end (no kubelet): `kubectl create token` issues a JWT that
//! `kubectl auth whoami` and `get` accept as the service account; bound tokens die with their
//! object, tokens of a recreated ServiceAccount are refused, garbage and short lifetimes are
//! refused; the signing key (`pki/sa.key`, 0600) survives a restart and so do the tokens; new
//! pods get the kube-api-access volume unless automount is off.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use common::{Cluster, Output, eventually};

/// A kubeconfig that authenticates with `token` only (no client certificate, which would win).
fn token_kubeconfig(c: &Cluster, name: &str, token: &str) -> PathBuf {
    let ca = c.data_dir().join("pki/ca.crt");
    let yaml = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: k\n  cluster: {{server: \"{}\", certificate-authority: \"{}\"}}\nusers:\n- name: u\n  user: {{token: \"{token}\"}}\ncontexts:\n- name: c\n  context: {{cluster: k, user: u}}\ncurrent-context: c\n",
        c.url(),
        ca.display()
    );
    c.write_file(name, &yaml)
}

fn as_token(c: &Cluster, token: &str, args: &[&str]) -> Output {
    let cfg = token_kubeconfig(c, "token.kubeconfig", token);
    let mut full = vec!["--kubeconfig".to_string(), cfg.display().to_string()];
    full.extend(args.iter().map(|a| a.to_string()));
    let refs: Vec<&str> = full.iter().map(String::as_str).collect();
    c.kubectl(&refs)
}

fn whoami(c: &Cluster, token: &str) -> Output {
    as_token(c, token, &["auth", "whoami", "-o", "json"])
}

#[test]
fn service_account_tokens() {
    let mut c = Cluster::start();
    eventually(
        Duration::from_secs(20),
        "the default ServiceAccount",
        || c.kubectl(&["get", "serviceaccount", "default"]).success(),
    );

    let key = c.data_dir().join("pki/sa.key");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let key_before = std::fs::read(&key).unwrap();

    // Discovery lists the subresource.
    let res = c.ok(&["get", "--raw", "/api/v1"]);
    assert!(res.contains("\"serviceaccounts/token\""), "{res}");

    let token = c.ok(&["create", "token", "default", "--duration", "10m"]);
    let token = token.trim().to_string();
    assert_eq!(token.split('.').count(), 3, "{token}");

    let who = whoami(&c, &token);
    assert!(who.success(), "{}", who.stderr);
    let v: serde_json::Value = serde_json::from_str(&who.stdout).unwrap();
    assert_eq!(
        v["status"]["userInfo"]["username"],
        "system:serviceaccount:default:default"
    );
    let groups = v["status"]["userInfo"]["groups"].to_string();
    for g in [
        "system:serviceaccounts",
        "system:serviceaccounts:default",
        "system:authenticated",
    ] {
        assert!(groups.contains(&format!("\"{g}\"")), "{groups}");
    }
    let got = as_token(&c, &token, &["get", "serviceaccounts", "-o", "name"]);
    assert!(got.stdout.contains("serviceaccount/default"), "{got}");

    // Garbage and tampered tokens are 401 Unauthorized.
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    parts[1].insert(0, 'e');
    for bad in ["not-a-token".to_string(), parts.join(".")] {
        let out = whoami(&c, &bad);
        assert!(!out.success());
        assert!(out.stderr.contains("Unauthorized"), "{}", out.stderr);
    }

    // Too short a lifetime is refused.
    let short = c.fails(&["create", "token", "default", "--duration", "5m"]);
    assert!(short.contains("10 minutes"), "{short}");

    // A token bound to a Secret dies with it; binding to a missing object fails.
    c.ok(&["create", "secret", "generic", "bound", "--from-literal=a=b"]);
    let bound = c.ok(&[
        "create",
        "token",
        "default",
        "--bound-object-kind",
        "Secret",
        "--bound-object-name",
        "bound",
    ]);
    let bound = bound.trim().to_string();
    assert!(whoami(&c, &bound).success());
    c.ok(&["delete", "secret", "bound"]);
    assert!(!whoami(&c, &bound).success());
    let missing = c.fails(&[
        "create",
        "token",
        "default",
        "--bound-object-kind",
        "Pod",
        "--bound-object-name",
        "nope",
    ]);
    assert!(missing.contains("not found"), "{missing}");

    // A recreated ServiceAccount (new uid) does not accept the old one's tokens.
    c.ok(&["create", "serviceaccount", "robot"]);
    let robot = c.ok(&["create", "token", "robot"]).trim().to_string();
    assert!(whoami(&c, &robot).success());
    c.ok(&["delete", "serviceaccount", "robot"]);
    c.ok(&["create", "serviceaccount", "robot"]);
    assert!(!whoami(&c, &robot).success());

    // Pod admission: the kube-api-access volume, mounted in every container; not with
    // automountServiceAccountToken false on the ServiceAccount.
    c.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  initContainers: [{name: i, image: x}]\n  containers: [{name: a, image: x}]\n",
    );
    let p = c.get_json(&["pod", "p"]);
    assert_eq!(p["spec"]["serviceAccountName"], "default");
    let vol = p["spec"]["volumes"][0]["name"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(vol.starts_with("kube-api-access-"), "{vol}");
    for path in ["/spec/initContainers/0", "/spec/containers/0"] {
        let m = &p.pointer(path).unwrap()["volumeMounts"][0];
        assert_eq!(m["name"], vol.as_str());
        assert_eq!(
            m["mountPath"],
            "/var/run/secrets/kubernetes.io/serviceaccount"
        );
        assert_eq!(m["readOnly"], true);
    }
    c.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: quiet}\nautomountServiceAccountToken: false\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: q}\nspec:\n  serviceAccountName: quiet\n  containers: [{name: a, image: x}]\n",
    );
    let q = c.get_json(&["pod", "q"]);
    assert!(
        q["spec"]["volumes"].as_array().is_none_or(|v| v.is_empty()),
        "{q}"
    );

    // The key and the tokens survive a restart.
    c.stop();
    c.restart();
    assert_eq!(std::fs::read(&key).unwrap(), key_before);
    let who = whoami(&c, &token);
    assert!(who.success(), "{}", who.stderr);
}
