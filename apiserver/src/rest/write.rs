//! CREATE, UPDATE (PUT), PATCH (json, merge, strategic, apply) and pods/binding.
//!
//! Every write funnels into [`create_object`] or [`update_object`], so defaults, validation, field
//! management, dry-run and the compare-and-swap write are the same whichever verb started it.

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use k1s_apimachinery::status::{StatusCause, StatusError};
use k1s_store::{StoreError, WriteOp};
use serde_json::{Value, json};

use super::{Ctx, parse};
use crate::body;
use crate::resources::StrategyKind;
use crate::response::{ApiError, ApiResult, store_error};
use crate::strategy;

/// Serialises an object that was not stored (dry-run, no-op).
fn to_bytes(obj: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(obj).unwrap_or_default())
}

/// Attempts of a patch whose compare-and-swap lost a race with another writer.
const PATCH_RETRIES: usize = 8;

/// Checks `apiVersion` and `kind` of a body against the URL's resource.
fn check_type_meta(ctx: &Ctx, obj: &mut Value) -> ApiResult<()> {
    let res = &ctx.res;
    let api_version = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let kind = obj
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if kind.is_empty() {
        return Err(ApiError(StatusError::bad_request(format!(
            "Object 'Kind' is missing in '{}'",
            truncate(&obj.to_string(), 256)
        ))));
    }
    if api_version.is_empty() {
        return Err(ApiError(StatusError::bad_request(format!(
            "Object 'apiVersion' is missing in '{}'",
            truncate(&obj.to_string(), 256)
        ))));
    }
    let expected_kind = match ctx.subresource.as_deref() {
        Some("scale") => "Scale",
        _ => res.kind.as_str(),
    };
    if api_version != res.api_version() {
        return Err(ApiError(StatusError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({})",
            res.api_version()
        ))));
    }
    if kind != expected_kind {
        return Err(ApiError(StatusError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind ({expected_kind})"
        ))));
    }
    if !obj.get("metadata").is_none_or(Value::is_object) {
        return Err(ApiError(StatusError::bad_request(
            "metadata must be an object",
        )));
    }
    if obj.get("metadata").is_none() {
        obj["metadata"] = json!({});
    }
    Ok(())
}

fn truncate(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_string();
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// Puts the URL's namespace into the object, or rejects a mismatch.
fn check_namespace_field(ctx: &Ctx, obj: &mut Value) -> ApiResult<()> {
    let meta = &mut obj["metadata"];
    if !ctx.res.namespaced {
        if let Some(m) = meta.as_object_mut() {
            m.remove("namespace");
        }
        return Ok(());
    }
    let url_ns = ctx.namespace.clone().unwrap_or_default();
    match meta.get("namespace").and_then(Value::as_str) {
        None | Some("") => meta["namespace"] = json!(url_ns),
        Some(ns) if ns == url_ns => {}
        Some(_) => {
            return Err(ApiError(StatusError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            )));
        }
    }
    Ok(())
}

/// Returns 404 if the namespace is missing and 403 if it is terminating.
async fn check_namespace_exists(ctx: &Ctx) -> ApiResult<()> {
    let Some(ns) = ctx.namespace.as_deref().filter(|_| ctx.res.namespaced) else {
        return Ok(());
    };
    let key = format!("/registry/core/namespaces/{ns}");
    match ctx.state.store().get(&key).map_err(store_error)? {
        None => Err(ApiError(StatusError::not_found("", "namespaces", ns))),
        Some(kv) => {
            let obj = parse(&kv)?;
            if obj
                .pointer("/metadata/deletionTimestamp")
                .is_some_and(|t| !t.is_null())
            {
                Err(ApiError(crate::response::namespace_terminating(
                    ns,
                    &ctx.res.group,
                    &ctx.res.plural,
                    ctx.name(),
                )))
            } else {
                Ok(())
            }
        }
    }
}

/// `stringData` is write-only: merged into `data` (base64) and dropped, as upstream does.
fn fold_string_data(ctx: &Ctx, obj: &mut Value) -> ApiResult<()> {
    if ctx.res.strategy != StrategyKind::Secret {
        return Ok(());
    }
    use base64::Engine;
    if let Some(Value::Object(sd)) = obj.as_object_mut().and_then(|m| m.remove("stringData")) {
        let data = obj
            .as_object_mut()
            .expect("object")
            .entry("data")
            .or_insert_with(|| json!({}));
        if !data.is_object() {
            *data = json!({});
        }
        for (k, v) in sd {
            let s = v.as_str().unwrap_or_default();
            data[k] = json!(base64::engine::general_purpose::STANDARD.encode(s));
        }
    }
    if let Some(Value::Object(data)) = obj.get("data") {
        for (k, v) in data {
            let ok = v
                .as_str()
                .is_some_and(|s| base64::engine::general_purpose::STANDARD.decode(s).is_ok());
            if !ok {
                return Err(ApiError(StatusError::bad_request(format!(
                    "Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data at key {k:?}"
                ))));
            }
        }
    }
    Ok(())
}

fn invalid(ctx: &Ctx, causes: Vec<StatusCause>) -> ApiError {
    ApiError(StatusError::invalid(
        &ctx.res.group,
        &ctx.res.kind,
        ctx.name(),
        causes,
    ))
}

/// Random suffix of generateName, from upstream's alphabet (no vowels, no confusable digits).
pub(crate) fn random_suffix() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

fn now() -> String {
    k1s_apimachinery::meta::now_rfc3339()
}

/// A response carrying `Warning` headers for fields dropped under `fieldValidation=Warn`.
fn with_warnings(mut resp: Response, warnings: &[String]) -> Response {
    for w in warnings {
        let text = format!("299 - {:?}", w);
        if let Ok(v) = axum::http::HeaderValue::from_str(&text) {
            resp.headers_mut().append("Warning", v);
        }
    }
    resp
}

pub async fn create(mut ctx: Ctx, body: Body) -> ApiResult {
    let bytes = body::read(body).await?;
    let mut obj = body::decode_object(&ctx.headers, &bytes)?;
    check_type_meta(&ctx, &mut obj)?;
    let warnings = crate::schema::check_fields(&ctx, &mut obj, true)?;
    let (code, obj) = create_object(&mut ctx, obj).await?;
    Ok(with_warnings(
        super::raw_response(&ctx, code, obj),
        &warnings,
    ))
}

/// Creates a decoded object (shared by POST and by server-side apply of a new object).
pub async fn create_object(ctx: &mut Ctx, mut obj: Value) -> ApiResult<(StatusCode, Bytes)> {
    check_namespace_field(ctx, &mut obj)?;
    let meta = obj["metadata"].as_object_mut().expect("checked");
    for key in [
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
    ] {
        meta.remove(key);
    }
    let generate = meta
        .get("generateName")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let explicit_name = meta
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
    meta.insert("creationTimestamp".into(), json!(now()));
    if let Some(url_name) = &ctx.name
        && !explicit_name.is_empty()
        && &explicit_name != url_name
    {
        return Err(ApiError(StatusError::bad_request(format!(
            "the name of the object ({explicit_name}) does not match the name on the URL ({url_name})"
        ))));
    }
    strategy::prepare_create(&ctx.res, &mut obj);
    if ctx.res.strategy == crate::resources::StrategyKind::Pod && ctx.res.custom.is_none() {
        let ns = ctx.namespace.clone().unwrap_or_default();
        crate::satoken::admission::admit_pod(&ctx.state, &ns, &mut obj);
    }
    fold_string_data(ctx, &mut obj)?;
    let manager = ctx.field_manager();
    let api_version = ctx.res.api_version();
    let dry_run = ctx.query.dry_run();
    for attempt in 0..8 {
        let name = if explicit_name.is_empty() && !generate.is_empty() {
            format!("{generate}{}", random_suffix())
        } else {
            explicit_name.clone()
        };
        obj["metadata"]["name"] = json!(name);
        ctx.name = Some(name.clone());
        let causes = strategy::validate::validate(&ctx.res, &obj, None);
        if !causes.is_empty() {
            return Err(invalid(ctx, causes));
        }
        check_namespace_exists(ctx).await?;
        // Held until the write below has committed or failed (see `alloc`).
        let _allocation = crate::alloc::allocate(ctx, &mut obj).await?;
        if obj["metadata"].get("managedFields").is_none() {
            k1s_apimachinery::apply::track_update(None, &mut obj, &manager, &api_version, &now());
        }
        if dry_run {
            return Ok((StatusCode::CREATED, to_bytes(&obj)));
        }
        // Only a generated name can be retried; otherwise the object is handed over, not copied.
        let value = if explicit_name.is_empty() {
            obj.clone()
        } else {
            std::mem::take(&mut obj)
        };
        match ctx
            .state
            .store()
            .write(WriteOp::Create {
                key: ctx.key(),
                value: crate::events_view::to_storage(&ctx.res, value),
            })
            .await
        {
            Ok(r) => {
                crate::hooks::after_write(&ctx.state, &ctx.res, None, false);
                let value = crate::events_view::view_bytes(&ctx.res, r.kv.value);
                return Ok((StatusCode::CREATED, value));
            }
            Err(StoreError::AlreadyExists) if explicit_name.is_empty() && attempt < 7 => continue,
            Err(e) => return Err(ctx.store_err(e)),
        }
    }
    Err(ctx.store_err(StoreError::AlreadyExists))
}

pub async fn update(ctx: Ctx, body: Body) -> ApiResult {
    let bytes = body::read(body).await?;
    let mut obj = body::decode_object(&ctx.headers, &bytes)?;
    check_type_meta(&ctx, &mut obj)?;
    let warnings = crate::schema::check_fields(&ctx, &mut obj, true)?;
    let body_name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if body_name != ctx.name() {
        return Err(ApiError(StatusError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({})",
            ctx.name()
        ))));
    }
    check_namespace_field(&ctx, &mut obj)?;
    let cur = ctx.load()?;
    let old = parse(&cur)?;
    if let Some(rv) = obj
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        && rv != cur.mod_revision.to_string()
    {
        return Err(ctx.store_err(StoreError::Conflict {
            current: cur.mod_revision,
        }));
    }
    let (code, obj) = update_object(&ctx, old, cur.mod_revision, obj).await?;
    Ok(with_warnings(
        super::raw_response(&ctx, code, obj),
        &warnings,
    ))
}

/// Finishes an update of `old` (at revision `old_rev`) into `new`.
pub async fn update_object(
    ctx: &Ctx,
    old: Value,
    old_rev: u64,
    new: Value,
) -> ApiResult<(StatusCode, Bytes)> {
    write_update(ctx, old, old_rev, new, Tracking::Update).await
}

/// How a write records field ownership.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tracking {
    /// An `Update` entry for the request's field manager.
    Update,
    /// Server-side apply already computed managedFields.
    Applied,
}

async fn write_update(
    ctx: &Ctx,
    old: Value,
    old_rev: u64,
    mut new: Value,
    tracking: Tracking,
) -> ApiResult<(StatusCode, Bytes)> {
    let sub = ctx.subresource.as_deref();
    if sub == Some("finalize") {
        // namespaces/finalize changes spec.finalizers only.
        let finalizers = new
            .pointer("/spec/finalizers")
            .cloned()
            .unwrap_or(json!([]));
        new = old.clone();
        new["spec"]["finalizers"] = finalizers;
    } else {
        strategy::prepare_update(&ctx.res, &mut new, &old, sub);
    }
    fold_string_data(ctx, &mut new)?;
    new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
    if new["metadata"].get("managedFields").is_none()
        && let Some(mf) = old["metadata"].get("managedFields")
    {
        new["metadata"]["managedFields"] = mf.clone();
    }
    let causes = strategy::validate::validate(&ctx.res, &new, Some(&old));
    if !causes.is_empty() {
        return Err(invalid(ctx, causes));
    }
    crate::alloc::keep_allocations(ctx, &old, &mut new);
    // Held until the write below has committed or failed (see `alloc`).
    let _allocation = crate::alloc::allocate_update(ctx, &old, &mut new).await?;
    if new == old {
        return Ok((StatusCode::OK, to_bytes(&old)));
    }
    if tracking == Tracking::Update {
        let manager = ctx.field_manager();
        let tracked_sub = sub
            .filter(|s| matches!(*s, "status" | "scale"))
            .unwrap_or_default();
        let meta = k1s_apimachinery::patch::builtin_patch_meta(&ctx.res.group, &ctx.res.kind);
        k1s_apimachinery::apply::track_update_subresource(
            Some(&old),
            &mut new,
            &manager,
            &ctx.res.api_version(),
            tracked_sub,
            &now(),
            meta.as_ref(),
        );
    }
    if ctx.query.dry_run() {
        return Ok((StatusCode::OK, to_bytes(&new)));
    }
    let deleting = new
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null());
    let no_finalizers = new
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty);
    let namespace_pending = ctx.res.strategy == StrategyKind::Namespace
        && new
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
    if deleting && no_finalizers && !namespace_pending && ctx.res.strategy != StrategyKind::Pod {
        // The last finalizer is gone: the object goes away now.
        let r = ctx
            .state
            .store()
            .write(WriteOp::Delete {
                key: ctx.key(),
                expected: Some(old_rev),
            })
            .await
            .map_err(|e| ctx.store_err(e))?;
        crate::hooks::after_write(&ctx.state, &ctx.res, Some(&old), true);
        let value = crate::events_view::view_bytes(&ctx.res, r.kv.value);
        return Ok((StatusCode::OK, value));
    }
    let r = ctx
        .state
        .store()
        .write(WriteOp::Update {
            key: ctx.key(),
            value: crate::events_view::to_storage(&ctx.res, new),
            expected: Some(old_rev),
        })
        .await
        .map_err(|e| ctx.store_err(e))?;
    crate::hooks::after_write(&ctx.state, &ctx.res, Some(&old), false);
    Ok((
        StatusCode::OK,
        crate::events_view::view_bytes(&ctx.res, r.kv.value),
    ))
}

/// Maps a patch failure: malformed input is 400, a patch that does not apply is 422.
fn patch_error(e: k1s_apimachinery::patch::PatchError) -> ApiError {
    ApiError(e.to_status())
}

pub async fn patch(mut ctx: Ctx, body: Body) -> ApiResult {
    let ct = body::content_type(&ctx.headers);
    let bytes = body::read(body).await?;
    let is_custom = ctx.res.strategy == StrategyKind::Custom;
    match ct.as_str() {
        "application/json-patch+json"
        | "application/merge-patch+json"
        | "application/apply-patch+yaml" => {}
        "application/strategic-merge-patch+json" if !is_custom => {}
        other => return Err(ApiError(StatusError::unsupported_media_type(other))),
    }
    let meta = k1s_apimachinery::patch::builtin_patch_meta(&ctx.res.group, &ctx.res.kind);
    let patch_json = match ct.as_str() {
        "application/json-patch+json" => None,
        "application/apply-patch+yaml" => Some(body::decode_yaml(&bytes)?),
        _ => Some(body::decode_json(&bytes)?),
    };
    if ct == "application/apply-patch+yaml" {
        return apply(&mut ctx, patch_json.unwrap_or_default(), meta.as_ref()).await;
    }
    // A resourceVersion the patch itself sets is a precondition; without one, a patch that loses a
    // race with another writer is simply applied again to the new state.
    let pinned = patch_resource_version(&ct, &bytes, patch_json.as_ref());

    for attempt in 0..PATCH_RETRIES {
        let cur = ctx.load()?;
        let old = parse(&cur)?;
        let mut new = match ct.as_str() {
            "application/json-patch+json" => {
                k1s_apimachinery::patch::json_patch(&old, &bytes).map_err(patch_error)?
            }
            "application/merge-patch+json" => {
                k1s_apimachinery::patch::merge_patch(&old, patch_json.as_ref().expect("parsed"))
                    .map_err(patch_error)?
            }
            _ => k1s_apimachinery::patch::strategic::apply(
                &old,
                patch_json.as_ref().expect("parsed"),
                meta.as_ref(),
            )
            .map_err(patch_error)?,
        };
        if !new.is_object() || !new.get("metadata").is_none_or(Value::is_object) {
            return Err(ApiError(crate::response::unprocessable(
                "the patched object is not a valid object",
            )));
        }
        // The patch may not rename, move or retype the object.
        new["apiVersion"] = old["apiVersion"].clone();
        new["kind"] = old["kind"].clone();
        new["metadata"]["name"] = old["metadata"]["name"].clone();
        if ctx.res.namespaced {
            new["metadata"]["namespace"] = old["metadata"]["namespace"].clone();
        }
        let warnings = crate::schema::check_fields(&ctx, &mut new, false)?;
        if let Some(rv) = &pinned
            && *rv != cur.mod_revision.to_string()
        {
            return Err(ctx.store_err(StoreError::Conflict {
                current: cur.mod_revision,
            }));
        }
        match update_object(&ctx, old, cur.mod_revision, new).await {
            Err(ApiError(e))
                if e.code == 409
                    && e.reason == "Conflict"
                    && pinned.is_none()
                    && attempt + 1 < PATCH_RETRIES =>
            {
                continue;
            }
            Err(e) => return Err(e),
            Ok((code, obj)) => {
                return Ok(with_warnings(
                    super::raw_response(&ctx, code, obj),
                    &warnings,
                ));
            }
        }
    }
    Err(ctx.store_err(StoreError::Conflict { current: 0 }))
}

/// The `metadata.resourceVersion` a patch body sets, if any.
fn patch_resource_version(
    content_type: &str,
    bytes: &[u8],
    patch: Option<&Value>,
) -> Option<String> {
    if content_type == "application/json-patch+json" {
        let ops: Vec<Value> = serde_json::from_slice(bytes).ok()?;
        return ops
            .iter()
            .filter(|op| op["path"] == "/metadata/resourceVersion")
            .filter(|op| matches!(op["op"].as_str(), Some("add" | "replace" | "test")))
            .find_map(|op| op["value"].as_str().map(str::to_string));
    }
    patch?
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// Server-side apply (`application/apply-patch+yaml`).
async fn apply(
    ctx: &mut Ctx,
    applied: Value,
    meta: &dyn k1s_apimachinery::patch::PatchMeta,
) -> ApiResult {
    let mut applied = applied;
    if !applied.is_object() {
        return Err(ApiError(StatusError::bad_request(
            "the apply configuration must be an object",
        )));
    }
    check_type_meta(ctx, &mut applied)?;
    let name = applied
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if name != ctx.name() {
        return Err(ApiError(StatusError::bad_request(format!(
            "the name of the object ({name}) does not match the name on the URL ({})",
            ctx.name()
        ))));
    }
    let Some(manager) = ctx.query.get("fieldManager").map(str::to_string) else {
        return Err(ApiError(StatusError::bad_request(
            "PATCH, application/apply-patch+yaml requests must have a fieldManager query parameter",
        )));
    };
    let force = ctx.query.flag("force");
    let warnings = crate::schema::check_fields(ctx, &mut applied, false)?;
    for attempt in 0..PATCH_RETRIES {
        let cur = match ctx.state.store().get(&ctx.key()).map_err(store_error)? {
            Some(kv) => crate::events_view::view_kv(&ctx.res, kv),
            None => {
                let obj =
                    k1s_apimachinery::apply::apply(None, &applied, &manager, force, meta, &now())
                        .map_err(apply_error)?;
                let (code, obj) = create_object(ctx, obj).await?;
                return Ok(with_warnings(
                    super::raw_response(ctx, code, obj),
                    &warnings,
                ));
            }
        };
        let old = parse(&cur)?;
        let new =
            k1s_apimachinery::apply::apply(Some(&old), &applied, &manager, force, meta, &now())
                .map_err(apply_error)?;
        match write_update(ctx, old, cur.mod_revision, new, Tracking::Applied).await {
            Err(ApiError(e))
                if e.code == 409 && e.reason == "Conflict" && attempt + 1 < PATCH_RETRIES =>
            {
                continue;
            }
            Err(e) => return Err(e),
            Ok((code, obj)) => {
                return Ok(with_warnings(
                    super::raw_response(ctx, code, obj),
                    &warnings,
                ));
            }
        }
    }
    Err(ctx.store_err(StoreError::Conflict { current: 0 }))
}

fn apply_error(e: k1s_apimachinery::apply::ApplyError) -> ApiError {
    ApiError(e.to_status())
}

/// `POST pods/<name>/binding`: assigns a pod to a node, once.
pub async fn bind(ctx: Ctx, body: Body) -> ApiResult {
    let bytes = body::read(body).await?;
    let binding = body::decode_object(&ctx.headers, &bytes)?;
    let node = binding
        .pointer("/target/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if node.is_empty() {
        return Err(ApiError(StatusError::invalid(
            "",
            "Binding",
            ctx.name(),
            vec![strategy::validate::required("target.name")],
        )));
    }
    for _ in 0..PATCH_RETRIES {
        let cur = ctx.load()?;
        let mut pod = parse(&cur)?;
        if pod
            .pointer("/metadata/deletionTimestamp")
            .is_some_and(|t| !t.is_null())
        {
            return Err(ApiError(StatusError::conflict(
                "",
                "pods",
                ctx.name(),
                "pod is being deleted, cannot be assigned to a host",
            )));
        }
        if let Some(current) = pod
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            return Err(ApiError(StatusError::conflict(
                "",
                "pods",
                ctx.name(),
                &format!("pod {} is already assigned to node {current:?}", ctx.name()),
            )));
        }
        pod["spec"]["nodeName"] = json!(node);
        let conditions = pod["status"]
            .get("conditions")
            .cloned()
            .unwrap_or(json!([]));
        let mut conditions: Vec<Value> = conditions.as_array().cloned().unwrap_or_default();
        conditions.retain(|c| c.get("type") != Some(&json!("PodScheduled")));
        conditions.push(json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now()}));
        pod["status"]["conditions"] = json!(conditions);
        if ctx.query.dry_run() {
            break;
        }
        match ctx
            .state
            .store()
            .write(WriteOp::Update {
                key: ctx.key(),
                value: pod,
                expected: Some(cur.mod_revision),
            })
            .await
        {
            Ok(_) => break,
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(ctx.store_err(e)),
        }
    }
    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201});
    Ok(crate::response::json_value(StatusCode::CREATED, &status))
}

#[cfg(test)]
mod tests {
    use super::patch_resource_version;
    use serde_json::json;

    #[test]
    fn only_a_resource_version_in_the_patch_pins_it() {
        let merge = json!({"metadata": {"resourceVersion": "7"}, "data": {"a": "b"}});
        assert_eq!(
            patch_resource_version("application/merge-patch+json", b"", Some(&merge)).as_deref(),
            Some("7")
        );
        assert_eq!(
            patch_resource_version(
                "application/merge-patch+json",
                b"",
                Some(&json!({"data": {}}))
            ),
            None
        );
        let ops = br#"[{"op":"test","path":"/metadata/resourceVersion","value":"9"},{"op":"replace","path":"/spec/replicas","value":2}]"#;
        assert_eq!(
            patch_resource_version("application/json-patch+json", ops, None).as_deref(),
            Some("9")
        );
        assert_eq!(
            patch_resource_version("application/json-patch+json", b"[]", None),
            None
        );
    }
}
