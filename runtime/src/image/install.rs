//! Making a resolved manifest runnable: fetch the config and layer blobs that are missing (from a
//! registry, or nowhere for imports), unpack each layer once per diff-id, then write the record.
//!
//! Per-digest and per-diff-id locks make concurrent pulls share the work. A layer is unpacked into
//! `tmp/`, the filesystem is synced once, and only then is the directory renamed to its final name.

use std::fs;

use futures::StreamExt;
use futures::stream::FuturesUnordered;

use super::content::BlobWriter;
use super::digest::Digest;
use super::manifest::{self, Descriptor, MAX_JSON, Manifest};
use super::record::{self, ImageRecord, LayerRecord};
use super::{Image, ImageError, ImageStore, blocking, unpack};

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
        if self.layout.has_blob(&desc.digest, Some(desc.size)) {
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

    async fn download(
        &self,
        client: &oci_client::Client,
        reference: &oci_client::Reference,
        desc: &Descriptor,
    ) -> Result<(), ImageError> {
        let registry = reference.resolve_registry().to_string();
        let mut sized = client
            .pull_blob_stream(reference, &desc.to_oci())
            .await
            .map_err(|source| ImageError::Registry {
                registry: registry.clone(),
                source,
            })?;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(32);
        let layout = self.layout.clone();
        let digest = desc.digest.clone();
        let max = desc.size;
        // Hashing and writing run on a blocking thread while the network side keeps reading.
        let writer = tokio::task::spawn_blocking(move || {
            let mut w = BlobWriter::create(&layout, max)?;
            while let Some(chunk) = rx.blocking_recv() {
                w.write(&chunk)?;
            }
            w.commit(&layout, &digest)
        });
        let mut stream_err = None;
        while let Some(chunk) = sized.stream.next().await {
            match chunk {
                Ok(c) => {
                    if tx.send(c).await.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    stream_err = Some(e);
                    break;
                }
            }
        }
        drop(tx);
        let written = writer.await.map_err(|e| ImageError::Task(e.to_string()))?;
        match (written, stream_err) {
            // The writer's own check names the digest mismatch precisely.
            (Err(e), _) => Err(e),
            (Ok(n), None) => {
                self.count(&self.stats.blobs_downloaded, 1);
                self.count(&self.stats.bytes_downloaded, n);
                Ok(())
            }
            (Ok(_), Some(e)) => {
                let _ = fs::remove_file(self.layout.blob(&desc.digest));
                Err(ImageError::Io {
                    what: format!("downloading {} from {registry}", desc.digest),
                    source: e,
                })
            }
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
        if dest.is_dir() {
            return Ok(());
        }
        if let Source::Registry { client, reference } = src {
            let _b = self.blob_locks.lock(desc.digest.as_str()).await;
            if !self.layout.has_blob(&desc.digest, Some(desc.size)) {
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

    /// Downloads a layer blob and unpacks it at the same time: one thread hashes and writes the
    /// blob, another unpacks the same bytes into `tmp/`. The unpacked directory is renamed into
    /// place only when both the blob digest and the diff-id verified.
    async fn fetch_and_unpack(
        &self,
        client: &oci_client::Client,
        reference: &oci_client::Reference,
        desc: &Descriptor,
        diff_id: &Digest,
    ) -> Result<(), ImageError> {
        let registry = reference.resolve_registry().to_string();
        let mut sized = client
            .pull_blob_stream(reference, &desc.to_oci())
            .await
            .map_err(|source| ImageError::Registry {
                registry: registry.clone(),
                source,
            })?;
        let (wtx, mut wrx) = tokio::sync::mpsc::channel::<bytes::Bytes>(64);
        let (utx, urx) = tokio::sync::mpsc::channel::<bytes::Bytes>(64);
        let layout = self.layout.clone();
        let digest = desc.digest.clone();
        let max = desc.size;
        let writer = tokio::task::spawn_blocking(move || {
            let mut w = BlobWriter::create(&layout, max)?;
            while let Some(chunk) = wrx.blocking_recv() {
                w.write(&chunk)?;
            }
            w.commit(&layout, &digest)
        });
        let layout = self.layout.clone();
        let diff = diff_id.clone();
        let limits = self.limits;
        let unpacker = tokio::task::spawn_blocking(move || {
            let tmp = TempDir(layout.temp("unpack"));
            fs::create_dir(&tmp.0).map_err(ImageError::io("creating an unpack directory"))?;
            let reader = ChannelReader {
                rx: urx,
                cur: bytes::Bytes::new(),
            };
            unpack::unpack(reader, &tmp.0, &limits, Some(diff.as_str())).map_err(|source| {
                ImageError::Unpack {
                    layer: diff.to_string(),
                    source,
                }
            })?;
            Ok(tmp)
        });
        let mut stream_err = None;
        let mut unpacker_stopped = false;
        while let Some(chunk) = sized.stream.next().await {
            match chunk {
                Ok(c) => {
                    // A consumer that stops early failed; its result says why.
                    if utx.send(c.clone()).await.is_err() {
                        unpacker_stopped = true;
                        break;
                    }
                    if wtx.send(c).await.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    stream_err = Some(e);
                    break;
                }
            }
        }
        drop((wtx, utx));
        let written = writer.await.map_err(|e| ImageError::Task(e.to_string()))?;
        let unpacked = unpacker
            .await
            .map_err(|e| ImageError::Task(e.to_string()))?;
        if unpacker_stopped && unpacked.is_err() {
            return unpacked.map(drop);
        }
        // Otherwise the blob digest is the stronger statement about what went wrong.
        let n = written?;
        self.count(&self.stats.blobs_downloaded, 1);
        self.count(&self.stats.bytes_downloaded, n);
        if let Some(e) = stream_err {
            let _ = fs::remove_file(self.layout.blob(&desc.digest));
            return Err(ImageError::Io {
                what: format!("downloading {} from {registry}", desc.digest),
                source: e,
            });
        }
        let tmp = unpacked?;
        let layout = self.layout.clone();
        let diff = diff_id.clone();
        blocking(move || place_layer(&layout, tmp, &diff)).await
    }
}

/// A directory under `tmp/` removed on drop unless it was moved into place.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.0.as_os_str().is_empty() {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

/// Syncs the filesystem once and renames an unpacked directory to `layers/<diff>`.
fn place_layer(
    layout: &super::content::Layout,
    mut tmp: TempDir,
    diff: &Digest,
) -> Result<(), ImageError> {
    let dir = fs::File::open(&tmp.0).map_err(ImageError::io("opening an unpack directory"))?;
    nix::unistd::syncfs(&dir).map_err(|e| ImageError::io("syncing an unpacked layer")(e.into()))?;
    match fs::rename(&tmp.0, layout.layer(diff)) {
        Ok(()) => {
            tmp.0 = std::path::PathBuf::new();
            Ok(())
        }
        // Another process put the same layer in place first: theirs is as good as ours.
        Err(_) if layout.layer(diff).is_dir() => Ok(()),
        Err(e) => Err(ImageError::io("renaming an unpacked layer")(e)),
    }
}

/// The bytes of a download, read on a blocking thread as they arrive.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<bytes::Bytes>,
    cur: bytes::Bytes,
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => self.cur = b,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        bytes::Buf::advance(&mut self.cur, n);
        Ok(n)
    }
}

/// Unpacks blob `blob` into `tmp/`, checks its diff-id, syncs, and renames it to `layers/<diff>`.
pub(crate) fn unpack_into_place(
    layout: &super::content::Layout,
    blob: &Digest,
    diff: &Digest,
    limits: &unpack::UnpackLimits,
) -> Result<unpack::UnpackStats, ImageError> {
    let tmp = layout.temp("unpack");
    let res = (|| {
        fs::create_dir(&tmp).map_err(ImageError::io("creating an unpack directory"))?;
        let file = fs::File::open(layout.blob(blob))
            .map_err(ImageError::io(format!("opening blob {blob}")))?;
        let stats = unpack::unpack(file, &tmp, limits, Some(diff.as_str())).map_err(|source| {
            if matches!(source, unpack::UnpackError::DiffIdMismatch { .. }) {
                // The blob verified when it arrived; if its content no longer matches, drop it so
                // a retry fetches it again.
                let _ = fs::remove_file(layout.blob(blob));
            }
            ImageError::Unpack {
                layer: blob.to_string(),
                source,
            }
        })?;
        let dir = fs::File::open(&tmp).map_err(ImageError::io("opening an unpack directory"))?;
        nix::unistd::syncfs(&dir)
            .map_err(|e| ImageError::io("syncing an unpacked layer")(e.into()))?;
        match fs::rename(&tmp, layout.layer(diff)) {
            Ok(()) => Ok(stats),
            // Another process put the same layer in place first: theirs is as good as ours.
            Err(_) if layout.layer(diff).is_dir() => {
                let _ = fs::remove_dir_all(&tmp);
                Ok(stats)
            }
            Err(e) => Err(ImageError::io("renaming an unpacked layer")(e)),
        }
    })();
    if res.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    res
}
