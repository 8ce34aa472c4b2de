//! The DNS server against an in-process API server, over real UDP and TCP sockets on 127.0.0.1:
//! Services and EndpointSlices created through the in-process client show up as A, SRV, PTR and
//! CNAME records, changes show up within a short wait, negative answers are NXDOMAIN or NODATA as
//! the specification says, other names go to a fake upstream on 127.0.0.1 (cached, never for
//! cluster names), and hostile input leaves the server answering.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use k1s_apiserver::client::{Client, Gvr};
use k1s_dns::{DnsConfig, DnsServer};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const SERVICES: Gvr = Gvr::new("", "v1", "services");
const SLICES: Gvr = Gvr::new("discovery.k8s.io", "v1", "endpointslices");

struct Harness {
    client: Client,
    dns: Option<DnsServer>,
    addr: SocketAddr,
    upstream: FakeUpstream,
    shutdown: CancellationToken,
}

impl Harness {
    async fn start() -> Harness {
        let (_state, client) = api().await;
        let upstream =
            FakeUpstream::start(&[("outside.example.", "192.0.2.7".parse().unwrap())]).await;
        let shutdown = CancellationToken::new();
        let dns = k1s_dns::start(
            client.clone(),
            DnsConfig {
                upstreams: Some(vec![upstream.addr]),
                ..Default::default()
            },
            shutdown.clone(),
        )
        .await
        .expect("starting DNS");
        let addr = dns.local_addr();
        assert_eq!(dns.upstreams(), [upstream.addr]);
        // Served once both informers have listed: the `kubernetes` Service resolves.
        wait_for("the kubernetes Service in DNS", CHANGE_DEADLINE, || async {
            let m = ask(
                addr,
                "kubernetes.default.svc.cluster.local.",
                RecordType::A,
                false,
            )
            .await;
            rdata(&m) == ["10.43.0.1"]
        })
        .await;
        Harness {
            client,
            dns: Some(dns),
            addr,
            upstream,
            shutdown,
        }
    }

    async fn create(&self, gvr: Gvr, obj: Value) {
        let ns = obj["metadata"]["namespace"].as_str().map(str::to_string);
        self.client
            .create(gvr, ns.as_deref(), &obj)
            .await
            .unwrap_or_else(|e| panic!("creating {}: {}", obj["metadata"]["name"], e.message));
    }

    async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(dns) = self.dns.take() {
            tokio::time::timeout(Duration::from_secs(10), dns.wait())
                .await
                .expect("DNS stops within 10 s of shutdown");
        }
    }
}

fn slice(name: &str, service: &str, endpoints: Value, ports: Value) -> Value {
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": name, "namespace": "default",
                     "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": ports,
    })
}

/// Waits until `name`/`qtype` answers exactly `want` (sorted rdata).
async fn wait_rdata(addr: SocketAddr, name: &str, qtype: RecordType, want: &[&str]) {
    wait_for(
        &format!("{name} {qtype} = {want:?}"),
        CHANGE_DEADLINE,
        || async {
            let m = ask(addr, name, qtype, false).await;
            rdata(&m) == want
        },
    )
    .await;
}

async fn wait_rcode(addr: SocketAddr, name: &str, qtype: RecordType, want: ResponseCode) {
    wait_for(
        &format!("{name} {qtype} → {want}"),
        CHANGE_DEADLINE,
        || async { ask(addr, name, qtype, false).await.metadata.response_code == want },
    )
    .await;
}

fn assert_negative(m: &Message, rcode: ResponseCode) {
    assert_eq!(m.metadata.response_code, rcode);
    assert!(m.answers.is_empty(), "no answers: {:?}", m.answers);
    assert!(
        m.authorities
            .iter()
            .any(|r| matches!(&r.data, RData::SOA(soa) if soa.minimum == 5)),
        "an SOA with minimum 5 in the authority section: {:?}",
        m.authorities
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_endpoints_and_forwarding() {
    let h = Harness::start().await;
    let addr = h.addr;

    // A ClusterIP service with a TCP and a UDP port.
    h.create(SERVICES, json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"clusterIP": "10.43.0.20", "ports": [
            {"name": "http", "port": 80, "protocol": "TCP"}, {"name": "dns", "port": 53, "protocol": "UDP"}]}
    }))
    .await;
    wait_rdata(
        addr,
        "web.default.svc.cluster.local.",
        RecordType::A,
        &["10.43.0.20"],
    )
    .await;
    for tcp in [false, true] {
        let m = ask(addr, "WEB.Default.SVC.cluster.LOCAL.", RecordType::A, tcp).await;
        assert_eq!(rdata(&m), ["10.43.0.20"], "case-insensitive, tcp: {tcp}");
        assert!(m.metadata.authoritative);
        assert_eq!(m.answers[0].ttl, 5);
    }
    let srv = ask(
        addr,
        "_http._tcp.web.default.svc.cluster.local.",
        RecordType::SRV,
        true,
    )
    .await;
    assert_eq!(rdata(&srv), ["0 100 80 web.default.svc.cluster.local."]);
    assert_eq!(rdata_of(&srv.additionals), ["10.43.0.20"]);
    let udp = ask(
        addr,
        "_dns._udp.web.default.svc.cluster.local.",
        RecordType::SRV,
        false,
    )
    .await;
    assert_eq!(rdata(&udp), ["0 100 53 web.default.svc.cluster.local."]);
    let wrong_proto = ask(
        addr,
        "_dns._tcp.web.default.svc.cluster.local.",
        RecordType::SRV,
        false,
    )
    .await;
    assert_negative(&wrong_proto, ResponseCode::NXDomain);
    let ptr = ask(addr, "20.0.43.10.in-addr.arpa.", RecordType::PTR, false).await;
    assert_eq!(rdata(&ptr), ["web.default.svc.cluster.local."]);
    // Exists with another type: NODATA; does not exist: NXDOMAIN; both with the SOA.
    let aaaa = ask(
        addr,
        "web.default.svc.cluster.local.",
        RecordType::AAAA,
        false,
    )
    .await;
    assert_negative(&aaaa, ResponseCode::NoError);
    let missing = ask(
        addr,
        "nothing.default.svc.cluster.local.",
        RecordType::A,
        false,
    )
    .await;
    assert_negative(&missing, ResponseCode::NXDomain);
    let wrong_port = ask(
        addr,
        "_grpc._tcp.web.default.svc.cluster.local.",
        RecordType::SRV,
        false,
    )
    .await;
    assert_negative(&wrong_port, ResponseCode::NXDomain);
    let unused_ip = ask(addr, "99.0.43.10.in-addr.arpa.", RecordType::PTR, false).await;
    assert_negative(&unused_ip, ResponseCode::NXDomain);

    // A headless service with endpoints: one ready with a hostname, one ready, one not ready.
    h.create(SERVICES, json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "db", "namespace": "default"},
        "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}]}
    }))
    .await;
    wait_rcode(
        addr,
        "db.default.svc.cluster.local.",
        RecordType::A,
        ResponseCode::NXDomain,
    )
    .await;
    h.create(
        SLICES,
        slice(
            "db-a",
            "db",
            json!([
                {"addresses": ["10.42.0.7"], "hostname": "db-0", "conditions": {"ready": true}},
                {"addresses": ["10.42.0.8"], "conditions": {"ready": true}},
                {"addresses": ["10.42.0.9"], "conditions": {"ready": false}}
            ]),
            json!([{"name": "pg", "port": 5432, "protocol": "TCP"}]),
        ),
    )
    .await;
    wait_rdata(
        addr,
        "db.default.svc.cluster.local.",
        RecordType::A,
        &["10.42.0.7", "10.42.0.8"],
    )
    .await;
    let pet = ask(
        addr,
        "db-0.db.default.svc.cluster.local.",
        RecordType::A,
        true,
    )
    .await;
    assert_eq!(rdata(&pet), ["10.42.0.7"]);
    let srv = ask(
        addr,
        "_pg._tcp.db.default.svc.cluster.local.",
        RecordType::SRV,
        false,
    )
    .await;
    assert_eq!(
        rdata(&srv),
        [
            "0 100 5432 10-42-0-8.db.default.svc.cluster.local.",
            "0 100 5432 db-0.db.default.svc.cluster.local."
        ]
    );
    let ptr = ask(addr, "7.0.42.10.in-addr.arpa.", RecordType::PTR, false).await;
    assert_eq!(rdata(&ptr), ["db-0.db.default.svc.cluster.local."]);
    // The not-ready endpoint becomes ready: it shows up.
    h.client
        .update(SLICES, &{
            let mut s = h
                .client
                .get(SLICES, Some("default"), "db-a")
                .await
                .expect("get slice")
                .expect("slice exists");
            s["endpoints"][2]["conditions"]["ready"] = json!(true);
            s
        })
        .await
        .expect("updating the slice");
    wait_rdata(
        addr,
        "db.default.svc.cluster.local.",
        RecordType::A,
        &["10.42.0.7", "10.42.0.8", "10.42.0.9"],
    )
    .await;

    // Pod records ("pods insecure").
    let pod = ask(
        addr,
        "10-42-0-5.default.pod.cluster.local.",
        RecordType::A,
        false,
    )
    .await;
    assert_eq!(rdata(&pod), ["10.42.0.5"]);

    // ExternalName: the CNAME, and its target resolved upstream.
    h.create(
        SERVICES,
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "ext", "namespace": "default"},
            "spec": {"type": "ExternalName", "externalName": "outside.example"}
        }),
    )
    .await;
    wait_for("the ExternalName CNAME", CHANGE_DEADLINE, || async {
        let m = ask(addr, "ext.default.svc.cluster.local.", RecordType::A, false).await;
        rdata(&m) == ["192.0.2.7", "outside.example."]
    })
    .await;

    // Forwarding, with positive and negative caching.
    let before = h.upstream.count("outside.example.");
    for _ in 0..3 {
        let m = ask(addr, "outside.example.", RecordType::A, false).await;
        assert_eq!(rdata(&m), ["192.0.2.7"]);
        assert!(!m.metadata.authoritative);
    }
    assert!(
        h.upstream.count("outside.example.") <= before.max(1),
        "answers come from the cache: asked {} times",
        h.upstream.count("outside.example.")
    );
    for _ in 0..3 {
        let m = ask(addr, "missing.example.", RecordType::A, false).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    }
    assert_eq!(
        h.upstream.count("missing.example."),
        1,
        "NXDOMAIN is cached"
    );
    // Reverse names outside the cluster ranges are forwarded too.
    let m = ask(addr, "7.2.0.192.in-addr.arpa.", RecordType::PTR, false).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(h.upstream.count("7.2.0.192.in-addr.arpa."), 1);
    // Nothing about the cluster ever reached the upstream.
    let leaked: Vec<String> = h
        .upstream
        .names()
        .into_iter()
        .filter(|n| {
            n.ends_with("cluster.local.")
                || n.ends_with("43.10.in-addr.arpa.")
                || n.ends_with("42.10.in-addr.arpa.")
        })
        .collect();
    assert!(
        leaked.is_empty(),
        "cluster names were forwarded: {leaked:?}"
    );

    // Deleting the service: NXDOMAIN, and its PTR is gone.
    h.client
        .delete(SERVICES, Some("default"), "web", None)
        .await
        .expect("deleting web");
    wait_rcode(
        addr,
        "web.default.svc.cluster.local.",
        RecordType::A,
        ResponseCode::NXDomain,
    )
    .await;
    let ptr = ask(addr, "20.0.43.10.in-addr.arpa.", RecordType::PTR, false).await;
    assert_negative(&ptr, ResponseCode::NXDomain);

    h.stop().await;
}

fn rdata_of(records: &[hickory_proto::rr::Record]) -> Vec<String> {
    let mut v: Vec<String> = records.iter().map(|r| r.data.to_string()).collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_never_stops_the_server() {
    let h = Harness::start().await;
    let addr = h.addr;
    let good = || async {
        let m = ask(
            addr,
            "kubernetes.default.svc.cluster.local.",
            RecordType::A,
            false,
        )
        .await;
        assert_eq!(rdata(&m), ["10.43.0.1"]);
    };

    // Too short for a header: dropped, no answer.
    assert_eq!(udp_exchange(addr, &[1, 2, 3]).await, None);
    // A header claiming questions that are not there: FORMERR.
    let mut truncated = query_message("kubernetes.default.svc.cluster.local.", RecordType::A)
        .to_vec()
        .unwrap();
    truncated.truncate(20);
    let resp = udp_exchange(addr, &truncated)
        .await
        .expect("an answer to a truncated query");
    assert_eq!(
        Message::from_vec(&resp).unwrap().metadata.response_code,
        ResponseCode::FormErr
    );
    // Two questions: FORMERR.
    let mut two = query_message("a.default.svc.cluster.local.", RecordType::A);
    two.add_query(two.queries[0].clone());
    let resp = udp_exchange(addr, &two.to_vec().unwrap())
        .await
        .expect("an answer");
    assert_eq!(
        Message::from_vec(&resp).unwrap().metadata.response_code,
        ResponseCode::FormErr
    );
    // Random garbage of every size up to a jumbo datagram.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for len in [12usize, 13, 64, 512, 4096, 60_000] {
        let junk: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let _ = sock.send_to(&junk, addr).await;
        let _ = tcp_exchange(addr, &junk[..junk.len().min(65_535)]).await;
    }
    // A TCP client that announces a 64 KiB frame and sends a few bytes, and one that sends nothing:
    // they hold a connection, not the server.
    let mut half = tokio::net::TcpStream::connect(addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut half, &[0xff, 0xff, 1, 2, 3])
        .await
        .unwrap();
    let _idle = tokio::net::TcpStream::connect(addr).await.unwrap();
    // Queries of a class we do not serve are refused; zone transfers too.
    let mut chaos = query_message("version.bind.", RecordType::TXT);
    chaos.queries[0].set_query_class(hickory_proto::rr::DNSClass::CH);
    let resp = udp_exchange(addr, &chaos.to_vec().unwrap())
        .await
        .expect("an answer");
    assert_eq!(
        Message::from_vec(&resp).unwrap().metadata.response_code,
        ResponseCode::Refused
    );
    let axfr = ask(addr, "cluster.local.", RecordType::AXFR, true).await;
    assert_eq!(axfr.metadata.response_code, ResponseCode::Refused);

    good().await;
    let m = ask(
        addr,
        "kubernetes.default.svc.cluster.local.",
        RecordType::A,
        true,
    )
    .await;
    assert_eq!(rdata(&m), ["10.43.0.1"]);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_headless_answers_truncate_over_udp_and_fit_over_tcp() {
    let h = Harness::start().await;
    let addr = h.addr;
    h.create(
        SERVICES,
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "big", "namespace": "default"},
            "spec": {"clusterIP": "None"}
        }),
    )
    .await;
    let endpoints: Vec<Value> = (1..=200)
        .map(|i| json!({"addresses": [format!("10.42.{}.{}", i / 250, i % 250 + 1)]}))
        .collect();
    h.create(SLICES, slice("big-a", "big", json!(endpoints), json!([])))
        .await;
    wait_for("200 endpoints over TCP", CHANGE_DEADLINE, || async {
        ask(addr, "big.default.svc.cluster.local.", RecordType::A, true)
            .await
            .answers
            .len()
            == 200
    })
    .await;
    let udp = ask(addr, "big.default.svc.cluster.local.", RecordType::A, false).await;
    assert!(
        udp.metadata.truncation,
        "a 200-record answer does not fit 512 bytes of UDP"
    );
    assert!(udp.answers.len() < 200);
    h.stop().await;
}
