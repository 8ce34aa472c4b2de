//! Byte layouts of stored records, and resourceVersion stamping.
//!
//! Invariants:
//! - An object record is its `mod_revision` as 8 big-endian bytes followed by the object's JSON,
//!   whose `metadata.resourceVersion` is that revision as a decimal string. Preconditions read
//!   only the header, never the JSON.
//! - An event record (keyed by its revision) is
//!   `kind: u8 | unix_millis: u64 BE | key_len: u32 BE | key | prev_len: u32 BE | prev | value`,
//!   where `prev_len == u32::MAX` means "no previous value" and `value` runs to the end.

use bytes::Bytes;
use serde_json::Value;

use crate::{Event, EventType, KeyValue, Revision, StoreError};

/// Length of the revision header of an object record.
pub(crate) const HEADER: usize = 8;

const NO_PREV: u32 = u32::MAX;
const EVENT_FIXED: usize = 1 + 8 + 4;

/// Checks that `value` is a JSON object with a `metadata` object.
pub(crate) fn validate(value: &Value) -> Result<(), StoreError> {
    match value {
        Value::Object(map) => match map.get("metadata") {
            Some(Value::Object(_)) => Ok(()),
            Some(_) => Err(StoreError::InvalidValue("metadata is not an object".into())),
            None => Err(StoreError::InvalidValue("metadata is missing".into())),
        },
        _ => Err(StoreError::InvalidValue(
            "value is not a JSON object".into(),
        )),
    }
}

/// Stamps `metadata.resourceVersion = "<rev>"` and encodes the object record.
///
/// Returns the whole record; `record.slice(HEADER..)` is the stamped JSON.
pub(crate) fn encode_object(rev: Revision, value: &mut Value) -> Result<Bytes, StoreError> {
    validate(value)?;
    if let Some(Value::Object(meta)) = value.get_mut("metadata") {
        meta.insert("resourceVersion".into(), Value::String(rev.to_string()));
    }
    let mut buf = Vec::with_capacity(256);
    buf.extend_from_slice(&rev.to_be_bytes());
    serde_json::to_writer(&mut buf, value)
        .map_err(|e| StoreError::InvalidValue(format!("cannot serialize: {e}")))?;
    Ok(Bytes::from(buf))
}

/// Splits an object record into its `mod_revision` and JSON.
pub(crate) fn split_object(raw: &[u8]) -> Result<(Revision, &[u8]), StoreError> {
    let (head, json) = raw
        .split_first_chunk::<HEADER>()
        .ok_or_else(|| StoreError::Corrupt("object record shorter than its header".into()))?;
    Ok((u64::from_be_bytes(*head), json))
}

/// Decodes an object record into a [`KeyValue`], copying the JSON once.
pub(crate) fn decode_object(key: &str, raw: &[u8]) -> Result<KeyValue, StoreError> {
    let (mod_revision, json) = split_object(raw)?;
    Ok(KeyValue {
        key: key.to_owned(),
        value: Bytes::copy_from_slice(json),
        mod_revision,
    })
}

/// Re-stamps stored JSON with a new revision (used for the last state of a deleted key).
pub(crate) fn restamp(rev: Revision, json: &[u8]) -> Result<Bytes, StoreError> {
    let mut value: Value = serde_json::from_slice(json)
        .map_err(|e| StoreError::Corrupt(format!("stored JSON does not parse: {e}")))?;
    let record = encode_object(rev, &mut value)?;
    Ok(record.slice(HEADER..))
}

fn kind_byte(kind: EventType) -> u8 {
    match kind {
        EventType::Added => 0,
        EventType::Modified => 1,
        EventType::Deleted => 2,
    }
}

/// Encodes an event record.
pub(crate) fn encode_event(
    kind: EventType,
    unix_millis: u64,
    key: &str,
    prev: Option<&[u8]>,
    value: &[u8],
) -> Result<Vec<u8>, StoreError> {
    let too_big = || StoreError::InvalidValue("key or value larger than 4 GiB".into());
    let key_len = u32::try_from(key.len()).map_err(|_| too_big())?;
    let prev_len = match prev {
        Some(p) => u32::try_from(p.len())
            .ok()
            .filter(|&n| n != NO_PREV)
            .ok_or_else(too_big)?,
        None => NO_PREV,
    };
    let mut buf =
        Vec::with_capacity(EVENT_FIXED + 4 + key.len() + prev.map_or(0, <[u8]>::len) + value.len());
    buf.push(kind_byte(kind));
    buf.extend_from_slice(&unix_millis.to_be_bytes());
    buf.extend_from_slice(&key_len.to_be_bytes());
    buf.extend_from_slice(key.as_bytes());
    buf.extend_from_slice(&prev_len.to_be_bytes());
    if let Some(p) = prev {
        buf.extend_from_slice(p);
    }
    buf.extend_from_slice(value);
    Ok(buf)
}

fn corrupt_event() -> StoreError {
    StoreError::Corrupt("event record is truncated".into())
}

fn take<'a>(raw: &mut &'a [u8], n: usize) -> Result<&'a [u8], StoreError> {
    if raw.len() < n {
        return Err(corrupt_event());
    }
    let (head, tail) = raw.split_at(n);
    *raw = tail;
    Ok(head)
}

fn take_u32(raw: &mut &[u8]) -> Result<u32, StoreError> {
    let b = take(raw, 4)?;
    Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// The commit time (unix milliseconds) of an event record.
pub(crate) fn event_time(raw: &[u8]) -> Result<u64, StoreError> {
    let b = raw.get(1..9).ok_or_else(corrupt_event)?;
    let mut t = [0u8; 8];
    t.copy_from_slice(b);
    Ok(u64::from_be_bytes(t))
}

/// The key of an event record, without decoding the rest.
pub(crate) fn event_key(raw: &[u8]) -> Result<&str, StoreError> {
    let mut rest = raw.get(9..).ok_or_else(corrupt_event)?;
    let len = take_u32(&mut rest)? as usize;
    std::str::from_utf8(take(&mut rest, len)?)
        .map_err(|_| StoreError::Corrupt("event key is not UTF-8".into()))
}

/// Decodes an event record stored under `revision`.
pub(crate) fn decode_event(revision: Revision, raw: &[u8]) -> Result<Event, StoreError> {
    let kind = match raw.first() {
        Some(0) => EventType::Added,
        Some(1) => EventType::Modified,
        Some(2) => EventType::Deleted,
        _ => return Err(StoreError::Corrupt("unknown event kind".into())),
    };
    let key = event_key(raw)?.to_owned();
    let mut rest = &raw[EVENT_FIXED + key.len()..];
    let prev = match take_u32(&mut rest)? {
        NO_PREV => None,
        n => Some(Bytes::copy_from_slice(take(&mut rest, n as usize)?)),
    };
    Ok(Event {
        kind,
        kv: KeyValue {
            key,
            value: Bytes::copy_from_slice(rest),
            mod_revision: revision,
        },
        prev,
        revision,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stamping_sets_resource_version_and_header() {
        let mut v = json!({"kind": "Pod", "metadata": {"name": "a", "resourceVersion": "9"}});
        let rec = encode_object(42, &mut v).unwrap();
        let (rev, js) = split_object(&rec).unwrap();
        assert_eq!(rev, 42);
        let parsed: Value = serde_json::from_slice(js).unwrap();
        assert_eq!(parsed["metadata"]["resourceVersion"], "42");
        assert_eq!(parsed["metadata"]["name"], "a");
        assert_eq!(&rec[HEADER..], js);
    }

    #[test]
    fn rejects_values_without_metadata_object() {
        for bad in [
            json!(1),
            json!({"kind": "Pod"}),
            json!({"metadata": "x"}),
            json!([]),
        ] {
            let mut b = bad.clone();
            assert!(
                matches!(encode_object(1, &mut b), Err(StoreError::InvalidValue(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn restamp_keeps_content() {
        let out = restamp(
            7,
            br#"{"metadata":{"name":"x","resourceVersion":"3"},"spec":1}"#,
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            json!({"metadata":{"name":"x","resourceVersion":"7"},"spec":1})
        );
    }

    #[test]
    fn event_round_trip() {
        for (kind, prev) in [
            (EventType::Added, None),
            (EventType::Modified, Some(&b"old"[..])),
            (EventType::Deleted, Some(&b""[..])),
        ] {
            let raw = encode_event(kind, 1234, "/k/a", prev, b"new").unwrap();
            assert_eq!(event_time(&raw).unwrap(), 1234);
            assert_eq!(event_key(&raw).unwrap(), "/k/a");
            let ev = decode_event(5, &raw).unwrap();
            assert_eq!(ev.kind, kind);
            assert_eq!(ev.revision, 5);
            assert_eq!(ev.kv.key, "/k/a");
            assert_eq!(ev.kv.mod_revision, 5);
            assert_eq!(&ev.kv.value[..], b"new");
            assert_eq!(ev.prev.as_deref(), prev);
        }
    }

    #[test]
    fn truncated_records_are_corrupt() {
        assert!(split_object(b"1234").is_err());
        let raw = encode_event(EventType::Added, 1, "/key", None, b"v").unwrap();
        for n in 0..EVENT_FIXED + 4 + 4 {
            assert!(decode_event(1, &raw[..n]).is_err(), "prefix {n}");
        }
    }
}
