//! The resource table: one row per served resource, built-in or defined by a CRD.
//!
//! Every REST handler, discovery document and OpenAPI document is derived from these rows, so a new
//! kind is a row plus (optionally) a strategy, never a new set of handlers. The table is immutable;
//! CRD changes build a new table and swap it in atomically (see [`crate::state::AppState`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

/// Which strategy (defaults, validation, status handling) a resource uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StrategyKind {
    Namespace,
    Pod,
    Service,
    Endpoints,
    ConfigMap,
    Secret,
    ServiceAccount,
    Event,
    Node,
    LimitRange,
    ResourceQuota,
    Deployment,
    ReplicaSet,
    StatefulSet,
    DaemonSet,
    EndpointSlice,
    Lease,
    PodDisruptionBudget,
    EventsV1,
    Crd,
    /// A custom resource served from a CRD.
    Custom,
}

/// How a CRD-defined resource is validated and printed.
#[derive(Clone, Debug, Default)]
pub struct CustomSpec {
    /// `openAPIV3Schema` of the served version.
    pub schema: Option<Value>,
    /// `additionalPrinterColumns` of the served version.
    pub printer_columns: Vec<Value>,
    /// `subresources.scale` of the served version, if any.
    pub scale: Option<Value>,
}

/// One served resource (one group/version/resource triple).
#[derive(Clone, Debug)]
pub struct Resource {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub list_kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    /// Subresources served: `status`, `scale`, `log`, ...
    pub subresources: Vec<String>,
    pub strategy: StrategyKind,
    /// Present for custom resources.
    pub custom: Option<Arc<CustomSpec>>,
    /// Whether this is the version a group's discovery prefers.
    pub preferred: bool,
}

impl Resource {
    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `pods` or `deployments.apps`, as upstream's error messages name a resource.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// Store key prefix for this resource, ending with `/`. `events.k8s.io` Events live with
    /// the core Events (see [`crate::events_view`]).
    pub fn key_prefix(&self) -> String {
        if crate::events_view::is_view(self) {
            return "/registry/core/events/".to_string();
        }
        let group = if self.group.is_empty() {
            "core"
        } else {
            &self.group
        };
        format!("/registry/{group}/{}/", self.plural)
    }

    /// Store key of one object (`namespace` is ignored for cluster-scoped resources).
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        let mut key = self.key_prefix();
        if self.namespaced {
            key.push_str(namespace.unwrap_or_default());
            key.push('/');
        }
        key.push_str(name);
        key
    }

    /// Store prefix for a list, optionally inside one namespace.
    pub fn list_prefix(&self, namespace: Option<&str>) -> String {
        let mut key = self.key_prefix();
        if let (true, Some(ns)) = (self.namespaced, namespace) {
            key.push_str(ns);
            key.push('/');
        }
        key
    }

    /// Verbs of the main resource, as discovery lists them.
    pub fn verbs(&self) -> Vec<&'static str> {
        if self.group == crate::metrics_api::GROUP {
            return vec!["get", "list"];
        }
        vec![
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ]
    }

    /// Verbs and kind of a subresource, as discovery lists them.
    pub fn subresource_verbs(
        sub: &str,
    ) -> (
        &'static [&'static str],
        &'static str,
        &'static str,
        &'static str,
    ) {
        // (verbs, group, version, kind)
        match sub {
            "scale" => (&["get", "patch", "update"], "autoscaling", "v1", "Scale"),
            "log" => (&["get"], "", "v1", "Pod"),
            "exec" | "attach" | "portforward" => (&["create", "get"], "", "v1", "PodExecOptions"),
            "binding" => (&["create"], "", "v1", "Binding"),
            "eviction" => (&["create"], "policy", "v1", "Eviction"),
            "token" => (&["create"], "authentication.k8s.io", "v1", "TokenRequest"),
            "finalize" => (&["update"], "", "v1", "Namespace"),
            _ => (&["get", "patch", "update"], "", "", ""),
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn row(
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
    namespaced: bool,
    short: &[&str],
    categories: &[&str],
    subresources: &[&str],
    strategy: StrategyKind,
) -> Resource {
    Resource {
        group: group.into(),
        version: version.into(),
        kind: kind.into(),
        list_kind: format!("{kind}List"),
        plural: plural.into(),
        singular: kind.to_ascii_lowercase(),
        namespaced,
        short_names: short.iter().map(|s| s.to_string()).collect(),
        categories: categories.iter().map(|s| s.to_string()).collect(),
        subresources: subresources.iter().map(|s| s.to_string()).collect(),
        strategy,
        custom: None,
        preferred: true,
    }
}

/// The built-in resources k1s serves.
pub fn builtin() -> Vec<Resource> {
    use StrategyKind as S;
    vec![
        row(
            "",
            "v1",
            "Namespace",
            "namespaces",
            false,
            &["ns"],
            &[],
            &["status", "finalize"],
            S::Namespace,
        ),
        row(
            "",
            "v1",
            "Pod",
            "pods",
            true,
            &["po"],
            &["all"],
            &[
                "status",
                "binding",
                "eviction",
                "log",
                "ephemeralcontainers",
            ],
            S::Pod,
        ),
        row(
            "",
            "v1",
            "Service",
            "services",
            true,
            &["svc"],
            &["all"],
            &["status"],
            S::Service,
        ),
        row(
            "",
            "v1",
            "Endpoints",
            "endpoints",
            true,
            &["ep"],
            &[],
            &[],
            S::Endpoints,
        ),
        row(
            "",
            "v1",
            "ConfigMap",
            "configmaps",
            true,
            &["cm"],
            &[],
            &[],
            S::ConfigMap,
        ),
        row(
            "",
            "v1",
            "Secret",
            "secrets",
            true,
            &[],
            &[],
            &[],
            S::Secret,
        ),
        row(
            "",
            "v1",
            "ServiceAccount",
            "serviceaccounts",
            true,
            &["sa"],
            &[],
            &["token"],
            S::ServiceAccount,
        ),
        row(
            "",
            "v1",
            "Event",
            "events",
            true,
            &["ev"],
            &[],
            &[],
            S::Event,
        ),
        row(
            "",
            "v1",
            "Node",
            "nodes",
            false,
            &["no"],
            &[],
            &["status"],
            S::Node,
        ),
        row(
            "",
            "v1",
            "LimitRange",
            "limitranges",
            true,
            &["limits"],
            &[],
            &[],
            S::LimitRange,
        ),
        row(
            "",
            "v1",
            "ResourceQuota",
            "resourcequotas",
            true,
            &["quota"],
            &[],
            &["status"],
            S::ResourceQuota,
        ),
        row(
            "apps",
            "v1",
            "Deployment",
            "deployments",
            true,
            &["deploy"],
            &["all"],
            &["status", "scale"],
            S::Deployment,
        ),
        row(
            "apps",
            "v1",
            "ReplicaSet",
            "replicasets",
            true,
            &["rs"],
            &["all"],
            &["status", "scale"],
            S::ReplicaSet,
        ),
        row(
            "apps",
            "v1",
            "StatefulSet",
            "statefulsets",
            true,
            &["sts"],
            &["all"],
            &["status", "scale"],
            S::StatefulSet,
        ),
        row(
            "apps",
            "v1",
            "DaemonSet",
            "daemonsets",
            true,
            &["ds"],
            &["all"],
            &["status"],
            S::DaemonSet,
        ),
        row(
            "discovery.k8s.io",
            "v1",
            "EndpointSlice",
            "endpointslices",
            true,
            &[],
            &[],
            &[],
            S::EndpointSlice,
        ),
        row(
            "policy",
            "v1",
            "PodDisruptionBudget",
            "poddisruptionbudgets",
            true,
            &["pdb"],
            &[],
            &["status"],
            S::PodDisruptionBudget,
        ),
        row(
            "coordination.k8s.io",
            "v1",
            "Lease",
            "leases",
            true,
            &[],
            &[],
            &[],
            S::Lease,
        ),
        row(
            "events.k8s.io",
            "v1",
            "Event",
            "events",
            true,
            &["ev"],
            &[],
            &[],
            S::EventsV1,
        ),
        row(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            false,
            &["crd", "crds"],
            &[],
            &["status"],
            S::Crd,
        ),
    ]
}

/// The immutable table of served resources with lookup indexes.
#[derive(Clone, Debug, Default)]
pub struct ResourceTable {
    rows: Vec<Arc<Resource>>,
    /// (group, version, plural) → row index.
    by_path: BTreeMap<(String, String, String), usize>,
}

impl ResourceTable {
    /// Builds a table from rows; later rows do not override earlier ones.
    pub fn new(rows: Vec<Resource>) -> Self {
        let mut table = ResourceTable::default();
        for r in rows {
            let key = (r.group.clone(), r.version.clone(), r.plural.clone());
            if table.by_path.contains_key(&key) {
                continue;
            }
            table.by_path.insert(key, table.rows.len());
            table.rows.push(Arc::new(r));
        }
        table
    }

    /// Looks a resource up by its URL parts.
    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<Arc<Resource>> {
        self.by_path
            .get(&(group.to_string(), version.to_string(), plural.to_string()))
            .map(|&i| self.rows[i].clone())
    }

    /// Looks a resource up by group and kind (any version, preferred first).
    pub fn by_kind(&self, group: &str, kind: &str) -> Option<Arc<Resource>> {
        let mut found = None;
        for r in &self.rows {
            if r.group == group && r.kind == kind {
                if r.preferred {
                    return Some(r.clone());
                }
                found.get_or_insert_with(|| r.clone());
            }
        }
        found
    }

    /// Every row in table order.
    pub fn rows(&self) -> &[Arc<Resource>] {
        &self.rows
    }

    /// Groups in discovery order with their versions (preferred first).
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for r in &self.rows {
            match out.iter_mut().find(|(g, _)| *g == r.group) {
                Some((_, versions)) => {
                    if !versions.contains(&r.version) {
                        if r.preferred {
                            versions.insert(0, r.version.clone());
                        } else {
                            versions.push(r.version.clone());
                        }
                    }
                }
                None => out.push((r.group.clone(), vec![r.version.clone()])),
            }
        }
        out
    }

    /// Rows of one group/version.
    pub fn group_version(&self, group: &str, version: &str) -> Vec<Arc<Resource>> {
        self.rows
            .iter()
            .filter(|r| r.group == group && r.version == version)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_names() {
        let table = ResourceTable::new(builtin());
        let deploy = table.get("apps", "v1", "deployments").unwrap();
        assert_eq!(
            deploy.key(Some("default"), "web"),
            "/registry/apps/deployments/default/web"
        );
        assert_eq!(deploy.qualified(), "deployments.apps");
        assert_eq!(deploy.api_version(), "apps/v1");
        let ns = table.get("", "v1", "namespaces").unwrap();
        assert_eq!(
            ns.key(Some("ignored"), "kube-system"),
            "/registry/core/namespaces/kube-system"
        );
        assert_eq!(ns.qualified(), "namespaces");
        assert_eq!(table.by_kind("", "Pod").unwrap().plural, "pods");
        assert!(table.get("", "v1", "nope").is_none());
    }

    #[test]
    fn list_prefix_is_namespace_scoped_only_for_namespaced() {
        let table = ResourceTable::new(builtin());
        let cm = table.get("", "v1", "configmaps").unwrap();
        assert_eq!(cm.list_prefix(Some("a")), "/registry/core/configmaps/a/");
        assert_eq!(cm.list_prefix(None), "/registry/core/configmaps/");
        // "a/" must not match namespace "ab".
        assert!(!"/registry/core/configmaps/ab/x".starts_with(&cm.list_prefix(Some("a"))));
    }

    #[test]
    fn groups_in_order() {
        let table = ResourceTable::new(builtin());
        let groups: Vec<String> = table.groups().into_iter().map(|(g, _)| g).collect();
        assert_eq!(groups[0], "");
        assert!(groups.contains(&"apps".to_string()));
    }
}
