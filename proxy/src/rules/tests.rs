//! Generation tests: structure of the ruleset for each feature, and the rendered scripts checked by
//! the kernel (`nft -f` inside a throwaway network namespace made with `unshare --net`).

use std::net::Ipv4Addr;
use std::process::Command;

use super::*;
use crate::model::{Endpoint, Service, ServicePort, Slice, SlicePort};
use crate::script;

fn params() -> Params {
    Params {
        service_cidr: (Ipv4Addr::new(10, 43, 0, 0), 16),
        sctp: true,
        dns: Some((
            Ipv4Addr::new(10, 43, 0, 10),
            "10.42.0.1:53".parse().unwrap(),
        )),
    }
}

fn svc(name: &str, ip: [u8; 4], ports: &[(&str, Proto, u16, Option<u16>)]) -> Service {
    Service {
        namespace: "default".into(),
        name: name.into(),
        uid: "u".into(),
        created: "2026-01-01T00:00:00Z".into(),
        load_balancer: false,
        cluster_ips: vec![Ipv4Addr::from(ip)],
        ports: ports
            .iter()
            .map(|(n, proto, port, np)| ServicePort {
                name: (*n).into(),
                proto: *proto,
                port: *port,
                node_port: *np,
            })
            .collect(),
        external_ips: vec![],
        lb_ingress: vec![],
        affinity_timeout: None,
        internal_local: false,
        external_local: false,
    }
}

fn ep(last: u8, ready: bool, terminating: bool, local: bool) -> Endpoint {
    Endpoint {
        ip: Ipv4Addr::new(10, 42, 0, last),
        ready,
        serving: ready || terminating,
        terminating,
        local,
    }
}

fn slice(eps: Vec<Endpoint>, ports: &[(&str, Proto, u16)]) -> Slice {
    Slice {
        endpoints: eps,
        ports: ports
            .iter()
            .map(|(n, proto, port)| SlicePort {
                name: (*n).into(),
                proto: *proto,
                port: *port,
            })
            .collect(),
    }
}

fn web_index() -> Index {
    let mut idx = Index::default();
    idx.upsert_service(svc(
        "web",
        [10, 43, 0, 5],
        &[
            ("http", Proto::Tcp, 80, Some(30080)),
            ("dns", Proto::Udp, 53, None),
        ],
    ));
    idx.upsert_slice(
        "default/web".into(),
        "web-a".into(),
        slice(
            vec![ep(5, true, false, true), ep(6, true, false, true)],
            &[("http", Proto::Tcp, 8080), ("dns", Proto::Udp, 5353)],
        ),
    );
    idx
}

#[test]
fn cluster_ip_balances_over_ready_endpoints() {
    let (rs, problems) = generate(&web_index(), &params());
    assert!(problems.is_empty(), "{problems:?}");
    let el = |m: Map, k: &str| rs.element_texts().get(&(m, k.to_string())).cloned();
    // Both ports have two endpoints: their entries go to the shared chain for two, which picks
    // index 0 or 1 of the entry's elements in the endpoint map.
    let tcp80 = "10.43.0.5 . tcp . 80";
    assert_eq!(el(Map::ServiceIps, tcp80).unwrap(), "goto dnat-2");
    assert_eq!(
        el(Map::Endpoints, &format!("{tcp80} . 0")).unwrap(),
        "10.42.0.5 . 8080"
    );
    assert_eq!(
        el(Map::Endpoints, &format!("{tcp80} . 1")).unwrap(),
        "10.42.0.6 . 8080"
    );
    assert_eq!(el(Map::Endpoints, &format!("{tcp80} . 2")), None);
    assert_eq!(
        el(Map::ServiceIps, "10.43.0.5 . udp . 53").unwrap(),
        "goto dnat-2"
    );
    assert_eq!(
        el(Map::Endpoints, "10.43.0.5 . udp . 53 . 1").unwrap(),
        "10.42.0.6 . 5353"
    );
    assert_eq!(
        rs.chains["dnat-2"],
        vec![
            "dnat ip to ip daddr . meta l4proto . th dport . numgen random mod 2 map @endpoints"
                .to_string()
        ]
    );
    // No affinity: no per-service or endpoint chains, but hairpin pairs for each endpoint.
    assert!(
        !rs.chains
            .keys()
            .any(|c| c.starts_with("svc-") || c.starts_with("ep-"))
    );
    assert!(
        rs.element_texts()
            .contains_key(&(Map::Hairpin, "10.42.0.5 . 10.42.0.5".to_string()))
    );
    assert_eq!(
        el(Map::ServiceNodeports, "tcp . 30080").unwrap(),
        "goto np-dnat-2"
    );
    assert_eq!(
        el(Map::NodeportEndpoints, "tcp . 30080 . 0").unwrap(),
        "10.42.0.5 . 8080"
    );
    assert_eq!(
        rs.chains["np-dnat-2"],
        vec![
            "jump mark-for-masquerade".to_string(),
            "dnat ip to meta l4proto . th dport . numgen random mod 2 map @nodeport-endpoints"
                .to_string()
        ]
    );
    assert!(rs.cluster_ips.contains(&Ipv4Addr::new(10, 43, 0, 5)));
    // DNS: the kube-dns IP goes to the DNS server's address.
    assert_eq!(
        rs.chains["dns-udp"],
        vec!["meta l4proto udp dnat to 10.42.0.1:53".to_string()]
    );
}

#[test]
fn terminating_endpoints_only_without_ready_ones() {
    let mut idx = web_index();
    idx.upsert_slice(
        "default/web".into(),
        "web-a".into(),
        slice(
            vec![ep(5, true, false, true), ep(7, false, true, true)],
            &[("http", Proto::Tcp, 8080)],
        ),
    );
    let (rs, _) = generate(&idx, &params());
    let tcp80 = |i: usize| (Map::Endpoints, format!("10.43.0.5 . tcp . 80 . {i}"));
    assert_eq!(rs.element_texts()[&tcp80(0)], "10.42.0.5 . 8080");
    assert!(!rs.element_texts().contains_key(&tcp80(1)));
    idx.upsert_slice(
        "default/web".into(),
        "web-a".into(),
        slice(
            vec![ep(7, false, true, true), ep(8, false, false, true)],
            &[("http", Proto::Tcp, 8080)],
        ),
    );
    let (rs, _) = generate(&idx, &params());
    assert_eq!(rs.element_texts()[&tcp80(0)], "10.42.0.7 . 8080");
    assert!(!rs.element_texts().contains_key(&tcp80(1)));
    assert_eq!(
        rs.element_texts()[&(Map::ServiceIps, "10.43.0.5 . tcp . 80".to_string())],
        "goto dnat-1"
    );
}

#[test]
fn no_endpoints_reject_and_unresolved_names_are_reported() {
    let mut idx = web_index();
    idx.upsert_slice(
        "default/web".into(),
        "web-a".into(),
        slice(
            vec![ep(5, true, false, true)],
            &[("other", Proto::Tcp, 8080)],
        ),
    );
    let (rs, problems) = generate(&idx, &params());
    assert_eq!(
        rs.element_texts()[&(Map::NoEndpointServices, "10.43.0.5 . tcp . 80".to_string())],
        format!("goto {REJECT_CHAIN}")
    );
    assert_eq!(
        rs.element_texts()[&(Map::NoEndpointNodeports, "tcp . 30080".to_string())],
        format!("goto {REJECT_CHAIN}")
    );
    assert!(
        !rs.chains
            .keys()
            .any(|c| c.starts_with("svc-") || c.starts_with("ep-"))
    );
    let reasons: Vec<_> = problems.iter().map(|p| p.reason).collect();
    assert_eq!(reasons, vec!["PortNotResolved", "PortNotResolved"]);
}

#[test]
fn local_policies_and_affinity() {
    let mut idx = Index::default();
    let mut s = svc("web", [10, 43, 0, 5], &[("", Proto::Tcp, 80, Some(30080))]);
    s.internal_local = true;
    s.external_local = true;
    s.affinity_timeout = Some(60);
    s.external_ips = vec![Ipv4Addr::new(192, 0, 2, 7)];
    idx.upsert_service(s);
    idx.upsert_slice(
        "default/web".into(),
        "a".into(),
        slice(
            vec![ep(5, true, false, true), ep(6, true, false, false)],
            &[("", Proto::Tcp, 8080)],
        ),
    );
    let (rs, _) = generate(&idx, &params());
    let e5 = "ep-default/web/tcp/80__10.42.0.5/8080";
    assert_eq!(
        rs.chains["svc-default/web/tcp/80"],
        vec![
            format!("ip saddr @aff-default/web/tcp/80__10.42.0.5/8080-60 goto {e5}"),
            format!("goto {e5}")
        ]
    );
    assert_eq!(
        rs.chains["ext-default/web/tcp/80"][0],
        "ip saddr 127.0.0.0/8 jump mark-for-masquerade"
    );
    assert_eq!(
        rs.chains[e5],
        vec![
            "update @aff-default/web/tcp/80__10.42.0.5/8080-60 { ip saddr }".to_string(),
            "meta l4proto tcp dnat to 10.42.0.5:8080".to_string()
        ]
    );
    assert_eq!(rs.sets.len(), 1);
    assert_eq!(
        rs.element_texts()[&(Map::ServiceIps, "192.0.2.7 . tcp . 80".to_string())],
        "goto ext-default/web/tcp/80"
    );
    assert!(
        !rs.chains
            .contains_key("ep-default/web/tcp/80__10.42.0.6/8080")
    );
}

#[test]
fn duplicates_are_reported_not_emitted() {
    let mut idx = web_index();
    idx.upsert_service(svc(
        "copy",
        [10, 43, 0, 6],
        &[("http", Proto::Tcp, 81, Some(30080))],
    ));
    idx.upsert_slice(
        "default/copy".into(),
        "c".into(),
        slice(vec![ep(9, true, false, true)], &[("http", Proto::Tcp, 80)]),
    );
    let (rs, problems) = generate(&idx, &params());
    assert_eq!(problems.len(), 1);
    // Services are visited in key order: `default/copy` claims the node port first.
    assert_eq!(
        (&*problems[0].service, problems[0].reason),
        ("default/web", "AddressInUse")
    );
    let np = |i: usize| (Map::NodeportEndpoints, format!("tcp . 30080 . {i}"));
    assert_eq!(
        rs.element_texts()[&(Map::ServiceNodeports, "tcp . 30080".to_string())],
        "goto np-dnat-1"
    );
    assert_eq!(rs.element_texts()[&np(0)], "10.42.0.9 . 80");
    // The loser's cluster IP still works.
    assert_eq!(
        rs.element_texts()[&(Map::ServiceIps, "10.43.0.5 . tcp . 80".to_string())],
        "goto dnat-2"
    );
    // When the winner goes, the loser takes the node port over.
    let mut a = crate::assemble::Assembled::new(&params());
    for key in idx.services.keys() {
        a.update(key, fragment(&idx, key, &params()));
    }
    a.update("default/copy", None);
    assert_eq!(
        a.ruleset.element_texts()[&(Map::ServiceNodeports, "tcp . 30080".to_string())],
        "goto np-dnat-2"
    );
    assert_eq!(a.ruleset.element_texts()[&np(0)], "10.42.0.5 . 8080");
    assert_eq!(a.ruleset.element_texts()[&np(1)], "10.42.0.6 . 8080");
    assert!(a.problems().is_empty());
}

/// One change to the index, returning the key of the service it touched.
type Step = Box<dyn Fn(&mut Index) -> &'static str>;

/// Updating one service at a time must give exactly what generating everything gives, and the
/// diff over the touched names exactly the full diff.
#[test]
fn per_service_updates_match_full_generation() {
    let p = params();
    let mut idx = every_feature();
    let mut a = crate::assemble::Assembled::new(&p);
    for key in idx.services.keys() {
        a.update(key, fragment(&idx, key, &p));
    }
    let _ = a.take_touched();
    assert_eq!(a.ruleset, generate(&idx, &p).0);
    let before = a.ruleset.clone();
    let steps: Vec<Step> = vec![
        Box::new(|i| {
            i.upsert_slice(
                "default/web".into(),
                "web-a".into(),
                slice(
                    vec![ep(5, true, false, true)],
                    &[("http", Proto::Tcp, 8080)],
                ),
            );
            "default/web"
        }),
        Box::new(|i| {
            i.remove_service("default/empty");
            "default/empty"
        }),
        Box::new(|i| {
            let mut s = i.services["default/aff"].clone();
            s.affinity_timeout = Some(99);
            i.upsert_service(s);
            "default/aff"
        }),
        Box::new(|i| {
            // Same cluster IP as web: a conflict.
            i.upsert_service(svc(
                "dup",
                [10, 43, 0, 5],
                &[("http", Proto::Tcp, 80, None)],
            ));
            "default/dup"
        }),
    ];
    let mut applied = before;
    for step in steps {
        let key = step(&mut idx);
        a.update(key, fragment(&idx, key, &p));
        let touched = a.take_touched();
        let (full, problems) = generate(&idx, &p);
        assert_eq!(a.ruleset, full, "after updating {key}");
        assert_eq!(a.problems().len(), problems.len());
        assert_eq!(
            script::diff_touched(&applied, &a.ruleset, &touched),
            script::diff(&applied, &full)
        );
        script::advance(&mut applied, &a.ruleset, &touched);
        assert_eq!(applied, full);
    }
}

#[test]
fn sctp_without_kernel_support_is_skipped() {
    let mut idx = Index::default();
    idx.upsert_service(svc(
        "s",
        [10, 43, 0, 9],
        &[("a", Proto::Sctp, 9, None), ("b", Proto::Tcp, 9, None)],
    ));
    let mut p = params();
    p.sctp = false;
    let (rs, problems) = generate(&idx, &p);
    assert_eq!(problems[0].reason, "SCTPUnsupported");
    assert!(
        rs.element_texts()
            .contains_key(&(Map::NoEndpointServices, "10.43.0.9 . tcp . 9".to_string()))
    );
    assert!(!rs.element_texts().keys().any(|(_, k)| k.contains("sctp")));
}

#[test]
fn hostile_names_cannot_inject_syntax() {
    let mut idx = Index::default();
    let mut s = svc(
        "x; flush ruleset",
        [10, 43, 0, 9],
        &[("p }", Proto::Tcp, 9, None)],
    );
    s.namespace = "n\n".into();
    idx.upsert_service(s.clone());
    idx.upsert_slice(
        "n\n/x; flush ruleset".into(),
        "a".into(),
        slice(vec![ep(5, true, false, true)], &[("p }", Proto::Tcp, 1)]),
    );
    let (rs, _) = generate(&idx, &params());
    for name in rs.chains.keys() {
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || "/_.-".contains(c)),
            "{name}"
        );
    }
    s.affinity_timeout = Some(5);
    idx.upsert_service(s);
    let (rs, _) = generate(&idx, &params());
    assert!(rs.chains.contains_key("svc-n_/x__flush_ruleset/tcp/p__"));
}

fn every_feature() -> Index {
    let mut idx = web_index();
    let mut s = svc(
        "aff",
        [10, 43, 0, 7],
        &[
            ("", Proto::Tcp, 80, Some(30081)),
            ("s", Proto::Sctp, 90, None),
        ],
    );
    s.affinity_timeout = Some(30);
    s.external_local = true;
    s.lb_ingress = vec![Ipv4Addr::new(192, 0, 2, 1)];
    idx.upsert_service(s);
    idx.upsert_slice(
        "default/aff".into(),
        "a".into(),
        slice(
            vec![ep(8, true, false, true), ep(9, true, false, true)],
            &[("", Proto::Tcp, 80), ("s", Proto::Sctp, 90)],
        ),
    );
    idx.upsert_service(svc(
        "empty",
        [10, 43, 0, 8],
        &[("", Proto::Udp, 53, Some(30053))],
    ));
    idx
}

/// Runs test `name` again in a new network namespace (netlink talks to the namespace of the
/// process) with `inside` set, and asserts it passed there. Returns true in the outer process,
/// which must then return; false inside, where the test body runs.
fn run_in_own_netns(name: &str, inside: &str) -> bool {
    if std::env::var_os(inside).is_some() {
        return false;
    }
    let out = Command::new("unshare")
        .arg("--net")
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture"])
        .env(inside, "1")
        .output()
        .expect("unshare (util-linux) must be installed");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && text.contains("1 passed"), "{text}");
    true
}

/// Runs itself again inside `unshare --net` (netlink talks to the network namespace of the
/// process).
#[test]
fn full_and_incremental_scripts_load_in_the_kernel() {
    if run_in_own_netns(
        "rules::tests::full_and_incremental_scripts_load_in_the_kernel",
        "K1S_PROXY_INCREMENTAL_TEST_NETNS",
    ) {
        return;
    }
    let p = params();
    let (old, _) = generate(&every_feature(), &p);
    let mut next = every_feature();
    // One endpoint gone, one service gone, affinity timeout changed.
    next.upsert_slice(
        "default/web".into(),
        "web-a".into(),
        slice(
            vec![ep(5, true, false, true)],
            &[("http", Proto::Tcp, 8080), ("dns", Proto::Udp, 5353)],
        ),
    );
    next.remove_service("default/empty");
    let mut aff = next.services["default/aff"].clone();
    aff.affinity_timeout = Some(31);
    next.upsert_service(aff);
    let (new, _) = generate(&next, &p);
    let full_old = script::full(&p, &old);
    let full_new = script::full(&p, &new);
    let diff = script::diff(&old, &new);
    assert!(
        diff.contains("delete element ip k1s hairpin { 10.42.0.6 . 10.42.0.6 }"),
        "{diff}"
    );
    assert!(
        diff.contains("delete set ip k1s aff-default/aff/tcp/80__10.42.0.8/80-30"),
        "{diff}"
    );
    assert!(script::diff(&new, &new).is_empty());
    // Apply old, then the incremental transaction as the sync sends it (the new chains that use
    // the endpoint maps over netlink, the rest with nft -f); the table must equal the one the
    // full new script makes.
    let touched = crate::assemble::Touched {
        chains: old
            .chains
            .keys()
            .chain(new.chains.keys())
            .cloned()
            .collect(),
        sets: old.sets.keys().chain(new.sets.keys()).cloned().collect(),
        elements: old
            .elements
            .keys()
            .chain(new.elements.keys())
            .cloned()
            .collect(),
        cluster_ips: old.cluster_ips.union(&new.cluster_ips).copied().collect(),
    };
    let tx = crate::apply::Transaction::plan(&p, Some(&old), &new, &touched, true);
    let crate::apply::Transaction::Script {
        text,
        full: false,
        chains: Some(_),
    } = &tx
    else {
        panic!("a new dnat chain must come in a netlink batch before the script: {tx:?}");
    };
    assert!(!text.contains("@endpoints"), "{text}");
    let nft = std::path::Path::new("nft");
    let blocks = || {
        let out = Command::new("nft")
            .args(["list", "table", "ip", "k1s"])
            .output()
            .unwrap();
        // Chains and sets are listed in creation order: compare the blocks sorted, without the
        // table's closing brace (which ends whichever block is last).
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let text: Vec<&str> = text.lines().filter(|l| *l != "}").collect();
        let text = text.join("\n");
        let mut b: Vec<&str> = text.split("\n\n").map(str::trim_end).collect();
        b.sort();
        b.join("\n\n")
    };
    script_apply(nft, &full_old);
    let mut nl = crate::netlink::Netlink::default();
    tx.run(nft, &mut nl)
        .expect("the incremental transaction applies");
    let after_diff = blocks();
    script_apply(nft, &full_new);
    script_apply(nft, &full_new);
    assert_eq!(after_diff, blocks());
    // The netlink-made dnat rules carry no protocol check nft would add (UDP is DNAT'd too).
    let out = Command::new("nft")
        .args(["--debug=netlink", "list", "chain", "ip", "k1s", "dnat-1"])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(listing.contains("numgen"), "{listing}");
    assert!(
        !listing.contains("[ cmp eq reg 1 0x00000006 ]"),
        "{listing}"
    );
    crate::nft::delete_table(nft).unwrap();
}

/// An endpoint moved and a service without endpoints removed: elements only, so the sync sends
/// them over netlink; the kernel's table must then equal the full script's. Runs itself again
/// inside `unshare --net` (netlink talks to the network namespace of the process).
#[test]
fn element_changes_over_netlink_match_the_full_script() {
    if run_in_own_netns(
        "rules::tests::element_changes_over_netlink_match_the_full_script",
        "K1S_PROXY_NETLINK_TEST_NETNS",
    ) {
        return;
    }
    use crate::apply::Transaction;
    use crate::assemble::Touched;
    let p = params();
    let (old, _) = generate(&every_feature(), &p);
    let mut next = every_feature();
    next.upsert_slice(
        "default/web".into(),
        "web-a".into(),
        slice(
            vec![ep(5, true, false, true), ep(7, true, false, true)],
            &[("http", Proto::Tcp, 8080), ("dns", Proto::Udp, 5353)],
        ),
    );
    next.remove_service("default/empty");
    let (new, _) = generate(&next, &p);
    let touched = Touched {
        chains: old
            .chains
            .keys()
            .chain(new.chains.keys())
            .cloned()
            .collect(),
        sets: old.sets.keys().chain(new.sets.keys()).cloned().collect(),
        elements: old
            .elements
            .keys()
            .chain(new.elements.keys())
            .cloned()
            .collect(),
        cluster_ips: old.cluster_ips.union(&new.cluster_ips).copied().collect(),
    };
    let tx = Transaction::plan(&p, Some(&old), &new, &touched, true);
    let Transaction::Elements(ops) = &tx else {
        panic!("an element-only change must not need nft: {tx:?}");
    };
    assert!(ops.iter().any(|o| o.delete) && ops.iter().any(|o| !o.delete));
    let nft = std::path::Path::new("nft");
    let blocks = || {
        let out = Command::new("nft")
            .args(["list", "table", "ip", "k1s"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut b: Vec<String> = text.split("\n\n").map(str::to_string).collect();
        b.sort();
        b.join("\n\n")
    };
    script_apply(nft, &script::full(&p, &old));
    let mut nl = crate::netlink::Netlink::default();
    tx.run(nft, &mut nl).expect("the netlink batch applies");
    let after_netlink = blocks();
    assert!(
        after_netlink.contains("10.42.0.7 . 8080"),
        "{after_netlink}"
    );
    script_apply(nft, &script::full(&p, &new));
    assert_eq!(after_netlink, blocks());
    // A batch the kernel refuses (deleting an element that is not there) changes nothing.
    let before = blocks();
    let Transaction::Elements(mut bad) = Transaction::plan(&p, Some(&old), &new, &touched, true)
    else {
        unreachable!()
    };
    bad.retain(|o| o.delete);
    let err = Transaction::Elements(bad).run(nft, &mut nl).unwrap_err();
    assert!(err.to_string().contains("rejected"), "{err}");
    assert_eq!(before, blocks());
    // The same handle works again after a refusal (it reopened its socket).
    let Transaction::Elements(mut good) = Transaction::plan(&p, Some(&new), &old, &touched, true)
    else {
        panic!("back to the old elements is element-only too")
    };
    good.retain(|o| !o.delete);
    good.truncate(1);
    Transaction::Elements(good)
        .run(nft, &mut nl)
        .expect("a valid batch after a refused one");
    crate::nft::delete_table(nft).unwrap();
}

fn script_apply(nft: &std::path::Path, text: &str) {
    crate::nft::apply(nft, text, false).expect("nft applies the script");
}
