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
/// `decoded_body` is true when `obj` is a request body decoded as the object (create, update), whose
/// strict errors upstream's codec prefixes with the kind.
pub fn check_fields(ctx: &Ctx, obj: &mut Value, decoded_body: bool) -> ApiResult<Vec<String>> {
    let mode = ctx.query.get("fieldValidation").unwrap_or("Warn");
    if !matches!(mode, "Strict" | "Warn" | "Ignore") {
        return Err(ApiError(StatusError::bad_request(format!(
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
        "Strict" if !msgs.is_empty() => {
            let strict = format!("strict decoding error: {}", msgs.join(", "));
            let message = if decoded_body {
                let (kind, version) = (&res.kind, &res.version);
                format!("{kind} in version {version:?} cannot be handled as a {kind}: {strict}")
            } else {
                strict
            };
            Err(ApiError(StatusError::bad_request(message)))
        }
        "Warn" => Ok(msgs),
        _ => Ok(Vec::new()),
    }
}
