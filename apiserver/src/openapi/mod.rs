//! OpenAPI v3 documents, as kube-apiserver serves them under `/openapi/v3`, and schema-driven
//! object checks (unknown fields, pruning, defaulting).
//!
//! kubectl 1.32 depends on these documents in three ways:
//! - `kubectl apply` downloads the index and the group-version document of each object, and
//!   sends `?fieldValidation=Strict` only when the document's PATCH operation for that kind (found
//!   by its `x-kubernetes-group-version-kind` object) lists a `fieldValidation` parameter. The
//!   server then rejects unknown fields itself ([`SchemaIndex::unknown_fields`]).
//! - `kubectl explain` finds a kind's schema in `components.schemas` by the schema's
//!   `x-kubernetes-group-version-kind` list and prints descriptions, following `$ref`s (wrapped in
//!   a one-element `allOf` when the property carries its own description, as upstream does).
//! - client-side apply reads `x-kubernetes-patch-merge-key` / `x-kubernetes-patch-strategy`.
//!
//! Built-in schemas come from `k8s-openapi` via `schemars` (upstream names and descriptions);
//! custom resources wrap their CRD version's `openAPIV3Schema` the way the apiextensions OpenAPI
//! builder does. Generation is a pure function of its inputs; caching is the caller's job.

mod builtin;
mod crd;
mod document;
mod paths;
mod validate;

use serde_json::{Value, json};

pub use builtin::builtin_kind_schema_name;
pub use crd::custom_kind_schema_name;
pub use document::{builtin_schema_components, group_version_document};
pub use validate::SchemaIndex;

/// Where a resource's kind schema comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum SchemaSource {
    /// A `k8s-openapi` type, looked up by group, version and kind.
    Builtin,
    /// A CRD version's `openAPIV3Schema`.
    Custom(Value),
}

/// One resource served in a group-version, as the document describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceDoc {
    pub group: String,
    pub version: String,
    pub kind: String,
    /// Plural resource name (`pods`).
    pub plural: String,
    pub namespaced: bool,
    /// Discovery verbs: `get list watch create update patch delete deletecollection`.
    pub verbs: Vec<String>,
    /// Subresource names: `status`, `scale`, `log`, `exec`, `attach`, `portforward`,
    /// `eviction`, `binding`, `token`, ...
    pub subresources: Vec<String>,
    pub schema: SchemaSource,
}

impl ResourceDoc {
    /// The name of this resource's kind schema in `components.schemas`.
    pub fn kind_schema_name(&self) -> String {
        match &self.schema {
            SchemaSource::Builtin => {
                builtin_kind_schema_name(&self.group, &self.version, &self.kind)
                    .map(str::to_string)
                    .unwrap_or_else(|| {
                        custom_kind_schema_name(&self.group, &self.version, &self.kind)
                    })
            }
            SchemaSource::Custom(_) => {
                custom_kind_schema_name(&self.group, &self.version, &self.kind)
            }
        }
    }
}

/// The `/openapi/v3` index: `{"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=..."}}}`.
///
/// `group_versions` pairs a path (`api/v1`, `apis/apps/v1`) with the document's [`hash`].
pub fn index(group_versions: &[(String, String)]) -> Value {
    let paths: serde_json::Map<String, Value> = group_versions
        .iter()
        .map(|(path, hash)| {
            (
                path.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={hash}")}),
            )
        })
        .collect();
    json!({ "paths": paths })
}

/// The index path of a group-version: `api/v1` for the core group, else `apis/<group>/<version>`.
pub fn group_version_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// A stable 64-bit FNV-1a hash of the document's JSON text, as 16 upper-case hex digits.
pub fn hash(doc: &Value) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let text = doc.to_string();
    let h = text
        .bytes()
        .fold(OFFSET, |h, b| (h ^ u64::from(b)).wrapping_mul(PRIME));
    format!("{h:016X}")
}

#[cfg(test)]
mod tests;
