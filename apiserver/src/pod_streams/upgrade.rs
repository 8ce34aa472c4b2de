//! Which protocol a streaming request upgrades to: a WebSocket (kubectl's default), or a plain
//! `Upgrade: SPDY/3.1` with the sub-protocol negotiated through `X-Stream-Protocol-Version`
//! (kubectl's fallback), answered with `101 Switching Protocols`.
//!
//! Invariant: the SPDY answer names exactly one protocol, the client's first that we serve;
//! when none matches the request fails with 403 before anything is upgraded, as upstream.

use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use k1s_apimachinery::status::StatusError;

use crate::response::ApiError;
use crate::spdy::Connection;

const PROTOCOL_HEADER: &str = "X-Stream-Protocol-Version";

/// Whether the request asks for a SPDY/3.1 upgrade.
pub fn is_spdy(parts: &Parts) -> bool {
    parts
        .headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("SPDY/3.1"))
}

/// The client's protocols in its order (the header repeats, or lists values with commas).
fn offered(parts: &Parts) -> Vec<String> {
    parts
        .headers
        .get_all(PROTOCOL_HEADER)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

/// Negotiates one of `served` and upgrades; `run` gets the SPDY connection and the protocol.
pub fn spdy<F, Fut>(parts: &mut Parts, served: &[&str], run: F) -> Result<Response, ApiError>
where
    F: FnOnce(Connection, String) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let offered = offered(parts);
    let Some(protocol) = offered
        .iter()
        .find(|p| served.contains(&p.as_str()))
        .cloned()
    else {
        return Err(ApiError(StatusError::new(
            403,
            "Forbidden",
            format!(
                "unable to upgrade: unable to negotiate protocol: client supports {offered:?}, server supports {served:?}"
            ),
        )));
    };
    let Some(on_upgrade) = parts.extensions.remove::<OnUpgrade>() else {
        return Err(ApiError(StatusError::bad_request(
            "unable to upgrade: the connection cannot be upgraded",
        )));
    };
    let chosen = protocol.clone();
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => run(Connection::start(TokioIo::new(upgraded)), chosen).await,
            Err(e) => tracing::debug!("spdy upgrade failed: {e}"),
        }
    });
    let mut resp = Response::new(axum::body::Body::empty());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("SPDY/3.1"));
    if let Ok(v) = HeaderValue::from_str(&protocol) {
        h.insert(PROTOCOL_HEADER, v);
    }
    Ok(resp)
}
