//! `POST pods/{name}/eviction`: delete a pod unless that would break its PodDisruptionBudget.
//!
//! Follows upstream's eviction REST:
//! - pods that are already terminal or Pending, or being deleted, are deleted without looking at
//!   budgets (they are not healthy replicas anyway);
//! - more than one budget selecting the pod is a 500, as upstream does not support it;
//! - a budget the disruption controller has not processed yet (`observedGeneration < generation`)
//!   or with no disruptions left answers 429 `TooManyRequests` with a `DisruptionBudget` cause
//!   (`kubectl drain` retries those every 5 s);
//! - otherwise `disruptionsAllowed` is decremented and the pod recorded in `disruptedPods` with a
//!   compare-and-swap on the budget's status *before* the pod is deleted, so two concurrent
//!   evictions cannot both spend the last disruption;
//! - a pod that is not Ready does not spend a disruption while the budget is otherwise satisfied
//!   (`unhealthyPodEvictionPolicy: IfHealthyBudget`, the default) or at all (`AlwaysAllow`).

use axum::body::Body;
use axum::http::StatusCode;
use k1s_apimachinery::selector::label::LabelSelector;
use k1s_apimachinery::status::{StatusCause, StatusDetails, StatusError};
use k1s_store::{ListOptions, StoreError, WriteOp};
use serde_json::{Value, json};

use super::delete::{DeleteOptions, delete_one};
use super::{ApiError, ApiResult, Ctx, parse};
use crate::body;

/// Upstream caps `disruptedPods` so a stuck disruption controller cannot grow it without bound.
const MAX_DISRUPTED_PODS: usize = 2000;
/// Compare-and-swap attempts on the budget before giving up with a conflict.
const RETRIES: usize = 5;

pub async fn evict(ctx: Ctx, req_body: Body) -> ApiResult {
    let bytes = body::read(req_body).await?;
    let eviction = body::decode_object(&ctx.headers, &bytes)?;
    let kind = eviction.get("kind").and_then(Value::as_str).unwrap_or("");
    if kind != "Eviction" {
        return Err(ApiError(StatusError::bad_request(format!(
            "not a Eviction object: {kind:?}"
        ))));
    }
    let name_in_body = eviction
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    if name_in_body != ctx.name() {
        return Err(ApiError(StatusError::bad_request(
            "name in URL does not match name in Eviction object",
        )));
    }
    let mut opts = match eviction.get("deleteOptions").filter(|v| !v.is_null()) {
        Some(v) => super::delete::options_from_value(v)?,
        None => DeleteOptions::default(),
    };
    opts.dry_run |= ctx.query.dry_run();

    let cur = ctx.load()?;
    let pod = parse(&cur)?;
    if can_ignore_budget(&pod) {
        if pod
            .pointer("/metadata/deletionTimestamp")
            .is_some_and(|t| !t.is_null())
        {
            return Ok(success());
        }
        if opts.resource_version.is_none() {
            opts.resource_version = Some(cur.mod_revision.to_string());
        }
        delete_one(&ctx, &opts).await?;
        return Ok(success());
    }

    let budgets = matching_budgets(&ctx, &pod)?;
    match budgets.len() {
        0 => {
            delete_one(&ctx, &opts).await?;
            return Ok(success());
        }
        1 => {}
        _ => {
            return Err(ApiError(StatusError::internal(
                "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
            )));
        }
    }
    let (pdb_ctx, _) = &budgets[0];
    let ready = k1s_apimachinery::pod::is_ready(&pod);
    for attempt in 0..RETRIES {
        let kv = pdb_ctx.load()?;
        let mut pdb = parse(&kv)?;
        let status = &pdb["status"];
        let current = count(status, "currentHealthy");
        let desired = count(status, "desiredHealthy");
        if !ready {
            let policy = pdb
                .pointer("/spec/unhealthyPodEvictionPolicy")
                .and_then(Value::as_str)
                .unwrap_or("IfHealthyBudget");
            if policy == "AlwaysAllow" || (current >= desired && desired > 0) {
                delete_one(&ctx, &opts).await?;
                return Ok(success());
            }
        }
        check_budget(&pdb)?;
        let allowed = count(status, "disruptionsAllowed") - 1;
        pdb["status"]["disruptionsAllowed"] = json!(allowed);
        if allowed == 0 {
            set_insufficient(&mut pdb);
        }
        if opts.dry_run {
            return Ok(success());
        }
        pdb["status"]["disruptedPods"][ctx.name()] = json!(k1s_apimachinery::meta::now_rfc3339());
        match ctx
            .state
            .store()
            .write(WriteOp::Update {
                key: pdb_ctx.key(),
                value: pdb,
                expected: Some(kv.mod_revision),
            })
            .await
        {
            Ok(_) => {
                delete_one(&ctx, &opts).await?;
                return Ok(success());
            }
            Err(StoreError::Conflict { .. }) if attempt + 1 < RETRIES => continue,
            Err(e) => return Err(pdb_ctx.store_err(e)),
        }
    }
    Err(pdb_ctx.store_err(StoreError::Conflict { current: 0 }))
}

/// Terminal, Pending and terminating pods are evicted without consulting budgets.
fn can_ignore_budget(pod: &Value) -> bool {
    let phase = pod
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("");
    matches!(phase, "Succeeded" | "Failed" | "Pending")
        || pod
            .pointer("/metadata/deletionTimestamp")
            .is_some_and(|t| !t.is_null())
}

/// A counter in a budget's status (absent means zero).
fn count(status: &Value, field: &str) -> i64 {
    status.get(field).and_then(Value::as_i64).unwrap_or(0)
}

/// Budgets in the pod's namespace whose selector matches the pod. As upstream's eviction code, a
/// budget with a missing or empty selector matches nothing here.
fn matching_budgets(ctx: &Ctx, pod: &Value) -> ApiResult<Vec<(Ctx, Value)>> {
    let Some(res) = ctx
        .state
        .table()
        .get("policy", "v1", "poddisruptionbudgets")
    else {
        return Ok(Vec::new());
    };
    let prefix = res.list_prefix(ctx.namespace.as_deref());
    let list = ctx
        .state
        .store()
        .list(&prefix, ListOptions::default())
        .map_err(crate::response::store_error)?;
    let mut out = Vec::new();
    for kv in list.items {
        let pdb = parse(&kv)?;
        let Ok(selector) = LabelSelector::from_metav1_opt(pdb.pointer("/spec/selector")) else {
            continue;
        };
        if !selector.is_everything() && !selector.is_nothing() && selector.matches_object(pod) {
            let name = pdb
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .map(str::to_string);
            let pdb_ctx = Ctx {
                res: res.clone(),
                name,
                subresource: Some("status".into()),
                ..ctx.clone()
            };
            out.push((pdb_ctx, pdb));
        }
    }
    Ok(out)
}

/// Upstream's `checkAndDecrement` preconditions.
fn check_budget(pdb: &Value) -> Result<(), ApiError> {
    let name = pdb
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let generation = pdb
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let status = &pdb["status"];
    let observed = count(status, "observedGeneration");
    if observed < generation {
        return Err(budget_violation(
            format!("The disruption budget {name} is still being processed by the server."),
            10,
        ));
    }
    let allowed = count(status, "disruptionsAllowed");
    if allowed < 0 {
        return Err(ApiError(StatusError::forbidden(
            "policy",
            "poddisruptionbudget",
            name,
            "pdb disruptions allowed is negative",
        )));
    }
    let disrupted = status
        .get("disruptedPods")
        .and_then(Value::as_object)
        .map_or(0, |m| m.len());
    if disrupted > MAX_DISRUPTED_PODS {
        return Err(ApiError(StatusError::forbidden(
            "policy",
            "poddisruptionbudget",
            name,
            "DisruptedPods map too big - too many evictions not confirmed by PDB controller",
        )));
    }
    if allowed == 0 {
        let desired = count(status, "desiredHealthy");
        let current = count(status, "currentHealthy");
        return Err(budget_violation(
            format!(
                "The disruption budget {name} needs {desired} healthy pods and has {current} currently"
            ),
            0,
        ));
    }
    Ok(())
}

/// 429 with a `DisruptionBudget` cause, as upstream's `NewTooManyRequests` builds it.
fn budget_violation(cause: String, retry_after: u32) -> ApiError {
    let mut e = StatusError::new(
        429,
        "TooManyRequests",
        "Cannot evict pod as it would violate the pod's disruption budget.",
    );
    e.details = Some(StatusDetails {
        causes: vec![StatusCause {
            reason: "DisruptionBudget".into(),
            message: cause,
            field: String::new(),
        }],
        retry_after_seconds: (retry_after > 0).then_some(retry_after),
        ..Default::default()
    });
    ApiError(e)
}

fn set_insufficient(pdb: &mut Value) {
    let generation = pdb
        .pointer("/metadata/generation")
        .cloned()
        .unwrap_or(json!(0));
    let mut conditions: Vec<Value> = pdb["status"]
        .get("conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    k1s_apimachinery::conditions::set(
        &mut conditions,
        json!({
            "type": "DisruptionAllowed",
            "status": "False",
            "reason": "InsufficientPods",
            "message": "",
            "observedGeneration": generation,
            "lastTransitionTime": k1s_apimachinery::meta::now_rfc3339(),
        }),
    );
    pdb["status"]["conditions"] = json!(conditions);
}

fn success() -> axum::response::Response {
    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201});
    crate::response::json_value(StatusCode::CREATED, &status)
}
