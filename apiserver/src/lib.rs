//! k1s API server: HTTP, discovery, OpenAPI, generic REST handlers and Table printing.

pub mod openapi;
pub mod printers;
