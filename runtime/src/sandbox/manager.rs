//! [`SandboxManager`]: creates, finds and removes pod sandboxes under one root directory.
//!
//! Layout: `<root>/sandboxes/<id>/` per sandbox (see the module docs), `<root>/ipam/` for the
//! allocator. Invariants:
//! - A sandbox is listed only once its `sandbox.json` exists; it is written last in `create` and
//!   deleted first in `remove`, so a crash in either leaves a directory without a record, which
//!   the next [`SandboxManager::open`] tears down (its create never returned, or its removal was
//!   asked for), IPs included, found through IPAM's owner ids.
//! - A sandbox record's address is held in IPAM by that sandbox: `open` re-claims it (a power loss
//!   may have lost the IPAM link, see [`super::ipam`]) before anything is allocated. A record whose
//!   address another sandbox holds (possible only after a power loss on a file system that does not
//!   replay metadata in order) is dead: its removal leaves that address and its veth alone.
//! - A record that cannot be read (a power loss can leave a new file empty) is an unfinished
//!   sandbox: nothing of it can be alive after the reboot that would be needed to lose its data.
//! - Every failure inside `create` undoes what it did before returning the error.
//! - One mutex serialises creates and removes: IPAM's cursor and the directory checks need it.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use super::ipam::Ipam;
use super::netlink::Netlink;
use super::record::Record;
use super::{
    NetworkConfig, Result, Sandbox, SandboxError, SandboxSpec, files, mounts, namespaces, nft,
};

/// Longest sandbox id accepted (pod UIDs are 36 characters).
const MAX_ID_LEN: usize = 128;
/// Longest hostname the kernel accepts (`HOST_NAME_MAX`); Kubernetes caps pod hostnames at 63.
const MAX_HOSTNAME_LEN: usize = 63;

/// Pod sandboxes and the node's pod network. Every method blocks: call it from a blocking thread
/// (`spawn_blocking`), never from a tokio worker.
pub struct SandboxManager {
    root: PathBuf,
    config: NetworkConfig,
    inner: Mutex<Inner>,
}

struct Inner {
    net: Netlink,
    ipam: Ipam,
    bridge_index: u32,
    sandboxes: BTreeMap<String, Record>,
}

impl SandboxManager {
    /// Opens the manager over `root`: sets up the node's network (bridge with the gateway,
    /// unreachable fallback routes, IPv4 forwarding, the masquerade table) in the netns of the
    /// calling thread, finds the sandboxes a previous run left, and tears down unfinished ones.
    pub fn open(root: impl Into<PathBuf>, config: NetworkConfig) -> Result<Self> {
        config.validate()?;
        let root = root.into();
        let sandboxes_dir = root.join("sandboxes");
        std::fs::create_dir_all(&sandboxes_dir)
            .map_err(|e| SandboxError::io("creating", &sandboxes_dir, e))?;
        let root = root
            .canonicalize()
            .map_err(|e| SandboxError::io("resolving", &root, e))?;
        let sandboxes_dir = root.join("sandboxes");
        mounts::ensure_private(&sandboxes_dir)?;

        let net = Netlink::open()?;
        nft::enable_forwarding()?;
        let bridge_index = net.ensure_node(&config)?;
        nft::install(&config)?;
        let ipam = Ipam::open(root.join("ipam"), config.node_pod_cidr)?;

        let manager = SandboxManager {
            root,
            config,
            inner: Mutex::new(Inner {
                net,
                ipam,
                bridge_index,
                sandboxes: BTreeMap::new(),
            }),
        };
        manager.recover()?;
        Ok(manager)
    }

    /// The node's network configuration.
    pub fn config(&self) -> &NetworkConfig {
        &self.config
    }

    /// Where sandbox `id` lives.
    pub fn sandbox_dir(&self, id: &str) -> PathBuf {
        self.root.join("sandboxes").join(id)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves state that `remove`/`open` can still clean up.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn recover(&self) -> Result<()> {
        let dir = self.root.join("sandboxes");
        let entries = std::fs::read_dir(&dir).map_err(|e| SandboxError::io("listing", &dir, e))?;
        let mut inner = self.lock();
        for entry in entries {
            let entry = entry.map_err(|e| SandboxError::io("listing", &dir, e))?;
            let Some(id) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if validate_id(&id).is_err() || !entry.path().is_dir() {
                continue;
            }
            let record = Record::load(&entry.path()).unwrap_or_else(|e| {
                tracing::warn!(sandbox = %id, error = %e, "unreadable sandbox record");
                None
            });
            match record {
                Some(record) => {
                    if let Some(ip) = record.ip {
                        if let Err(e) = inner.ipam.claim(ip, &id) {
                            tracing::warn!(sandbox = %id, error = %e, "cannot re-claim the sandbox's IP");
                        }
                        // The bridge may have been re-created (teardown_node, reboot of the netns).
                        if let Err(e) = inner.net.reattach_pod(inner.bridge_index, ip) {
                            tracing::warn!(sandbox = %id, error = %e, "cannot re-attach the pod's veth");
                        }
                    }
                    inner.sandboxes.insert(id, record);
                }
                None => {
                    tracing::info!(sandbox = %id, "tearing down an unfinished sandbox");
                    self.teardown(&mut inner, &id, None)?;
                }
            }
        }
        Ok(())
    }

    /// Creates a sandbox: namespaces, hostname, network (unless `hostNetwork`), and its files.
    /// Returns once the pod's network is ready.
    pub fn create(&self, spec: &SandboxSpec) -> Result<Sandbox> {
        validate_id(&spec.id)?;
        let hostname = if spec.host_network {
            // hostNetwork pods keep the node's UTS namespace, so their hostname is the node's.
            nix::unistd::gethostname()
                .map_err(|source| SandboxError::Sys {
                    what: "reading the node's hostname",
                    source,
                })?
                .to_string_lossy()
                .into_owned()
        } else {
            validate_hostname(&spec.hostname)?;
            spec.hostname.clone()
        };
        let mut inner = self.lock();
        if inner.sandboxes.contains_key(&spec.id) {
            return Err(SandboxError::AlreadyExists(spec.id.clone()));
        }
        let dir = self.sandbox_dir(&spec.id);
        if dir.exists() {
            // Left by a create that failed half-way and could not clean up: finish that first.
            self.teardown(&mut inner, &spec.id, None)?;
        }
        match self.build(&mut inner, spec, &dir, hostname) {
            Ok(record) => {
                let sandbox = record.sandbox(&dir);
                inner.sandboxes.insert(spec.id.clone(), record);
                Ok(sandbox)
            }
            Err(e) => {
                if let Err(undo) = self.teardown(&mut inner, &spec.id, None) {
                    tracing::warn!(sandbox = %spec.id, error = %undo, "cleaning up a failed create");
                }
                Err(e)
            }
        }
    }

    fn build(
        &self,
        inner: &mut Inner,
        spec: &SandboxSpec,
        dir: &Path,
        hostname: String,
    ) -> Result<Record> {
        let ns_dir = dir.join("ns");
        std::fs::create_dir_all(&ns_dir).map_err(|e| SandboxError::io("creating", &ns_dir, e))?;
        let ip = if spec.host_network {
            None
        } else {
            Some(inner.ipam.allocate(&spec.id)?)
        };
        self.set_up(inner, spec, dir, &hostname, ip)?;
        let record = Record {
            id: spec.id.clone(),
            hostname,
            host_network: spec.host_network,
            ip,
        };
        record.save(dir)?;
        Ok(record)
    }

    /// Namespaces (with the files written meanwhile), then the pod's network.
    fn set_up(
        &self,
        inner: &Inner,
        spec: &SandboxSpec,
        dir: &Path,
        hostname: &str,
        ip: Option<Ipv4Addr>,
    ) -> Result<()> {
        let ns_dir = dir.join("ns");
        let (pod_netlink, files) = namespaces::create_while(
            &ns_dir,
            hostname,
            spec.host_network,
            inner.net.runtime(),
            || write_files(spec, dir, hostname, ip),
        );
        let pod_netlink = pod_netlink?;
        files?;
        if let (Some(ip), Some(pod)) = (ip, pod_netlink) {
            let netns_path = ns_dir.join("net");
            let netns = std::fs::File::open(&netns_path)
                .map_err(|e| SandboxError::io("opening", &netns_path, e))?;
            inner
                .net
                .attach_pod(&self.config, inner.bridge_index, &netns, pod, ip)?;
        }
        Ok(())
    }

    /// Undoes everything a sandbox may hold. With `ip` unknown, IPAM says which addresses `id`
    /// holds. Idempotent.
    fn teardown(&self, inner: &mut Inner, id: &str, ip: Option<Ipv4Addr>) -> Result<()> {
        let ips = match ip {
            // Only an address `id` holds, or nobody does, can have `id`'s veth (see the module docs).
            Some(ip) => match inner.ipam.owner(ip)? {
                Some(owner) if owner != id => {
                    tracing::warn!(sandbox = %id, %ip, %owner, "address now held by another sandbox: left alone");
                    vec![]
                }
                _ => vec![ip],
            },
            None => inner
                .ipam
                .allocations()?
                .into_iter()
                .filter(|(_, owner)| owner == id)
                .map(|(ip, _)| ip)
                .collect(),
        };
        let dir = self.sandbox_dir(id);
        // Deleting a veth and unmounting a namespace each wait for RCU grace periods in the
        // kernel: do both at once.
        let (links, mounts) = std::thread::scope(|scope| {
            let unmount = scope.spawn(|| namespaces::remove(&dir.join("ns")));
            let links = ips.iter().try_for_each(|ip| inner.net.delete_pod_link(*ip));
            let mounts = unmount.join().unwrap_or(Err(SandboxError::ThreadPanicked));
            (links, mounts)
        });
        links?;
        mounts?;
        // Only now that the veth and our hold on the netns are gone can the address go back.
        for ip in &ips {
            inner.ipam.release(*ip, id)?;
        }
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(SandboxError::io("removing", &dir, e)),
        }
    }

    /// The sandbox `id`, if it exists.
    pub fn get(&self, id: &str) -> Option<Sandbox> {
        let inner = self.lock();
        inner
            .sandboxes
            .get(id)
            .map(|r| r.sandbox(&self.sandbox_dir(id)))
    }

    /// Whether sandbox `id` exists and all its namespaces are still held. A sandbox recorded
    /// before a reboot is listed but dead (its namespaces died with the old kernel): the caller
    /// removes it and creates a new one; nothing is reclaimed behind its back.
    pub fn is_alive(&self, id: &str) -> bool {
        self.get(id)
            .is_some_and(|s| s.namespaces.iter().all(|(_, p)| namespaces::is_held(p)))
    }

    /// Every sandbox, by id.
    pub fn list(&self) -> Vec<Sandbox> {
        let inner = self.lock();
        inner
            .sandboxes
            .iter()
            .map(|(id, r)| r.sandbox(&self.sandbox_dir(id)))
            .collect()
    }

    /// Removes sandbox `id`: its veth, namespace mounts, IP and directory. Removing a sandbox
    /// that does not exist is not an error (the kubelet retries removals).
    pub fn remove(&self, id: &str) -> Result<()> {
        validate_id(id)?;
        let mut inner = self.lock();
        let ip = inner.sandboxes.get(id).and_then(|r| r.ip);
        let dir = self.sandbox_dir(id);
        // Record first: if we crash below, the next open finishes the removal.
        let record = dir.join(super::record::FILE);
        match std::fs::remove_file(&record) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(SandboxError::io("removing", &record, e)),
        }
        inner.sandboxes.remove(id);
        self.teardown(&mut inner, id, ip)
    }

    /// Removes the node's network: bridge, fallback routes and masquerade table (for tests and a
    /// clean shutdown). Sandboxes are left alone: remove them first if they are to go too; ones
    /// left are re-attached to the bridge by the next [`SandboxManager::open`].
    pub fn teardown_node(&self) -> Result<()> {
        let inner = self.lock();
        inner.net.teardown_node(&self.config)?;
        nft::remove()
    }
}

/// Writes the sandbox's `hosts`, `hostname` and `resolv.conf`.
fn write_files(spec: &SandboxSpec, dir: &Path, hostname: &str, ip: Option<Ipv4Addr>) -> Result<()> {
    let hosts = if spec.host_network {
        files::host_hosts(hostname)
    } else {
        files::hosts(ip.map(Into::into), hostname)
    };
    let resolv = match &spec.resolv_conf {
        Some(r) => r.clone(),
        None => files::host_resolv_conf(!spec.host_network),
    };
    files::write_atomic(&dir.join("hosts"), hosts.as_bytes())?;
    files::write_atomic(&dir.join("hostname"), format!("{hostname}\n").as_bytes())?;
    files::write_atomic(&dir.join("resolv.conf"), resolv.as_bytes())
}

/// Sandbox ids become directory names and IPAM owner ids: 1..=128 of `[A-Za-z0-9._-]`, not
/// starting with a dot.
fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(SandboxError::InvalidSpec(format!(
            "sandbox id {:?} is not 1..={MAX_ID_LEN} characters of [A-Za-z0-9._-]",
            id.chars().take(MAX_ID_LEN + 1).collect::<String>()
        )))
    }
}

/// A pod hostname: 1..=63 characters of letters, digits, `-` and `.`, not starting or ending
/// with `-` or `.`.
fn validate_hostname(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_HOSTNAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !name.starts_with(['-', '.'])
        && !name.ends_with(['-', '.']);
    if ok {
        Ok(())
    } else {
        Err(SandboxError::InvalidSpec(format!(
            "hostname {:?} is not a valid DNS name of at most {MAX_HOSTNAME_LEN} characters",
            name.chars().take(MAX_HOSTNAME_LEN + 1).collect::<String>()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kubelet shares one manager between blocking tasks.
    #[test]
    fn manager_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<SandboxManager>();
    }

    #[test]
    fn ids_and_hostnames_are_checked() {
        assert!(validate_id("0b6f1c2e-3d4a-4b5c-8d9e-0f1a2b3c4d5e").is_ok());
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "../x",
            ".hidden",
            "a b",
            &"x".repeat(129),
        ] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
        assert!(validate_hostname("web-0").is_ok());
        for bad in ["", "-a", "a-", "a_b", "a b", &"h".repeat(64)] {
            assert!(validate_hostname(bad).is_err(), "{bad:?}");
        }
    }
}
