//! `GET pods/<name>/log`: options parsed as upstream's `PodLogOptions`, the container chosen as
//! upstream does (the only one, else `?container=` is required), and the bytes streamed from a
//! [`PodLogs`] source the node installs ([`crate::state::AppState::set_pod_logs`]); without one
//! (no kubelet) the request fails with 400 as for a pod whose node cannot serve logs.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use bytes::Bytes;
use futures::Stream;
use k1s_apimachinery::status::StatusError;
use serde_json::Value;

use crate::response::{ApiError, ApiResult};
use crate::rest::{Ctx, parse};

/// Upstream's `PodLogOptions` that k1s serves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    pub container: String,
    pub follow: bool,
    pub previous: bool,
    pub timestamps: bool,
    pub tail_lines: Option<u64>,
    pub since_seconds: Option<u64>,
    pub limit_bytes: Option<u64>,
}

/// Log bytes as they come.
pub type LogStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;
/// An open that may block (it runs off the async workers in the implementation).
pub type OpenLogs = Pin<Box<dyn Future<Output = Result<LogStream, StatusError>> + Send>>;

/// Where container logs come from (the kubelet).
pub trait PodLogs: Send + Sync {
    /// Opens the log of `opts.container` of `pod`.
    fn open(&self, pod: &Value, opts: LogOptions) -> OpenLogs;
}

/// A shared source.
pub type SharedPodLogs = Arc<dyn PodLogs>;

fn number(ctx: &Ctx, key: &str) -> Result<Option<u64>, StatusError> {
    match ctx.query.get(key) {
        None => Ok(None),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .map(|n| Some(n as u64))
            .ok_or_else(|| {
                StatusError::bad_request(format!("{key} must be a non-negative integer"))
            }),
    }
}

/// The container a log request means.
pub(crate) fn container_name(pod: &Value, asked: Option<&str>) -> Result<String, StatusError> {
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let names: Vec<&str> = ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .flat_map(|f| pod["spec"][*f].as_array().into_iter().flatten())
        .filter_map(|c| c["name"].as_str())
        .collect();
    match asked {
        Some(c) if names.contains(&c) => Ok(c.to_string()),
        Some(c) => Err(StatusError::bad_request(format!(
            "container {c} is not valid for pod {name}"
        ))),
        None => {
            let regular: Vec<&str> = pod["spec"]["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["name"].as_str())
                .collect();
            match regular.as_slice() {
                [only] => Ok(only.to_string()),
                _ => Err(StatusError::bad_request(format!(
                    "a container name must be specified for pod {name}, choose one of: [{}]",
                    regular.join(" ")
                ))),
            }
        }
    }
}

/// Serves `GET .../pods/<name>/log`.
pub async fn get(ctx: Ctx) -> ApiResult {
    let pod = parse(&ctx.load()?)?;
    let opts = LogOptions {
        container: container_name(&pod, ctx.query.get("container"))?,
        follow: ctx.query.flag("follow"),
        previous: ctx.query.flag("previous"),
        timestamps: ctx.query.flag("timestamps"),
        tail_lines: number(&ctx, "tailLines")?,
        since_seconds: number(&ctx, "sinceSeconds")?,
        limit_bytes: number(&ctx, "limitBytes")?,
    };
    let Some(source) = ctx.state.pod_logs() else {
        return Err(ApiError(StatusError::bad_request(format!(
            "pod {:?} is not on a node that serves logs",
            ctx.name()
        ))));
    };
    let stream = source.open(&pod, opts).await.map_err(ApiError)?;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain")],
        Body::from_stream(stream),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn container_choice() {
        let one = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}], "initContainers": [{"name": "i"}]}});
        assert_eq!(container_name(&one, None).unwrap(), "a");
        assert_eq!(container_name(&one, Some("i")).unwrap(), "i");
        assert!(container_name(&one, Some("x")).is_err());
        let two = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        let e = container_name(&two, None).unwrap_err();
        assert_eq!(
            e.message,
            "a container name must be specified for pod p, choose one of: [a b]"
        );
    }
}
