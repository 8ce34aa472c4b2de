//! Shared server state: the store, the current resource table, caches. Cheap to clone.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use k1s_store::Store;

use crate::resources::{ResourceTable, builtin};

/// Settings of the API server that requests depend on.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// Address clients reach the server at (for `/api` discovery), e.g. `127.0.0.1:6443`.
    pub advertise_address: String,
    /// Service ClusterIP range.
    pub service_cidr: (Ipv4Addr, u8),
    /// NodePort range (inclusive).
    pub node_port_range: (u16, u16),
}

/// Parses an IPv4 CIDR such as `10.43.0.0/16` (the address is masked to the network).
pub fn parse_cidr(s: &str) -> Result<(Ipv4Addr, u8), String> {
    let (ip, len) = s
        .split_once('/')
        .ok_or_else(|| format!("{s:?} is not a CIDR (want e.g. 10.43.0.0/16)"))?;
    let ip: Ipv4Addr = ip
        .parse()
        .map_err(|_| format!("{ip:?} is not an IPv4 address"))?;
    let len: u8 = len
        .parse()
        .ok()
        .filter(|l| (8..=30).contains(l))
        .ok_or_else(|| format!("prefix length {len:?} must be between 8 and 30"))?;
    let mask = u32::MAX << (32 - u32::from(len));
    Ok((Ipv4Addr::from(u32::from(ip) & mask), len))
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            advertise_address: "127.0.0.1:6443".into(),
            service_cidr: (Ipv4Addr::new(10, 43, 0, 0), 16),
            node_port_range: (30000, 32767),
        }
    }
}

/// Everything a request handler needs.
#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

pub struct Inner {
    pub store: Store,
    pub config: ApiConfig,
    table: RwLock<Arc<ResourceTable>>,
    ready: AtomicBool,
    /// OpenAPI documents by path (`api/v1`, `apis/apps/v1`): (hash, JSON bytes).
    pub openapi_cache: Mutex<HashMap<String, (String, bytes::Bytes)>>,
    /// Parsed schema indexes by the same paths, for field validation.
    pub schema_cache: Mutex<HashMap<String, Arc<crate::openapi::SchemaIndex>>>,
    /// The ClusterIPs and NodePorts in use; its lock serialises allocation and is held until the
    /// allocating create has committed.
    pub alloc: Arc<tokio::sync::Mutex<crate::alloc::AllocCache>>,
    /// Where `pods/log` reads from (set by the kubelet's host).
    pod_logs: std::sync::OnceLock<crate::pod_logs::SharedPodLogs>,
    /// Where `pods/exec`, `attach` and `portforward` go (set by the kubelet's host).
    pod_streams: std::sync::OnceLock<crate::pod_streams::SharedPodStreams>,
    /// The service-account token signing key (set by the server from its PKI).
    token_keys: std::sync::OnceLock<crate::satoken::TokenKeys>,
    /// Where `metrics.k8s.io` reads from (set by the kubelet's host).
    resource_metrics: std::sync::OnceLock<crate::metrics_api::SharedResourceMetrics>,
}

impl AppState {
    pub fn new(store: Store, config: ApiConfig) -> Self {
        AppState(Arc::new(Inner {
            store,
            config,
            table: RwLock::new(Arc::new(ResourceTable::new(builtin()))),
            ready: AtomicBool::new(false),
            openapi_cache: Mutex::new(HashMap::new()),
            schema_cache: Mutex::new(HashMap::new()),
            alloc: Arc::new(tokio::sync::Mutex::new(Default::default())),
            pod_logs: std::sync::OnceLock::new(),
            pod_streams: std::sync::OnceLock::new(),
            token_keys: std::sync::OnceLock::new(),
            resource_metrics: std::sync::OnceLock::new(),
        }))
    }

    pub fn store(&self) -> &Store {
        &self.0.store
    }

    pub fn config(&self) -> &ApiConfig {
        &self.0.config
    }

    /// The current resource table.
    pub fn table(&self) -> Arc<ResourceTable> {
        self.0
            .table
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the resource table (CRD changes) and drops derived caches. The metrics group's
    /// rows are added while a metrics source is installed.
    pub fn set_table(&self, table: ResourceTable) {
        let table = if self.0.resource_metrics.get().is_some() {
            let mut rows: Vec<_> = table.rows().iter().map(|r| (**r).clone()).collect();
            rows.extend(crate::metrics_api::resources());
            ResourceTable::new(rows)
        } else {
            table
        };
        *self.0.table.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(table);
        self.0
            .openapi_cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.0
            .schema_cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    pub fn is_ready(&self) -> bool {
        self.0.ready.load(Ordering::Acquire)
    }

    pub fn set_ready(&self) {
        self.0.ready.store(true, Ordering::Release);
    }

    /// Installs the source `pods/log` reads from; the first one set stays.
    pub fn set_pod_logs(&self, source: crate::pod_logs::SharedPodLogs) {
        let _ = self.0.pod_logs.set(source);
    }

    pub fn pod_logs(&self) -> Option<crate::pod_logs::SharedPodLogs> {
        self.0.pod_logs.get().cloned()
    }

    /// Installs the source of `metrics.k8s.io` and so lists the group in discovery; the first
    /// one set stays.
    pub fn set_resource_metrics(&self, source: crate::metrics_api::SharedResourceMetrics) {
        if self.0.resource_metrics.set(source).is_ok() {
            let rows = self.table().rows().iter().map(|r| (**r).clone()).collect();
            self.set_table(ResourceTable::new(rows));
        }
    }

    pub fn resource_metrics(&self) -> Option<crate::metrics_api::SharedResourceMetrics> {
        self.0.resource_metrics.get().cloned()
    }

    /// Installs the source of exec/attach/port-forward; the first one set stays.
    pub fn set_pod_streams(&self, source: crate::pod_streams::SharedPodStreams) {
        let _ = self.0.pod_streams.set(source);
    }

    /// Installs the key `serviceaccounts/token` signs with; the first one set stays.
    pub fn set_token_keys(&self, keys: crate::satoken::TokenKeys) {
        let _ = self.0.token_keys.set(keys);
    }

    /// The service-account token signing key, if configured.
    pub fn token_keys(&self) -> Option<crate::satoken::TokenKeys> {
        self.0.token_keys.get().cloned()
    }

    pub fn pod_streams(&self) -> Option<crate::pod_streams::SharedPodStreams> {
        self.0.pod_streams.get().cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        assert_eq!(
            parse_cidr("10.43.0.0/16"),
            Ok((Ipv4Addr::new(10, 43, 0, 0), 16))
        );
        assert_eq!(
            parse_cidr("10.43.7.9/16"),
            Ok((Ipv4Addr::new(10, 43, 0, 0), 16))
        );
        assert!(parse_cidr("10.43.0.0").is_err());
        assert!(parse_cidr("10.43.0.0/4").is_err());
        assert!(parse_cidr("nope/16").is_err());
    }
}
