//! A pod's namespaces, created with no holder process.
//!
//! A short-lived dedicated thread `unshare`s new network, IPC and UTS namespaces (these flags
//! affect only the calling thread, so the rest of k1s keeps the host's), sets the pod's hostname
//! in its new UTS namespace, bind-mounts `/proc/thread-self/ns/<kind>` onto `<dir>/<kind>` and
//! ends. The bind mounts keep the namespaces alive until [`remove`] unmounts them.
//!
//! While in the pod's netns the thread also opens a netlink socket: a netlink socket belongs to
//! the netns of the thread that opened it, so that connection configures the inside of the pod
//! (loopback, `eth0`, address, default route). It is dropped once the pod is configured.

use std::path::Path;

use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};
use rtnetlink::packet_route::RouteNetlinkMessage;

use super::{Result, SandboxError, mounts};

/// Every namespace kind a sandbox may hold, in the order they are listed.
pub(crate) const ALL_KINDS: [&str; 3] = ["net", "ipc", "uts"];

/// A netlink connection opened inside a pod's network namespace.
pub(crate) struct PodNetlink {
    pub(crate) conn: rtnetlink::proto::Connection<RouteNetlinkMessage>,
    pub(crate) handle: rtnetlink::Handle,
}

/// The namespace kinds a sandbox gets: `hostNetwork` pods keep the host's network and, as in
/// Kubernetes, its UTS namespace (their hostname is the node's); they get their own IPC.
pub(crate) fn kinds(host_network: bool) -> &'static [&'static str] {
    if host_network { &["ipc"] } else { &ALL_KINDS }
}

/// Creates the namespaces under `dir` (which must exist) on a dedicated thread, and runs
/// `meanwhile` on the calling thread in the meantime (work that does not need the namespaces,
/// such as writing the sandbox's files). Returns a netlink connection inside the new netns
/// unless `host_network`, and `meanwhile`'s result; both finished when this returns. On error
/// some mounts may exist: the caller runs [`remove`].
pub(crate) fn create_while<T>(
    dir: &Path,
    hostname: &str,
    host_network: bool,
    rt: &tokio::runtime::Handle,
    meanwhile: impl FnOnce() -> Result<T>,
) -> (Result<Option<PodNetlink>>, Result<T>) {
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name("k1s-sandbox-ns".into())
            .spawn_scoped(scope, || on_thread(dir, hostname, host_network, rt));
        let other = meanwhile();
        let ns = match thread {
            Ok(t) => t.join().unwrap_or(Err(SandboxError::ThreadPanicked)),
            Err(e) => Err(SandboxError::io(
                "spawning the namespace thread for",
                dir,
                e,
            )),
        };
        (ns, other)
    })
}

fn on_thread(
    dir: &Path,
    hostname: &str,
    host_network: bool,
    rt: &tokio::runtime::Handle,
) -> Result<Option<PodNetlink>> {
    let mut flags = CloneFlags::CLONE_NEWIPC;
    if !host_network {
        flags |= CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWUTS;
    }
    unshare(flags).map_err(|source| SandboxError::Sys {
        what: "unsharing the pod's namespaces",
        source,
    })?;
    if !host_network {
        nix::unistd::sethostname(hostname).map_err(|source| SandboxError::Sys {
            what: "setting the pod's hostname",
            source,
        })?;
    }
    for kind in kinds(host_network) {
        let target = dir.join(kind);
        // A bind mount needs an existing file to mount onto.
        std::fs::File::create(&target).map_err(|e| SandboxError::io("creating", &target, e))?;
        let source = format!("/proc/thread-self/ns/{kind}");
        mount(
            Some(source.as_str()),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|source| SandboxError::Sys {
            what: "bind-mounting a pod namespace",
            source,
        })?;
    }
    if host_network {
        return Ok(None);
    }
    // The socket is registered with the manager's runtime, which drives it from another thread.
    let _entered = rt.enter();
    let (conn, handle, _unsolicited) = rtnetlink::new_connection()
        .map_err(|e| SandboxError::io("opening netlink in the pod netns of", dir, e))?;
    Ok(Some(PodNetlink { conn, handle }))
}

/// Whether `path` still holds a namespace (an nsfs bind mount). After a reboot the files are
/// still there but empty: the namespaces died with the old kernel.
pub(crate) fn is_held(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::NSFS_MAGIC)
}

/// Unmounts and deletes every namespace file under `dir`, and `dir` itself. Idempotent.
pub(crate) fn remove(dir: &Path) -> Result<()> {
    for kind in ALL_KINDS {
        let path = dir.join(kind);
        mounts::unmount(&path)?;
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(SandboxError::io("removing", &path, e)),
        }
    }
    match std::fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(SandboxError::io("removing", dir, e)),
    }
}
