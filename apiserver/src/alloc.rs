//! Service ClusterIP and NodePort allocation.
//!
//! Allocation is serialised by one lock and checks the services in the store, so two creates never get
//! the same address. A single node holds few services, so a scan is cheaper than a bitmap that would
//! have to be kept consistent with the store across crashes.

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
            let base = u32::from(base);
            let size = 1u64 << (32 - prefix as u32);
            // Skip the network address and .1 (the `kubernetes` service takes .1 explicitly).
            let found = (2..size.saturating_sub(1))
                .map(|off| Ipv4Addr::from(base.wrapping_add(off as u32)))
                .find(|ip| !used_ips.contains(ip));
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

fn in_cidr(ip: Ipv4Addr, base: Ipv4Addr, prefix: u8) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix as u32)
    };
    u32::from(ip) & mask == u32::from(base) & mask
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
        let Ok(svc) = serde_json::from_slice::<Value>(&kv.value) else {
            continue;
        };
        if let Some(ip) = svc
            .pointer("/spec/clusterIP")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
        {
            ips.insert(ip);
        }
        for p in svc
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(n) = p.get("nodePort").and_then(Value::as_u64) {
                ports.insert(n as u16);
            }
        }
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
}
