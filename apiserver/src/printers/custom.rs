//! Tables for custom resources from a CRD version's `additionalPrinterColumns`, as the
//! apiextensions-apiserver table convertor builds them.
//!
//! Columns are `Name` then the CRD's columns in order; a CRD that declares none is served an
//! `Age` column (`type: date`, `.metadata.creationTimestamp`). Cells: `string` columns print the
//! first JSONPath result as text (maps and lists as compact JSON); `integer`, `number` and
//! `boolean` keep the JSON value when it has that type; `date` columns become a humanised age;
//! anything missing or mistyped is `null`.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::docs::{name_column, object_meta_doc};
use super::jsonpath::JsonPath;
use super::util::{parse_time, str_at};
use super::{Column, human_duration};

/// One printer column with its JSONPath.
struct Spec {
    column: Column,
    json_path: String,
}

fn specs(apc: &[Value]) -> Vec<Spec> {
    if apc.is_empty() {
        return vec![Spec {
            column: Column {
                name: "Age".into(),
                type_: "date".into(),
                format: String::new(),
                description: object_meta_doc("creationTimestamp"),
                priority: 0,
            },
            json_path: ".metadata.creationTimestamp".into(),
        }];
    }
    apc.iter()
        .map(|c| {
            let json_path = str_at(c, &["jsonPath"]).to_string();
            let description = match str_at(c, &["description"]) {
                "" => {
                    format!("Custom resource definition column (in JSONPath format): {json_path}")
                }
                d => d.to_string(),
            };
            Spec {
                column: Column {
                    name: str_at(c, &["name"]).into(),
                    type_: str_at(c, &["type"]).into(),
                    format: str_at(c, &["format"]).into(),
                    description,
                    priority: i32::try_from(super::util::int_at(c, &["priority"])).unwrap_or(0),
                },
                json_path,
            }
        })
        .collect()
}

/// `Name` followed by the CRD version's printer columns (or `Age` when it declares none).
pub fn custom_columns(additional_printer_columns: &[Value]) -> Vec<Column> {
    std::iter::once(name_column())
        .chain(
            specs(additional_printer_columns)
                .into_iter()
                .map(|s| s.column),
        )
        .collect()
}

/// Cells for [`custom_columns`], evaluated against `obj`.
pub fn custom_cells(
    additional_printer_columns: &[Value],
    obj: &Value,
    now: Timestamp,
) -> Vec<Value> {
    let mut cells = vec![json!(str_at(obj, &["metadata", "name"]))];
    for spec in specs(additional_printer_columns) {
        let value = JsonPath::parse(&spec.json_path)
            .ok()
            .and_then(|p| p.first(obj).cloned());
        cells.push(match value {
            None => Value::Null,
            Some(v) => cell_for(&spec.column.type_, v, now),
        });
    }
    cells
}

fn cell_for(type_: &str, value: Value, now: Timestamp) -> Value {
    match (type_, value) {
        (_, Value::Null) => Value::Null,
        ("string", Value::String(s)) => Value::String(s),
        ("string", v @ (Value::Object(_) | Value::Array(_))) => Value::String(go_json(&v)),
        ("string", v) => Value::String(v.to_string()),
        ("integer", Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .map_or(Value::Null, Value::from),
        ("number", Value::Number(n)) => n.as_f64().map_or(Value::Null, Value::from),
        ("boolean", Value::Bool(b)) => Value::Bool(b),
        ("date", Value::String(s)) => {
            if s.is_empty() {
                json!("<unknown>")
            } else {
                match parse_time(&s) {
                    Some(t) => json!(human_duration(now.duration_since(t))),
                    None => json!("<invalid>"),
                }
            }
        }
        _ => Value::Null,
    }
}

/// Compact JSON with object keys sorted, as Go's `encoding/json` writes maps.
fn go_json(v: &Value) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                Value::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), sorted(&m[k])))
                        .collect(),
                )
            }
            Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(v).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2024-06-01T12:00:00Z".parse().unwrap()
    }

    fn apc() -> Vec<Value> {
        vec![
            json!({"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"}),
            json!({"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status", "description": "Readiness"}),
            json!({"name": "Ratio", "type": "number", "jsonPath": ".status.ratio", "priority": 1}),
            json!({"name": "Paused", "type": "boolean", "jsonPath": ".spec.paused"}),
            json!({"name": "Selector", "type": "string", "jsonPath": ".spec.selector"}),
            json!({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}),
            json!({"name": "Missing", "type": "string", "jsonPath": ".status.nothing"}),
        ]
    }

    #[test]
    fn columns_follow_the_crd() {
        let cols = custom_columns(&apc());
        let names: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "Name", "Replicas", "Ready", "Ratio", "Paused", "Selector", "Age", "Missing"
            ]
        );
        assert_eq!(cols[0].format, "name");
        assert_eq!(cols[1].type_, "integer");
        assert_eq!(
            cols[1].description,
            "Custom resource definition column (in JSONPath format): .spec.replicas"
        );
        assert_eq!(cols[2].description, "Readiness");
        assert_eq!(cols[3].priority, 1);
        assert_eq!(cols[6].type_, "date");
    }

    #[test]
    fn no_columns_means_name_and_age() {
        let cols = custom_columns(&[]);
        assert_eq!(cols.len(), 2);
        assert_eq!(
            (cols[1].name.as_str(), cols[1].type_.as_str()),
            ("Age", "date")
        );
        let obj = json!({"metadata": {"name": "a", "creationTimestamp": "2024-06-01T10:00:00Z"}});
        assert_eq!(
            custom_cells(&[], &obj, now()),
            vec![json!("a"), json!("120m")]
        );
    }

    #[test]
    fn cells_are_typed_like_upstream() {
        let obj = json!({
            "metadata": {"name": "demo", "creationTimestamp": "2024-05-30T12:00:00Z"},
            "spec": {"replicas": 3, "paused": "yes", "selector": {"z": "1", "a": "2"}},
            "status": {"ratio": 2, "conditions": [{"type": "Ready", "status": "True"}]},
        });
        assert_eq!(
            custom_cells(&apc(), &obj, now()),
            vec![
                json!("demo"),
                json!(3),
                json!("True"),
                json!(2.0),
                Value::Null,
                json!("{\"a\":\"2\",\"z\":\"1\"}"),
                json!("2d"),
                Value::Null,
            ]
        );
    }

    #[test]
    fn bad_dates_and_bad_paths() {
        let cols = vec![
            json!({"name": "When", "type": "date", "jsonPath": ".spec.when"}),
            json!({"name": "Broken", "type": "string", "jsonPath": ".spec["}),
        ];
        let obj = json!({"metadata": {"name": "x"}, "spec": {"when": "yesterday"}});
        assert_eq!(
            custom_cells(&cols, &obj, now()),
            vec![json!("x"), json!("<invalid>"), Value::Null]
        );
    }
}
