//! Containers for real (root): the `k1s` binary as shim, a busybox rootfs, cgroups v1 or v2 as the
//! host has them. Each test owns an [`Env`] whose Drop kills and removes its containers and cgroups.

mod runtime_support;

use std::io::Read;
use std::time::{Duration, Instant};

use k1s_runtime::container::{ExecSpec, Phase, Resources, SeccompProfile};
use runtime_support::Env;

const T: Duration = Duration::from_secs(20);

fn stdout_of(env: &Env, id: &str) -> Vec<String> {
    env.log_lines(id)
        .into_iter()
        .filter(|(s, _)| s == "stdout")
        .map(|(_, t)| t)
        .collect()
}

#[test]
fn isolation_pid1_hostname_caps_masks_upper() {
    let env = Env::new("iso");
    let script = "echo pid=$$; hostname; grep CapEff /proc/self/status; \
        echo keys=$(wc -c < /proc/keys) timers=$(wc -c < /proc/timer_list); ls /proc/acpi 2>/dev/null | wc -l | sed 's/^/acpi=/'; \
        (echo 1 > /proc/sys/kernel/domainname) 2>/dev/null && echo sys=rw || echo sys=ro; \
        echo written > /newfile; ls /dev/null /dev/zero /dev/urandom /dev/ptmx /dev/pts/ptmx > /dev/null && echo dev=ok; \
        id -u; mount | grep -c ' / ' | sed 's/^/rootmounts=/'";
    let spec = env.spec("iso", &["sh", "-c", script]);
    env.run(&spec);
    let st = env.mgr.wait("iso").unwrap();
    let out = stdout_of(&env, "iso");
    assert_eq!(st.exit_code, Some(0), "{out:?} {:?}", env.log_lines("iso"));
    assert_eq!(st.reason.as_deref(), Some("Completed"));
    assert!(
        out.contains(&"pid=1".to_string()),
        "{:?}",
        env.log_lines("iso")
    );
    assert!(
        out.contains(&"testpod".to_string()),
        "{:?}",
        env.log_lines("iso")
    );
    assert!(
        out.contains(&"CapEff:\t00000000a80425fb".to_string()),
        "{:?}",
        env.log_lines("iso")
    );
    assert!(
        out.contains(&"keys=0 timers=0".to_string()),
        "{:?}",
        env.log_lines("iso")
    );
    assert!(
        out.contains(&"acpi=0".to_string()),
        "{:?}",
        env.log_lines("iso")
    );
    assert!(
        out.contains(&"sys=ro".to_string()),
        "{:?}",
        env.log_lines("iso")
    );
    assert!(
        out.contains(&"dev=ok".to_string()),
        "{:?}",
        env.log_lines("iso")
    );
    assert!(out.contains(&"0".to_string()), "{:?}", env.log_lines("iso"));
    // The write went to the container's upper dir, not into the image layer.
    let upper = env.tmp.path().join("runtime/containers/iso/upper/newfile");
    assert_eq!(std::fs::read_to_string(upper).unwrap(), "written\n");
    assert!(!env.layer.join("newfile").exists());
}

#[test]
fn privileged_user_readonly_and_mounts() {
    let env = Env::new("priv");
    let vol = env.tmp.path().join("vol");
    std::fs::create_dir(&vol).unwrap();
    std::fs::write(vol.join("data"), "volume\n").unwrap();
    let mut spec = env.spec(
        "ro",
        &[
            "sh",
            "-c",
            "id -u; id -g; grep CapEff /proc/self/status; cat /data/data; \
             (touch /x) 2>/dev/null && echo root=rw || echo root=ro; \
             (touch /data/y) 2>/dev/null && echo vol=rw || echo vol=ro",
        ],
    );
    spec.user = "nobody".into();
    spec.readonly_rootfs = true;
    spec.mounts = vec![k1s_runtime::container::Mount {
        host_path: vol.clone(),
        container_path: "/data".into(),
        readonly: true,
    }];
    env.run(&spec);
    assert_eq!(env.mgr.wait("ro").unwrap().exit_code, Some(0));
    let out = stdout_of(&env, "ro");
    assert_eq!(
        out,
        vec![
            "65534",
            "65534",
            "CapEff:\t0000000000000000",
            "volume",
            "root=ro",
            "vol=ro"
        ],
        "{:?}",
        env.log_lines("ro")
    );

    let mut spec = env.spec("priv", &["sh", "-c", "grep CapEff /proc/self/status; wc -c < /proc/timer_list | grep -vx 0 > /dev/null && echo timers=visible"]);
    spec.privileged = true;
    spec.seccomp = SeccompProfile::Unconfined;
    env.run(&spec);
    assert_eq!(env.mgr.wait("priv").unwrap().exit_code, Some(0));
    let out = stdout_of(&env, "priv");
    assert!(
        out[0].starts_with("CapEff:\t000001ff")
            || out[0].starts_with("CapEff:\t000000ff")
            || out[0].starts_with("CapEff:\t0000003f"),
        "{out:?}"
    );
    assert_eq!(
        out.get(1).map(String::as_str),
        Some("timers=visible"),
        "{out:?}"
    );
}

#[test]
fn rlimits_clamped_env_and_no_new_privs() {
    let env = Env::new("rlim");
    let mut spec = env.spec(
        "rlim",
        &[
            "sh",
            "-c",
            "ulimit -n; grep NoNewPrivs /proc/self/status; echo $GREETING $HOME; pwd",
        ],
    );
    // A hard limit far above what the host allows without CAP_SYS_RESOURCE: clamped, not fatal.
    spec.rlimits = vec![k1s_runtime::container::Rlimit {
        kind: "NOFILE".into(),
        soft: 1000,
        hard: 1 << 30,
    }];
    spec.no_new_privs = true;
    spec.env.push("GREETING=hi".into());
    spec.working_dir = "/tmp".into();
    env.run(&spec);
    assert_eq!(env.mgr.wait("rlim").unwrap().exit_code, Some(0));
    assert_eq!(
        stdout_of(&env, "rlim"),
        vec!["1000", "NoNewPrivs:\t1", "hi /root", "/tmp"],
        "{:?}",
        env.log_lines("rlim")
    );
}

#[test]
fn seccomp_default_blocks_unshare() {
    let env = Env::new("sec");
    // With CAP_SYS_ADMIN granted, only the seccomp profile stands between the process and unshare.
    let mut spec = env.spec(
        "sec",
        &[
            "sh",
            "-c",
            "unshare -U true && echo unshare=ok || echo unshare=denied",
        ],
    );
    spec.cap_add = vec!["SYS_ADMIN".into()];
    spec.seccomp = SeccompProfile::Localhost({
        let p = env.tmp.path().join("deny-unshare.json");
        std::fs::write(
            &p,
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["unshare"],"action":"SCMP_ACT_ERRNO"}]}"#,
        )
        .unwrap();
        p
    });
    env.run(&spec);
    env.mgr.wait("sec").unwrap();
    assert_eq!(stdout_of(&env, "sec"), vec!["unshare=denied"]);

    let spec = env.spec(
        "sec2",
        &[
            "sh",
            "-c",
            "unshare -U true && echo unshare=ok || echo unshare=denied",
        ],
    );
    env.run(&spec);
    env.mgr.wait("sec2").unwrap();
    assert_eq!(stdout_of(&env, "sec2"), vec!["unshare=denied"]);

    let mut spec = env.spec(
        "sec3",
        &[
            "sh",
            "-c",
            "unshare -U true && echo unshare=ok || echo unshare=denied",
        ],
    );
    spec.seccomp = SeccompProfile::Unconfined;
    env.run(&spec);
    env.mgr.wait("sec3").unwrap();
    // Unprivileged user namespaces work on this host: without a filter unshare succeeds.
    assert_eq!(stdout_of(&env, "sec3"), vec!["unshare=ok"]);
}

#[test]
fn exit_codes_and_start_errors() {
    let env = Env::new("exit");
    env.run(&env.spec("e42", &["sh", "-c", "exit 42"]));
    let st = env.mgr.wait("e42").unwrap();
    assert_eq!(
        (st.exit_code, st.reason.as_deref()),
        (Some(42), Some("Error"))
    );
    assert!(st.started_at.is_some() && st.finished_at.is_some());

    env.mgr
        .create(&env.spec("nope", &["/no/such/binary"]))
        .unwrap();
    let err = env.mgr.start("nope").unwrap_err().to_string();
    assert!(
        err.contains("exec") && err.contains("No such file"),
        "{err}"
    );
    let st = env.mgr.wait("nope").unwrap();
    assert_eq!(st.reason.as_deref(), Some("StartError"));

    env.mgr.create(&env.spec("nopath", &["nosuchcmd"])).unwrap();
    let err = env.mgr.start("nopath").unwrap_err().to_string();
    assert!(err.contains("not found in $PATH"), "{err}");

    let mut bad = env.spec("badmount", &["true"]);
    bad.mounts = vec![k1s_runtime::container::Mount {
        host_path: env.tmp.path().join("missing"),
        container_path: "/m".into(),
        readonly: false,
    }];
    let err = env.mgr.create(&bad).unwrap_err().to_string();
    assert!(err.contains("missing"), "{err}");
    assert!(
        env.mgr.status("badmount").is_err(),
        "failed create leaves nothing behind"
    );
}

#[test]
fn tty_container_logs_its_terminal() {
    let env = Env::new("tty");
    let mut spec = env.spec("tty", &["sh", "-c", "tty; echo done"]);
    spec.tty = true;
    env.run(&spec);
    assert_eq!(env.mgr.wait("tty").unwrap().exit_code, Some(0));
    // A pty of the container's own devpts, so the name exists inside (`lines()` drops the \r of
    // the terminal's \r\n).
    let out = stdout_of(&env, "tty");
    assert_eq!(
        out,
        vec!["/dev/pts/0", "done"],
        "{:?}",
        env.log_lines("tty")
    );
}

#[test]
fn long_ids_fit_the_socket_path_limit() {
    let env = Env::new("long");
    let id = "x".repeat(120);
    env.run(&env.spec(&id, &["sh", "-c", "echo long"]));
    assert_eq!(env.mgr.wait(&id).unwrap().exit_code, Some(0));
    assert_eq!(stdout_of(&env, &id), vec!["long"]);
}

#[test]
fn logs_in_cri_format() {
    let env = Env::new("logs");
    env.run(&env.spec(
        "logs",
        &["sh", "-c", "echo out1; echo err1 >&2; printf 'no-newline'"],
    ));
    env.mgr.wait("logs").unwrap();
    let mut lines = env.log_lines("logs");
    lines.sort();
    assert_eq!(
        lines,
        vec![
            ("stderr".to_string(), "err1".to_string()),
            ("stdout".to_string(), "no-newline".to_string()),
            ("stdout".to_string(), "out1".to_string()),
        ]
    );
}

#[test]
fn stop_grace_then_kill() {
    let env = Env::new("stop");
    // PID 1 without a handler ignores SIGTERM: stop must wait the grace period, then SIGKILL.
    env.run(&env.spec("stubborn", &["sleep", "1000"]));
    let t = Instant::now();
    let st = env
        .mgr
        .stop("stubborn", libc::SIGTERM, Duration::from_millis(500))
        .unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(st.exit_code, Some(137));
    assert_eq!(st.phase, Phase::Exited);

    env.run(&env.spec(
        "polite",
        &[
            "sh",
            "-c",
            "trap 'exit 3' TERM; echo ready; while true; do sleep 0.05; done",
        ],
    ));
    env.until(T, "ready", || stdout_of(&env, "polite") == ["ready"]);
    let st = env
        .mgr
        .stop("polite", libc::SIGTERM, Duration::from_secs(10))
        .unwrap();
    assert_eq!(st.exit_code, Some(3));
    env.mgr.remove("polite").unwrap();
    assert!(env.mgr.status("polite").is_err());
}

#[test]
fn memory_hog_is_oom_killed() {
    let env = Env::new("oom");
    let mut spec = env.spec("hog", &["tail", "/dev/zero"]);
    spec.resources = Resources {
        memory_limit_bytes: Some(32 << 20),
        ..Default::default()
    };
    env.run(&spec);
    let st = env.mgr.wait("hog").unwrap();
    assert_eq!(st.exit_code, Some(137));
    assert_eq!(st.reason.as_deref(), Some("OOMKilled"));
}

#[test]
fn fork_bomb_hits_pids_limit() {
    let env = Env::new("pids");
    // The bomb runs in a subshell (busybox sh exits when a fork fails); its sleeps keep running,
    // and the top shell execs (no fork) so the count stays at the limit's edge.
    let mut spec = env.spec(
        "bomb",
        &[
            "sh",
            "-c",
            "(i=0; while [ $i -lt 40 ]; do sleep 1000 & i=$((i+1)); done); echo survived; exec sleep 1000",
        ],
    );
    spec.resources = Resources {
        pids_limit: Some(16),
        cpu_request_millis: Some(100),
        cpu_limit_millis: Some(500),
        ..Default::default()
    };
    env.run(&spec);
    env.until(T, "the bomb to stop", || {
        stdout_of(&env, "bomb") == ["survived"]
    });
    let lines = env.log_lines("bomb");
    assert!(
        lines
            .iter()
            .any(|(s, t)| s == "stderr" && t.contains("can't fork")),
        "{lines:?}"
    );
    let stats = env.mgr.stats("bomb").unwrap();
    assert!((10..=16).contains(&stats.pids), "{stats:?}");
    assert!(
        stats.memory_usage_bytes > 0 && stats.cpu_usage_ns > 0,
        "{stats:?}"
    );
    assert_eq!(env.mgr.status("bomb").unwrap().phase, Phase::Running);
    env.mgr
        .stop("bomb", libc::SIGKILL, Duration::from_secs(5))
        .unwrap();
}

#[test]
fn exec_with_and_without_tty() {
    let env = Env::new("exec");
    env.run(&env.spec("box", &["sleep", "1000"]));
    let mut s = env
        .mgr
        .exec(
            "box",
            &ExecSpec {
                cmd: vec!["sh".into(), "-c".into(), "read x; echo got=$x pid1=$(cat /proc/1/comm) host=$(hostname); echo e >&2; exit 7".into()],
                stdin: true,
                ..Default::default()
            },
        )
        .unwrap();
    use std::io::Write;
    s.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let mut out = String::new();
    s.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let mut err = String::new();
    s.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert_eq!(s.wait().unwrap(), 7);
    assert_eq!(out, "got=hello pid1=sleep host=testpod\n");
    assert_eq!(err, "e\n");

    let s = env
        .mgr
        .exec(
            "box",
            &ExecSpec {
                cmd: vec!["sh".into(), "-c".into(), "read x; stty size; tty".into()],
                tty: true,
                ..Default::default()
            },
        )
        .unwrap();
    s.resize(33, 101).unwrap();
    let mut pty = s.pty.as_ref().unwrap().try_clone().unwrap();
    // The shell reads the size only after this line, so the resize above is what it sees.
    pty.write_all(b"go\n").unwrap();
    let mut text = Vec::new();
    let mut buf = [0u8; 1024];
    // EIO marks the end once the last slave fd closed.
    while let Ok(n) = pty.read(&mut buf) {
        if n == 0 {
            break;
        }
        text.extend_from_slice(&buf[..n]);
    }
    let code = s.wait().unwrap();
    let text = String::from_utf8_lossy(&text);
    assert_eq!(code, 0, "{text:?}");
    assert!(
        text.contains("33 101") && text.contains("/dev/pts/"),
        "{text:?}"
    );

    let err = env
        .mgr
        .exec(
            "box",
            &ExecSpec {
                cmd: vec!["/nope".into()],
                ..Default::default()
            },
        )
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("No such file"), "{err}");
}
