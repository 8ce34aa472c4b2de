//! Container lifecycle hooks (`lifecycle.postStart`, `lifecycle.preStop`): one handler run, exec
//! and httpGet through the probe code ([`crate::probe::run_once`]), `sleep` here.
//!
//! Invariants: a handler run never outlasts the `limit` it is given (for preStop the rest of the
//! grace period, so SIGTERM is never later than upstream sends it); a handler without a supported
//! action fails with a message rather than passing silently.

use std::time::Duration;

use serde_json::Value;

use crate::probe::{Target, run_once};

/// Which hook, for event reasons and messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    PostStart,
    PreStop,
}

impl Hook {
    /// The container spec's field under `lifecycle`.
    pub fn field(self) -> &'static str {
        match self {
            Hook::PostStart => "postStart",
            Hook::PreStop => "preStop",
        }
    }

    /// The Warning event's reason when the handler fails.
    pub fn failed_reason(self) -> &'static str {
        match self {
            Hook::PostStart => "FailedPostStartHook",
            Hook::PreStop => "FailedPreStopHook",
        }
    }
}

/// The handler of `hook` in container spec `c`, if any.
pub fn handler(c: &Value, hook: Hook) -> Option<&Value> {
    Some(&c["lifecycle"][hook.field()]).filter(|h| h.is_object())
}

/// Runs one handler, bounded by `limit`; `Err` carries the message the event shows.
pub async fn run(handler: &Value, target: &Target, limit: Duration) -> Result<(), String> {
    if let Some(secs) = handler["sleep"]["seconds"].as_u64() {
        tokio::time::sleep(Duration::from_secs(secs).min(limit)).await;
        return Ok(());
    }
    if let Some(cmd) = handler["exec"]["command"].as_array() {
        let shown: Vec<&str> = cmd.iter().filter_map(Value::as_str).collect();
        return run_once(handler, target, limit)
            .await
            .map_err(|e| format!("Exec lifecycle hook ({shown:?}) failed - error: {e}"));
    }
    if handler["httpGet"].is_object() {
        let path = handler["httpGet"]["path"].as_str().unwrap_or("/");
        return run_once(handler, target, limit)
            .await
            .map_err(|e| format!("HTTP lifecycle hook ({path}) failed - error: {e}"));
    }
    Err("lifecycle hook has no supported action (exec, httpGet, sleep)".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn handlers_found_by_field() {
        let c = json!({"lifecycle": {"preStop": {"sleep": {"seconds": 1}}}});
        assert!(handler(&c, Hook::PreStop).is_some());
        assert!(handler(&c, Hook::PostStart).is_none());
        assert!(handler(&json!({}), Hook::PreStop).is_none());
    }
}
