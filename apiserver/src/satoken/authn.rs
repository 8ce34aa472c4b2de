//! Bearer-token authentication of service-account JWTs.
//!
//! A token authenticates when its signature verifies with our key, it is inside its validity
//! window, it is meant for the API server's audience, and the ServiceAccount (and the object the
//! token is bound to, if any) still exists with the uid the token names. The user is
//! `system:serviceaccount:NS:NAME` in `system:serviceaccounts` and `system:serviceaccounts:NS`.

use serde_json::Value;

use super::jwt::{Ref, TokenError, TokenKeys, check_claims};
use super::request::{load, unix_now};
use crate::auth::UserInfo;
use crate::state::AppState;

/// Verifies service-account tokens against the key and the store; cheap to clone.
#[derive(Clone)]
pub struct ServiceAccountAuth {
    keys: TokenKeys,
    state: AppState,
}

impl std::fmt::Debug for ServiceAccountAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccountAuth")
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl ServiceAccountAuth {
    /// An authenticator for tokens signed by `keys`, checked against the objects in `state`.
    pub fn new(keys: TokenKeys, state: AppState) -> Self {
        ServiceAccountAuth { keys, state }
    }

    /// The user a token stands for, or why it is refused.
    pub fn authenticate(&self, token: &[u8]) -> Result<UserInfo, TokenError> {
        let claims = self.keys.verify(token)?;
        check_claims(&claims, unix_now(), super::ISSUER)?;
        let k = &claims.kubernetes;
        let ns = k.namespace.as_str();
        let want_sub = super::user_name(ns, &k.serviceaccount.name);
        if claims.sub != want_sub {
            return Err(TokenError::Malformed);
        }
        self.still_exists("serviceaccounts", Some(ns), &k.serviceaccount)?;
        if let Some(pod) = &k.pod {
            self.still_exists("pods", Some(ns), pod)?;
        }
        if let Some(secret) = &k.secret {
            self.still_exists("secrets", Some(ns), secret)?;
        }
        if k.pod.is_none()
            && let Some(node) = &k.node
        {
            // A node binding only counts when the token is bound to the node itself.
            self.still_exists("nodes", None, node)?;
        }
        Ok(UserInfo {
            name: want_sub,
            groups: super::groups(ns),
        })
    }

    fn still_exists(&self, plural: &str, ns: Option<&str>, r: &Ref) -> Result<(), TokenError> {
        let obj = load(&self.state, plural, ns, &r.name)
            .map_err(|e| TokenError::Revoked(e.message.clone()))?;
        let uid = obj
            .as_ref()
            .and_then(|o| o.pointer("/metadata/uid"))
            .and_then(Value::as_str);
        match uid {
            Some(u) if u == r.uid => Ok(()),
            Some(_) => Err(TokenError::Revoked(format!(
                "{plural} {:?} was recreated since the token was issued",
                r.name
            ))),
            None => Err(TokenError::Revoked(format!(
                "{plural} {:?} no longer exists",
                r.name
            ))),
        }
    }
}
