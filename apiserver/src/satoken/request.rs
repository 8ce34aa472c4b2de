//! `POST serviceaccounts/{name}/token`: authentication.k8s.io/v1 TokenRequest.
//!
//! As upstream's TokenRequest REST: audiences default to the API server's, `expirationSeconds`
//! defaults to an hour and may not be under ten minutes, a `boundObjectRef` must name an existing
//! Pod, Secret or Node (with the same uid when one is given), and a pod binding also records the
//! pod's node. Nothing is stored: the answer carries the signed token and its expiry.

use axum::body::Body;
use axum::http::StatusCode;
use k1s_apimachinery::status::{Cause, StatusCause, StatusError};
use serde_json::{Value, json};

use super::jwt::{Claims, KubeClaims, Ref};
use crate::body;
use crate::response::{ApiError, ApiResult};
use crate::rest::{Ctx, parse};
use crate::state::AppState;

/// What a TokenRequest asks for, after defaults and validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenSpec {
    /// Audiences of the token.
    pub audiences: Vec<String>,
    /// Lifetime in seconds.
    pub expiration_seconds: i64,
    /// `(kind, name, uid)` of the bound object.
    pub bound: Option<(String, String, Option<String>)>,
}

/// Reads and validates `spec` of a TokenRequest.
pub fn parse_spec(obj: &Value, sa: &str) -> Result<TokenSpec, StatusError> {
    let invalid =
        |c: StatusCause| StatusError::invalid("authentication.k8s.io", "TokenRequest", sa, vec![c]);
    let spec = obj.get("spec").cloned().unwrap_or(json!({}));
    let audiences: Vec<String> = match spec.get("audiences") {
        None | Some(Value::Null) => vec![],
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<_>>()
            .ok_or_else(|| StatusError::bad_request("spec.audiences must be strings"))?,
        Some(_) => return Err(StatusError::bad_request("spec.audiences must be a list")),
    };
    let audiences = if audiences.is_empty() {
        vec![super::ISSUER.to_string()]
    } else {
        audiences
    };
    let exp = match spec.get("expirationSeconds") {
        None | Some(Value::Null) => super::DEFAULT_EXPIRATION_SECONDS,
        Some(v) => v
            .as_i64()
            .ok_or_else(|| StatusError::bad_request("spec.expirationSeconds must be an integer"))?,
    };
    if exp < super::MIN_EXPIRATION_SECONDS {
        return Err(invalid(Cause::invalid(
            "spec.expirationSeconds",
            &json!(exp),
            "may not specify a duration less than 10 minutes",
        )));
    }
    if exp > 1 << 32 {
        return Err(invalid(Cause::invalid(
            "spec.expirationSeconds",
            &json!(exp),
            "may not specify a duration larger than 2^32 seconds",
        )));
    }
    let bound = match spec.get("boundObjectRef").filter(|v| !v.is_null()) {
        None => None,
        Some(r) => {
            let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            let kind = s("kind");
            if !matches!(kind.as_str(), "Pod" | "Secret" | "Node") {
                return Err(invalid(Cause::not_supported(
                    "spec.boundObjectRef.kind",
                    &json!(kind),
                    &["Pod", "Node", "Secret"],
                )));
            }
            let api = s("apiVersion");
            if !api.is_empty() && api != "v1" {
                return Err(invalid(Cause::not_supported(
                    "spec.boundObjectRef.apiVersion",
                    &json!(api),
                    &["v1"],
                )));
            }
            let name = s("name");
            if name.is_empty() {
                return Err(invalid(Cause::required("spec.boundObjectRef.name", "")));
            }
            let uid = Some(s("uid")).filter(|u| !u.is_empty());
            Some((kind, name, uid))
        }
    };
    Ok(TokenSpec {
        audiences,
        expiration_seconds: exp.min(super::MAX_EXPIRATION_SECONDS),
        bound,
    })
}

/// Reads `kind`/`name` from the store: `(object)` or a 404 Status.
pub(crate) fn load(
    state: &AppState,
    plural: &str,
    namespace: Option<&str>,
    name: &str,
) -> Result<Option<Value>, StatusError> {
    let table = state.table();
    let Some(res) = table.get("", "v1", plural) else {
        return Ok(None);
    };
    let ns = if res.namespaced { namespace } else { None };
    match state.store().get(&res.key(ns, name)) {
        Ok(Some(kv)) => serde_json::from_slice(&kv.value)
            .map(Some)
            .map_err(|e| StatusError::internal(&e.to_string())),
        Ok(None) => Ok(None),
        Err(e) => Err(StatusError::internal(&e.to_string())),
    }
}

fn uid_of(obj: &Value) -> String {
    obj.pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

/// Builds the claims for `sa` in `namespace` per `spec`, resolving the bound object.
pub fn claims_for(
    state: &AppState,
    namespace: &str,
    sa: &Value,
    spec: &TokenSpec,
    now: i64,
) -> Result<Claims, StatusError> {
    let sa_name = sa
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut kube = KubeClaims {
        namespace: namespace.to_string(),
        serviceaccount: Ref {
            name: sa_name.to_string(),
            uid: uid_of(sa),
        },
        ..Default::default()
    };
    if let Some((kind, name, want_uid)) = &spec.bound {
        let plural = match kind.as_str() {
            "Pod" => "pods",
            "Secret" => "secrets",
            _ => "nodes",
        };
        let obj = load(state, plural, Some(namespace), name)?
            .ok_or_else(|| StatusError::not_found("", plural, name))?;
        let uid = uid_of(&obj);
        if want_uid.as_ref().is_some_and(|w| *w != uid) {
            return Err(StatusError::conflict(
                "",
                plural,
                name,
                &format!(
                    "the UID in the bound object reference ({}) does not match the UID in record. The object might have been deleted and then recreated",
                    want_uid.as_deref().unwrap_or("")
                ),
            ));
        }
        let r = Ref {
            name: name.clone(),
            uid,
        };
        match kind.as_str() {
            "Pod" => {
                let node = obj.pointer("/spec/nodeName").and_then(Value::as_str);
                if let Some(node) = node.filter(|n| !n.is_empty())
                    && let Some(n) = load(state, "nodes", None, node)?
                {
                    kube.node = Some(Ref {
                        name: node.to_string(),
                        uid: uid_of(&n),
                    });
                }
                kube.pod = Some(r);
            }
            "Secret" => kube.secret = Some(r),
            _ => kube.node = Some(r),
        }
    }
    Ok(Claims {
        aud: spec.audiences.clone(),
        exp: now + spec.expiration_seconds,
        iat: now,
        iss: super::ISSUER.into(),
        jti: uuid::Uuid::new_v4().to_string(),
        nbf: now,
        sub: super::user_name(namespace, sa_name),
        kubernetes: kube,
    })
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// The handler.
pub async fn create(ctx: Ctx, req_body: Body) -> ApiResult {
    let bytes = body::read(req_body).await?;
    let req = body::decode_object(&ctx.headers, &bytes)?;
    let kind = req
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("TokenRequest");
    if kind != "TokenRequest" {
        return Err(ApiError(StatusError::bad_request(format!(
            "not a TokenRequest object: {kind:?}"
        ))));
    }
    let Some(keys) = ctx.state.token_keys() else {
        return Err(ApiError(StatusError::service_unavailable(
            "service account token signing is not configured",
        )));
    };
    let sa = parse(&ctx.load()?)?;
    let namespace = ctx.namespace.clone().unwrap_or_default();
    let spec = parse_spec(&req, ctx.name())?;
    let now = unix_now();
    let claims = claims_for(&ctx.state, &namespace, &sa, &spec, now)?;
    let token = keys
        .sign(&claims)
        .map_err(|e| ApiError(StatusError::internal(&e.to_string())))?;
    let ts = |s: i64| {
        jiff::Timestamp::from_second(s)
            .map(|t| t.to_string())
            .unwrap_or_default()
    };
    let mut out_spec = json!({
        "audiences": spec.audiences,
        "expirationSeconds": spec.expiration_seconds,
        "boundObjectRef": null,
    });
    if let Some((kind, name, _)) = &spec.bound {
        let uid = match kind.as_str() {
            "Pod" => claims.kubernetes.pod.as_ref(),
            "Secret" => claims.kubernetes.secret.as_ref(),
            _ => claims.kubernetes.node.as_ref(),
        }
        .map(|r| r.uid.clone())
        .unwrap_or_default();
        out_spec["boundObjectRef"] =
            json!({"kind": kind, "apiVersion": "v1", "name": name, "uid": uid});
    }
    let resp = json!({
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": ctx.name(), "namespace": namespace, "creationTimestamp": ts(now)},
        "spec": out_spec,
        "status": {"token": token, "expirationTimestamp": ts(claims.exp)},
    });
    Ok(crate::response::json_value(StatusCode::CREATED, &resp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_defaults_and_validation() {
        let s = parse_spec(&json!({}), "default").unwrap();
        assert_eq!(s.audiences, [crate::satoken::ISSUER]);
        assert_eq!(s.expiration_seconds, 3600);
        assert_eq!(s.bound, None);
        let e = parse_spec(&json!({"spec": {"expirationSeconds": 599}}), "d").unwrap_err();
        assert_eq!(e.code, 422);
        let s = parse_spec(
            &json!({"spec": {"audiences": ["a"], "expirationSeconds": 600,
                "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p", "uid": "u"}}}),
            "d",
        )
        .unwrap();
        assert_eq!(s.audiences, ["a"]);
        assert_eq!(s.bound, Some(("Pod".into(), "p".into(), Some("u".into()))));
        for bad in [
            json!({"spec": {"boundObjectRef": {"kind": "Deployment", "name": "x"}}}),
            json!({"spec": {"boundObjectRef": {"kind": "Pod"}}}),
            json!({"spec": {"audiences": "a"}}),
            json!({"spec": {"expirationSeconds": "1h"}}),
        ] {
            assert!(parse_spec(&bad, "d").is_err(), "{bad}");
        }
    }
}
