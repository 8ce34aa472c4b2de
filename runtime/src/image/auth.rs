//! Registry credentials: none, basic, or Kubernetes `kubernetes.io/dockerconfigjson` pull secrets
//! (`{"auths":{"HOST":{"auth":base64(user:pass)}|{"username":..,"password":..}}}`). Secret keys are
//! matched by host after stripping a scheme and path; Docker Hub's aliases (`docker.io`,
//! `index.docker.io`, `registry-1.docker.io`, `https://index.docker.io/v1/`) are one host.
//! Passwords never appear in `Debug` output.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;

use super::ImageError;

/// Credentials for one pull, passed in by the caller.
#[derive(Debug, Clone, Default)]
pub enum RegistryAuth {
    /// No credentials (the anonymous bearer-token flow still runs when the registry asks for it).
    #[default]
    Anonymous,
    /// HTTP basic credentials (also used to obtain a bearer token when the registry asks for one).
    Basic { username: String, password: String },
    /// Pull secrets; the entry for the image's registry is used, anonymous if none matches.
    DockerConfig(DockerConfig),
}

impl RegistryAuth {
    /// The `(username, password)` this auth gives for `host` (`host[:port]`), if any.
    pub fn credentials_for(&self, host: &str) -> Option<(String, String)> {
        match self {
            RegistryAuth::Anonymous => None,
            RegistryAuth::Basic { username, password } => {
                Some((username.clone(), password.clone()))
            }
            RegistryAuth::DockerConfig(c) => c.lookup(host),
        }
    }
}

/// Credentials from one or more `dockerconfigjson` documents, by normalised host.
#[derive(Clone, Default)]
pub struct DockerConfig {
    auths: BTreeMap<String, (String, String)>,
}

impl fmt::Debug for DockerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DockerConfig")
            .field("hosts", &self.auths.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[derive(serde::Deserialize)]
struct ConfigJson {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(serde::Deserialize)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

impl DockerConfig {
    /// Parses a `.dockerconfigjson` document (the decoded secret data).
    pub fn from_json(bytes: &[u8]) -> Result<Self, ImageError> {
        let mut out = Self::default();
        out.add_json(bytes)?;
        Ok(out)
    }

    /// Adds the entries of another `.dockerconfigjson` document (the first entry per host wins).
    pub fn add_json(&mut self, bytes: &[u8]) -> Result<(), ImageError> {
        let parsed: ConfigJson = serde_json::from_slice(bytes)
            .map_err(|e| ImageError::Config(format!("pull secret is not dockerconfigjson: {e}")))?;
        for (key, entry) in parsed.auths {
            let creds = match (entry.username, entry.password, entry.auth) {
                (Some(u), Some(p), _) if !u.is_empty() => (u, p),
                (_, _, Some(auth)) => decode_auth(&auth)?,
                _ => continue,
            };
            self.auths.entry(normalize_host(&key)).or_insert(creds);
        }
        Ok(())
    }

    /// The credentials for `host`, Docker Hub aliases included.
    pub fn lookup(&self, host: &str) -> Option<(String, String)> {
        self.auths.get(&normalize_host(host)).cloned()
    }
}

fn decode_auth(auth: &str) -> Result<(String, String), ImageError> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .map_err(|e| ImageError::Config(format!("pull secret auth is not base64: {e}")))?;
    let text = String::from_utf8(raw)
        .map_err(|_| ImageError::Config("pull secret auth is not UTF-8".into()))?;
    let (u, p) = text
        .split_once(':')
        .ok_or_else(|| ImageError::Config("pull secret auth is not user:password".into()))?;
    Ok((u.to_string(), p.to_string()))
}

/// `https://index.docker.io/v1/` → `docker.io`, `http://h:5000/x` → `h:5000`.
pub fn normalize_host(key: &str) -> String {
    let key = key.trim();
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = key.split('/').next().unwrap_or("").to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".to_string()
        }
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pull_secrets_and_matches_hub_aliases() {
        let json = br#"{"auths":{
            "https://index.docker.io/v1/":{"auth":"dXNlcjpwYTpzcw=="},
            "127.0.0.1:5000":{"username":"a","password":"b"},
            "empty.example":{}
        }}"#;
        let c = DockerConfig::from_json(json).unwrap();
        assert_eq!(c.lookup("docker.io"), Some(("user".into(), "pa:ss".into())));
        assert_eq!(
            c.lookup("registry-1.docker.io"),
            Some(("user".into(), "pa:ss".into()))
        );
        assert_eq!(c.lookup("127.0.0.1:5000"), Some(("a".into(), "b".into())));
        assert_eq!(c.lookup("quay.io"), None);
        assert_eq!(c.lookup("empty.example"), None);
        assert!(!format!("{c:?}").contains("pa:ss"));
        assert!(DockerConfig::from_json(b"{\"auths\":{\"h\":{\"auth\":\"!!\"}}}").is_err());
        assert!(DockerConfig::from_json(b"\"x\"").is_err());
    }
}
