//! The sync loop: wait for a change, coalesce the burst, generate, and program the kernel in one
//! transaction — a full replacement on the first sync and after any failure, else the incremental
//! diff against what was last applied.
//!
//! Invariants:
//! - each sync is one kernel transaction ([`Transaction`]: `nft -f`, or one netlink batch), or
//!   for an incremental script with new endpoint-map chains a netlink batch adding only those
//!   chains, then the script;
//! - `applied` is exactly what the kernel holds, or `None` when unknown (start, failed run): then
//!   the next sync replaces the whole table, which reconciles after a crash without duplicates;
//! - only services marked dirty by the informers are regenerated, and the incremental transaction
//!   covers only what their fragments touched (a relist marks everything);
//! - syncs are at least `min_interval` apart, so a burst of watch events costs one transaction;
//! - a failing `nft` never ends the loop: it is logged and retried with exponential backoff;
//! - `nft` and netlink run on a blocking thread, never on a tokio worker.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use k1s_apiserver::client::Client;
use k1s_controllers::replicaset::events::Recorder;
use serde_json::json;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::apply::Transaction;
use crate::assemble::Assembled;
use crate::model::{Index, Key, Service};
use crate::netlink::Netlink;
use crate::rules::{Params, Problem, Ruleset, fragment};
use crate::{ProxyConfig, SyncStatus, nft, script};

/// State shared by the informers and the sync loop.
pub(crate) struct Shared {
    pub index: Mutex<Index>,
    pub dirty: Notify,
    /// How many of the two informers have completed their first list.
    pub listed: AtomicUsize,
    pub node_name: String,
    /// Services changed since the last sync.
    pub dirty_keys: Mutex<Dirty>,
}

/// What changed since the last sync.
#[derive(Debug, Default)]
pub(crate) struct Dirty {
    /// A relist replaced a whole resource: every service may have changed.
    pub all: bool,
    pub keys: BTreeSet<Key>,
}

impl Shared {
    pub fn lock_index(&self) -> MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn mark(&self, key: Key) {
        self.dirty_keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys
            .insert(key);
    }

    pub fn mark_all(&self) {
        self.dirty_keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .all = true;
    }

    fn take_dirty(&self) -> Dirty {
        std::mem::take(&mut *self.dirty_keys.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

const MAX_BACKOFF: Duration = Duration::from_secs(5);

pub(crate) async fn run(
    client: Client,
    shared: Arc<Shared>,
    config: ProxyConfig,
    params: Params,
    status: watch::Sender<SyncStatus>,
    shutdown: CancellationToken,
) {
    let recorder = Recorder::new(client.clone(), "k1s-proxy", "v1", "Service");
    // What the kernel holds (None: unknown, replace everything), and what it should hold.
    let mut applied: Option<Ruleset> = None;
    let mut desired = Assembled::new(&params);
    let mut reported: HashSet<(Box<str>, &'static str, String)> = HashSet::new();
    let mut lb_sent: BTreeMap<Box<str>, Vec<Ipv4Addr>> = BTreeMap::new();
    let mut backoff = Duration::from_millis(100);
    // Full replacements as one hand-encoded netlink batch, until one fails.
    let mut full_by_netlink = true;
    // The netlink socket, moved to the blocking thread for each transaction and back.
    let mut netlink: Option<Netlink> = None;
    let mut last = Instant::now() - config.min_sync_interval;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = shared.dirty.notified() => {}
        }
        if shared.listed.load(Ordering::Acquire) < 2 {
            continue; // a partial view would drop the other half's rules
        }
        let wait = config.min_sync_interval.saturating_sub(last.elapsed());
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
        }
        last = Instant::now();
        let (problems, lb) = {
            let index = shared.lock_index();
            let dirty = shared.take_dirty();
            let keys: BTreeSet<Key> = if dirty.all {
                index
                    .services
                    .keys()
                    .chain(desired.keys())
                    .cloned()
                    .collect()
            } else {
                dirty.keys
            };
            for key in &keys {
                desired.update(key, fragment(&index, key, &params));
            }
            let lb = config.node_ip.map(|ip| lb_assignments(&index, ip));
            (desired.problems(), lb)
        };
        let touched = desired.take_touched();
        report(&recorder, &shared, &mut reported, problems);
        if let Some(lb) = lb {
            write_lb_status(&client, &recorder, &shared, &mut lb_sent, lb);
        }
        let tx = Transaction::plan(
            &params,
            applied.as_ref(),
            &desired.ruleset,
            &touched,
            full_by_netlink,
        );
        if matches!(tx, Transaction::None) {
            status.send_modify(|s| s.syncs += 1);
            continue;
        }
        let full = tx.is_full();
        let batch = matches!(tx, Transaction::FullBatch { .. });
        let started = Instant::now();
        let nft_path = config.nft.clone();
        let mut nl = netlink.take().unwrap_or_default();
        let result = tokio::task::spawn_blocking(move || {
            let r = tx.run(&nft_path, &mut nl);
            (nl, r)
        })
        .await
        .map(|(nl, r)| {
            netlink = Some(nl);
            r
        });
        let took = started.elapsed();
        let outcome = match result {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match outcome {
            Ok(()) => {
                tracing::debug!(
                    full,
                    ms = took.as_millis() as u64,
                    chains = desired.ruleset.chains.len(),
                    "proxy synced"
                );
                match &mut applied {
                    Some(a) if !full => script::advance(a, &desired.ruleset, &touched),
                    _ => applied = Some(desired.ruleset.clone()),
                }
                backoff = Duration::from_millis(100);
                status.send_modify(|s| {
                    s.syncs += 1;
                    s.last_nft = took;
                    s.last_full = full;
                    s.last_error = None;
                });
            }
            Err(msg) => {
                tracing::warn!(error = %msg, retry_ms = backoff.as_millis() as u64, "proxy sync failed");
                if batch {
                    // Whatever the kernel disliked in the hand-encoded batch, nft's own encoding
                    // of the same table is the way back.
                    tracing::warn!("full replacements go through nft -f from now on");
                    full_by_netlink = false;
                }
                applied = None;
                status.send_modify(|s| {
                    s.last_error = Some(msg.clone());
                    s.failures += 1;
                });
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                shared.dirty.notify_one();
            }
        }
    }
    let nft_path = config.nft.clone();
    match tokio::task::spawn_blocking(move || nft::delete_table(&nft_path)).await {
        Ok(Ok(())) => tracing::info!("proxy stopped; table ip k1s removed"),
        Ok(Err(e)) => tracing::warn!(error = %e, "removing table ip k1s"),
        Err(e) => tracing::warn!(error = %e, "removing table ip k1s"),
    }
}

/// Records each problem once while it lasts (a problem that goes away and comes back is recorded
/// again).
fn report(
    recorder: &Recorder,
    shared: &Shared,
    reported: &mut HashSet<(Box<str>, &'static str, String)>,
    problems: Vec<Problem>,
) {
    let now: HashSet<_> = problems
        .into_iter()
        .map(|p| (p.service, p.reason, p.message))
        .collect();
    for p in now.difference(reported) {
        tracing::warn!(service = %p.0, reason = p.1, "{}", p.2);
        if let Some(svc) = shared.lock_index().services.get(&p.0) {
            recorder.warning(&service_ref(svc), p.1, &p.2);
        }
    }
    *reported = now;
}

fn service_ref(svc: &Service) -> serde_json::Value {
    json!({"metadata": {"namespace": &*svc.namespace, "name": &*svc.name, "uid": &*svc.uid}})
}

/// The built-in load balancer (k3s ServiceLB style): each LoadBalancer service gets the node IP as
/// its ingress, unless one of its ports is already taken on the node by an older LoadBalancer
/// service — then it stays pending. Returns service key → wanted ingress IPs.
pub fn lb_assignments(index: &Index, node_ip: Ipv4Addr) -> BTreeMap<Box<str>, Vec<Ipv4Addr>> {
    let mut lbs: Vec<(&Box<str>, &Service)> = index
        .services
        .iter()
        .filter(|(_, s)| s.load_balancer)
        .collect();
    lbs.sort_by(|a, b| (&a.1.created, a.0).cmp(&(&b.1.created, b.0)));
    let mut taken = HashSet::new();
    let mut out = BTreeMap::new();
    for (key, svc) in lbs {
        let ports: Vec<_> = svc.ports.iter().map(|p| (p.proto, p.port)).collect();
        let free = ports.iter().all(|p| !taken.contains(p));
        if free {
            taken.extend(ports);
        }
        out.insert(key.clone(), if free { vec![node_ip] } else { Vec::new() });
    }
    out
}

/// Patches `status.loadBalancer` where it differs from the assignment, once per change.
fn write_lb_status(
    client: &Client,
    recorder: &Recorder,
    shared: &Shared,
    sent: &mut BTreeMap<Box<str>, Vec<Ipv4Addr>>,
    wanted: BTreeMap<Box<str>, Vec<Ipv4Addr>>,
) {
    let index = shared.lock_index();
    for (key, ips) in &wanted {
        let Some(svc) = index.services.get(key) else {
            continue;
        };
        if svc.lb_ingress == *ips || sent.get(key) == Some(ips) {
            continue;
        }
        if ips.is_empty() {
            recorder.warning(
                &service_ref(svc),
                "PortInUse",
                "a port of this LoadBalancer service is taken on the node by another one; pending",
            );
        }
        let ingress: Vec<_> = ips
            .iter()
            .map(|ip| json!({"ip": ip.to_string(), "ipMode": "VIP"}))
            .collect();
        let patch = json!({"status": {"loadBalancer": {"ingress": ingress}}});
        let (client, ns, name) = (
            client.clone(),
            svc.namespace.to_string(),
            svc.name.to_string(),
        );
        tokio::spawn(async move {
            if let Err(e) = client
                .merge_patch(
                    crate::watch::SERVICES,
                    Some(&ns),
                    &name,
                    Some("status"),
                    &patch,
                )
                .await
            {
                tracing::warn!(service = %format!("{ns}/{name}"), error = %e.message, "writing LoadBalancer status");
            }
        });
    }
    *sent = wanted;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Proto, ServicePort};

    fn lb(name: &str, created: &str, ports: &[(Proto, u16)]) -> Service {
        Service {
            namespace: "d".into(),
            name: name.into(),
            uid: "".into(),
            created: created.into(),
            load_balancer: true,
            cluster_ips: vec![Ipv4Addr::new(10, 43, 0, 9)],
            ports: ports
                .iter()
                .map(|(proto, port)| ServicePort {
                    name: "".into(),
                    proto: *proto,
                    port: *port,
                    node_port: None,
                })
                .collect(),
            external_ips: vec![],
            lb_ingress: vec![],
            affinity_timeout: None,
            internal_local: false,
            external_local: false,
        }
    }

    #[test]
    fn the_oldest_load_balancer_keeps_a_contested_port() {
        let node = Ipv4Addr::new(192, 0, 2, 4);
        let mut idx = Index::default();
        idx.upsert_service(lb("a-new", "2026-02-01T00:00:00Z", &[(Proto::Tcp, 80)]));
        idx.upsert_service(lb("b-old", "2026-01-01T00:00:00Z", &[(Proto::Tcp, 80)]));
        idx.upsert_service(lb("c-udp", "2026-03-01T00:00:00Z", &[(Proto::Udp, 80)]));
        let mut plain = lb("d-plain", "2026-01-01T00:00:00Z", &[(Proto::Tcp, 80)]);
        plain.load_balancer = false;
        idx.upsert_service(plain);
        let got = lb_assignments(&idx, node);
        assert_eq!(got.len(), 3);
        assert_eq!(got["d/b-old"], vec![node]);
        assert!(got["d/a-new"].is_empty());
        assert_eq!(got["d/c-udp"], vec![node]);
    }
}
