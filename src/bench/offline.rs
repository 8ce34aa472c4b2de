//! What the benches need to run offline: set-up tools run with their stderr in the error, a
//! `docker-registry` on 127.0.0.1 to pull from, and a busybox root filesystem (from
//! busybox-static) to run or to pack into an image. Shared by `bench image`, `bench pods` and
//! `bench runtime`.
//!
//! Invariants: the registry listens on a free loopback port and is killed when dropped; its
//! storage and config live under the directory the caller gives it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Runs a set-up tool; its stdout, or an error with its stderr.
pub fn tool(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| {
        format!(
            "running {:?} (see .ci/run for the packages)",
            cmd.get_program()
        )
    })?;
    if !out.status.success() {
        bail!(
            "{:?} failed: {}",
            cmd.get_program(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A `docker-registry` on 127.0.0.1 (plain HTTP); killed on drop.
pub struct Registry {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    child: Child,
}

impl Registry {
    /// Starts a registry storing under `dir/registry` and waits until it listens.
    pub fn start(dir: &Path) -> Result<Registry> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.join("registry.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
                dir.join("registry").display()
            ),
        )?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting docker-registry (apt-get install docker-registry)")?;
        let reg = Registry { addr, child };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&reg.addr).is_err() {
            if Instant::now() > deadline {
                bail!("docker-registry did not listen on {} in 20 s", reg.addr);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(reg)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `dir/rootfs`: busybox plus one symlink per applet, passwd/group for root and nobody, and the
/// usual empty mount points.
pub fn busybox_rootfs(dir: &Path, busybox: &Path) -> Result<PathBuf> {
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("bin"))?;
    std::fs::create_dir_all(root.join("etc"))?;
    std::fs::copy(busybox, root.join("bin/busybox"))
        .with_context(|| format!("{} (apt-get install busybox-static)", busybox.display()))?;
    let list = tool(Command::new(busybox).arg("--list-full"))?;
    for applet in list.lines().filter(|l| !l.is_empty()) {
        let path = root.join(applet);
        if path.symlink_metadata().is_ok() {
            continue;
        }
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p)?;
        }
        std::os::unix::fs::symlink("/bin/busybox", &path)?;
    }
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )?;
    std::fs::write(root.join("etc/group"), "root:x:0:\nnobody:x:65534:\n")?;
    for d in ["proc", "sys", "dev", "tmp", "root"] {
        std::fs::create_dir_all(root.join(d))?;
    }
    Ok(root)
}
