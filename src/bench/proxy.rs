//! `k1s bench proxy`: the service proxy's nftables programming at scale (issue 6, "Speed").
//!
//! Runs in its own network namespace (re-executes itself under `unshare --net`), so table `ip k1s`
//! never lands in the host's network. Two parts:
//! 1. the library straight: an index of `--services` ClusterIP services × `--endpoints` endpoints;
//!    generation, the full-replacement transaction as the sync loop sends it (one hand-encoded
//!    netlink batch) and, for comparison, as `nft -f`, and a single-endpoint change as the
//!    sync loop does it (regenerate that service, plan what it touched, the incremental
//!    transaction: one netlink batch when only elements change, else `nft -f`), each repeated
//!    for p50/p99;
//! 2. end to end: the same objects created through an in-process API server, the proxy started on
//!    it (time to its first full sync), then single-endpoint EndpointSlice updates, each timed from
//!    the API write until the proxy's sync of it has been applied by `nft`.
//!
//! With `--clusterip`, instead: HTTP through a ClusterIP vs straight to the pod ([`clusterip`]).

use std::net::Ipv4Addr;
use std::path::PathBuf;

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use k1s_proxy::apply::Transaction;
use k1s_proxy::assemble::Assembled;
use k1s_proxy::model::{Endpoint, Index, Proto, Service, ServicePort, Slice, SlicePort};
use k1s_proxy::rules::{Params, fragment, generate};
use k1s_proxy::{nft, script};
use serde_json::{Value, json};

use super::api::print_header;
use super::stats::Samples;

mod clusterip;

#[derive(Args, Debug)]
pub struct ProxyArgs {
    /// ClusterIP services.
    #[arg(long, default_value_t = 5000)]
    pub services: u32,
    /// Ready endpoints per service.
    #[arg(long, default_value_t = 10)]
    pub endpoints: u32,
    /// Repetitions of the full-replacement transaction.
    #[arg(long, default_value_t = 5)]
    pub full_runs: usize,
    /// Repetitions of the single-endpoint change.
    #[arg(long, default_value_t = 50)]
    pub changes: usize,
    /// The nft program.
    #[arg(long, default_value = "nft")]
    pub nft: PathBuf,
    /// Services in the end-to-end part (creating them through the API takes a while); 0 skips it.
    #[arg(long, default_value_t = 1000)]
    pub e2e_services: u32,
    /// Instead of the table benchmarks: HTTP requests through a ClusterIP vs straight to the pod
    /// IP (latency on one keep-alive connection, throughput on --connections), side by side.
    #[arg(long)]
    pub clusterip: bool,
    /// ClusterIP comparison: rounds, each measuring both paths (many short rounds: the per-round
    /// ratios are compared, so load drifting over the run falls on both paths alike).
    #[arg(long, default_value_t = 20)]
    pub rounds: usize,
    /// ClusterIP comparison: seconds per path, phase and round.
    #[arg(long, default_value_t = 0.3)]
    pub secs: f64,
    /// ClusterIP comparison: keep-alive connections in the throughput phase.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
}

pub fn run(args: ProxyArgs) -> Result<()> {
    if super::reexec_in_own_netns()? {
        return Ok(());
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .try_init();
    print_header("proxy");
    if args.clusterip {
        return clusterip::run(clusterip::Options {
            rounds: args.rounds.max(1),
            secs: args.secs.clamp(0.1, 600.0),
            connections: args.connections.clamp(1, 256),
        });
    }
    println!(
        "{} services x {} endpoints, nft {}",
        args.services,
        args.endpoints,
        args.nft.display()
    );
    library(&args)?;
    if args.e2e_services == 0 {
        return Ok(());
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(end_to_end(&args))
}

fn service_ip(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 43, 1, 0)) + i)
}

fn endpoint_ip(i: u32, e: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 42, 0, 0)) + (i * 64 + e) % (1 << 20))
}

fn slice(i: u32, n: u32, shift: u32) -> Slice {
    Slice {
        endpoints: (0..n)
            .map(|e| Endpoint {
                ip: endpoint_ip(i, e + shift),
                ready: true,
                serving: true,
                terminating: false,
                local: true,
            })
            .collect(),
        ports: vec![SlicePort {
            name: "http".into(),
            proto: Proto::Tcp,
            port: 8080,
        }],
    }
}

fn library(args: &ProxyArgs) -> Result<()> {
    let params = Params {
        service_cidr: (Ipv4Addr::new(10, 43, 0, 0), 16),
        sctp: nft::sctp_supported(&args.nft),
        dns: None,
    };
    let mut index = Index::default();
    for i in 0..args.services {
        index.upsert_service(Service {
            namespace: "bench".into(),
            name: format!("svc-{i}").into(),
            uid: "".into(),
            created: "".into(),
            load_balancer: false,
            cluster_ips: vec![service_ip(i)],
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
        });
        index.upsert_slice(
            format!("bench/svc-{i}").into(),
            "s".into(),
            slice(i, args.endpoints, 0),
        );
    }
    let [mut gen_s, mut render_s, mut full_s] = [(); 3].map(|_| Samples::default());
    let [mut encode_s, mut batch_s, mut sync_s] = [(); 3].map(|_| Samples::default());
    let mut rs = None;
    let (mut bytes, mut batch_bytes) = (0, 0);
    let mut netlink = k1s_proxy::netlink::Netlink::default();
    for _ in 0..args.full_runs {
        let t = Instant::now();
        let (r, _) = generate(&index, &params);
        let generated = t.elapsed();
        gen_s.push(generated);
        // The sync loop's full replacement: one hand-encoded netlink batch.
        let t = Instant::now();
        let tx = Transaction::plan(&params, None, &r, &Default::default(), true);
        let encoded = t.elapsed();
        encode_s.push(encoded);
        let Transaction::FullBatch { batch, .. } = &tx else {
            bail!("the bench's table should go as one netlink batch");
        };
        batch_bytes = batch.len();
        let t = Instant::now();
        tx.run(&args.nft, &mut netlink)?;
        let sent = t.elapsed();
        batch_s.push(sent);
        sync_s.push(generated + encoded + sent);
        // The same table through nft, for comparison (and the fallback's cost).
        let t = Instant::now();
        let text = script::full(&params, &r);
        render_s.push(t.elapsed());
        bytes = text.len();
        if let Some(path) = std::env::var_os("K1S_BENCH_PROXY_DUMP") {
            std::fs::write(path, &text)?;
        }
        let t = Instant::now();
        nft::apply(&args.nft, &text, false)?;
        full_s.push(t.elapsed());
        rs = Some(r);
    }
    let mut applied = rs.context("no full run")?;
    let runs = args.full_runs as u64;
    let objects = format!(
        "{} chains, {} elements",
        applied.chains.len(),
        applied.elements.len() + applied.cluster_ips.len()
    );
    gen_s.report("full: generate", runs, None).print();
    encode_s
        .report("full: encode the netlink batch", runs, None)
        .note(format!("{} KiB", batch_bytes / 1024))
        .print();
    batch_s
        .report("full: the netlink batch (one transaction)", runs, None)
        .note(objects.clone())
        .print();
    sync_s
        .report("full: generate + encode + batch", runs, None)
        .note("the sync loop's full replacement")
        .print();
    render_s
        .report("full (nft path): render the script", runs, None)
        .note(format!("{} KiB script", bytes / 1024))
        .print();
    full_s
        .report("full (nft path): nft -f (one transaction)", runs, None)
        .note(objects)
        .print();
    // The sync loop's path: regenerate the one changed service, diff what it touched.
    let mut desired = Assembled::new(&params);
    for key in index.services.keys() {
        desired.update(key, fragment(&index, key, &params));
    }
    let _ = desired.take_touched();
    let (mut work_s, mut nft_s) = (Samples::default(), Samples::default());
    let mut shifted = std::collections::HashSet::new();
    let mut by_netlink = 0;
    for c in 0..args.changes {
        let i = (c as u32 * 7919) % args.services;
        // Move one endpoint of service i to a new address, or back.
        let shift = if shifted.insert(i) {
            1
        } else {
            shifted.remove(&i);
            0
        };
        let key = format!("bench/svc-{i}");
        index.upsert_slice(
            key.clone().into(),
            "s".into(),
            slice(i, args.endpoints, shift),
        );
        let t = Instant::now();
        desired.update(&key, fragment(&index, &key, &params));
        let touched = desired.take_touched();
        let tx = Transaction::plan(&params, Some(&applied), &desired.ruleset, &touched, true);
        work_s.push(t.elapsed());
        if matches!(tx, Transaction::Elements(_)) {
            by_netlink += 1;
        }
        let t = Instant::now();
        tx.run(&args.nft, &mut netlink)?;
        nft_s.push(t.elapsed());
        script::advance(&mut applied, &desired.ruleset, &touched);
    }
    work_s
        .report(
            "1 endpoint: regenerate 1 service + plan",
            args.changes as u64,
            None,
        )
        .print();
    nft_s
        .report("1 endpoint: the transaction", args.changes as u64, None)
        .note(format!(
            "{by_netlink} of {} as one netlink batch, the rest nft -f",
            args.changes
        ))
        .print();
    nft::delete_table(&args.nft)?;
    Ok(())
}

async fn end_to_end(args: &ProxyArgs) -> Result<()> {
    use k1s_apiserver::client::{Client, Gvr};
    const SERVICES: Gvr = Gvr::new("", "v1", "services");
    const SLICES: Gvr = Gvr::new("discovery.k8s.io", "v1", "endpointslices");
    let store = tokio::task::spawn_blocking(|| {
        k1s_store::Store::open(k1s_store::StoreConfig {
            path: None,
            ..Default::default()
        })
    })
    .await??;
    let state = k1s_apiserver::AppState::new(store, Default::default());
    k1s_apiserver::crd::rebuild_table(&state);
    k1s_apiserver::bootstrap::run(&state)
        .await
        .map_err(|e| anyhow::anyhow!("bootstrap: {}", e.0.message))?;
    state.set_ready();
    let client = Client::new(state, "k1s-bench");
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}});
    client
        .create(Gvr::new("", "v1", "namespaces"), None, &ns)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let t = Instant::now();
    let services = args.e2e_services;
    for i in 0..services {
        let svc = json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": format!("svc-{i}"), "namespace": "bench"},
            "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}});
        client
            .create(SERVICES, Some("bench"), &svc)
            .await
            .map_err(|e| anyhow::anyhow!("creating a service: {}", e.message))?;
        client
            .create(SLICES, Some("bench"), &slice_json(i, args.endpoints, 0))
            .await
            .map_err(|e| anyhow::anyhow!("creating a slice: {}", e.message))?;
    }
    println!(
        "created {services} services x {} endpoints in {:.1} s",
        args.endpoints,
        t.elapsed().as_secs_f64()
    );
    let shutdown = tokio_util::sync::CancellationToken::new();
    let config = k1s_proxy::ProxyConfig {
        nft: args.nft.clone(),
        ..Default::default()
    };
    let t = Instant::now();
    let proxy = k1s_proxy::start(client.clone(), config, shutdown.clone()).await?;
    let mut status = proxy.status();
    status
        .wait_for(|s| s.syncs >= 1)
        .await
        .context("proxy stopped")?;
    println!(
        "{:<38} {:.0} ms (list + generate + nft; nft {:.0} ms)",
        "end to end: first full sync",
        t.elapsed().as_secs_f64() * 1e3,
        status.borrow().last_nft.as_secs_f64() * 1e3
    );
    let mut samples = Samples::default();
    let mut nft_s = Samples::default();
    // Each change moves one endpoint of one service to a new address (or back).
    let mut shifted = std::collections::HashSet::new();
    for c in 0..args.changes {
        let i = (c as u32 * 7919) % services;
        let before = status.borrow().syncs;
        let shift = if shifted.insert(i) {
            1
        } else {
            shifted.remove(&i);
            0
        };
        let mut obj = slice_json(i, args.endpoints, shift);
        let current = client
            .get(SLICES, Some("bench"), &format!("svc-{i}"))
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.message))?
            .context("slice missing")?;
        obj["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"].clone();
        let t = Instant::now();
        client
            .update(SLICES, &obj)
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.message))?;
        tokio::time::timeout(
            Duration::from_secs(10),
            status.wait_for(|s| s.syncs > before || s.last_error.is_some()),
        )
        .await
        .context("the proxy did not sync an endpoint change within 10 s")??;
        samples.push(t.elapsed());
        nft_s.push(status.borrow().last_nft);
        if let Some(e) = &status.borrow().last_error {
            bail!("proxy sync failed: {e}");
        }
    }
    samples
        .report(
            "end to end: endpoint change in kernel",
            args.changes as u64,
            None,
        )
        .note("API write -> nft applied, incl. the 20 ms debounce")
        .print();
    nft_s
        .report(
            "end to end: transaction part of it",
            args.changes as u64,
            None,
        )
        .print();
    shutdown.cancel();
    proxy.wait().await;
    Ok(())
}

fn slice_json(i: u32, n: u32, shift: u32) -> Value {
    let eps: Vec<Value> = (0..n)
        .map(|e| {
            json!({"addresses": [endpoint_ip(i, e + shift).to_string()],
                   "conditions": {"ready": true, "serving": true, "terminating": false}})
        })
        .collect();
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": format!("svc-{i}"), "namespace": "bench",
            "labels": {"kubernetes.io/service-name": format!("svc-{i}")}},
        "addressType": "IPv4", "endpoints": eps,
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]})
}
