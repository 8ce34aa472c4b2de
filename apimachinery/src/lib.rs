//! `k1s-apimachinery`: pure object machinery shared by the API server and components.
//!
//! Objects are `serde_json::Value`s (with `preserve_order`), like upstream's unstructured
//! objects. Nothing here does I/O. Modules:
//! - [`status`]: `Status` errors with upstream's codes, reasons and messages;
//! - [`meta`]: `metadata` accessors and timestamp formats;
//! - [`validation`]: name/label/annotation/object-meta validation;
//! - [`selector`]: label and field selectors;
//! - [`patch`]: JSON patch, JSON merge patch and strategic merge patch;
//! - [`apply`]: server-side apply and `managedFields` tracking.
#![warn(missing_docs)]

pub mod apply;
pub mod conditions;
pub mod meta;
pub mod patch;
pub mod pod;
pub mod selector;
pub mod status;
pub mod validation;
