//! The kubelet end to end: `k1s server` with its kubelet, a busybox image built offline in a real
//! registry on loopback, stock kubectl. The Node registers Ready with its columns; a Deployment's
//! pods run and serve HTTP on their pod IPs; a crashing pod goes to CrashLoopBackOff; a deleted pod
//! terminates gracefully and leaves no sandbox or cgroup; after `kill -9` of the server the running
//! pod keeps its container.
//!
//! The whole test runs in a network namespace it creates (it re-executes itself under
//! `unshare --net`), so the bridge, veths, routes and nft table vanish with it and no traffic
//! reaches the host's network. Containers, sandboxes, cgroups and mounts are removed by guards,
//! also when the test fails, and the outer run checks no mount was left.
//! Needs: docker-registry, skopeo, umoci, busybox-static, util-linux (unshare), iproute2.

mod common;
#[path = "runtime_support/guard.rs"]
mod guard;
#[path = "runtime_support/netns.rs"]
mod netns;
#[path = "../runtime/tests/support/mod.rs"]
mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use common::{Table, eventually};
use guard::cgroup_exists;

#[test]
fn kubelet_runs_pods_from_a_registry() {
    netns::in_own_netns("kubelet_runs_pods_from_a_registry", inner);
}

fn http_get(ip: &str, port: u16) -> Option<String> {
    let addr = format!("{ip}:{port}").parse().ok()?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

fn deployment(image: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      terminationGracePeriodSeconds: 3
      initContainers:
      - name: init
        image: {image}
        command: ["/bin/sh", "-c", "echo initialising"]
      containers:
      - name: httpd
        image: {image}
        command: ["/bin/sh", "-c", "echo served-by-$(hostname) $(GREETING) > /tmp/index.html && exec httpd -f -p 8080 -h /tmp"]
        env:
        - name: GREETING
          valueFrom:
            configMapKeyRef: {{name: web-config, key: greeting}}
        ports:
        - {{name: http, containerPort: 8080}}
        readinessProbe:
          httpGet: {{path: /index.html, port: http}}
          periodSeconds: 1
        livenessProbe:
          tcpSocket: {{port: 8080}}
          periodSeconds: 2
"#
    )
}

fn crasher(image: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: crasher
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: fail
    image: {image}
    command: ["/bin/sh", "-c", "echo failing; exit 1"]
"#
    )
}

fn probed(image: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: probed
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: live
    image: {image}
    command: ["/bin/sleep", "3600"]
    livenessProbe:
      exec: {{command: ["/bin/sh", "-c", "exit 1"]}}
      periodSeconds: 1
      failureThreshold: 2
  - name: unready
    image: {image}
    command: ["/bin/sleep", "3600"]
    readinessProbe:
      exec: {{command: ["/bin/false"]}}
      periodSeconds: 1
"#
    )
}

fn limited(image: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: limited
spec:
  restartPolicy: Never
  containers:
  - name: hog
    image: {image}
    command: ["/bin/dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"]
    resources:
      limits: {{memory: 16Mi}}
  - name: whoami
    image: {image}
    command: ["/bin/sh", "-c", "id -u; id -g"]
    securityContext:
      runAsUser: 65534
      runAsGroup: 65534
  - name: resolv
    image: {image}
    command: ["/bin/cat", "/etc/resolv.conf", "/etc/hosts"]
"#
    )
}

fn inner(scratch: &Path) {
    // The proxy and the cluster DNS with their defaults: pods get the kube-dns ClusterIP.
    let fixture = guard::KubeletFixture::start("kubelet", guard::TEST_NODE, true, &[]);
    assert!(fixture.cluster.data_dir().starts_with(scratch));
    // The Node, Ready, with the columns `get nodes -o wide` shows.
    fixture.wait_node_ready();
    let guard::KubeletFixture {
        registry,
        image,
        cgroup_root,
        mut cluster,
        ..
    } = fixture;
    let c = &*cluster;
    let nodes = Table::parse(&c.ok(&["get", "nodes", "-o", "wide"]));
    let ip = nodes.cell("k1s-test-node", "INTERNAL-IP");
    assert!(
        !ip.is_empty() && ip != "<none>" && !ip.starts_with("10.42.") && !ip.starts_with("10.43."),
        "{ip}"
    );
    assert_ne!(nodes.cell("k1s-test-node", "OS-IMAGE"), "<unknown>");
    assert!(!nodes.cell("k1s-test-node", "KERNEL-VERSION").is_empty());
    assert!(
        nodes
            .cell("k1s-test-node", "CONTAINER-RUNTIME")
            .starts_with("k1s://"),
        "{}",
        nodes.cell("k1s-test-node", "CONTAINER-RUNTIME")
    );
    assert_eq!(
        c.jsonpath(&["node", "k1s-test-node"], "{.spec.podCIDR}"),
        "10.42.0.0/24"
    );
    assert!(
        c.jsonpath(
            &["lease", "-n", "kube-node-lease", "k1s-test-node"],
            "{.spec.holderIdentity}"
        ) == "k1s-test-node"
    );

    // A Deployment of two web servers: Running and Ready, each answering on its pod IP.
    c.ok(&[
        "create",
        "configmap",
        "web-config",
        "--from-literal=greeting=hello",
    ]);
    c.ok_stdin(&["apply", "-f", "-"], &deployment(&image));
    c.ok(&[
        "wait",
        "--for=condition=Ready",
        "pod",
        "-l",
        "app=web",
        "--timeout=90s",
    ]);
    let pods = c.get_json(&["pods", "-l", "app=web"]);
    let items = pods["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{pods}");
    for p in items {
        let name = p["metadata"]["name"].as_str().unwrap();
        let s = &p["status"];
        assert_eq!(s["phase"], "Running", "{p}");
        assert_eq!(s["qosClass"], "BestEffort");
        let ip = s["podIP"].as_str().unwrap();
        assert!(ip.starts_with("10.42.0.") && ip != "10.42.0.1", "{ip}");
        assert_eq!(s["podIPs"][0]["ip"], ip);
        let cs = &s["containerStatuses"][0];
        assert!(
            cs["containerID"].as_str().unwrap().starts_with("k1s://"),
            "{cs}"
        );
        assert!(cs["imageID"].as_str().unwrap().contains("@sha256:"), "{cs}");
        assert_eq!(cs["restartCount"], 0);
        assert!(cs["state"]["running"]["startedAt"].is_string(), "{cs}");
        // The init container ran to completion before it.
        let init = &s["initContainerStatuses"][0];
        assert_eq!(init["state"]["terminated"]["reason"], "Completed", "{init}");
        assert_eq!(init["ready"], true);
        assert!(
            init["state"]["terminated"]["finishedAt"].as_str().unwrap()
                <= cs["state"]["running"]["startedAt"].as_str().unwrap(),
            "{s}"
        );
        let mut body = None;
        eventually(Duration::from_secs(10), "httpd to answer", || {
            body = http_get(ip, 8080);
            body.is_some()
        });
        let body = body.unwrap();
        assert!(body.contains(&format!("served-by-{name} hello")), "{body}");
    }
    let events = c.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.kind=Pod",
    ]);
    for reason in ["Pulled", "Created", "Started"] {
        assert!(events.contains(reason), "no {reason} event:\n{events}");
    }

    // kubectl logs: the init container, --tail, --timestamps, -f of a finished run, --previous.
    let web = items[0]["metadata"]["name"].as_str().unwrap();
    assert_eq!(c.ok(&["logs", web, "-c", "init"]), "initialising\n");
    assert_eq!(c.ok(&["logs", web, "-c", "init", "--tail=0"]), "");
    let stamped = c.ok(&["logs", web, "-c", "init", "--timestamps"]);
    assert!(
        stamped.ends_with(" initialising\n") && stamped.starts_with("20"),
        "{stamped}"
    );
    assert_eq!(c.ok(&["logs", "-f", web, "-c", "init"]), "initialising\n");
    assert_eq!(c.ok(&["logs", web]), "");
    let err = c.fails(&["logs", web, "--previous"]);
    assert!(err.contains("previous terminated container"), "{err}");

    // A container that exits 1: restarted at once, then CrashLoopBackOff.
    c.ok_stdin(&["apply", "-f", "-"], &crasher(&image));
    eventually(Duration::from_secs(30), "CrashLoopBackOff", || {
        let p = c.get_json(&["pod", "crasher"]);
        let cs = &p["status"]["containerStatuses"][0];
        cs["restartCount"].as_u64().unwrap_or(0) >= 1
            && cs["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    });
    let p = c.get_json(&["pod", "crasher"]);
    let cs = &p["status"]["containerStatuses"][0];
    let msg = cs["state"]["waiting"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("back-off 10s restarting failed container=fail pod=crasher_default("),
        "{msg}"
    );
    assert_eq!(cs["lastState"]["terminated"]["exitCode"], 1);
    assert_eq!(cs["lastState"]["terminated"]["reason"], "Error");
    assert_eq!(p["status"]["phase"], "Running");
    assert_eq!(c.ok(&["logs", "crasher", "--previous"]), "failing\n");
    let table = Table::parse(&c.ok(&["get", "pod", "crasher"]));
    assert_eq!(table.cell("crasher", "STATUS"), "CrashLoopBackOff");

    // A pod whose image is present: from `kubectl create` to Ready, as kubectl sees it (the
    // figure includes two kubectl processes).
    let started = std::time::Instant::now();
    c.ok(&[
        "run",
        "quick",
        "--image",
        &image,
        "--restart=Never",
        "--command",
        "--",
        "/bin/sleep",
        "3600",
    ]);
    c.ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/quick",
        "--timeout=30s",
    ]);
    println!(
        "FIGURE pod startup, image present, kubectl run -> kubectl wait Ready: {} ms",
        started.elapsed().as_millis()
    );
    c.ok(&[
        "delete",
        "pod",
        "quick",
        "--grace-period=1",
        "--timeout=30s",
    ]);

    // An image the registry does not have: ErrImagePull, then ImagePullBackOff.
    let missing = format!("{}/k1s/missing:1", registry.addr);
    c.ok(&["run", "missing", "--image", &missing, "--restart=Never"]);
    eventually(Duration::from_secs(40), "ImagePullBackOff", || {
        let p = c.get_json(&["pod", "missing"]);
        p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "ImagePullBackOff"
    });
    assert_eq!(
        c.jsonpath(&["pod", "missing"], "{.status.phase}"),
        "Pending"
    );
    let events = c.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=missing",
    ]);
    assert!(events.contains("Failed to pull image"), "{events}");
    assert!(events.contains("ErrImagePull"), "{events}");
    c.ok(&["delete", "pod", "missing", "--timeout=30s"]);

    // Resources and security context: over its memory limit a container is OOMKilled; runAsUser
    // and runAsGroup set its identity. With restartPolicy Never the pod ends Failed.
    c.ok_stdin(&["apply", "-f", "-"], &limited(&image));
    eventually(Duration::from_secs(30), "the limited pod to fail", || {
        c.jsonpath(&["pod", "limited"], "{.status.phase}") == "Failed"
    });
    let p = c.get_json(&["pod", "limited"]);
    assert_eq!(p["status"]["qosClass"], "Burstable");
    let hog = &p["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(hog["reason"], "OOMKilled", "{p}");
    assert_eq!(hog["exitCode"], 137);
    assert_eq!(c.ok(&["logs", "limited", "-c", "whoami"]), "65534\n65534\n");
    // Cluster DNS (the server runs it) in resolv.conf; the pod's IP and name in /etc/hosts.
    let files = c.ok(&["logs", "limited", "-c", "resolv"]);
    assert!(
        files.contains("search default.svc.cluster.local svc.cluster.local cluster.local\n")
            && files.contains("nameserver 10.43.0.10\n")
            && files.contains("options ndots:5\n"),
        "{files}"
    );
    let pod_ip = p["status"]["podIP"].as_str().unwrap();
    assert!(
        files
            .lines()
            .any(|l| l.starts_with(pod_ip) && l.ends_with("limited")),
        "{files}"
    );
    c.ok(&["delete", "pod", "limited", "--timeout=30s"]);

    // Probes: a failing liveness probe restarts its container; a failing readiness probe keeps
    // the pod Running but not Ready.
    c.ok_stdin(&["apply", "-f", "-"], &probed(&image));
    eventually(Duration::from_secs(40), "a liveness restart", || {
        let p = c.get_json(&["pod", "probed"]);
        p["status"]["containerStatuses"][0]["restartCount"]
            .as_u64()
            .unwrap_or(0)
            >= 1
    });
    let p = c.get_json(&["pod", "probed"]);
    let unready = &p["status"]["containerStatuses"][1];
    assert_eq!(unready["name"], "unready");
    assert!(unready["state"]["running"].is_object(), "{unready}");
    assert_eq!(unready["ready"], false);
    assert!(!k1s_apimachinery::pod::is_ready(&p), "{p}");
    let events = c.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=probed",
    ]);
    assert!(events.contains("Liveness probe failed"), "{events}");
    assert!(events.contains("Readiness probe failed"), "{events}");
    assert!(
        events.contains("failed liveness probe, will be restarted"),
        "{events}"
    );
    c.ok(&["delete", "pod", "probed", "--timeout=30s"]);

    // Graceful deletion: the pod goes, and so do its sandbox and cgroup.
    let victim = &items[0];
    let victim_name = victim["metadata"]["name"].as_str().unwrap().to_string();
    let victim_uid = victim["metadata"]["uid"].as_str().unwrap().to_string();
    let started = std::time::Instant::now();
    c.ok(&["delete", "pod", &victim_name, "--timeout=30s"]);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "deletion took {:?}",
        started.elapsed()
    );
    assert!(
        !c.data_dir()
            .join("runtime/sandboxes")
            .join(&victim_uid)
            .exists()
    );
    assert!(
        !cgroup_exists(&cgroup_root, &format!("besteffort/pod{victim_uid}")),
        "the pod's cgroup is left"
    );

    // kill -9 and restart: the surviving pod keeps its container and becomes Ready again.
    let survivor = items[1]["metadata"]["name"].as_str().unwrap().to_string();
    let before = c.get_json(&["pod", &survivor]);
    let id_before = before["status"]["containerStatuses"][0]["containerID"].clone();
    cluster.kill9();
    cluster.restart();
    let c = &*cluster;
    eventually(
        Duration::from_secs(20),
        "the survivor to be reported again",
        || {
            let p = c.get_json(&["pod", &survivor]);
            p["status"]["containerStatuses"][0]["containerID"] == id_before
                && k1s_apimachinery::pod::is_ready(&p)
        },
    );
    let after = c.get_json(&["pod", &survivor]);
    assert_eq!(after["status"]["containerStatuses"][0]["restartCount"], 0);
    let ip = after["status"]["podIP"].as_str().unwrap();
    assert!(http_get(ip, 8080).is_some_and(|b| b.contains("served-by-")));
    c.ok(&["delete", "deployment", "web"]);
    c.ok(&["delete", "pod", "crasher", "--timeout=30s"]);
    eventually(Duration::from_secs(30), "all pods gone", || {
        c.ok(&["get", "pods", "-o", "name"]).trim().is_empty()
    });
    eventually(Duration::from_secs(10), "all sandboxes gone", || {
        std::fs::read_dir(c.data_dir().join("runtime/sandboxes"))
            .map(|d| d.flatten().filter(|e| e.path().is_dir()).count() == 0)
            .unwrap_or(true)
    });
}
