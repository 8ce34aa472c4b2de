//! OCI images: references, pulls, the content store, layer unpacking, import and GC.
//!
//! [`ImageStore`] owns a directory (`<data-dir>/runtime/images`); see [`content`] for its layout
//! and invariants. Pulls go through `oci-client` to any Distribution-v2 registry (anonymous bearer
//! tokens, basic auth, pull secrets, mirrors, plain HTTP only for configured hosts). Concurrent
//! pulls in one process share downloads and unpacks per digest; a pull that fails leaves nothing
//! under a final name. Blocking file work runs on `spawn_blocking` threads.

pub mod auth;
mod content;
pub mod digest;
mod error;
mod fetch;
mod gc;
mod import;
mod install;
mod layer;
mod locks;
pub mod manifest;
pub mod platform;
mod pull;
pub mod record;
pub mod reference;
pub mod registries;
pub mod unpack;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub use auth::{DockerConfig, RegistryAuth};
pub use error::ImageError;
pub use gc::GcStats;
pub use platform::Platform;
pub use record::ImageRecord;
pub use registries::RegistryConfig;
pub use unpack::UnpackLimits;

use content::Layout;
use locks::KeyedLocks;

/// The parts of an image config a container is built from.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
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
    /// Compressed size of its layers and config, in bytes.
    pub size: u64,
}

/// Counters of the work a store did (for tests and benchmarks).
#[derive(Debug, Default)]
pub struct StoreStats {
    /// Blobs fetched from a registry.
    pub blobs_downloaded: AtomicU64,
    /// Bytes of those blobs.
    pub bytes_downloaded: AtomicU64,
    /// Layers unpacked.
    pub layers_unpacked: AtomicU64,
}

/// The content store under `<data-dir>/runtime/images`. Share it with `Arc`; every method takes
/// `&self`.
#[derive(Debug)]
pub struct ImageStore {
    layout: Layout,
    registries: RegistryConfig,
    platform: Platform,
    limits: UnpackLimits,
    blob_locks: KeyedLocks,
    layer_locks: KeyedLocks,
    /// Held shared by pulls and imports, exclusively by GC, so GC never deletes content a pull in
    /// this process is about to reference.
    gc_lock: tokio::sync::RwLock<()>,
    stats: Arc<StoreStats>,
}

impl ImageStore {
    /// Opens (creating if needed) the store at `root`. Leftovers of crashed pulls older than an
    /// hour are removed from `tmp/`.
    pub fn open(root: &Path, registries: RegistryConfig) -> Result<Self, ImageError> {
        let layout = Layout::create(root)?;
        content::clean_tmp(&layout, std::time::Duration::from_secs(3600));
        Ok(Self {
            layout,
            registries,
            platform: Platform::host(),
            limits: UnpackLimits::default(),
            blob_locks: KeyedLocks::default(),
            layer_locks: KeyedLocks::default(),
            gc_lock: tokio::sync::RwLock::new(()),
            stats: Arc::default(),
        })
    }

    /// Pull images for `platform` instead of the host's.
    pub fn with_platform(mut self, platform: Platform) -> Self {
        self.platform = platform;
        self
    }

    /// Use other caps for layer contents.
    pub fn with_limits(mut self, limits: UnpackLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        &self.layout.root
    }

    /// Work counters.
    pub fn stats(&self) -> &StoreStats {
        &self.stats
    }

    /// The image stored under `reference` (normalised first), if any.
    pub fn get(&self, reference: &str) -> Result<Option<Image>, ImageError> {
        let norm = reference::normalize(reference)?;
        match record::load(&self.layout, &norm)? {
            Some(r) => r.to_image(&self.layout).map(Some),
            None => Ok(None),
        }
    }

    /// Every stored image, sorted by reference.
    pub fn list(&self) -> Result<Vec<ImageRecord>, ImageError> {
        record::list(&self.layout)
    }

    /// Removes the records of `reference` (a reference, or an image ID or a prefix of one of at
    /// least 12 hex digits, which removes every reference to it). Content stays until [`Self::gc`].
    /// Returns the references removed.
    pub fn remove(&self, reference: &str) -> Result<Vec<String>, ImageError> {
        let id_prefix = reference.strip_prefix("sha256:").unwrap_or(reference);
        let is_id = id_prefix.len() >= 12 && id_prefix.bytes().all(|b| b.is_ascii_hexdigit());
        let mut removed = Vec::new();
        if is_id {
            for r in self.list()? {
                if r.id.trim_start_matches("sha256:").starts_with(id_prefix)
                    && record::remove(&self.layout, &r.reference)?
                {
                    removed.push(r.reference);
                }
            }
        }
        if removed.is_empty()
            && let Ok(norm) = reference::normalize(reference)
            && record::remove(&self.layout, &norm)?
        {
            removed.push(norm);
        }
        if removed.is_empty() {
            return Err(ImageError::NotFound(reference.to_string()));
        }
        Ok(removed)
    }

    pub(crate) fn count(&self, counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// Runs blocking file work off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ImageError> + Send + 'static,
) -> Result<T, ImageError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ImageError::Task(e.to_string()))?
}
