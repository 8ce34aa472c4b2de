//! Links, addresses and routes over rtnetlink: the node's bridge and fallback routes, and one
//! veth pair per pod.
//!
//! Invariants:
//! - One host-side netlink connection, opened when the manager opens, in the netns k1s runs in;
//!   it is driven by a current-thread tokio runtime owned by [`Netlink`], only inside `block_on`,
//!   so nothing here needs the caller's runtime (callers are blocking threads).
//! - Per pod, a connection opened inside the pod's netns (see `namespaces`) is used once and
//!   dropped before `attach_pod` returns: no per-pod socket outlives its set-up.
//! - The host end of a pod's veth is named after the pod's IP (`k1s0a2a0005`), which IPAM makes
//!   unique, so it can be found again after a restart of k1s without any other state.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;

use futures::TryStreamExt;
use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVeth, LinkMessage};
use rtnetlink::packet_route::route::RouteType;
use rtnetlink::{
    Handle, LinkBridge, LinkBridgePort, LinkMessageBuilder, LinkUnspec, LinkVeth,
    RouteMessageBuilder,
};

use super::namespaces::PodNetlink;
use super::{Ipv4Cidr, NetworkConfig, Result, SandboxError};

/// Name of the pod end of every veth, inside the pod's netns.
pub(crate) const POD_IFNAME: &str = "eth0";
/// ifindex of `lo` in every network namespace (the kernel registers it first).
const LOOPBACK_IFINDEX: u32 = 1;
const ENODEV: i32 = 19;
const ESRCH: i32 = 3;
const EEXIST: i32 = 17;

/// Whether `name` is acceptable as a Linux interface name (IFNAMSIZ 16 with the NUL).
pub(crate) fn valid_ifname(name: &str) -> bool {
    (1..=15).contains(&name.len())
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b == 0)
}

/// The host end of the veth of the pod with `ip`.
pub(crate) fn host_veth_name(ip: Ipv4Addr) -> String {
    format!("k1s{:08x}", u32::from(ip))
}

fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => Some(-m.raw_code()),
        _ => None,
    }
}

fn nl(what: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> SandboxError {
    let what = what.into();
    move |source| SandboxError::Netlink { what, source }
}

/// The host-side netlink connection and the runtime that drives it.
pub(crate) struct Netlink {
    rt: OwnRuntime,
    host: Handle,
}

/// A private current-thread runtime that may be dropped anywhere: the manager owning it can end
/// up dropped inside a caller's async task (a kubelet shutting down), where dropping a `Runtime`
/// normally panics because it would block; `shutdown_background` does not wait.
struct OwnRuntime(Option<tokio::runtime::Runtime>);

impl std::ops::Deref for OwnRuntime {
    type Target = tokio::runtime::Runtime;
    fn deref(&self) -> &Self::Target {
        // Only `drop` takes it out.
        self.0.as_ref().expect("netlink runtime present until drop")
    }
}

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

impl Netlink {
    /// Opens the host connection in the calling thread's netns.
    pub(crate) fn open() -> Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(|e| SandboxError::io("starting the netlink runtime", "", e))?;
        let (conn, host, _unsolicited) = {
            let _entered = rt.enter();
            rtnetlink::new_connection().map_err(|e| SandboxError::io("opening netlink", "", e))?
        };
        rt.spawn(conn);
        Ok(Netlink {
            rt: OwnRuntime(Some(rt)),
            host,
        })
    }

    /// The runtime pod connections register with.
    pub(crate) fn runtime(&self) -> &tokio::runtime::Handle {
        self.rt.handle()
    }

    /// Creates (or adopts) the bridge with the gateway address, and the fallback routes.
    /// Idempotent. Returns the bridge's ifindex.
    pub(crate) fn ensure_node(&self, cfg: &NetworkConfig) -> Result<u32> {
        let h = &self.host;
        self.rt.block_on(async {
            let index = match link_index(h, &cfg.bridge).await? {
                Some(i) => i,
                None => {
                    let add = h
                        .link()
                        .add(LinkBridge::new(&cfg.bridge).mtu(cfg.mtu).build())
                        .execute()
                        .await;
                    match add {
                        Ok(()) => {}
                        Err(e) if errno(&e) == Some(EEXIST) => {}
                        Err(e) => return Err(nl(format!("creating bridge {}", cfg.bridge))(e)),
                    }
                    link_index(h, &cfg.bridge).await?.ok_or_else(|| {
                        SandboxError::InvalidConfig(format!("bridge {} vanished", cfg.bridge))
                    })?
                }
            };
            h.link()
                .set(LinkUnspec::new_with_index(index).mtu(cfg.mtu).up().build())
                .execute()
                .await
                .map_err(nl(format!("setting {} up", cfg.bridge)))?;
            h.address()
                .add(index, IpAddr::V4(cfg.gateway()), cfg.node_pod_cidr.prefix())
                .replace()
                .execute()
                .await
                .map_err(nl(format!("adding the gateway address to {}", cfg.bridge)))?;
            for cidr in [cfg.cluster_cidr, cfg.service_cidr] {
                h.route()
                    .add(unreachable(cidr))
                    .replace()
                    .execute()
                    .await
                    .map_err(nl(format!("adding unreachable route {cidr}")))?;
            }
            Ok(index)
        })
    }

    /// Deletes the bridge and the fallback routes; missing ones are fine.
    pub(crate) fn teardown_node(&self, cfg: &NetworkConfig) -> Result<()> {
        let h = &self.host;
        self.rt.block_on(async {
            for cidr in [cfg.cluster_cidr, cfg.service_cidr] {
                match h.route().del(unreachable(cidr)).execute().await {
                    Ok(()) => {}
                    Err(e) if errno(&e) == Some(ESRCH) => {}
                    Err(e) => return Err(nl(format!("deleting unreachable route {cidr}"))(e)),
                }
            }
            delete_link(h, &cfg.bridge).await
        })
    }

    /// Creates the pod's veth pair (host end on the bridge, `eth0` straight in the pod netns),
    /// turns hairpin on for the bridge port, and configures the pod side through `pod`:
    /// loopback up, `eth0` up with `ip`, default route via the gateway. `pod` is closed on return.
    pub(crate) fn attach_pod(
        &self,
        cfg: &NetworkConfig,
        bridge_index: u32,
        netns: &std::fs::File,
        pod: PodNetlink,
        ip: Ipv4Addr,
    ) -> Result<()> {
        let host_name = host_veth_name(ip);
        let peer = LinkMessageBuilder::<LinkUnspec>::new()
            .name(POD_IFNAME)
            .mtu(cfg.mtu)
            .setns_by_fd(netns.as_raw_fd())
            .build();
        let veth = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
            .name(host_name.clone())
            .mtu(cfg.mtu)
            .controller(bridge_index)
            .up()
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
            .build();
        let h = &self.host;
        let PodNetlink { conn, handle: pod } = pod;
        let work = async {
            h.link()
                .add(veth)
                .execute()
                .await
                .map_err(nl(format!("creating veth {host_name}")))?;
            let hairpin = async {
                let port: LinkMessage = LinkBridgePort::new(0)
                    .name(host_name.clone())
                    .hairpin(true)
                    .build();
                h.link()
                    .set_port(port)
                    .execute()
                    .await
                    .map_err(nl(format!("setting hairpin on {host_name}")))
            };
            futures::try_join!(hairpin, configure_pod(&pod, cfg, ip))?;
            Ok(())
        };
        // The pod connection is polled only here; dropping it at the end closes its socket.
        self.rt.block_on(async {
            tokio::select! {
                r = work => r,
                () = conn => Err(SandboxError::InvalidConfig(
                    "the pod's netlink connection closed".into(),
                )),
            }
        })
    }

    /// Deletes the host end of a pod's veth (the pod end goes with it); a missing one is fine.
    pub(crate) fn delete_pod_link(&self, ip: Ipv4Addr) -> Result<()> {
        self.rt
            .block_on(delete_link(&self.host, &host_veth_name(ip)))
    }
}

async fn configure_pod(pod: &Handle, cfg: &NetworkConfig, ip: Ipv4Addr) -> Result<()> {
    let lo = async {
        pod.link()
            .set(LinkUnspec::new_with_index(LOOPBACK_IFINDEX).up().build())
            .execute()
            .await
            .map_err(nl("setting lo up in the pod"))
    };
    let eth0 = async {
        let index = link_index(pod, POD_IFNAME).await?.ok_or_else(|| {
            SandboxError::InvalidConfig(format!("{POD_IFNAME} is missing in the pod netns"))
        })?;
        pod.address()
            .add(index, IpAddr::V4(ip), cfg.node_pod_cidr.prefix())
            .execute()
            .await
            .map_err(nl(format!("adding {ip} to {POD_IFNAME}")))?;
        pod.link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(nl(format!("setting {POD_IFNAME} up")))?;
        pod.route()
            .add(
                RouteMessageBuilder::<Ipv4Addr>::new()
                    .gateway(cfg.gateway())
                    .output_interface(index)
                    .build(),
            )
            .execute()
            .await
            .map_err(nl("adding the pod's default route"))
    };
    futures::try_join!(lo, eth0)?;
    Ok(())
}

fn unreachable(cidr: Ipv4Cidr) -> rtnetlink::packet_route::route::RouteMessage {
    RouteMessageBuilder::<Ipv4Addr>::new()
        .destination_prefix(cidr.network(), cidr.prefix())
        .kind(RouteType::Unreachable)
        .build()
}

async fn link_index(h: &Handle, name: &str) -> Result<Option<u32>> {
    let mut links = h.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(msg)) => Ok(Some(msg.header.index)),
        Ok(None) => Ok(None),
        Err(e) if errno(&e) == Some(ENODEV) => Ok(None),
        Err(e) => Err(nl(format!("looking up link {name}"))(e)),
    }
}

async fn delete_link(h: &Handle, name: &str) -> Result<()> {
    let msg = LinkUnspec::new_with_name(name).build();
    match h.link().del_with_message(msg).execute().await {
        Ok(()) => Ok(()),
        Err(e) if errno(&e) == Some(ENODEV) => Ok(()),
        Err(e) => Err(nl(format!("deleting link {name}"))(e)),
    }
}

impl Netlink {
    /// Puts an existing pod's host veth back on the bridge (after the bridge was re-created),
    /// up, with hairpin on. Idempotent.
    pub(crate) fn reattach_pod(&self, bridge_index: u32, ip: Ipv4Addr) -> Result<()> {
        let name = host_veth_name(ip);
        let h = &self.host;
        self.rt.block_on(async {
            h.link()
                .set(
                    LinkUnspec::new_with_name(&name)
                        .controller(bridge_index)
                        .up()
                        .build(),
                )
                .execute()
                .await
                .map_err(nl(format!("attaching {name} to the bridge")))?;
            h.link()
                .set_port(
                    LinkBridgePort::new(0)
                        .name(name.clone())
                        .hairpin(true)
                        .build(),
                )
                .execute()
                .await
                .map_err(nl(format!("setting hairpin on {name}")))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(host_veth_name(Ipv4Addr::new(10, 42, 0, 5)), "k1s0a2a0005");
        assert!(valid_ifname("k1s0") && valid_ifname(&host_veth_name(Ipv4Addr::BROADCAST)));
        for bad in ["", ".", "..", "a/b", "a b", "sixteen-chars-xx"] {
            assert!(!valid_ifname(bad), "{bad:?}");
        }
    }

    /// The kubelet calls the manager through `spawn_blocking`: driving the private runtime from
    /// a blocking thread of another runtime must work. Read-only: it only looks up `lo`.
    #[tokio::test]
    async fn usable_from_spawn_blocking() {
        let found = tokio::task::spawn_blocking(|| {
            let nl = Netlink::open().unwrap();
            nl.rt.block_on(link_index(&nl.host, "lo")).unwrap()
        })
        .await
        .unwrap();
        assert_eq!(found, Some(LOOPBACK_IFINDEX));
    }
}
