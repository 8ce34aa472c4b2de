//! Making a resolved manifest runnable: fetch the config and layer blobs that are missing (from a
//! registry, or nowhere for imports), unpack each layer once per diff-id, then write the record.
//!
//! Per-digest and per-diff-id locks make concurrent pulls share the work. Layers missing from a
//! registry pull are unpacked while they download ([`super::fetch`]); layers whose blob is already
//! stored (imports, retries) are unpacked from it ([`super::layer`]).

use futures::StreamExt;
use futures::stream::FuturesUnordered;

use super::digest::Digest;
use super::layer::unpack_into_place;
use super::manifest::{self, Descriptor, MAX_JSON, Manifest};
use super::record::{self, ImageRecord, LayerRecord};
use super::{Image, ImageError, ImageStore, blocking};

/// Where missing blobs come from.
pub(crate) enum Source<'a> {
    Registry {
        client: &'a oci_client::Client,
        reference: &'a oci_client::Reference,
    },
    /// Everything must already be in the store (imports).
    Local,
}

/// How many layers are fetched and unpacked at once.
const LAYER_CONCURRENCY: usize = 3;

impl ImageStore {
    /// Fetches and unpacks what `manifest` needs and records it under `reference`.
    pub(crate) async fn install(
        &self,
        src: &Source<'_>,
        reference: &str,
        manifest_digest: &Digest,
        index_digest: Option<&Digest>,
        manifest: &Manifest,
    ) -> Result<Image, ImageError> {
        self.ensure_blob(src, &manifest.config).await?;
        let layout = self.layout.clone();
        let config_digest = manifest.config.digest.clone();
        let config_bytes = blocking(move || layout.read_blob(&config_digest, MAX_JSON)).await?;
        let (config, diff_ids) = manifest::parse_config(&config_bytes)?;
        if diff_ids.len() != manifest.layers.len() {
            return Err(ImageError::invalid(
                "image",
                format!(
                    "{} layers in the manifest but {} diff-ids in the config",
                    manifest.layers.len(),
                    diff_ids.len()
                ),
            ));
        }
        let wanted: Vec<(&Descriptor, &Digest)> = manifest
            .layers
            .iter()
            .zip(&diff_ids)
            .filter(|(d, _)| !d.is_foreign())
            .collect();
        // A plain loop rather than `stream::iter(..).buffer_unordered`: closures over borrowed
        // descriptors make the future not `Send` for every lifetime, and callers spawn pulls.
        let mut pending = wanted.iter();
        let mut running = FuturesUnordered::new();
        loop {
            while running.len() < LAYER_CONCURRENCY {
                let Some(&(d, id)) = pending.next() else {
                    break;
                };
                running.push(self.ensure_layer(src, d, id));
            }
            match running.next().await {
                Some(r) => r?,
                None => break,
            }
        }
        let rec = ImageRecord {
            reference: reference.to_string(),
            id: manifest.config.digest.to_string(),
            manifest_digest: manifest_digest.to_string(),
            index_digest: index_digest.map(|d| d.to_string()),
            config,
            layers: wanted
                .iter()
                .map(|(d, id)| LayerRecord {
                    digest: d.digest.to_string(),
                    diff_id: id.to_string(),
                    size: d.size,
                })
                .collect(),
            size: manifest.config.size + wanted.iter().map(|(d, _)| d.size).sum::<u64>(),
        };
        let layout = self.layout.clone();
        let image = rec.to_image(&layout)?;
        blocking(move || record::save(&layout, &rec)).await?;
        Ok(image)
    }

    /// Makes sure the blob is in the store, downloading it if needed (once, however many callers).
    pub(crate) async fn ensure_blob(
        &self,
        src: &Source<'_>,
        desc: &Descriptor,
    ) -> Result<(), ImageError> {
        let _g = self.blob_locks.lock(desc.digest.as_str()).await;
        if self.has_blob(desc).await? {
            return Ok(());
        }
        match src {
            Source::Local => Err(ImageError::NotFound(format!(
                "blob {} is not in the archive",
                desc.digest
            ))),
            Source::Registry { client, reference } => self.download(client, reference, desc).await,
        }
    }

    /// Makes sure the layer is unpacked under its diff-id (once, however many callers).
    async fn ensure_layer(
        &self,
        src: &Source<'_>,
        desc: &Descriptor,
        diff_id: &Digest,
    ) -> Result<(), ImageError> {
        let _g = self.layer_locks.lock(diff_id.as_str()).await;
        let dest = self.layout.layer(diff_id);
        if blocking(move || Ok(dest.is_dir())).await? {
            return Ok(());
        }
        if let Source::Registry { client, reference } = src {
            // Held to the end of this block only: `ensure_blob` below takes the same lock.
            let _b = self.blob_locks.lock(desc.digest.as_str()).await;
            if !self.has_blob(desc).await? {
                self.fetch_and_unpack(client, reference, desc, diff_id)
                    .await?;
                self.count(&self.stats.layers_unpacked, 1);
                return Ok(());
            }
        }
        self.ensure_blob(src, desc).await?;
        let layout = self.layout.clone();
        let blob = desc.digest.clone();
        let diff = diff_id.clone();
        let limits = self.limits;
        blocking(move || unpack_into_place(&layout, &blob, &diff, &limits)).await?;
        self.count(&self.stats.layers_unpacked, 1);
        Ok(())
    }

    /// Whether the blob is stored, checked off the async workers.
    async fn has_blob(&self, desc: &Descriptor) -> Result<bool, ImageError> {
        let layout = self.layout.clone();
        let (d, size) = (desc.digest.clone(), desc.size);
        blocking(move || Ok(layout.has_blob(&d, Some(size)))).await
    }
}
