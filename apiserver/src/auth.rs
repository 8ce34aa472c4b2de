//! Authentication: who is making a request.
//!
//! Two authenticators, tried in kube-apiserver's order:
//! 1. x509: the TLS client certificate, already verified against the cluster CA during the
//!    handshake; `serve` puts its CN (user) and O attributes (groups) into every request of the
//!    connection as [`PeerIdentity`].
//! 2. Bearer token: `Authorization: Bearer <token>` compared in constant time with the known tokens,
//!    then, if service-account tokens are enabled, verified as a service-account JWT
//!    ([`crate::satoken::authn`]).
//!
//! The health and version endpoints are open; there an unauthenticated caller is
//! `system:anonymous` in `system:unauthenticated`. Everything else without a valid identity gets a
//! 401 `Status`. Authenticated users also get the `system:authenticated` group, as upstream.
//! Authorization (RBAC) is not done here.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Group every authenticated user belongs to.
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";
/// User name of unauthenticated callers of the open endpoints.
pub const ANONYMOUS_USER: &str = "system:anonymous";
/// Group of unauthenticated callers of the open endpoints.
pub const UNAUTHENTICATED_GROUP: &str = "system:unauthenticated";

/// Path prefixes reachable without credentials (the paths themselves and anything below them).
pub const OPEN_PATHS: [&str; 4] = ["/healthz", "/livez", "/readyz", "/version"];

/// The exact body kube-apiserver sends with a 401.
const UNAUTHORIZED_BODY: &str = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#;

/// An authenticated (or anonymous) user, available to handlers as a request extension.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserInfo {
    /// User name (certificate CN, or the name bound to a token).
    pub name: String,
    /// Groups (certificate O attributes, or those bound to a token).
    pub groups: Vec<String>,
}

impl UserInfo {
    /// The user of unauthenticated requests to open endpoints.
    pub fn anonymous() -> Self {
        UserInfo {
            name: ANONYMOUS_USER.into(),
            groups: vec![UNAUTHENTICATED_GROUP.into()],
        }
    }

    /// Returns the user with [`AUTHENTICATED_GROUP`] added unless already present.
    fn authenticated(mut self) -> Self {
        if !self.groups.iter().any(|g| g == AUTHENTICATED_GROUP) {
            self.groups.push(AUTHENTICATED_GROUP.into());
        }
        self
    }
}

/// The identity of a connection's verified TLS client certificate, `None` without one.
///
/// `serve` inserts it into every request of the connection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerIdentity(pub Option<UserInfo>);

/// Bearer-token authenticator; cheap to clone.
#[derive(Clone)]
pub struct Authenticator {
    tokens: Arc<[(Box<[u8]>, UserInfo)]>,
    service_accounts: Option<crate::satoken::authn::ServiceAccountAuth>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the tokens.
        f.debug_struct("Authenticator")
            .field("tokens", &self.tokens.len())
            .finish()
    }
}

impl Authenticator {
    /// An authenticator accepting exactly these tokens, each standing for its user.
    ///
    /// Empty tokens are ignored, so they can never match.
    pub fn new(tokens: Vec<(String, UserInfo)>) -> Self {
        let tokens = tokens
            .into_iter()
            .filter(|(t, _)| !t.is_empty())
            .map(|(t, u)| (t.into_bytes().into_boxed_slice(), u))
            .collect();
        Authenticator {
            tokens,
            service_accounts: None,
        }
    }

    /// Also accepts service-account tokens verified by `sa`.
    pub fn with_service_accounts(mut self, sa: crate::satoken::authn::ServiceAccountAuth) -> Self {
        self.service_accounts = Some(sa);
        self
    }

    /// The user of an `Authorization` header value `Bearer <token>`, if the token is known.
    ///
    /// Every known token is compared, each in constant time, so timing reveals neither which
    /// token matched nor how much of one did.
    pub fn authenticate_token(&self, header: &HeaderValue) -> Option<UserInfo> {
        let token = bearer_token(header)?;
        let mut found = None;
        for (known, user) in self.tokens.iter() {
            if constant_time_eq(known, token) && found.is_none() {
                found = Some(user);
            }
        }
        if found.is_none()
            && let Some(sa) = &self.service_accounts
        {
            return match sa.authenticate(token) {
                Ok(user) => Some(user.authenticated()),
                Err(e) => {
                    tracing::debug!(error = %e, "service-account token refused");
                    None
                }
            };
        }
        found.cloned().map(UserInfo::authenticated)
    }
}

/// The token of `Bearer <token>` (scheme case-insensitive, as Go's header parsing).
fn bearer_token(header: &HeaderValue) -> Option<&[u8]> {
    let value = header.as_bytes();
    let (scheme, rest) = value.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"bearer") || !rest.first()?.is_ascii_whitespace() {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// Compares two byte strings in time independent of their contents (not of their lengths).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Whether `path` is one of [`OPEN_PATHS`] or below one.
pub fn is_open_path(path: &str) -> bool {
    OPEN_PATHS.iter().any(|p| {
        path.strip_prefix(p)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// The 401 response kube-apiserver sends.
pub fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::CONTENT_TYPE, "application/json")],
        UNAUTHORIZED_BODY,
    )
        .into_response()
}

/// Axum middleware that authenticates every request and inserts its [`UserInfo`].
///
/// Use with `axum::middleware::from_fn_with_state(authenticator, require_auth)`. A verified
/// client certificate wins; otherwise a bearer token is checked. A present but unknown token is a
/// 401 like no credentials at all; open paths let unauthenticated callers through as anonymous.
pub async fn require_auth(
    State(auth): State<Authenticator>,
    mut req: Request,
    next: Next,
) -> Response {
    let from_cert = req
        .extensions()
        .get::<PeerIdentity>()
        .and_then(|p| p.0.clone())
        .map(UserInfo::authenticated);
    let user = from_cert.or_else(|| {
        req.headers()
            .get(header::AUTHORIZATION)
            .and_then(|h| auth.authenticate_token(h))
    });
    let user = match user {
        Some(user) => user,
        None if is_open_path(req.uri().path()) => UserInfo::anonymous(),
        None => {
            tracing::debug!(path = req.uri().path(), "unauthenticated request rejected");
            return unauthorized();
        }
    };
    req.extensions_mut().insert(user);
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::{Body, to_bytes};
    use axum::routing::get;
    use tower::ServiceExt;

    fn admin() -> UserInfo {
        UserInfo {
            name: "k1s-admin".into(),
            groups: vec!["system:masters".into()],
        }
    }

    fn app() -> Router {
        let auth = Authenticator::new(vec![("s3cret".into(), admin())]);
        let whoami = |axum::Extension(u): axum::Extension<UserInfo>| async move {
            format!("{} {}", u.name, u.groups.join(","))
        };
        Router::new()
            .route("/api", get(whoami))
            .route("/readyz", get(whoami))
            .route("/readyz/{check}", get(whoami))
            .route("/versionx", get(whoami))
            .layer(axum::middleware::from_fn_with_state(auth, require_auth))
    }

    async fn call(req: axum::http::Request<Body>) -> (StatusCode, String) {
        let resp = app().oneshot(req).await.unwrap();
        let status = resp.status();
        let body = to_bytes(resp.into_body(), 1 << 20).await.unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    fn get_req(path: &str, token: Option<&str>) -> axum::http::Request<Body> {
        let mut b = axum::http::Request::get(path);
        if let Some(t) = token {
            b = b.header("authorization", t);
        }
        b.body(Body::empty()).unwrap()
    }

    #[test]
    fn bearer_parsing_and_comparison() {
        let auth = Authenticator::new(vec![("tok".into(), admin()), (String::new(), admin())]);
        let hv = |s: &str| HeaderValue::from_str(s).unwrap();
        assert!(auth.authenticate_token(&hv("Bearer tok")).is_some());
        assert!(auth.authenticate_token(&hv("bearer   tok ")).is_some());
        assert!(auth.authenticate_token(&hv("Bearer to")).is_none());
        assert!(auth.authenticate_token(&hv("Bearer tokk")).is_none());
        assert!(auth.authenticate_token(&hv("Bearertok")).is_none());
        assert!(auth.authenticate_token(&hv("Bearer ")).is_none());
        assert!(auth.authenticate_token(&hv("Basic tok")).is_none());
        assert!(auth.authenticate_token(&hv("")).is_none());
        let user = auth.authenticate_token(&hv("Bearer tok")).unwrap();
        assert_eq!(user.groups, ["system:masters", AUTHENTICATED_GROUP]);
        let secret = Authenticator::new(vec![("s3cret-value".into(), admin())]);
        assert!(!format!("{secret:?}").contains("s3cret"));
    }

    #[test]
    fn open_paths() {
        for p in [
            "/healthz",
            "/livez/ping",
            "/readyz",
            "/readyz/etcd",
            "/version",
            "/version/",
        ] {
            assert!(is_open_path(p), "{p}");
        }
        for p in ["/", "/api", "/versionx", "/healthzz", "/apis/version"] {
            assert!(!is_open_path(p), "{p}");
        }
    }

    #[tokio::test]
    async fn middleware() {
        let (code, body) = call(get_req("/api", None)).await;
        assert_eq!(code, StatusCode::UNAUTHORIZED);
        assert_eq!(body, UNAUTHORIZED_BODY);
        let (code, _) = call(get_req("/api", Some("Bearer nope"))).await;
        assert_eq!(code, StatusCode::UNAUTHORIZED);
        let (code, _) = call(get_req("/versionx", None)).await;
        assert_eq!(code, StatusCode::UNAUTHORIZED);

        let (code, body) = call(get_req("/api", Some("Bearer s3cret"))).await;
        assert_eq!(code, StatusCode::OK);
        assert_eq!(body, "k1s-admin system:masters,system:authenticated");

        let (code, body) = call(get_req("/readyz/store", None)).await;
        assert_eq!(code, StatusCode::OK);
        assert_eq!(body, "system:anonymous system:unauthenticated");

        let mut req = get_req("/api", Some("Bearer wrong"));
        req.extensions_mut().insert(PeerIdentity(Some(UserInfo {
            name: "alice".into(),
            groups: vec![],
        })));
        let (code, body) = call(req).await;
        assert_eq!(code, StatusCode::OK);
        assert_eq!(body, "alice system:authenticated");
    }
}
