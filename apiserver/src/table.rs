//! `Accept: application/json;as=Table`: rows with upstream's columns for built-in kinds and the
//! `additionalPrinterColumns` of custom resources.

use serde_json::Value;

use crate::printers;
use crate::request::Query;
use crate::resources::{Resource, StrategyKind};

/// Renders objects of one resource as a `meta.k8s.io/v1` Table.
pub fn render(
    res: &Resource,
    objs: &[Value],
    query: &Query,
    resource_version: &str,
    continue_token: Option<&str>,
    remaining: Option<u64>,
) -> Value {
    let now = jiff::Timestamp::now();
    let custom = res
        .custom
        .as_ref()
        .filter(|_| res.strategy == StrategyKind::Custom);
    let columns = match custom {
        Some(c) => printers::custom_columns(&c.printer_columns),
        None => printers::builtin_columns(&res.group, &res.kind)
            .unwrap_or_else(printers::default_columns),
    };
    let include = query.get("includeObject").unwrap_or("Metadata");
    let rows = objs
        .iter()
        .map(|obj| {
            let cells = match custom {
                Some(c) => printers::custom_cells(&c.printer_columns, obj, now),
                None if printers::builtin_columns(&res.group, &res.kind).is_some() => {
                    printers::builtin_cells(&res.group, &res.kind, obj, now)
                }
                None => printers::default_cells(obj),
            };
            let object = match include {
                "Object" => obj.clone(),
                "None" => Value::Null,
                _ => printers::partial_object_metadata(obj),
            };
            (cells, object)
        })
        .collect();
    printers::table(&columns, rows, resource_version, continue_token, remaining)
}
