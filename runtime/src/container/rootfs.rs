//! The container's filesystem, built inside its own mount namespace by the init process before
//! `pivot_root`: overlayfs of the image layers with a per-container upper dir, `/proc`, read-only
//! `/sys`, a tmpfs `/dev` with the standard nodes, devpts, shm, mqueue, the sandbox's
//! `/etc/hosts`/`hostname`/`resolv.conf`, the volumes; then masked and read-only paths as
//! containerd sets them.
//!
//! Everything is mounted in the container's private mount namespace, so nothing needs unmounting on
//! the host: the mounts go away with the namespace when the last process in it exits.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::{Mode, SFlag, makedev, mknod};

use super::ContainerError;
use super::spec::ContainerSpec;

/// Paths hidden from non-privileged containers.
pub const MASKED: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths mounted read-only in non-privileged containers.
pub const READONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// `(name, major, minor)` of the device nodes every container gets.
const DEVICES: &[(&str, u64, u64)] = &[
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

fn err(what: &str, path: &Path, e: impl std::fmt::Display) -> ContainerError {
    ContainerError::Setup(format!("{what} {}: {e}", path.display()))
}

fn do_mount(
    src: Option<&str>,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), ContainerError> {
    mount(src, target, fstype, flags, data).map_err(|e| {
        err(
            &format!("mount {}", fstype.or(src).unwrap_or("")),
            target,
            e,
        )
    })
}

/// `path` inside `root`, refusing `..` components (volume targets come from pod specs).
fn inside(root: &Path, path: &str) -> Result<PathBuf, ContainerError> {
    let rel = Path::new(path.trim_start_matches('/'));
    if rel
        .components()
        .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return Err(ContainerError::Spec(format!("bad container path {path:?}")));
    }
    Ok(root.join(rel))
}

/// Creates `target` as a directory or an empty file, like the source it will be bound to.
fn ensure_target(target: &Path, dir: bool) -> Result<(), ContainerError> {
    if std::fs::symlink_metadata(target).is_ok() {
        return Ok(());
    }
    if dir {
        std::fs::create_dir_all(target).map_err(|e| err("mkdir", target, e))
    } else {
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| err("mkdir", parent, e))?;
        }
        std::fs::File::create(target)
            .map(drop)
            .map_err(|e| err("create", target, e))
    }
}

fn bind(src: &Path, target: &Path, readonly: bool) -> Result<(), ContainerError> {
    let is_dir = std::fs::metadata(src)
        .map_err(|e| err("stat", src, e))?
        .is_dir();
    ensure_target(target, is_dir)?;
    do_mount(
        Some(&src.to_string_lossy()),
        target,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )?;
    if readonly {
        do_mount(
            None,
            target,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_REC,
            None,
        )?;
    }
    Ok(())
}

/// Mounts the overlay rootfs on `rootfs` and everything under it. Runs in the new mount namespace.
pub fn prepare(spec: &ContainerSpec, dir: &Path, rootfs: &Path) -> Result<(), ContainerError> {
    // Nothing mounted from here on may propagate back to the host.
    do_mount(
        None,
        Path::new("/"),
        None,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None,
    )?;
    if spec.layers.is_empty() {
        return Err(ContainerError::Spec("no rootfs layers".into()));
    }
    // overlayfs wants the topmost lower layer first.
    let lower: Vec<String> = spec
        .layers
        .iter()
        .rev()
        .map(|l| l.to_string_lossy().replace(',', "\\,").replace(':', "\\:"))
        .collect();
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        dir.join("upper").display(),
        dir.join("work").display()
    );
    do_mount(
        Some("overlay"),
        rootfs,
        Some("overlay"),
        MsFlags::empty(),
        Some(&opts),
    )?;

    let nosuid = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let proc_ = rootfs.join("proc");
    ensure_target(&proc_, true)?;
    do_mount(Some("proc"), &proc_, Some("proc"), nosuid, None)?;
    let sys = rootfs.join("sys");
    ensure_target(&sys, true)?;
    let sys_flags = nosuid | MsFlags::MS_RDONLY;
    if do_mount(Some("sysfs"), &sys, Some("sysfs"), sys_flags, None).is_err() {
        // Without an own network namespace sysfs cannot be mounted: bind the host's read-only.
        bind(Path::new("/sys"), &sys, true)?;
    }
    dev(rootfs)?;

    let etc = rootfs.join("etc");
    for (file, name) in [
        (&spec.hosts_file, "hosts"),
        (&spec.hostname_file, "hostname"),
        (&spec.resolv_conf, "resolv.conf"),
    ] {
        if let Some(src) = file {
            ensure_target(&etc, true)?;
            bind(src, &etc.join(name), false)?;
        }
    }
    for m in &spec.mounts {
        bind(
            &m.host_path,
            &inside(rootfs, &m.container_path)?,
            m.readonly,
        )?;
    }
    Ok(())
}

/// A tmpfs `/dev` with device nodes (bind-mounted from the host where mknod is refused), devpts,
/// shm, mqueue and the usual symlinks.
fn dev(rootfs: &Path) -> Result<(), ContainerError> {
    let dev = rootfs.join("dev");
    ensure_target(&dev, true)?;
    do_mount(
        Some("tmpfs"),
        &dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )?;
    for (name, major, minor) in DEVICES {
        let path = dev.join(name);
        let made = mknod(
            &path,
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            makedev(*major, *minor),
        );
        if made.is_err() {
            bind(&Path::new("/dev").join(name), &path, false)?;
        } else {
            // mknod honours the umask: set the mode the nodes must have.
            nix::sys::stat::fchmodat(
                nix::fcntl::AT_FDCWD,
                &path,
                Mode::from_bits_truncate(0o666),
                nix::sys::stat::FchmodatFlags::FollowSymlink,
            )
            .map_err(|e| err("chmod", &path, e))?;
        }
    }
    let pts = dev.join("pts");
    ensure_target(&pts, true)?;
    do_mount(
        Some("devpts"),
        &pts,
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
    )?;
    let shm = dev.join("shm");
    ensure_target(&shm, true)?;
    do_mount(
        Some("shm"),
        &shm,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=1777,size=65536k"),
    )?;
    let mq = dev.join("mqueue");
    ensure_target(&mq, true)?;
    do_mount(
        Some("mqueue"),
        &mq,
        Some("mqueue"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None,
    )?;
    for (link, to) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("core", "/proc/kcore"),
    ] {
        symlink(to, dev.join(link)).map_err(|e| err("symlink", &dev.join(link), e))?;
    }
    Ok(())
}

/// Makes `rootfs` the root (`pivot_root` with the old root stacked on top and detached).
pub fn pivot(rootfs: &Path) -> Result<(), ContainerError> {
    nix::unistd::chdir(rootfs).map_err(|e| err("chdir", rootfs, e))?;
    nix::unistd::pivot_root(".", ".").map_err(|e| err("pivot_root", rootfs, e))?;
    // The old root is now mounted over the new one at "/": detach it.
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| err("umount old root", rootfs, e))?;
    nix::unistd::chdir("/").map_err(|e| err("chdir", Path::new("/"), e))
}

/// Masked and read-only paths, and a read-only root; after [`pivot`].
/// Creates the working directory when the image lacks it, as runc does (images often name a
/// `WORKDIR` their layers never created). Runs after `pivot_root`, so symlinks in the image resolve
/// inside the container; a failure (read-only rootfs) surfaces later as the `chdir` error.
pub fn create_working_dir(spec: &ContainerSpec) {
    if spec.working_dir.starts_with('/') && !Path::new(&spec.working_dir).exists() {
        let _ = std::fs::create_dir_all(&spec.working_dir);
    }
}

pub fn finish(spec: &ContainerSpec) -> Result<(), ContainerError> {
    if !spec.privileged {
        for p in MASKED {
            let path = Path::new(p);
            match std::fs::metadata(path) {
                Ok(m) if m.is_dir() => do_mount(
                    Some("tmpfs"),
                    path,
                    Some("tmpfs"),
                    MsFlags::MS_RDONLY,
                    Some("size=0"),
                )?,
                Ok(_) => do_mount(Some("/dev/null"), path, None, MsFlags::MS_BIND, None)?,
                Err(_) => {}
            }
        }
        for p in READONLY {
            let path = Path::new(p);
            if path.exists() {
                do_mount(
                    Some(p),
                    path,
                    None,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None,
                )?;
                do_mount(
                    None,
                    path,
                    None,
                    MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_REC,
                    None,
                )?;
            }
        }
    }
    if spec.readonly_rootfs {
        do_mount(
            None,
            Path::new("/"),
            None,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None,
        )?;
    }
    Ok(())
}
