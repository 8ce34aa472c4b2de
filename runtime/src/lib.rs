//! k1s's built-in container runtime, used in-process by the kubelet and by `k1s runtime`.
//!
//! - [`image`]: pull OCI images from Distribution-v2 registries into a content store under the data
//!   dir, unpack their layers (hostile tars stay inside their directory), import archives, GC.
//! - [`sandbox`]: a pod's namespaces (net, ipc, uts) held open by nsfs bind mounts, and its network:
//!   the `k1s0` bridge, one veth per pod over netlink, persisted IPAM, fallback routes.
//! - [`container`]: containers run by a per-pod shim (the `k1s` binary re-executed): rootfs on
//!   overlayfs, process setup (capabilities, seccomp, user, rlimits), cgroups v1/v2, CRI-format logs,
//!   exec, lifecycle and re-attachment after a restart of k1s.
//!
//! Everything here is synchronous or runs on its own threads and processes: async callers use
//! `spawn_blocking`. Nothing forks from a tokio worker.

pub mod container;
pub mod image;
pub mod sandbox;
