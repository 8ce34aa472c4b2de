//! Namespace deletion: once a namespace has a `deletionTimestamp`, delete everything in it, then
//! remove the `kubernetes` finalizer so the namespace itself goes away (what upstream's namespace
//! controller does). Level-triggered: every pass looks at all terminating namespaces, so a restart
//! in the middle picks up where it left off.

use std::time::Duration;

use serde_json::{Value, json};

use crate::rest::{Ctx, delete_object, update_object};
use crate::state::AppState;

/// User-Agent, and so field manager, of the namespace controller's writes.
const COMPONENT: &str = "k1s-namespace-controller";

/// Runs until `shutdown` fires.
pub async fn run(state: AppState, shutdown: tokio_util::sync::CancellationToken) {
    let prefix = "/registry/core/namespaces/";
    loop {
        let from = state.store().revision();
        let busy = sweep(&state).await;
        let mut watcher = match state.store().watch(prefix, from) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "namespace lifecycle: watch failed; retrying");
                tokio::select! { _ = shutdown.cancelled() => return, _ = tokio::time::sleep(Duration::from_secs(1)) => continue }
            }
        };
        // Wake on any namespace change, or retry soon while content is still being removed.
        let retry = if busy {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(30)
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = watcher.next() => {}
            _ = tokio::time::sleep(retry) => {}
        }
    }
}

/// One pass over terminating namespaces; returns whether any still has content.
async fn sweep(state: &AppState) -> bool {
    let Ok(list) = state
        .store()
        .list("/registry/core/namespaces/", Default::default())
    else {
        return true;
    };
    let mut busy = false;
    for kv in list.items {
        let Ok(ns) = serde_json::from_slice::<Value>(&kv.value) else {
            continue;
        };
        if ns
            .pointer("/metadata/deletionTimestamp")
            .is_none_or(Value::is_null)
        {
            continue;
        }
        let name = ns["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let mut remaining = 0usize;
        let table = state.table();
        for res in table.rows().iter().filter(|r| r.namespaced && r.preferred) {
            let prefix = res.list_prefix(Some(&name));
            let Ok(items) = state.store().list(&prefix, Default::default()) else {
                continue;
            };
            for item in items.items {
                remaining += 1;
                let Ok(obj) = serde_json::from_slice::<Value>(&item.value) else {
                    continue;
                };
                let already = obj
                    .pointer("/metadata/deletionTimestamp")
                    .is_some_and(|t| !t.is_null());
                let obj_name = obj["metadata"]["name"].as_str().unwrap_or_default();
                if !already || res.strategy == crate::resources::StrategyKind::Pod {
                    let c =
                        Ctx::internal(state, res.clone(), Some(&name), Some(obj_name), COMPONENT);
                    match delete_object(&c).await {
                        Err(e) if e.0.code != 404 => {
                            tracing::debug!(namespace = %name, object = obj_name, error = %e.0.message, "delete failed");
                        }
                        _ => {}
                    }
                }
            }
        }
        if remaining > 0 {
            busy = true;
            continue;
        }
        // Empty: drop the `kubernetes` finalizer; the update path deletes the namespace when no
        // finalizers are left.
        let Some(res) = table.get("", "v1", "namespaces") else {
            continue;
        };
        let mut c = Ctx::internal(state, res, None, Some(&name), COMPONENT);
        c.subresource = Some("finalize".into());
        let mut new = ns.clone();
        let fins: Vec<Value> = ns
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .map(|f| f.iter().filter(|x| *x != "kubernetes").cloned().collect())
            .unwrap_or_default();
        new["spec"]["finalizers"] = json!(fins);
        if let Err(e) = update_object(&c, ns.clone(), kv.mod_revision, new).await {
            tracing::debug!(namespace = %name, error = %e.0.message, "finalize failed");
            busy = true;
        }
    }
    busy
}
