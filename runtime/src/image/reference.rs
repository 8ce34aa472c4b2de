//! Image references normalised the way Docker does it: `busybox` → `docker.io/library/busybox:latest`,
//! `user/x` → `docker.io/user/x:latest`, `host:port/x` keeps its registry, `@sha256:` digests are
//! kept (a reference with only a digest gets no tag). The parser is oci-spec's (the distribution
//! reference grammar); this module only wraps it with the store's error type.

use oci_client::Reference;

use super::ImageError;

/// Parses `reference` into its normalised form.
pub fn parse(reference: &str) -> Result<Reference, ImageError> {
    let trimmed = reference.trim();
    trimmed
        .parse::<Reference>()
        .map_err(|e| ImageError::InvalidReference {
            reference: reference.to_string(),
            reason: e.to_string(),
        })
}

/// The normalised string form of `reference`, e.g. `docker.io/library/busybox:latest`.
pub fn normalize(reference: &str) -> Result<String, ImageError> {
    parse(reference).map(|r| r.whole())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_like_docker() {
        let d = format!("sha256:{}", "b".repeat(64));
        for (input, want) in [
            ("busybox", "docker.io/library/busybox:latest".to_string()),
            ("busybox:1.35", "docker.io/library/busybox:1.35".to_string()),
            ("user/x", "docker.io/user/x:latest".to_string()),
            (
                "docker.io/busybox",
                "docker.io/library/busybox:latest".to_string(),
            ),
            (
                "index.docker.io/library/busybox",
                "docker.io/library/busybox:latest".to_string(),
            ),
            ("127.0.0.1:5000/x/y:t", "127.0.0.1:5000/x/y:t".to_string()),
            ("localhost:5000/x", "localhost:5000/x:latest".to_string()),
            (
                &format!("busybox@{d}"),
                format!("docker.io/library/busybox@{d}"),
            ),
            (&format!("quay.io/a/b:1@{d}"), format!("quay.io/a/b:1@{d}")),
        ] {
            assert_eq!(normalize(input).unwrap(), want, "{input}");
        }
        for bad in ["", "a b/c", "a@sha256:123", "x:y:z"] {
            assert!(normalize(bad).is_err(), "{bad}");
        }
    }
}
