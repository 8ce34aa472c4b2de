//! Patches: RFC 6902 JSON patch, RFC 7386 JSON merge patch and Kubernetes strategic merge patch.
//!
//! Invariants:
//! - inputs are never mutated; every function returns a new document;
//! - no input makes these functions panic; malformed patches are [`PatchError`]s;
//! - [`PatchError::to_status`] is the single place that maps patch failures to HTTP statuses,
//!   mirroring upstream's `handlers/patch.go`:
//!   - a body that is not JSON, or a JSON patch that does not decode → 400 BadRequest;
//!   - a JSON patch operation that fails (bad path, failed `test`) → 422 Invalid with upstream's
//!     generic text `the server rejected our request due to an error in our request`
//!     (kubectl prints `The request is invalid: ...`);
//!   - strategic merge patch format errors (`$patch` type, `$retainKeys`,
//!     `$deleteFromPrimitiveList`, `$setElementOrder` shapes) → 400 BadRequest;
//!   - lists of lists and content not matching `$retainKeys` → 422 Invalid (generic text);
//!   - anything else (missing merge key, mixed element types) → 500 InternalError, as upstream
//!     lets such errors through unclassified.

pub mod meta;
pub mod strategic;

pub use meta::{
    FieldPatchMeta, NoPatchMeta, PatchMeta, Strategy, builtin_patch_extensions, builtin_patch_meta,
    patch_extensions_for_definition,
};

use serde_json::Value;

use crate::status::StatusError;

/// Generic message upstream uses for 422 responses built from a bare status code.
pub const UNPROCESSABLE_MESSAGE: &str =
    "the server rejected our request due to an error in our request";

/// Why a patch could not be applied.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum PatchError {
    /// The patch body is not valid JSON or not a valid patch document (400).
    #[error("{0}")]
    Decode(String),
    /// A JSON patch operation failed (422).
    #[error("{0}")]
    JsonPatchApply(String),
    /// A strategic merge patch directive is malformed (400).
    #[error("{0}")]
    BadFormat(String),
    /// A strategic merge patch cannot be applied to this content (422).
    #[error("{0}")]
    Unprocessable(String),
    /// Any other failure while merging (500).
    #[error("{0}")]
    Merge(String),
}

impl PatchError {
    /// The `Status` upstream would answer with.
    pub fn to_status(&self) -> StatusError {
        match self {
            PatchError::Decode(m) | PatchError::BadFormat(m) => StatusError::bad_request(m.clone()),
            PatchError::JsonPatchApply(_) | PatchError::Unprocessable(_) => {
                let mut e = StatusError::new(422, "Invalid", UNPROCESSABLE_MESSAGE);
                e.details = Some(Default::default());
                e
            }
            PatchError::Merge(m) => StatusError::internal(m),
        }
    }
}

/// Applies an RFC 6902 JSON patch (`application/json-patch+json`), including `test`.
pub fn json_patch(doc: &Value, patch: &[u8]) -> Result<Value, PatchError> {
    let ops: json_patch::Patch =
        serde_json::from_slice(patch).map_err(|e| PatchError::Decode(e.to_string()))?;
    let mut out = doc.clone();
    json_patch::patch(&mut out, &ops).map_err(|e| PatchError::JsonPatchApply(e.to_string()))?;
    Ok(out)
}

/// Applies an RFC 7386 JSON merge patch (`application/merge-patch+json`).
pub fn merge_patch(doc: &Value, patch: &Value) -> Result<Value, PatchError> {
    let mut out = doc.clone();
    json_patch::merge(&mut out, patch);
    Ok(out)
}

/// Parses a patch body as JSON, mapping failure to [`PatchError::Decode`].
pub fn parse_body(body: &[u8]) -> Result<Value, PatchError> {
    serde_json::from_slice(body).map_err(|e| PatchError::Decode(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_patch_ops() {
        let doc = json!({"spec": {"replicas": 1, "l": [1, 2]}});
        let out = json_patch(
            &doc,
            br#"[{"op":"test","path":"/spec/replicas","value":1},
                 {"op":"replace","path":"/spec/replicas","value":3},
                 {"op":"add","path":"/spec/l/-","value":3},
                 {"op":"remove","path":"/spec/l/0"}]"#,
        )
        .unwrap();
        assert_eq!(out, json!({"spec": {"replicas": 3, "l": [2, 3]}}));
        let e = json_patch(
            &doc,
            br#"[{"op":"test","path":"/spec/replicas","value":2}]"#,
        )
        .unwrap_err();
        assert!(matches!(e, PatchError::JsonPatchApply(_)));
        let st = e.to_status();
        assert_eq!(
            (st.code, st.reason.as_str(), st.message.as_str()),
            (422, "Invalid", UNPROCESSABLE_MESSAGE)
        );
        let e = json_patch(&doc, br#"[{"op":"replace","path":"/nope/x","value":2}]"#).unwrap_err();
        assert_eq!(e.to_status().code, 422);
        let e = json_patch(&doc, b"{").unwrap_err();
        assert_eq!(e.to_status().code, 400);
        let e = json_patch(&doc, br#"[{"op":"frob"}]"#).unwrap_err();
        assert_eq!(e.to_status().code, 400);
    }

    #[test]
    fn merge_patch_rfc7386() {
        let doc = json!({"a": {"b": 1, "c": 2}, "l": [1]});
        let out = merge_patch(&doc, &json!({"a": {"b": null, "d": 4}, "l": [2, 3]})).unwrap();
        assert_eq!(out, json!({"a": {"c": 2, "d": 4}, "l": [2, 3]}));
        assert_eq!(merge_patch(&doc, &json!(5)).unwrap(), json!(5));
    }
}
