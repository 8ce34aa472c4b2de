//! A minimal HTTP(S) client for benchmarks: one hyper connection per client, HTTP/1.1 or HTTP/2
//! negotiated by ALPN, client-certificate or bearer-token auth from a kubeconfig or flags.
//!
//! Deliberately not a pooled client: each scenario decides how many connections it holds, so the
//! figures say exactly what traffic produced them.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// Which HTTP version a connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Proto {
    #[value(name = "h1")]
    Http1,
    #[value(name = "h2")]
    Http2,
}

/// TLS material and credentials for an [`Endpoint`].
#[derive(Default)]
pub struct Credentials {
    pub ca_pem: Option<Vec<u8>>,
    pub client_cert_pem: Option<Vec<u8>>,
    pub client_key_pem: Option<Vec<u8>>,
    pub token: Option<String>,
}

/// Where requests go and how to authenticate; cheap to clone.
#[derive(Clone)]
pub struct Endpoint {
    scheme: &'static str,
    host: String,
    port: u16,
    authority: String,
    tls: Option<Tls>,
    auth: Option<HeaderValue>,
}

#[derive(Clone)]
struct Tls {
    h1: Arc<rustls::ClientConfig>,
    h2: Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
}

impl Endpoint {
    /// `url` is `https://host:port` (TLS, needs a CA) or `http://host:port`.
    pub fn new(url: &str, creds: Credentials) -> Result<Self> {
        let uri: Uri = url
            .parse()
            .with_context(|| format!("invalid server URL {url:?}"))?;
        let scheme = match uri.scheme_str() {
            Some("https") => "https",
            Some("http") => "http",
            _ => bail!("server URL {url:?} must start with https:// or http://"),
        };
        let host = uri
            .host()
            .ok_or_else(|| anyhow!("server URL {url:?} has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri
            .port_u16()
            .unwrap_or(if scheme == "https" { 443 } else { 80 });
        let authority = match host.parse::<IpAddr>() {
            Ok(IpAddr::V6(_)) => format!("[{host}]:{port}"),
            _ => format!("{host}:{port}"),
        };
        let auth = match &creds.token {
            Some(t) => Some(
                HeaderValue::from_str(&format!("Bearer {t}"))
                    .context("the token is not a valid header value")?,
            ),
            None => None,
        };
        let tls = if scheme == "https" {
            Some(tls_configs(&host, &creds)?)
        } else {
            None
        };
        Ok(Endpoint {
            scheme,
            host,
            port,
            authority,
            tls,
            auth,
        })
    }

    /// Opens one connection; the connection's driver runs in its own task.
    pub async fn connect(&self, proto: Proto) -> Result<Conn> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .with_context(|| format!("connecting to {}", self.authority))?;
        tcp.set_nodelay(true)?;
        let sender = match &self.tls {
            None => handshake(tcp, proto).await?,
            Some(tls) => {
                let cfg = match proto {
                    Proto::Http1 => tls.h1.clone(),
                    Proto::Http2 => tls.h2.clone(),
                };
                let stream = tokio_rustls::TlsConnector::from(cfg)
                    .connect(tls.name.clone(), tcp)
                    .await
                    .with_context(|| format!("TLS handshake with {}", self.authority))?;
                if proto == Proto::Http2 && stream.get_ref().1.alpn_protocol() != Some(b"h2") {
                    bail!("{} did not negotiate HTTP/2 (ALPN h2)", self.authority);
                }
                handshake(stream, proto).await?
            }
        };
        Ok(Conn {
            sender,
            endpoint: self.clone(),
        })
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        h2: bool,
    ) -> Result<Request<Full<Bytes>>> {
        let uri = if h2 {
            format!("{}://{}{path}", self.scheme, self.authority)
        } else {
            path.to_owned()
        };
        let mut b = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::ACCEPT, "application/json");
        if !h2 {
            b = b.header(header::HOST, &self.authority);
        }
        if body.is_some() {
            b = b.header(header::CONTENT_TYPE, "application/json");
        }
        if let Some(a) = &self.auth {
            b = b.header(header::AUTHORIZATION, a.clone());
        }
        Ok(b.body(Full::new(body.unwrap_or_default()))?)
    }
}

async fn handshake<IO>(io: IO, proto: Proto) -> Result<Sender>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(io);
    Ok(match proto {
        Proto::Http1 => {
            let (send, conn) = http1::handshake(io).await.context("HTTP/1.1 handshake")?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Sender::H1(send)
        }
        Proto::Http2 => {
            let (send, conn) = http2::Builder::new(TokioExecutor::new())
                .initial_stream_window_size(1 << 20)
                .initial_connection_window_size(8 << 20)
                .handshake(io)
                .await
                .context("HTTP/2 handshake")?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Sender::H2(send)
        }
    })
}

fn tls_configs(host: &str, creds: &Credentials) -> Result<Tls> {
    let ca = creds.ca_pem.as_deref().ok_or_else(|| {
        anyhow!("an https server needs a CA (--ca or the kubeconfig's certificate-authority-data)")
    })?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut &ca[..]) {
        roots
            .add(cert.context("reading the CA PEM")?)
            .context("adding the CA certificate")?;
    }
    if roots.is_empty() {
        bail!("the CA PEM holds no certificate");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let mut cfg = match (&creds.client_cert_pem, &creds.client_key_pem) {
        (Some(cert), Some(key)) => {
            let chain: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut &cert[..])
                .collect::<Result<_, _>>()
                .context("reading the client certificate PEM")?;
            let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut &key[..])
                .context("reading the client key PEM")?
                .ok_or_else(|| anyhow!("the client key PEM holds no private key"))?;
            builder
                .with_client_auth_cert(chain, key)
                .context("loading the client certificate")?
        }
        _ => builder.with_no_client_auth(),
    };
    let name = ServerName::try_from(host.to_owned())
        .with_context(|| format!("{host:?} is not a valid TLS server name"))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let h1 = Arc::new(cfg.clone());
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    let h2 = Arc::new(cfg);
    Ok(Tls { h1, h2, name })
}

enum Sender {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

/// One open connection. HTTP/1.1: one request at a time. HTTP/2: clone with [`Conn::stream`]
/// to multiplex.
pub struct Conn {
    sender: Sender,
    endpoint: Endpoint,
}

impl Conn {
    /// A handle for another concurrent stream on the same HTTP/2 connection.
    pub fn stream(&self) -> Option<Conn> {
        match &self.sender {
            Sender::H1(_) => None,
            Sender::H2(s) => Some(Conn {
                sender: Sender::H2(s.clone()),
                endpoint: self.endpoint.clone(),
            }),
        }
    }

    /// Sends a request and returns the response head with the body still streaming.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<Response<Incoming>> {
        let h2 = matches!(self.sender, Sender::H2(_));
        let req = self.endpoint.request(method, path, body, h2)?;
        let resp = match &mut self.sender {
            Sender::H1(s) => {
                s.ready().await.context("connection closed")?;
                s.send_request(req).await
            }
            Sender::H2(s) => {
                s.ready().await.context("connection closed")?;
                s.send_request(req).await
            }
        };
        resp.with_context(|| format!("request {path}"))
    }

    /// Sends a request and reads the whole body; a non-2xx status is an error carrying the body.
    pub async fn call(&mut self, method: Method, path: &str, body: Option<Bytes>) -> Result<Bytes> {
        let (status, body) = self.call_status(method.clone(), path, body).await?;
        if !status.is_success() {
            bail!("{method} {path}: {status}: {}", snippet(&body));
        }
        Ok(body)
    }

    /// Like [`Conn::call`] but returns the status instead of failing on it.
    pub async fn call_status(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<(StatusCode, Bytes)> {
        let resp = self.send(method, path, body).await?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .with_context(|| format!("reading the response to {path}"))?
            .to_bytes();
        Ok((status, body))
    }
}

/// Appends `data` (a chunk of a newline-delimited stream, such as a watch) to `buf` and yields
/// each complete line now in it, newline included; a partial last line stays in `buf`.
pub fn lines<'a>(buf: &'a mut Vec<u8>, data: &[u8]) -> impl Iterator<Item = Vec<u8>> + 'a {
    buf.extend_from_slice(data);
    std::iter::from_fn(move || {
        let nl = buf.iter().position(|&b| b == b'\n')?;
        Some(buf.drain(..=nl).collect())
    })
}

/// The start of a response body, for error messages.
pub fn snippet(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(&body[..body.len().min(300)]);
    s.trim().to_owned()
}

/// Where the API server is and how to reach it, from flags or a kubeconfig.
#[derive(clap::Args, Debug, Clone)]
pub struct ServerFlags {
    /// Kubeconfig to read the server URL and credentials from (default: $KUBECONFIG).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Server URL, e.g. https://127.0.0.1:6443 (instead of a kubeconfig).
    #[arg(long, requires = "ca")]
    pub server: Option<String>,
    /// Bearer token (with --server).
    #[arg(long)]
    pub token: Option<String>,
    /// CA certificate PEM file (with --server).
    #[arg(long)]
    pub ca: Option<PathBuf>,
}

impl ServerFlags {
    /// The endpoint from `--server` or the kubeconfig; `None` when neither is given.
    pub fn endpoint(&self) -> Result<Option<Endpoint>> {
        if let Some(url) = &self.server {
            let ca_pem = match &self.ca {
                Some(p) => {
                    Some(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?)
                }
                None => None,
            };
            let creds = Credentials {
                ca_pem,
                token: self.token.clone(),
                ..Default::default()
            };
            return Endpoint::new(url, creds).map(Some);
        }
        let path = match &self.kubeconfig {
            Some(p) => p.clone(),
            None => match std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
                Some(v) => PathBuf::from(v),
                None => return Ok(None),
            },
        };
        endpoint_from_kubeconfig(&path).map(Some)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Kubeconfig {
    #[serde(default)]
    clusters: Vec<Named<ClusterEntry>>,
    #[serde(default)]
    users: Vec<Named<UserEntry>>,
    #[serde(default)]
    contexts: Vec<Named<ContextEntry>>,
    #[serde(default)]
    current_context: Option<String>,
}

#[derive(Deserialize)]
struct Named<T> {
    name: String,
    #[serde(flatten)]
    item: T,
}

#[derive(Deserialize)]
struct ClusterEntry {
    cluster: Cluster,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Cluster {
    server: String,
    certificate_authority_data: Option<String>,
    certificate_authority: Option<PathBuf>,
}

#[derive(Deserialize)]
struct UserEntry {
    #[serde(default)]
    user: User,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct User {
    client_certificate_data: Option<String>,
    client_key_data: Option<String>,
    client_certificate: Option<PathBuf>,
    client_key: Option<PathBuf>,
    token: Option<String>,
}

#[derive(Deserialize)]
struct ContextEntry {
    context: KubeContext,
}

#[derive(Deserialize)]
struct KubeContext {
    cluster: String,
    user: Option<String>,
}

/// Reads a kubeconfig's current context (or its only cluster and user).
pub fn endpoint_from_kubeconfig(path: &Path) -> Result<Endpoint> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading kubeconfig {}", path.display()))?;
    let kc: Kubeconfig = serde_saphyr::from_str(&text)
        .with_context(|| format!("parsing kubeconfig {}", path.display()))?;
    let ctx = match &kc.current_context {
        Some(name) => kc
            .contexts
            .iter()
            .find(|c| &c.name == name)
            .map(|c| &c.item.context),
        None => kc.contexts.first().map(|c| &c.item.context),
    };
    let cluster = match ctx {
        Some(c) => kc.clusters.iter().find(|n| n.name == c.cluster),
        None => kc.clusters.first(),
    }
    .ok_or_else(|| anyhow!("{}: no cluster for the current context", path.display()))?;
    let user = match ctx.and_then(|c| c.user.as_ref()) {
        Some(u) => kc.users.iter().find(|n| &n.name == u),
        None => kc.users.first(),
    }
    .map(|u| &u.item.user);
    let base = path.parent().unwrap_or(Path::new("."));
    let data_or_file =
        |data: &Option<String>, file: &Option<PathBuf>, what: &str| -> Result<Option<Vec<u8>>> {
            if let Some(d) = data {
                return STANDARD
                    .decode(d.trim())
                    .map(Some)
                    .with_context(|| format!("{}: {what} is not base64", path.display()));
            }
            if let Some(f) = file {
                let f = base.join(f);
                return std::fs::read(&f)
                    .map(Some)
                    .with_context(|| format!("reading {}", f.display()));
            }
            Ok(None)
        };
    let c = &cluster.item.cluster;
    let mut creds = Credentials {
        ca_pem: data_or_file(
            &c.certificate_authority_data,
            &c.certificate_authority,
            "certificate-authority-data",
        )?,
        ..Default::default()
    };
    if let Some(u) = user {
        creds.client_cert_pem = data_or_file(
            &u.client_certificate_data,
            &u.client_certificate,
            "client-certificate-data",
        )?;
        creds.client_key_pem = data_or_file(&u.client_key_data, &u.client_key, "client-key-data")?;
        creds.token = u.token.clone();
    }
    Endpoint::new(&c.server, creds)
}
