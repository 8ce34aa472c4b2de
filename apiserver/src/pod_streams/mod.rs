//! `pods/exec`, `pods/attach` and `pods/portforward`: the streaming subresources. The API server
//! owns the wire protocols (WebSocket channels for exec/attach, SPDY/3.1 plain or tunnelled in a
//! WebSocket for port-forward, and SPDY for kubectl's exec/attach fallback); the node installs
//! the [`PodStreams`] source that runs the processes and opens the pod's ports
//! ([`crate::state::AppState::set_pod_streams`]), so the API server never depends on the runtime.
//!
//! Invariants: a request is checked (pod exists, container valid, at least one stream) before
//! the connection is upgraded; every byte crosses as a bounded channel message, so a slow client
//! slows the process instead of growing a buffer; when the client goes away the session's
//! senders are dropped, which ends the node's pumps.

mod channel;
mod options;
mod portforward;
mod spdy_exec;
mod upgrade;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::extract::ws::WebSocketUpgrade;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use k1s_apimachinery::status::StatusError;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

pub use options::StreamOptions;

use crate::request::ResourcePath;
use crate::response::ApiError;
use crate::rest::{Ctx, parse};
use crate::state::AppState;

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// The process exited with this code (attach: 0 when the container's output ended).
    Code(i32),
    /// It could not run, or failed in a way that has no exit code.
    Error(String),
}

/// A running exec or attach, as channels. Dropping `stdin` is end of input; `stdout` and
/// `stderr` end when the process's streams end; `resize` takes (width, height).
pub struct StreamSession {
    pub stdin: Option<mpsc::Sender<Bytes>>,
    pub stdout: Option<mpsc::Receiver<Bytes>>,
    pub stderr: Option<mpsc::Receiver<Bytes>>,
    pub resize: Option<mpsc::Sender<(u16, u16)>>,
    /// Resolves once the process is gone (after its output has been sent).
    pub exit: oneshot::Receiver<Exit>,
}

/// Opening a session may block (it runs off the async workers in the implementation).
pub type OpenSession = Pin<Box<dyn Future<Output = Result<StreamSession, StatusError>> + Send>>;

/// What runs commands in containers (the kubelet).
pub trait PodStreams: Send + Sync {
    /// Starts `opts.command` in `opts.container` of `pod`.
    fn exec(&self, pod: &Value, opts: StreamOptions) -> OpenSession;
    /// Attaches to the stdio of `opts.container` of `pod`.
    fn attach(&self, pod: &Value, opts: StreamOptions) -> OpenSession;
    /// Connects to `port` on the pod's loopback (its network namespace).
    fn port_forward(&self, pod: &Value, port: u16) -> OpenPort;
}

/// The WebSocket subprotocol of SPDY-tunnelled port-forward.
const PORT_FORWARD_TUNNEL: &str = "SPDY/3.1+portforward.k8s.io";
/// The SPDY protocol of port-forward.
const PORT_FORWARD: &str = "portforward.k8s.io";

/// A connection to a port of a pod, opened inside its network namespace; the error is the text
/// kubectl shows.
pub type OpenPort = Pin<Box<dyn Future<Output = Result<tokio::net::TcpStream, String>> + Send>>;

/// A shared source.
pub type SharedPodStreams = Arc<dyn PodStreams>;

/// Whether `path` is one of the streaming subresources this module serves.
pub fn is_stream(path: &ResourcePath) -> bool {
    path.group.is_empty()
        && path.plural == "pods"
        && path.name.is_some()
        && path.namespace.is_some()
        && matches!(
            path.subresource.as_deref(),
            Some("exec" | "attach" | "portforward")
        )
}

/// Serves a streaming subresource request (`is_stream(&path)` holds).
pub async fn serve(state: AppState, path: ResourcePath, mut parts: Parts) -> Response {
    match prepare(&state, &path, &mut parts).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
}

async fn prepare(
    state: &AppState,
    path: &ResourcePath,
    parts: &mut Parts,
) -> Result<Response, ApiError> {
    let Some(res) = state.table().get("", "v1", "pods") else {
        return Err(ApiError(crate::response::unknown_path()));
    };
    let ctx = Ctx::internal(
        state,
        res,
        path.namespace.as_deref(),
        path.name.as_deref(),
        "kubectl",
    );
    let pod = parse(&ctx.load()?)?;
    let Some(source) = state.pod_streams() else {
        return Err(ApiError(StatusError::bad_request(format!(
            "pod {:?} is not on a node that serves streams",
            ctx.name()
        ))));
    };
    let sub = path.subresource.as_deref().unwrap_or_default();
    if pod["status"]["phase"].as_str() != Some("Running") {
        return Err(ApiError(StatusError::bad_request(format!(
            "unable to upgrade connection: pod {} is not running",
            ctx.name()
        ))));
    }
    if sub == "portforward" {
        if upgrade::is_spdy(parts) {
            return upgrade::spdy(parts, &[PORT_FORWARD], move |conn, _| {
                portforward::serve(conn, source, pod)
            });
        }
        let ws = upgrade_of(parts, state, sub).await?;
        let ws = ws.protocols([PORT_FORWARD_TUNNEL]);
        if ws.selected_protocol().is_none() {
            return Err(ApiError(StatusError::bad_request(format!(
                "port-forward over WebSocket needs the subprotocol {PORT_FORWARD_TUNNEL}"
            ))));
        }
        return Ok(ws.max_message_size(1 << 20).on_upgrade(move |socket| {
            let conn = crate::spdy::Connection::start(crate::spdy::tunnel::open(socket));
            portforward::serve(conn, source, pod)
        }));
    }
    let mut opts = options::parse(parts.uri.query(), sub == "attach")?;
    opts.container = crate::pod_logs::container_name(&pod, opts.asked_container.as_deref())?;
    let attach = sub == "attach";
    let spdy_opts = opts.clone();
    let open = move || {
        if attach {
            source.attach(&pod, opts.clone())
        } else {
            source.exec(&pod, opts.clone())
        }
    };
    // Checked last: a request that fails validation gets the same error over both protocols.
    if upgrade::is_spdy(parts) {
        return upgrade::spdy(parts, &spdy_exec::PROTOCOLS, move |conn, _| {
            spdy_exec::serve(conn, spdy_opts, open())
        });
    }
    let ws = upgrade_of(parts, state, sub).await?;
    Ok(channel::upgrade(ws, open))
}

/// The WebSocket upgrade of the request.
async fn upgrade_of(
    parts: &mut Parts,
    state: &AppState,
    sub: &str,
) -> Result<WebSocketUpgrade, ApiError> {
    WebSocketUpgrade::from_request_parts(parts, state)
        .await
        .map_err(|e| {
            ApiError(StatusError::bad_request(format!(
                "{sub} is served over WebSocket only: {e}"
            )))
        })
}
