//! Manifests, indexes and image configs as the store reads them: OCI and Docker schema-2 media
//! types alike, parsed leniently (unknown fields ignored) but with every digest validated before
//! it is used as a file name, and sizes checked to be non-negative.

use serde::Deserialize;

use super::digest::Digest;
use super::platform::Platform;
use super::{ImageConfig, ImageError};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// What a pull accepts: always both families, or registries answer 404 for the other one.
pub const ACCEPT: &[&str] = &[OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];
/// Manifests and configs bigger than this are refused (they are read whole into memory).
pub const MAX_JSON: u64 = 8 << 20;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    media_type: Option<String>,
    config: Option<RawDescriptor>,
    layers: Option<Vec<RawDescriptor>>,
    manifests: Option<Vec<RawDescriptor>>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct RawDescriptor {
    #[serde(default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    size: i64,
    platform: Option<RawPlatform>,
    annotations: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Deserialize, Clone)]
struct RawPlatform {
    os: String,
    architecture: String,
    variant: Option<String>,
}

/// A validated content descriptor.
#[derive(Debug, Clone)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    pub annotations: std::collections::BTreeMap<String, String>,
}

impl Descriptor {
    fn from_raw(r: RawDescriptor) -> Result<Self, ImageError> {
        Ok(Self {
            digest: Digest::parse(&r.digest)?,
            size: u64::try_from(r.size)
                .map_err(|_| ImageError::invalid("descriptor", "negative size"))?,
            media_type: r.media_type,
            annotations: r.annotations.unwrap_or_default(),
        })
    }

    /// Whether this layer must not be fetched (foreign / non-distributable layers).
    pub fn is_foreign(&self) -> bool {
        self.media_type.contains("foreign") || self.media_type.contains("nondistributable")
    }

    pub fn to_oci(&self) -> oci_client::manifest::OciDescriptor {
        oci_client::manifest::OciDescriptor {
            media_type: self.media_type.clone(),
            digest: self.digest.to_string(),
            size: self.size as i64,
            ..Default::default()
        }
    }
}

/// `(os, architecture, variant)` of an index entry.
pub type EntryPlatform = (String, String, Option<String>);

/// An index entry: the manifest and the platform it is for, if the index says.
pub type IndexEntry = (Descriptor, Option<EntryPlatform>);

/// A parsed manifest document.
#[derive(Debug)]
pub enum Parsed {
    Index(Vec<IndexEntry>),
    Manifest(Manifest),
}

/// A single-platform image manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub media_type: String,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// Parses a manifest or index.
pub fn parse(bytes: &[u8]) -> Result<Parsed, ImageError> {
    let raw: Raw = serde_json::from_slice(bytes).map_err(|e| ImageError::invalid("manifest", e))?;
    let mt = raw.media_type.clone().unwrap_or_default();
    if let Some(list) = raw.manifests {
        let mut out = Vec::with_capacity(list.len());
        for d in list {
            let p = d
                .platform
                .clone()
                .map(|p| (p.os, p.architecture, p.variant));
            out.push((Descriptor::from_raw(d)?, p));
        }
        return Ok(Parsed::Index(out));
    }
    let (Some(config), Some(layers)) = (raw.config, raw.layers) else {
        return Err(ImageError::invalid(
            "manifest",
            format!("media type {mt:?} is neither an image manifest nor an index"),
        ));
    };
    Ok(Parsed::Manifest(Manifest {
        media_type: if mt.is_empty() {
            OCI_MANIFEST.into()
        } else {
            mt
        },
        config: Descriptor::from_raw(config)?,
        layers: layers
            .into_iter()
            .map(Descriptor::from_raw)
            .collect::<Result<_, _>>()?,
    }))
}

/// Picks the entry of an index for `platform`: the first that matches, skipping attestations.
pub fn select<'a>(entries: &'a [IndexEntry], platform: &Platform) -> Option<&'a Descriptor> {
    entries.iter().find_map(|(d, p)| {
        let (os, arch, variant) = p.as_ref()?;
        platform.matches(os, arch, variant.as_deref()).then_some(d)
    })
}

#[derive(Deserialize)]
struct RawConfigFile {
    config: Option<RawContainerConfig>,
    rootfs: RawRootfs,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct RawContainerConfig {
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    env: Option<Vec<String>>,
    working_dir: Option<String>,
    user: Option<String>,
}

#[derive(Deserialize)]
struct RawRootfs {
    diff_ids: Vec<String>,
}

/// Parses an image config into what a container needs and the layers' diff-ids.
pub fn parse_config(bytes: &[u8]) -> Result<(ImageConfig, Vec<Digest>), ImageError> {
    let raw: RawConfigFile =
        serde_json::from_slice(bytes).map_err(|e| ImageError::invalid("image config", e))?;
    let c = raw.config.unwrap_or_default();
    let diff_ids = raw
        .rootfs
        .diff_ids
        .iter()
        .map(|d| Digest::parse(d))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((
        ImageConfig {
            entrypoint: c.entrypoint.unwrap_or_default(),
            cmd: c.cmd.unwrap_or_default(),
            env: c.env.unwrap_or_default(),
            working_dir: c.working_dir.unwrap_or_default(),
            user: c.user.unwrap_or_default(),
        },
        diff_ids,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn selects_platform_from_index() {
        let idx = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[
              {{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":1,"platform":{{"os":"linux","architecture":"amd64"}}}},
              {{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":1,"platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}},
              {{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":1,"platform":{{"os":"unknown","architecture":"unknown"}}}}]}}"#,
            d('a'),
            d('b'),
            d('c')
        );
        let Parsed::Index(entries) = parse(idx.as_bytes()).unwrap() else {
            panic!("not an index")
        };
        let arm = select(&entries, &Platform::parse("linux/arm64").unwrap()).unwrap();
        assert_eq!(arm.digest.to_string(), d('b'));
        let amd = select(&entries, &Platform::parse("linux/amd64").unwrap()).unwrap();
        assert_eq!(amd.digest.to_string(), d('a'));
        assert!(select(&entries, &Platform::parse("linux/s390x").unwrap()).is_none());
    }

    #[test]
    fn rejects_bad_digests_and_sizes() {
        let m = r#"{"config":{"digest":"sha256:../../etc","size":1},"layers":[]}"#;
        assert!(parse(m.as_bytes()).is_err());
        let m = format!(
            r#"{{"config":{{"digest":"{}","size":-1}},"layers":[]}}"#,
            d('a')
        );
        assert!(parse(m.as_bytes()).is_err());
        assert!(parse(b"{}").is_err());
        assert!(parse(b"not json").is_err());
    }

    #[test]
    fn reads_config() {
        let c = format!(
            r#"{{"architecture":"amd64","config":{{"Entrypoint":["/bin/sh"],"Env":["A=1"],"WorkingDir":"/w"}},"rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
            d('e')
        );
        let (cfg, ids) = parse_config(c.as_bytes()).unwrap();
        assert_eq!(cfg.entrypoint, ["/bin/sh"]);
        assert_eq!(cfg.working_dir, "/w");
        assert_eq!(ids.len(), 1);
    }
}
