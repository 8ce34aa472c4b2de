//! Service-account tokens: signed JWTs naming a ServiceAccount (and the object the token is bound
//! to), issued by `serviceaccounts/token` (TokenRequest) and accepted as bearer credentials.
//!
//! Invariants:
//! - Tokens are ES256 JWTs signed with the PKI's `sa.key`; nothing else is ever accepted as one.
//! - A token is valid only while its ServiceAccount, and the Pod/Secret/Node it is bound to, exist
//!   with the uids recorded in it: deleting either revokes every token naming it.
//! - Parsing a presented token is bounded ([`jwt::MAX_TOKEN_LEN`]) and never panics.

pub mod admission;
pub mod authn;
pub mod jwt;
pub mod request;

pub use jwt::{Claims, TokenError, TokenKeys};

/// Issuer of every token, and the audience the API server accepts (upstream's default
/// `--service-account-issuer` for kubeadm-style clusters).
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
/// Shortest lifetime a TokenRequest may ask for, as upstream.
pub const MIN_EXPIRATION_SECONDS: i64 = 600;
/// Lifetime when a TokenRequest asks for none.
pub const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;
/// Longest lifetime granted (upstream caps at `--service-account-max-token-expiration`; 48 h here).
pub const MAX_EXPIRATION_SECONDS: i64 = 48 * 3600;

/// The user name of a service account.
pub fn user_name(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

/// The groups of a service account: all of them, those of its namespace.
pub fn groups(namespace: &str) -> Vec<String> {
    vec![
        "system:serviceaccounts".into(),
        format!("system:serviceaccounts:{namespace}"),
    ]
}
