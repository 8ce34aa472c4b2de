//! `events.k8s.io/v1` Events as a view of the core `v1` Events, as upstream serves them: one
//! storage (the core events' keys), two shapes.
//!
//! Invariants:
//! - an `events.k8s.io/v1` Event is always stored as a core `v1` Event under
//!   `/registry/core/events/` (see [`crate::resources::Resource::key_prefix`]), so both APIs
//!   list, watch and change the same objects, and the event TTL expires both;
//! - the REST path converts at its edges only: what it reads from the store (get, list, watch,
//!   the current object of an update, patch or delete) becomes the view with [`view_kv`] /
//!   [`view_value`]; what it writes goes back through [`to_storage`] just before the store write;
//! - the conversion is a pure field renaming (upstream's `events/v1` conversion), so a round trip
//!   changes nothing; fields one API lacks are kept as they are.

use bytes::Bytes;
use k1s_store::{Event, KeyValue};
use serde_json::{Map, Value};

use crate::resources::Resource;

/// Core field name ↔ `events.k8s.io/v1` field name.
const RENAMES: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("reportingComponent", "reportingController"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
];

const CORE_API_VERSION: &str = "v1";
const VIEW_API_VERSION: &str = "events.k8s.io/v1";

/// Whether `res` is served as a view of another resource's storage.
pub fn is_view(res: &Resource) -> bool {
    res.group == "events.k8s.io" && res.plural == "events"
}

/// Renames the top-level fields of an Event object, `from` side to `to` side of [`RENAMES`],
/// keeping the order of the fields.
fn rename(obj: Value, api_version: &str, to_view: bool) -> Value {
    let Value::Object(map) = obj else {
        return obj;
    };
    let mut out = Map::with_capacity(map.len());
    for (k, v) in map {
        let renamed = RENAMES.iter().find_map(|(core, view)| {
            let (from, to) = if to_view { (core, view) } else { (view, core) };
            (k == *from).then_some(*to)
        });
        match (k.as_str(), renamed) {
            ("apiVersion", _) => {
                out.insert(k, Value::String(api_version.to_string()));
            }
            (_, Some(to)) => {
                out.insert(to.to_string(), v);
            }
            (_, None) => {
                out.insert(k, v);
            }
        }
    }
    Value::Object(out)
}

/// A stored core Event as `res` shows it (unchanged unless `res` is a view).
pub fn view_value(res: &Resource, obj: Value) -> Value {
    if is_view(res) {
        rename(obj, VIEW_API_VERSION, true)
    } else {
        obj
    }
}

/// An object of `res` as it is stored (unchanged unless `res` is a view).
pub fn to_storage(res: &Resource, obj: Value) -> Value {
    if is_view(res) {
        rename(obj, CORE_API_VERSION, false)
    } else {
        obj
    }
}

/// Stored JSON bytes as `res` shows them; bytes that do not parse are passed through (the
/// caller's own parse reports them).
pub fn view_bytes(res: &Resource, raw: Bytes) -> Bytes {
    if !is_view(res) {
        return raw;
    }
    match serde_json::from_slice::<Value>(&raw) {
        Ok(obj) => Bytes::from(serde_json::to_vec(&view_value(res, obj)).unwrap_or_default()),
        Err(_) => raw,
    }
}

/// A stored key-value as `res` shows it.
pub fn view_kv(res: &Resource, mut kv: KeyValue) -> KeyValue {
    kv.value = view_bytes(res, kv.value);
    kv
}

/// A watch event (its value and previous value) as `res` shows it.
pub fn view_event(res: &Resource, mut ev: Event) -> Event {
    if is_view(res) {
        ev.kv = view_kv(res, ev.kv);
        ev.prev = ev.prev.map(|p| view_bytes(res, p));
    }
    ev
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn events_v1() -> Resource {
        crate::resources::builtin()
            .into_iter()
            .find(|r| r.group == "events.k8s.io" && r.plural == "events")
            .expect("events.k8s.io row")
    }

    #[test]
    fn converts_both_ways_and_round_trips() {
        let res = events_v1();
        let core = json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": "web.1", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "web"},
            "reason": "Scheduled", "message": "Successfully assigned default/web to n1",
            "source": {"component": "default-scheduler"}, "reportingComponent": "default-scheduler",
            "reportingInstance": "k1s", "firstTimestamp": "2026-01-01T00:00:00Z",
            "lastTimestamp": "2026-01-01T00:00:01Z", "count": 2, "type": "Normal", "action": "Binding",
        });
        let view = view_value(&res, core.clone());
        assert_eq!(
            view,
            json!({
                "apiVersion": "events.k8s.io/v1", "kind": "Event",
                "metadata": {"name": "web.1", "namespace": "default"},
                "regarding": {"kind": "Pod", "name": "web"},
                "reason": "Scheduled", "note": "Successfully assigned default/web to n1",
                "deprecatedSource": {"component": "default-scheduler"},
                "reportingController": "default-scheduler", "reportingInstance": "k1s",
                "deprecatedFirstTimestamp": "2026-01-01T00:00:00Z",
                "deprecatedLastTimestamp": "2026-01-01T00:00:01Z", "deprecatedCount": 2,
                "type": "Normal", "action": "Binding",
            })
        );
        assert_eq!(to_storage(&res, view), core);
    }

    #[test]
    fn other_resources_pass_through() {
        let core_events = crate::resources::builtin()
            .into_iter()
            .find(|r| r.group.is_empty() && r.plural == "events")
            .unwrap();
        let obj = json!({"apiVersion": "v1", "kind": "Event", "message": "m"});
        assert_eq!(view_value(&core_events, obj.clone()), obj);
        assert_eq!(to_storage(&core_events, obj.clone()), obj);
        let raw = Bytes::from_static(b"not json");
        assert_eq!(view_bytes(&events_v1(), raw.clone()), raw);
    }

    #[tokio::test]
    async fn one_storage_two_apis() {
        use crate::client::{Change, Client, Gvr};
        const CORE: Gvr = Gvr::new("", "v1", "events");
        const V1: Gvr = Gvr::new("events.k8s.io", "v1", "events");
        let store = k1s_store::Store::open(k1s_store::StoreConfig::default()).unwrap();
        let state = crate::state::AppState::new(store, Default::default());
        crate::bootstrap::run(&state).await.unwrap();
        let c = Client::new(state, "test");
        let (_, rv) = c.list(V1, None, None).await.unwrap();
        let mut w = c.watch(V1, Some("default"), rv).unwrap();
        // Written through core v1, read and watched through events.k8s.io/v1.
        let core = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "a.1"},
                          "involvedObject": {"kind": "Pod", "name": "a", "namespace": "default"},
                          "reason": "Started", "message": "started it", "type": "Normal", "count": 1});
        c.create(CORE, Some("default"), &core).await.unwrap();
        let got = c.get(V1, Some("default"), "a.1").await.unwrap().unwrap();
        assert_eq!(got["apiVersion"], "events.k8s.io/v1");
        assert_eq!(
            (
                &got["note"],
                &got["regarding"]["name"],
                &got["deprecatedCount"]
            ),
            (&json!("started it"), &json!("a"), &json!(1))
        );
        assert!(got.get("message").is_none() && got.get("involvedObject").is_none());
        match w.next().await.unwrap().unwrap() {
            // The in-process watch reads the store directly: it sees the stored (core) form.
            Change::Added(o) => assert_eq!(o["message"], "started it"),
            other => panic!("unexpected {other:?}"),
        }
        // Written through events.k8s.io/v1, listed through core v1.
        let v1 = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "b.1"},
                        "regarding": {"kind": "Pod", "name": "b", "namespace": "default"},
                        "reason": "Killing", "note": "stopping it", "type": "Normal",
                        "action": "Killing", "reportingController": "k1s/test",
                        "reportingInstance": "test-1", "eventTime": "2026-01-01T00:00:00.000000Z"});
        let created = c.create(V1, Some("default"), &v1).await.unwrap();
        assert_eq!(created["note"], "stopping it");
        let (items, _) = c.list(CORE, Some("default"), None).await.unwrap();
        let b = items
            .iter()
            .find(|e| e["metadata"]["name"] == "b.1")
            .unwrap();
        assert_eq!(b["apiVersion"], "v1");
        assert_eq!(
            (
                &b["message"],
                &b["involvedObject"]["name"],
                &b["reportingComponent"]
            ),
            (&json!("stopping it"), &json!("b"), &json!("k1s/test"))
        );
        // A merge patch through the view uses the view's names; delete through either API.
        let patched = c
            .merge_patch(
                V1,
                Some("default"),
                "b.1",
                None,
                &json!({"note": "stopped"}),
            )
            .await
            .unwrap();
        assert_eq!(patched["note"], "stopped");
        let b = c.get(CORE, Some("default"), "b.1").await.unwrap().unwrap();
        assert_eq!(b["message"], "stopped");
        c.delete(V1, Some("default"), "a.1", None).await.unwrap();
        assert!(c.get(CORE, Some("default"), "a.1").await.unwrap().is_none());
    }
}
