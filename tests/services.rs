//! Issue 6 end to end: pods reach Services by IP and by name through k1s's own proxy and DNS,
//! with `k1s server`'s defaults (kubelet, proxy, cluster DNS on the pod gateway), stock kubectl and
//! a busybox image from a registry on loopback.
//!
//! From pods: a Service by ClusterIP, by short name and by FQDN (busybox `nslookup` + `nc`); a
//! headless Service's A records are the pods' IPs; SRV returns the port; requests spread over all
//! pods; a pod reaches itself through its Service (hairpin); `sessionAffinity: ClientIP` keeps a
//! client on one pod; after a scale-down the removed pods get no traffic one second on; a Service
//! without endpoints refuses at once. From the test's namespace (the "host"): the ClusterIP, the
//! NodePort and the LoadBalancer (EXTERNAL-IP = the node IP). SIGKILL and restart reconcile the
//! table without duplicates; a clean stop removes it and puts the unreachable route back.
//!
//! The whole test runs in a network namespace it creates (`unshare --net`), with an empty bridge
//! holding the node address 192.0.2.10 (TEST-NET-1): nothing leaves the namespace. Guards remove
//! containers, sandboxes and cgroups also when it fails.
//! Needs: docker-registry, skopeo, umoci, busybox-static, util-linux, iproute2, nftables.

mod common;
#[path = "runtime_support/guard.rs"]
mod guard;
#[path = "runtime_support/netns.rs"]
mod netns;
#[path = "../runtime/tests/support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Cluster, Table, eventually};

const NODE_IP: &str = "192.0.2.10";

#[test]
fn services_reach_pods_by_ip_and_name() {
    netns::in_own_netns("services_reach_pods_by_ip_and_name", inner);
}

fn sh(script: &str) -> String {
    let out = Command::new("sh")
        .args(["-c", script])
        .output()
        .expect("running sh");
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const REQUEST: &[u8] = b"GET /index.html HTTP/1.0\r\n\r\n";

/// The body's last line (`served-by-POD`), from the test's own namespace.
fn http_get(addr: &str) -> Option<String> {
    let addr: SocketAddr = addr.parse().ok()?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(REQUEST).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.lines().last().map(str::to_string)
}

/// The same request from inside a pod's network namespace (busybox nc); empty when refused.
fn pod_get(netns: &Path, ip: &str, port: u16) -> String {
    let mut child = Command::new("nsenter")
        .arg(format!("--net={}", netns.display()))
        .args(["busybox", "nc", "-w", "3", ip, &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("nsenter (util-linux) and busybox");
    let _ = child.stdin.take().expect("stdin").write_all(REQUEST);
    let out = child.wait_with_output().expect("nc");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or("")
        .to_string()
}

/// One HTTP/1.0 request on a new connection, timed; `None` if it failed.
fn timed_get(addr: SocketAddr) -> Option<Duration> {
    let t = Instant::now();
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(REQUEST).ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    (!out.is_empty()).then(|| t.elapsed())
}

/// Request latency from inside a pod's network namespace (a thread that joins it; no process per
/// request): `rounds` interleaved requests straight to the pods and through the ClusterIP.
/// Returns the sorted samples (direct, via the service).
fn latency_from(
    netns: &Path,
    pods: &[SocketAddr],
    service: SocketAddr,
    rounds: usize,
) -> (Vec<Duration>, Vec<Duration>) {
    let ns = std::fs::File::open(netns).expect("opening the pod's netns");
    let pods = pods.to_vec();
    std::thread::spawn(move || {
        use std::os::fd::AsFd;
        rustix::thread::move_into_link_name_space(
            ns.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .expect("setns into the pod's netns");
        let (mut direct, mut via) = (Vec::new(), Vec::new());
        for i in 0..rounds {
            direct.push(timed_get(pods[i % pods.len()]).expect("a direct request"));
            via.push(timed_get(service).expect("a request through the ClusterIP"));
        }
        direct.sort();
        via.sort();
        (direct, via)
    })
    .join()
    .expect("the latency thread")
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn web(image: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
      - name: httpd
        image: {image}
        command: ["/bin/sh", "-c", "echo served-by-$(hostname) > /tmp/index.html && exec httpd -f -p 8080 -h /tmp"]
        ports:
        - {{name: http, containerPort: 8080}}
        readinessProbe:
          tcpSocket: {{port: 8080}}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata:
  name: web-headless
spec:
  clusterIP: None
  selector: {{app: web}}
  ports:
  - {{name: http, port: 80, targetPort: 8080}}
"#
    )
}

/// A pod that looks the names up and fetches through them, printing one line per check.
fn lookup(image: &str, cluster_ip: &str) -> String {
    let script = r#"
addr() { nslookup "$1" 2>/dev/null | sed -n '/^Name:/,$ s/^Address: *//p'; }
get() { printf 'GET /index.html HTTP/1.0\r\n\r\n' | nc -w 3 "$1" 80 | tail -n 1; }
echo "ip $(get $CIP)"
for n in web web.default.svc.cluster.local; do
  a=$(addr $n | head -n 1)
  echo "name $n $a $(get $a)"
done
echo "headless $(addr web-headless.default.svc.cluster.local | sort | tr '\n' ' ')"
nslookup -type=SRV _http._tcp.web-headless.default.svc.cluster.local | grep service | sed 's/^/srv /'
sed 's/^/resolv /' /etc/resolv.conf
"#;
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "lookup"},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{
                "name": "lookup",
                "image": image,
                "command": ["/bin/sh", "-c", script],
                "env": [{"name": "CIP", "value": cluster_ip}],
            }],
        },
    })
    .to_string()
}

fn netns_of(c: &Cluster, pod: &str) -> PathBuf {
    let uid = c.jsonpath(&["pod", pod], "{.metadata.uid}");
    c.data_dir()
        .join("runtime/sandboxes")
        .join(uid)
        .join("ns/net")
}

/// Names of the `app=web` pods not being deleted, with their IPs.
fn web_pods(c: &Cluster) -> Vec<(String, String)> {
    let pods = c.get_json(&["pods", "-l", "app=web"]);
    pods["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .map(|p| {
            (
                p["metadata"]["name"].as_str().unwrap_or("").to_string(),
                p["status"]["podIP"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn inner(_scratch: &Path) {
    for tool in ["nsenter", "busybox", "nft", "ip"] {
        assert!(
            Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success()),
            "{tool} is missing: install util-linux, busybox-static, nftables, iproute2"
        );
    }
    // The node's address, on a bridge with no ports that vanishes with the namespace (no dummy
    // driver on every kernel).
    sh(&format!(
        "ip link add node0 type bridge && ip addr add {NODE_IP}/24 dev node0 && ip link set node0 up"
    ));
    let fixture = guard::KubeletFixture::start("services", "k1s-svc-node", true, &[]);
    // Defaults: DNS on the pod gateway's port 53, the node IP detected for kubelet and proxy.
    assert_eq!(fixture.cluster.dns_addr(), "10.42.0.1:53".parse().unwrap());
    fixture.wait_node_ready();
    let guard::KubeletFixture {
        registry: _registry,
        image,
        mut cluster,
        ..
    } = fixture;
    let c = &*cluster;
    let nodes = Table::parse(&c.ok(&["get", "nodes", "-o", "wide"]));
    assert_eq!(nodes.cell("k1s-svc-node", "INTERNAL-IP"), NODE_IP);

    c.ok_stdin(&["apply", "-f", "-"], &web(&image));
    c.ok(&[
        "expose",
        "deployment",
        "web",
        "--port",
        "80",
        "--target-port",
        "8080",
    ]);
    c.ok(&[
        "expose",
        "deployment",
        "web",
        "--name",
        "web-lb",
        "--type",
        "LoadBalancer",
        "--port",
        "8081",
        "--target-port",
        "8080",
    ]);
    c.ok(&["create", "service", "clusterip", "empty", "--tcp=80:8080"]);
    c.ok(&[
        "wait",
        "--for=condition=Available",
        "deployment/web",
        "--timeout=90s",
    ]);
    let pods = web_pods(c);
    assert_eq!(pods.len(), 3, "{pods:?}");
    let names: BTreeSet<String> = pods.iter().map(|(n, _)| format!("served-by-{n}")).collect();
    let cluster_ip = c.jsonpath(&["svc", "web"], "{.spec.clusterIP}");
    assert!(cluster_ip.starts_with("10.43."), "{cluster_ip}");

    // From a pod: by ClusterIP, short name, FQDN; headless A records; SRV.
    c.ok_stdin(&["apply", "-f", "-"], &lookup(&image, &cluster_ip));
    eventually(Duration::from_secs(30), "the lookup pod to finish", || {
        let phase = c.jsonpath(&["pod", "lookup"], "{.status.phase}");
        phase == "Succeeded" || phase == "Failed"
    });
    let log = c.ok(&["logs", "lookup"]);
    let line = |prefix: &str| -> &str {
        log.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line in:\n{log}"))
    };
    let served = |l: &str| names.iter().any(|n| l.ends_with(n.as_str()));
    assert!(served(line("ip ")), "{log}");
    for name in ["web", "web.default.svc.cluster.local"] {
        let l = line(&format!("name {name} "));
        assert!(l.contains(&format!(" {cluster_ip} ")) && served(l), "{log}");
    }
    let mut pod_ips: Vec<&str> = pods.iter().map(|(_, ip)| ip.as_str()).collect();
    pod_ips.sort();
    assert_eq!(
        line("headless ").trim_end(),
        format!("headless {}", pod_ips.join(" ")),
        "{log}"
    );
    let resolv: Vec<&str> = log
        .lines()
        .filter_map(|l| l.strip_prefix("resolv "))
        .collect();
    assert_eq!(
        resolv,
        [
            "search default.svc.cluster.local svc.cluster.local cluster.local",
            "nameserver 10.43.0.10",
            "options ndots:5"
        ],
        "{log}"
    );
    let srv: Vec<&str> = log.lines().filter(|l| l.starts_with("srv ")).collect();
    assert_eq!(srv.len(), 3, "{log}");
    assert!(srv.iter().all(|l| l.contains(" 8080 ")), "{log}");

    // A client pod whose network namespace the test enters.
    c.ok(&[
        "run",
        "client",
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
        "pod/client",
        "--timeout=30s",
    ]);
    let client = netns_of(c, "client");
    // Random balancing reaches every pod.
    let mut seen = BTreeSet::new();
    eventually(
        Duration::from_secs(15),
        "requests to reach all 3 pods",
        || {
            seen.insert(pod_get(&client, &cluster_ip, 80));
            names.is_subset(&seen)
        },
    );
    // Hairpin: each pod reaches itself through its own service.
    for (name, _) in &pods {
        let own = netns_of(c, name);
        let me = format!("served-by-{name}");
        eventually(Duration::from_secs(15), "a pod to reach itself", || {
            pod_get(&own, &cluster_ip, 80) == me
        });
    }

    // Request latency from the client pod, straight to the pods vs through the ClusterIP (new
    // connection per request, as a figure: the NAT's cost per connection).
    let direct: Vec<SocketAddr> = pods
        .iter()
        .map(|(_, ip)| format!("{ip}:8080").parse().unwrap())
        .collect();
    let service: SocketAddr = format!("{cluster_ip}:80").parse().unwrap();
    latency_from(&client, &direct, service, 50); // warm-up: caches, conntrack, httpd
    let (d, v) = latency_from(&client, &direct, service, 1000);
    let (d50, v50) = (percentile(&d, 50), percentile(&v, 50));
    println!(
        "FIGURE request latency from a pod, new connection per request, 1000 each: pod IP p50 {} us p99 {} us; ClusterIP p50 {} us p99 {} us; p50 overhead {:+.1} %",
        d50.as_micros(),
        percentile(&d, 99).as_micros(),
        v50.as_micros(),
        percentile(&v, 99).as_micros(),
        (v50.as_secs_f64() / d50.as_secs_f64() - 1.0) * 100.0
    );

    // From the test's namespace (the host): the ClusterIP (routed onto the bridge while the proxy
    // runs), the LoadBalancer on the node IP, the NodePorts.
    assert!(
        http_get(&format!("{cluster_ip}:80")).is_some_and(|b| served(&b)),
        "host to ClusterIP"
    );
    eventually(Duration::from_secs(10), "web-lb EXTERNAL-IP", || {
        Table::parse(&c.ok(&["get", "svc", "web-lb", "-o", "wide"])).cell("web-lb", "EXTERNAL-IP")
            == NODE_IP
    });
    let node_port = c.jsonpath(&["svc", "web-lb"], "{.spec.ports[0].nodePort}");
    for addr in [
        format!("{NODE_IP}:8081"),
        format!("{NODE_IP}:{node_port}"),
        format!("127.0.0.1:{node_port}"),
    ] {
        let mut body = None;
        eventually(
            Duration::from_secs(10),
            "the host to reach the pods",
            || {
                body = http_get(&addr);
                body.is_some()
            },
        );
        assert!(served(body.as_deref().unwrap()), "{addr}: {body:?}");
    }

    // No endpoints: refused at once, from the host and from a pod.
    let empty_ip = c.jsonpath(&["svc", "empty"], "{.spec.clusterIP}");
    let empty: SocketAddr = format!("{empty_ip}:80").parse().unwrap();
    let t = Instant::now();
    let res = TcpStream::connect_timeout(&empty, Duration::from_secs(3));
    assert!(
        matches!(&res, Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused),
        "{res:?}"
    );
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    let t = Instant::now();
    assert_eq!(pod_get(&client, &empty_ip, 80), "");
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());

    // Session affinity: the client sticks to one pod; then back to random.
    c.ok(&[
        "patch",
        "svc",
        "web",
        "-p",
        r#"{"spec":{"sessionAffinity":"ClientIP"}}"#,
    ]);
    eventually(Duration::from_secs(10), "affinity rules", || {
        netns::nft_table().is_some_and(|t| t.contains("ip saddr @aff-"))
    });
    let first = pod_get(&client, &cluster_ip, 80);
    assert!(names.contains(&first), "{first}");
    for _ in 0..15 {
        assert_eq!(pod_get(&client, &cluster_ip, 80), first);
    }
    c.ok(&[
        "patch",
        "svc",
        "web",
        "-p",
        r#"{"spec":{"sessionAffinity":"None"}}"#,
    ]);

    // SIGKILL and restart: the table is rebuilt without duplicates and traffic flows again.
    // The service-ips verdict entry of the ClusterIP port (the endpoints map keys start alike).
    let count = |t: &str| {
        t.matches(&format!("{cluster_ip} . tcp . 80 : goto "))
            .count()
    };
    let before = netns::nft_table().expect("table");
    assert_eq!(count(&before), 1, "{before}");
    cluster.kill9();
    cluster.restart();
    let c = &*cluster;
    eventually(
        Duration::from_secs(20),
        "the table to be reconciled",
        || {
            c.ok(&["get", "svc", "web"]);
            netns::nft_table().is_some_and(|t| count(&t) == 1)
        },
    );
    let tables = sh("nft list tables");
    assert_eq!(tables.matches("table ip k1s\n").count(), 1, "{tables}");
    eventually(
        Duration::from_secs(20),
        "service traffic after restart",
        || served(&pod_get(&client, &cluster_ip, 80)),
    );
    eventually(
        Duration::from_secs(20),
        "the host to reach the ClusterIP again",
        || http_get(&format!("{cluster_ip}:80")).is_some_and(|b| served(&b)),
    );

    // Scale to one: one second after the others are marked for deletion, only the survivor
    // answers (the others' httpd, PID 1 without a SIGTERM handler, still runs for its grace).
    c.ok(&["scale", "deployment", "web", "--replicas=1"]);
    let mut left = Vec::new();
    eventually(Duration::from_secs(10), "two pods to be deleted", || {
        left = web_pods(c);
        left.len() == 1
    });
    std::thread::sleep(Duration::from_secs(1)); // the figure under test is "within a second"
    let survivor = format!("served-by-{}", left[0].0);
    for _ in 0..15 {
        assert_eq!(pod_get(&client, &cluster_ip, 80), survivor);
    }

    // A clean stop removes the table and puts the service range's unreachable route back.
    let status = cluster.stop();
    assert!(status.success(), "server exit: {status}");
    assert!(netns::nft_table().is_none(), "table ip k1s left behind");
    let route = sh("ip route show 10.43.0.0/16");
    assert!(route.starts_with("unreachable 10.43.0.0/16"), "{route}");
}
