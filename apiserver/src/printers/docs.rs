//! Column descriptions taken from the API field documentation, as upstream does with
//! `SwaggerDoc()`: read from the `k8s-openapi` schemas so the text matches the API docs.

use schemars::{JsonSchema, SchemaGenerator};

use super::Column;

/// The description of `field` in `T`'s schema, or `""` if `T` has no such field.
pub fn doc<T: JsonSchema>(field: &str) -> String {
    let schema = T::json_schema(&mut SchemaGenerator::default());
    schema
        .get("properties")
        .and_then(|p| p.get(field))
        .and_then(|f| f.get("description"))
        .and_then(|d| d.as_str())
        .unwrap_or("")
        .to_string()
}

/// Description of an `ObjectMeta` field.
pub fn object_meta_doc(field: &str) -> String {
    doc::<k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>(field)
}

/// The `Name` column every printer starts with.
pub fn name_column() -> Column {
    Column {
        name: "Name".into(),
        type_: "string".into(),
        format: "name".into(),
        description: object_meta_doc("name"),
        priority: 0,
    }
}

/// The `Age` column (a humanised string, not a date, in built-in printers).
pub fn age_column() -> Column {
    col("Age", "string", object_meta_doc("creationTimestamp"))
}

/// A priority-0 column.
pub fn col(name: &str, type_: &str, description: impl Into<String>) -> Column {
    Column {
        name: name.into(),
        type_: type_.into(),
        format: String::new(),
        description: description.into(),
        priority: 0,
    }
}

/// A priority-1 (`-o wide`) column.
pub fn wide(name: &str, type_: &str, description: impl Into<String>) -> Column {
    Column {
        priority: 1,
        ..col(name, type_, description)
    }
}
