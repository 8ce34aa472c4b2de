//! Downloads from a registry. Bytes are hashed and written on a blocking thread while the network
//! side keeps reading; a blob gets its final name only if its digest verifies. Layers are unpacked
//! while they download (a second thread reads the same bytes), and the unpacked directory is put in
//! place only when both the blob digest and the diff-id verified.

use std::fs;

use futures::StreamExt;

use super::content::BlobWriter;
use super::digest::Digest;
use super::layer::{TempDir, place_layer};
use super::manifest::Descriptor;
use super::{ImageError, ImageStore, blocking, unpack};

/// Starts downloading `desc`'s blob; also returns the registry's name for error messages.
async fn open_blob(
    client: &oci_client::Client,
    reference: &oci_client::Reference,
    desc: &Descriptor,
) -> Result<(String, oci_client::client::SizedStream), ImageError> {
    let registry = reference.resolve_registry().to_string();
    match client.pull_blob_stream(reference, &desc.to_oci()).await {
        Ok(sized) => Ok((registry, sized)),
        Err(source) => Err(ImageError::Registry { registry, source }),
    }
}

impl ImageStore {
    pub(crate) async fn download(
        &self,
        client: &oci_client::Client,
        reference: &oci_client::Reference,
        desc: &Descriptor,
    ) -> Result<(), ImageError> {
        let (registry, mut sized) = open_blob(client, reference, desc).await?;
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

    /// Downloads a layer blob and unpacks it at the same time: one thread hashes and writes the
    /// blob, another unpacks the same bytes into `tmp/`. The unpacked directory is renamed into
    /// place only when both the blob digest and the diff-id verified.
    pub(crate) async fn fetch_and_unpack(
        &self,
        client: &oci_client::Client,
        reference: &oci_client::Reference,
        desc: &Descriptor,
        diff_id: &Digest,
    ) -> Result<(), ImageError> {
        let (registry, mut sized) = open_blob(client, reference, desc).await?;
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
            let tmp = TempDir::create(&layout)?;
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
