//! Pulling from a registry: resolve the reference to a single-platform manifest (through an index
//! when there is one, choosing the store's platform), verify every manifest against its digest, and
//! hand it to `install`. Mirror endpoints are tried first, then the registry itself.

use std::sync::Once;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth as OciAuth;

use super::digest::Digest;
use super::install::Source;
use super::manifest::{self, ACCEPT, MAX_JSON, Parsed};
use super::registries::Endpoint;
use super::{Image, ImageError, ImageStore, RegistryAuth, blocking, record, reference};

/// rustls needs a process-wide crypto provider; whoever installs one first wins.
fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl ImageStore {
    /// Pulls `reference` (unless present with the same manifest) and unpacks its layers.
    pub async fn pull(&self, reference: &str, auth: &RegistryAuth) -> Result<Image, ImageError> {
        install_crypto_provider();
        let _gc = self.gc_lock.read().await;
        let r = reference::parse(reference)?;
        let endpoints = self.registries.endpoints(r.registry());
        let mut last = None;
        for ep in &endpoints {
            match self.pull_from(&r, ep, auth).await {
                Ok(i) => return Ok(i),
                Err(e) if ep.mirror => {
                    tracing::warn!(mirror = %ep.host, error = %e, "mirror failed, trying the next endpoint");
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| ImageError::Config("no endpoint".into())))
    }

    fn client_for(&self, ep: &Endpoint) -> oci_client::Client {
        let config = ClientConfig {
            protocol: if ep.plain_http {
                ClientProtocol::HttpsExcept(vec![ep.host.clone()])
            } else {
                ClientProtocol::Https
            },
            accept_invalid_certificates: ep.skip_verify,
            platform_resolver: None,
            connect_timeout: Some(std::time::Duration::from_secs(30)),
            read_timeout: Some(std::time::Duration::from_secs(300)),
            ..Default::default()
        };
        oci_client::Client::new(config)
    }

    fn auth_for(&self, r: &oci_client::Reference, ep: &Endpoint, auth: &RegistryAuth) -> OciAuth {
        let creds = auth
            .credentials_for(&ep.host)
            .or_else(|| {
                (!ep.mirror)
                    .then(|| auth.credentials_for(r.registry()))
                    .flatten()
            })
            .or_else(|| self.registries.host_config(&ep.host)?.auth.clone())
            .or_else(|| {
                (!ep.mirror)
                    .then(|| self.registries.host_config(r.registry())?.auth.clone())
                    .flatten()
            });
        match creds {
            Some((u, p)) => OciAuth::Basic(u, p),
            None => OciAuth::Anonymous,
        }
    }

    async fn pull_from(
        &self,
        r: &oci_client::Reference,
        ep: &Endpoint,
        auth: &RegistryAuth,
    ) -> Result<Image, ImageError> {
        let client = self.client_for(ep);
        let mut oref = r.clone();
        if ep.mirror {
            oref.set_mirror_registry(ep.host.clone());
        }
        let oauth = self.auth_for(r, ep, auth);
        let registry_err = |source| ImageError::Registry {
            registry: ep.host.clone(),
            source,
        };
        let (bytes, _) = client
            .pull_manifest_raw(&oref, &oauth, ACCEPT)
            .await
            .map_err(registry_err)?;
        let top_digest = Digest::of(&bytes);
        if let Some(want) = oref.digest() {
            Digest::parse(want)?.verify(&top_digest, "manifest")?;
        }
        check_size(&bytes)?;
        let top = manifest::parse(&bytes)?;
        let (manifest_bytes, manifest_digest, index) = match top {
            Parsed::Manifest(_) => (bytes, top_digest, None),
            Parsed::Index(entries) => {
                let desc = manifest::select(&entries, &self.platform).ok_or_else(|| {
                    ImageError::NoMatchingPlatform {
                        reference: r.whole(),
                        platform: self.platform.to_string(),
                    }
                })?;
                let by_digest = oref.clone_with_digest(desc.digest.to_string());
                let (mbytes, _) = client
                    .pull_manifest_raw(&by_digest, &oauth, ACCEPT)
                    .await
                    .map_err(registry_err)?;
                check_size(&mbytes)?;
                let d = Digest::of(&mbytes);
                desc.digest.verify(&d, "platform manifest")?;
                (mbytes, d, Some((bytes, top_digest)))
            }
        };
        let Parsed::Manifest(m) = manifest::parse(&manifest_bytes)? else {
            return Err(ImageError::invalid("manifest", "an index inside an index"));
        };
        let norm = r.whole();
        // Already here with the same manifest and every layer unpacked: nothing to fetch.
        let layout = self.layout.clone();
        let (n, md) = (norm.clone(), manifest_digest.clone());
        let current = blocking(move || {
            let Some(rec) = record::load(&layout, &n)? else {
                return Ok(None);
            };
            if rec.manifest_digest != md.as_str() {
                return Ok(None);
            }
            let image = rec.to_image(&layout)?;
            Ok(image.layers.iter().all(|l| l.is_dir()).then_some(image))
        })
        .await?;
        if let Some(image) = current {
            return Ok(image);
        }
        let layout = self.layout.clone();
        let (md, mb) = (manifest_digest.clone(), manifest_bytes.clone());
        let idx = index.clone();
        blocking(move || {
            layout.put_blob(&md, &mb, "manifest")?;
            if let Some((ib, id)) = idx {
                layout.put_blob(&id, &ib, "index")?;
            }
            Ok(())
        })
        .await?;
        let src = Source::Registry {
            client: &client,
            reference: &oref,
        };
        self.install(
            &src,
            &norm,
            &manifest_digest,
            index.as_ref().map(|(_, d)| d),
            &m,
        )
        .await
    }
}

fn check_size(bytes: &[u8]) -> Result<(), ImageError> {
    if bytes.len() as u64 > MAX_JSON {
        return Err(ImageError::invalid("manifest", "larger than 8 MiB"));
    }
    Ok(())
}
