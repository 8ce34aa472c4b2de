//! core/v1 Events about the objects a controller manages, so `kubectl describe` lists what the
//! controller did.
//!
//! Repeats of the same (object, reason, message) are folded into one Event whose `count` and
//! `lastTimestamp` move, as client-go's recorder does. Recording happens in the background and its
//! failures are only logged: an event never slows down or fails a sync.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k1s_apimachinery::meta;
use k1s_apiserver::client::{Client, Gvr};
use serde_json::{Value, json};

const EVENTS: Gvr = Gvr::new("", "v1", "events");

/// What makes two events the same: involved object uid, reason, message.
type EventKey = (String, String, String);

/// Records Events about objects of one kind as `component`; cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    client: Client,
    component: &'static str,
    /// apiVersion and kind of the objects events are about.
    involved: (&'static str, &'static str),
    /// (involved uid, reason, message) → (event name, count).
    seen: Arc<Mutex<HashMap<EventKey, (String, i64)>>>,
}

impl Recorder {
    pub fn new(
        client: Client,
        component: &'static str,
        api_version: &'static str,
        kind: &'static str,
    ) -> Self {
        Recorder {
            client,
            component,
            involved: (api_version, kind),
            seen: Arc::default(),
        }
    }

    /// Records a `Normal` event about `obj` in the background.
    pub fn normal(&self, obj: &Value, reason: &str, message: &str) {
        self.spawn(obj, "Normal", reason, message);
    }

    /// Records a `Warning` event about `obj` in the background.
    pub fn warning(&self, obj: &Value, reason: &str, message: &str) {
        self.spawn(obj, "Warning", reason, message);
    }

    fn spawn(&self, obj: &Value, kind: &'static str, reason: &str, message: &str) {
        let this = self.clone();
        let obj = json!({"metadata": {
            "name": meta::name(obj), "namespace": meta::namespace(obj),
            "uid": meta::uid(obj), "resourceVersion": meta::resource_version(obj),
        }});
        let (reason, message) = (reason.to_string(), message.to_string());
        tokio::spawn(async move { this.record(&obj, kind, &reason, &message).await });
    }

    async fn record(&self, obj: &Value, kind: &str, reason: &str, message: &str) {
        let ns = meta::namespace(obj).unwrap_or("default").to_string();
        let name = meta::name(obj).unwrap_or_default();
        let uid = meta::uid(obj).unwrap_or_default().to_string();
        let now = meta::now_rfc3339();
        let key = (uid.clone(), reason.to_string(), message.to_string());
        let previous = self
            .seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned();
        if let Some((event, count)) = previous {
            let patch = json!({"count": count + 1, "lastTimestamp": now});
            if self
                .client
                .merge_patch(EVENTS, Some(&ns), &event, None, &patch)
                .await
                .is_ok()
            {
                self.remember(key, event, count + 1);
                return;
            }
        }
        let nanos = jiff::Timestamp::now().as_nanosecond();
        let event_name = format!("{name}.{nanos:x}");
        let event = json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": event_name, "namespace": ns},
            "involvedObject": {
                "apiVersion": self.involved.0,
                "kind": self.involved.1,
                "namespace": ns, "name": name, "uid": uid,
                "resourceVersion": meta::resource_version(obj).unwrap_or_default(),
            },
            "reason": reason,
            "message": message,
            "source": {"component": self.component},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "type": kind,
            "reportingComponent": self.component,
            "reportingInstance": "",
        });
        match self.client.create(EVENTS, Some(&ns), &event).await {
            Ok(_) => self.remember(key, event_name, 1),
            Err(e) => tracing::debug!(error = %e, reason, "could not record event"),
        }
    }

    fn remember(&self, key: EventKey, event: String, count: i64) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() > 4096 {
            seen.clear();
        }
        seen.insert(key, (event, count));
    }
}
