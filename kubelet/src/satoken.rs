//! Service-account tokens for projected `serviceAccountToken` sources.
//!
//! The kubelet asks the API (`serviceaccounts/NAME/token`) for a token bound to the pod, with the
//! source's audience (default: the API server's) and `expirationSeconds` (default 1 h), and keeps
//! it in a [`TokenCache`] until 80 % of its lifetime has passed or it is 24 h old, as upstream's
//! token manager; the projector re-writes the volume with the new token, the pod keeps running.
//!
//! Invariants: a cached token is only handed out for the pod uid, audience and lifetime it was
//! requested for; entries of pods that are gone are dropped once they would be refreshed, so
//! the cache holds at most one entry per (live pod, source) plus those expiring soon.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k1s_apiserver::client::{Client, Gvr};
use serde_json::{Value, json};

const SERVICE_ACCOUNTS: Gvr = Gvr::new("", "v1", "serviceaccounts");
/// Upstream refreshes a token once it is this old at the latest.
const MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// Default `expirationSeconds` of a source without one (upstream's).
const DEFAULT_EXPIRATION: i64 = 3600;

/// The key a source's token is filed under in [`crate::volumes::Sources::tokens`].
pub fn source_key(src: &Value) -> String {
    let aud = src["audience"].as_str().unwrap_or("");
    let exp = src["expirationSeconds"]
        .as_i64()
        .unwrap_or(DEFAULT_EXPIRATION);
    format!("{aud}\n{exp}")
}

/// The `serviceAccountToken` sources of a pod's projected volumes.
pub fn sources(pod: &Value) -> Vec<&Value> {
    pod["spec"]["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.pointer("/projected/sources").and_then(Value::as_array))
        .flatten()
        .filter_map(|s| s.get("serviceAccountToken").filter(|t| t.is_object()))
        .collect()
}

struct Entry {
    token: String,
    refresh_at: Instant,
}

/// Tokens by (pod uid, source key), shared by all pod workers.
#[derive(Default)]
pub struct TokenCache {
    entries: Mutex<HashMap<(String, String), Entry>>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print tokens.
        f.write_str("TokenCache")
    }
}

/// When a token valid for `ttl` and issued now should be replaced.
pub fn refresh_after(ttl: Duration) -> Duration {
    (ttl.mul_f64(0.8)).min(MAX_AGE)
}

impl TokenCache {
    /// Tokens for every `serviceAccountToken` source of `pod`, by [`source_key`]; sources
    /// whose token could not be obtained are missing (the volume then fails and is retried).
    pub async fn tokens(&self, client: &Client, pod: &Value) -> HashMap<String, String> {
        let mut out = HashMap::new();
        let uid = pod["metadata"]["uid"].as_str().unwrap_or("").to_string();
        for src in sources(pod) {
            let key = source_key(src);
            if out.contains_key(&key) {
                continue;
            }
            let cache_key = (uid.clone(), key.clone());
            let cached = {
                let now = Instant::now();
                let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
                // Dropping due entries here bounds the cache without a sweeper task.
                map.retain(|_, e| e.refresh_at > now);
                map.get(&cache_key).map(|e| e.token.clone())
            };
            let token = match cached {
                Some(t) => t,
                None => match request(client, pod, src).await {
                    Ok((token, ttl)) => {
                        let entry = Entry {
                            token: token.clone(),
                            refresh_at: Instant::now() + refresh_after(ttl),
                        };
                        self.entries
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(cache_key, entry);
                        token
                    }
                    Err(e) => {
                        tracing::debug!(pod_uid = %uid, error = %e, "requesting a service account token failed");
                        continue;
                    }
                },
            };
            out.insert(key, token);
        }
        out
    }
}

/// POSTs a TokenRequest bound to `pod`; returns the token and its lifetime.
async fn request(client: &Client, pod: &Value, src: &Value) -> Result<(String, Duration), String> {
    let meta = &pod["metadata"];
    let ns = meta["namespace"].as_str().unwrap_or("default");
    let sa = pod["spec"]["serviceAccountName"]
        .as_str()
        .filter(|s| !s.is_empty())
        .unwrap_or("default");
    let exp = src["expirationSeconds"]
        .as_i64()
        .unwrap_or(DEFAULT_EXPIRATION);
    let mut spec = json!({
        "expirationSeconds": exp,
        "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": meta["name"], "uid": meta["uid"]},
    });
    if let Some(aud) = src["audience"].as_str().filter(|a| !a.is_empty()) {
        spec["audiences"] = json!([aud]);
    }
    let body =
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec});
    let resp = client
        .create_subresource(SERVICE_ACCOUNTS, Some(ns), sa, "token", &body)
        .await
        .map_err(|e| e.message)?;
    let token = resp
        .pointer("/status/token")
        .and_then(Value::as_str)
        .ok_or("TokenRequest answer without a token")?
        .to_string();
    let granted = resp
        .pointer("/spec/expirationSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(exp);
    let ttl = Duration::from_secs(u64::try_from(granted).unwrap_or(0));
    Ok((token, ttl))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sources_and_refresh() {
        let pod = json!({"spec": {"volumes": [
            {"name": "a", "projected": {"sources": [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
                {"configMap": {"name": "x"}},
            ]}},
            {"name": "b", "projected": {"sources": [
                {"serviceAccountToken": {"path": "t", "audience": "vault"}},
            ]}},
            {"name": "c", "emptyDir": {}},
        ]}});
        let s = sources(&pod);
        assert_eq!(s.len(), 2);
        assert_eq!(source_key(s[0]), "\n3607");
        assert_eq!(source_key(s[1]), "vault\n3600");
        assert_eq!(
            refresh_after(Duration::from_secs(3600)),
            Duration::from_secs(2880)
        );
        assert_eq!(refresh_after(Duration::from_secs(48 * 3600)), MAX_AGE);
    }
}
