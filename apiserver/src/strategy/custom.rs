//! Validation of custom resources against their CRD's structural schema (`openAPIV3Schema`):
//! types, `nullable`, `required`, `enum`, numeric bounds, string lengths and item counts, with the
//! field paths and messages kube-apiserver reports. Unknown fields were already pruned.

use k1s_apimachinery::status::{Cause, StatusCause};
use serde_json::{Map, Value};

/// Validates everything but `apiVersion`, `kind` and `metadata` of `obj` against `schema`.
pub fn validate(schema: &Value, obj: &Value, out: &mut Vec<StatusCause>) {
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    let Some(map) = obj.as_object() else { return };
    for (key, sub) in props {
        if matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        if let Some(v) = map.get(key) {
            value(sub, v, key, out);
        }
    }
    required(schema, map, "", out);
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn required(schema: &Value, map: &Map<String, Value>, path: &str, out: &mut Vec<StatusCause>) {
    for r in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(name) = r.as_str() {
            if matches!(name, "apiVersion" | "kind" | "metadata") && path.is_empty() {
                continue;
            }
            if !map.contains_key(name) {
                out.push(Cause::required(&join(path, name), ""));
            }
        }
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn value(schema: &Value, v: &Value, path: &str, out: &mut Vec<StatusCause>) {
    if schema.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
        if !(v.is_string() || type_name(v) == "integer") {
            out.push(Cause::invalid(
                path,
                v,
                &format!(
                    "{path} in body must be of type int-or-string: {:?}",
                    type_name(v)
                ),
            ));
        }
        return;
    }
    if v.is_null() {
        if schema.get("nullable") != Some(&Value::Bool(true)) && schema.get("type").is_some() {
            let ty = schema["type"].as_str().unwrap_or_default();
            out.push(Cause::invalid(
                path,
                v,
                &format!("{path} in body must be of type {ty}: \"null\""),
            ));
        }
        return;
    }
    if let Some(ty) = schema.get("type").and_then(Value::as_str) {
        let actual = type_name(v);
        let ok = actual == ty || (ty == "number" && actual == "integer");
        if !ok {
            out.push(Cause::invalid(
                path,
                v,
                &format!("{path} in body must be of type {ty}: {actual:?}"),
            ));
            return;
        }
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array)
        && !options.contains(v)
    {
        let valid: Vec<String> = options
            .iter()
            .map(|o| o.as_str().map(str::to_string).unwrap_or(o.to_string()))
            .collect();
        let refs: Vec<&str> = valid.iter().map(String::as_str).collect();
        out.push(Cause::not_supported(path, v, &refs));
    }
    match v {
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or_default();
            let excl_min = schema.get("exclusiveMinimum") == Some(&Value::Bool(true));
            let excl_max = schema.get("exclusiveMaximum") == Some(&Value::Bool(true));
            if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
                && (x < min || (excl_min && x == min))
            {
                let rel = if excl_min {
                    "greater than"
                } else {
                    "greater than or equal to"
                };
                out.push(Cause::invalid(
                    path,
                    v,
                    &format!("{path} in body should be {rel} {}", schema["minimum"]),
                ));
            }
            if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
                && (x > max || (excl_max && x == max))
            {
                let rel = if excl_max {
                    "less than"
                } else {
                    "less than or equal to"
                };
                out.push(Cause::invalid(
                    path,
                    v,
                    &format!("{path} in body should be {rel} {}", schema["maximum"]),
                ));
            }
        }
        Value::String(s) => {
            let len = s.chars().count() as u64;
            if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
                && len < min
            {
                out.push(Cause::invalid(
                    path,
                    v,
                    &format!("{path} in body should be at least {min} chars long"),
                ));
            }
            if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
                && len > max
            {
                out.push(Cause::too_long(path, max as usize));
            }
        }
        Value::Array(items) => {
            let n = items.len() as u64;
            if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
                && n < min
            {
                out.push(Cause::invalid(
                    path,
                    v,
                    &format!("{path} in body should have at least {min} items"),
                ));
            }
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
                && n > max
            {
                out.push(Cause::too_many(path, items.len(), max as usize));
            }
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    value(item_schema, item, &format!("{path}[{i}]"), out);
                }
            }
        }
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            for (k, child) in map {
                let sub = props
                    .and_then(|p| p.get(k))
                    .or_else(|| schema.get("additionalProperties").filter(|a| a.is_object()));
                if let Some(sub) = sub {
                    value(sub, child, &join(path, k), out);
                }
            }
            required(schema, map, path, out);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "properties": {"spec": {"type": "object", "required": ["size"], "properties": {
            "size": {"type": "integer", "minimum": 1, "maximum": 10},
            "color": {"type": "string", "enum": ["red", "green", "blue"]},
            "tags": {"type": "array", "maxItems": 2, "items": {"type": "string", "maxLength": 3}},
            "port": {"x-kubernetes-int-or-string": true}
        }}}})
    }

    fn causes(obj: Value) -> Vec<(String, String)> {
        let mut out = Vec::new();
        validate(&schema(), &obj, &mut out);
        out.into_iter().map(|c| (c.field, c.message)).collect()
    }

    #[test]
    fn valid_object_has_no_causes() {
        assert!(
            causes(json!({"spec": {"size": 3, "color": "red", "tags": ["a"], "port": "http"}}))
                .is_empty()
        );
    }

    #[test]
    fn each_rule_reports_its_field() {
        let c = causes(
            json!({"spec": {"size": 0, "color": "purple", "tags": ["a", "b", "c"], "port": true}}),
        );
        let fields: Vec<&str> = c.iter().map(|(f, _)| f.as_str()).collect();
        assert!(fields.contains(&"spec.size"), "{c:?}");
        assert!(fields.contains(&"spec.color"), "{c:?}");
        assert!(fields.contains(&"spec.tags"), "{c:?}");
        assert!(fields.contains(&"spec.port"), "{c:?}");
        assert!(
            c.iter()
                .any(|(_, m)| m.contains("should be greater than or equal to 1")),
            "{c:?}"
        );
        assert!(
            c.iter()
                .any(|(_, m)| m.contains("Unsupported value: \"purple\"")),
            "{c:?}"
        );
    }

    #[test]
    fn required_and_types() {
        let c = causes(json!({"spec": {"color": "red"}}));
        assert_eq!(
            c,
            vec![("spec.size".to_string(), "Required value".to_string())]
        );
        let c = causes(json!({"spec": {"size": "big"}}));
        assert_eq!(
            c[0].1,
            "Invalid value: \"big\": spec.size in body must be of type integer: \"string\""
        );
    }
}
