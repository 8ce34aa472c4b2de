//! Schema-driven object checks over a document's `components.schemas`: unknown-field detection
//! (`fieldValidation=Strict|Warn`), structural pruning and defaulting for custom resources.
//!
//! Walking rules, as upstream applies them:
//! - `$ref` and `allOf`/`anyOf`/`oneOf` members are merged into one view of a node.
//! - a field is known if the object schema lists it in `properties`, or `additionalProperties`
//!   is a schema (then the value is checked against it) or `true`;
//! - `x-kubernetes-preserve-unknown-fields: true` allows unknown fields at that level (known
//!   ones are still walked); `x-kubernetes-int-or-string` nodes are leaves;
//!   `x-kubernetes-embedded-resource` objects also accept `apiVersion`, `kind` and `metadata`;
//! - an object schema with neither `properties` nor `additionalProperties` is free-form in
//!   built-in (`io.k8s.*`) schemas (e.g. `RawExtension`), but admits no fields in a CRD schema
//!   unless it preserves unknown fields — which is what makes CRD pruning drop them.
//!
//! Paths are reported as upstream's strict decoding errors print them: `spec.foo`,
//! `spec.template.spec.containers[0].foo`.

use serde_json::{Map, Value};

/// Guards against reference cycles in malformed documents.
const MAX_REF_DEPTH: usize = 64;

/// The component schemas of a group-version document, indexed for object walks.
#[derive(Debug, Clone, Default)]
pub struct SchemaIndex {
    schemas: Map<String, Value>,
}

/// One schema node with its references and compositions merged.
#[derive(Default)]
struct View<'a> {
    properties: Vec<&'a Map<String, Value>>,
    additional: Option<&'a Value>,
    items: Option<&'a Value>,
    object_type: bool,
    preserve_unknown: bool,
    int_or_string: bool,
    embedded: bool,
    /// Whether the innermost named schema is a built-in (`io.k8s.*`) one.
    builtin: bool,
}

impl<'a> View<'a> {
    fn property(&self, name: &str) -> Option<&'a Value> {
        self.properties.iter().find_map(|p| p.get(name))
    }

    fn has_structure(&self) -> bool {
        !self.properties.is_empty() || self.additional.is_some()
    }
}

/// What to do with a field the schema does not know.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Report,
    Prune,
}

impl SchemaIndex {
    /// Indexes `components.schemas` of an OpenAPI v3 document.
    pub fn from_document(doc: &Value) -> Self {
        let schemas = doc
            .pointer("/components/schemas")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        SchemaIndex { schemas }
    }

    /// Indexes a map of schema name to schema (e.g. from
    /// [`super::builtin_schema_components`]).
    pub fn new(schemas: Map<String, Value>) -> Self {
        SchemaIndex { schemas }
    }

    /// Whether the index holds a schema of that name.
    pub fn contains(&self, schema_name: &str) -> bool {
        self.schemas.contains_key(schema_name)
    }

    /// Paths of fields in `obj` that the kind's schema does not allow, in document order.
    /// An unknown kind schema reports nothing.
    pub fn unknown_fields(&self, kind_schema_name: &str, obj: &Value) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(root) = self.root(kind_schema_name) {
            let mut obj = obj.clone();
            self.walk(&root, &mut obj, String::new(), Mode::Report, &mut out);
        }
        out
    }

    /// Removes the fields [`Self::unknown_fields`] would report; returns their paths.
    pub fn prune(&self, kind_schema_name: &str, obj: &mut Value) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(root) = self.root(kind_schema_name) {
            self.walk(&root, obj, String::new(), Mode::Prune, &mut out);
        }
        out
    }

    /// Sets schema `default`s on missing fields (and on `null` fields that are not nullable),
    /// top-down, so defaults inside a defaulted object apply too.
    pub fn default(&self, kind_schema_name: &str, obj: &mut Value) {
        if let Some(root) = self.root(kind_schema_name) {
            self.apply_defaults(&root, obj);
        }
    }

    fn root(&self, name: &str) -> Option<Value> {
        self.schemas
            .contains_key(name)
            .then(|| serde_json::json!({"$ref": format!("#/components/schemas/{name}")}))
    }

    fn resolve(&self, reference: &str) -> Option<(&Value, bool)> {
        let name = reference.strip_prefix("#/components/schemas/")?;
        self.schemas
            .get(name)
            .map(|s| (s, name.starts_with("io.k8s.")))
    }

    fn view<'a>(&'a self, node: &'a Value, builtin: bool) -> View<'a> {
        let mut v = View {
            builtin,
            ..View::default()
        };
        self.merge(node, &mut v, 0);
        v
    }

    fn merge<'a>(&'a self, node: &'a Value, v: &mut View<'a>, depth: usize) {
        let Some(obj) = node.as_object() else { return };
        if depth > MAX_REF_DEPTH {
            return;
        }
        if let Some((target, builtin)) = obj
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| self.resolve(r))
        {
            v.builtin = builtin;
            self.merge(target, v, depth + 1);
        }
        if let Some(p) = obj.get("properties").and_then(Value::as_object) {
            v.properties.push(p);
        }
        if v.additional.is_none()
            && let Some(a) = obj.get("additionalProperties").filter(|a| !a.is_null())
        {
            v.additional = Some(a);
        }
        if v.items.is_none()
            && let Some(i) = obj.get("items").filter(|i| i.is_object())
        {
            v.items = Some(i);
        }
        let flag = |k: &str| obj.get(k) == Some(&Value::Bool(true));
        v.object_type |= obj.get("type").and_then(Value::as_str) == Some("object");
        v.preserve_unknown |= flag("x-kubernetes-preserve-unknown-fields");
        v.int_or_string |= flag("x-kubernetes-int-or-string");
        v.embedded |= flag("x-kubernetes-embedded-resource");
        for key in ["allOf", "anyOf", "oneOf"] {
            if let Some(members) = obj.get(key).and_then(Value::as_array) {
                for m in members {
                    self.merge(m, v, depth + 1);
                }
            }
        }
    }

    fn walk(
        &self,
        node: &Value,
        value: &mut Value,
        path: String,
        mode: Mode,
        out: &mut Vec<String>,
    ) {
        self.walk_in(node, value, path, mode, out, false, 0);
    }

    #[allow(clippy::too_many_arguments)]
    fn walk_in(
        &self,
        node: &Value,
        value: &mut Value,
        path: String,
        mode: Mode,
        out: &mut Vec<String>,
        builtin: bool,
        depth: usize,
    ) {
        if depth > 512 {
            return;
        }
        let view = self.view(node, builtin);
        if view.int_or_string {
            return;
        }
        match value {
            Value::Object(map) => {
                let free_form = !view.has_structure() && (view.builtin || !view.object_type);
                if free_form && !view.embedded {
                    return;
                }
                let mut unknown: Vec<String> = Vec::new();
                for (key, child) in map.iter_mut() {
                    let child_path = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    if let Some(schema) = view.property(key) {
                        self.walk_in(
                            schema,
                            child,
                            child_path,
                            mode,
                            out,
                            view.builtin,
                            depth + 1,
                        );
                    } else if let Some(add) = view.additional {
                        if add.is_object() {
                            self.walk_in(
                                add,
                                child,
                                child_path,
                                mode,
                                out,
                                view.builtin,
                                depth + 1,
                            );
                        } else if add != &Value::Bool(true) && !view.preserve_unknown {
                            out.push(child_path);
                            unknown.push(key.clone());
                        }
                    } else if view.preserve_unknown
                        || free_form
                        || (view.embedded
                            && matches!(key.as_str(), "apiVersion" | "kind" | "metadata"))
                    {
                        continue;
                    } else {
                        out.push(child_path);
                        unknown.push(key.clone());
                    }
                }
                if mode == Mode::Prune {
                    for key in unknown {
                        map.remove(&key);
                    }
                }
            }
            Value::Array(items) => {
                if let Some(item_schema) = view.items {
                    for (i, item) in items.iter_mut().enumerate() {
                        self.walk_in(
                            item_schema,
                            item,
                            format!("{path}[{i}]"),
                            mode,
                            out,
                            view.builtin,
                            depth + 1,
                        );
                    }
                }
            }
            _ => {}
        }
    }

    fn apply_defaults(&self, node: &Value, value: &mut Value) {
        self.defaults_in(node, value, 0);
    }

    fn defaults_in(&self, node: &Value, value: &mut Value, depth: usize) {
        if depth > 512 {
            return;
        }
        let view = self.view(node, false);
        match value {
            Value::Object(map) => {
                for props in &view.properties {
                    for (key, schema) in props.iter() {
                        let Some(default) = schema.get("default") else {
                            continue;
                        };
                        let nullable = schema.get("nullable") == Some(&Value::Bool(true));
                        match map.get(key) {
                            None => {
                                map.insert(key.clone(), default.clone());
                            }
                            Some(Value::Null) if !nullable => {
                                map.insert(key.clone(), default.clone());
                            }
                            _ => {}
                        }
                    }
                }
                for (key, child) in map.iter_mut() {
                    if let Some(schema) = view.property(key) {
                        self.defaults_in(schema, child, depth + 1);
                    } else if let Some(add) = view.additional.filter(|a| a.is_object()) {
                        self.defaults_in(add, child, depth + 1);
                    }
                }
            }
            Value::Array(items) => {
                if let Some(item_schema) = view.items {
                    for item in items.iter_mut() {
                        self.defaults_in(item_schema, item, depth + 1);
                    }
                }
            }
            _ => {}
        }
    }
}
