//! The review APIs kubectl uses to ask about the caller: `kubectl auth can-i`
//! (authorization.k8s.io/v1 SelfSubjectAccessReview) and `kubectl auth whoami`
//! (authentication.k8s.io/v1 SelfSubjectReview). They are create-only and stored nowhere.
//!
//! k1s has no authorization layer yet: every authenticated user is a cluster admin, so every
//! access review is allowed, and says why.

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::json;

use crate::auth::UserInfo;
use crate::request::ResourcePath;
use crate::response::json_value;

/// Answers the review APIs; `None` for any other path.
pub fn handle(method: &Method, path: &ResourcePath, user: Option<&UserInfo>) -> Option<Response> {
    if *method != Method::POST || path.name.is_some() || path.version != "v1" {
        return None;
    }
    let body = match (path.group.as_str(), path.plural.as_str()) {
        ("authorization.k8s.io", "selfsubjectaccessreviews") => json!({
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {},
            "spec": {},
            "status": {"allowed": true, "reason": "k1s grants every authenticated user full access"},
        }),
        ("authentication.k8s.io", "selfsubjectreviews") => {
            let (name, groups) = user
                .map(|u| (u.name.clone(), u.groups.clone()))
                .unwrap_or_default();
            json!({
                "kind": "SelfSubjectReview",
                "apiVersion": "authentication.k8s.io/v1",
                "metadata": {},
                "status": {"userInfo": {"username": name, "groups": groups}},
            })
        }
        _ => return None,
    };
    Some(json_value(StatusCode::CREATED, &body))
}
