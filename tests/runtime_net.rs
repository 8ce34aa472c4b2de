//! `k1s runtime` end to end with images and pod networking: an image built offline is pushed to a
//! real registry on loopback, pulled by `k1s runtime pull`, and run by `k1s runtime run --net` in
//! pod sandboxes on the `k1s0` bridge; one container serves HTTP and another fetches from it by IP.
//!
//! The whole test runs in a network namespace it creates (it re-executes itself under
//! `unshare --net`), so the bridge, veths, routes and nft table vanish with it and no traffic
//! reaches the host's network. Needs: docker-registry, skopeo, umoci, busybox-static, unshare.

#[path = "runtime_support/netns.rs"]
mod netns;
#[path = "../runtime/tests/support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn k1s(data: &Path, registry: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_k1s"));
    cmd.arg("runtime")
        .arg("--data-dir")
        .arg(data)
        .arg("--insecure-registry")
        .arg(registry)
        .env_remove("K1S_DATA_DIR");
    cmd
}

fn ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("running k1s");
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Removes the test's cgroup parent in every hierarchy (its containers are gone by then).
struct CgroupGuard(String);

/// Stops and removes the server container (and so its sandbox), also when the test fails.
struct ContainerGuard<'a> {
    data: &'a Path,
    registry: String,
}

impl Drop for ContainerGuard<'_> {
    fn drop(&mut self) {
        let _ = k1s(self.data, &self.registry)
            .args(["rm", "--force", "web"])
            .output();
    }
}

impl Drop for CgroupGuard {
    fn drop(&mut self) {
        let _ = k1s_runtime::container::cgroup::remove_pod(&self.0);
    }
}

#[test]
fn pull_and_run_networked_containers_from_a_registry() {
    netns::in_own_netns(
        "pull_and_run_networked_containers_from_a_registry",
        |scratch| inner(&scratch.join("data")),
    );
}

fn inner(data: &Path) {
    let registry = support::Registry::start().expect("starting docker-registry");
    registry.push("base", "k1s/busybox:1", false).unwrap();
    let image = format!("{}/k1s/busybox:1", registry.addr);
    let cgroup_parent = format!("k1s-test-net-{}", std::process::id());
    let _cgroups = CgroupGuard(cgroup_parent.clone());
    let _web = ContainerGuard {
        data,
        registry: registry.addr.clone(),
    };

    let pulled = ok(k1s(data, &registry.addr).args(["pull", &image]));
    assert!(
        pulled.contains(&image) || pulled.contains("sha256:"),
        "{pulled}"
    );
    let images = ok(k1s(data, &registry.addr).arg("images"));
    assert!(images.contains(&registry.addr), "{images}");

    // A server container in its own sandbox, left running.
    let mut server = k1s(data, &registry.addr)
        .args([
            "run",
            "--net",
            "--name",
            "web",
            "--cgroup-parent",
            &cgroup_parent,
        ])
        .arg(&image)
        // The image's entrypoint is /bin/sh: as with `docker run`, the arguments replace its Cmd.
        .args([
            "-c",
            "echo served-by-$(hostname) > /tmp/index.html && exec httpd -f -p 8080 -h /tmp",
        ])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stderr.take().unwrap()).lines();
    let ip = loop {
        let line = lines
            .next()
            .expect("k1s runtime run exited before printing the sandbox IP")
            .unwrap();
        if let Some(ip) = line.strip_prefix("k1s runtime run: sandbox web has IP ") {
            break ip.trim().to_string();
        }
    };
    assert!(ip.starts_with("10.42.0."), "{ip}");

    // A client in another sandbox reaches it by pod IP through the bridge (retrying until httpd
    // listens), and sees its own eth0 address.
    let deadline = Instant::now() + Duration::from_secs(20);
    let fetched = loop {
        let out = k1s(data, &registry.addr)
            .args(["run", "--rm", "--net", "--cgroup-parent", &cgroup_parent])
            .arg(&image)
            .args([
                "-c",
                // Debian's busybox-static `wget` segfaults (also on the host), so HTTP by hand.
                &format!(
                    "ip -4 addr show eth0 && printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {ip} 8080"
                ),
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            break text;
        }
        if Instant::now() > deadline {
            let ps = k1s(data, &registry.addr)
                .args(["ps", "-a"])
                .output()
                .unwrap();
            let logs = k1s(data, &registry.addr)
                .args(["logs", "web"])
                .output()
                .unwrap();
            panic!(
                "client never reached {ip}:8080: {text}{}\nps -a: {}\nserver logs: {}{}",
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&ps.stdout),
                String::from_utf8_lossy(&logs.stdout),
                String::from_utf8_lossy(&logs.stderr),
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(fetched.contains("served-by-web"), "{fetched}");
    assert!(fetched.contains("inet 10.42.0."), "{fetched}");
    assert!(
        !fetched.contains(&format!("inet {ip}/")),
        "client has its own IP: {fetched}"
    );

    // ps shows the server; stop and rm remove it and its sandbox.
    let ps = ok(k1s(data, &registry.addr).arg("ps"));
    assert!(ps.contains("web"), "{ps}");
    ok(k1s(data, &registry.addr).args(["stop", "--time", "1", "web"]));
    let status = server.wait().unwrap();
    assert!(!status.success() || status.code() == Some(0), "{status}");
    ok(k1s(data, &registry.addr).args(["rm", "web"]));
    let sandboxes = data.join("runtime").join("sandboxes");
    let left: Vec<_> = std::fs::read_dir(&sandboxes)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "sandboxes left: {left:?}");
    let links = ok(Command::new("ip").args(["-o", "link", "show"]));
    assert!(
        !links.lines().any(|l| l.contains("k1s0a")),
        "veths left: {links}"
    );
}
