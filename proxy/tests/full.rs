//! The full replacement sent as one hand-encoded netlink batch builds the same table as the
//! `nft -f` script of the same ruleset: the test applies both, one after the other, to a network
//! namespace it creates (it re-executes itself under `unshare --net`, so table `ip k1s` never
//! reaches the host) and compares `nft list` of the two, chain by chain and element by element.
//! It also checks that the batch replaces a table already there (restart after a crash).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::process::Command;

use anyhow::{Context, Result, ensure};
use k1s_proxy::apply::Transaction;
use k1s_proxy::assemble::Touched;
use k1s_proxy::model::{Endpoint, Index, Proto, Service, ServicePort, Slice, SlicePort};
use k1s_proxy::netlink::Netlink;
use k1s_proxy::rules::{Params, Ruleset, generate};
use k1s_proxy::{nft, script};

fn service(name: &str, last: u8, f: impl FnOnce(&mut Service)) -> Service {
    let mut s = Service {
        namespace: "default".into(),
        name: name.into(),
        uid: "u".into(),
        created: "2026-01-01T00:00:00Z".into(),
        load_balancer: false,
        cluster_ips: vec![Ipv4Addr::new(10, 43, 0, last)],
        ports: vec![ServicePort {
            name: "http".into(),
            proto: Proto::Tcp,
            port: 80,
            node_port: None,
        }],
        external_ips: vec![],
        lb_ingress: vec![],
        affinity_timeout: None,
        internal_local: false,
        external_local: false,
    };
    f(&mut s);
    s
}

fn slice(first: u8, n: u8, proto: Proto) -> Slice {
    Slice {
        endpoints: (0..n)
            .map(|i| Endpoint {
                ip: Ipv4Addr::new(10, 42, 0, first + i),
                ready: true,
                serving: true,
                terminating: false,
                local: i % 2 == 0,
            })
            .collect(),
        ports: vec![SlicePort {
            name: "http".into(),
            proto,
            port: 8080,
        }],
    }
}

/// Every kind of service without session affinity: cluster IPs, TCP and UDP, node ports,
/// external and load-balancer IPs, Local policies, one without endpoints, one with 300, and the
/// cluster DNS.
fn index() -> Index {
    let mut idx = Index::default();
    let mut add = |s: Service, sl: Option<Slice>| {
        let key: Box<str> = format!("default/{}", s.name).into();
        idx.upsert_service(s);
        if let Some(sl) = sl {
            idx.upsert_slice(key, "s".into(), sl);
        }
    };
    add(service("web", 20, |_| {}), Some(slice(10, 3, Proto::Tcp)));
    add(
        service("udp", 21, |s| s.ports[0].proto = Proto::Udp),
        Some(slice(20, 3, Proto::Udp)),
    );
    add(
        service("np", 22, |s| {
            s.ports[0].node_port = Some(30080);
            s.external_ips = vec![Ipv4Addr::new(192, 0, 2, 7)];
            s.lb_ingress = vec![Ipv4Addr::new(192, 0, 2, 4)];
        }),
        Some(slice(30, 2, Proto::Tcp)),
    );
    add(
        service("local", 23, |s| {
            s.ports[0].node_port = Some(30081);
            s.external_local = true;
            s.internal_local = true;
        }),
        Some(slice(40, 4, Proto::Tcp)),
    );
    add(
        service("empty", 24, |s| s.ports[0].node_port = Some(30082)),
        None,
    );
    // 300 endpoints: `numgen` indices past one byte and endpoint addresses in several /24s, so
    // the typed keys' multi-byte fields are checked against what nft encodes for the same text.
    let mut many = slice(0, 0, Proto::Tcp);
    many.endpoints = (0..300u32)
        .map(|i| Endpoint {
            ip: Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 42, 1, 0)) + i),
            ready: true,
            serving: true,
            terminating: false,
            local: true,
        })
        .collect();
    many.ports[0].port = 65_000;
    add(
        service("many", 25, |s| {
            s.ports[0].port = 443;
            s.ports[0].node_port = Some(32_767);
        }),
        Some(many),
    );
    idx
}

fn params() -> Params {
    Params {
        service_cidr: (Ipv4Addr::new(10, 43, 0, 0), 16),
        sctp: false,
        dns: Some((
            Ipv4Addr::new(10, 43, 0, 10),
            "10.42.0.1:5353".parse().expect("addr"),
        )),
    }
}

fn nft_out(args: &[&str]) -> Result<String> {
    let out = Command::new("nft").args(args).output().context("nft")?;
    ensure!(
        out.status.success(),
        "nft {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The table as nft lists it: the declarations and rules (`-t`: without elements), and every
/// set's elements as a sorted set (their order in a listing follows the kernel's hash seeds).
fn listing() -> Result<(String, BTreeSet<(String, String)>)> {
    let structure = nft_out(&["-t", "list", "table", "ip", "k1s"])?;
    let mut elements = BTreeSet::new();
    for set in [
        "cluster-ips",
        "hairpin",
        "service-ips",
        "service-nodeports",
        "no-endpoint-services",
        "no-endpoint-nodeports",
        "endpoints",
        "nodeport-endpoints",
    ] {
        let kind = if matches!(set, "cluster-ips" | "hairpin") {
            "set"
        } else {
            "map"
        };
        let text = nft_out(&["list", kind, "ip", "k1s", set])?;
        let Some((_, rest)) = text.split_once("elements = {") else {
            continue;
        };
        let body = rest.split('}').next().unwrap_or("");
        for e in body.split(',') {
            let e = e.split_whitespace().collect::<Vec<_>>().join(" ");
            if !e.is_empty() {
                elements.insert((set.to_string(), e));
            }
        }
    }
    Ok((structure, elements))
}

fn apply_batch(rs: &Ruleset, nl: &mut Netlink) -> Result<()> {
    let tx = Transaction::plan(&params(), None, rs, &Touched::default(), true);
    ensure!(
        matches!(tx, Transaction::FullBatch { .. }),
        "this ruleset should be sent as one netlink batch"
    );
    tx.run("nft".as_ref(), nl)?;
    Ok(())
}

#[test]
fn the_netlink_batch_builds_the_table_nft_builds() {
    k1s_testns::require_tools(&["nft"]);
    k1s_testns::in_own_netns("the_netlink_batch_builds_the_table_nft_builds", |_| {
        let (rs, _) = generate(&index(), &params());
        nft::apply("nft".as_ref(), &script::full(&params(), &rs), false)?;
        let (by_nft, elements_nft) = listing()?;
        nft::delete_table("nft".as_ref())?;

        let mut nl = Netlink::default();
        apply_batch(&rs, &mut nl)?;
        let (by_netlink, elements_netlink) = listing()?;
        ensure!(
            elements_nft == elements_netlink,
            "elements differ:\nonly nft: {:?}\nonly netlink: {:?}",
            elements_nft
                .difference(&elements_netlink)
                .collect::<Vec<_>>(),
            elements_netlink
                .difference(&elements_nft)
                .collect::<Vec<_>>()
        );
        ensure!(
            elements_nft.len() > 30,
            "too few elements: {elements_nft:?}"
        );
        ensure!(
            by_nft == by_netlink,
            "listings differ:\n--- nft -f\n{by_nft}\n--- netlink\n{by_netlink}"
        );

        // Over an existing (here: a different) table the batch replaces all of it.
        let mut other = rs.clone();
        other.elements.retain(|(m, _), _| m.name() != "hairpin");
        nft::apply("nft".as_ref(), &script::full(&params(), &other), false)?;
        apply_batch(&rs, &mut nl)?;
        let (again, elements_again) = listing()?;
        ensure!(again == by_netlink && elements_again == elements_netlink);
        nft::delete_table("nft".as_ref())?;
        Ok(())
    });
}
