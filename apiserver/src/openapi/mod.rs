//! OpenAPI v3 documents (placeholder until the generator lands).
