//! Events expire: kube-apiserver stores them with a TTL (`--event-ttl`, default 1 h). k1s sweeps
//! both event resources on a schedule and removes events whose last update is older than the TTL.

use std::time::Duration;

use k1s_store::WriteOp;
use serde_json::Value;

use crate::state::AppState;

/// Store prefixes of the two event resources.
const PREFIXES: [&str; 2] = ["/registry/core/events/", "/registry/events.k8s.io/events/"];

/// When an event was last touched: lastTimestamp, eventTime, series.lastObservedTime or creation.
fn last_seen(ev: &Value) -> Option<jiff::Timestamp> {
    [
        "/lastTimestamp",
        "/series/lastObservedTime",
        "/deprecatedLastTimestamp",
        "/eventTime",
        "/metadata/creationTimestamp",
    ]
    .iter()
    .filter_map(|p| ev.pointer(p).and_then(Value::as_str))
    .filter_map(k1s_apimachinery::meta::parse_rfc3339)
    .max()
}

/// Deletes expired events once; returns how many went.
pub async fn sweep(state: &AppState, ttl: Duration, now: jiff::Timestamp) -> usize {
    let cutoff =
        now - jiff::SignedDuration::try_from(ttl).unwrap_or(jiff::SignedDuration::from_secs(3600));
    let mut removed = 0;
    for prefix in PREFIXES {
        let Ok(list) = state.store().list(prefix, Default::default()) else {
            continue;
        };
        for kv in list.items {
            let Ok(ev) = serde_json::from_slice::<Value>(&kv.value) else {
                continue;
            };
            if last_seen(&ev).is_some_and(|t| t < cutoff) {
                let op = WriteOp::Delete {
                    key: kv.key,
                    expected: Some(kv.mod_revision),
                };
                if state.store().write(op).await.is_ok() {
                    removed += 1;
                }
            }
        }
    }
    removed
}

/// Sweeps every minute (or every `ttl`, if shorter) until `shutdown`.
pub async fn run(state: AppState, ttl: Duration, shutdown: tokio_util::sync::CancellationToken) {
    let every = ttl.min(Duration::from_secs(60)).max(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let n = sweep(&state, ttl, jiff::Timestamp::now()).await;
        if n > 0 {
            tracing::debug!(removed = n, "expired events removed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn old_events_go_new_ones_stay() {
        let store = k1s_store::Store::open(k1s_store::StoreConfig::default()).unwrap();
        let state = AppState::new(store, Default::default());
        let ev = |name: &str, ts: &str| json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": "default", "creationTimestamp": ts}, "lastTimestamp": ts});
        for (name, ts) in [
            ("old", "2026-01-01T00:00:00Z"),
            ("new", "2026-01-01T01:30:00Z"),
        ] {
            let key = format!("/registry/core/events/default/{name}");
            state
                .store()
                .write(WriteOp::Create {
                    key,
                    value: ev(name, ts),
                })
                .await
                .unwrap();
        }
        let now: jiff::Timestamp = "2026-01-01T02:00:00Z".parse().unwrap();
        assert_eq!(sweep(&state, Duration::from_secs(3600), now).await, 1);
        assert!(
            state
                .store()
                .get("/registry/core/events/default/old")
                .unwrap()
                .is_none()
        );
        assert!(
            state
                .store()
                .get("/registry/core/events/default/new")
                .unwrap()
                .is_some()
        );
    }
}
