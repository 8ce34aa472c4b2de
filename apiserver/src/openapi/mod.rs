//! TEMPORARY STUB (replaced by the real module)
use serde_json::Value;
pub enum SchemaSource {
    Builtin,
    Custom(Value),
}
pub struct ResourceDoc {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub namespaced: bool,
    pub verbs: Vec<String>,
    pub subresources: Vec<String>,
    pub schema: SchemaSource,
}
pub fn group_version_document(
    _g: &str,
    _v: &str,
    _r: &[ResourceDoc],
    _p: &dyn Fn(&str) -> Vec<(&'static str, Option<&'static str>, &'static str)>,
) -> Value {
    Value::Null
}
pub fn index(_e: &[(String, String)]) -> Value {
    Value::Null
}
pub fn hash(_d: &Value) -> String {
    String::new()
}
pub fn builtin_kind_schema_name(_g: &str, _v: &str, _k: &str) -> Option<&'static str> {
    None
}
pub fn custom_kind_schema_name(_g: &str, _v: &str, _k: &str) -> String {
    String::new()
}
pub struct SchemaIndex;
impl SchemaIndex {
    pub fn new(_d: &Value) -> Self {
        SchemaIndex
    }
    pub fn unknown_fields(&self, _n: &str, _o: &Value) -> Vec<String> {
        vec![]
    }
    pub fn prune(&self, _n: &str, _o: &mut Value) {}
    pub fn default(&self, _n: &str, _o: &mut Value) {}
}
