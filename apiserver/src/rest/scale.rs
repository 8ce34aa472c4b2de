//! The `scale` subresource (`autoscaling/v1 Scale`) of workloads and of custom resources that declare it.

use axum::body::Body;
use axum::http::StatusCode;
use k1s_apimachinery::status::StatusError;
use serde_json::{Value, json};

use super::{Ctx, parse};
use crate::body;
use crate::response::{ApiError, ApiResult, json_value};

/// JSON pointers of (spec replicas, status replicas, status selector) in the parent object.
fn paths(ctx: &Ctx) -> (String, String, Option<String>) {
    if let Some(scale) = ctx.res.custom.as_ref().and_then(|c| c.scale.as_ref()) {
        let ptr = |k: &str| {
            scale
                .get(k)
                .and_then(Value::as_str)
                .map(|p| p.replace('.', "/"))
        };
        return (
            ptr("specReplicasPath").unwrap_or_else(|| "/spec/replicas".into()),
            ptr("statusReplicasPath").unwrap_or_else(|| "/status/replicas".into()),
            ptr("labelSelectorPath"),
        );
    }
    ("/spec/replicas".into(), "/status/replicas".into(), None)
}

fn scale_of(ctx: &Ctx, obj: &Value) -> Value {
    let (spec_p, status_p, sel_p) = paths(ctx);
    let selector = match sel_p {
        Some(p) => obj
            .pointer(&p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        None => obj
            .pointer("/spec/selector")
            .and_then(|s| k1s_apimachinery::selector::label::LabelSelector::from_metav1(s).ok())
            .map(|s| s.to_string())
            .unwrap_or_default(),
    };
    let meta = &obj["metadata"];
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"],
            "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": {"replicas": obj.pointer(&spec_p).cloned().unwrap_or(json!(0))},
        "status": {"replicas": obj.pointer(&status_p).cloned().unwrap_or(json!(0)), "selector": selector},
    })
}

pub async fn get(ctx: Ctx) -> ApiResult {
    let kv = ctx.load()?;
    let obj = parse(&kv)?;
    Ok(json_value(StatusCode::OK, &scale_of(&ctx, &obj)))
}

/// Writes `replicas` into the parent object through the normal update path.
async fn set_replicas(ctx: &Ctx, replicas: Value, rv: Option<String>) -> ApiResult {
    if replicas.as_i64().is_none_or(|r| r < 0) {
        return Err(ApiError(StatusError::invalid(
            "autoscaling",
            "Scale",
            ctx.name(),
            vec![crate::strategy::validate::invalid(
                "spec.replicas",
                &replicas,
                "must be greater than or equal to 0",
            )],
        )));
    }
    let (spec_p, _, _) = paths(ctx);
    // Written like a main-resource update, but recorded as the `scale` subresource's manager.
    let main = ctx;
    for _ in 0..8 {
        let cur = main.load()?;
        if let Some(rv) = &rv
            && *rv != cur.mod_revision.to_string()
        {
            return Err(main.store_err(k1s_store::StoreError::Conflict {
                current: cur.mod_revision,
            }));
        }
        let old = parse(&cur)?;
        let mut new = old.clone();
        set_pointer(&mut new, &spec_p, replicas.clone());
        match super::write::update_object(main, old, cur.mod_revision, new).await {
            Err(ApiError(e)) if e.code == 409 && rv.is_none() => continue,
            Err(e) => return Err(e),
            Ok((_, obj)) => return Ok(json_value(StatusCode::OK, &scale_of(ctx, &obj))),
        }
    }
    Err(main.store_err(k1s_store::StoreError::Conflict { current: 0 }))
}

fn set_pointer(obj: &mut Value, pointer: &str, value: Value) {
    let mut cur = obj;
    let parts: Vec<&str> = pointer.split('/').skip(1).collect();
    for (i, p) in parts.iter().enumerate() {
        if i + 1 == parts.len() {
            cur[*p] = value;
            return;
        }
        if !cur.get(*p).is_some_and(Value::is_object) {
            cur[*p] = json!({});
        }
        cur = &mut cur[*p];
    }
}

pub async fn update(ctx: Ctx, body: Body) -> ApiResult {
    let bytes = body::read(body).await?;
    let scale = body::decode_object(&ctx.headers, &bytes)?;
    let rv = scale
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let replicas = scale.pointer("/spec/replicas").cloned().unwrap_or(json!(0));
    set_replicas(&ctx, replicas, rv).await
}

pub async fn patch(ctx: Ctx, body: Body) -> ApiResult {
    let ct = body::content_type(&ctx.headers);
    let bytes = body::read(body).await?;
    let kv = ctx.load()?;
    let current = scale_of(&ctx, &parse(&kv)?);
    let patched = match ct.as_str() {
        "application/json-patch+json" => k1s_apimachinery::patch::json_patch(&current, &bytes),
        "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
            k1s_apimachinery::patch::merge_patch(&current, &body::decode_json(&bytes)?)
        }
        other => return Err(ApiError(StatusError::unsupported_media_type(other))),
    }
    .map_err(|e| ApiError(e.to_status()))?;
    let replicas = patched
        .pointer("/spec/replicas")
        .cloned()
        .unwrap_or(json!(0));
    set_replicas(&ctx, replicas, None).await
}
