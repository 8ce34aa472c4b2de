//! The service range's route while the service proxy runs.
//!
//! The runtime gives `--service-cidr` an *unreachable* fallback route so nothing addressed to a
//! ClusterIP can leave through the default route. Pods' packets are DNAT'd in the proxy's
//! prerouting hook, before their route lookup, so they never see it; but a process on the host
//! looks the route up in `connect()`, before the output hook's DNAT, and fails with "no route to
//! host". So while the proxy runs, the range is routed onto the pod bridge instead: the host's
//! connections pass the route lookup, the output hook DNATs them (and rejects unallocated
//! ClusterIPs), and anything left un-NATed still stays on the node's bridge. A clean stop puts the
//! unreachable route back.

use std::net::Ipv4Addr;

use futures::TryStreamExt;
use k1s_runtime::sandbox::Ipv4Cidr;
use rtnetlink::packet_route::route::{RouteScope, RouteType};
use rtnetlink::{Handle, RouteMessageBuilder};

/// Why the route could not be changed.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error("opening a netlink socket: {0}")]
    Socket(#[source] std::io::Error),
    #[error("the pod bridge {0} does not exist")]
    NoBridge(String),
    #[error("netlink: {0}")]
    Netlink(#[from] rtnetlink::Error),
}

async fn with_handle<T>(
    f: impl AsyncFnOnce(&Handle) -> Result<T, RouteError>,
) -> Result<T, RouteError> {
    let (conn, handle, _) = rtnetlink::new_connection().map_err(RouteError::Socket)?;
    let conn = tokio::spawn(conn);
    let out = f(&handle).await;
    conn.abort();
    out
}

/// Routes `service_cidr` onto `bridge` (scope link, source = the bridge's `gateway`), replacing
/// the unreachable fallback route.
pub async fn via_bridge(
    bridge: &str,
    gateway: Ipv4Addr,
    service_cidr: Ipv4Cidr,
) -> Result<(), RouteError> {
    with_handle(async |h| {
        let mut links = h.link().get().match_name(bridge.to_string()).execute();
        let index = links
            .try_next()
            .await?
            .ok_or_else(|| RouteError::NoBridge(bridge.to_string()))?
            .header
            .index;
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(service_cidr.network(), service_cidr.prefix())
            .output_interface(index)
            .pref_source(gateway)
            .scope(RouteScope::Link)
            .build();
        h.route().add(route).replace().execute().await?;
        Ok(())
    })
    .await
}

/// Puts the unreachable fallback route for `service_cidr` back.
pub async fn unreachable(service_cidr: Ipv4Cidr) -> Result<(), RouteError> {
    with_handle(async |h| {
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(service_cidr.network(), service_cidr.prefix())
            .kind(RouteType::Unreachable)
            .build();
        h.route().add(route).replace().execute().await?;
        Ok(())
    })
    .await
}
