//! Garbage collection: delete blobs and unpacked layers that no image record references. A layer
//! is also kept if the caller says a container uses it, or if any overlay mount of this host lists
//! it (read from `/proc/self/mountinfo`), so a running container never loses its lower dirs. GC
//! holds the store's lock exclusively, so pulls in this process never see their content vanish.

use std::collections::HashSet;
use std::fs;
use std::path::PathBuf;

use super::{ImageError, ImageStore, blocking, record};

/// What a GC removed.
#[derive(Debug, Default, Clone)]
pub struct GcStats {
    pub blobs_removed: u64,
    pub layers_removed: u64,
    pub bytes_freed: u64,
}

impl ImageStore {
    /// Deletes unreferenced blobs and layers; `in_use` are layer directories containers use.
    pub async fn gc(&self, in_use: &HashSet<PathBuf>) -> Result<GcStats, ImageError> {
        let _g = self.gc_lock.write().await;
        let layout = self.layout.clone();
        let mut keep_layers = in_use.clone();
        keep_layers.extend(mounted_lowerdirs());
        blocking(move || {
            let mut keep_blobs = HashSet::new();
            for r in record::list(&layout)? {
                keep_blobs.insert(r.id.clone());
                keep_blobs.insert(r.manifest_digest.clone());
                keep_blobs.extend(r.index_digest.clone());
                for l in &r.layers {
                    keep_blobs.insert(l.digest.clone());
                    if let Ok(d) = super::digest::Digest::parse(&l.diff_id) {
                        keep_layers.insert(layout.layer(&d));
                    }
                }
            }
            let mut stats = GcStats::default();
            for e in fs::read_dir(layout.blobs_dir())
                .map_err(ImageError::io("listing blobs"))?
                .flatten()
            {
                let name = format!("sha256:{}", e.file_name().to_string_lossy());
                if !keep_blobs.contains(&name) {
                    let len = e.metadata().map(|m| m.len()).unwrap_or(0);
                    if fs::remove_file(e.path()).is_ok() {
                        stats.blobs_removed += 1;
                        stats.bytes_freed += len;
                    }
                }
            }
            for e in fs::read_dir(layout.layers_dir())
                .map_err(ImageError::io("listing layers"))?
                .flatten()
            {
                if !keep_layers.contains(&e.path()) {
                    fs::remove_dir_all(e.path())
                        .map_err(ImageError::io(format!("removing {}", e.path().display())))?;
                    stats.layers_removed += 1;
                }
            }
            super::content::clean_tmp(&layout, std::time::Duration::from_secs(3600));
            Ok(stats)
        })
        .await
    }
}

/// Every `lowerdir=` (and `upperdir=`) path of the overlay mounts visible to this process.
fn mounted_lowerdirs() -> HashSet<PathBuf> {
    let Ok(text) = fs::read_to_string("/proc/self/mountinfo") else {
        return HashSet::new();
    };
    let mut out = HashSet::new();
    for line in text.lines().filter(|l| l.contains(" - overlay ")) {
        let Some(opts) = line.rsplit(' ').next() else {
            continue;
        };
        for opt in opts.split(',') {
            if let Some(dirs) = opt.strip_prefix("lowerdir=") {
                out.extend(dirs.split(':').map(PathBuf::from));
            }
        }
    }
    out
}
