//! End-to-end: the real `k1s server --dns-listen 127.0.0.1:0` with a simulated node; a Deployment
//! exposed with `kubectl expose` (ClusterIP and headless) resolves with `dig` over UDP and TCP, the
//! `kube-dns` Service is published, and reverse lookups name the service. The upstream is a closed
//! port on 127.0.0.1, so nothing can leave the machine.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Cluster, eventually};

/// `dig +short` against the cluster DNS: the answer lines, sorted.
fn dig(c: &Cluster, args: &[&str]) -> Vec<String> {
    let addr = c.dns_addr();
    let out = Command::new("dig")
        .arg(format!("@{}", addr.ip()))
        .arg("-p")
        .arg(addr.port().to_string())
        .args(["+short", "+time=2", "+tries=1"])
        .args(args)
        .output()
        .expect("running dig (Debian package bind9-dnsutils)");
    assert!(
        out.status.success(),
        "dig {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .filter(|l| !l.is_empty())
        .collect();
    lines.sort();
    lines
}

#[test]
fn exposed_deployment_resolves_with_dig() {
    let c = Cluster::start_with(&[
        "--simulated-nodes",
        "1",
        "--dns-listen",
        "127.0.0.1:0",
        "--dns-upstream",
        "127.0.0.1:9",
    ]);
    c.ok(&[
        "create",
        "deployment",
        "web",
        "--image=busybox:1",
        "--replicas=2",
    ]);
    c.ok(&["rollout", "status", "deploy/web", "--timeout=60s"]);
    c.ok(&[
        "expose",
        "deployment",
        "web",
        "--port=80",
        "--target-port=8080",
    ]);
    let ip = c.ok(&["get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}"]);
    assert!(!ip.is_empty(), "web has a cluster IP");

    eventually(Duration::from_secs(10), "web in DNS", || {
        dig(&c, &["web.default.svc.cluster.local", "A"]) == [ip.clone()]
    });
    assert_eq!(
        dig(&c, &["+tcp", "WEB.default.svc.cluster.local", "A"]),
        [ip.as_str()]
    );
    assert_eq!(
        dig(&c, &["-x", &ip]),
        ["web.default.svc.cluster.local."],
        "PTR of the cluster IP"
    );

    // The published DNS Service, at the 10th address of the service range.
    assert_eq!(
        c.ok(&[
            "get",
            "svc",
            "-n",
            "kube-system",
            "kube-dns",
            "-o",
            "jsonpath={.spec.clusterIP}"
        ]),
        "10.43.0.10"
    );
    assert_eq!(
        dig(&c, &["kube-dns.kube-system.svc.cluster.local", "A"]),
        ["10.43.0.10"]
    );

    // Headless: one A record per ready pod, the pods' own IPs.
    c.ok(&[
        "expose",
        "deployment",
        "web",
        "--name=web-pods",
        "--cluster-ip=None",
        "--port=8080",
    ]);
    let pod_ips = c.ok(&[
        "get",
        "pods",
        "-l",
        "app=web",
        "-o",
        "jsonpath={.items[*].status.podIP}",
    ]);
    let mut pod_ips: Vec<String> = pod_ips.split_whitespace().map(str::to_string).collect();
    pod_ips.sort();
    assert_eq!(pod_ips.len(), 2, "two pods with IPs: {pod_ips:?}");
    eventually(
        Duration::from_secs(10),
        "the headless service's pods in DNS",
        || dig(&c, &["web-pods.default.svc.cluster.local", "A"]) == pod_ips,
    );

    // Scaled down: the removed pod leaves the headless answer.
    c.ok(&["scale", "deployment", "web", "--replicas=1"]);
    eventually(Duration::from_secs(20), "one pod left in DNS", || {
        dig(&c, &["web-pods.default.svc.cluster.local", "A"]).len() == 1
    });

    // A pod with hostname and subdomain under a headless service: its own name and an SRV target.
    c.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: pets\nspec:\n  clusterIP: None\n  \
         selector:\n    app: pet\n  ports:\n  - name: http\n    port: 80\n    protocol: TCP\n---\n\
         apiVersion: v1\nkind: Pod\nmetadata:\n  name: pet-0\n  labels:\n    app: pet\nspec:\n  \
         hostname: pet-0\n  subdomain: pets\n  containers:\n  - name: c\n    image: busybox:1\n",
    );
    eventually(Duration::from_secs(20), "pet-0 running with an IP", || {
        !c.ok(&["get", "pod", "pet-0", "-o", "jsonpath={.status.podIP}"])
            .is_empty()
    });
    let pet_ip = c.ok(&["get", "pod", "pet-0", "-o", "jsonpath={.status.podIP}"]);
    eventually(Duration::from_secs(10), "pet-0.pets in DNS", || {
        dig(&c, &["pet-0.pets.default.svc.cluster.local", "A"]) == [pet_ip.as_str()]
    });
    assert_eq!(
        dig(&c, &["_http._tcp.pets.default.svc.cluster.local", "SRV"]),
        ["0 100 80 pet-0.pets.default.svc.cluster.local."]
    );
    assert_eq!(
        dig(&c, &["-x", &pet_ip]),
        ["pet-0.pets.default.svc.cluster.local."]
    );

    // A name that does not exist: an empty answer (NXDOMAIN), never forwarded.
    assert!(dig(&c, &["nothing.default.svc.cluster.local", "A"]).is_empty());
}
