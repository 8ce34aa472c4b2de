//! Unpacked layers: a layer is unpacked into a fresh directory under `tmp/`, the filesystem is
//! synced once, and only then is the directory renamed to `layers/sha256/<diff-id>`, so a partial
//! unpack never has the final name. Whatever fails removes its temp directory.

use std::fs;
use std::path::PathBuf;

use super::ImageError;
use super::content::Layout;
use super::digest::Digest;
use super::unpack::{UnpackError, UnpackLimits, UnpackStats, unpack};

/// A fresh directory under `tmp/`, removed on drop unless it was moved into place.
pub(crate) struct TempDir(pub PathBuf);

impl TempDir {
    pub fn create(layout: &Layout) -> Result<Self, ImageError> {
        let t = TempDir(layout.temp("unpack"));
        fs::create_dir(&t.0).map_err(ImageError::io("creating an unpack directory"))?;
        Ok(t)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.0.as_os_str().is_empty() {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

/// Syncs the filesystem once and renames an unpacked directory to `layers/<diff>`.
pub(crate) fn place_layer(
    layout: &Layout,
    mut tmp: TempDir,
    diff: &Digest,
) -> Result<(), ImageError> {
    let dir = fs::File::open(&tmp.0).map_err(ImageError::io("opening an unpack directory"))?;
    nix::unistd::syncfs(&dir).map_err(|e| ImageError::io("syncing an unpacked layer")(e.into()))?;
    match fs::rename(&tmp.0, layout.layer(diff)) {
        Ok(()) => {
            tmp.0 = PathBuf::new();
            Ok(())
        }
        // Another process put the same layer in place first: theirs is as good as ours.
        Err(_) if layout.layer(diff).is_dir() => Ok(()),
        Err(e) => Err(ImageError::io("renaming an unpacked layer")(e)),
    }
}

/// Unpacks blob `blob` into `tmp/`, checks its diff-id, and puts it in place.
pub(crate) fn unpack_into_place(
    layout: &Layout,
    blob: &Digest,
    diff: &Digest,
    limits: &UnpackLimits,
) -> Result<UnpackStats, ImageError> {
    let tmp = TempDir::create(layout)?;
    let file = fs::File::open(layout.blob(blob))
        .map_err(ImageError::io(format!("opening blob {blob}")))?;
    let stats = unpack(file, &tmp.0, limits, Some(diff.as_str())).map_err(|source| {
        if matches!(source, UnpackError::DiffIdMismatch { .. }) {
            // The blob verified when it arrived; if its content no longer matches, drop it so
            // a retry fetches it again.
            let _ = fs::remove_file(layout.blob(blob));
        }
        ImageError::Unpack {
            layer: blob.to_string(),
            source,
        }
    })?;
    place_layer(layout, tmp, diff)?;
    Ok(stats)
}
