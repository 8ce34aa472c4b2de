//! GET of one object and LIST (with selectors, paging and resourceVersion semantics).

use axum::http::StatusCode;
use base64::Engine;
use bytes::{BufMut, Bytes, BytesMut};
use k1s_apimachinery::selector::field::FieldSelector;
use k1s_apimachinery::selector::label::LabelSelector;
use k1s_apimachinery::status::StatusError;
use k1s_store::{Continue, KeyValue, ListOptions, Revision};
use serde_json::{Value, json};

use super::{Ctx, parse};
use crate::request::{Want, want};
use crate::resources::Resource;
use crate::response::{ApiError, ApiResult, json_bytes, store_error};

pub async fn get(ctx: Ctx) -> ApiResult {
    let kv = ctx.load()?;
    if want(&ctx.headers) == Want::Table {
        let obj = parse(&kv)?;
        return Ok(super::object_response(&ctx, StatusCode::OK, &obj));
    }
    Ok(json_bytes(StatusCode::OK, kv.value))
}

/// Label and field selectors of a list or watch, already validated.
pub struct Filter {
    pub labels: Option<LabelSelector>,
    pub fields: Option<FieldSelector>,
    kind: String,
}

impl Filter {
    pub fn from_query(ctx: &Ctx) -> ApiResult<Filter> {
        let labels = match ctx.query.get("labelSelector") {
            Some(s) => Some(
                LabelSelector::parse(s)
                    .map_err(|e| ApiError(StatusError::bad_request(e.to_string())))?,
            ),
            None => None,
        };
        let fields = match ctx.query.get("fieldSelector") {
            Some(s) => {
                let sel = FieldSelector::parse(s)
                    .map_err(|e| ApiError(StatusError::bad_request(e.to_string())))?;
                let supported = k1s_apimachinery::selector::field::supported_fields(&ctx.res.kind);
                if let Some(field) = sel.unsupported_field(supported) {
                    return Err(ApiError(StatusError::bad_request(format!(
                        "field label not supported: {field}"
                    ))));
                }
                Some(sel)
            }
            None => None,
        };
        Ok(Filter {
            labels,
            fields,
            kind: ctx.res.kind.clone(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_none() && self.fields.is_none()
    }

    pub fn matches(&self, obj: &Value) -> bool {
        if let Some(sel) = &self.labels
            && !sel.matches(&k1s_apimachinery::meta::labels(obj))
        {
            return false;
        }
        if let Some(sel) = &self.fields
            && !sel.matches_object(&self.kind, obj)
        {
            return false;
        }
        true
    }
}

/// Encodes a continue token: where the next page starts and the snapshot it reads.
pub fn encode_continue(prefix: &str, next: &Continue) -> String {
    let start = next
        .start_after
        .strip_prefix(prefix)
        .unwrap_or(&next.start_after);
    let token = json!({"v": "meta.k8s.io/v1", "rv": next.revision, "start": start});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token.to_string())
}

fn decode_continue(prefix: &str, token: &str) -> Result<Continue, StatusError> {
    let bad = |why: &str| StatusError::bad_request(format!("continue key is not valid: {why}"));
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| bad("incorrect encoded start resourceVersion (version meta.k8s.io/v1)"))?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad("invalid JSON"))?;
    let rv = v
        .get("rv")
        .and_then(Value::as_u64)
        .ok_or_else(|| bad("missing resource version"))?;
    let start = v
        .get("start")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("missing start key"))?;
    if start.contains("..") || start.starts_with('/') {
        return Err(bad("path traversal attempt detected"));
    }
    Ok(Continue {
        revision: rv,
        start_after: format!("{prefix}{start}"),
    })
}

/// Parses `resourceVersion` of a list/watch.
pub fn parse_rv(ctx: &Ctx) -> ApiResult<Option<Revision>> {
    match ctx.query.get("resourceVersion") {
        None => Ok(None),
        Some(rv) => rv.parse::<Revision>().map(Some).map_err(|_| {
            ApiError(StatusError::bad_request(format!(
                "invalid resource version: {rv:?}"
            )))
        }),
    }
}

/// One page of matching objects from the store.
pub struct Page {
    pub items: Vec<KeyValue>,
    pub revision: Revision,
    pub next: Option<String>,
    pub remaining: Option<u64>,
}

/// Lists matching objects with upstream's paging semantics (a page holds up to `limit` matches).
pub async fn list_page(ctx: &Ctx, filter: &Filter) -> ApiResult<(Page, Vec<Option<Value>>)> {
    let prefix = ctx.res.list_prefix(ctx.namespace.as_deref());
    let limit = match ctx.query.get("limit") {
        Some(l) => match l.parse::<i64>() {
            Ok(n) if n > 0 => Some(n as usize),
            Ok(_) => None,
            Err(_) => {
                return Err(ApiError(StatusError::bad_request(format!(
                    "invalid limit: {l:?}"
                ))));
            }
        },
        None => None,
    };
    let mut cont = match ctx.query.get("continue") {
        Some(t) => Some(decode_continue(&prefix, t)?),
        None => None,
    };
    let rv = parse_rv(ctx)?;
    let exact = ctx.query.get("resourceVersionMatch") == Some("Exact");
    if cont.is_some() && rv.is_some_and(|r| r != 0) {
        return Err(ApiError(StatusError::bad_request(
            "specifying resource version is not allowed when using continue",
        )));
    }
    let store = ctx.state.store().clone();
    let mut items = Vec::new();
    let mut parsed = Vec::new();
    let mut revision;
    loop {
        let opts = ListOptions {
            limit: limit.map(|l| l.saturating_sub(items.len()).max(1)),
            continue_from: cont.clone(),
            revision: if exact && cont.is_none() { rv } else { None },
        };
        let p = prefix.clone();
        let st = store.clone();
        let result = tokio::task::spawn_blocking(move || st.list(&p, opts))
            .await
            .map_err(|e| ApiError(StatusError::internal(&e.to_string())))?
            .map_err(store_error)?;
        revision = result.revision;
        let remaining = result.remaining;
        for kv in result.items {
            let kv = crate::events_view::view_kv(&ctx.res, kv);
            if filter.is_empty() {
                parsed.push(None);
                items.push(kv);
            } else {
                let obj = parse(&kv)?;
                if filter.matches(&obj) {
                    parsed.push(Some(obj));
                    items.push(kv);
                }
            }
        }
        match (result.next, limit) {
            (Some(next), Some(l)) if items.len() < l => cont = Some(next),
            (Some(next), _) => {
                return Ok((
                    Page {
                        items,
                        revision,
                        next: Some(encode_continue(&prefix, &next)),
                        remaining: if filter.is_empty() { remaining } else { None },
                    },
                    parsed,
                ));
            }
            (None, _) => break,
        }
    }
    Ok((
        Page {
            items,
            revision,
            next: None,
            remaining: None,
        },
        parsed,
    ))
}

pub async fn list(ctx: Ctx) -> ApiResult {
    let filter = Filter::from_query(&ctx)?;
    let (page, parsed) = list_page(&ctx, &filter).await?;
    let rv = page.revision.to_string();
    if want(&ctx.headers) == Want::Table {
        let mut objs = Vec::with_capacity(page.items.len());
        for (kv, p) in page.items.iter().zip(parsed) {
            objs.push(match p {
                Some(o) => o,
                None => parse(kv)?,
            });
        }
        let table = crate::table::render(
            &ctx.res,
            &objs,
            &ctx.query,
            &rv,
            page.next.as_deref(),
            page.remaining,
        );
        return Ok(crate::response::ok(&table));
    }
    Ok(json_bytes(StatusCode::OK, list_body(&ctx.res, &page, &rv)))
}

/// Assembles a `<Kind>List` from stored bytes without re-encoding the items.
fn list_body(res: &Resource, page: &Page, rv: &str) -> Bytes {
    let size: usize = page.items.iter().map(|kv| kv.value.len() + 1).sum();
    let mut out = BytesMut::with_capacity(size + 256);
    let mut meta = serde_json::Map::new();
    meta.insert("resourceVersion".into(), json!(rv));
    if let Some(next) = &page.next {
        meta.insert("continue".into(), json!(next));
        if let Some(r) = page.remaining {
            meta.insert("remainingItemCount".into(), json!(r));
        }
    }
    let head = json!({"kind": res.list_kind, "apiVersion": res.api_version(), "metadata": meta});
    let head = head.to_string();
    // `{"kind":..,"metadata":{..}` + `,"items":[` + items + `]}`
    out.put_slice(&head.as_bytes()[..head.len() - 1]);
    out.put_slice(b",\"items\":[");
    for (i, kv) in page.items.iter().enumerate() {
        if i > 0 {
            out.put_u8(b',');
        }
        out.put_slice(&kv.value);
    }
    out.put_slice(b"]}");
    out.freeze()
}
