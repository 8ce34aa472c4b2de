//! TEMP STUB
use serde_json::Value;
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("conflicts")]
    Conflicts(Vec<Conflict>),
    #[error("{0}")]
    Invalid(String),
}
#[derive(Debug)]
pub struct Conflict {
    pub manager: String,
    pub field: String,
}
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    _m: &str,
    _f: bool,
    _meta: &dyn crate::patch::PatchMeta,
    _now: &str,
) -> Result<Value, ApplyError> {
    let mut v = live.cloned().unwrap_or(Value::Null);
    json_patch::merge(&mut v, applied);
    Ok(v)
}
pub fn track_update(_old: Option<&Value>, _new: &mut Value, _m: &str, _a: &str, _n: &str) {}
