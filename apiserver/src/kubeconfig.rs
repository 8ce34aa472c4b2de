//! Writes the admin kubeconfig that kubectl and `kube` clients use to reach k1s.
//!
//! One cluster (server URL + CA data), one user (admin client certificate and key), one context,
//! selected as `current-context`. The file holds a private key, so it is created 0600 and replaced
//! atomically: a concurrent `kubectl` never reads a half-written file.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;

use crate::tls::{Pki, write_atomic};

/// Errors from writing a kubeconfig.
#[derive(Debug, thiserror::Error)]
pub enum KubeconfigError {
    /// The file or its directory could not be written.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The kubeconfig could not be serialized as YAML.
    #[error("serializing kubeconfig: {0}")]
    Serialize(#[from] serde_saphyr::SerializeError),
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Kubeconfig<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'a str,
    kind: &'a str,
    clusters: [Named<'a, Cluster<'a>>; 1],
    users: [Named<'a, User>; 1],
    contexts: [Named<'a, Context<'a>>; 1],
    current_context: &'a str,
}

#[derive(Serialize)]
struct Named<'a, T> {
    name: &'a str,
    #[serde(flatten)]
    item: T,
}

#[derive(Serialize)]
struct Cluster<'a> {
    cluster: ClusterInfo<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct ClusterInfo<'a> {
    server: &'a str,
    certificate_authority_data: String,
}

#[derive(Serialize)]
struct User {
    user: UserInfo,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct UserInfo {
    client_certificate_data: String,
    client_key_data: String,
}

#[derive(Serialize)]
struct Context<'a> {
    context: ContextInfo<'a>,
}

#[derive(Serialize)]
struct ContextInfo<'a> {
    cluster: &'a str,
    user: &'a str,
}

/// Renders the kubeconfig YAML for `server_url` with the admin credentials of `pki`.
///
/// The cluster, user and context are all named `context_name`.
pub fn render_kubeconfig(
    server_url: &str,
    pki: &Pki,
    context_name: &str,
) -> Result<String, KubeconfigError> {
    let config = Kubeconfig {
        api_version: "v1",
        kind: "Config",
        clusters: [Named {
            name: context_name,
            item: Cluster {
                cluster: ClusterInfo {
                    server: server_url,
                    certificate_authority_data: STANDARD.encode(&pki.ca_cert_pem),
                },
            },
        }],
        users: [Named {
            name: context_name,
            item: User {
                user: UserInfo {
                    client_certificate_data: STANDARD.encode(&pki.admin_cert_pem),
                    client_key_data: STANDARD.encode(&pki.admin_key_pem),
                },
            },
        }],
        contexts: [Named {
            name: context_name,
            item: Context {
                context: ContextInfo {
                    cluster: context_name,
                    user: context_name,
                },
            },
        }],
        current_context: context_name,
    };
    // Plain one-line scalars for the long base64 fields, as kubectl itself writes them.
    let mut options = serde_saphyr::SerializerOptions::default();
    options.prefer_block_scalars = false;
    Ok(serde_saphyr::to_string_with_options(&config, options)?)
}

/// Writes the admin kubeconfig to `path` (mode 0600, atomically, parent directories created).
///
/// A file that already has exactly this content and mode is left alone.
pub fn write_kubeconfig(
    path: &Path,
    server_url: &str,
    pki: &Pki,
    context_name: &str,
) -> Result<(), KubeconfigError> {
    let yaml = render_kubeconfig(server_url, pki, context_name)?;
    // Most starts would write the same bytes again; skip the fsyncs then.
    let unchanged = std::fs::metadata(path)
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o777 == 0o600)
        && std::fs::read(path).is_ok_and(|old| old == yaml.as_bytes());
    if unchanged {
        return Ok(());
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| KubeconfigError::Io {
            op: "create directory",
            path: parent.to_owned(),
            source,
        })?;
    }
    write_atomic(path, yaml.as_bytes(), 0o600).map_err(|source| KubeconfigError::Io {
        op: "write",
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Authenticator, UserInfo as User, require_auth};
    use crate::serve::serve;
    use crate::tls::{ensure_pki, server_config};
    use axum::Router;
    use axum::routing::get;
    use tokio_util::sync::CancellationToken;

    #[test]
    fn writes_private_parsable_file() {
        let tmp = tempfile::tempdir().unwrap();
        let pki = ensure_pki(&tmp.path().join("pki"), &[]).unwrap();
        let path = tmp.path().join("a/b/kubeconfig");
        write_kubeconfig(&path, "https://127.0.0.1:6443", &pki, "k1s").unwrap();
        // Unchanged: left alone (same inode). Changed: replaced by rename (new inode).
        let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
        let before = inode(&path);
        write_kubeconfig(&path, "https://127.0.0.1:6443", &pki, "k1s").unwrap();
        assert_eq!(inode(&path), before);
        write_kubeconfig(&path, "https://127.0.0.1:6444", &pki, "k1s").unwrap();
        assert_ne!(inode(&path), before);
        write_kubeconfig(&path, "https://127.0.0.1:6443", &pki, "k1s").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("\n    certificate-authority-data: LS0t"),
            "{text}"
        );

        let kc = kube::config::Kubeconfig::read_from(&path).unwrap();
        assert_eq!(kc.current_context.as_deref(), Some("k1s"));
        let cluster = kc.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.server.as_deref(), Some("https://127.0.0.1:6443"));
        let ca = cluster.certificate_authority_data.as_deref().unwrap();
        assert_eq!(STANDARD.decode(ca).unwrap(), pki.ca_cert_pem.as_bytes());
        let user = kc.auth_infos[0].auth_info.as_ref().unwrap();
        assert_eq!(
            STANDARD
                .decode(user.client_certificate_data.as_deref().unwrap())
                .unwrap(),
            pki.admin_cert_pem.as_bytes()
        );
        assert!(user.client_key_data.is_some());
        let ctx = kc.contexts[0].context.as_ref().unwrap();
        assert_eq!(
            (ctx.cluster.as_str(), ctx.user.as_deref()),
            ("k1s", Some("k1s"))
        );
    }

    /// The real client path: a `kube::Client` built from the written kubeconfig, over TLS with
    /// the admin client certificate.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn kube_client_from_kubeconfig() {
        let tmp = tempfile::tempdir().unwrap();
        let pki = ensure_pki(&tmp.path().join("pki"), &[]).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        let path = tmp.path().join("kubeconfig");
        write_kubeconfig(&path, &url, &pki, "k1s").unwrap();

        let auth = Authenticator::new(vec![(
            pki.admin_token.clone(),
            User {
                name: "k1s-admin".into(),
                groups: vec!["system:masters".into()],
            },
        )]);
        let app = Router::new()
            .route(
                "/version",
                get(|| async {
                    axum::Json(serde_json::json!({
                        "major": "1", "minor": "32", "gitVersion": "v1.32.0-k1s",
                        "gitCommit": "", "gitTreeState": "clean", "buildDate": "",
                        "goVersion": "", "compiler": "rustc", "platform": "linux/amd64"
                    }))
                }),
            )
            .route(
                "/whoami",
                get(|axum::Extension(u): axum::Extension<User>| async move { u.name }),
            )
            .layer(axum::middleware::from_fn_with_state(auth, require_auth));
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(serve(
            listener,
            Some(server_config(&pki).unwrap()),
            app,
            shutdown.clone(),
        ));

        let kc = kube::config::Kubeconfig::read_from(&path).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .unwrap();
        let client = kube::Client::try_from(config).unwrap();
        let version = client.apiserver_version().await.unwrap();
        assert_eq!(version.git_version, "v1.32.0-k1s");
        let req = axum::http::Request::get("/whoami")
            .body(Vec::new())
            .unwrap();
        assert_eq!(client.request_text(req).await.unwrap(), "k1s-admin");

        // Stock kubectl (Go's TLS stack) accepts the same kubeconfig, client cert and token.
        if std::path::Path::new("/usr/bin/kubectl").exists() {
            let kubectl = |args: &[&str]| {
                let out = std::process::Command::new("/usr/bin/kubectl")
                    .env("HOME", tmp.path())
                    .args(args)
                    .output()
                    .unwrap();
                let text = String::from_utf8_lossy(&out.stdout).into_owned()
                    + &String::from_utf8_lossy(&out.stderr);
                (out.status.success(), text)
            };
            let kc = path.to_str().unwrap();
            let (ok, text) = tokio::task::block_in_place(|| {
                kubectl(&["--kubeconfig", kc, "get", "--raw", "/whoami"])
            });
            assert!(ok, "{text}");
            assert_eq!(text, "k1s-admin");

            let empty = tmp.path().join("empty");
            std::fs::write(&empty, "").unwrap();
            let ca = tmp.path().join("pki/ca.crt");
            let with_token = |token: &str| {
                let args = [
                    "--kubeconfig",
                    empty.to_str().unwrap(),
                    "--server",
                    &url,
                    "--certificate-authority",
                    ca.to_str().unwrap(),
                    "--token",
                    token,
                    "get",
                    "--raw",
                    "/whoami",
                ];
                tokio::task::block_in_place(|| kubectl(&args))
            };
            let (ok, text) = with_token(&pki.admin_token);
            assert!(ok, "{text}");
            assert_eq!(text, "k1s-admin");
            let (ok, text) = with_token("wrong");
            assert!(!ok);
            assert!(text.contains("Unauthorized"), "{text}");
        }

        shutdown.cancel();
        task.await.unwrap().unwrap();
    }
}
