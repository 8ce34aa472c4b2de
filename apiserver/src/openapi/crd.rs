//! Kind schemas for custom resources, built from a CRD version's `openAPIV3Schema` the way the
//! apiextensions OpenAPI builder does: the schema is kept, `apiVersion`, `kind` and `metadata`
//! (a reference to `ObjectMeta`) are set, and the kind is tagged with its
//! `x-kubernetes-group-version-kind`. Nested `x-kubernetes-embedded-resource` objects get
//! `apiVersion`, `kind` and `metadata` properties too.

use k8s_openapi::api::core::v1::Pod;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{Map, Value, json};

use super::builtin::OBJECT_META;

/// Upstream's name for a custom kind's schema: the group reversed, then version and kind
/// (`stable.example.com`, `v1`, `CronTab` → `com.example.stable.v1.CronTab`).
pub fn custom_kind_schema_name(group: &str, version: &str, kind: &str) -> String {
    let mut parts: Vec<&str> = group.split('.').filter(|p| !p.is_empty()).collect();
    parts.reverse();
    parts.push(version);
    parts.push(kind);
    parts.join(".")
}

/// The descriptions upstream gives `apiVersion`, `kind` and `metadata` on every kind.
pub struct TypeMetaDocs {
    pub api_version: String,
    pub kind: String,
    pub metadata: String,
}

impl TypeMetaDocs {
    /// Read from the Pod schema, whose type-meta docs are the same as every kind's.
    pub fn load() -> Self {
        let schema = Pod::json_schema(&mut SchemaGenerator::default());
        let desc = |p: &str| {
            schema
                .get("properties")
                .and_then(|props| props.get(p))
                .and_then(|s| s.get("description"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        TypeMetaDocs {
            api_version: desc("apiVersion"),
            kind: desc("kind"),
            metadata: desc("metadata"),
        }
    }
}

/// A `$ref` to a component schema, as a property with its own description.
pub fn ref_with_description(schema_name: &str, description: &str) -> Value {
    let mut v = json!({"allOf": [{"$ref": format!("#/components/schemas/{schema_name}")}]});
    if !description.is_empty() {
        v["description"] = description.into();
    }
    v
}

/// Builds the kind schema for a custom resource from its CRD version's `openAPIV3Schema`.
pub fn custom_kind_schema(
    schema: &Value,
    group: &str,
    version: &str,
    kind: &str,
    docs: &TypeMetaDocs,
) -> Value {
    let mut s = match schema {
        Value::Object(m) => Value::Object(m.clone()),
        _ => json!({}),
    };
    mark_embedded_resources(&mut s, docs);
    let obj = s.as_object_mut().map(std::mem::take).unwrap_or_default();
    let mut out = Map::new();
    out.insert("type".into(), "object".into());
    for (k, v) in obj {
        out.insert(k, v);
    }
    let props = out.entry("properties").or_insert_with(|| json!({}));
    if !props.is_object() {
        *props = json!({});
    }
    if let Some(props) = props.as_object_mut() {
        props.insert(
            "apiVersion".into(),
            json!({"type": "string", "description": docs.api_version}),
        );
        props.insert(
            "kind".into(),
            json!({"type": "string", "description": docs.kind}),
        );
        props.insert(
            "metadata".into(),
            ref_with_description(OBJECT_META, &docs.metadata),
        );
    }
    out.insert(
        "x-kubernetes-group-version-kind".into(),
        json!([{"group": group, "kind": kind, "version": version}]),
    );
    Value::Object(out)
}

/// Adds `apiVersion`, `kind` and `metadata` to nested embedded-resource objects.
fn mark_embedded_resources(s: &mut Value, docs: &TypeMetaDocs) {
    let Some(obj) = s.as_object_mut() else { return };
    for key in ["properties", "patternProperties"] {
        if let Some(Value::Object(props)) = obj.get_mut(key) {
            for v in props.values_mut() {
                mark_embedded_resources(v, docs);
                if v.get("x-kubernetes-embedded-resource") == Some(&Value::Bool(true)) {
                    add_type_meta(v, docs);
                }
            }
        }
    }
    for key in ["items", "additionalProperties", "not"] {
        if let Some(v) = obj.get_mut(key) {
            mark_embedded_resources(v, docs);
            if v.get("x-kubernetes-embedded-resource") == Some(&Value::Bool(true)) {
                add_type_meta(v, docs);
            }
        }
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(items)) = obj.get_mut(key) {
            for v in items {
                mark_embedded_resources(v, docs);
            }
        }
    }
}

fn add_type_meta(v: &mut Value, docs: &TypeMetaDocs) {
    let Some(obj) = v.as_object_mut() else { return };
    let props = obj.entry("properties").or_insert_with(|| json!({}));
    let Some(props) = props.as_object_mut() else {
        return;
    };
    props
        .entry("apiVersion")
        .or_insert_with(|| json!({"type": "string", "description": docs.api_version}));
    props
        .entry("kind")
        .or_insert_with(|| json!({"type": "string", "description": docs.kind}));
    props
        .entry("metadata")
        .or_insert_with(|| ref_with_description(OBJECT_META, &docs.metadata));
}

/// The `<Kind>List` schema for any kind (built-in kinds have no `k8s-openapi` list schema).
pub fn list_schema(
    kind_schema: &str,
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
    docs: &TypeMetaDocs,
) -> Value {
    json!({
        "description": format!("{kind}List is a list of {kind} objects."),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"type": "string", "description": docs.api_version},
            "items": {
                "type": "array",
                "description": format!("List of {plural}."),
                "items": {"$ref": format!("#/components/schemas/{kind_schema}")},
            },
            "kind": {"type": "string", "description": docs.kind},
            "metadata": ref_with_description(
                super::builtin::LIST_META,
                "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
            ),
        },
        "x-kubernetes-group-version-kind": [{"group": group, "kind": format!("{kind}List"), "version": version}],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reversed_group_names() {
        assert_eq!(
            custom_kind_schema_name("stable.example.com", "v1", "CronTab"),
            "com.example.stable.v1.CronTab"
        );
        assert_eq!(custom_kind_schema_name("", "v1", "Thing"), "v1.Thing");
    }

    #[test]
    fn wraps_crd_schema() {
        let docs = TypeMetaDocs::load();
        assert!(docs.api_version.starts_with("APIVersion defines"));
        let crd = json!({
            "type": "object",
            "properties": {
                "spec": {"type": "object", "properties": {
                    "template": {"type": "object", "x-kubernetes-embedded-resource": true,
                                 "x-kubernetes-preserve-unknown-fields": true}
                }},
                "metadata": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 10}}}
            }
        });
        let s = custom_kind_schema(&crd, "stable.example.com", "v1", "CronTab", &docs);
        assert_eq!(
            s["x-kubernetes-group-version-kind"],
            json!([{"group": "stable.example.com", "kind": "CronTab", "version": "v1"}])
        );
        assert_eq!(
            s["properties"]["metadata"]["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
        );
        assert_eq!(s["properties"]["kind"]["type"], "string");
        let template = &s["properties"]["spec"]["properties"]["template"];
        assert_eq!(template["properties"]["apiVersion"]["type"], "string");
        assert_eq!(
            template["properties"]["metadata"]["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
        );
        // Odd input still yields an object schema.
        let s = custom_kind_schema(&json!("nope"), "g", "v1", "K", &docs);
        assert_eq!(s["type"], "object");
    }
}
