//! `hostPath` volumes: the path's type is checked as upstream's `hostPathTypeChecker` does
//! before any container of the pod starts.
//!
//! Invariants: `DirectoryOrCreate` creates the directory (0755) and `FileOrCreate` an empty
//! file (0644, parent directory created) only when nothing exists at the path; every other
//! type only inspects; `""` (unset) checks nothing.

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
use std::path::Path;

/// Why a hostPath volume cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum HostPathError {
    #[error("hostPath type check failed: {path} is not a {kind}")]
    WrongType { path: String, kind: &'static str },
    #[error("unsupported hostPath type {0:?}")]
    UnknownType(String),
    #[error("hostPath path {0:?} must be absolute")]
    Relative(String),
    #[error("creating {path}: {source}")]
    Create {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Checks (and for the `OrCreate` types, creates) `path` for hostPath type `ty`.
pub fn check(path: &str, ty: &str) -> Result<(), HostPathError> {
    if !path.starts_with('/') {
        return Err(HostPathError::Relative(path.to_string()));
    }
    let p = Path::new(path);
    let meta = fs::metadata(p).ok();
    let ft = meta.as_ref().map(fs::Metadata::file_type);
    let wrong = |kind| HostPathError::WrongType {
        path: path.to_string(),
        kind,
    };
    let create = |source| HostPathError::Create {
        path: path.to_string(),
        source,
    };
    match ty {
        "" => Ok(()),
        "DirectoryOrCreate" => match ft {
            Some(t) if t.is_dir() => Ok(()),
            Some(_) => Err(wrong("directory")),
            None => {
                fs::create_dir_all(p).map_err(create)?;
                use std::os::unix::fs::PermissionsExt as _;
                fs::set_permissions(p, fs::Permissions::from_mode(0o755)).map_err(create)
            }
        },
        "Directory" => ft
            .filter(|t| t.is_dir())
            .map(drop)
            .ok_or(wrong("directory")),
        "FileOrCreate" => match ft {
            Some(t) if t.is_file() => Ok(()),
            Some(_) => Err(wrong("file")),
            None => {
                if let Some(parent) = p.parent() {
                    fs::create_dir_all(parent).map_err(create)?;
                }
                match fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o644)
                    .open(p)
                {
                    Ok(_) => Ok(()),
                    Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
                    Err(e) => Err(create(e)),
                }
            }
        },
        "File" => ft.filter(|t| t.is_file()).map(drop).ok_or(wrong("file")),
        "Socket" => ft
            .filter(|t| t.is_socket())
            .map(drop)
            .ok_or(wrong("socket")),
        "CharDevice" => ft
            .filter(|t| t.is_char_device())
            .map(drop)
            .ok_or(wrong("character device")),
        "BlockDevice" => ft
            .filter(|t| t.is_block_device())
            .map(drop)
            .ok_or(wrong("block device")),
        other => Err(HostPathError::UnknownType(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_checked() {
        let d = std::env::temp_dir().join(format!("k1s-hp-{}", uuid::Uuid::new_v4().simple()));
        let ds = d.to_string_lossy().into_owned();
        assert!(check(&ds, "Directory").is_err());
        check(&ds, "DirectoryOrCreate").unwrap();
        check(&ds, "Directory").unwrap();
        assert!(check(&ds, "File").is_err());
        assert!(check(&ds, "FileOrCreate").is_err());
        let f = format!("{ds}/sub/f");
        check(&f, "FileOrCreate").unwrap();
        check(&f, "File").unwrap();
        assert!(check(&f, "Directory").is_err());
        assert!(check(&f, "DirectoryOrCreate").is_err());
        assert!(check(&f, "Socket").is_err());
        check("/dev/null", "CharDevice").unwrap();
        assert!(check("/dev/null", "BlockDevice").is_err());
        check("/nonexistent/anything", "").unwrap();
        assert!(check("relative", "").is_err());
        assert!(check(&ds, "Bogus").is_err());
        let sock = format!("{ds}/s.sock");
        let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        check(&sock, "Socket").unwrap();
        fs::remove_dir_all(d).unwrap();
    }
}
