//! k1s API server: transport (TLS, authentication), discovery, OpenAPI and one generic REST path over
//! the store for every resource, built-in or defined by a CRD.

pub mod alloc;
pub mod auth;
pub mod body;
pub mod bootstrap;
pub mod client;
pub mod crd;
pub mod discovery;
pub mod event_ttl;
pub mod events_view;
pub mod hooks;
pub mod kubeconfig;
pub mod metrics_api;
pub mod namespace_lifecycle;
pub mod openapi;
pub mod openapi_serve;
pub mod pod_logs;
pub mod pod_streams;
pub mod printers;
pub mod protobuf;
pub mod request;
pub mod resources;
pub mod response;
pub mod rest;
pub mod review;
pub mod router;
pub mod satoken;
pub mod schema;
pub mod serve;
pub mod spdy;
pub mod state;
pub mod strategy;
pub mod table;
pub mod tls;

pub use router::{router, with_auth};
pub use state::{ApiConfig, AppState};
