//! Shared pieces of the DNS integration tests: an in-process API server (in-memory store), a DNS
//! client speaking real UDP and TCP to 127.0.0.1, a fake upstream resolver on 127.0.0.1, and a
//! poll-until helper.

#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, Metadata, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use k1s_apiserver::client::Client;
use k1s_apiserver::{ApiConfig, AppState};
use k1s_store::{Store, StoreConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;

/// Bound on one DNS exchange.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound on waiting for a change to show in DNS.
pub const CHANGE_DEADLINE: Duration = Duration::from_secs(10);

/// An API server state with the boot objects, and a client for it.
pub async fn api() -> (AppState, Client) {
    let store = tokio::task::spawn_blocking(|| {
        Store::open(StoreConfig {
            path: None,
            ..Default::default()
        })
    })
    .await
    .expect("store task")
    .expect("opening the in-memory store");
    let state = AppState::new(store, ApiConfig::default());
    k1s_apiserver::crd::rebuild_table(&state);
    k1s_apiserver::bootstrap::run(&state)
        .await
        .unwrap_or_else(|e| panic!("bootstrap: {}", e.0.message));
    state.set_ready();
    let client = Client::new(state.clone(), "dns-test");
    (state, client)
}

/// A query message for `name`/`qtype` with a random-enough id.
pub fn query_message(name: &str, qtype: RecordType) -> Message {
    let mut m = Message::query();
    m.metadata.id = (Instant::now().elapsed().subsec_nanos() & 0xffff) as u16 ^ 0x5a5a;
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(
        Name::from_ascii(name).expect("a valid name"),
        qtype,
    ));
    m
}

/// One exchange over UDP.
pub async fn udp_exchange(server: SocketAddr, bytes: &[u8]) -> Option<Vec<u8>> {
    let sock = UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("binding a UDP client");
    sock.send_to(bytes, server)
        .await
        .expect("sending a UDP query");
    let mut buf = vec![0u8; 65535];
    match tokio::time::timeout(QUERY_TIMEOUT, sock.recv_from(&mut buf)).await {
        Ok(Ok((n, _))) => Some(buf[..n].to_vec()),
        _ => None,
    }
}

/// One exchange over TCP (2-byte length prefix).
pub async fn tcp_exchange(server: SocketAddr, bytes: &[u8]) -> Option<Vec<u8>> {
    let exchange = async {
        let mut s = TcpStream::connect(server).await.ok()?;
        let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(bytes);
        s.write_all(&framed).await.ok()?;
        let mut len = [0u8; 2];
        s.read_exact(&mut len).await.ok()?;
        let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut buf).await.ok()?;
        Some(buf)
    };
    tokio::time::timeout(QUERY_TIMEOUT, exchange)
        .await
        .ok()
        .flatten()
}

/// Asks `server` for `name`/`qtype` over UDP (or TCP) and decodes the answer; panics on no answer.
pub async fn ask(server: SocketAddr, name: &str, qtype: RecordType, tcp: bool) -> Message {
    let q = query_message(name, qtype);
    let bytes = q.to_vec().expect("encoding a query");
    let resp = if tcp {
        tcp_exchange(server, &bytes).await
    } else {
        udp_exchange(server, &bytes).await
    };
    let resp = resp.unwrap_or_else(|| panic!("no answer for {name} {qtype} (tcp: {tcp})"));
    let m = Message::from_vec(&resp).expect("decoding the response");
    assert_eq!(m.metadata.id, q.metadata.id, "response id");
    assert_eq!(m.metadata.message_type, MessageType::Response);
    m
}

/// The answer section's data, rendered and sorted.
pub fn rdata(m: &Message) -> Vec<String> {
    let mut v: Vec<String> = m.answers.iter().map(|r| r.data.to_string()).collect();
    v.sort();
    v
}

/// Polls `check` until it returns true or `deadline` passes (then panics with `what`).
pub async fn wait_for<F, Fut>(what: &str, deadline: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = Instant::now() + deadline;
    loop {
        if check().await {
            return;
        }
        if Instant::now() > end {
            panic!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A fake upstream resolver on 127.0.0.1: `A` records from a fixed table (TTL 60), NXDOMAIN with
/// an SOA (minimum 60) for anything else; it records every name it was asked.
pub struct FakeUpstream {
    pub addr: SocketAddr,
    pub asked: Arc<Mutex<Vec<String>>>,
    stop: CancellationToken,
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl FakeUpstream {
    pub async fn start(table: &[(&str, IpAddr)]) -> FakeUpstream {
        let sock = UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("binding the fake upstream");
        let addr = sock.local_addr().expect("local address");
        let asked = Arc::new(Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        let table: Vec<(String, IpAddr)> =
            table.iter().map(|(n, ip)| (n.to_string(), *ip)).collect();
        let (log, token) = (asked.clone(), stop.clone());
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let (n, peer) = tokio::select! {
                    _ = token.cancelled() => return,
                    r = sock.recv_from(&mut buf) => match r { Ok(r) => r, Err(_) => return },
                };
                let Ok(req) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let Some(q) = req.queries.first().cloned() else {
                    continue;
                };
                let name = q.name().to_lowercase().to_ascii();
                log.lock().unwrap().push(name.clone());
                let mut meta = Metadata::response_from_request(&req.metadata);
                meta.recursion_available = true;
                let mut resp = Message::new(req.metadata.id, MessageType::Response, OpCode::Query);
                resp.metadata = meta;
                resp.add_query(q.clone());
                match table.iter().find(|(n, _)| *n == name) {
                    Some((_, IpAddr::V4(v4))) if q.query_type() == RecordType::A => {
                        resp.add_answer(Record::from_rdata(q.name().clone(), 60, RData::A(A(*v4))));
                    }
                    Some(_) => {}
                    None => {
                        resp.metadata.response_code = ResponseCode::NXDomain;
                        let soa = SOA::new(
                            Name::from_ascii("ns.example.").unwrap(),
                            Name::from_ascii("hostmaster.example.").unwrap(),
                            1,
                            3600,
                            600,
                            86400,
                            60,
                        );
                        resp.add_authority(Record::from_rdata(
                            Name::from_ascii("example.").unwrap(),
                            60,
                            RData::SOA(soa),
                        ));
                    }
                }
                if let Ok(bytes) = resp.to_vec() {
                    let _ = sock.send_to(&bytes, peer).await;
                }
            }
        });
        FakeUpstream { addr, asked, stop }
    }

    /// How many times `name` (lowercase, with trailing dot) was asked.
    pub fn count(&self, name: &str) -> usize {
        self.asked
            .lock()
            .unwrap()
            .iter()
            .filter(|n| *n == name)
            .count()
    }

    /// Every name asked so far.
    pub fn names(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }
}
