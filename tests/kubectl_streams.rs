//! Streaming commands end to end with stock kubectl (default flags): `exec` (exit codes, stdin,
//! a TTY with resize, `-c`), `cp` both ways, `attach`, `debug` (an ephemeral container) and
//! `run -it --rm`, against a busybox pod
//! run by the kubelet from a registry on loopback.
//!
//! Like `tests/kubelet.rs`, the whole test runs in a network namespace it creates (it
//! re-executes itself under `unshare --net`); containers, sandboxes and cgroups are removed by
//! a guard, also when the test fails.
//! Needs: docker-registry, skopeo, umoci, busybox-static, util-linux (unshare, script), iproute2.

mod common;
#[path = "runtime_support/guard.rs"]
mod guard;
#[path = "runtime_support/netns.rs"]
mod netns;
#[path = "../runtime/tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Cluster, run};

fn pod(image: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: box
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: {image}
    command: ["/bin/sleep", "3600"]
  - name: side
    image: {image}
    command: ["/bin/sh", "-c", "echo side > /tmp/who && exec sleep 3600"]
"#
    )
}

/// Runs `line` through a shell on a pseudo-terminal (util-linux `script`), as a user would.
fn on_tty(c: &Cluster, line: &str, input: Option<&str>) -> common::Output {
    let kubectl = c.kubectl_cmd(&[]);
    let mut cmd = Command::new("script");
    cmd.args(["-qec", line, "/dev/null"]);
    for (k, v) in kubectl.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.current_dir(c.scratch())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    run(cmd, input, Duration::from_secs(60))
}

#[test]
fn kubectl_streams() {
    netns::in_own_netns("kubectl_streams", inner);
}

fn inner(scratch: &Path) {
    let fixture = guard::KubeletFixture::start_in(scratch, "streams");
    let guard::KubeletFixture {
        registry: _registry,
        image,
        cluster,
        ..
    } = fixture;
    let c = &*cluster;
    c.ok_stdin(&["apply", "-f", "-"], &pod(&image));
    c.ok(&["wait", "--for=condition=Ready", "pod/box", "--timeout=90s"]);
    let started = Instant::now();

    // exec: stdout, stderr, exit codes, -c.
    let out = c.kubectl(&[
        "exec",
        "box",
        "-c",
        "main",
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2",
    ]);
    assert!(out.success(), "{out}");
    assert_eq!(out.stdout, "out\n");
    assert_eq!(out.stderr, "err\n");
    let out = c.kubectl(&["exec", "box", "-c", "main", "--", "sh", "-c", "exit 3"]);
    assert_eq!(out.code, Some(3), "{out}");
    assert!(
        out.stderr.contains("command terminated with exit code 3"),
        "{out}"
    );
    assert_eq!(
        c.ok(&["exec", "box", "-c", "side", "--", "cat", "/tmp/who"]),
        "side\n"
    );
    let out = c.kubectl(&["exec", "box", "-c", "nope", "--", "true"]);
    assert!(
        !out.success() && out.stderr.contains("container nope is not valid"),
        "{out}"
    );
    let out = c.kubectl(&["exec", "box", "-c", "main", "--", "/no/such"]);
    assert!(!out.success(), "{out}");

    // exec -i: stdin round trip, ended by EOF.
    let input: String = (0..2000).map(|i| format!("line {i}\n")).collect();
    let out = c.kubectl_stdin(&["exec", "-i", "box", "-c", "main", "--", "cat"], &input);
    assert!(out.success(), "{out}");
    assert_eq!(out.stdout, input);

    // exec -it: a terminal, sized from kubectl's own terminal.
    let kubectl = common::KUBECTL;
    let out = on_tty(
        c,
        &format!(
            "stty rows 33 cols 77; {kubectl} exec -it box -c main -- sh -c \
             'tty; i=0; while [ \"$(stty size)\" != \"33 77\" ] && [ $i -lt 100 ]; do usleep 50000; i=$((i+1)); done; echo size=$(stty size)'"
        ),
        None,
    );
    assert!(out.success(), "{out}");
    assert!(out.stdout.contains("/dev/pts/"), "{out}");
    assert!(out.stdout.contains("size=33 77"), "{out}");
    println!(
        "FIGURE streams: exec (6 kubectl exec runs incl. a tty): {} ms",
        started.elapsed().as_millis()
    );

    // cp both ways (tar through exec), content checked byte for byte.
    let t = Instant::now();
    let local = c.scratch().join("up.bin");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&local, &data).unwrap();
    let local_s = local.to_str().unwrap();
    c.ok(&["cp", local_s, "box:/tmp/up.bin", "-c", "main"]);
    let sum = c.ok(&["exec", "box", "-c", "main", "--", "md5sum", "/tmp/up.bin"]);
    let want = Command::new("md5sum").arg(&local).output().unwrap();
    let want = String::from_utf8_lossy(&want.stdout)
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    assert!(sum.starts_with(&want), "{sum} vs {want}");
    let back = c.scratch().join("down.bin");
    c.ok(&[
        "cp",
        "box:/tmp/up.bin",
        back.to_str().unwrap(),
        "-c",
        "main",
    ]);
    assert_eq!(std::fs::read(&back).unwrap(), data);
    let dir = c.scratch().join("tree");
    c.ok(&[
        "exec",
        "box",
        "-c",
        "side",
        "--",
        "sh",
        "-c",
        "mkdir -p /tmp/t/sub && echo deep > /tmp/t/sub/f",
    ]);
    c.ok(&["cp", "box:/tmp/t", dir.to_str().unwrap(), "-c", "side"]);
    assert_eq!(
        std::fs::read_to_string(dir.join("sub/f")).unwrap(),
        "deep\n"
    );
    println!(
        "FIGURE streams: cp (2 cp up/down of 300 kB, 1 dir): {} ms",
        t.elapsed().as_millis()
    );

    // attach to a container that keeps stdin open (stdinOnce: our EOF is its EOF).
    let t = Instant::now();
    c.ok_stdin(&["apply", "-f", "-"], &echoer(&image));
    c.ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/echoer",
        "--timeout=60s",
    ]);
    let out = c.kubectl_stdin(&["attach", "-i", "echoer"], "a\nb\n");
    assert!(out.success(), "{out}");
    assert!(out.stdout.contains("got a\ngot b\nbye\n"), "{out}");

    // debug: an ephemeral container added to the running pod, in main's PID namespace
    // (--target), attached with stdin; it runs once and is reported in the pod's status.
    let out = c.kubectl_stdin(
        &[
            "debug",
            "-i",
            "box",
            "--image",
            &image,
            "--target=main",
            "-c",
            "debugger",
            "--",
            "sh",
            "-c",
            "read x; echo got-$x; tr '\\0' ' ' < /proc/1/cmdline; echo",
        ],
        "hi\n",
    );
    assert!(out.success(), "{out}");
    assert!(out.stdout.contains("got-hi"), "{out}");
    assert!(out.stdout.contains("/bin/sleep 3600"), "{out}");
    common::eventually(Duration::from_secs(30), "the debugger to exit 0", || {
        c.kubectl(&[
            "get",
            "pod",
            "box",
            "-o",
            "jsonpath={.status.ephemeralContainerStatuses[0].name}:{.status.ephemeralContainerStatuses[0].state.terminated.exitCode}",
        ])
        .stdout
            == "debugger:0"
    });
    let described = c.ok(&["describe", "pod", "box"]);
    assert!(described.contains("Ephemeral Containers:"), "{described}");
    assert!(described.contains("debugger:"), "{described}");
    // The pod itself kept running, with no restart.
    assert_eq!(
        c.ok(&[
            "get",
            "pod",
            "box",
            "-o",
            "jsonpath={.status.phase}/{.status.containerStatuses[*].restartCount}",
        ]),
        "Running/0 0"
    );

    // run -i --rm and run -it --rm: create, attach, delete.
    let out = c.kubectl_stdin(
        &[
            "run",
            "-i",
            "--rm",
            "once",
            "--image",
            &image,
            "--restart=Never",
            "--command",
            "--",
            "sh",
            "-c",
            "read x; echo got-$x",
        ],
        "hi\n",
    );
    assert!(out.success(), "{out}");
    assert!(out.stdout.contains("got-hi"), "{out}");
    let out = on_tty(
        c,
        &format!(
            "{kubectl} run -it --rm term --image {image} --restart=Never --command -- sh -c 'read x; echo got-$x-$(tty)'"
        ),
        Some("yo\n"),
    );
    assert!(out.success(), "{out}");
    assert!(out.stdout.contains("got-yo-/dev/pts/"), "{out}");
    common::eventually(Duration::from_secs(30), "the --rm pods to be gone", || {
        c.kubectl(&["get", "pods", "-o", "name"]).stdout.trim() == "pod/box\npod/echoer"
    });
    println!(
        "FIGURE streams: attach + run -i --rm + run -it --rm: {} ms",
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
