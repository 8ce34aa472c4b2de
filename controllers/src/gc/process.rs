//! What the collector does with one object: finish its orphaning or foreground deletion, or delete it
//! (or drop dangling ownerReferences) when its owners are gone.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use k1s_apimachinery::status::StatusError;
use k1s_apiserver::client::Gvr;
use serde_json::{Value, json};

use super::graph::{Node, deleting, deleting_dependents, has_finalizer, owner_refs, uid_of};
use super::{FOREGROUND, Gc, ORPHAN};

/// Group, version and plural → their leaked `Gvr`.
type Interned = HashMap<(String, String, String), Gvr>;

type Result<T = (), E = StatusError> = std::result::Result<T, E>;

/// Processes the object with `uid` (nothing when it is no longer cached).
pub(super) async fn process(gc: &Gc, uid: &str) -> Result {
    let Some(node) = gc.graph().get(uid).cloned() else {
        return Ok(());
    };
    if deleting(&node.obj) {
        if has_finalizer(&node.obj, ORPHAN) {
            return orphan_dependents(gc, uid, &node).await;
        }
        if has_finalizer(&node.obj, FOREGROUND) {
            return delete_dependents(gc, uid, &node).await;
        }
        return Ok(());
    }
    if owner_refs(&node.obj).is_empty() {
        return Ok(());
    }
    attempt_to_delete(gc, uid, &node).await
}

/// Removes the ownerReferences to `uid` from every dependent, then the `orphan` finalizer.
async fn orphan_dependents(gc: &Gc, uid: &str, owner: &Node) -> Result {
    let deps: Vec<Node> = {
        let g = gc.graph();
        g.dependents(uid)
            .iter()
            .filter_map(|d| g.get(d).cloned())
            .collect()
    };
    for d in deps {
        remove_owner_refs(gc, &d, |r| r["uid"] == uid).await?;
    }
    remove_finalizer(gc, owner, ORPHAN).await
}

/// Foreground deletion of `uid`: deletes its dependents; once none blocks it, removes the finalizer.
async fn delete_dependents(gc: &Gc, uid: &str, owner: &Node) -> Result {
    let (blocking, pending, cycle) = {
        let g = gc.graph();
        let pending: Vec<String> = g
            .dependents(uid)
            .into_iter()
            .filter(|d| g.get(d).is_some_and(|n| !deleting(&n.obj)))
            .collect();
        (
            g.blocking_dependents(uid),
            pending,
            g.in_blocking_cycle(uid),
        )
    };
    // Dependents are deleted from their own side (their owner is waiting for them); those already
    // being deleted need nothing more.
    for d in pending {
        gc.queue.add(d);
    }
    if blocking.is_empty() {
        return remove_finalizer(gc, owner, FOREGROUND).await;
    }
    if cycle {
        // Stop blocking our waiting owners; the cycle then unwinds from them.
        let waiting: Vec<String> = {
            let g = gc.graph();
            owner_refs(&owner.obj)
                .iter()
                .filter_map(|r| r["uid"].as_str())
                .filter(|o| g.get(o).is_some_and(|n| deleting_dependents(&n.obj)))
                .map(str::to_string)
                .collect()
        };
        unblock_owner_refs(gc, owner, &waiting).await?;
    }
    Ok(())
}

/// The state of one owner, seen from a dependent.
enum OwnerState {
    Solid,
    Waiting,
    Dangling,
}

/// A dependent: deletes it when all its owners are gone (or waiting for it), or drops the
/// references to absent and waiting owners when another owner still exists.
async fn attempt_to_delete(gc: &Gc, uid: &str, node: &Node) -> Result {
    let mut solid = false;
    let mut drop_uids = Vec::new();
    let mut waiting = false;
    for r in owner_refs(&node.obj) {
        let Some(owner_uid) = r["uid"].as_str() else {
            continue;
        };
        match owner_state(gc, node, r).await? {
            OwnerState::Solid => solid = true,
            OwnerState::Waiting => {
                waiting = true;
                drop_uids.push(owner_uid.to_string());
            }
            OwnerState::Dangling => drop_uids.push(owner_uid.to_string()),
        }
    }
    if drop_uids.is_empty() {
        return Ok(());
    }
    if solid {
        return remove_owner_refs(gc, node, |r| {
            r["uid"]
                .as_str()
                .is_some_and(|u| drop_uids.iter().any(|d| d == u))
        })
        .await;
    }
    let (has_dependents, dependent_waits) = {
        let g = gc.graph();
        let deps = g.dependents(uid);
        let waits = deps
            .iter()
            .any(|d| g.get(d).is_some_and(|n| deleting_dependents(&n.obj)));
        (!deps.is_empty(), waits)
    };
    let policy = if waiting && has_dependents {
        if dependent_waits {
            // A dependent of ours waits too: possibly a cycle, so we stop blocking our owners.
            let all: Vec<String> = owner_refs(&node.obj)
                .iter()
                .filter_map(|r| r["uid"].as_str().map(str::to_string))
                .collect();
            unblock_owner_refs(gc, node, &all).await?;
        }
        "Foreground"
    } else {
        "Background"
    };
    // The cache may lag: only delete the very object we judged.
    let live = gc
        .client
        .get(node.gvr, node.namespace(), node.name())
        .await?;
    let Some(live) = live else { return Ok(()) };
    if uid_of(&live) != Some(uid) || deleting(&live) {
        return Ok(());
    }
    tracing::info!(
        resource = node.gvr.plural,
        namespace = node.namespace().unwrap_or_default(),
        name = node.name(),
        policy,
        "deleting object whose owners are gone"
    );
    gc.client
        .delete(node.gvr, node.namespace(), node.name(), Some(policy))
        .await
}

/// Whether the owner `r` of `dependent` exists: from the graph, else (never trusting an absence in
/// the cache) from a live GET.
async fn owner_state(gc: &Gc, dependent: &Node, r: &Value) -> Result<OwnerState> {
    let owner_uid = r["uid"].as_str().unwrap_or_default();
    let cached = gc.graph().get(owner_uid).cloned();
    let state_of = |o: &Value| {
        if deleting_dependents(o) {
            OwnerState::Waiting
        } else {
            OwnerState::Solid
        }
    };
    // The cached owner counts only where the reference's coordinates agree with it; otherwise the
    // reference is checked by its coordinates, as an owner not seen at all.
    if let Some(o) = cached
        && (o.namespace().is_none() || o.namespace() == dependent.namespace())
        && o.name() == r["name"].as_str().unwrap_or_default()
        && o.obj["kind"] == r["kind"]
    {
        return Ok(state_of(&o.obj));
    }
    let api_version = r["apiVersion"].as_str().unwrap_or_default();
    let kind = r["kind"].as_str().unwrap_or_default();
    let name = r["name"].as_str().unwrap_or_default();
    let Some((gvr, namespaced)) = resolve(gc, api_version, kind) else {
        // Unknown kind: it cannot be proven absent, so the dependent is left alone.
        tracing::debug!(api_version, kind, "owner kind not served; not collecting");
        return Ok(OwnerState::Solid);
    };
    let ns = if namespaced {
        match dependent.namespace() {
            Some(ns) => Some(ns),
            // A cluster-scoped dependent cannot have a namespaced owner.
            None => return Ok(OwnerState::Dangling),
        }
    } else {
        None
    };
    match gc.client.get(gvr, ns, name).await? {
        Some(o) if uid_of(&o) == Some(owner_uid) => Ok(state_of(&o)),
        _ => Ok(OwnerState::Dangling),
    }
}

/// The resource (and whether it is namespaced) of an ownerReference's apiVersion and kind.
fn resolve(gc: &Gc, api_version: &str, kind: &str) -> Option<(Gvr, bool)> {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let table = gc.client.state().table();
    let row = table.by_kind(group, kind)?;
    if let Some(g) = super::WATCHED
        .iter()
        .find(|g| g.group == row.group && g.plural == row.plural)
    {
        return Some((*g, row.namespaced));
    }
    // Resources outside WATCHED (custom resources): their names are interned once per resource.
    static INTERNED: OnceLock<Mutex<Interned>> = OnceLock::new();
    let mut interned = INTERNED
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let version = if row.version.is_empty() {
        version.to_string()
    } else {
        row.version.clone()
    };
    let key = (row.group.clone(), version, row.plural.clone());
    let gvr = *interned.entry(key.clone()).or_insert_with(|| {
        Gvr::new(
            Box::leak(key.0.into_boxed_str()),
            Box::leak(key.1.into_boxed_str()),
            Box::leak(key.2.into_boxed_str()),
        )
    });
    Some((gvr, row.namespaced))
}

/// Merge-patches `node`'s ownerReferences without those `drop` selects (pinned to the cached
/// resourceVersion, so a stale view conflicts and is retried).
async fn remove_owner_refs(gc: &Gc, node: &Node, drop: impl Fn(&Value) -> bool) -> Result {
    let refs = owner_refs(&node.obj);
    let kept: Vec<Value> = refs.iter().filter(|r| !drop(r)).cloned().collect();
    if kept.len() == refs.len() {
        return Ok(());
    }
    let refs = if kept.is_empty() {
        Value::Null
    } else {
        Value::Array(kept)
    };
    patch_meta(gc, node, json!({"ownerReferences": refs})).await
}

/// Sets `blockOwnerDeletion: false` on `node`'s references to `owners`.
async fn unblock_owner_refs(gc: &Gc, node: &Node, owners: &[String]) -> Result {
    let mut changed = false;
    let refs: Vec<Value> = owner_refs(&node.obj)
        .iter()
        .map(|r| {
            let mut r = r.clone();
            if r["blockOwnerDeletion"] == true
                && r["uid"]
                    .as_str()
                    .is_some_and(|u| owners.iter().any(|o| o == u))
            {
                r["blockOwnerDeletion"] = json!(false);
                changed = true;
            }
            r
        })
        .collect();
    if !changed {
        return Ok(());
    }
    patch_meta(gc, node, json!({"ownerReferences": refs})).await
}

/// Removes finalizer `f`; with no finalizers left the API server deletes the object.
async fn remove_finalizer(gc: &Gc, node: &Node, f: &str) -> Result {
    let kept: Vec<Value> = node.obj["metadata"]["finalizers"]
        .as_array()
        .map(|a| a.iter().filter(|x| *x != f).cloned().collect())
        .unwrap_or_default();
    let value = if kept.is_empty() {
        Value::Null
    } else {
        Value::Array(kept)
    };
    patch_meta(gc, node, json!({"finalizers": value})).await
}

async fn patch_meta(gc: &Gc, node: &Node, mut meta: Value) -> Result {
    meta["resourceVersion"] = node.obj["metadata"]["resourceVersion"].clone();
    match gc
        .client
        .merge_patch(
            node.gvr,
            node.namespace(),
            node.name(),
            None,
            &json!({"metadata": meta}),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}
