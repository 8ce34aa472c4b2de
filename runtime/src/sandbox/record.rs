//! `sandbox.json`: what a sandbox is, persisted so a restarted k1s finds its sandboxes again.
//! Written last during create (atomically), so its presence means the sandbox was complete.

use std::io::Read;
use std::net::Ipv4Addr;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{Result, Sandbox, SandboxError, files, namespaces};

/// File name of the record inside a sandbox directory.
pub(crate) const FILE: &str = "sandbox.json";
/// The record is tiny; a larger file is not ours.
const MAX_LEN: u64 = 64 * 1024;

/// A sandbox's persisted facts; every path is derived from its directory.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) id: String,
    pub(crate) hostname: String,
    pub(crate) host_network: bool,
    pub(crate) ip: Option<Ipv4Addr>,
}

impl Record {
    /// The sandbox as handed to callers, with paths under `dir`.
    pub(crate) fn sandbox(&self, dir: &Path) -> Sandbox {
        let ns = dir.join("ns");
        Sandbox {
            id: self.id.clone(),
            hostname: self.hostname.clone(),
            namespaces: namespaces::kinds(self.host_network)
                .iter()
                .map(|k| (k.to_string(), ns.join(k)))
                .collect(),
            ip: self.ip.map(Into::into),
            hosts: dir.join("hosts"),
            hostname_file: dir.join("hostname"),
            resolv_conf: dir.join("resolv.conf"),
        }
    }

    /// Reads the record of the sandbox in `dir`; `None` if it has none (an unfinished create).
    pub(crate) fn load(dir: &Path) -> Result<Option<Record>> {
        let path = dir.join(FILE);
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(SandboxError::io("opening", &path, e)),
        };
        let mut buf = Vec::new();
        file.take(MAX_LEN)
            .read_to_end(&mut buf)
            .map_err(|e| SandboxError::io("reading", &path, e))?;
        serde_json::from_slice(&buf)
            .map(Some)
            .map_err(|source| SandboxError::Record { path, source })
    }

    /// Writes the record atomically.
    pub(crate) fn save(&self, dir: &Path) -> Result<()> {
        let path = dir.join(FILE);
        let json = serde_json::to_vec(self).map_err(|source| SandboxError::Record {
            path: path.clone(),
            source,
        })?;
        files::write_atomic(&path, &json)
    }
}
