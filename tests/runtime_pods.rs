//! Pods under one shim, for real (root): containers of a pod share a shim that outlives any one
//! of them and leaves with the last; attach to a container's stdin and output (pipes and tty);
//! a shared PID namespace on request and private ones otherwise.

mod runtime_support;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use k1s_runtime::container::Phase;
use runtime_support::Env;

const T: Duration = Duration::from_secs(20);

/// Whether `pid` is gone or a zombie (daemonised shims are reparented to whatever reaps here).
fn dead(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

/// Reads `r` until `needle` shows up (or fails at the deadline / EOF); returns what was read.
fn read_until(r: &mut std::fs::File, needle: &str) -> String {
    let deadline = Instant::now() + T;
    let mut text = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&text).contains(needle) {
        assert!(Instant::now() < deadline, "no {needle:?} in {text:?}");
        match r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => text.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&text).into_owned();
    assert!(text.contains(needle), "no {needle:?} in {text:?}");
    text
}

#[test]
fn one_shim_per_pod_leaves_with_its_last_container() {
    let env = Env::new("podshim");
    env.run(&env.spec("a", &["sleep", "1000"]));
    env.run(&env.spec("b", &["sleep", "1000"]));
    let mut solo = env.spec("solo", &["sleep", "1000"]);
    solo.pod_id = String::new();
    env.run(&solo);
    let (a, b, s) = (
        env.mgr.status("a").unwrap(),
        env.mgr.status("b").unwrap(),
        env.mgr.status("solo").unwrap(),
    );
    assert_eq!(a.shim_pid, b.shim_pid, "one shim for the pod");
    assert_ne!(
        a.shim_pid, s.shim_pid,
        "a container without a pod has its own"
    );
    assert!(a.shim_pid > 0 && !dead(a.shim_pid));

    // The second container is as much the shim's child as the first: exec and logs work.
    let (code, out) = env.exec_output("b", &["sh", "-c", "echo $$ $(hostname)"]);
    assert_eq!(code, 0);
    assert!(out.ends_with(" testpod\n"), "{out:?}");

    // The shim stays while any container of the pod is left, exited or not.
    let st = env
        .mgr
        .stop("a", libc::SIGKILL, Duration::from_secs(5))
        .unwrap();
    assert_eq!(st.exit_code, Some(128 + libc::SIGKILL));
    env.mgr.remove("a").unwrap();
    assert!(!dead(b.shim_pid), "shim left with a container still there");
    assert_eq!(env.mgr.status("b").unwrap().phase, Phase::Running);
    env.mgr
        .stop("b", libc::SIGKILL, Duration::from_secs(5))
        .unwrap();
    assert!(!dead(b.shim_pid), "an exited container keeps its shim");
    env.mgr.remove("b").unwrap();
    env.until(T, "the pod shim to exit", || dead(b.shim_pid));
    let shims = env.tmp.path().join("runtime/shims");
    assert!(!shims.join("pod-pod1").exists(), "pod shim dir removed");

    // A new container of the same pod gets a new shim.
    env.run(&env.spec("c", &["sh", "-c", "echo again"]));
    let c = env.mgr.wait("c").unwrap();
    assert_eq!(c.exit_code, Some(0));
    assert_ne!(c.shim_pid, b.shim_pid);
    assert!(!dead(s.shim_pid), "the solo container's shim is untouched");
    env.mgr
        .stop("solo", libc::SIGKILL, Duration::from_secs(5))
        .unwrap();
    env.mgr.remove("solo").unwrap();
    env.until(T, "the solo shim to exit", || dead(s.shim_pid));
    assert!(!shims.join("ctr-solo").exists());
}

#[test]
fn attach_writes_stdin_and_reads_output() {
    let env = Env::new("attach");
    let mut spec = env.spec("cat", &["sh", "-c", "cat; echo bye >&2"]);
    spec.stdin = true;
    spec.stdin_once = true;
    env.run(&spec);
    let mut s = env.mgr.attach("cat").unwrap();
    assert!(!s.tty);
    let mut stdin = s.stdin.take().expect("stdin kept open");
    stdin.write_all(b"hello through the shim\n").unwrap();
    read_until(&mut s.stdout, "hello through the shim\n");
    // stdin_once: a second attacher gets output but no stdin.
    let mut second = env.mgr.attach("cat").unwrap();
    assert!(second.stdin.is_none());
    // Closing the first attacher's stdin is EOF for cat.
    drop(stdin);
    let st = env.mgr.wait("cat").unwrap();
    assert_eq!(st.exit_code, Some(0));
    let mut err = String::new();
    second
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(err, "bye\n");
    let mut rest = String::new();
    s.stdout.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "", "stdout ends with the container");
    let logged: Vec<String> = env.log_lines("cat").into_iter().map(|(_, t)| t).collect();
    assert_eq!(logged, vec!["hello through the shim", "bye"]);
    assert!(env.mgr.attach("cat").is_err(), "no attach to an exited one");

    // Without `stdin` the container reads /dev/null and attachers get no stdin.
    env.run(&env.spec("nostdin", &["sh", "-c", "cat; sleep 1000"]));
    let s = env.mgr.attach("nostdin").unwrap();
    assert!(s.stdin.is_none());
    env.mgr
        .stop("nostdin", libc::SIGKILL, Duration::from_secs(5))
        .unwrap();
}

#[test]
fn attach_to_a_tty_with_resize() {
    let env = Env::new("attachtty");
    let mut spec = env.spec("term", &["sh", "-c", "read x; stty size; echo got=$x; tty"]);
    spec.stdin = true;
    spec.tty = true;
    env.run(&spec);
    let mut s = env.mgr.attach("term").unwrap();
    assert!(s.tty && s.stderr.is_none());
    s.resize(41, 97).unwrap();
    let mut pty = s.stdin.take().unwrap();
    pty.write_all(b"go\n").unwrap();
    let text = read_until(&mut s.stdout, "/dev/pts/0");
    assert!(text.contains("41 97"), "{text:?}");
    assert!(text.contains("got=go"), "{text:?}");
    assert_eq!(env.mgr.wait("term").unwrap().exit_code, Some(0));
}

/// `ps` output of a container that lists every process it can see.
fn visible_processes(env: &Env, id: &str, share: bool, pod: &str) -> Vec<String> {
    let mut spec = env.spec(id, &["ps", "-o", "pid,args"]);
    spec.pod_id = pod.into();
    spec.share_process_namespace = share;
    env.run(&spec);
    assert_eq!(env.mgr.wait(id).unwrap().exit_code, Some(0));
    env.log_lines(id).into_iter().map(|(_, t)| t).collect()
}

#[test]
fn shared_pid_namespace_only_on_request() {
    let env = Env::new("pidns");
    for (id, pod, share) in [("s1", "shared", true), ("p1", "private", false)] {
        let mut spec = env.spec(id, &["sleep", "4242"]);
        spec.pod_id = pod.into();
        spec.share_process_namespace = share;
        env.run(&spec);
    }
    let seen = visible_processes(&env, "s2", true, "shared");
    assert!(
        seen.iter().any(|l| l.ends_with("sleep 4242")),
        "the other container's process is visible: {seen:?}"
    );
    assert!(
        seen.iter().any(|l| l.trim_start().starts_with("1 ")),
        "PID 1 is the pod's pause: {seen:?}"
    );
    let seen = visible_processes(&env, "p2", false, "private");
    assert!(
        !seen.iter().any(|l| l.contains("sleep")),
        "a private namespace shows only its own: {seen:?}"
    );
    assert!(
        seen.iter().any(|l| l.trim_start().starts_with("1 ps")),
        "{seen:?}"
    );
    // A shared-namespace container may not be PID 1, and signals still reach it.
    let st = env
        .mgr
        .stop("s1", libc::SIGTERM, Duration::from_secs(5))
        .unwrap();
    assert_eq!(st.exit_code, Some(128 + libc::SIGTERM));
}

#[test]
fn a_new_manager_finds_a_pods_containers_and_drives_its_shim() {
    let env = Env::new("podreopen");
    env.run(&env.spec("one", &["sleep", "1000"]));
    env.run(&env.spec("two", &["sh", "-c", "echo ready; exec sleep 1000"]));
    let shim = env.mgr.status("one").unwrap().shim_pid;
    // A restarted k1s: a fresh manager on the same root, nothing in memory.
    let again = k1s_runtime::container::ContainerManager::open(
        &env.tmp.path().join("runtime"),
        runtime_support::shim_exe(),
    )
    .unwrap();
    let found = again.list().unwrap();
    let running: Vec<(&str, i32)> = found
        .iter()
        .filter(|c| c.phase == Phase::Running)
        .map(|c| (c.id.as_str(), c.shim_pid))
        .collect();
    assert_eq!(running, vec![("one", shim), ("two", shim)]);
    // It creates a third container in the same shim and stops the others through it.
    let mut third = env.spec("three", &["sh", "-c", "echo third"]);
    third.pod_id = "pod1".into();
    again.create(&third).unwrap();
    again.start("three").unwrap();
    let st = again.wait("three").unwrap();
    assert_eq!((st.exit_code, st.shim_pid), (Some(0), shim));
    let st = again
        .stop("two", libc::SIGKILL, Duration::from_secs(5))
        .unwrap();
    assert_eq!(st.exit_code, Some(128 + libc::SIGKILL));
    env.until(T, "two's log", || {
        env.log_lines("two").iter().any(|(_, t)| t == "ready")
    });
}

/// `RssFile:` of `/proc/PID/status`, KiB: the file-backed pages (the `k1s` executable, libc) the
/// process has mapped.
fn rss_file_kb(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| {
            l.strip_prefix("RssFile:")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap()
}

#[test]
fn an_idle_shim_sheds_its_start_up_pages_and_keeps_working() {
    let env = Env::new("shed");
    env.run(&env.spec(
        "talker",
        &[
            "sh",
            "-c",
            "i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.1; done",
        ],
    ));
    let shim = env.mgr.status("talker").unwrap().shim_pid;
    let started = rss_file_kb(shim);
    // Output alone keeps the shim settled: it sheds within about a second of its last request.
    env.until(T, "the shim to drop its clean file pages", || {
        rss_file_kb(shim) * 2 < started
    });
    let ticks = |env: &Env| {
        env.log_lines("talker")
            .iter()
            .filter(|(s, l)| s == "stdout" && l.starts_with("tick "))
            .count()
    };
    let before = ticks(&env);
    env.until(T, "more log lines after shedding", || {
        ticks(&env) > before + 2
    });

    // Requests after shedding refault what they need: exec, a new container, stop.
    let (code, out) = env.exec_output("talker", &["echo", "still here"]);
    assert_eq!((code, out.as_str()), (0, "still here\n"));
    env.run(&env.spec("quick", &["sh", "-c", "exit 7"]));
    let st = env.mgr.wait("quick").unwrap();
    assert_eq!((st.exit_code, st.shim_pid), (Some(7), shim));
    env.mgr
        .stop("talker", libc::SIGKILL, Duration::from_secs(5))
        .unwrap();
    let st = env.mgr.wait("talker").unwrap();
    assert_eq!((st.phase, st.exit_code), (Phase::Exited, Some(137)));
}
