//! Helpers shared by the unit tests.

use serde_json::{Value, json};

use crate::{Store, StoreConfig, WriteOp};

/// A minimal valid object.
pub(crate) fn obj(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": name}})
}

/// An in-memory store with default settings.
pub(crate) fn mem() -> Store {
    Store::open(StoreConfig::default()).unwrap()
}

pub(crate) fn create(key: &str) -> WriteOp {
    WriteOp::Create {
        key: key.into(),
        value: obj(key),
    }
}

pub(crate) fn rv(bytes: &[u8]) -> String {
    let v: Value = serde_json::from_slice(bytes).unwrap();
    v["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned()
}
