//! The built-in kinds whose schemas come from `k8s-openapi`, keyed by group, version and kind.
//!
//! Registering a kind with a [`SchemaGenerator`] adds its schema and everything it references
//! to the generator's definitions, under upstream's names (`io.k8s.api.core.v1.Pod`).

use std::sync::LazyLock;

use k8s_openapi::api::{
    admissionregistration::v1 as admission, apps::v1 as apps, authentication::v1 as authn,
    authorization::v1 as authz, autoscaling::v1 as autoscaling1, autoscaling::v2 as autoscaling2,
    batch::v1 as batch, certificates::v1 as certs, coordination::v1 as coord, core::v1 as core,
    discovery::v1 as disc, events::v1 as events, flowcontrol::v1 as flowcontrol,
    networking::v1 as net, node::v1 as nodev1, policy::v1 as policy, rbac::v1 as rbac,
    scheduling::v1 as sched, storage::v1 as storage,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiext;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1 as apireg;
use schemars::{JsonSchema, SchemaGenerator};

type Register = fn(&mut SchemaGenerator) -> String;

fn register<T: JsonSchema>(generator: &mut SchemaGenerator) -> String {
    generator.subschema_for::<T>();
    T::schema_name().into_owned()
}

macro_rules! kinds {
    ($( ($group:literal, $version:literal, $kind:literal) => $ty:ty, )*) => {
        const TABLE: &[(&str, &str, &str, Register)] = &[
            $( ($group, $version, $kind, register::<$ty>), )*
        ];
    };
}

kinds! {
    ("", "v1", "Binding") => core::Binding,
    ("", "v1", "ComponentStatus") => core::ComponentStatus,
    ("", "v1", "ConfigMap") => core::ConfigMap,
    ("", "v1", "Endpoints") => core::Endpoints,
    ("", "v1", "Event") => core::Event,
    ("", "v1", "LimitRange") => core::LimitRange,
    ("", "v1", "Namespace") => core::Namespace,
    ("", "v1", "Node") => core::Node,
    ("", "v1", "PersistentVolume") => core::PersistentVolume,
    ("", "v1", "PersistentVolumeClaim") => core::PersistentVolumeClaim,
    ("", "v1", "Pod") => core::Pod,
    ("", "v1", "PodTemplate") => core::PodTemplate,
    ("", "v1", "ReplicationController") => core::ReplicationController,
    ("", "v1", "ResourceQuota") => core::ResourceQuota,
    ("", "v1", "Secret") => core::Secret,
    ("", "v1", "Service") => core::Service,
    ("", "v1", "ServiceAccount") => core::ServiceAccount,
    ("", "v1", "DeleteOptions") => meta::DeleteOptions,
    ("", "v1", "Status") => meta::Status,
    ("admissionregistration.k8s.io", "v1", "MutatingWebhookConfiguration") => admission::MutatingWebhookConfiguration,
    ("admissionregistration.k8s.io", "v1", "ValidatingWebhookConfiguration") => admission::ValidatingWebhookConfiguration,
    ("admissionregistration.k8s.io", "v1", "ValidatingAdmissionPolicy") => admission::ValidatingAdmissionPolicy,
    ("admissionregistration.k8s.io", "v1", "ValidatingAdmissionPolicyBinding") => admission::ValidatingAdmissionPolicyBinding,
    ("apiextensions.k8s.io", "v1", "CustomResourceDefinition") => apiext::CustomResourceDefinition,
    ("apiregistration.k8s.io", "v1", "APIService") => apireg::APIService,
    ("apps", "v1", "ControllerRevision") => apps::ControllerRevision,
    ("apps", "v1", "DaemonSet") => apps::DaemonSet,
    ("apps", "v1", "Deployment") => apps::Deployment,
    ("apps", "v1", "ReplicaSet") => apps::ReplicaSet,
    ("apps", "v1", "StatefulSet") => apps::StatefulSet,
    ("authentication.k8s.io", "v1", "SelfSubjectReview") => authn::SelfSubjectReview,
    ("authentication.k8s.io", "v1", "TokenRequest") => authn::TokenRequest,
    ("authentication.k8s.io", "v1", "TokenReview") => authn::TokenReview,
    ("authorization.k8s.io", "v1", "LocalSubjectAccessReview") => authz::LocalSubjectAccessReview,
    ("authorization.k8s.io", "v1", "SelfSubjectAccessReview") => authz::SelfSubjectAccessReview,
    ("authorization.k8s.io", "v1", "SelfSubjectRulesReview") => authz::SelfSubjectRulesReview,
    ("authorization.k8s.io", "v1", "SubjectAccessReview") => authz::SubjectAccessReview,
    ("autoscaling", "v1", "HorizontalPodAutoscaler") => autoscaling1::HorizontalPodAutoscaler,
    ("autoscaling", "v1", "Scale") => autoscaling1::Scale,
    ("autoscaling", "v2", "HorizontalPodAutoscaler") => autoscaling2::HorizontalPodAutoscaler,
    ("batch", "v1", "CronJob") => batch::CronJob,
    ("batch", "v1", "Job") => batch::Job,
    ("certificates.k8s.io", "v1", "CertificateSigningRequest") => certs::CertificateSigningRequest,
    ("coordination.k8s.io", "v1", "Lease") => coord::Lease,
    ("discovery.k8s.io", "v1", "EndpointSlice") => disc::EndpointSlice,
    ("events.k8s.io", "v1", "Event") => events::Event,
    ("flowcontrol.apiserver.k8s.io", "v1", "FlowSchema") => flowcontrol::FlowSchema,
    ("flowcontrol.apiserver.k8s.io", "v1", "PriorityLevelConfiguration") => flowcontrol::PriorityLevelConfiguration,
    ("networking.k8s.io", "v1", "Ingress") => net::Ingress,
    ("networking.k8s.io", "v1", "IngressClass") => net::IngressClass,
    ("networking.k8s.io", "v1", "NetworkPolicy") => net::NetworkPolicy,
    ("node.k8s.io", "v1", "RuntimeClass") => nodev1::RuntimeClass,
    ("policy", "v1", "Eviction") => policy::Eviction,
    ("policy", "v1", "PodDisruptionBudget") => policy::PodDisruptionBudget,
    ("rbac.authorization.k8s.io", "v1", "ClusterRole") => rbac::ClusterRole,
    ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding") => rbac::ClusterRoleBinding,
    ("rbac.authorization.k8s.io", "v1", "Role") => rbac::Role,
    ("rbac.authorization.k8s.io", "v1", "RoleBinding") => rbac::RoleBinding,
    ("scheduling.k8s.io", "v1", "PriorityClass") => sched::PriorityClass,
    ("storage.k8s.io", "v1", "CSIDriver") => storage::CSIDriver,
    ("storage.k8s.io", "v1", "CSINode") => storage::CSINode,
    ("storage.k8s.io", "v1", "StorageClass") => storage::StorageClass,
    ("storage.k8s.io", "v1", "VolumeAttachment") => storage::VolumeAttachment,
}

/// The `ObjectMeta` / `ListMeta` schema names.
pub const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
pub const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
pub const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
pub const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
pub const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";

/// Schema names, in [`TABLE`] order.
static NAMES: LazyLock<Vec<String>> = LazyLock::new(|| {
    let mut generator = SchemaGenerator::default();
    TABLE
        .iter()
        .map(|&(_, _, _, reg)| reg(&mut generator))
        .collect()
});

/// Upstream's schema name of a built-in kind (`io.k8s.api.core.v1.Pod`), if k1s knows it.
pub fn builtin_kind_schema_name(group: &str, version: &str, kind: &str) -> Option<&'static str> {
    let i = TABLE
        .iter()
        .position(|&(g, v, k, _)| (g, v, k) == (group, version, kind))?;
    NAMES.get(i).map(String::as_str)
}

/// Adds the kind's schema (and its dependencies) to `generator`; returns its schema name.
pub fn register_kind(
    generator: &mut SchemaGenerator,
    group: &str,
    version: &str,
    kind: &str,
) -> Option<String> {
    TABLE
        .iter()
        .find(|&&(g, v, k, _)| (g, v, k) == (group, version, kind))
        .map(|&(_, _, _, reg)| reg(generator))
}

/// Adds `ObjectMeta`, `ListMeta`, `DeleteOptions` and `Status` to `generator`.
pub fn register_meta(generator: &mut SchemaGenerator) {
    generator.subschema_for::<meta::ObjectMeta>();
    generator.subschema_for::<meta::ListMeta>();
    generator.subschema_for::<meta::DeleteOptions>();
    generator.subschema_for::<meta::Status>();
}
