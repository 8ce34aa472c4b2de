//! The image store's error type: one enum whose variants say which step failed and carry the cause.

use std::io;

use super::unpack::UnpackError;

/// Errors of the image store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// The reference could not be parsed or normalised.
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference { reference: String, reason: String },
    /// The registry (or the transport to it) failed.
    #[error("registry {registry}: {source}")]
    Registry {
        registry: String,
        #[source]
        source: oci_client::errors::OciDistributionError,
    },
    /// Downloaded or imported content does not hash to the digest that names it.
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    /// A manifest, index, config or archive member is malformed or unsupported.
    #[error("invalid {what}: {reason}")]
    InvalidContent { what: String, reason: String },
    /// An image index has no manifest for the wanted platform.
    #[error("no manifest for platform {platform} in {reference}")]
    NoMatchingPlatform { reference: String, platform: String },
    /// A registries config file or a pull secret could not be used.
    #[error("invalid registry configuration: {0}")]
    Config(String),
    /// No image is stored under that reference or ID.
    #[error("image not found: {0}")]
    NotFound(String),
    /// A layer could not be unpacked.
    #[error("unpacking layer {layer}: {source}")]
    Unpack {
        layer: String,
        #[source]
        source: UnpackError,
    },
    /// A file operation in the store failed.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    /// A blocking task panicked or was cancelled.
    #[error("background task failed: {0}")]
    Task(String),
}

impl ImageError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(io::Error) -> ImageError {
        let what = what.into();
        move |source| ImageError::Io { what, source }
    }

    pub(crate) fn invalid(what: impl Into<String>, reason: impl ToString) -> ImageError {
        ImageError::InvalidContent {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}
