//! Containers under a per-pod shim (see the crate docs).
