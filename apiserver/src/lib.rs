//! k1s API server: transport (TLS, authentication), router and REST handlers.

pub mod auth;
pub mod kubeconfig;
pub mod serve;
pub mod tls;
