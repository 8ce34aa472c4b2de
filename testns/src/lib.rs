//! Runs a test's body in a network namespace of its own, so the bridges, veths, routes and nft
//! tables it creates vanish with the namespace and none of its traffic reaches the host's network.
//! A dev-dependency of every test crate that touches networking.
//!
//! The outer run re-executes the test binary under `unshare --net` for just this test (`--exact`),
//! with a fresh scratch directory as `TMPDIR`, so every temp dir of the inner run lies under it.
//! The inner run brings `lo` up and calls the body with that directory. Afterwards the outer run
//! lazily unmounts whatever is still mounted under the scratch directory and fails the test if
//! anything was; it forwards the `FIGURE ...` lines the inner run printed, and shows the inner
//! output when the inner run failed.
//!
//! Invariants: the body runs only in the inner run; the scratch directory is removed after the
//! inner run ended, whatever its outcome; a missing tool fails the test with the package to
//! install, never skips it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Set in the inner run: the scratch directory the outer run made.
const INNER: &str = "K1S_TEST_NETNS_DIR";

/// What a test body returns: nothing (it asserts), or a `Result` whose error fails the test.
pub trait Outcome {
    /// Panics with `test`'s name if the body failed.
    fn check(self, test: &str);
}

impl Outcome for () {
    fn check(self, _test: &str) {}
}

impl<E: std::fmt::Debug> Outcome for Result<(), E> {
    fn check(self, test: &str) {
        if let Err(e) = self {
            panic!("{test} (inside its netns) failed: {e:?}");
        }
    }
}

/// Runs `body` inside a new network namespace (see the module docs). `test` is the test
/// function's name as the harness knows it.
pub fn in_own_netns<R: Outcome>(test: &str, body: impl FnOnce(&Path) -> R) {
    if let Some(dir) = std::env::var_os(INNER) {
        let up = Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status()
            .expect("running ip (iproute2)");
        assert!(up.success(), "bringing lo up failed");
        body(Path::new(&dir)).check(test);
        return;
    }
    require_tools(&["unshare", "ip", "umount"]);
    let tmp = tempfile::tempdir().expect("creating a scratch dir");
    let out = Command::new("unshare")
        .args(["--net", "--"])
        .arg(std::env::current_exe().expect("current_exe"))
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(INNER, tmp.path())
        .env("TMPDIR", tmp.path())
        .output()
        .expect("running unshare (util-linux)");
    let left = mounts_under(tmp.path());
    // Deepest last in mountinfo order, so reversed: nested mounts come off before their parents.
    for m in left.iter().rev() {
        let _ = Command::new("umount").arg("-l").arg(m).status();
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

/// Fails the test unless every one of `tools` is on the `PATH`, naming the Debian packages.
pub fn require_tools(tools: &[&str]) {
    for tool in tools {
        let found = std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()));
        assert!(
            found,
            "{tool} is missing: install util-linux, busybox-static, iproute2 and nftables \
             (apt-get install -y util-linux busybox-static iproute2 nftables)"
        );
    }
}

/// Mount points under `dir` (canonicalised), in `/proc/self/mountinfo` order.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let info = std::fs::read_to_string("/proc/self/mountinfo").expect("reading mountinfo");
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(PathBuf::from)
        .filter(|p| p.starts_with(&dir))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes() {
        ().check("t");
        Ok::<(), String>(()).check("t");
        let failed = std::panic::catch_unwind(|| Err::<(), _>("boom").check("t"));
        assert!(failed.is_err());
    }

    #[test]
    fn nothing_is_mounted_under_a_fresh_dir() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(mounts_under(tmp.path()).is_empty());
        assert!(!mounts_under(Path::new("/")).is_empty());
    }
}
