//! Service ClusterIP and NodePort allocation.
//!
//! Allocation is serialised by one lock, held from the choice until the create has committed, and
//! checks the services in the store, so two creates never get the same address or port, also after a
//! crash (the store is the only record). What is in use is cached ([`AllocCache`]): the first
//! allocation lists the Services (decoding only the allocated fields), later ones apply the event
//! log's changes since the cached revision, so a create costs what changed, not what is stored.
//!
//! As upstream's allocator (ServiceIPStaticSubrange), the range is split: the lower band
//! (min(max(16, size/16), 256) addresses) is kept for IPs users and k1s request explicitly
//! (`kubernetes` at .1, `kube-dns` at .10); dynamic allocation picks a random free address from the
//! upper band first and only falls back to the lower band when the upper one is full.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

use k1s_store::{EventType, Revision, Store};
use tokio::sync::OwnedMutexGuard;

use k1s_apimachinery::status::StatusError;
use serde_json::{Value, json};

use crate::resources::StrategyKind;
use crate::response::{ApiError, ApiResult, store_error};
use crate::rest::Ctx;

/// The store prefix of Services.
const PREFIX: &str = "/registry/core/services/";

/// Fills `spec.clusterIP(s)` and node ports of a new Service. The returned guard holds the
/// allocation lock: keep it until the create has been written (or failed), so the next allocation
/// sees this one in the store.
pub async fn allocate(
    ctx: &Ctx,
    obj: &mut Value,
) -> ApiResult<Option<OwnedMutexGuard<AllocCache>>> {
    let Some(ty) = allocating_type(ctx, obj) else {
        return Ok(None);
    };
    let cache = AllocCache::lock_current(ctx).await?;
    let (used_ips, used_ports) = (&cache.ips, &cache.ports);
    let (base, prefix) = ctx.state.config().service_cidr;
    let requested = obj
        .pointer("/spec/clusterIP")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let ip = match requested.as_str() {
        "None" => "None".to_string(),
        "" => dynamic_ip(ctx, used_ips)?,
        other => {
            let parsed: Ipv4Addr = other
                .parse()
                .map_err(|_| invalid_ip(ctx, other, "must be a valid IP address"))?;
            if !in_cidr(parsed, base, prefix) {
                return Err(invalid_ip(
                    ctx,
                    other,
                    &format!(
                        "the provided IP ({other}) is not in the valid range. The range of valid IPs is {base}/{prefix}"
                    ),
                ));
            }
            if used_ips.contains_key(&parsed) {
                return Err(invalid_ip(
                    ctx,
                    other,
                    &format!("failed to allocate IP {other}: provided IP is already allocated"),
                ));
            }
            other.to_string()
        }
    };
    set_cluster_ip(obj, &ip);
    if ty == "NodePort" || ty == "LoadBalancer" {
        let taken: HashSet<u16> = used_ports.keys().copied().collect();
        fill_node_ports(ctx, obj, taken, &HashSet::new())?;
    }
    Ok(Some(cache))
}

/// On update of a Service, what a create would have allocated and the update lacks: node ports for
/// ports without one once the type needs them (a ClusterIP Service turned NodePort), a ClusterIP once
/// an ExternalName Service gets a type that has one; and a 422 when a node port the update asks for
/// is held by another Service. Returns the allocation lock when it allocated or checked anything;
/// hold it until the update is written, as for a create.
pub async fn allocate_update(
    ctx: &Ctx,
    old: &Value,
    new: &mut Value,
) -> ApiResult<Option<OwnedMutexGuard<AllocCache>>> {
    let Some(ty) = allocating_type(ctx, new) else {
        return Ok(None);
    };
    let own_ports: HashSet<u16> = node_ports(old).collect();
    let wants_ports = ty == "NodePort" || ty == "LoadBalancer";
    let ports_to_check = wants_ports
        && new
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|p| node_port(p).is_none_or(|n| !own_ports.contains(&n)));
    let needs_ip = new
        .pointer("/spec/clusterIP")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty);
    if !ports_to_check && !needs_ip {
        return Ok(None);
    }
    let cache = AllocCache::lock_current(ctx).await?;
    if needs_ip {
        let ip = dynamic_ip(ctx, &cache.ips)?;
        set_cluster_ip(new, &ip);
    }
    if wants_ports {
        let taken: HashSet<u16> = cache
            .ports
            .keys()
            .copied()
            .filter(|p| !own_ports.contains(p))
            .collect();
        fill_node_ports(ctx, new, taken, &own_ports)?;
    }
    Ok(Some(cache))
}

/// The type of a Service that gets allocations (not ExternalName); `None` for anything else.
fn allocating_type(ctx: &Ctx, obj: &Value) -> Option<String> {
    if ctx.res.strategy != StrategyKind::Service {
        return None;
    }
    let ty = obj
        .pointer("/spec/type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP");
    (ty != "ExternalName").then(|| ty.to_string())
}

/// A free address from the service CIDR, or 500 when the range is full.
fn dynamic_ip<V>(ctx: &Ctx, used: &HashMap<Ipv4Addr, V>) -> ApiResult<String> {
    let (base, prefix) = ctx.state.config().service_cidr;
    match pick_free(base, prefix, used, rand::random::<u64>()) {
        Some(ip) => Ok(ip.to_string()),
        None => Err(ApiError(StatusError::internal(
            "failed to allocate a serviceIP: range is full",
        ))),
    }
}

/// Records `ip` (an address or `None`) as the Service's single-stack IPv4 ClusterIP.
fn set_cluster_ip(obj: &mut Value, ip: &str) {
    obj["spec"]["clusterIP"] = json!(ip);
    obj["spec"]["clusterIPs"] = json!([ip]);
    obj["spec"]["ipFamilies"] = json!(["IPv4"]);
    obj["spec"]["ipFamilyPolicy"] = json!("SingleStack");
}

/// The node port one entry of `spec.ports` names.
fn node_port(port: &Value) -> Option<u16> {
    port.get("nodePort")
        .and_then(Value::as_u64)
        .map(|n| n as u16)
}

/// The node ports a Service object names.
fn node_ports(svc: &Value) -> impl Iterator<Item = u16> + '_ {
    svc.pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(node_port)
}

/// Gives every port of `obj` without a node port the lowest free one, and refuses (422) a node port
/// that is `taken` by another Service. `own` are ports this Service already holds.
fn fill_node_ports(
    ctx: &Ctx,
    obj: &mut Value,
    mut taken: HashSet<u16>,
    own: &HashSet<u16>,
) -> ApiResult<()> {
    let (lo, hi) = ctx.state.config().node_port_range;
    let Some(Value::Array(ports)) = obj.pointer_mut("/spec/ports") else {
        return Ok(());
    };
    // Named ports first, so a free port is never handed out that a later entry asks for.
    let mut asked = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        if let Some(n) = node_port(p) {
            // The same port twice in one Service is validation's business (upstream allows it
            // for different protocols).
            asked.insert(n);
            if own.contains(&n) {
                continue;
            }
            let refuse = |detail: &str| {
                ApiError(StatusError::invalid(
                    "",
                    "Service",
                    ctx.name(),
                    vec![crate::strategy::validate::invalid(
                        &format!("spec.ports[{i}].nodePort"),
                        &json!(n),
                        detail,
                    )],
                ))
            };
            if !(lo..=hi).contains(&n) {
                return Err(refuse(&format!(
                    "provided port is not in the valid range. The range of valid ports is {lo}-{hi}"
                )));
            }
            if taken.contains(&n) {
                return Err(refuse("provided port is already allocated"));
            }
        }
    }
    taken.extend(asked);
    for p in ports.iter_mut() {
        if node_port(p).is_some() {
            continue;
        }
        let Some(free) = (lo..=hi).find(|port| !taken.contains(port)) else {
            return Err(ApiError(StatusError::internal(
                "failed to allocate a nodePort: range is full",
            )));
        };
        taken.insert(free);
        p["nodePort"] = json!(free);
    }
    Ok(())
}

fn invalid_ip(ctx: &Ctx, ip: &str, detail: &str) -> ApiError {
    ApiError(StatusError::invalid(
        "",
        "Service",
        ctx.name(),
        vec![crate::strategy::validate::invalid(
            "spec.clusterIPs",
            &json!([ip]),
            detail,
        )],
    ))
}

/// Size of the lower band reserved for static allocation, as upstream computes it.
fn static_band(size: u64) -> u64 {
    (size / 16).clamp(16, 256)
}

/// A free address for dynamic allocation: a random start in the upper band, scanning forward (and
/// wrapping), then the lower band. The network address and the broadcast address are never used.
fn pick_free<V>(
    base: Ipv4Addr,
    prefix: u8,
    used: &HashMap<Ipv4Addr, V>,
    seed: u64,
) -> Option<Ipv4Addr> {
    let base = u32::from(base);
    let size = 1u64 << (32 - prefix as u32);
    let first = 1u64;
    let last = size.saturating_sub(2);
    if last < first {
        return None;
    }
    let band = static_band(size).min(last);
    let free = |off: u64| {
        let ip = Ipv4Addr::from(base.wrapping_add(off as u32));
        (!used.contains_key(&ip)).then_some(ip)
    };
    let upper = (band + 1)..=last;
    if !upper.is_empty() {
        let len = last - band;
        let start = seed % len;
        if let Some(ip) = (0..len).find_map(|i| free(band + 1 + (start + i) % len)) {
            return Some(ip);
        }
    }
    (first..=band).find_map(free)
}

fn in_cidr(ip: Ipv4Addr, base: Ipv4Addr, prefix: u8) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix as u32)
    };
    u32::from(ip) & mask == u32::from(base) & mask
}

/// The allocated fields of a stored Service; everything else is skipped while decoding.
#[derive(serde::Deserialize)]
struct Allocated {
    #[serde(default)]
    spec: AllocatedSpec,
}

#[derive(serde::Deserialize, Default)]
struct AllocatedSpec {
    #[serde(rename = "clusterIP", default)]
    cluster_ip: Option<String>,
    #[serde(default)]
    ports: Vec<AllocatedPort>,
}

#[derive(serde::Deserialize)]
struct AllocatedPort {
    #[serde(rename = "nodePort", default)]
    node_port: Option<u16>,
}

/// The addresses and ports held by the stored Services, as of `revision`.
#[derive(Default)]
pub struct AllocCache {
    /// The store revision the cache reflects; `None` before the first list.
    revision: Option<Revision>,
    /// What each Service (by store key) holds.
    by_key: HashMap<String, Held>,
    /// ClusterIPs in use, with how many Services hold each (more than one only if the store was
    /// written around the allocator).
    ips: HashMap<Ipv4Addr, u32>,
    /// NodePorts in use, counted the same way.
    ports: HashMap<u16, u32>,
    /// How many times the Services were listed in full (the rest were catch-ups from the log).
    relists: u64,
}

/// What one Service holds.
struct Held {
    ip: Option<Ipv4Addr>,
    ports: Vec<u16>,
}

impl AllocCache {
    /// Takes the allocation lock and brings the cache up to the store's current revision.
    async fn lock_current(ctx: &Ctx) -> ApiResult<OwnedMutexGuard<AllocCache>> {
        let mut cache = ctx.state.0.alloc.clone().lock_owned().await;
        cache.refresh(ctx.state.store()).map_err(store_error)?;
        Ok(cache)
    }

    /// Brings the cache up to the store's current revision: the event log's changes since the
    /// cached revision, or a fresh list when there is no cached revision, the log was compacted
    /// past it, or too much happened since.
    fn refresh(&mut self, store: &Store) -> Result<(), k1s_store::StoreError> {
        if let Some(from) = self.revision {
            let budget = 4096usize.max(4 * self.by_key.len());
            if let Some((events, current)) = store.changes_since(PREFIX, from, budget)? {
                for ev in events {
                    match ev.kind {
                        EventType::Deleted => self.remove(&ev.kv.key),
                        EventType::Added | EventType::Modified => self.set(ev.kv.key, &ev.kv.value),
                    }
                }
                self.revision = Some(current);
                return Ok(());
            }
        }
        let list = store.list(PREFIX, k1s_store::ListOptions::default())?;
        *self = AllocCache {
            relists: self.relists + 1,
            ..AllocCache::default()
        };
        for kv in list.items {
            self.set(kv.key, &kv.value);
        }
        self.revision = Some(list.revision);
        Ok(())
    }

    /// Records what the Service stored under `key` holds now (replacing what it held).
    fn set(&mut self, key: String, json: &[u8]) {
        self.remove(&key);
        let Ok(svc) = serde_json::from_slice::<Allocated>(json) else {
            return;
        };
        let held = Held {
            ip: svc.spec.cluster_ip.and_then(|s| s.parse().ok()),
            ports: svc.spec.ports.iter().filter_map(|p| p.node_port).collect(),
        };
        if let Some(ip) = held.ip {
            *self.ips.entry(ip).or_default() += 1;
        }
        for p in &held.ports {
            *self.ports.entry(*p).or_default() += 1;
        }
        self.by_key.insert(key, held);
    }

    /// Forgets the Service stored under `key`.
    fn remove(&mut self, key: &str) {
        let Some(held) = self.by_key.remove(key) else {
            return;
        };
        if let Some(ip) = held.ip {
            release(&mut self.ips, ip);
        }
        for p in held.ports {
            release(&mut self.ports, p);
        }
    }
}

/// Drops one holder of `k`, and `k` itself with its last holder.
fn release<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, u32>, k: K) {
    if let Some(n) = counts.get_mut(&k) {
        *n -= 1;
        if *n == 0 {
            counts.remove(&k);
        }
    }
}

/// On update, an unset ClusterIP or nodePort keeps the allocated one (as `kubectl apply` omits them).
pub fn keep_allocations(ctx: &Ctx, old: &Value, new: &mut Value) {
    if ctx.res.strategy != StrategyKind::Service || old.get("spec").is_none() {
        return;
    }
    let same_type = old.pointer("/spec/type") == new.pointer("/spec/type");
    for key in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
        let missing = new
            .pointer(&format!("/spec/{key}"))
            .is_none_or(|v| v.is_null() || v == "");
        if missing && let Some(v) = old["spec"].get(key) {
            new["spec"][key] = v.clone();
        }
    }
    if !same_type {
        return;
    }
    let old_ports: Vec<Value> = old
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if let Some(Value::Array(ports)) = new.pointer_mut("/spec/ports") {
        for p in ports.iter_mut() {
            if p.get("nodePort").is_some() {
                continue;
            }
            let matching = old_ports
                .iter()
                .find(|o| o.get("port") == p.get("port") && o.get("protocol") == p.get("protocol"));
            if let Some(np) = matching.and_then(|o| o.get("nodePort")) {
                p["nodePort"] = np.clone();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(ip: &str, node_port: Option<u16>) -> serde_json::Value {
        let mut port = json!({"port": 80});
        if let Some(n) = node_port {
            port["nodePort"] = json!(n);
        }
        json!({"metadata": {"name": "s"}, "spec": {"clusterIP": ip, "ports": [port]}})
    }

    #[tokio::test]
    async fn the_cache_follows_the_store_from_the_event_log() {
        use k1s_store::WriteOp;
        let store = Store::open(Default::default()).unwrap();
        let key = |n: &str| format!("{PREFIX}default/{n}");
        let put = |n: &str, v| WriteOp::Create {
            key: key(n),
            value: v,
        };
        store
            .write(put("a", svc("10.43.1.1", Some(30001))))
            .await
            .unwrap();
        let mut cache = AllocCache::default();
        cache.refresh(&store).unwrap();
        assert_eq!(cache.relists, 1);
        assert!(cache.ips.contains_key(&Ipv4Addr::new(10, 43, 1, 1)));
        assert!(cache.ports.contains_key(&30001));
        // Writes of other kinds, a new Service, a changed one and a deleted one.
        store
            .write(WriteOp::Create {
                key: "/registry/core/configmaps/default/x".into(),
                value: json!({"metadata": {"name": "x"}}),
            })
            .await
            .unwrap();
        store.write(put("b", svc("10.43.2.2", None))).await.unwrap();
        store
            .write(WriteOp::Update {
                key: key("b"),
                value: svc("10.43.2.2", Some(30002)),
                expected: None,
            })
            .await
            .unwrap();
        store
            .write(WriteOp::Delete {
                key: key("a"),
                expected: None,
            })
            .await
            .unwrap();
        cache.refresh(&store).unwrap();
        assert_eq!(cache.relists, 1, "caught up from the log, not relisted");
        assert_eq!(cache.revision, Some(store.revision()));
        assert!(!cache.ips.contains_key(&Ipv4Addr::new(10, 43, 1, 1)));
        assert!(!cache.ports.contains_key(&30001));
        assert!(cache.ips.contains_key(&Ipv4Addr::new(10, 43, 2, 2)));
        assert!(cache.ports.contains_key(&30002));
        assert_eq!((cache.ips.len(), cache.ports.len()), (1, 1));
    }

    #[test]
    fn cidr() {
        let base = Ipv4Addr::new(10, 96, 0, 0);
        assert!(in_cidr(Ipv4Addr::new(10, 100, 1, 1), base, 12));
        assert!(!in_cidr(Ipv4Addr::new(10, 112, 0, 1), base, 12));
    }

    #[test]
    fn dynamic_allocation_prefers_the_upper_band() {
        let base = Ipv4Addr::new(10, 43, 0, 0);
        let used: HashMap<Ipv4Addr, ()> = HashMap::new();
        for seed in [0, 1, 7, u64::MAX, 65_000] {
            let ip = pick_free(base, 16, &used, seed).unwrap();
            // /16: the lower band is .0.1-.0.255 (256 addresses), kept for requested IPs.
            assert!(
                u32::from(ip) > u32::from(Ipv4Addr::new(10, 43, 0, 255)),
                "{ip}"
            );
            assert!(
                u32::from(ip) < u32::from(Ipv4Addr::new(10, 43, 255, 255)),
                "{ip}"
            );
        }
    }

    #[test]
    fn a_full_upper_band_falls_back_to_the_lower_one() {
        // /28: 16 addresses, band = 16 clamped to the usable 14 → everything is "lower band".
        let base = Ipv4Addr::new(10, 0, 0, 0);
        let mut used: HashMap<Ipv4Addr, ()> = HashMap::new();
        let mut got = HashSet::new();
        for _ in 0..14 {
            let ip = pick_free(base, 28, &used, 3).unwrap();
            assert!(got.insert(ip));
            used.insert(ip, ());
        }
        assert_eq!(pick_free(base, 28, &used, 3), None);
        assert!(!got.contains(&Ipv4Addr::new(10, 0, 0, 0)));
        assert!(!got.contains(&Ipv4Addr::new(10, 0, 0, 15)));
        // /24: band 16 → upper .17-.254; once those are taken, the lower band serves.
        let base = Ipv4Addr::new(10, 1, 0, 0);
        let used: HashMap<Ipv4Addr, ()> = (17..=254)
            .map(|i| (Ipv4Addr::new(10, 1, 0, i), ()))
            .collect();
        let ip = pick_free(base, 24, &used, 99).unwrap();
        assert!(
            u32::from(ip) <= u32::from(Ipv4Addr::new(10, 1, 0, 16)),
            "{ip}"
        );
    }
}
