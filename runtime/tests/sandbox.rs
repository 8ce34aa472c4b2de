//! Pod sandboxes and pod networking for real (root): namespaces, bridge, veths, IPAM, routes, nft.
//!
//! Every test that touches the network runs in a network namespace it creates: the test
//! re-executes its own binary under `unshare --net` (see [`in_own_netns`]), so the bridge, veths,
//! routes and nft table vanish with that process and nothing reaches the host's network. The pod
//! netns bind mounts live in the host's mount namespace, so the inner run removes them (a Drop
//! guard), and the outer run checks `/proc/self/mountinfo` has none left under the test's root.
//!
//! Needs: util-linux (`unshare`, `nsenter`), busybox-static (`busybox ping`), iproute2 (`ip`, to
//! inspect), nftables (`nft`).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context, Result, bail, ensure};
use k1s_runtime::sandbox::{NetworkConfig, Sandbox, SandboxManager, SandboxSpec};
use k1s_testns::mounts_under;

/// Runs `body` in a network namespace of its own, its scratch directory as the sandbox root
/// ([`k1s_testns::in_own_netns`]), after checking for the tools these tests use.
fn in_own_netns(test: &str, body: impl FnOnce(&Path) -> Result<()>) {
    k1s_testns::require_tools(&["nsenter", "busybox", "nft"]);
    k1s_testns::in_own_netns(test, body);
}

/// The manager plus a guard that removes every sandbox and stray mount, also when a test fails.
struct Node {
    mgr: Option<SandboxManager>,
    root: PathBuf,
}

impl Node {
    fn open(root: &Path) -> Result<Node> {
        let mgr = SandboxManager::open(root, NetworkConfig::default())?;
        Ok(Node {
            mgr: Some(mgr),
            root: root.to_path_buf(),
        })
    }

    fn mgr(&self) -> &SandboxManager {
        self.mgr.as_ref().expect("manager")
    }

    /// Drops the manager without removing anything, as a crash would.
    fn crash(&mut self) {
        self.mgr = None;
    }

    fn reopen(&mut self) -> Result<()> {
        self.mgr = Some(SandboxManager::open(&self.root, NetworkConfig::default())?);
        Ok(())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mgr) = &self.mgr {
            for s in mgr.list() {
                let _ = mgr.remove(&s.id);
            }
        }
        for m in mounts_under(&self.root) {
            let _ = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

fn spec(id: &str, hostname: &str) -> SandboxSpec {
    SandboxSpec {
        id: id.to_string(),
        hostname: hostname.to_string(),
        host_network: false,
        resolv_conf: None,
    }
}

fn run(cmd: &mut Command) -> Result<Output> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    Ok(out)
}

fn run_ok(cmd: &mut Command) -> Result<String> {
    let out = run(cmd)?;
    ensure!(
        out.status.success(),
        "{cmd:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `nsenter --net=<pod netns> -- args...`
fn in_pod(s: &Sandbox, args: &[&str]) -> Command {
    let mut c = Command::new("nsenter");
    c.arg(format!("--net={}", netns(s).display()))
        .arg("--")
        .args(args);
    c
}

fn netns(s: &Sandbox) -> &Path {
    s.namespace("net").expect("sandbox has a netns")
}

fn ip_of(s: &Sandbox) -> String {
    s.ip.expect("sandbox has an IP").to_string()
}

fn ping(cmd: &mut Command) -> Result<()> {
    run_ok(cmd).map(drop)
}

fn links() -> Result<String> {
    run_ok(Command::new("ip").args(["-o", "link", "show"]))
}

fn inode(path: &Path) -> Result<u64> {
    use std::os::unix::fs::MetadataExt;
    Ok(std::fs::metadata(path)
        .with_context(|| format!("stat {}", path.display()))?
        .ino())
}

#[test]
fn pods_reach_each_other_the_node_and_themselves() {
    in_own_netns("pods_reach_each_other_the_node_and_themselves", |root| {
        let node = Node::open(root)?;
        let a = node.mgr().create(&spec("pod-a", "alpha"))?;
        let b = node.mgr().create(&spec("pod-b", "beta"))?;
        let (ip_a, ip_b) = (ip_of(&a), ip_of(&b));
        ensure!(ip_a != ip_b, "two pods got the same IP {ip_a}");
        for ip in [&ip_a, &ip_b] {
            let ip: IpAddr = ip.parse()?;
            let gw = NetworkConfig::default().gateway();
            ensure!(
                NetworkConfig::default().node_pod_cidr.contains(match ip {
                    IpAddr::V4(v4) => v4,
                    IpAddr::V6(_) => bail!("IPv6 pod IP {ip}"),
                }) && ip != IpAddr::V4(gw)
            );
        }

        // The pod netns is really another one than the node's.
        ensure!(inode(netns(&a))? != inode(Path::new("/proc/self/ns/net"))?);
        ensure!(inode(netns(&a))? != inode(netns(&b))?);

        // Pod to pod, both ways; node to pod; pod to gateway; pod to its own IP.
        ping(&mut in_pod(&a, &["busybox", "ping", "-c1", "-W2", &ip_b]))?;
        ping(&mut in_pod(&b, &["busybox", "ping", "-c1", "-W2", &ip_a]))?;
        ping(Command::new("busybox").args(["ping", "-c1", "-W2", &ip_a]))?;
        ping(&mut in_pod(
            &a,
            &["busybox", "ping", "-c1", "-W2", "10.42.0.1"],
        ))?;
        ping(&mut in_pod(&a, &["busybox", "ping", "-c1", "-W2", &ip_a]))?;

        // Inside: eth0 with the pod IP and MTU 1500, default route via the gateway.
        let addr = run_ok(&mut in_pod(
            &a,
            &["ip", "-o", "-4", "addr", "show", "dev", "eth0"],
        ))?;
        ensure!(addr.contains(&format!("{ip_a}/24")), "eth0: {addr}");
        let eth0 = run_ok(&mut in_pod(
            &a,
            &["ip", "-o", "link", "show", "dev", "eth0"],
        ))?;
        ensure!(
            eth0.contains("mtu 1500") && eth0.contains("UP"),
            "eth0: {eth0}"
        );
        let route = run_ok(&mut in_pod(&a, &["ip", "route", "show", "default"]))?;
        ensure!(
            route.contains("via 10.42.0.1 dev eth0"),
            "pod default route: {route}"
        );

        // Host end: on the bridge, hairpin on, same MTU.
        let host_end =
            run_ok(Command::new("ip").args(["-d", "-o", "link", "show", "master", "k1s0"]))?;
        ensure!(
            host_end.matches("hairpin on").count() == 2,
            "bridge ports: {host_end}"
        );
        ensure!(
            host_end.matches("mtu 1500").count() == 2,
            "bridge ports: {host_end}"
        );

        // Hostname in the UTS namespace and in the files.
        let uts = a.namespace("uts").context("uts ns")?;
        let name = run_ok(
            Command::new("nsenter")
                .arg(format!("--uts={}", uts.display()))
                .args(["busybox", "hostname"]),
        )?;
        ensure!(
            name.trim() == "alpha",
            "hostname in the pod's UTS ns: {name:?}"
        );
        ensure!(std::fs::read_to_string(&a.hostname_file)? == "alpha\n");
        let hosts = std::fs::read_to_string(&a.hosts)?;
        ensure!(
            hosts.contains("127.0.0.1\tlocalhost") && hosts.contains(&format!("{ip_a}\talpha"))
        );
        let resolv = std::fs::read_to_string(&a.resolv_conf)?;
        ensure!(
            !resolv.contains("nameserver 127."),
            "loopback resolver copied: {resolv}"
        );
        let ipc = a.namespace("ipc").context("ipc ns")?;
        ensure!(inode(ipc)? != inode(Path::new("/proc/self/ns/ipc"))?);

        ensure!(node.mgr().is_alive("pod-a") && !node.mgr().is_alive("nope"));

        // Removal leaves no veth, mount, IP or directory behind.
        let dir_a = node.mgr().sandbox_dir("pod-a");
        node.mgr().remove("pod-a")?;
        node.mgr().remove("pod-b")?;
        node.mgr().remove("pod-b")?; // idempotent
        let left = links()?;
        ensure!(!left.contains("k1s0a2a"), "veths left: {left}");
        ensure!(
            mounts_under(root).is_empty(),
            "mounts left: {:?}",
            mounts_under(root)
        );
        ensure!(!dir_a.exists());
        let ipam: Vec<_> = std::fs::read_dir(root.join("ipam"))?.collect();
        ensure!(ipam.is_empty(), "IPs left allocated: {ipam:?}");
        ensure!(node.mgr().list().is_empty());
        node.mgr().teardown_node()?;
        Ok(())
    });
}

#[test]
fn fallback_routes_masquerade_and_node_teardown() {
    in_own_netns("fallback_routes_masquerade_and_node_teardown", |root| {
        // A stand-in uplink: a veth to an "outside" netns this test creates (192.0.2.2, with no
        // route back to the pod network), and a default route through it. Without the unreachable
        // routes, cluster and service traffic would leave through it; without masquerade, pod
        // traffic to it would get no answer.
        let outside = root.join("outside-netns");
        std::fs::File::create(&outside)?;
        let outside_ns = format!("--net={}", outside.display());
        run_ok(Command::new("unshare").arg(&outside_ns).arg("true"))?;
        run_ok(
            Command::new("ip")
                .args([
                    "link", "add", "up0", "type", "veth", "peer", "name", "up1", "netns",
                ])
                .arg(&outside),
        )?;
        run_ok(Command::new("ip").args(["addr", "add", "192.0.2.1/24", "dev", "up0"]))?;
        run_ok(Command::new("ip").args(["link", "set", "up0", "up"]))?;
        run_ok(Command::new("ip").args(["route", "add", "default", "via", "192.0.2.2"]))?;
        for args in [
            &["ip", "addr", "add", "192.0.2.2/24", "dev", "up1"][..],
            &["ip", "link", "set", "up1", "up"],
            &["ip", "link", "set", "lo", "up"],
        ] {
            run_ok(
                Command::new("nsenter")
                    .arg(&outside_ns)
                    .arg("--")
                    .args(args),
            )?;
        }

        let node = Node::open(root)?;
        let a = node.mgr().create(&spec("pod-a", "alpha"))?;

        let route_get =
            |dst: &str| -> Result<Output> { run(Command::new("ip").args(["route", "get", dst])) };
        for dst in ["10.43.0.5", "10.42.7.7"] {
            let out = route_get(dst)?;
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            ensure!(
                !out.status.success() && !text.contains("up0"),
                "{dst} is routed: {text}"
            );
        }
        let to_pod = run_ok(Command::new("ip").args(["route", "get", &ip_of(&a)]))?;
        ensure!(to_pod.contains("dev k1s0"), "pod route: {to_pod}");
        // And from inside a pod, service traffic is refused, not forwarded to the uplink.
        let out = run(&mut in_pod(
            &a,
            &["busybox", "ping", "-c1", "-W2", "10.43.0.5"],
        ))?;
        ensure!(!out.status.success(), "a pod reached 10.43.0.5");

        // Out through the uplink, masqueraded: the outside answers 192.0.2.1, not the pod IP.
        ping(&mut in_pod(
            &a,
            &["busybox", "ping", "-c1", "-W2", "192.0.2.2"],
        ))?;

        let table = run_ok(Command::new("nft").args(["list", "table", "ip", "k1s_podnet"]))?;
        ensure!(
            table.contains("ip saddr 10.42.0.0/16 ip daddr != 10.42.0.0/16 masquerade"),
            "masquerade table: {table}"
        );
        ensure!(std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")?.trim() == "1");

        node.mgr().remove("pod-a")?;
        node.mgr().teardown_node()?;
        let out = run(Command::new("nft").args(["list", "table", "ip", "k1s_podnet"]))?;
        ensure!(!out.status.success(), "nft table left after teardown_node");
        ensure!(!links()?.contains("k1s0"), "bridge left: {}", links()?);
        let routes = run_ok(Command::new("ip").args(["route", "show", "type", "unreachable"]))?;
        ensure!(
            routes.trim().is_empty(),
            "unreachable routes left: {routes}"
        );
        Ok(())
    });
}

#[test]
fn ipam_never_repeats_an_ip_across_a_crash() {
    in_own_netns("ipam_never_repeats_an_ip_across_a_crash", |root| {
        let mut node = Node::open(root)?;
        let a = node.mgr().create(&spec("pod-a", "alpha"))?;
        node.crash();
        node.reopen()?;
        // The sandbox survived the restart and still works.
        let found = node
            .mgr()
            .get("pod-a")
            .context("pod-a lost across a restart")?;
        ensure!(found == a, "{found:?} != {a:?}");
        ping(Command::new("busybox").args(["ping", "-c1", "-W2", &ip_of(&a)]))?;
        let b = node.mgr().create(&spec("pod-b", "beta"))?;
        ensure!(a.ip != b.ip, "IP {:?} handed out twice", a.ip);

        // A create that crashed half-way (directory and IP, no record) is undone on open.
        let half = node.mgr().sandbox_dir("pod-c");
        std::fs::create_dir_all(half.join("ns"))?;
        std::os::unix::fs::symlink("pod-c", root.join("ipam/10.42.0.200"))?;
        node.crash();
        node.reopen()?;
        ensure!(!half.exists(), "unfinished sandbox left");
        ensure!(
            !root.join("ipam/10.42.0.200").exists(),
            "unfinished sandbox's IP still held"
        );
        let ids: Vec<String> = node.mgr().list().into_iter().map(|s| s.id).collect();
        ensure!(
            ids == ["pod-a", "pod-b"],
            "sandboxes after restart: {ids:?}"
        );

        // IPAM fsyncs nothing: a power loss can lose a recent link while pod-a's record
        // survives. The next open claims the record's address again before allocating.
        let a_link = root.join("ipam").join(ip_of(&a));
        std::fs::remove_file(&a_link)?;
        node.crash();
        node.reopen()?;
        ensure!(
            std::fs::read_link(&a_link)? == Path::new("pod-a"),
            "pod-a's address not re-claimed"
        );

        // A stale record naming an address another sandbox holds (a power loss on a file system
        // that replays metadata out of order): removing it leaves that address and veth alone.
        let ghost = node.mgr().sandbox_dir("ghost");
        std::fs::create_dir_all(ghost.join("ns"))?;
        std::fs::write(
            ghost.join("sandbox.json"),
            format!(
                r#"{{"id":"ghost","hostname":"ghost","host_network":false,"ip":"{}"}}"#,
                ip_of(&b)
            ),
        )?;
        node.crash();
        node.reopen()?;
        node.mgr().remove("ghost")?;
        ensure!(!ghost.exists(), "ghost sandbox left");
        let b_link = root.join("ipam").join(ip_of(&b));
        ensure!(
            std::fs::read_link(&b_link)? == Path::new("pod-b"),
            "pod-b lost its address to a stale record"
        );
        ping(Command::new("busybox").args(["ping", "-c1", "-W2", &ip_of(&b)]))?;

        // An unreadable record (a power loss can leave a new file empty) is an unfinished
        // sandbox: torn down on open, its address freed, instead of failing the open.
        let empty = node.mgr().sandbox_dir("empty");
        std::fs::create_dir_all(empty.join("ns"))?;
        std::fs::write(empty.join("sandbox.json"), b"")?;
        std::os::unix::fs::symlink("empty", root.join("ipam/10.42.0.201"))?;
        node.crash();
        node.reopen()?;
        ensure!(!empty.exists(), "sandbox with an empty record left");
        ensure!(!root.join("ipam/10.42.0.201").exists());

        // Create and remove many: each IP is unique among the live ones, nothing accumulates.
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..20 {
            let s = node.mgr().create(&spec(&format!("p{i}"), "x"))?;
            ensure!(s.ip != a.ip && s.ip != b.ip);
            ensure!(seen.insert(s.ip), "{:?} handed out twice in a row", s.ip);
            node.mgr().remove(&s.id)?;
        }
        ensure!(!links()?.contains("k1s0a2a0a"), "{}", links()?);
        node.mgr().remove("pod-a")?;
        node.mgr().remove("pod-b")?;
        ensure!(mounts_under(root).is_empty());
        node.mgr().teardown_node()?;
        Ok(())
    });
}

#[test]
fn host_network_sandbox_has_no_netns_but_its_files() {
    in_own_netns("host_network_sandbox_has_no_netns_but_its_files", |root| {
        let node = Node::open(root)?;
        let mut sp = spec("host-pod", "ignored");
        sp.host_network = true;
        sp.resolv_conf = Some("nameserver 10.43.0.10\n".into());
        let s = node.mgr().create(&sp)?;
        ensure!(s.ip.is_none());
        ensure!(s.namespace("net").is_none() && s.namespace("uts").is_none());
        let ipc = s.namespace("ipc").context("own IPC namespace")?;
        ensure!(inode(ipc)? != inode(Path::new("/proc/self/ns/ipc"))?);
        let node_name = std::fs::read_to_string("/proc/sys/kernel/hostname")?;
        ensure!(std::fs::read_to_string(&s.hostname_file)?.trim() == node_name.trim());
        ensure!(std::fs::read_to_string(&s.resolv_conf)? == "nameserver 10.43.0.10\n");
        ensure!(s.hosts.exists());
        ensure!(!links()?.contains("k1s0a2a"));
        node.mgr().remove("host-pod")?;
        ensure!(mounts_under(root).is_empty());
        node.mgr().teardown_node()?;
        Ok(())
    });
}

#[test]
fn bad_specs_are_refused_without_side_effects() {
    in_own_netns("bad_specs_are_refused_without_side_effects", |root| {
        let node = Node::open(root)?;
        for bad in [
            spec("../escape", "x"),
            spec("ok", "not a hostname"),
            spec("", "x"),
        ] {
            ensure!(node.mgr().create(&bad).is_err(), "{bad:?} accepted");
        }
        let a = node.mgr().create(&spec("dup", "x"))?;
        ensure!(
            node.mgr().create(&spec("dup", "x")).is_err(),
            "duplicate id accepted"
        );
        ensure!(node.mgr().get("dup") == Some(a));
        node.mgr().remove("dup")?;
        ensure!(std::fs::read_dir(root.join("sandboxes"))?.next().is_none());
        node.mgr().teardown_node()?;
        Ok(())
    });
}

/// A busybox httpd in a pod's netns, killed on drop.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Counter of `nft` rule bytes/packets: the `packets N` of the rule whose text contains `tag`.
fn nft_packets(table: &str, tag: &str) -> Result<u64> {
    let text = run_ok(Command::new("nft").args(["list", "table", "ip", table]))?;
    let line = text
        .lines()
        .find(|l| l.contains(tag))
        .with_context(|| format!("no rule {tag:?} in {text}"))?;
    let n = line
        .split_whitespace()
        .skip_while(|w| *w != "packets")
        .nth(1)
        .with_context(|| format!("no counter in {line:?}"))?;
    Ok(n.parse()?)
}

#[test]
fn a_pod_reaches_itself_through_a_service_path_across_the_bridge() {
    in_own_netns(
        "a_pod_reaches_itself_through_a_service_path_across_the_bridge",
        |root| {
            let node = Node::open(root)?;
            let pod = node.mgr().create(&spec("pod-hp", "hairpin"))?;
            let ip = ip_of(&pod);

            // This netns's own sysfs (the host's /sys shows the host's devices): the pod's bridge
            // port has hairpin on. Under the test root, so Node's guard unmounts it.
            let sys = root.join("sysfs");
            std::fs::create_dir_all(&sys)?;
            nix::mount::mount(
                Some("sysfs"),
                &sys,
                Some("sysfs"),
                nix::mount::MsFlags::empty(),
                None::<&str>,
            )?;
            let ports: Vec<String> = std::fs::read_dir(sys.join("class/net/k1s0/brif"))?
                .map(|e| Ok(e?.file_name().to_string_lossy().into_owned()))
                .collect::<Result<_>>()?;
            ensure!(ports.len() == 1, "bridge ports: {ports:?}");
            let port = sys.join("class/net").join(&ports[0]);
            let hairpin = port.join("brport/hairpin_mode");
            ensure!(std::fs::read_to_string(&hairpin)?.trim() == "1");

            // A server in the pod, and a service-like path to it as the service proxy builds
            // it: DNAT of a virtual IP in the node's prerouting, masquerade of the hairpin case.
            let www = root.join("www");
            std::fs::create_dir_all(&www)?;
            std::fs::write(www.join("index.html"), "hello from myself\n")?;
            let _server = Server(
                in_pod(
                    &pod,
                    &[
                        "busybox",
                        "httpd",
                        "-f",
                        "-p",
                        "8080",
                        "-h",
                        www.to_str().unwrap(),
                    ],
                )
                .spawn()?,
            );
            let table = "k1s_test_hairpin";
            let script = format!(
                "table ip {table} {{\n\
                 chain pre {{ type nat hook prerouting priority dstnat; \
                 ip daddr 10.43.7.7 tcp dport 80 counter dnat to {ip}:8080 comment \"svc\"; }}\n\
                 chain post {{ type nat hook postrouting priority srcnat; \
                 ip saddr {ip} ip daddr {ip} counter masquerade comment \"hairpin\"; }}\n\
                 }}\n"
            );
            let mut nft = Command::new("nft")
                .args(["-f", "-"])
                .stdin(std::process::Stdio::piped())
                .spawn()?;
            std::io::Write::write_all(
                &mut nft.stdin.take().context("nft stdin")?,
                script.as_bytes(),
            )?;
            ensure!(nft.wait()?.success(), "nft -f {script}");

            let rx = port.join("statistics/rx_packets");
            let rx_before: u64 = std::fs::read_to_string(&rx)?.trim().parse()?;
            // busybox-static's wget crashes in a fresh netns; nc speaks enough HTTP.
            let fetch = |target: &str, timeout: &str| -> Result<String> {
                let script = format!(
                    "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w {timeout} {target}"
                );
                let out = run(&mut in_pod(&pod, &["busybox", "sh", "-c", &script]))?;
                Ok(String::from_utf8_lossy(&out.stdout).into_owned())
            };
            const BODY: &str = "hello from myself";
            // The server may not listen yet: retry until a deadline.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            loop {
                let body = fetch("10.43.7.7 80", "2")?;
                if body.contains(BODY) {
                    break;
                }
                if std::time::Instant::now() >= deadline {
                    let direct = fetch(&format!("{ip} 8080"), "2")?;
                    let tables = run_ok(Command::new("nft").args(["list", "ruleset"]))?;
                    bail!(
                        "pod -> 10.43.7.7 -> itself failed: {body:?}, direct: {direct:?}\n{tables}"
                    );
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }

            // It left the pod through its veth, went through the node's NAT, and was bridged
            // back out of the port it came in by (the hairpin).
            let rx_after: u64 = std::fs::read_to_string(&rx)?.trim().parse()?;
            ensure!(rx_after > rx_before, "no packet crossed the veth");
            ensure!(nft_packets(table, "\"svc\"")? >= 1);
            ensure!(nft_packets(table, "\"hairpin\"")? >= 1);

            // Without the hairpin flag the bridge drops the frame going back out of its port.
            std::fs::write(&hairpin, "0")?;
            let body = fetch("10.43.7.7 80", "1")?;
            std::fs::write(&hairpin, "1")?;
            ensure!(
                !body.contains(BODY),
                "reached itself with hairpin off: {body:?}"
            );
            ensure!(
                fetch("10.43.7.7 80", "2")?.contains(BODY),
                "hairpin back on"
            );

            run_ok(Command::new("nft").args(["delete", "table", "ip", table]))?;
            nix::mount::umount2(&sys, nix::mount::MntFlags::MNT_DETACH)?;
            node.mgr().remove("pod-hp")?;
            node.mgr().teardown_node()?;
            Ok(())
        },
    );
}
