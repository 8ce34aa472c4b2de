//! Smoke test of `k1s bench pods` (issue 5): a tiny run end to end, in the netns the bench makes
//! for itself. It checks the bench works and cleans up, not the figures (the bench is not a timed
//! test). Needs root and the Debian packages docker-registry, skopeo, umoci, busybox-static,
//! iproute2 and util-linux (see `.ci/run`).

use std::process::Command;

#[test]
fn bench_pods_small_run_reports_every_step_and_cleans_up() {
    let out = Command::new(env!("CARGO_BIN_EXE_k1s"))
        .args([
            "bench",
            "pods",
            "--pods",
            "3",
            "--burst",
            "3",
            "--idle-pods",
            "1",
        ])
        .args(["--settle", "0s", "--idle", "1s", "--step-timeout", "60s"])
        .args(["--smaps-top", "3"])
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("running k1s bench pods");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "k1s bench pods failed: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    for step in [
        "1. pod start-up, image present: 3 pods",
        "2. 3 pods created at once",
        "3. k1s server RSS with 3 running pods",
        "[with the burst running] smaps_rollup KiB: Rss ",
        "pod shims: 3 processes",
        "4. idle node with 1 pods",
        "summary:",
    ] {
        assert!(stdout.contains(step), "no {step:?} in:\n{stdout}");
    }
    // The bench's temp dirs are named k1s-bench-pods-*; none may be left, nor any shim of them.
    let tmp = std::env::temp_dir();
    let data_dirs: Vec<String> = stdout
        .lines()
        .filter_map(|l| l.split(" on ").nth(1)?.split(';').next())
        .filter(|d| d.contains("k1s-bench-pods-"))
        .map(str::to_owned)
        .collect();
    assert_eq!(data_dirs.len(), 1, "no data dir in:\n{stdout}");
    assert!(
        !std::path::Path::new(&data_dirs[0]).exists(),
        "{} left behind (temp dir {})",
        data_dirs[0],
        tmp.display()
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&data_dirs[0]),
        "mounts under {} left behind",
        data_dirs[0]
    );
}
