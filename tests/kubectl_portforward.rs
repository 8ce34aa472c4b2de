//! `kubectl port-forward` and the SPDY fallback of `exec`/`cp`/`attach`, end to end with stock
//! kubectl against busybox httpd pods run by the kubelet: port-forward over WebSocket-tunnelled
//! SPDY (kubectl's default) and plain SPDY (`KUBECTL_PORT_FORWARD_WEBSOCKETS=false`), to
//! `pod/`, `deploy/` and `svc/` targets, several ports at once, concurrent connections, a large
//! transfer checked byte for byte, a refused port; then exec (exit codes, stdin, a TTY with
//! resize), cp both ways and attach with `KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false`.
//!
//! Runs in a network namespace it creates (it re-executes itself under `unshare --net`);
//! containers, sandboxes and cgroups are removed by a guard, also when the test fails.
//! Needs: docker-registry, skopeo, umoci, busybox-static, util-linux (unshare, script), iproute2.

mod common;
#[path = "runtime_support/guard.rs"]
mod guard;
#[path = "runtime_support/netns.rs"]
mod netns;
#[path = "../runtime/tests/support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Cluster, run};

/// Lines `1\n` .. `N\n`, the big file the pod serves (made there with `seq`).
const BIG_LINES: u32 = 600_000;

fn big() -> Vec<u8> {
    (1..=BIG_LINES)
        .flat_map(|i| format!("{i}\n").into_bytes())
        .collect()
}

fn manifests(image: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: {image}
        command: ["/bin/sh", "-c", "mkdir -p /a /b && echo port-a > /a/index.html && echo port-b > /b/index.html && seq 1 {BIG_LINES} > /a/big.txt && httpd -p 8080 -h /a && exec httpd -f -p 8081 -h /b"]
        readinessProbe:
          tcpSocket: {{port: 8081}}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {{app: web}}
  ports:
  - name: http
    port: 80
    targetPort: 8080
"#
    )
}

/// A running `kubectl port-forward`: its stdout lines, its stderr when it ends.
struct Forward {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Forward {
    fn start(c: &Cluster, args: &[&str], env: &[(&str, &str)]) -> Forward {
        let mut full = vec!["port-forward"];
        full.extend_from_slice(args);
        let mut cmd = c.kubectl_cmd(&full);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawning kubectl port-forward");
        let out = child.stdout.take().unwrap();
        let mut err = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        Forward {
            child,
            lines,
            stderr: Some(stderr),
        }
    }

    /// The local ports kubectl listens on, one per remote port, in order.
    fn ports(&mut self, remotes: &[u16]) -> Vec<u16> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut found = vec![0u16; remotes.len()];
        while found.contains(&0) {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = self.lines.recv_timeout(left) else {
                let _ = self.child.kill();
                let stderr = self.stderr.take().unwrap().join().unwrap_or_default();
                panic!("port-forward printed no ports: {stderr}");
            };
            // "Forwarding from 127.0.0.1:41234 -> 8080"
            let Some(rest) = line.strip_prefix("Forwarding from 127.0.0.1:") else {
                continue;
            };
            let Some((local, remote)) = rest.split_once(" -> ") else {
                continue;
            };
            if let Some(i) = remotes.iter().position(|r| r.to_string() == remote) {
                found[i] = local.parse().unwrap();
            }
        }
        found
    }

    /// Waits for kubectl to exit by itself; returns its stderr.
    fn wait(mut self) -> String {
        let status = common::wait_deadline(&mut self.child, Duration::from_secs(30));
        if status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let stderr = self.stderr.take().unwrap().join().unwrap();
        assert!(status.is_some(), "port-forward did not exit: {stderr}");
        stderr
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP/1.0 GET through a forwarded local port; the body.
fn get(port: u16, path: &str) -> std::io::Result<Vec<u8>> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n")?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)?;
    let Some(i) = resp.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Err(std::io::Error::other(format!(
            "no HTTP response: {:?}",
            String::from_utf8_lossy(&resp)
        )));
    };
    assert!(
        resp.starts_with(b"HTTP/1.1 200 ") || resp.starts_with(b"HTTP/1.0 200 "),
        "{:?}",
        String::from_utf8_lossy(&resp[..i])
    );
    Ok(resp[i + 4..].to_vec())
}

#[test]
fn kubectl_portforward() {
    netns::in_own_netns("kubectl_portforward", inner);
}

fn inner(scratch: &Path) {
    let fixture = guard::KubeletFixture::start_in(scratch, "portforward");
    let guard::KubeletFixture {
        registry: _registry,
        image,
        cluster,
        ..
    } = fixture;
    let c = &*cluster;
    c.ok_stdin(&["apply", "-f", "-"], &manifests(&image));
    c.ok(&["rollout", "status", "deploy/web", "--timeout=90s"]);
    let pod = c.jsonpath(&["pods", "-l", "app=web"], "{.items[0].metadata.name}");
    let want_big = big();

    // Default flags: SPDY tunnelled in a WebSocket; two ports at once.
    let t = Instant::now();
    let target = format!("pod/{pod}");
    let mut fwd = Forward::start(c, &[&target, ":8080", ":8081"], &[]);
    let ports = fwd.ports(&[8080, 8081]);
    assert_eq!(get(ports[0], "/").unwrap(), b"port-a\n");
    assert_eq!(get(ports[1], "/").unwrap(), b"port-b\n");
    let big_t = Instant::now();
    assert!(
        get(ports[0], "/big.txt").unwrap() == want_big,
        "big file differs"
    );
    let big_ms = big_t.elapsed().as_millis();
    // Concurrent connections on both ports, one of them large.
    let workers: Vec<_> = (0..8)
        .map(|i| {
            let port = ports[i % 2];
            std::thread::spawn(move || {
                let path = if i == 0 { "/big.txt" } else { "/" };
                get(port, path).unwrap()
            })
        })
        .collect();
    for (i, w) in workers.into_iter().enumerate() {
        let body = w.join().unwrap();
        match i {
            0 => assert!(body == want_big, "concurrent big file differs"),
            i if i % 2 == 0 => assert_eq!(body, b"port-a\n"),
            _ => assert_eq!(body, b"port-b\n"),
        }
    }
    drop(fwd);
    println!(
        "FIGURE portforward: websocket tunnel, 2 ports, 11 GETs incl. 2x {} kB: {} ms (one {} kB GET: {big_ms} ms)",
        want_big.len() / 1000,
        t.elapsed().as_millis(),
        want_big.len() / 1000,
    );

    // Plain SPDY, through the deployment.
    let t = Instant::now();
    let spdy = [("KUBECTL_PORT_FORWARD_WEBSOCKETS", "false")];
    let mut fwd = Forward::start(c, &["deploy/web", ":8080"], &spdy);
    let port = fwd.ports(&[8080])[0];
    assert_eq!(get(port, "/").unwrap(), b"port-a\n");
    assert!(
        get(port, "/big.txt").unwrap() == want_big,
        "big file differs over SPDY"
    );
    drop(fwd);
    println!(
        "FIGURE portforward: plain SPDY, 2 GETs incl. {} kB: {} ms",
        want_big.len() / 1000,
        t.elapsed().as_millis()
    );

    // A service: kubectl maps port 80 to the pod's target port 8080 (and prints that one).
    let mut fwd = Forward::start(c, &["svc/web", ":80"], &[]);
    let port = fwd.ports(&[8080])[0];
    assert_eq!(get(port, "/").unwrap(), b"port-a\n");
    drop(fwd);

    // Nothing listens on 9999: the error reaches kubectl, which gives up the forward.
    for env in [&[][..], &spdy[..]] {
        let mut fwd = Forward::start(c, &[&target, ":9999"], env);
        let port = fwd.ports(&[9999])[0];
        assert!(get(port, "/").map(|b| b.is_empty()).unwrap_or(true));
        let stderr = fwd.wait();
        assert!(
            stderr.contains("error forwarding port 9999 to pod")
                && stderr.contains("connection refused")
                && stderr.contains("lost connection to pod"),
            "{stderr}"
        );
    }

    spdy_remote_command(c, &pod, &image);
}

/// exec, cp and attach with kubectl's SPDY fallback forced.
fn spdy_remote_command(c: &Cluster, pod: &str, image: &str) {
    let t = Instant::now();
    let env = [("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false")];
    let kubectl = |args: &[&str], input: Option<&str>| {
        let mut cmd = c.kubectl_cmd(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        run(cmd, input, Duration::from_secs(60))
    };
    let out = kubectl(
        &["exec", pod, "--", "sh", "-c", "echo out; echo err >&2"],
        None,
    );
    assert!(out.success(), "{out}");
    assert_eq!(
        (out.stdout.as_str(), out.stderr.as_str()),
        ("out\n", "err\n")
    );
    let out = kubectl(&["exec", pod, "--", "sh", "-c", "exit 3"], None);
    assert_eq!(out.code, Some(3), "{out}");
    assert!(
        out.stderr.contains("command terminated with exit code 3"),
        "{out}"
    );
    let input: String = (0..2000).map(|i| format!("line {i}\n")).collect();
    let out = kubectl(&["exec", "-i", pod, "--", "cat"], Some(&input));
    assert!(out.success(), "{out}");
    assert_eq!(out.stdout, input);

    // A terminal, sized from kubectl's own (util-linux `script` gives it one).
    let line = format!(
        "stty rows 33 cols 77; KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false {} exec -it {pod} -- sh -c \
         'tty; i=0; while [ \"$(stty size)\" != \"33 77\" ] && [ $i -lt 100 ]; do usleep 50000; i=$((i+1)); done; echo size=$(stty size)'",
        common::KUBECTL
    );
    let kubectl_cmd = c.kubectl_cmd(&[]);
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &line, "/dev/null"]);
    for (k, v) in kubectl_cmd.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.current_dir(c.scratch())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = run(cmd, None, Duration::from_secs(60));
    assert!(out.success(), "{out}");
    assert!(out.stdout.contains("/dev/pts/"), "{out}");
    assert!(out.stdout.contains("size=33 77"), "{out}");

    // cp both ways is tar through exec.
    let local = c.scratch().join("up.bin");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&local, &data).unwrap();
    let remote = format!("{pod}:/tmp/up.bin");
    let out = kubectl(&["cp", local.to_str().unwrap(), &remote], None);
    assert!(out.success(), "{out}");
    let back = c.scratch().join("down.bin");
    let out = kubectl(&["cp", &remote, back.to_str().unwrap()], None);
    assert!(out.success(), "{out}");
    assert!(
        std::fs::read(&back).unwrap() == data,
        "cp round trip differs"
    );

    // attach to a container that reads its stdin (stdinOnce: our EOF is its EOF).
    c.ok_stdin(&["apply", "-f", "-"], &echoer(image));
    c.ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/echoer",
        "--timeout=60s",
    ]);
    let out = kubectl(&["attach", "-i", "echoer"], Some("a\nb\n"));
    assert!(out.success(), "{out}");
    assert!(out.stdout.contains("got a\ngot b\nbye\n"), "{out}");
    println!(
        "FIGURE portforward: SPDY exec x4 (incl. tty), cp up+down 300 kB, attach: {} ms",
        t.elapsed().as_millis()
    );
}

fn echoer(image: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: echoer
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: {image}
    stdin: true
    stdinOnce: true
    command: ["/bin/sh", "-c", "while read l; do echo got $l; done; echo bye"]
"#
    )
}
