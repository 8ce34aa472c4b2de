//! Service ClusterIP and NodePort allocation.
//!
//! Allocation is serialised by one lock and checks the services in the store, so two creates never get
//! the same address, also after a crash (the store is the only record). The scan decodes only the
//! allocated fields of each Service.
//!
//! As upstream's allocator (ServiceIPStaticSubrange), the range is split: the lower band
//! (min(max(16, size/16), 256) addresses) is kept for IPs users and k1s request explicitly
//! (`kubernetes` at .1, `kube-dns` at .10); dynamic allocation picks a random free address from the
//! upper band first and only falls back to the lower band when the upper one is full.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use k1s_apimachinery::status::StatusError;
use serde_json::{Value, json};

use crate::resources::StrategyKind;
use crate::response::{ApiError, ApiResult, store_error};
use crate::rest::Ctx;

/// Fills `spec.clusterIP(s)` and node ports of a new Service.
pub async fn allocate(ctx: &Ctx, obj: &mut Value) -> ApiResult<()> {
    if ctx.res.strategy != StrategyKind::Service {
        return Ok(());
    }
    let ty = obj
        .pointer("/spec/type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
        .to_string();
    if ty == "ExternalName" {
        return Ok(());
    }
    let _guard = ctx.state.0.alloc_lock.lock().await;
    let (used_ips, used_ports) = in_use(ctx)?;
    let (base, prefix) = ctx.state.config().service_cidr;
    let requested = obj
        .pointer("/spec/clusterIP")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let ip = match requested.as_str() {
        "None" => "None".to_string(),
        "" => {
            let found = pick_free(base, prefix, &used_ips, rand::random::<u64>());
            match found {
                Some(ip) => ip.to_string(),
                None => {
                    return Err(ApiError(StatusError::internal(
                        "failed to allocate a serviceIP: range is full",
                    )));
                }
            }
        }
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
            if used_ips.contains(&parsed) {
                return Err(invalid_ip(
                    ctx,
                    other,
                    &format!("failed to allocate IP {other}: provided IP is already allocated"),
                ));
            }
            other.to_string()
        }
    };
    obj["spec"]["clusterIP"] = json!(ip);
    obj["spec"]["clusterIPs"] = json!([ip]);
    obj["spec"]["ipFamilies"] = json!(["IPv4"]);
    obj["spec"]["ipFamilyPolicy"] = json!("SingleStack");
    if ty == "NodePort" || ty == "LoadBalancer" {
        let (lo, hi) = ctx.state.config().node_port_range;
        let mut taken = used_ports;
        if let Some(Value::Array(ports)) = obj.pointer_mut("/spec/ports") {
            for p in ports.iter_mut() {
                if let Some(n) = p.get("nodePort").and_then(Value::as_u64) {
                    let n = n as u16;
                    if !taken.insert(n) {
                        return Err(ApiError(StatusError::invalid(
                            "",
                            "Service",
                            ctx.name(),
                            vec![crate::strategy::validate::invalid(
                                "spec.ports[0].nodePort",
                                &json!(n),
                                "provided port is already allocated",
                            )],
                        )));
                    }
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
        }
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
fn pick_free(base: Ipv4Addr, prefix: u8, used: &HashSet<Ipv4Addr>, seed: u64) -> Option<Ipv4Addr> {
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
        (!used.contains(&ip)).then_some(ip)
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

fn in_use(ctx: &Ctx) -> ApiResult<(HashSet<Ipv4Addr>, HashSet<u16>)> {
    let list = ctx
        .state
        .store()
        .list(
            "/registry/core/services/",
            k1s_store::ListOptions::default(),
        )
        .map_err(store_error)?;
    let mut ips = HashSet::new();
    let mut ports = HashSet::new();
    for kv in list.items {
        let Ok(svc) = serde_json::from_slice::<Allocated>(&kv.value) else {
            continue;
        };
        if let Some(ip) = svc.spec.cluster_ip.and_then(|s| s.parse().ok()) {
            ips.insert(ip);
        }
        ports.extend(svc.spec.ports.iter().filter_map(|p| p.node_port));
    }
    Ok((ips, ports))
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

    #[test]
    fn cidr() {
        let base = Ipv4Addr::new(10, 96, 0, 0);
        assert!(in_cidr(Ipv4Addr::new(10, 100, 1, 1), base, 12));
        assert!(!in_cidr(Ipv4Addr::new(10, 112, 0, 1), base, 12));
    }

    #[test]
    fn dynamic_allocation_prefers_the_upper_band() {
        let base = Ipv4Addr::new(10, 43, 0, 0);
        let used = HashSet::new();
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
        let mut used: HashSet<Ipv4Addr> = HashSet::new();
        let mut got = HashSet::new();
        for _ in 0..14 {
            let ip = pick_free(base, 28, &used, 3).unwrap();
            assert!(got.insert(ip));
            used.insert(ip);
        }
        assert_eq!(pick_free(base, 28, &used, 3), None);
        assert!(!got.contains(&Ipv4Addr::new(10, 0, 0, 0)));
        assert!(!got.contains(&Ipv4Addr::new(10, 0, 0, 15)));
        // /24: band 16 → upper .17-.254; once those are taken, the lower band serves.
        let base = Ipv4Addr::new(10, 1, 0, 0);
        let used: HashSet<Ipv4Addr> = (17..=254).map(|i| Ipv4Addr::new(10, 1, 0, i)).collect();
        let ip = pick_free(base, 24, &used, 99).unwrap();
        assert!(
            u32::from(ip) <= u32::from(Ipv4Addr::new(10, 1, 0, 16)),
            "{ip}"
        );
    }
}
