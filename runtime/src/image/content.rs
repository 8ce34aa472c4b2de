//! The on-disk layout of the store and its atomic writes:
//!
//! ```text
//! <root>/blobs/sha256/<hex>     blobs by digest (manifests, configs, compressed layers)
//! <root>/layers/sha256/<hex>    unpacked layers by diff-id, shared by every image using them
//! <root>/refs/<hex>.json        image records, named by the sha256 of the normalised reference
//! <root>/tmp/                   downloads and unpacks in progress
//! ```
//!
//! Invariant: whatever has its final name is complete and verified. Blobs are written to `tmp/`,
//! hashed while written, and renamed only when the digest matches; a mismatch deletes the temp file.
//! Records are written to a temp file, fsynced and renamed.

use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::ImageError;
use super::digest::Digest;

/// Paths of the store.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub root: PathBuf,
}

impl Layout {
    pub fn create(root: &Path) -> Result<Self, ImageError> {
        let l = Self {
            root: root.to_path_buf(),
        };
        for d in [l.blobs_dir(), l.layers_dir(), l.refs_dir(), l.tmp_dir()] {
            fs::create_dir_all(&d).map_err(ImageError::io(format!("creating {}", d.display())))?;
        }
        Ok(l)
    }

    pub fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs/sha256")
    }
    pub fn layers_dir(&self) -> PathBuf {
        self.root.join("layers/sha256")
    }
    pub fn refs_dir(&self) -> PathBuf {
        self.root.join("refs")
    }
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }
    pub fn blob(&self, d: &Digest) -> PathBuf {
        self.blobs_dir().join(d.hex())
    }
    pub fn layer(&self, diff_id: &Digest) -> PathBuf {
        self.layers_dir().join(diff_id.hex())
    }
    /// A fresh path under `tmp/`.
    pub fn temp(&self, prefix: &str) -> PathBuf {
        self.tmp_dir()
            .join(format!("{prefix}-{:016x}", rand::random::<u64>()))
    }

    /// Whether the blob is stored (and has the expected size, when known).
    pub fn has_blob(&self, d: &Digest, size: Option<u64>) -> bool {
        match fs::metadata(self.blob(d)) {
            Ok(m) => size.is_none_or(|s| s == m.len()),
            Err(_) => false,
        }
    }

    /// Stores `bytes` as the blob `d` after checking its digest.
    pub fn put_blob(&self, d: &Digest, bytes: &[u8], what: &str) -> Result<(), ImageError> {
        d.verify(&Digest::of(bytes), what)?;
        if self.has_blob(d, Some(bytes.len() as u64)) {
            return Ok(());
        }
        write_atomic(&self.layout_tmp("blob"), &self.blob(d), bytes, false)
    }

    fn layout_tmp(&self, prefix: &str) -> PathBuf {
        self.temp(prefix)
    }

    /// Moves the file `src` (on the store's filesystem) into the blob store if it hashes to `d`;
    /// deletes it otherwise.
    pub fn adopt_blob(&self, src: &Path, d: &Digest, what: &str) -> Result<(), ImageError> {
        let actual = hash_file(src)?;
        if let Err(e) = d.verify(&actual, what) {
            let _ = fs::remove_file(src);
            return Err(e);
        }
        fs::rename(src, self.blob(d)).map_err(ImageError::io(format!("storing blob {d}")))
    }

    /// Reads a small blob (manifest, config) whole, at most `max` bytes.
    pub fn read_blob(&self, d: &Digest, max: u64) -> Result<Vec<u8>, ImageError> {
        let f = File::open(self.blob(d)).map_err(ImageError::io(format!("reading blob {d}")))?;
        let mut out = Vec::new();
        f.take(max + 1)
            .read_to_end(&mut out)
            .map_err(ImageError::io(format!("reading blob {d}")))?;
        if out.len() as u64 > max {
            return Err(ImageError::invalid(format!("blob {d}"), "too large"));
        }
        d.verify(&Digest::of(&out), "stored blob")?;
        Ok(out)
    }
}

/// sha256 of a file's contents.
pub(crate) fn hash_file(path: &Path) -> Result<Digest, ImageError> {
    let mut f = File::open(path).map_err(ImageError::io(format!("reading {}", path.display())))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(ImageError::io(format!("reading {}", path.display())))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(Digest::from_hasher(h))
}

/// Writes `bytes` to `tmp`, optionally fsyncs it, and renames it to `dest`.
pub(crate) fn write_atomic(
    tmp: &Path,
    dest: &Path,
    bytes: &[u8],
    fsync: bool,
) -> Result<(), ImageError> {
    let what = || format!("writing {}", dest.display());
    let res = (|| {
        let mut f = File::create(tmp)?;
        f.write_all(bytes)?;
        if fsync {
            f.sync_all()?;
        }
        fs::rename(tmp, dest)?;
        if fsync && let Some(dir) = dest.parent() {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if res.is_err() {
        let _ = fs::remove_file(tmp);
    }
    res.map_err(ImageError::io(what()))
}

/// A blob being downloaded: hashed as it is written, renamed into place only if it verifies.
/// Dropped without [`BlobWriter::commit`], it deletes its temp file.
pub(crate) struct BlobWriter {
    tmp: PathBuf,
    file: Option<BufWriter<File>>,
    hasher: Sha256,
    bytes: u64,
    max: u64,
}

impl BlobWriter {
    pub fn create(layout: &Layout, max: u64) -> Result<Self, ImageError> {
        let tmp = layout.temp("download");
        let file = File::create(&tmp).map_err(ImageError::io("creating a download file"))?;
        Ok(Self {
            tmp,
            file: Some(BufWriter::with_capacity(1 << 20, file)),
            hasher: Sha256::new(),
            bytes: 0,
            max,
        })
    }

    pub fn write(&mut self, chunk: &[u8]) -> Result<(), ImageError> {
        self.bytes += chunk.len() as u64;
        if self.bytes > self.max {
            return Err(ImageError::invalid(
                "blob",
                "larger than its descriptor says",
            ));
        }
        self.hasher.update(chunk);
        if let Some(f) = self.file.as_mut() {
            f.write_all(chunk)
                .map_err(ImageError::io("writing a download"))?;
        }
        Ok(())
    }

    /// Verifies the digest and renames the file to the blob's path.
    pub fn commit(mut self, layout: &Layout, d: &Digest) -> Result<u64, ImageError> {
        let hasher = std::mem::take(&mut self.hasher);
        d.verify(&Digest::from_hasher(hasher), &format!("blob {d}"))?;
        if let Some(f) = self.file.take() {
            f.into_inner()
                .map_err(|e| ImageError::io("writing a download")(e.into_error()))?;
        }
        fs::rename(&self.tmp, layout.blob(d)).map_err(ImageError::io(format!("storing {d}")))?;
        self.tmp = PathBuf::new();
        Ok(self.bytes)
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Removes `tmp/` entries older than `age` left by a crashed process (a running pull's are newer).
pub(crate) fn clean_tmp(layout: &Layout, age: std::time::Duration) {
    let Ok(rd) = fs::read_dir(layout.tmp_dir()) else {
        return;
    };
    for e in rd.flatten() {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|el| el > age);
        if old {
            let p = e.path();
            let _ = fs::remove_dir_all(&p).or_else(|_| fs::remove_file(&p));
        }
    }
}
