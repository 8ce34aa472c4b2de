//! Runs a test's body in a network namespace of its own, so bridges, veths, routes and nft tables
//! it creates vanish with the namespace and no traffic reaches the host's network.
//!
//! The outer run re-executes the test binary under `unshare --net` for just this test, with a
//! fresh scratch directory as `TMPDIR` (so every temp dir of the inner run lies under it); the
//! inner run brings `lo` up and calls the body with that directory. Afterwards the outer run
//! lazily unmounts anything left mounted under the scratch directory and fails the test if there
//! was any, forwards `FIGURE ...` lines the inner run printed, and reports the inner output when
//! it failed.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

/// Set in the inner run: the scratch directory the outer run made.
const INNER: &str = "K1S_TEST_NETNS_DIR";

/// Runs `body` inside a new network namespace (see the module docs). `test` is the test
/// function's name as the harness knows it (`--exact`).
pub fn in_own_netns(test: &str, body: impl FnOnce(&Path)) {
    if let Some(dir) = std::env::var_os(INNER) {
        let up = Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status()
            .expect("running ip (iproute2)");
        assert!(up.success(), "bringing lo up failed");
        body(Path::new(&dir));
        return;
    }
    let tmp = tempfile::tempdir().expect("creating a scratch dir");
    let out = Command::new("unshare")
        .args(["--net", "--"])
        .arg(std::env::current_exe().expect("current_exe"))
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(INNER, tmp.path())
        .env("TMPDIR", tmp.path())
        .output()
        .expect("running unshare (util-linux)");
    let prefix = tmp.path().to_str().expect("utf-8 temp path");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("reading mountinfo");
    let left: Vec<String> = mounts
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(prefix))
        .map(str::to_string)
        .collect();
    // Deepest first, so nested mounts come off before their parents.
    for m in left.iter().rev() {
        let _ = Command::new("umount").args(["-l", m]).status();
    }
    assert!(
        out.status.success(),
        "{test} failed inside its netns ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(left.is_empty(), "{test} left mounts behind: {left:?}");
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        // The harness prints `test NAME ... ` before the test's own output on that line.
        if let Some(i) = line.find("FIGURE ") {
            println!("{}", &line[i..]);
        }
    }
}

/// The service proxy's table `ip k1s` as `nft list` prints it, if it exists.
pub fn nft_table() -> Option<String> {
    let out = Command::new("nft")
        .args(["list", "table", "ip", "k1s"])
        .output()
        .expect("nft (nftables) must be installed");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}
