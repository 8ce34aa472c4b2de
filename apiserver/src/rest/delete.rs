//! DELETE and DELETECOLLECTION: preconditions, finalizers, propagation policy, graceful pod deletion.
//!
//! An object with finalizers (or a Foreground/Orphan propagation that adds one) only gets a
//! `deletionTimestamp` and stays until its finalizers are removed (202 Accepted with the object); an
//! object without finalizers is removed at once (200 with a `Status` or, for pods and custom
//! resources, the object, as upstream).

use axum::body::Body;
use axum::http::StatusCode;
use k1s_apimachinery::status::StatusError;
use k1s_store::{StoreError, WriteOp};
use serde_json::{Value, json};

use super::read::{Filter, list_page};
use super::{Ctx, parse};
use crate::body;
use crate::resources::StrategyKind;
use crate::response::{ApiError, ApiResult, json_value};

/// `DeleteOptions` from the body and the query string.
#[derive(Default, Debug)]
pub(super) struct DeleteOptions {
    pub grace_period: Option<i64>,
    pub propagation: Option<String>,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    pub dry_run: bool,
}

/// `DeleteOptions` from a decoded body (also the `deleteOptions` of an Eviction).
pub(super) fn options_from_value(v: &Value) -> ApiResult<DeleteOptions> {
    let mut o = DeleteOptions {
        grace_period: v.get("gracePeriodSeconds").and_then(Value::as_i64),
        propagation: v
            .get("propagationPolicy")
            .and_then(Value::as_str)
            .map(str::to_string),
        ..Default::default()
    };
    if v.get("orphanDependents") == Some(&Value::Bool(true)) && o.propagation.is_none() {
        o.propagation = Some("Orphan".into());
    }
    o.uid = v
        .pointer("/preconditions/uid")
        .and_then(Value::as_str)
        .map(str::to_string);
    o.resource_version = v
        .pointer("/preconditions/resourceVersion")
        .and_then(Value::as_str)
        .map(str::to_string);
    o.dry_run = v
        .get("dryRun")
        .and_then(Value::as_array)
        .is_some_and(|d| d.iter().any(|x| x == "All"));
    check_propagation(&o)?;
    Ok(o)
}

async fn options(ctx: &Ctx, body: Body) -> ApiResult<DeleteOptions> {
    let bytes = body::read(body).await?;
    let mut o = DeleteOptions::default();
    if !bytes.iter().all(u8::is_ascii_whitespace) {
        let v = body::decode_object(&ctx.headers, &bytes)?;
        o = options_from_value(&v)?;
    }
    if let Some(g) = ctx.query.get("gracePeriodSeconds") {
        o.grace_period = Some(g.parse().map_err(|_| {
            ApiError(StatusError::bad_request(format!(
                "invalid gracePeriodSeconds: {g:?}"
            )))
        })?);
    }
    if let Some(p) = ctx.query.get("propagationPolicy") {
        o.propagation = Some(p.to_string());
    }
    o.dry_run |= ctx.query.dry_run();
    check_propagation(&o)?;
    Ok(o)
}

fn check_propagation(o: &DeleteOptions) -> ApiResult<()> {
    if let Some(p) = &o.propagation
        && !["Orphan", "Background", "Foreground"].contains(&p.as_str())
    {
        return Err(ApiError(StatusError::invalid(
            "meta.k8s.io",
            "DeleteOptions",
            "",
            vec![crate::strategy::validate::not_supported(
                "propagationPolicy",
                &json!(p),
                &["Foreground", "Background", "Orphan"],
            )],
        )));
    }
    Ok(())
}

/// Whether a successful immediate delete answers with the object (true) or a `Status` (false).
fn returns_object(ctx: &Ctx) -> bool {
    matches!(
        ctx.res.strategy,
        StrategyKind::Pod | StrategyKind::Custom | StrategyKind::Service | StrategyKind::Crd
    )
}

fn success_status(ctx: &Ctx, obj: &Value) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {
            "name": ctx.name(),
            "group": ctx.res.group,
            "kind": ctx.res.plural,
            "uid": obj.pointer("/metadata/uid").cloned().unwrap_or(Value::Null),
        }
    })
}

/// Namespaces kube-apiserver never lets go of.
const IMMORTAL_NAMESPACES: [&str; 3] = ["default", "kube-system", "kube-public"];

pub async fn delete(ctx: Ctx, body: Body) -> ApiResult {
    let opts = options(&ctx, body).await?;
    if ctx.res.strategy == StrategyKind::Namespace && IMMORTAL_NAMESPACES.contains(&ctx.name()) {
        return Err(ApiError(StatusError::forbidden(
            "",
            "namespaces",
            ctx.name(),
            "this namespace may not be deleted",
        )));
    }
    let (code, obj) = delete_one(&ctx, &opts).await?;
    if code == StatusCode::OK && !returns_object(&ctx) {
        return Ok(json_value(code, &success_status(&ctx, &obj)));
    }
    Ok(super::object_response(&ctx, code, &obj))
}

/// Deletes one object with default options (Background propagation), as an internal client would.
pub async fn delete_object(ctx: &Ctx) -> ApiResult<(StatusCode, Value)> {
    delete_one(ctx, &DeleteOptions::default()).await
}

pub(super) async fn delete_one(ctx: &Ctx, opts: &DeleteOptions) -> ApiResult<(StatusCode, Value)> {
    for _ in 0..8 {
        let cur = ctx.load()?;
        let mut obj = parse(&cur)?;
        let uid = obj
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if let Some(want) = &opts.uid
            && *want != uid
        {
            return Err(ApiError(StatusError::conflict(
                &ctx.res.group,
                &ctx.res.plural,
                ctx.name(),
                &format!(
                    "Precondition failed: UID in precondition: {want}, UID in object meta: {uid}"
                ),
            )));
        }
        if let Some(want) = &opts.resource_version
            && *want != cur.mod_revision.to_string()
        {
            return Err(ApiError(StatusError::conflict(
                &ctx.res.group,
                &ctx.res.plural,
                ctx.name(),
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {want}, ResourceVersion in object meta: {}",
                    cur.mod_revision
                ),
            )));
        }
        let already = obj
            .pointer("/metadata/deletionTimestamp")
            .is_some_and(|t| !t.is_null());
        let mut finalizers: Vec<String> = obj
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .map(|f| {
                f.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let propagation = opts
            .propagation
            .clone()
            .unwrap_or_else(|| default_propagation(ctx).into());
        let mut changed = false;
        for (policy, fin) in [("Foreground", "foregroundDeletion"), ("Orphan", "orphan")] {
            if propagation == policy
                && !finalizers.iter().any(|f| f == fin)
                && has_dependents_semantics(ctx)
            {
                finalizers.push(fin.into());
                changed = true;
            }
        }
        let namespace_pending = ctx.res.strategy == StrategyKind::Namespace;
        let pod_graceful = ctx.res.strategy == StrategyKind::Pod
            && obj
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .is_some_and(|n| !n.is_empty())
            && opts.grace_period.unwrap_or_else(|| {
                obj.pointer("/spec/terminationGracePeriodSeconds")
                    .and_then(Value::as_i64)
                    .unwrap_or(30)
            }) > 0
            && obj
                .pointer("/status/phase")
                .and_then(Value::as_str)
                .is_none_or(|p| p != "Succeeded" && p != "Failed");
        if finalizers.is_empty() && !namespace_pending && !pod_graceful {
            if opts.dry_run {
                return Ok((StatusCode::OK, obj));
            }
            match ctx
                .state
                .store()
                .write(WriteOp::Delete {
                    key: ctx.key(),
                    expected: Some(cur.mod_revision),
                })
                .await
            {
                Ok(r) => {
                    let last = parse(&crate::events_view::view_kv(&ctx.res, r.kv))?;
                    crate::hooks::after_write(&ctx.state, &ctx.res, Some(&obj), true);
                    return Ok((StatusCode::OK, last));
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(ctx.store_err(e)),
            }
        }
        if already && !changed {
            return Ok((StatusCode::ACCEPTED, obj));
        }
        let now = k1s_apimachinery::meta::now_rfc3339();
        if !already {
            let grace = if pod_graceful {
                opts.grace_period.unwrap_or_else(|| {
                    obj.pointer("/spec/terminationGracePeriodSeconds")
                        .and_then(Value::as_i64)
                        .unwrap_or(30)
                })
            } else {
                0
            };
            obj["metadata"]["deletionTimestamp"] = json!(if grace > 0 {
                plus_seconds(grace)
            } else {
                now.clone()
            });
            obj["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
        }
        obj["metadata"]["finalizers"] = json!(finalizers);
        if finalizers.is_empty()
            && let Some(m) = obj["metadata"].as_object_mut()
        {
            m.remove("finalizers");
        }
        if namespace_pending {
            obj["status"]["phase"] = json!("Terminating");
        }
        if opts.dry_run {
            return Ok((StatusCode::ACCEPTED, obj));
        }
        match ctx
            .state
            .store()
            .write(WriteOp::Update {
                key: ctx.key(),
                value: crate::events_view::to_storage(&ctx.res, obj.clone()),
                expected: Some(cur.mod_revision),
            })
            .await
        {
            Ok(r) => {
                let stored = parse(&crate::events_view::view_kv(&ctx.res, r.kv))?;
                crate::hooks::after_write(&ctx.state, &ctx.res, Some(&obj), false);
                return Ok((StatusCode::ACCEPTED, stored));
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(ctx.store_err(e)),
        }
    }
    Err(ctx.store_err(StoreError::Conflict { current: 0 }))
}

fn plus_seconds(secs: i64) -> String {
    let ts = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(secs);
    ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Upstream's default propagation: orphan for a few legacy kinds, background otherwise.
fn default_propagation(_ctx: &Ctx) -> &'static str {
    "Background"
}

/// Foreground/Orphan finalizers only make sense where the garbage collector tracks dependents.
fn has_dependents_semantics(ctx: &Ctx) -> bool {
    !matches!(
        ctx.res.strategy,
        StrategyKind::Event | StrategyKind::EventsV1
    )
}

pub async fn delete_collection(ctx: Ctx, body: Body) -> ApiResult {
    let opts = options(&ctx, body).await?;
    let filter = Filter::from_query(&ctx)?;
    let (page, _) = list_page(&ctx, &filter).await?;
    let mut deleted = Vec::new();
    for kv in page.items {
        let obj = parse(&kv)?;
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let ns = obj
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .map(str::to_string);
        let item_ctx = Ctx {
            namespace: ns,
            name: Some(name),
            ..ctx.clone()
        };
        match delete_one(&item_ctx, &opts).await {
            Ok((_, o)) => deleted.push(o),
            Err(ApiError(e)) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    let list = json!({
        "kind": ctx.res.list_kind,
        "apiVersion": ctx.res.api_version(),
        "metadata": {"resourceVersion": ctx.state.store().revision().to_string()},
        "items": deleted,
    });
    Ok(json_value(StatusCode::OK, &list))
}
