//! Air-gapped import of image archives: OCI layouts (`oci-layout`, `index.json`, `blobs/`) and
//! `docker save` archives (`manifest.json` with `Config`, `RepoTags`, `Layers`), both as tar files.
//!
//! The archive is hostile input: only regular files and directories are extracted (into a fresh
//! directory under `tmp/`, paths normalised, `..` rejected); symlinks (which `docker save` uses for
//! repeated layers) are remembered by name and resolved inside the archive. Every blob is hashed
//! before it enters the store. A `docker save` image gets a synthesised Docker schema-2 manifest.

use std::collections::HashMap;
use std::fs;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use super::content::Layout;
use super::digest::Digest;
use super::install::Source;
use super::manifest::{self, DOCKER_MANIFEST, MAX_JSON, Parsed};
use super::unpack::normalize_entry_path;
use super::{Image, ImageError, ImageStore, blocking, reference};

/// Caps for archive members.
const MAX_MEMBERS: u64 = 100_000;

struct Extracted {
    dir: PathBuf,
    links: HashMap<PathBuf, PathBuf>,
}

impl Drop for Extracted {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl Extracted {
    /// The extracted file for archive path `name`, following archive symlinks.
    fn file(&self, name: &str) -> Result<PathBuf, ImageError> {
        let mut rel = normalize_entry_path(name.as_bytes())
            .map_err(|r| ImageError::invalid("archive", format!("{name:?}: {r}")))?;
        for _ in 0..8 {
            match self.links.get(&rel) {
                Some(t) => rel = t.clone(),
                None => break,
            }
        }
        let p = self.dir.join(&rel);
        if !p.is_file() {
            return Err(ImageError::invalid(
                "archive",
                format!("{name:?} is missing"),
            ));
        }
        Ok(p)
    }

    fn read_small(&self, name: &str) -> Result<Vec<u8>, ImageError> {
        let p = self.file(name)?;
        let mut out = Vec::new();
        fs::File::open(&p)
            .and_then(|f| f.take(MAX_JSON + 1).read_to_end(&mut out))
            .map_err(ImageError::io(format!("reading {name}")))?;
        if out.len() as u64 > MAX_JSON {
            return Err(ImageError::invalid(
                "archive",
                format!("{name} is too large"),
            ));
        }
        Ok(out)
    }
}

fn extract(layout: &Layout, archive: &Path) -> Result<Extracted, ImageError> {
    let dir = layout.temp("import");
    fs::create_dir(&dir).map_err(ImageError::io("creating an import directory"))?;
    let mut ex = Extracted {
        dir,
        links: HashMap::new(),
    };
    let f = fs::File::open(archive)
        .map_err(ImageError::io(format!("opening {}", archive.display())))?;
    let mut tar = tar::Archive::new(BufReader::with_capacity(1 << 20, f));
    let bad = |e: std::io::Error| ImageError::invalid("archive", e);
    let mut count = 0u64;
    for entry in tar.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        count += 1;
        if count > MAX_MEMBERS {
            return Err(ImageError::invalid("archive", "too many members"));
        }
        let raw = entry.path_bytes().into_owned();
        let rel = normalize_entry_path(&raw).map_err(|r| ImageError::invalid("archive", r))?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            let target = entry
                .link_name_bytes()
                .ok_or_else(|| ImageError::invalid("archive", "link without target"))?;
            // Symlinks are relative to their directory, hardlinks to the archive root.
            let joined = if kind.is_symlink() && !target.starts_with(b"/") {
                let mut p = rel.parent().unwrap_or(Path::new("")).as_os_str().to_owned();
                p.push("/");
                p.push(std::ffi::OsStr::new(&*String::from_utf8_lossy(&target)));
                lexical_normalize(Path::new(&p))
            } else {
                normalize_entry_path(&target).ok()
            };
            if let Some(t) = joined {
                ex.links.insert(rel, t);
            }
            continue;
        }
        if !kind.is_file() {
            continue;
        }
        // Parents are created here and never replaced by links, so the path stays inside.
        let dest = ex.dir.join(&rel);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(ImageError::io("extracting the archive"))?;
        }
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&dest)
            .map_err(ImageError::io(format!("extracting {}", rel.display())))?;
        std::io::copy(&mut entry, &mut out).map_err(ImageError::io("extracting the archive"))?;
    }
    Ok(ex)
}

/// Resolves `a/b/../c` lexically; `None` if it climbs above the root.
fn lexical_normalize(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::Normal(n) => out.push(n),
            // `pop` in the guard: climbing works until there is nothing left to climb out of.
            std::path::Component::ParentDir if !out.pop() => return None,
            _ => {}
        }
    }
    Some(out)
}

/// Moves an extracted file into the blob store (verified), unless the store has it already.
fn adopt(layout: &Layout, src: &Path, d: &Digest) -> Result<(), ImageError> {
    if layout.has_blob(d, None) {
        return Ok(());
    }
    let tmp = layout.temp("import-blob");
    fs::rename(src, &tmp)
        .or_else(|_| fs::copy(src, &tmp).map(|_| ()))
        .map_err(ImageError::io("moving an imported blob"))?;
    layout.adopt_blob(&tmp, d, &format!("archive blob {d}"))
}

/// One image found in an archive.
struct Found {
    names: Vec<String>,
    /// A bare tag from the archive, for the repository the caller names.
    tag: Option<String>,
    manifest_digest: Digest,
    index_digest: Option<Digest>,
    manifest: manifest::Manifest,
}

impl ImageStore {
    /// Imports every image of an OCI-layout or `docker save` tar archive. `name` names images the
    /// archive leaves unnamed; for an OCI entry tagged only with a bare tag, `name`'s repository
    /// gets that tag. Returns the images stored.
    pub async fn import(
        &self,
        archive: &Path,
        name: Option<&str>,
    ) -> Result<Vec<Image>, ImageError> {
        let _gc = self.gc_lock.read().await;
        let layout = self.layout.clone();
        let archive = archive.to_path_buf();
        let platform = self.platform.clone();
        let default_name = name.map(reference::parse).transpose()?;
        let found = blocking(move || {
            let ex = extract(&layout, &archive)?;
            if ex.file("index.json").is_ok() {
                oci_layout(&layout, &ex, &platform)
            } else if ex.file("manifest.json").is_ok() {
                docker_save(&layout, &ex)
            } else {
                Err(ImageError::invalid(
                    "archive",
                    "neither an OCI layout (index.json) nor a docker save archive (manifest.json)",
                ))
            }
        })
        .await?;
        let mut out = Vec::new();
        for f in found {
            let mut names = f.names.clone();
            if names.is_empty()
                && let Some(n) = &default_name
            {
                names.push(match &f.tag {
                    Some(t) => {
                        reference::normalize(&format!("{}/{}:{t}", n.registry(), n.repository()))?
                    }
                    None => n.whole(),
                });
            }
            for n in names {
                out.push(
                    self.install(
                        &Source::Local,
                        &n,
                        &f.manifest_digest,
                        f.index_digest.as_ref(),
                        &f.manifest,
                    )
                    .await?,
                );
            }
        }
        if out.is_empty() {
            return Err(ImageError::invalid(
                "archive",
                "no named image in it (give a name to import it under)",
            ));
        }
        Ok(out)
    }
}

fn oci_layout(
    layout: &Layout,
    ex: &Extracted,
    platform: &super::Platform,
) -> Result<Vec<Found>, ImageError> {
    let blob_path = |d: &Digest| ex.file(&format!("blobs/sha256/{}", d.hex()));
    let load = |d: &Digest| -> Result<Vec<u8>, ImageError> {
        // Entries may share blobs that an earlier entry already moved into the store.
        if layout.has_blob(d, None) {
            return layout.read_blob(d, MAX_JSON);
        }
        let bytes = ex.read_small(&format!("blobs/sha256/{}", d.hex()))?;
        d.verify(&Digest::of(&bytes), "archive blob")?;
        Ok(bytes)
    };
    let index = ex.read_small("index.json")?;
    let Parsed::Index(entries) = manifest::parse(&index)? else {
        return Err(ImageError::invalid("index.json", "not an index"));
    };
    let mut out = Vec::new();
    for (desc, _) in &entries {
        // containerd names the image in full; the OCI annotation is a full reference (skopeo) or
        // just a tag (umoci), which is put on the repository the caller names.
        let mut names = Vec::new();
        let mut tag = None;
        if let Some(n) = desc.annotations.get("io.containerd.image.name") {
            names.push(reference::normalize(n)?);
        } else if let Some(n) = desc.annotations.get("org.opencontainers.image.ref.name") {
            if n.contains('/') || n.contains(':') {
                names.push(reference::normalize(n)?);
            } else {
                tag = Some(n.clone());
            }
        }
        let bytes = load(&desc.digest)?;
        let (mbytes, mdigest, index_digest) = match manifest::parse(&bytes)? {
            Parsed::Manifest(_) => (bytes, desc.digest.clone(), None),
            Parsed::Index(inner) => {
                let pick = manifest::select(&inner, platform).ok_or_else(|| {
                    ImageError::NoMatchingPlatform {
                        reference: names.first().cloned().unwrap_or_default(),
                        platform: platform.to_string(),
                    }
                })?;
                layout.put_blob(&desc.digest, &bytes, "index")?;
                (
                    load(&pick.digest)?,
                    pick.digest.clone(),
                    Some(desc.digest.clone()),
                )
            }
        };
        let Parsed::Manifest(m) = manifest::parse(&mbytes)? else {
            return Err(ImageError::invalid("manifest", "an index inside an index"));
        };
        layout.put_blob(&mdigest, &mbytes, "manifest")?;
        for d in std::iter::once(&m.config).chain(m.layers.iter().filter(|l| !l.is_foreign())) {
            if !layout.has_blob(&d.digest, Some(d.size)) {
                adopt(layout, &blob_path(&d.digest)?, &d.digest)?;
            }
        }
        out.push(Found {
            names,
            tag,
            manifest_digest: mdigest,
            index_digest,
            manifest: m,
        });
    }
    Ok(out)
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SaveEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn docker_save(layout: &Layout, ex: &Extracted) -> Result<Vec<Found>, ImageError> {
    let list: Vec<SaveEntry> = serde_json::from_slice(&ex.read_small("manifest.json")?)
        .map_err(|e| ImageError::invalid("manifest.json", e))?;
    let mut out = Vec::new();
    for e in list {
        let config = ex.read_small(&e.config)?;
        let config_digest = Digest::of(&config);
        // The config names the diff-ids; checking it parses now gives a clear error early.
        manifest::parse_config(&config)?;
        layout.put_blob(&config_digest, &config, "config")?;
        let mut layers = Vec::new();
        for l in &e.layers {
            let path = ex.file(l)?;
            let d = super::content::hash_file(&path)?;
            let size = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            let mut head = [0u8; 4];
            let n = fs::File::open(&path)
                .and_then(|mut f| f.read(&mut head))
                .unwrap_or(0);
            let media_type = if head[..n].starts_with(&[0x1f, 0x8b]) {
                "application/vnd.docker.image.rootfs.diff.tar.gzip"
            } else if head[..n].starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
                "application/vnd.oci.image.layer.v1.tar+zstd"
            } else {
                "application/vnd.docker.image.rootfs.diff.tar"
            };
            if !layout.has_blob(&d, None) {
                // A layer listed twice is one file; copy so the second mention still finds it.
                let tmp = layout.temp("import-blob");
                fs::copy(&path, &tmp).map_err(ImageError::io("copying an imported layer"))?;
                layout.adopt_blob(&tmp, &d, "archive layer")?;
            }
            layers.push(
                serde_json::json!({"mediaType": media_type, "size": size, "digest": d.as_str()}),
            );
        }
        let manifest_json = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": config.len(),
                "digest": config_digest.as_str(),
            },
            "layers": layers,
        });
        let mbytes =
            serde_json::to_vec(&manifest_json).map_err(|e| ImageError::invalid("manifest", e))?;
        let mdigest = Digest::of(&mbytes);
        layout.put_blob(&mdigest, &mbytes, "manifest")?;
        let Parsed::Manifest(m) = manifest::parse(&mbytes)? else {
            return Err(ImageError::invalid(
                "manifest",
                "synthesised manifest did not parse",
            ));
        };
        let names = e
            .repo_tags
            .unwrap_or_default()
            .iter()
            .map(|t| reference::normalize(t))
            .collect::<Result<Vec<_>, _>>()?;
        out.push(Found {
            names,
            tag: None,
            manifest_digest: mdigest,
            index_digest: None,
            manifest: m,
        });
    }
    Ok(out)
}
