//! Responses: JSON bodies, and the one place where errors become `Status` objects.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use k1s_apimachinery::status::StatusError;
use k1s_store::StoreError;
use serde_json::Value;

/// An error on its way to the client as a `Status` body.
#[derive(Debug)]
pub struct ApiError(pub StatusError);

/// Result of a handler.
pub type ApiResult<T = Response> = Result<T, ApiError>;

impl From<StatusError> for ApiError {
    fn from(e: StatusError) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.0.code >= 500 {
            tracing::error!(code = self.0.code, reason = %self.0.reason, message = %self.0.message, "request failed");
        }
        let code = StatusCode::from_u16(self.0.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        json_value(code, &self.0.to_json())
    }
}

/// Maps store failures that the caller did not handle to a `Status`.
pub fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Expired { requested, oldest } => ApiError(StatusError::expired(format!(
            "too old resource version: {requested} ({oldest})"
        ))),
        StoreError::ContinueExpired => ApiError(StatusError::expired(
            "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
        )),
        other => ApiError(StatusError::internal(&other.to_string())),
    }
}

/// A JSON response from raw bytes.
pub fn json_bytes(code: StatusCode, body: Bytes) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = code;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// A JSON response from a value.
pub fn json_value(code: StatusCode, body: &Value) -> Response {
    json_bytes(
        code,
        Bytes::from(serde_json::to_vec(body).unwrap_or_default()),
    )
}

/// A 200 JSON response.
pub fn ok(body: &Value) -> Response {
    json_value(StatusCode::OK, body)
}

/// Upstream's 404 for a URL that names no resource.
pub fn unknown_path() -> StatusError {
    StatusError {
        code: 404,
        reason: "NotFound".into(),
        message: "the server could not find the requested resource".into(),
        details: None,
    }
}

/// 422 for input that decoded but cannot be processed, with upstream's generic message detail.
pub fn unprocessable(msg: &str) -> StatusError {
    StatusError::new(422, "Invalid", msg)
}

/// 422 for invalid list/watch options.
pub fn invalid_options(field: &str, detail: &str) -> StatusError {
    StatusError::invalid(
        "meta.k8s.io",
        "ListOptions",
        "",
        vec![k1s_apimachinery::status::Cause::forbidden(field, detail)],
    )
}

/// 403 when creating in a namespace that is being deleted.
pub fn namespace_terminating(ns: &str, group: &str, resource: &str, name: &str) -> StatusError {
    StatusError::forbidden(
        group,
        resource,
        name,
        &format!("unable to create new content in namespace {ns} because it is being terminated"),
    )
}

/// 404 for `/openapi/v2`: k1s serves OpenAPI v3 only.
pub fn openapi_v2_not_served() -> StatusError {
    let mut e = unknown_path();
    e.message = "OpenAPI v2 is not served; use /openapi/v3".into();
    e
}

/// 405 for a verb a non-resource path does not support.
pub fn method_not_allowed(method: &str) -> StatusError {
    StatusError::new(
        405,
        "MethodNotAllowed",
        format!("the server does not allow this method on the requested resource ({method})"),
    )
}
