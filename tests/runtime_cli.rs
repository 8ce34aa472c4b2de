//! `k1s runtime` end to end: `run` streams output and propagates the exit code; killing the
//! process that started a container leaves it running, and a new manager (a restarted k1s) finds
//! it, reads its logs, execs in it and stops it; `attach` feeds a container's stdin and streams its
//! output and exit code.

mod runtime_support;

use std::process::{Command, Stdio};
use std::time::Duration;

use k1s_runtime::container::{ContainerManager, ExecSpec, Phase};
use runtime_support::{Env, shim_exe};

const T: Duration = Duration::from_secs(20);

fn k1s(env: &Env) -> Command {
    let mut cmd = Command::new(shim_exe());
    cmd.arg("runtime")
        .arg("--data-dir")
        .arg(env.tmp.path())
        .env_remove("K1S_DATA_DIR");
    cmd
}

#[test]
fn run_streams_output_and_exit_code() {
    let env = Env::new("cli-run");
    let out = k1s(&env)
        .args([
            "run",
            "--rm",
            "--cgroup-parent",
            &env.cgroup_parent,
            "--rootfs",
        ])
        .arg(&env.layer)
        .args(["sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 5"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "to-stdout\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "to-stderr\n");
    // --rm removed it.
    assert!(env.mgr.list().unwrap().is_empty());
}

#[test]
fn container_survives_its_starter_and_is_found_again() {
    let env = Env::new("cli-restart");
    let mut starter = k1s(&env)
        .args([
            "run",
            "--name",
            "survivor",
            "--cgroup-parent",
            &env.cgroup_parent,
            "--rootfs",
        ])
        .arg(&env.layer)
        .args([
            "sh",
            "-c",
            "echo before; trap 'echo got-term; exit 0' TERM; while true; do sleep 0.05; done",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    env.until(T, "container running", || {
        env.mgr
            .status("survivor")
            .is_ok_and(|s| s.phase == Phase::Running)
    });
    starter.kill().unwrap();
    starter.wait().unwrap();

    // A fresh manager, as a restarted k1s would open it.
    let mgr = ContainerManager::open(&env.tmp.path().join("runtime"), shim_exe()).unwrap();
    let list = mgr.list().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(
        (list[0].id.as_str(), list[0].phase),
        ("survivor", Phase::Running)
    );
    env.until(T, "log line", || {
        env.log_lines("survivor") == [("stdout".to_string(), "before".to_string())]
    });
    let mut s = mgr
        .exec(
            "survivor",
            &ExecSpec {
                cmd: vec!["true".into()],
                ..Default::default()
            },
        )
        .unwrap();
    drop(s.stdout.take());
    assert_eq!(s.wait().unwrap(), 0);
    let st = mgr
        .stop("survivor", libc::SIGTERM, Duration::from_secs(10))
        .unwrap();
    assert_eq!(st.exit_code, Some(0));
    assert!(
        env.log_lines("survivor")
            .contains(&("stdout".to_string(), "got-term".to_string()))
    );

    // `ps -a`, `logs` and `rm` through the CLI see the same state.
    let ps = k1s(&env).args(["ps", "-a"]).output().unwrap();
    let ps = String::from_utf8_lossy(&ps.stdout);
    assert!(
        ps.lines()
            .any(|l| l.starts_with("survivor") && l.contains("exited")),
        "{ps}"
    );
    let logs = k1s(&env).args(["logs", "survivor"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&logs.stdout), "before\ngot-term\n");
    let rm = k1s(&env).args(["rm", "survivor"]).output().unwrap();
    assert!(rm.status.success(), "{rm:?}");
    assert!(mgr.list().unwrap().is_empty());
}

#[test]
fn attach_feeds_stdin_and_streams_output() {
    let env = Env::new("cli-attach");
    let mut spec = env.spec(
        "attached",
        &[
            "sh",
            "-c",
            "read line; echo got-$line; echo err-$line >&2; exit 3",
        ],
    );
    spec.stdin = true;
    spec.stdin_once = true;
    env.run(&spec);
    let mut attach = k1s(&env)
        .args(["attach", "attached"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = attach.stdin.take().unwrap();
        stdin.write_all(b"hello\n").unwrap();
    }
    // Should stdin never arrive, the container would wait for it forever: kill it after T, so
    // the test fails on the exit code instead of hanging.
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn({
        let mgr = ContainerManager::open(&env.tmp.path().join("runtime"), shim_exe()).unwrap();
        move || {
            if finished.recv_timeout(T).is_err() {
                let _ = mgr.kill("attached", libc::SIGKILL);
            }
        }
    });
    let out = attach.wait_with_output().unwrap();
    let _ = done.send(());
    watchdog.join().unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "got-hello\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err-hello\n");
    env.mgr.remove("attached").unwrap();
}
