//! The API server's transport: accept loop, TLS handshake, HTTP/1.1 + HTTP/2 connections.
//!
//! Each accepted connection runs in its own task: TCP_NODELAY, TLS handshake bounded by
//! [`ServeOptions::handshake_timeout`], the verified client certificate mapped to a
//! [`PeerIdentity`] (CN → user, O → groups), then hyper-util's auto builder serving the axum
//! router with upgrades enabled (WebSocket / SPDY for exec, attach and port-forward). Every request
//! carries the connection's [`PeerIdentity`] and `ConnectInfo<SocketAddr>` as extensions.
//!
//! Shutdown: when the token fires the listener is closed, every connection is asked to finish
//! gracefully (HTTP/1 closes after the in-flight response, HTTP/2 sends GOAWAY), and connections
//! still busy after [`ServeOptions::shutdown_grace`] (long watches, log follows) are cut.
//! Upgraded streams belong to their handlers and are not tracked here.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::auth::{PeerIdentity, UserInfo};

/// Tunables of [`serve_with`]; [`serve`] uses the defaults.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Connections that have not completed the TLS handshake by then are dropped.
    pub handshake_timeout: Duration,
    /// How long in-flight requests may run after shutdown starts before they are cut.
    pub shutdown_grace: Duration,
    /// Time a client may take to send request headers (HTTP/1.1).
    pub header_read_timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            handshake_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(2),
            header_read_timeout: Duration::from_secs(30),
        }
    }
}

/// Serves `app` on `listener` until `shutdown` fires, then shuts down gracefully.
///
/// With `tls` the connections are HTTPS (ALPN `h2` / `http/1.1`); without, plain HTTP/1.1 and
/// HTTP/2 prior knowledge (for in-process tests).
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    serve_with(listener, tls, app, shutdown, ServeOptions::default()).await
}

/// [`serve`] with explicit [`ServeOptions`].
pub async fn serve_with(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: Router,
    shutdown: CancellationToken,
    options: ServeOptions,
) -> std::io::Result<()> {
    let acceptor = tls.map(TlsAcceptor::from);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let ctx = Arc::new(ConnContext {
        acceptor,
        builder,
        app,
        shutdown: shutdown.clone(),
        handshake_timeout: options.handshake_timeout,
    });

    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            // Reap finished connection tasks so the set stays small.
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, remote)) => {
                    conns.spawn(Arc::clone(&ctx).handle(stream, remote));
                }
                Err(e) if is_connection_error(&e) => {
                    tracing::debug!(error = %e, "accept: connection failed before it was accepted");
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(Duration::from_millis(50)) => {}
                    }
                }
            },
        }
    }
    drop(listener);

    let drained = tokio::time::timeout(options.shutdown_grace, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::info!(
            connections = conns.len(),
            "shutdown grace period over: closing busy connections"
        );
        conns.shutdown().await;
    }
    Ok(())
}

/// Errors that concern only the one connection being accepted.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset | Interrupted | WouldBlock
    )
}

/// What every connection task needs, shared.
struct ConnContext {
    acceptor: Option<TlsAcceptor>,
    builder: auto::Builder<TokioExecutor>,
    app: Router,
    shutdown: CancellationToken,
    handshake_timeout: Duration,
}

impl ConnContext {
    async fn handle(self: Arc<Self>, stream: TcpStream, remote: SocketAddr) {
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(%remote, error = %e, "setting TCP_NODELAY failed");
        }
        let Some(acceptor) = &self.acceptor else {
            return self.serve_http(stream, remote, PeerIdentity(None)).await;
        };
        let handshake = tokio::select! {
            () = self.shutdown.cancelled() => return,
            r = tokio::time::timeout(self.handshake_timeout, acceptor.accept(stream)) => r,
        };
        let stream = match handshake {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                tracing::debug!(%remote, error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(%remote, "TLS handshake timed out");
                return;
            }
        };
        let peer = PeerIdentity(
            stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .and_then(|leaf| identity_from_cert(leaf)),
        );
        self.serve_http(stream, remote, peer).await;
    }

    async fn serve_http<I>(&self, io: I, remote: SocketAddr, peer: PeerIdentity)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let app = self.app.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(peer.clone());
            req.extensions_mut().insert(ConnectInfo(remote));
            app.clone().oneshot(req)
        });
        let conn = self
            .builder
            .serve_connection_with_upgrades(TokioIo::new(io), service);
        tokio::pin!(conn);
        let result = tokio::select! {
            r = conn.as_mut() => r,
            () = self.shutdown.cancelled() => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        };
        if let Err(e) = result {
            tracing::debug!(%remote, error = %e, "connection ended with an error");
        }
    }
}

/// Maps a verified client certificate to a user: CN → name, each O → a group.
///
/// Like kube-apiserver, a certificate without a common name identifies nobody.
pub fn identity_from_cert(der: &[u8]) -> Option<UserInfo> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let name = subject.iter_common_name().next()?.as_str().ok()?;
    if name.is_empty() {
        return None;
    }
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok())
        .map(str::to_owned)
        .collect();
    Some(UserInfo {
        name: name.to_owned(),
        groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Authenticator, require_auth};
    use crate::tls::{Pki, ensure_pki, server_config};
    use axum::Extension;
    use axum::body::Body;
    use axum::http::{Request, StatusCode, Version};
    use axum::routing::get;
    use http_body_util::BodyExt;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use tokio::sync::{mpsc, oneshot};

    /// A running test server.
    struct Server {
        addr: SocketAddr,
        shutdown: CancellationToken,
        task: tokio::task::JoinHandle<std::io::Result<()>>,
    }

    impl Server {
        async fn stop(self) {
            self.shutdown.cancel();
            tokio::time::timeout(Duration::from_secs(10), self.task)
                .await
                .expect("serve returns after shutdown")
                .unwrap()
                .unwrap();
        }
    }

    fn app(pki: &Pki, extra: Router) -> Router {
        let auth = Authenticator::new(vec![(
            pki.admin_token.clone(),
            UserInfo {
                name: "token-admin".into(),
                groups: vec!["system:masters".into()],
            },
        )]);
        Router::new()
            .route(
                "/whoami",
                get(|Extension(u): Extension<UserInfo>| async move {
                    format!("{} {}", u.name, u.groups.join(","))
                }),
            )
            .route("/readyz", get(|| async { "ok" }))
            .merge(extra)
            .layer(axum::middleware::from_fn_with_state(auth, require_auth))
    }

    async fn start(tls: Option<Arc<rustls::ServerConfig>>, app: Router, grace: Duration) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let options = ServeOptions {
            shutdown_grace: grace,
            ..ServeOptions::default()
        };
        let task = tokio::spawn(serve_with(listener, tls, app, shutdown.clone(), options));
        Server {
            addr,
            shutdown,
            task,
        }
    }

    fn client_config(
        pki: &Pki,
        cert: Option<(&str, &str)>,
        alpn: &[&[u8]],
    ) -> rustls::ClientConfig {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(pki.ca_cert_pem.as_bytes()) {
            roots.add(c.unwrap()).unwrap();
        }
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
        let mut config = match cert {
            Some((cert, key)) => builder
                .with_client_auth_cert(
                    CertificateDer::pem_slice_iter(cert.as_bytes())
                        .collect::<Result<_, _>>()
                        .unwrap(),
                    PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
                )
                .unwrap(),
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        config
    }

    /// One request over a fresh TLS connection; returns (ALPN, version, status, body).
    async fn tls_get(
        addr: SocketAddr,
        config: rustls::ClientConfig,
        path: &str,
        token: Option<&str>,
    ) -> Result<(Option<Vec<u8>>, Version, StatusCode, String), Box<dyn std::error::Error>> {
        let tcp = TcpStream::connect(addr).await?;
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let name = ServerName::try_from("localhost")?;
        let tls = connector.connect(name, tcp).await?;
        let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
        let mut req = Request::get(format!("https://localhost{path}"));
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let io = TokioIo::new(tls);
        let resp = if alpn.as_deref() == Some(b"h2") {
            let (mut send, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await?;
            tokio::spawn(conn);
            send.send_request(req.body(Body::empty())?).await?
        } else {
            let (mut send, conn) = hyper::client::conn::http1::handshake(io).await?;
            tokio::spawn(conn);
            let req = req.header("host", "localhost").version(Version::HTTP_11);
            send.send_request(req.body(Body::empty())?).await?
        };
        let version = resp.version();
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((alpn, version, status, String::from_utf8(body.to_vec())?))
    }

    #[tokio::test]
    async fn tls_auth_alpn_and_shutdown() {
        let tmp = tempfile::tempdir().unwrap();
        let pki = ensure_pki(tmp.path(), &[]).unwrap();
        let server = start(
            Some(server_config(&pki).unwrap()),
            app(&pki, Router::new()),
            Duration::from_secs(5),
        )
        .await;
        let admin = Some((pki.admin_cert_pem.as_str(), pki.admin_key_pem.as_str()));

        // Client certificate over HTTP/2.
        let (alpn, version, status, body) = tls_get(
            server.addr,
            client_config(&pki, admin, &[b"h2", b"http/1.1"]),
            "/whoami",
            None,
        )
        .await
        .unwrap();
        assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
        assert_eq!(version, Version::HTTP_2);
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, "k1s-admin system:masters,system:authenticated");

        // Client certificate over HTTP/1.1.
        let (alpn, version, status, _) = tls_get(
            server.addr,
            client_config(&pki, admin, &[b"http/1.1"]),
            "/whoami",
            None,
        )
        .await
        .unwrap();
        assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
        assert_eq!(version, Version::HTTP_11);
        assert_eq!(status, StatusCode::OK);

        // No credentials: 401 Status; open path: 200.
        let anon = || client_config(&pki, None, &[b"h2"]);
        let (_, _, status, body) = tls_get(server.addr, anon(), "/whoami", None).await.unwrap();
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let status_obj: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(status_obj["kind"], "Status");
        assert_eq!(status_obj["reason"], "Unauthorized");
        assert_eq!(status_obj["code"], 401);
        let (_, _, status, body) = tls_get(server.addr, anon(), "/readyz", None).await.unwrap();
        assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));

        // Bearer token, good and bad.
        let (_, _, status, body) = tls_get(server.addr, anon(), "/whoami", Some(&pki.admin_token))
            .await
            .unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, "token-admin system:masters,system:authenticated");
        let (_, _, status, _) = tls_get(server.addr, anon(), "/whoami", Some("nope"))
            .await
            .unwrap();
        assert_eq!(status, StatusCode::UNAUTHORIZED);

        // A client certificate from another CA fails the handshake (or the first read, in TLS 1.3).
        let other = tempfile::tempdir().unwrap();
        let other = ensure_pki(other.path(), &[]).unwrap();
        let foreign = Some((other.admin_cert_pem.as_str(), other.admin_key_pem.as_str()));
        assert!(
            tls_get(
                server.addr,
                client_config(&pki, foreign, &[b"h2"]),
                "/whoami",
                None
            )
            .await
            .is_err()
        );

        server.stop().await;
    }

    #[tokio::test]
    async fn graceful_shutdown_finishes_in_flight_and_cuts_long_requests() {
        let tmp = tempfile::tempdir().unwrap();
        let pki = ensure_pki(tmp.path(), &[]).unwrap();
        let (started_tx, mut started_rx) = mpsc::unbounded_channel::<()>();
        let (release_tx, release_rx) = oneshot::channel::<()>();
        let release_rx = Arc::new(tokio::sync::Mutex::new(Some(release_rx)));
        let started = started_tx.clone();
        let extra = Router::new()
            .route(
                "/slow",
                get(move || {
                    let started = started.clone();
                    let release_rx = release_rx.clone();
                    async move {
                        let _ = started.send(());
                        if let Some(rx) = release_rx.lock().await.take() {
                            let _ = rx.await;
                        }
                        "done"
                    }
                }),
            )
            .route(
                "/forever",
                get(move || {
                    let started = started_tx.clone();
                    async move {
                        let _ = started.send(());
                        std::future::pending::<&'static str>().await
                    }
                }),
            );

        // Plain HTTP this time; the in-flight request completes after shutdown starts.
        let server = start(None, app(&pki, extra.clone()), Duration::from_secs(10)).await;
        let token = pki.admin_token.clone();
        let addr = server.addr;
        let slow = tokio::spawn(async move { plain_get(addr, "/slow", &token).await });
        started_rx.recv().await.unwrap();
        server.shutdown.cancel();
        release_tx.send(()).unwrap();
        assert_eq!(
            slow.await.unwrap().unwrap(),
            (StatusCode::OK, "done".to_owned())
        );
        server.stop().await;
        // The listener is closed.
        assert!(TcpStream::connect(addr).await.is_err());

        // A request that never finishes is cut after the grace period.
        let server = start(None, app(&pki, extra), Duration::from_millis(50)).await;
        let token = pki.admin_token.clone();
        let addr = server.addr;
        let forever = tokio::spawn(async move { plain_get(addr, "/forever", &token).await });
        started_rx.recv().await.unwrap();
        server.stop().await;
        assert!(forever.await.unwrap().is_err());
    }

    async fn plain_get(
        addr: SocketAddr,
        path: &str,
        token: &str,
    ) -> Result<(StatusCode, String), Box<dyn std::error::Error + Send + Sync>> {
        let tcp = TcpStream::connect(addr).await?;
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
        tokio::spawn(conn);
        let req = Request::get(path)
            .header("host", "localhost")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())?;
        let resp = send.send_request(req).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, String::from_utf8(body.to_vec())?))
    }

    #[test]
    fn identity_from_admin_cert() {
        let tmp = tempfile::tempdir().unwrap();
        let pki = ensure_pki(tmp.path(), &[]).unwrap();
        let der = CertificateDer::from_pem_slice(pki.admin_cert_pem.as_bytes()).unwrap();
        assert_eq!(
            identity_from_cert(&der),
            Some(UserInfo {
                name: "k1s-admin".into(),
                groups: vec!["system:masters".into()]
            })
        );
        assert_eq!(identity_from_cert(b"garbage"), None);
    }
}
