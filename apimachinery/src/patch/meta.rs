//! Patch metadata: which lists merge (and by which key) and which maps retain keys.
//!
//! Invariants:
//! - [`FIELDS`] is the single source of truth: one row per (OpenAPI definition, property). A
//!   row either carries a patch strategy (mirrored from upstream's `patchStrategy` /
//!   `patchMergeKey` struct tags, i.e. `x-kubernetes-patch-strategy` /
//!   `x-kubernetes-patch-merge-key`), or names the definition of the property's value (`child`)
//!   so that path lookups can walk from a kind's root definition, or both;
//! - path lookups ignore list indices, so `["spec","containers","ports"]` reaches
//!   `Container.ports` through `PodSpec.containers`;
//! - at the root of every kind, `metadata` is `ObjectMeta` (finalizers merge, ownerReferences by uid);
//! - anything not in the table is atomic: lists replace, maps merge key by key.

/// How a field merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Strategy {
    /// Lists merge (by merge key for lists of maps, as a set for primitives) instead of replacing.
    pub merge: bool,
    /// The map honours `$retainKeys` (a "union" such as a deployment strategy or a volume source).
    pub retain_keys: bool,
}

/// Patch metadata of one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FieldPatchMeta {
    /// Merge key of a list of maps with merge strategy.
    pub merge_key: Option<&'static str>,
    /// Strategy.
    pub strategy: Strategy,
}

/// Looks up patch metadata by field path from the object root, list indices omitted.
pub trait PatchMeta: Send + Sync {
    /// Metadata of the field at `path` (e.g. `["spec","template","spec","containers"]`).
    fn lookup(&self, path: &[&str]) -> FieldPatchMeta;

    /// Whether the map at `path` is atomic for server-side apply (`x-kubernetes-map-type:
    /// atomic`, e.g. label selectors): it is owned and replaced as a whole.
    fn is_atomic(&self, _path: &[&str]) -> bool {
        false
    }
}

/// Metadata for objects without a schema-declared strategy (custom resources): lists are atomic.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPatchMeta;

impl PatchMeta for NoPatchMeta {
    fn lookup(&self, _path: &[&str]) -> FieldPatchMeta {
        FieldPatchMeta::default()
    }
}

/// One row of the table: a property of an OpenAPI definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldRow {
    /// OpenAPI definition, e.g. `io.k8s.api.core.v1.PodSpec`.
    pub definition: &'static str,
    /// Property name, e.g. `containers`.
    pub property: &'static str,
    /// Definition of the property's value (its items for lists), when the walk needs it.
    pub child: Option<&'static str>,
    /// `x-kubernetes-patch-merge-key`.
    pub merge_key: Option<&'static str>,
    /// `x-kubernetes-patch-strategy` (`""` when none).
    pub strategy: &'static str,
    /// The value is an atomic map/struct (`x-kubernetes-map-type: atomic`).
    pub atomic: bool,
}

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const POD_SPEC: &str = "io.k8s.api.core.v1.PodSpec";
const POD_TEMPLATE_SPEC: &str = "io.k8s.api.core.v1.PodTemplateSpec";
const CONTAINER: &str = "io.k8s.api.core.v1.Container";
const EPHEMERAL_CONTAINER: &str = "io.k8s.api.core.v1.EphemeralContainer";
const JOB_SPEC: &str = "io.k8s.api.batch.v1.JobSpec";

const fn row(
    definition: &'static str,
    property: &'static str,
    child: Option<&'static str>,
    merge_key: Option<&'static str>,
    strategy: &'static str,
) -> FieldRow {
    FieldRow {
        definition,
        property,
        child,
        merge_key,
        strategy,
        atomic: false,
    }
}

const fn atomic(definition: &'static str, property: &'static str) -> FieldRow {
    FieldRow {
        definition,
        property,
        child: None,
        merge_key: None,
        strategy: "",
        atomic: true,
    }
}

const fn nest(definition: &'static str, property: &'static str, child: &'static str) -> FieldRow {
    row(definition, property, Some(child), None, "")
}

const fn merge(definition: &'static str, property: &'static str, key: &'static str) -> FieldRow {
    row(definition, property, None, Some(key), "merge")
}

/// The table (see the module invariants).
pub static FIELDS: &[FieldRow] = &[
    // metav1.ObjectMeta
    row(OBJECT_META, "finalizers", None, None, "merge"),
    merge(OBJECT_META, "ownerReferences", "uid"),
    // core/v1 Pod and pod templates
    nest("io.k8s.api.core.v1.Pod", "spec", POD_SPEC),
    nest(
        "io.k8s.api.core.v1.Pod",
        "status",
        "io.k8s.api.core.v1.PodStatus",
    ),
    nest(
        "io.k8s.api.core.v1.PodTemplate",
        "template",
        POD_TEMPLATE_SPEC,
    ),
    nest(POD_TEMPLATE_SPEC, "metadata", OBJECT_META),
    nest(POD_TEMPLATE_SPEC, "spec", POD_SPEC),
    row(
        POD_SPEC,
        "containers",
        Some(CONTAINER),
        Some("name"),
        "merge",
    ),
    row(
        POD_SPEC,
        "initContainers",
        Some(CONTAINER),
        Some("name"),
        "merge",
    ),
    row(
        POD_SPEC,
        "ephemeralContainers",
        Some(EPHEMERAL_CONTAINER),
        Some("name"),
        "merge",
    ),
    row(POD_SPEC, "volumes", None, Some("name"), "merge,retainKeys"),
    merge(POD_SPEC, "imagePullSecrets", "name"),
    merge(POD_SPEC, "hostAliases", "ip"),
    merge(POD_SPEC, "topologySpreadConstraints", "topologyKey"),
    row(
        POD_SPEC,
        "resourceClaims",
        None,
        Some("name"),
        "merge,retainKeys",
    ),
    merge(POD_SPEC, "schedulingGates", "name"),
    atomic(POD_SPEC, "nodeSelector"),
    merge(CONTAINER, "ports", "containerPort"),
    merge(CONTAINER, "env", "name"),
    merge(CONTAINER, "volumeMounts", "mountPath"),
    merge(CONTAINER, "volumeDevices", "devicePath"),
    merge(EPHEMERAL_CONTAINER, "ports", "containerPort"),
    merge(EPHEMERAL_CONTAINER, "env", "name"),
    merge(EPHEMERAL_CONTAINER, "volumeMounts", "mountPath"),
    merge(EPHEMERAL_CONTAINER, "volumeDevices", "devicePath"),
    merge("io.k8s.api.core.v1.PodStatus", "conditions", "type"),
    merge("io.k8s.api.core.v1.PodStatus", "podIPs", "ip"),
    merge("io.k8s.api.core.v1.PodStatus", "hostIPs", "ip"),
    row(
        "io.k8s.api.core.v1.PodStatus",
        "resourceClaimStatuses",
        None,
        Some("name"),
        "merge,retainKeys",
    ),
    // core/v1 ReplicationController
    nest(
        "io.k8s.api.core.v1.ReplicationController",
        "spec",
        "io.k8s.api.core.v1.ReplicationControllerSpec",
    ),
    nest(
        "io.k8s.api.core.v1.ReplicationController",
        "status",
        "io.k8s.api.core.v1.ReplicationControllerStatus",
    ),
    nest(
        "io.k8s.api.core.v1.ReplicationControllerSpec",
        "template",
        POD_TEMPLATE_SPEC,
    ),
    merge(
        "io.k8s.api.core.v1.ReplicationControllerStatus",
        "conditions",
        "type",
    ),
    // core/v1 Service, Node, Namespace, PVC, ServiceAccount
    nest(
        "io.k8s.api.core.v1.Service",
        "spec",
        "io.k8s.api.core.v1.ServiceSpec",
    ),
    nest(
        "io.k8s.api.core.v1.Service",
        "status",
        "io.k8s.api.core.v1.ServiceStatus",
    ),
    merge("io.k8s.api.core.v1.ServiceSpec", "ports", "port"),
    atomic("io.k8s.api.core.v1.ServiceSpec", "selector"),
    atomic("io.k8s.api.core.v1.ReplicationControllerSpec", "selector"),
    merge("io.k8s.api.core.v1.ServiceStatus", "conditions", "type"),
    nest(
        "io.k8s.api.core.v1.Node",
        "spec",
        "io.k8s.api.core.v1.NodeSpec",
    ),
    nest(
        "io.k8s.api.core.v1.Node",
        "status",
        "io.k8s.api.core.v1.NodeStatus",
    ),
    row(
        "io.k8s.api.core.v1.NodeSpec",
        "podCIDRs",
        None,
        None,
        "merge",
    ),
    merge("io.k8s.api.core.v1.NodeStatus", "conditions", "type"),
    merge("io.k8s.api.core.v1.NodeStatus", "addresses", "type"),
    nest(
        "io.k8s.api.core.v1.Namespace",
        "status",
        "io.k8s.api.core.v1.NamespaceStatus",
    ),
    merge("io.k8s.api.core.v1.NamespaceStatus", "conditions", "type"),
    nest(
        "io.k8s.api.core.v1.PersistentVolumeClaim",
        "status",
        "io.k8s.api.core.v1.PersistentVolumeClaimStatus",
    ),
    merge(
        "io.k8s.api.core.v1.PersistentVolumeClaimStatus",
        "conditions",
        "type",
    ),
    merge("io.k8s.api.core.v1.ServiceAccount", "secrets", "name"),
    // apps/v1
    atomic("io.k8s.api.apps.v1.DeploymentSpec", "selector"),
    atomic("io.k8s.api.apps.v1.ReplicaSetSpec", "selector"),
    atomic("io.k8s.api.apps.v1.StatefulSetSpec", "selector"),
    atomic("io.k8s.api.apps.v1.DaemonSetSpec", "selector"),
    nest(
        "io.k8s.api.apps.v1.Deployment",
        "spec",
        "io.k8s.api.apps.v1.DeploymentSpec",
    ),
    nest(
        "io.k8s.api.apps.v1.Deployment",
        "status",
        "io.k8s.api.apps.v1.DeploymentStatus",
    ),
    nest(
        "io.k8s.api.apps.v1.DeploymentSpec",
        "template",
        POD_TEMPLATE_SPEC,
    ),
    row(
        "io.k8s.api.apps.v1.DeploymentSpec",
        "strategy",
        None,
        None,
        "retainKeys",
    ),
    merge("io.k8s.api.apps.v1.DeploymentStatus", "conditions", "type"),
    nest(
        "io.k8s.api.apps.v1.ReplicaSet",
        "spec",
        "io.k8s.api.apps.v1.ReplicaSetSpec",
    ),
    nest(
        "io.k8s.api.apps.v1.ReplicaSet",
        "status",
        "io.k8s.api.apps.v1.ReplicaSetStatus",
    ),
    nest(
        "io.k8s.api.apps.v1.ReplicaSetSpec",
        "template",
        POD_TEMPLATE_SPEC,
    ),
    merge("io.k8s.api.apps.v1.ReplicaSetStatus", "conditions", "type"),
    nest(
        "io.k8s.api.apps.v1.StatefulSet",
        "spec",
        "io.k8s.api.apps.v1.StatefulSetSpec",
    ),
    nest(
        "io.k8s.api.apps.v1.StatefulSet",
        "status",
        "io.k8s.api.apps.v1.StatefulSetStatus",
    ),
    nest(
        "io.k8s.api.apps.v1.StatefulSetSpec",
        "template",
        POD_TEMPLATE_SPEC,
    ),
    merge("io.k8s.api.apps.v1.StatefulSetStatus", "conditions", "type"),
    nest(
        "io.k8s.api.apps.v1.DaemonSet",
        "spec",
        "io.k8s.api.apps.v1.DaemonSetSpec",
    ),
    nest(
        "io.k8s.api.apps.v1.DaemonSet",
        "status",
        "io.k8s.api.apps.v1.DaemonSetStatus",
    ),
    nest(
        "io.k8s.api.apps.v1.DaemonSetSpec",
        "template",
        POD_TEMPLATE_SPEC,
    ),
    merge("io.k8s.api.apps.v1.DaemonSetStatus", "conditions", "type"),
    // batch/v1
    nest("io.k8s.api.batch.v1.Job", "spec", JOB_SPEC),
    nest(
        "io.k8s.api.batch.v1.Job",
        "status",
        "io.k8s.api.batch.v1.JobStatus",
    ),
    nest(JOB_SPEC, "template", POD_TEMPLATE_SPEC),
    atomic(JOB_SPEC, "selector"),
    merge("io.k8s.api.batch.v1.JobStatus", "conditions", "type"),
    nest(
        "io.k8s.api.batch.v1.CronJob",
        "spec",
        "io.k8s.api.batch.v1.CronJobSpec",
    ),
    nest(
        "io.k8s.api.batch.v1.CronJobSpec",
        "jobTemplate",
        "io.k8s.api.batch.v1.JobTemplateSpec",
    ),
    nest(
        "io.k8s.api.batch.v1.JobTemplateSpec",
        "metadata",
        OBJECT_META,
    ),
    nest("io.k8s.api.batch.v1.JobTemplateSpec", "spec", JOB_SPEC),
];

/// One `x-kubernetes-patch-*` extension pair for the OpenAPI generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatchExtension {
    /// OpenAPI definition.
    pub definition: &'static str,
    /// Property.
    pub property: &'static str,
    /// `x-kubernetes-patch-merge-key`.
    pub merge_key: Option<&'static str>,
    /// `x-kubernetes-patch-strategy`.
    pub strategy: &'static str,
}

/// Every property with a patch strategy, from [`FIELDS`].
pub fn builtin_patch_extensions() -> Vec<PatchExtension> {
    FIELDS
        .iter()
        .filter(|r| !r.strategy.is_empty())
        .map(|r| PatchExtension {
            definition: r.definition,
            property: r.property,
            merge_key: r.merge_key,
            strategy: r.strategy,
        })
        .collect()
}

/// `(property, merge key, strategy)` of one definition, for `x-kubernetes-patch-*` extensions.
pub fn patch_extensions_for_definition(
    definition: &str,
) -> Vec<(&'static str, Option<&'static str>, &'static str)> {
    FIELDS
        .iter()
        .filter(|r| r.definition == definition && !r.strategy.is_empty())
        .map(|r| (r.property, r.merge_key, r.strategy))
        .collect()
}

/// The OpenAPI definition of a built-in kind's root, e.g. `io.k8s.api.apps.v1.Deployment`.
pub fn root_definition(group: &str, kind: &str) -> String {
    let prefix = match group {
        "" | "core" => "io.k8s.api.core.v1".to_string(),
        g => {
            let first = g.split('.').next().unwrap_or(g);
            format!("io.k8s.api.{first}.v1")
        }
    };
    format!("{prefix}.{kind}")
}

/// Path-based lookups over [`FIELDS`] for one built-in kind.
#[derive(Debug, Clone)]
pub struct BuiltinPatchMeta {
    root: String,
}

impl BuiltinPatchMeta {
    /// Metadata for the kind `group`/`kind`.
    pub fn new(group: &str, kind: &str) -> Self {
        BuiltinPatchMeta {
            root: root_definition(group, kind),
        }
    }
}

fn find(definition: &str, property: &str) -> Option<&'static FieldRow> {
    FIELDS
        .iter()
        .find(|r| r.definition == definition && r.property == property)
}

impl BuiltinPatchMeta {
    fn row(&self, path: &[&str]) -> Option<&'static FieldRow> {
        let (last, parents) = path.split_last()?;
        let mut def: &str = &self.root;
        for (i, seg) in parents.iter().enumerate() {
            def = match find(def, seg).and_then(|r| r.child) {
                Some(c) => c,
                None if i == 0 && *seg == "metadata" => OBJECT_META,
                None => return None,
            };
        }
        find(def, last)
    }
}

impl PatchMeta for BuiltinPatchMeta {
    fn lookup(&self, path: &[&str]) -> FieldPatchMeta {
        match self.row(path) {
            Some(r) => FieldPatchMeta {
                merge_key: r.merge_key,
                strategy: Strategy {
                    merge: r.strategy.split(',').any(|s| s == "merge"),
                    retain_keys: r.strategy.split(',').any(|s| s == "retainKeys"),
                },
            },
            None => FieldPatchMeta::default(),
        }
    }

    fn is_atomic(&self, path: &[&str]) -> bool {
        self.row(path).is_some_and(|r| r.atomic)
    }
}

/// Properties of `definition` whose value is an atomic map (`x-kubernetes-map-type: atomic`).
pub fn atomic_properties_for_definition(definition: &str) -> Vec<&'static str> {
    FIELDS
        .iter()
        .filter(|r| r.definition == definition && r.atomic)
        .map(|r| r.property)
        .collect()
}

/// Patch metadata of a built-in kind (unknown kinds still get `metadata` handling).
pub fn builtin_patch_meta(group: &str, kind: &str) -> Box<dyn PatchMeta> {
    Box::new(BuiltinPatchMeta::new(group, kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(key: Option<&'static str>, merge: bool, retain_keys: bool) -> FieldPatchMeta {
        FieldPatchMeta {
            merge_key: key,
            strategy: Strategy { merge, retain_keys },
        }
    }

    #[test]
    fn lookups() {
        let pod = builtin_patch_meta("", "Pod");
        let dep = builtin_patch_meta("apps", "Deployment");
        let cj = builtin_patch_meta("batch", "CronJob");
        let cm = builtin_patch_meta("", "ConfigMap");
        let cases: Vec<(&dyn PatchMeta, &[&str], FieldPatchMeta)> = vec![
            (&*pod, &["spec", "containers"], m(Some("name"), true, false)),
            (
                &*pod,
                &["spec", "containers", "ports"],
                m(Some("containerPort"), true, false),
            ),
            (
                &*pod,
                &["spec", "initContainers", "env"],
                m(Some("name"), true, false),
            ),
            (&*pod, &["spec", "volumes"], m(Some("name"), true, true)),
            (&*pod, &["spec", "tolerations"], m(None, false, false)),
            (
                &*pod,
                &["status", "conditions"],
                m(Some("type"), true, false),
            ),
            (&*pod, &["metadata", "finalizers"], m(None, true, false)),
            (
                &*dep,
                &["spec", "template", "spec", "containers", "volumeMounts"],
                m(Some("mountPath"), true, false),
            ),
            (&*dep, &["spec", "strategy"], m(None, false, true)),
            (
                &*dep,
                &["spec", "template", "metadata", "finalizers"],
                m(None, true, false),
            ),
            (
                &*dep,
                &["metadata", "ownerReferences"],
                m(Some("uid"), true, false),
            ),
            (
                &*cj,
                &[
                    "spec",
                    "jobTemplate",
                    "spec",
                    "template",
                    "spec",
                    "containers",
                ],
                m(Some("name"), true, false),
            ),
            (&*cm, &["metadata", "finalizers"], m(None, true, false)),
            (&*cm, &["data"], m(None, false, false)),
            (&*cm, &[], m(None, false, false)),
            (
                &NoPatchMeta,
                &["metadata", "finalizers"],
                m(None, false, false),
            ),
        ];
        for (meta, path, want) in cases {
            assert_eq!(meta.lookup(path), want, "{path:?}");
        }
        assert!(dep.is_atomic(&["spec", "selector"]));
        assert!(dep.is_atomic(&["spec", "template", "spec", "nodeSelector"]));
        assert!(!dep.is_atomic(&["spec", "template"]));
        let svc = builtin_patch_meta("", "Service");
        assert_eq!(svc.lookup(&["spec", "ports"]).merge_key, Some("port"));
    }

    #[test]
    fn extensions_for_openapi() {
        let ps = patch_extensions_for_definition("io.k8s.api.core.v1.PodSpec");
        assert!(ps.contains(&("containers", Some("name"), "merge")));
        assert!(ps.contains(&("volumes", Some("name"), "merge,retainKeys")));
        assert!(patch_extensions_for_definition("io.k8s.api.core.v1.PodTemplateSpec").is_empty());
        assert!(
            builtin_patch_extensions()
                .iter()
                .all(|e| !e.strategy.is_empty())
        );
        // Every child definition named by a row is reachable (no typos in nesting).
        for r in FIELDS {
            if let Some(c) = r.child {
                assert!(
                    c == OBJECT_META || FIELDS.iter().any(|x| x.definition == c),
                    "{c}"
                );
            }
        }
    }
}
