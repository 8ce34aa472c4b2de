//! Image records: what a reference resolved to (manifest, config, layers). One JSON file per
//! reference under `refs/`, named by the sha256 of the normalised reference, written atomically
//! (temp file, fsync, rename) only after every layer it names is unpacked.

use std::fs;

use serde::{Deserialize, Serialize};

use super::content::{Layout, write_atomic};
use super::digest::Digest;
use super::{Image, ImageConfig, ImageError};

/// The stored form of an image.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageRecord {
    pub reference: String,
    /// Config digest.
    pub id: String,
    pub manifest_digest: String,
    /// The index the manifest was chosen from, if any.
    #[serde(default)]
    pub index_digest: Option<String>,
    pub config: ImageConfig,
    pub layers: Vec<LayerRecord>,
    /// Sum of the compressed layer sizes plus the config.
    pub size: u64,
}

/// One layer of an image.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerRecord {
    /// Digest of the (compressed) blob.
    pub digest: String,
    /// Digest of the uncompressed tar: names the unpacked directory.
    pub diff_id: String,
    pub size: u64,
}

impl ImageRecord {
    pub(crate) fn to_image(&self, layout: &Layout) -> Result<Image, ImageError> {
        let layers = self
            .layers
            .iter()
            .map(|l| Digest::parse(&l.diff_id).map(|d| layout.layer(&d)))
            .collect::<Result<_, _>>()?;
        Ok(Image {
            reference: self.reference.clone(),
            id: self.id.clone(),
            manifest_digest: self.manifest_digest.clone(),
            config: self.config.clone(),
            layers,
            size: self.size,
        })
    }
}

fn path(layout: &Layout, reference: &str) -> std::path::PathBuf {
    layout
        .refs_dir()
        .join(format!("{}.json", Digest::of(reference.as_bytes()).hex()))
}

pub(crate) fn save(layout: &Layout, rec: &ImageRecord) -> Result<(), ImageError> {
    let bytes = serde_json::to_vec_pretty(rec).map_err(|e| ImageError::invalid("record", e))?;
    write_atomic(
        &layout.temp("ref"),
        &path(layout, &rec.reference),
        &bytes,
        true,
    )
}

pub(crate) fn load(layout: &Layout, reference: &str) -> Result<Option<ImageRecord>, ImageError> {
    match fs::read(path(layout, reference)) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| ImageError::invalid(format!("record of {reference}"), e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ImageError::io(format!("reading record of {reference}"))(e)),
    }
}

pub(crate) fn list(layout: &Layout) -> Result<Vec<ImageRecord>, ImageError> {
    let mut out = Vec::new();
    let rd = fs::read_dir(layout.refs_dir()).map_err(ImageError::io("listing images"))?;
    for e in rd.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "json")
            && let Ok(b) = fs::read(&p)
        {
            match serde_json::from_slice::<ImageRecord>(&b) {
                Ok(r) => out.push(r),
                Err(err) => tracing::warn!(path = %p.display(), error = %err, "bad image record"),
            }
        }
    }
    out.sort_by(|a, b| a.reference.cmp(&b.reference));
    Ok(out)
}

pub(crate) fn remove(layout: &Layout, reference: &str) -> Result<bool, ImageError> {
    match fs::remove_file(path(layout, reference)) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(ImageError::io(format!("removing {reference}"))(e)),
    }
}
