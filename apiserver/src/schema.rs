//! Field validation against the OpenAPI schemas: `fieldValidation=Strict|Warn|Ignore`, pruning of
//! unknown fields (what decoding into upstream's Go types does), and custom-resource defaulting.

use k1s_apimachinery::status::StatusError;
use serde_json::Value;

use crate::openapi;
use crate::resources::StrategyKind;
use crate::response::{ApiError, ApiResult};
use crate::rest::Ctx;

/// Checks `obj` against its schema; returns warnings to send (Warn mode), or a 400 under Strict.
/// Unknown fields are dropped in every mode, as upstream does.
pub fn check_fields(ctx: &Ctx, obj: &mut Value) -> ApiResult<Vec<String>> {
    let mode = ctx.query.get("fieldValidation").unwrap_or("Warn");
    if !matches!(mode, "Strict" | "Warn" | "Ignore") {
        return Err(ApiError(StatusError::bad_request(&format!(
            "fieldValidation parameter unsupported: {mode:?}. Valid values are \"Strict\", \"Warn\" and \"Ignore\""
        ))));
    }
    let res = &ctx.res;
    let Some(index) = crate::openapi_serve::schema_index(&ctx.state, &res.group, &res.version)
    else {
        return Ok(Vec::new());
    };
    let name = match res.strategy {
        StrategyKind::Custom => {
            openapi::custom_kind_schema_name(&res.group, &res.version, &res.kind)
        }
        _ => match openapi::builtin_kind_schema_name(&res.group, &res.version, &res.kind) {
            Some(n) => n.to_string(),
            None => return Ok(Vec::new()),
        },
    };
    // Pruning reports what it dropped: those are the unknown fields.
    let unknown = index.prune(&name, obj);
    if res.strategy == StrategyKind::Custom {
        index.default(&name, obj);
    }
    let msgs: Vec<String> = unknown
        .iter()
        .map(|f| format!("unknown field {f:?}"))
        .collect();
    match mode {
        "Strict" if !msgs.is_empty() => Err(ApiError(StatusError::bad_request(&format!(
            "strict decoding error: {}",
            msgs.join(", ")
        )))),
        "Warn" => Ok(msgs),
        _ => Ok(Vec::new()),
    }
}
