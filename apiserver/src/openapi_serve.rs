//! Serving OpenAPI v3: an index of group-versions and one document per group-version, generated from
//! the resource table on first use and cached until the table changes (CRD writes).

use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use serde_json::Value;

use crate::openapi::{self, ResourceDoc, SchemaSource};
use crate::resources::{Resource, StrategyKind};
use crate::response::{ApiError, ApiResult, json_bytes, unknown_path};
use crate::state::AppState;

/// `api/v1` or `apis/<group>/<version>`.
fn doc_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn resource_doc(r: &Resource) -> ResourceDoc {
    let schema = match (&r.strategy, &r.custom) {
        (StrategyKind::Custom, Some(c)) => {
            SchemaSource::Custom(c.schema.clone().unwrap_or(Value::Null))
        }
        _ => SchemaSource::Builtin,
    };
    ResourceDoc {
        group: r.group.clone(),
        version: r.version.clone(),
        kind: r.kind.clone(),
        plural: r.plural.clone(),
        namespaced: r.namespaced,
        verbs: r.verbs().into_iter().map(str::to_string).collect(),
        subresources: r.subresources.clone(),
        schema,
    }
}

/// The (hash, bytes) of one group-version document, generated once per table.
pub fn cached(state: &AppState, group: &str, version: &str) -> Option<(String, Bytes)> {
    let path = doc_path(group, version);
    if let Some(hit) = state
        .0
        .openapi_cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&path)
    {
        return Some(hit.clone());
    }
    let table = state.table();
    let rows = table.group_version(group, version);
    if rows.is_empty() {
        return None;
    }
    let docs: Vec<ResourceDoc> = rows.iter().map(|r| resource_doc(r)).collect();
    let doc = openapi::group_version_document(
        group,
        version,
        &docs,
        &k1s_apimachinery::patch::patch_extensions_for_definition,
    );
    let hash = openapi::hash(&doc);
    let bytes = Bytes::from(serde_json::to_vec(&doc).unwrap_or_default());
    let entry = (hash, bytes);
    state
        .0
        .openapi_cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(path, entry.clone());
    Some(entry)
}

/// The parsed schema index of one group-version, for field validation.
pub fn schema_index(
    state: &AppState,
    group: &str,
    version: &str,
) -> Option<Arc<openapi::SchemaIndex>> {
    let path = doc_path(group, version);
    if let Some(hit) = state
        .0
        .schema_cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&path)
    {
        return Some(hit.clone());
    }
    let (_, bytes) = cached(state, group, version)?;
    let doc: Value = serde_json::from_slice(&bytes).ok()?;
    let index = Arc::new(openapi::SchemaIndex::from_document(&doc));
    state
        .0
        .schema_cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(path, index.clone());
    Some(index)
}

pub fn index(state: &AppState) -> Response {
    let table = state.table();
    let mut entries = Vec::new();
    for (group, versions) in table.groups() {
        for v in versions {
            if let Some((hash, _)) = cached(state, &group, &v) {
                entries.push((doc_path(&group, &v), hash));
            }
        }
    }
    crate::response::ok(&openapi::index(&entries))
}

pub fn document(state: &AppState, path: &str) -> ApiResult {
    let parts: Vec<&str> = path.split('/').collect();
    let (group, version) = match parts.as_slice() {
        ["api", v] => ("", *v),
        ["apis", g, v] => (*g, *v),
        _ => return Err(ApiError(unknown_path())),
    };
    let (hash, bytes) = cached(state, group, version).ok_or_else(|| ApiError(unknown_path()))?;
    let mut resp = json_bytes(StatusCode::OK, bytes);
    let etag = format!("\"{hash}\"");
    if let Ok(v) = HeaderValue::from_str(&etag) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, immutable"),
    );
    Ok(resp)
}

/// `/openapi/v2`: k1s describes its API in OpenAPI v3; v2 is an empty document (no definitions), which
/// tells kubectl to skip client-side validation for kinds it cannot find in v3 (as it does upstream for
/// unknown kinds), instead of failing on a 404.
pub fn v2(headers: &axum::http::HeaderMap) -> Response {
    const PROTO: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if accept.contains("protobuf") {
        // openapi_v2.Document { swagger = 1: "2.0", info = 2: Info { title = 1, version = 2 } }
        let field = |tag: u8, bytes: &[u8]| -> Vec<u8> {
            let mut out = vec![(tag << 3) | 2, bytes.len() as u8];
            out.extend_from_slice(bytes);
            out
        };
        let mut info = field(1, b"Kubernetes");
        info.extend(field(2, crate::router::GIT_VERSION.as_bytes()));
        let mut doc = field(1, b"2.0");
        doc.extend(field(2, &info));
        let mut resp = Response::new(axum::body::Body::from(doc));
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROTO));
        return resp;
    }
    crate::response::ok(&serde_json::json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": crate::router::GIT_VERSION},
        "paths": {},
        "definitions": {},
    }))
}
