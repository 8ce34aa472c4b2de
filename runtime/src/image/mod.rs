//! OCI images: references, pulls, the content store, layer unpacking, import and GC.
//!
//! Owner of this module: the images work. The types below are the contract the container and CLI
//! code builds against; bodies are filled in by that work.

use std::path::{Path, PathBuf};

/// Errors of the image store.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("not implemented yet: {0}")]
    Unimplemented(&'static str),
}

/// Registry settings: plain-HTTP registries and mirrors (containerd `registries.yaml` style).
#[derive(Debug, Clone, Default)]
pub struct RegistryConfig {
    /// `HOST:PORT` of registries that may be reached over plain HTTP.
    pub insecure: Vec<String>,
}

/// Credentials for one pull (from a `kubernetes.io/dockerconfigjson` secret or the CLI).
#[derive(Debug, Clone, Default)]
pub enum RegistryAuth {
    #[default]
    Anonymous,
    Basic {
        username: String,
        password: String,
    },
}

/// The parts of an image config a container is built from.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct ImageConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// `KEY=VALUE` entries.
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
}

/// An image present in the store, ready to run.
#[derive(Debug, Clone)]
pub struct Image {
    /// Normalised reference, e.g. `docker.io/library/busybox:latest`.
    pub reference: String,
    /// Image ID: the digest of its config blob.
    pub id: String,
    /// Digest of the manifest that was pulled (platform-specific, not the index).
    pub manifest_digest: String,
    pub config: ImageConfig,
    /// Unpacked layer directories, lowest first (overlayfs `lowerdir` wants them reversed).
    pub layers: Vec<PathBuf>,
}

/// The content store under `<data-dir>/runtime/images`.
#[derive(Debug)]
pub struct ImageStore {
    root: PathBuf,
    registries: RegistryConfig,
}

impl ImageStore {
    pub fn open(root: &Path, registries: RegistryConfig) -> Result<Self, ImageError> {
        Ok(Self {
            root: root.to_path_buf(),
            registries,
        })
    }

    /// Pulls `reference` (unless present with the same manifest) and unpacks its layers.
    pub async fn pull(&self, reference: &str, auth: &RegistryAuth) -> Result<Image, ImageError> {
        let _ = (reference, auth, &self.root, &self.registries);
        Err(ImageError::Unimplemented("pull"))
    }

    /// The image stored under `reference` (normalised first), if any.
    pub fn get(&self, reference: &str) -> Result<Option<Image>, ImageError> {
        let _ = reference;
        Err(ImageError::Unimplemented("get"))
    }
}
