//! WATCH: newline-delimited JSON events, from a list snapshot or a resourceVersion, with bookmarks,
//! selectors (objects leaving a selector are sent as DELETED, as upstream), Table objects and timeouts.
//!
//! Each watch is one task feeding a bounded channel; a watcher that lags replays from the store's
//! event log, and one whose history was compacted away gets
//! `Expired`, sent as an ERROR event (410) before the stream ends.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::{BufMut, Bytes, BytesMut};
use futures::StreamExt;
use k1s_apimachinery::status::StatusError;
use k1s_store::{EventType, StoreError};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::Ctx;
use super::read::{Filter, list_page, parse_rv};
use crate::request::{Want, want};
use crate::response::{ApiError, ApiResult};

/// How often an idle watch with `allowWatchBookmarks` gets a BOOKMARK.
const BOOKMARK_EVERY: Duration = Duration::from_secs(15);
/// Upstream's default watch timeout is 30–60 minutes.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

/// Serialises one watch event line.
fn line(kind: &str, object: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(object.len() + 32);
    b.put_slice(b"{\"type\":\"");
    b.put_slice(kind.as_bytes());
    b.put_slice(b"\",\"object\":");
    b.put_slice(object);
    b.put_slice(b"}\n");
    b.freeze()
}

struct Encoder {
    table: bool,
    first_table: bool,
    ctx_res: std::sync::Arc<crate::resources::Resource>,
    query: crate::request::Query,
}

impl Encoder {
    fn event(&mut self, kind: &str, raw: &[u8], parsed: Option<&Value>) -> Option<Bytes> {
        if !self.table {
            return Some(line(kind, raw));
        }
        let owned;
        let obj = match parsed {
            Some(o) => o,
            None => {
                owned = serde_json::from_slice::<Value>(raw).ok()?;
                &owned
            }
        };
        let mut table = crate::table::render(
            &self.ctx_res,
            std::slice::from_ref(obj),
            &self.query,
            "",
            None,
            None,
        );
        if !self.first_table {
            table["columnDefinitions"] = json!([]);
        }
        self.first_table = false;
        Some(line(kind, table.to_string().as_bytes()))
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let obj = json!({"kind": self.ctx_res.kind, "apiVersion": self.ctx_res.api_version(), "metadata": meta});
        line("BOOKMARK", obj.to_string().as_bytes())
    }
}

fn error_line(e: &StatusError) -> Bytes {
    line("ERROR", e.to_json().to_string().as_bytes())
}

pub async fn watch(ctx: Ctx) -> ApiResult {
    let filter = Filter::from_query(&ctx)?;
    let rv = parse_rv(&ctx)?;
    let bookmarks = ctx.query.flag("allowWatchBookmarks");
    let send_initial = ctx.query.get("sendInitialEvents").map(|v| v == "true");
    if send_initial.is_some() && ctx.query.get("resourceVersionMatch") != Some("NotOlderThan") {
        return Err(ApiError(crate::response::invalid_options(
            "sendInitialEvents",
            "sendInitialEvents is forbidden for watch unless resourceVersionMatch is set to NotOlderThan",
        )));
    }
    let timeout = ctx
        .query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TIMEOUT);
    let mut enc = Encoder {
        table: want(&ctx.headers) == Want::Table,
        first_table: true,
        ctx_res: ctx.res.clone(),
        query: ctx.query.clone(),
    };
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let prefix = ctx.res.list_prefix(ctx.namespace.as_deref());

    // Initial state: a list snapshot sent as ADDED when no revision (or "0") was given, or when asked.
    let initial = send_initial.unwrap_or(matches!(rv, None | Some(0)));
    let mut from = rv.unwrap_or(0);
    let mut initial_lines = Vec::new();
    if initial {
        let mut list_ctx_query = ctx.query.clone();
        for k in [
            "limit",
            "continue",
            "resourceVersion",
            "resourceVersionMatch",
        ] {
            list_ctx_query.0.remove(k);
        }
        let list_ctx = Ctx {
            name: None,
            subresource: None,
            query: list_ctx_query,
            ..ctx.clone()
        };
        let (page, parsed) = list_page(&list_ctx, &filter).await?;
        for (kv, p) in page.items.iter().zip(parsed.iter()) {
            if let Some(l) = enc.event("ADDED", &kv.value, p.as_ref()) {
                initial_lines.push(l);
            }
        }
        from = page.revision;
        if send_initial == Some(true) && bookmarks {
            initial_lines.push(enc.bookmark(from, true));
        }
    }
    let watcher = ctx.state.store().watch(&prefix, from);
    let state = ctx.state.clone();
    tokio::spawn(async move {
        for l in initial_lines {
            if tx.send(l).await.is_err() {
                return;
            }
        }
        let mut watcher = match watcher {
            Ok(w) => w,
            Err(StoreError::Expired { requested, oldest }) => {
                let e = StatusError::expired(format!(
                    "too old resource version: {requested} ({oldest})"
                ));
                let _ = tx.send(error_line(&e)).await;
                return;
            }
            Err(e) => {
                let _ = tx
                    .send(error_line(&StatusError::internal(&e.to_string())))
                    .await;
                return;
            }
        };
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut tick = tokio::time::interval(BOOKMARK_EVERY);
        tick.tick().await;
        let mut last_rv = from;
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = tx.closed() => return,
                _ = tick.tick(), if bookmarks => {
                    let rv = last_rv.max(state.store().revision());
                    if tx.send(enc.bookmark(rv, false)).await.is_err() { return; }
                }
                ev = watcher.next() => {
                    let ev = match ev {
                        None => return,
                        Some(Err(StoreError::Expired { requested, oldest })) => {
                            let e = StatusError::expired(format!("too old resource version: {requested} ({oldest})"));
                            let _ = tx.send(error_line(&e)).await;
                            return;
                        }
                        Some(Err(e)) => {
                            let _ = tx.send(error_line(&StatusError::internal(&e.to_string()))).await;
                            return;
                        }
                        Some(Ok(ev)) => crate::events_view::view_event(&enc.ctx_res, ev),
                    };
                    last_rv = ev.revision;
                    let kind = match ev.kind {
                        EventType::Added => "ADDED",
                        EventType::Modified => "MODIFIED",
                        EventType::Deleted => "DELETED",
                    };
                    let out = if filter.is_empty() {
                        enc.event(kind, &ev.kv.value, None)
                    } else {
                        let Ok(new) = serde_json::from_slice::<Value>(&ev.kv.value) else { continue };
                        let new_match = filter.matches(&new);
                        let old_match = ev
                            .prev
                            .as_ref()
                            .and_then(|p| serde_json::from_slice::<Value>(p).ok())
                            .is_some_and(|o| filter.matches(&o));
                        let kind = match (ev.kind, old_match, new_match) {
                            (EventType::Deleted, _, true) => Some("DELETED"),
                            (EventType::Deleted, _, false) => None,
                            (_, true, true) => Some(kind),
                            (_, false, true) => Some("ADDED"),
                            (_, true, false) => Some("DELETED"),
                            (_, false, false) => None,
                        };
                        match kind {
                            Some(k) => enc.event(k, &ev.kv.value, Some(&new)),
                            None => None,
                        }
                    };
                    if let Some(l) = out
                        && tx.send(l).await.is_err() { return; }
                }
            }
        }
    });
    let mut resp = Response::new(Body::from_stream(
        ReceiverStream::new(rx).map(Ok::<Bytes, std::io::Error>),
    ));
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    Ok(resp)
}
