//! k1s's in-process cluster DNS: the Kubernetes DNS specification (schema 1.1.0) answered from a
//! compact index of Services and EndpointSlices kept current by list + watch through the in-process
//! client, with every other name forwarded to the host's resolvers through a bounded cache.
//!
//! hickory-server does the wire format and the UDP/TCP serving (FORMERR for undecodable messages,
//! per-connection TCP idle timeout, 64 KiB frame bound); hickory-resolver does forwarding and its
//! caching. Written here by hand: name classification ([`names`]), the index ([`index`]), record
//! building with NXDOMAIN/NODATA semantics ([`answer`]), resolv.conf parsing and the self-loop filter
//! ([`forward`]).
//!
//! Invariants:
//! - names under the cluster domain, and reverse names of cluster addresses, are answered from the
//!   index only and never forwarded;
//! - the server answers from its first list of both resources on; before that, cluster names get
//!   SERVFAIL rather than a wrong NXDOMAIN;
//! - hostile input costs at most one bounded message per UDP datagram or TCP frame, and never panics;
//!   at most `handler::MAX_FORWARDS_IN_FLIGHT` forwarded queries wait on upstreams at once.

pub mod answer;
pub mod forward;
pub mod handler;
pub mod index;
pub mod names;
mod watch;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k1s_apiserver::client::Client;
use socket2::{Domain, Socket, Type};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::answer::Zone;
use crate::forward::Forwarder;
use crate::handler::{Handler, Shared};

/// Record TTL, as CoreDNS's kubernetes plugin answers by default.
pub const DEFAULT_TTL: u32 = 5;
/// A TCP connection that sends no query for this long is closed.
const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Responses queued per TCP connection before the writer applies back-pressure.
const TCP_RESPONSE_BUFFER: usize = 16;
/// How long an upstream resolver has to answer one attempt.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);

/// How the DNS server is set up.
#[derive(Clone, Debug)]
pub struct DnsConfig {
    /// UDP and TCP address; port 0 picks a free port (the same one for both).
    pub listen: SocketAddr,
    /// The cluster domain, e.g. `cluster.local`.
    pub cluster_domain: String,
    /// The `kube-dns` Service IP (never used as an upstream).
    pub cluster_dns: Option<IpAddr>,
    /// The Service range: reverse names inside it are answered here only.
    pub service_cidr: (Ipv4Addr, u8),
    /// Upstream resolvers; `None` reads the `nameserver` lines of `resolv_conf`.
    pub upstreams: Option<Vec<SocketAddr>>,
    /// The host's resolver configuration (default `/etc/resolv.conf`).
    pub resolv_conf: PathBuf,
    /// Record TTL in seconds (also the SOA minimum, so the negative-caching time).
    pub ttl: u32,
    /// Bind even if `listen`'s address is not (yet) on any interface (`IP_FREEBIND`): the server
    /// may start before the pod bridge that carries its address exists.
    pub freebind: bool,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            cluster_domain: "cluster.local".into(),
            cluster_dns: None,
            service_cidr: (Ipv4Addr::new(10, 43, 0, 0), 16),
            upstreams: None,
            resolv_conf: PathBuf::from("/etc/resolv.conf"),
            ttl: DEFAULT_TTL,
            freebind: false,
        }
    }
}

/// Why the DNS server could not start.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("binding DNS on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("{0:?} is not a valid cluster domain")]
    Domain(String),
}

/// A running DNS server.
pub struct DnsServer {
    addr: SocketAddr,
    upstreams: Vec<SocketAddr>,
    task: JoinHandle<()>,
}

impl DnsServer {
    /// Where it listens (UDP and TCP).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The upstream resolvers other names are forwarded to.
    pub fn upstreams(&self) -> &[SocketAddr] {
        &self.upstreams
    }

    /// Waits until the server has stopped (after the shutdown token fired).
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

/// Binds UDP and TCP on `config.listen`, starts watching Services and EndpointSlices through
/// `client`, and serves until `shutdown`.
pub async fn start(
    client: Client,
    config: DnsConfig,
    shutdown: CancellationToken,
) -> Result<DnsServer, DnsError> {
    let serial = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(1);
    let zone = Zone::new(
        &config.cluster_domain,
        config.ttl,
        config.service_cidr,
        serial,
    )
    .ok_or_else(|| DnsError::Domain(config.cluster_domain.clone()))?;
    let (udp, tcp) = bind(config.listen, config.freebind)?;
    let addr = udp.local_addr().map_err(|source| DnsError::Bind {
        addr: config.listen,
        source,
    })?;
    let upstreams = config
        .upstreams
        .clone()
        .unwrap_or_else(|| forward::read_resolv_conf(&config.resolv_conf));
    let upstreams = forward::without_self(upstreams, addr, config.cluster_dns);
    if upstreams.is_empty() {
        tracing::warn!("DNS has no upstream resolvers: names outside the cluster get SERVFAIL");
    }
    let shared = Arc::new(Shared {
        index: RwLock::default(),
        zone,
        forwarder: Forwarder::new(&upstreams, UPSTREAM_TIMEOUT),
        synced: AtomicBool::new(false),
        forward_slots: tokio::sync::Semaphore::new(handler::MAX_FORWARDS_IN_FLIGHT),
    });
    let watcher = tokio::spawn(watch::run(client, shared.clone(), shutdown.clone()));
    let mut server = hickory_server::Server::new(Handler(shared));
    server.register_socket(udp);
    server.register_listener(tcp, TCP_IDLE_TIMEOUT, TCP_RESPONSE_BUFFER);
    let task = tokio::spawn(async move {
        shutdown.cancelled().await;
        if let Err(e) = server.shutdown_gracefully().await {
            tracing::warn!(error = %e, "DNS server stopped with an error");
        }
        let _ = watcher.await;
    });
    tracing::info!(%addr, domain = %config.cluster_domain, ?upstreams, "cluster DNS serving");
    Ok(DnsServer {
        addr,
        upstreams,
        task,
    })
}

/// UDP and TCP on the same address; with port 0, a port free for both.
fn bind(listen: SocketAddr, freebind: bool) -> Result<(UdpSocket, TcpListener), DnsError> {
    let err = |source| DnsError::Bind {
        addr: listen,
        source,
    };
    let mut tries = 0;
    loop {
        let udp = socket(listen, Type::DGRAM, freebind).map_err(err)?;
        let addr = udp
            .local_addr()
            .map_err(err)?
            .as_socket()
            .ok_or_else(|| err(std::io::Error::other("UDP socket has no IP address")))?;
        match socket(addr, Type::STREAM, freebind) {
            Ok(tcp) => {
                return Ok((
                    UdpSocket::from_std(udp.into()).map_err(err)?,
                    TcpListener::from_std(tcp.into()).map_err(err)?,
                ));
            }
            // The port the kernel chose for UDP is taken for TCP: pick another.
            Err(_) if listen.port() == 0 && tries < 10 => tries += 1,
            Err(e) => return Err(err(e)),
        }
    }
}

/// A bound non-blocking socket (listening, for TCP), as tokio's `bind` makes it, plus
/// `IP_FREEBIND` when asked.
fn socket(addr: SocketAddr, ty: Type, freebind: bool) -> std::io::Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), ty, None)?;
    if ty == Type::STREAM {
        // As tokio's TcpListener::bind: a restarted server rebinds at once.
        s.set_reuse_address(true)?;
    }
    if freebind {
        match addr {
            SocketAddr::V4(_) => s.set_freebind_v4(true)?,
            SocketAddr::V6(_) => s.set_freebind_v6(true)?,
        }
    }
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    if ty == Type::STREAM {
        s.listen(1024)?;
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn freebind_binds_an_address_no_interface_has_yet() {
        // TEST-NET-2: on no interface of any test machine. Binding sends nothing.
        let addr: SocketAddr = "198.51.100.7:0".parse().unwrap();
        let err = bind(addr, false).expect_err("bound without freebind");
        assert!(
            matches!(&err, DnsError::Bind { source, .. } if source.kind() == std::io::ErrorKind::AddrNotAvailable),
            "{err}"
        );
        let (udp, tcp) = bind(addr, true).expect("freebind");
        let port = udp.local_addr().unwrap().port();
        assert_ne!(port, 0);
        assert_eq!(tcp.local_addr().unwrap(), SocketAddr::new(addr.ip(), port));
    }
}
