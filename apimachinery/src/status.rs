//! `Status` errors as kube-apiserver writes them.
//!
//! Invariants:
//! - every constructor produces the same `code`, `reason`, `message` and `details` as the
//!   matching constructor in upstream's `k8s.io/apimachinery/pkg/api/errors`, because kubectl
//!   prints `message` verbatim and branches on `reason`/`code`;
//! - `details.kind` carries the *plural resource* for resource-scoped errors (NotFound,
//!   AlreadyExists, Conflict, Forbidden, MethodNotAllowed) and the *Kind* for `Invalid`, as upstream;
//! - [`StatusError::to_json`] omits empty optional fields exactly like Go's `omitempty`.

use serde_json::{Map, Value, json};

/// One field-level problem inside an `Invalid` (422) or other error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCause {
    /// Machine-readable cause type, e.g. `FieldValueInvalid`.
    pub reason: String,
    /// Human-readable body without the field prefix, e.g. `Invalid value: -1: must be ...`.
    pub message: String,
    /// Field path such as `spec.replicas` or `metadata.labels`.
    pub field: String,
}

/// Extra data attached to a `Status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusDetails {
    /// Name of the object concerned.
    pub name: Option<String>,
    /// API group of the object concerned.
    pub group: Option<String>,
    /// Plural resource (or Kind for `Invalid`), per upstream.
    pub kind: Option<String>,
    /// UID of the object concerned.
    pub uid: Option<String>,
    /// Field-level causes.
    pub causes: Vec<StatusCause>,
    /// Seconds the client should wait before retrying.
    pub retry_after_seconds: Option<u32>,
}

/// An API error rendered as a `meta.k8s.io/v1 Status` object.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[error("{message}")]
pub struct StatusError {
    /// HTTP status code.
    pub code: u16,
    /// Machine-readable reason, e.g. `NotFound`.
    pub reason: String,
    /// Human-readable message, printed by kubectl.
    pub message: String,
    /// Optional details.
    pub details: Option<StatusDetails>,
}

/// `resource` or `resource.group`, like upstream's `GroupResource.String()`.
pub fn qualified_resource(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

/// `Kind` or `Kind.group`, like upstream's `GroupKind.String()`.
pub fn qualified_kind(group: &str, kind: &str) -> String {
    qualified_resource(group, kind)
}

fn opt(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

fn go_quote(s: &str) -> String {
    // Go's %q and JSON string escaping agree for the characters that matter here.
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

impl StatusError {
    /// Builds an error from its parts.
    pub fn new(code: u16, reason: &str, message: impl Into<String>) -> Self {
        StatusError {
            code,
            reason: reason.to_string(),
            message: message.into(),
            details: None,
        }
    }

    fn resource_details(group: &str, resource: &str, name: &str) -> Option<StatusDetails> {
        Some(StatusDetails {
            name: opt(name),
            group: opt(group),
            kind: opt(resource),
            ..Default::default()
        })
    }

    /// The full `Status` object as JSON.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("kind".into(), json!("Status"));
        m.insert("apiVersion".into(), json!("v1"));
        m.insert("metadata".into(), json!({}));
        m.insert("status".into(), json!("Failure"));
        if !self.message.is_empty() {
            m.insert("message".into(), json!(self.message));
        }
        if !self.reason.is_empty() {
            m.insert("reason".into(), json!(self.reason));
        }
        if let Some(d) = &self.details {
            let mut dm = Map::new();
            if let Some(v) = &d.name {
                dm.insert("name".into(), json!(v));
            }
            if let Some(v) = &d.group {
                dm.insert("group".into(), json!(v));
            }
            if let Some(v) = &d.kind {
                dm.insert("kind".into(), json!(v));
            }
            if let Some(v) = &d.uid {
                dm.insert("uid".into(), json!(v));
            }
            if !d.causes.is_empty() {
                let causes: Vec<Value> = d
                    .causes
                    .iter()
                    .map(|c| {
                        let mut cm = Map::new();
                        if !c.reason.is_empty() {
                            cm.insert("reason".into(), json!(c.reason));
                        }
                        if !c.message.is_empty() {
                            cm.insert("message".into(), json!(c.message));
                        }
                        if !c.field.is_empty() {
                            cm.insert("field".into(), json!(c.field));
                        }
                        Value::Object(cm)
                    })
                    .collect();
                dm.insert("causes".into(), Value::Array(causes));
            }
            if let Some(v) = d.retry_after_seconds {
                dm.insert("retryAfterSeconds".into(), json!(v));
            }
            m.insert("details".into(), Value::Object(dm));
        }
        m.insert("code".into(), json!(self.code));
        Value::Object(m)
    }

    /// 404 NotFound: `pods "web" not found`.
    pub fn not_found(group: &str, resource: &str, name: &str) -> Self {
        StatusError {
            code: 404,
            reason: "NotFound".into(),
            message: format!(
                "{} {} not found",
                qualified_resource(group, resource),
                go_quote(name)
            ),
            details: Self::resource_details(group, resource, name),
        }
    }

    /// 409 AlreadyExists: `deployments.apps "web" already exists`.
    pub fn already_exists(group: &str, resource: &str, name: &str) -> Self {
        StatusError {
            code: 409,
            reason: "AlreadyExists".into(),
            message: format!(
                "{} {} already exists",
                qualified_resource(group, resource),
                go_quote(name)
            ),
            details: Self::resource_details(group, resource, name),
        }
    }

    /// 409 Conflict: `Operation cannot be fulfilled on deployments.apps "web": <msg>`.
    pub fn conflict(group: &str, resource: &str, name: &str, msg: &str) -> Self {
        StatusError {
            code: 409,
            reason: "Conflict".into(),
            message: format!(
                "Operation cannot be fulfilled on {} {}: {msg}",
                qualified_resource(group, resource),
                go_quote(name)
            ),
            details: Self::resource_details(group, resource, name),
        }
    }

    /// 422 Invalid: `Deployment.apps "web" is invalid: <field errors>`.
    ///
    /// One distinct field error is printed bare, several are bracketed and comma-joined;
    /// duplicates (same field and message) are printed once, as upstream's aggregate does.
    pub fn invalid(group: &str, kind: &str, name: &str, causes: Vec<StatusCause>) -> Self {
        let mut seen: Vec<String> = Vec::new();
        for c in &causes {
            let s = if c.field.is_empty() {
                c.message.clone()
            } else {
                format!("{}: {}", c.field, c.message)
            };
            if !seen.contains(&s) {
                seen.push(s);
            }
        }
        let qk = qualified_kind(group, kind);
        let message = match seen.len() {
            0 => format!("{qk} {} is invalid", go_quote(name)),
            1 => format!("{qk} {} is invalid: {}", go_quote(name), seen[0]),
            _ => format!("{qk} {} is invalid: [{}]", go_quote(name), seen.join(", ")),
        };
        StatusError {
            code: 422,
            reason: "Invalid".into(),
            message,
            details: Some(StatusDetails {
                name: opt(name),
                group: opt(group),
                kind: opt(kind),
                causes,
                ..Default::default()
            }),
        }
    }

    /// 400 BadRequest with the message as given.
    pub fn bad_request(msg: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", msg)
    }

    /// 405 MethodNotAllowed: `<action> is not supported on resources of kind "pods"`.
    pub fn method_not_supported(group: &str, resource: &str, action: &str) -> Self {
        StatusError {
            code: 405,
            reason: "MethodNotAllowed".into(),
            message: format!(
                "{action} is not supported on resources of kind {}",
                go_quote(&qualified_resource(group, resource))
            ),
            details: Self::resource_details(group, resource, ""),
        }
    }

    /// 401 Unauthorized; an empty message becomes `not authorized`.
    pub fn unauthorized(msg: &str) -> Self {
        let m = if msg.is_empty() {
            "not authorized"
        } else {
            msg
        };
        Self::new(401, "Unauthorized", m)
    }

    /// 403 Forbidden: `pods "web" is forbidden: <msg>` (or without name / resource).
    pub fn forbidden(group: &str, resource: &str, name: &str, msg: &str) -> Self {
        let message = if resource.is_empty() && group.is_empty() {
            format!("forbidden: {msg}")
        } else if name.is_empty() {
            format!(
                "{} is forbidden: {msg}",
                qualified_resource(group, resource)
            )
        } else {
            format!(
                "{} {} is forbidden: {msg}",
                qualified_resource(group, resource),
                go_quote(name)
            )
        };
        StatusError {
            code: 403,
            reason: "Forbidden".into(),
            message,
            details: Self::resource_details(group, resource, name),
        }
    }

    /// 410 Gone.
    pub fn gone(msg: impl Into<String>) -> Self {
        Self::new(410, "Gone", msg)
    }

    /// 410 Expired (too old resourceVersion / continue token).
    pub fn expired(msg: impl Into<String>) -> Self {
        Self::new(410, "Expired", msg)
    }

    /// 413 RequestEntityTooLarge: `Request entity too large: <msg>`.
    pub fn too_large(msg: &str) -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: {msg}"),
        )
    }

    /// 415 UnsupportedMediaType for a request body in `content_type`.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!("the body of the request was in an unknown format: {content_type}"),
        )
    }

    /// 415 UnsupportedMediaType listing what is accepted, as upstream's negotiation error:
    /// `the body of the request was in an unknown format - accepted media types include: a, b`.
    pub fn unsupported_media_type_accepted(accepted: &[&str]) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: {}",
                accepted.join(", ")
            ),
        )
    }

    /// 406 NotAcceptable: `only the following media types are accepted: a, b`.
    pub fn not_acceptable(accepted: &[&str]) -> Self {
        Self::new(
            406,
            "NotAcceptable",
            format!(
                "only the following media types are accepted: {}",
                accepted.join(", ")
            ),
        )
    }

    /// 500 InternalError: `Internal error occurred: <msg>` with the message as a cause.
    pub fn internal(msg: &str) -> Self {
        StatusError {
            code: 500,
            reason: "InternalError".into(),
            message: format!("Internal error occurred: {msg}"),
            details: Some(StatusDetails {
                causes: vec![StatusCause {
                    reason: String::new(),
                    message: msg.to_string(),
                    field: String::new(),
                }],
                ..Default::default()
            }),
        }
    }

    /// 504 Timeout: `Timeout: <msg>`.
    pub fn timeout(msg: &str, retry_after_seconds: u32) -> Self {
        StatusError {
            code: 504,
            reason: "Timeout".into(),
            message: format!("Timeout: {msg}"),
            details: Some(StatusDetails {
                retry_after_seconds: Some(retry_after_seconds),
                ..Default::default()
            }),
        }
    }

    /// 503 ServiceUnavailable with the message as given.
    pub fn service_unavailable(msg: &str) -> Self {
        Self::new(503, "ServiceUnavailable", msg)
    }

    /// 429 TooManyRequests: `Too many requests: <msg>`.
    pub fn too_many_requests(msg: &str, retry_after_seconds: u32) -> Self {
        StatusError {
            code: 429,
            reason: "TooManyRequests".into(),
            message: format!("Too many requests: {msg}"),
            details: Some(StatusDetails {
                retry_after_seconds: Some(retry_after_seconds),
                ..Default::default()
            }),
        }
    }

    /// 409 Conflict from server-side apply, with one cause per conflicting field
    /// (`reason: FieldManagerConflict`).
    pub fn apply_conflict(message: String, causes: Vec<StatusCause>) -> Self {
        StatusError {
            code: 409,
            reason: "Conflict".into(),
            message,
            details: Some(StatusDetails {
                causes,
                ..Default::default()
            }),
        }
    }
}

/// Builders for field-level causes with upstream's message texts
/// (`k8s.io/apimachinery/pkg/util/validation/field`).
pub struct Cause;

/// Renders a bad value as upstream's `%v`/`%q`/`%#v` choice would.
pub fn render_value(v: &Value) -> String {
    match v {
        Value::Null => "\"null\"".to_string(),
        Value::String(s) => go_quote(s),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Array(a) if a.iter().all(Value::is_string) => {
            let items: Vec<String> = a
                .iter()
                .map(|s| go_quote(s.as_str().unwrap_or_default()))
                .collect();
            format!("[]string{{{}}}", items.join(", "))
        }
        other => other.to_string(),
    }
}

fn cause(reason: &str, field: &str, body: String) -> StatusCause {
    StatusCause {
        reason: reason.to_string(),
        message: body,
        field: field.to_string(),
    }
}

fn with_detail(mut s: String, detail: &str) -> String {
    if !detail.is_empty() {
        s.push_str(": ");
        s.push_str(detail);
    }
    s
}

impl Cause {
    /// `Required value[: detail]`.
    pub fn required(path: &str, detail: &str) -> StatusCause {
        cause(
            "FieldValueRequired",
            path,
            with_detail("Required value".into(), detail),
        )
    }

    /// `Invalid value: <value>[: detail]`.
    pub fn invalid(path: &str, value: &Value, detail: &str) -> StatusCause {
        cause(
            "FieldValueInvalid",
            path,
            with_detail(format!("Invalid value: {}", render_value(value)), detail),
        )
    }

    /// `Unsupported value: <value>: supported values: "a", "b"`.
    pub fn not_supported(path: &str, value: &Value, valid: &[&str]) -> StatusCause {
        let detail = if valid.is_empty() {
            String::new()
        } else {
            let q: Vec<String> = valid.iter().map(|v| go_quote(v)).collect();
            format!("supported values: {}", q.join(", "))
        };
        cause(
            "FieldValueNotSupported",
            path,
            with_detail(
                format!("Unsupported value: {}", render_value(value)),
                &detail,
            ),
        )
    }

    /// `Forbidden[: detail]`.
    pub fn forbidden(path: &str, detail: &str) -> StatusCause {
        cause(
            "FieldValueForbidden",
            path,
            with_detail("Forbidden".into(), detail),
        )
    }

    /// `Duplicate value: <value>`.
    pub fn duplicate(path: &str, value: &Value) -> StatusCause {
        cause(
            "FieldValueDuplicate",
            path,
            format!("Duplicate value: {}", render_value(value)),
        )
    }

    /// `Too long: may not be more than N bytes` (the value itself is omitted).
    pub fn too_long(path: &str, max_len: usize) -> StatusCause {
        let unit = if max_len == 1 { "byte" } else { "bytes" };
        cause(
            "FieldValueTooLong",
            path,
            format!("Too long: may not be more than {max_len} {unit}"),
        )
    }

    /// `Too many: <actual>: must have at most N items`.
    pub fn too_many(path: &str, actual: usize, max: usize) -> StatusCause {
        cause(
            "FieldValueTooMany",
            path,
            format!("Too many: {actual}: must have at most {max} items"),
        )
    }

    /// `Not found: <value>`.
    pub fn not_found(path: &str, value: &Value) -> StatusCause {
        cause(
            "FieldValueNotFound",
            path,
            format!("Not found: {}", render_value(value)),
        )
    }

    /// `Invalid value: <value>: <detail>` with reason `FieldValueTypeInvalid`.
    pub fn type_invalid(path: &str, value: &Value, detail: &str) -> StatusCause {
        cause(
            "FieldValueTypeInvalid",
            path,
            with_detail(format!("Invalid value: {}", render_value(value)), detail),
        )
    }

    /// `Internal error: <detail>`.
    pub fn internal(path: &str, detail: &str) -> StatusCause {
        cause(
            "InternalError",
            path,
            with_detail("Internal error".into(), detail),
        )
    }
}

impl StatusCause {
    /// `field: message`, the form used in aggregated messages.
    pub fn to_error_string(&self) -> String {
        if self.field.is_empty() {
            self.message.clone()
        } else {
            format!("{}: {}", self.field, self.message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_match_upstream() {
        let cases = vec![
            (
                StatusError::not_found("", "pods", "web"),
                404,
                "NotFound",
                r#"pods "web" not found"#,
            ),
            (
                StatusError::not_found("apps", "deployments", "web"),
                404,
                "NotFound",
                r#"deployments.apps "web" not found"#,
            ),
            (
                StatusError::already_exists("apps", "deployments", "web"),
                409,
                "AlreadyExists",
                r#"deployments.apps "web" already exists"#,
            ),
            (
                StatusError::conflict("apps", "deployments", "web", "the object has been modified"),
                409,
                "Conflict",
                r#"Operation cannot be fulfilled on deployments.apps "web": the object has been modified"#,
            ),
            (
                StatusError::method_not_supported("", "pods", "create"),
                405,
                "MethodNotAllowed",
                r#"create is not supported on resources of kind "pods""#,
            ),
            (
                StatusError::unauthorized(""),
                401,
                "Unauthorized",
                "not authorized",
            ),
            (
                StatusError::forbidden("", "pods", "web", "nope"),
                403,
                "Forbidden",
                r#"pods "web" is forbidden: nope"#,
            ),
            (StatusError::expired("too old"), 410, "Expired", "too old"),
            (
                StatusError::too_large("limit is 3145728"),
                413,
                "RequestEntityTooLarge",
                "Request entity too large: limit is 3145728",
            ),
            (
                StatusError::internal("boom"),
                500,
                "InternalError",
                "Internal error occurred: boom",
            ),
            (StatusError::timeout("x", 1), 504, "Timeout", "Timeout: x"),
            (
                StatusError::too_many_requests("x", 1),
                429,
                "TooManyRequests",
                "Too many requests: x",
            ),
        ];
        for (e, code, reason, msg) in cases {
            assert_eq!(e.code, code, "{msg}");
            assert_eq!(e.reason, reason);
            assert_eq!(e.message, msg);
            assert_eq!(e.to_string(), msg);
        }
    }

    #[test]
    fn invalid_single_and_many() {
        let c1 = Cause::invalid(
            "spec.replicas",
            &json!(-1),
            "must be greater than or equal to 0",
        );
        let e = StatusError::invalid("apps", "Deployment", "web", vec![c1.clone()]);
        assert_eq!(
            e.message,
            r#"Deployment.apps "web" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"#
        );
        let c2 = Cause::required("spec.selector", "");
        let e = StatusError::invalid("apps", "Deployment", "web", vec![c1.clone(), c2, c1]);
        assert_eq!(
            e.message,
            r#"Deployment.apps "web" is invalid: [spec.replicas: Invalid value: -1: must be greater than or equal to 0, spec.selector: Required value]"#
        );
        let j = e.to_json();
        assert_eq!(j["details"]["kind"], "Deployment");
        assert_eq!(j["details"]["causes"].as_array().unwrap().len(), 3);
        assert_eq!(j["details"]["causes"][1]["reason"], "FieldValueRequired");
        assert_eq!(j["code"], 422);
    }

    #[test]
    fn to_json_omits_empty() {
        let j = StatusError::not_found("", "pods", "web").to_json();
        assert_eq!(
            j,
            json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                "message":"pods \"web\" not found","reason":"NotFound",
                "details":{"name":"web","kind":"pods"},"code":404})
        );
        let j = StatusError::bad_request("x").to_json();
        assert!(j.get("details").is_none());
    }

    #[test]
    fn cause_texts() {
        assert_eq!(
            Cause::not_supported("spec.type", &json!("Foo"), &["ClusterIP", "NodePort"]).message,
            r#"Unsupported value: "Foo": supported values: "ClusterIP", "NodePort""#
        );
        assert_eq!(
            Cause::forbidden("metadata.namespace", "not allowed on this type").message,
            "Forbidden: not allowed on this type"
        );
        assert_eq!(
            Cause::duplicate("x", &json!("a")).message,
            r#"Duplicate value: "a""#
        );
        assert_eq!(
            Cause::too_long("metadata.annotations", 262144).message,
            "Too long: may not be more than 262144 bytes"
        );
        assert_eq!(
            Cause::invalid("f", &json!(["a", "b"]), "d").message,
            r#"Invalid value: []string{"a", "b"}: d"#
        );
        assert_eq!(
            Cause::invalid("f", &json!(true), "d").message,
            "Invalid value: true: d"
        );
    }
}
