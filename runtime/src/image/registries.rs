//! Registry settings: plain-HTTP registries (`--insecure-registry`), and a containerd/k3s style
//! `registries.yaml` with mirrors and per-host auth/TLS settings:
//!
//! ```yaml
//! mirrors:
//!   docker.io:
//!     endpoint: ["http://127.0.0.1:5000"]
//! configs:
//!   "127.0.0.1:5000":
//!     auth: { username: u, password: p }
//!     tls: { insecure_skip_verify: true }
//! ```
//!
//! Mirror endpoints are tried in order, then the registry itself (as containerd does). An endpoint
//! with an `http://` scheme is reached over plain HTTP; without a scheme it is HTTPS unless its host
//! is listed as insecure. Plain HTTP is never used for any other registry.

use std::collections::BTreeMap;
use std::path::Path;

use super::ImageError;
use super::auth::normalize_host;

/// Registry settings shared by every pull of a store.
#[derive(Debug, Clone, Default)]
pub struct RegistryConfig {
    /// `HOST:PORT` of registries that may be reached over plain HTTP.
    pub insecure: Vec<String>,
    /// Registry host → mirror endpoints (URLs or `host:port`), tried in order before the host.
    pub mirrors: BTreeMap<String, Vec<String>>,
    /// Per-host settings (the host of a registry or of a mirror endpoint).
    pub configs: BTreeMap<String, HostConfig>,
}

/// Settings for one host.
#[derive(Clone, Default)]
pub struct HostConfig {
    /// `(username, password)` used when the caller passes no credentials for this host.
    pub auth: Option<(String, String)>,
    /// Accept any TLS certificate from this host.
    pub insecure_skip_verify: bool,
}

impl std::fmt::Debug for HostConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostConfig")
            .field("auth", &self.auth.as_ref().map(|(u, _)| u))
            .field("insecure_skip_verify", &self.insecure_skip_verify)
            .finish()
    }
}

/// One place to try for a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `host[:port]` to connect to.
    pub host: String,
    pub plain_http: bool,
    pub skip_verify: bool,
    /// Whether this is a mirror rather than the registry itself.
    pub mirror: bool,
}

#[derive(serde::Deserialize, Default)]
struct FileYaml {
    #[serde(default)]
    mirrors: BTreeMap<String, MirrorYaml>,
    #[serde(default)]
    configs: BTreeMap<String, ConfigYaml>,
}

#[derive(serde::Deserialize, Default)]
struct MirrorYaml {
    #[serde(default)]
    endpoint: Vec<String>,
}

#[derive(serde::Deserialize, Default)]
struct ConfigYaml {
    auth: Option<AuthYaml>,
    tls: Option<TlsYaml>,
}

#[derive(serde::Deserialize, Default)]
struct AuthYaml {
    username: Option<String>,
    password: Option<String>,
    auth: Option<String>,
}

#[derive(serde::Deserialize, Default)]
struct TlsYaml {
    #[serde(default)]
    insecure_skip_verify: bool,
}

impl RegistryConfig {
    /// Reads a `registries.yaml` file and merges it into `self`.
    pub fn load_file(&mut self, path: &Path) -> Result<(), ImageError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ImageError::Config(format!("{}: {e}", path.display())))?;
        self.merge_yaml(&text)
            .map_err(|e| ImageError::Config(format!("{}: {e}", path.display())))
    }

    /// Parses `registries.yaml` text and merges it into `self`.
    pub fn merge_yaml(&mut self, text: &str) -> Result<(), ImageError> {
        let file: FileYaml = if text.trim().is_empty() {
            FileYaml::default()
        } else {
            serde_saphyr::from_str(text).map_err(|e| ImageError::Config(e.to_string()))?
        };
        for (host, m) in file.mirrors {
            self.mirrors
                .entry(normalize_host(&host))
                .or_default()
                .extend(m.endpoint);
        }
        for (host, c) in file.configs {
            let auth = match c.auth {
                Some(AuthYaml {
                    username: Some(u),
                    password: Some(p),
                    ..
                }) => Some((u, p)),
                Some(AuthYaml { auth: Some(a), .. }) => {
                    let json = serde_json::json!({"auths": {"h": {"auth": a}}}).to_string();
                    super::auth::DockerConfig::from_json(json.as_bytes())?.lookup("h")
                }
                _ => None,
            };
            self.configs.insert(
                normalize_host(&host),
                HostConfig {
                    auth,
                    insecure_skip_verify: c.tls.is_some_and(|t| t.insecure_skip_verify),
                },
            );
        }
        Ok(())
    }

    /// The endpoints to try for `registry` (as written in the normalised reference), in order.
    pub fn endpoints(&self, registry: &str) -> Vec<Endpoint> {
        let key = normalize_host(registry);
        let mut out = Vec::new();
        for url in self.mirrors.get(&key).into_iter().flatten() {
            let (host, scheme) = match url.split_once("://") {
                Some((scheme, rest)) => (rest, Some(scheme)),
                None => (url.as_str(), None),
            };
            let host = host.split('/').next().unwrap_or("").to_string();
            if host.is_empty() {
                continue;
            }
            let plain_http = match scheme {
                Some(s) => s.eq_ignore_ascii_case("http"),
                None => self.is_insecure(&host),
            };
            out.push(self.endpoint(host, plain_http, true));
        }
        // Docker Hub's API lives on another host than its name.
        let host = if key == "docker.io" {
            "index.docker.io".to_string()
        } else {
            registry.to_string()
        };
        let plain_http = self.is_insecure(registry);
        out.push(self.endpoint(host, plain_http, false));
        out
    }

    fn endpoint(&self, host: String, plain_http: bool, mirror: bool) -> Endpoint {
        let skip_verify = self
            .host_config(&host)
            .is_some_and(|c| c.insecure_skip_verify);
        Endpoint {
            host,
            plain_http,
            skip_verify,
            mirror,
        }
    }

    fn is_insecure(&self, host: &str) -> bool {
        let key = normalize_host(host);
        self.insecure.iter().any(|h| normalize_host(h) == key)
    }

    /// The settings for `host`, if any.
    pub fn host_config(&self, host: &str) -> Option<&HostConfig> {
        self.configs.get(&normalize_host(host))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_registries_yaml_and_orders_endpoints() {
        let mut c = RegistryConfig {
            insecure: vec!["10.0.0.1:5000".into()],
            ..Default::default()
        };
        c.merge_yaml(
            r#"
mirrors:
  docker.io:
    endpoint:
      - "http://127.0.0.1:5000"
      - "https://mirror.example/v2"
      - "10.0.0.1:5000"
configs:
  "mirror.example":
    tls:
      insecure_skip_verify: true
  "127.0.0.1:5000":
    auth:
      username: u
      password: p
"#,
        )
        .unwrap();
        let eps = c.endpoints("docker.io");
        let hosts: Vec<_> = eps
            .iter()
            .map(|e| (e.host.as_str(), e.plain_http))
            .collect();
        assert_eq!(
            hosts,
            [
                ("127.0.0.1:5000", true),
                ("mirror.example", false),
                ("10.0.0.1:5000", true),
                ("index.docker.io", false)
            ]
        );
        assert!(eps[1].skip_verify && eps[1].mirror && !eps[3].mirror);
        assert_eq!(
            c.host_config("127.0.0.1:5000").unwrap().auth,
            Some(("u".into(), "p".into()))
        );
        assert_eq!(c.endpoints("quay.io").len(), 1);
        assert!(!c.endpoints("quay.io")[0].plain_http);
        assert!(c.merge_yaml("mirrors: [").is_err());
    }
}
