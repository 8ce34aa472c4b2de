//! Server-side Table printing, as kube-apiserver answers
//! `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`.
//!
//! A `Table` carries column definitions and one row of cells per object; kubectl prints the cells
//! verbatim (upper-casing the column names) and hides columns with `priority > 0` unless
//! `-o wide`. Like kube-apiserver, the server always computes every column, wide ones included.
//!
//! - Built-in kinds follow upstream's `pkg/printers/internalversion` column for column:
//!   [`builtin_columns`] / [`builtin_cells`].
//! - Kinds without a printer (and CustomResourceDefinitions themselves) get upstream's default
//!   convertor: `Name`, `Created At` ([`default_columns`] / [`default_cells`]).
//! - Custom resources use their CRD version's `additionalPrinterColumns` ([`custom_columns`] /
//!   [`custom_cells`]), evaluated with a small JSONPath subset ([`jsonpath`]).
//!
//! Every function here is pure and total: missing fields or fields of the wrong type print as
//! upstream prints zero values; nothing panics.

mod builtin;
mod custom;
mod docs;
mod duration;
pub mod jsonpath;
mod pod;
mod util;

use serde_json::{Map, Value, json};

pub use builtin::{builtin_cells, builtin_columns};
pub use custom::{custom_cells, custom_columns};
pub use duration::human_duration;

/// One `meta.k8s.io/v1` `TableColumnDefinition`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Column name as upstream spells it (`Name`, `Ready`, `Port(s)`); kubectl upper-cases it.
    pub name: String,
    /// `string`, `integer`, `number`, `boolean` or `date`.
    pub type_: String,
    /// `name` for the object-name column, otherwise usually empty.
    pub format: String,
    /// Human readable description (upstream takes most from the API field docs).
    pub description: String,
    /// `0` always shown, `1` only with `-o wide`.
    pub priority: i32,
}

impl Column {
    /// The column as it appears in a Table's `columnDefinitions`.
    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "type": self.type_,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }
}

/// Upstream's default columns for kinds without a printer: `Name`, `Created At`.
pub fn default_columns() -> Vec<Column> {
    vec![
        docs::name_column(),
        Column {
            name: "Created At".into(),
            type_: "date".into(),
            format: String::new(),
            description: docs::object_meta_doc("creationTimestamp"),
            priority: 0,
        },
    ]
}

/// Cells for [`default_columns`]: the name and the creation time as RFC 3339 in UTC.
pub fn default_cells(obj: &Value) -> Vec<Value> {
    let created = util::str_at(obj, &["metadata", "creationTimestamp"]);
    let created = match created.parse::<jiff::Timestamp>() {
        Ok(ts) => ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        // Go formats the zero time.
        Err(_) => "0001-01-01T00:00:00Z".to_string(),
    };
    vec![
        Value::String(util::str_at(obj, &["metadata", "name"]).to_string()),
        Value::String(created),
    ]
}

/// Builds a `meta.k8s.io/v1` `Table`.
///
/// `rows` pairs each row's cells with the object to embed (usually [`partial_object_metadata`],
/// or the full object for `includeObject=Object`; `Value::Null` for `includeObject=None`).
pub fn table(
    columns: &[Column],
    rows: Vec<(Vec<Value>, Value)>,
    resource_version: &str,
    continue_token: Option<&str>,
    remaining: Option<u64>,
) -> Value {
    let mut metadata = Map::new();
    if !resource_version.is_empty() {
        metadata.insert("resourceVersion".into(), resource_version.into());
    }
    if let Some(token) = continue_token.filter(|t| !t.is_empty()) {
        metadata.insert("continue".into(), token.into());
    }
    if let Some(remaining) = remaining {
        metadata.insert("remainingItemCount".into(), remaining.into());
    }
    let rows: Vec<Value> = rows
        .into_iter()
        .map(|(cells, object)| {
            let mut row = Map::new();
            row.insert("cells".into(), Value::Array(cells));
            if !object.is_null() {
                row.insert("object".into(), object);
            }
            Value::Object(row)
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": columns.iter().map(Column::to_json).collect::<Vec<_>>(),
        "rows": rows,
    })
}

/// The `PartialObjectMetadata` embedded in Table rows by default (`includeObject=Metadata`).
pub fn partial_object_metadata(obj: &Value) -> Value {
    let metadata = obj.get("metadata").cloned().unwrap_or_else(|| json!({}));
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_shape_matches_meta_v1() {
        let pod =
            json!({"metadata": {"name": "web", "namespace": "default", "resourceVersion": "7"}});
        let cols = default_columns();
        let t = table(
            &cols,
            vec![(
                vec![json!("web"), json!("x")],
                partial_object_metadata(&pod),
            )],
            "42",
            Some("tok"),
            Some(3),
        );
        assert_eq!(t["kind"], "Table");
        assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(
            t["metadata"],
            json!({"resourceVersion": "42", "continue": "tok", "remainingItemCount": 3})
        );
        assert_eq!(t["columnDefinitions"][0]["name"], "Name");
        assert_eq!(t["columnDefinitions"][0]["format"], "name");
        assert_eq!(t["columnDefinitions"][1]["name"], "Created At");
        assert_eq!(t["columnDefinitions"][1]["type"], "date");
        assert_eq!(t["columnDefinitions"][1]["priority"], 0);
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(t["rows"][0]["object"]["metadata"]["name"], "web");
    }

    #[test]
    fn table_omits_empty_list_meta_and_null_objects() {
        let t = table(
            &default_columns(),
            vec![(vec![json!("a")], Value::Null)],
            "",
            None,
            None,
        );
        assert_eq!(t["metadata"], json!({}));
        assert!(t["rows"][0].get("object").is_none());
    }

    #[test]
    fn default_cells_format_creation_time_in_utc() {
        let obj =
            json!({"metadata": {"name": "crd", "creationTimestamp": "2024-05-01T10:00:00+02:00"}});
        assert_eq!(
            default_cells(&obj),
            vec![json!("crd"), json!("2024-05-01T08:00:00Z")]
        );
        assert_eq!(default_cells(&json!(42))[1], json!("0001-01-01T00:00:00Z"));
    }

    #[test]
    fn name_column_has_object_meta_description() {
        let c = &default_columns()[0];
        assert!(
            c.description
                .starts_with("Name must be unique within a namespace"),
            "{}",
            c.description
        );
    }
}
