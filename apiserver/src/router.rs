//! The HTTP surface: one handler resolves every path (as kube-apiserver's request-info resolver) and
//! hands resource requests to the generic REST path.

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::auth::UserInfo;
use crate::request::{Query, Route, Want, route, want};
use crate::response::{ApiError, json_value, ok, unknown_path};
use crate::state::AppState;
use crate::{discovery, openapi_serve, rest};

/// Kubernetes version k1s reports: within kubectl 1.32's supported skew.
pub const KUBE_VERSION: (&str, &str) = ("1", "33");
pub const GIT_VERSION: &str = "v1.33.0-k1s";

/// Builds the router (without authentication: see [`with_auth`]).
pub fn router(state: AppState) -> Router {
    Router::new().fallback(dispatch).with_state(state)
}

/// The router behind authentication, as served on the network.
pub fn with_auth(state: AppState, auth: crate::auth::Authenticator) -> Router {
    router(state).layer(axum::middleware::from_fn_with_state(
        auth,
        crate::auth::require_auth,
    ))
}

pub fn version_info() -> serde_json::Value {
    json!({
        "major": KUBE_VERSION.0,
        "minor": KUBE_VERSION.1,
        "emulationMajor": KUBE_VERSION.0,
        "emulationMinor": KUBE_VERSION.1,
        "gitVersion": GIT_VERSION,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": concat!("rust", env!("CARGO_PKG_RUST_VERSION")),
        "compiler": "rustc",
        "platform": format!("linux/{}", if cfg!(target_arch = "x86_64") { "amd64" } else if cfg!(target_arch = "aarch64") { "arm64" } else { std::env::consts::ARCH }),
    })
}

async fn dispatch(State(state): State<AppState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let query = Query::parse(parts.uri.query());
    let user = parts.extensions.get::<UserInfo>().cloned();
    let method = parts.method.clone();
    let r = route(parts.uri.path());
    let read_only = method == Method::GET || method == Method::HEAD;
    let result: Result<Response, ApiError> = match r {
        Route::Version if read_only => Ok(ok(&version_info())),
        Route::Health(name) if read_only => Ok(health(&state, name)),
        Route::CoreVersions if read_only => Ok(discovery_response(&state, &parts.headers, true)),
        Route::Groups if read_only => Ok(discovery_response(&state, &parts.headers, false)),
        Route::Group(g) if read_only => match discovery::group(&state.table(), &g) {
            Some(v) => Ok(ok(&v)),
            None => Err(ApiError(unknown_path())),
        },
        Route::ResourceList { group, version } if read_only => {
            match discovery::resource_list(&state.table(), &group, &version) {
                Some(v) => Ok(ok(&v)),
                None => Err(ApiError(unknown_path())),
            }
        }
        Route::OpenApiIndex if read_only => Ok(openapi_serve::index(&state)),
        Route::OpenApiDoc(path) if read_only => openapi_serve::document(&state, &path),
        Route::OpenApiV2 if read_only => Ok(openapi_serve::v2(&parts.headers)),
        Route::Resource(path) if crate::pod_streams::is_stream(&path) => {
            Ok(crate::pod_streams::serve(state, path, parts).await)
        }
        Route::Resource(path) => match crate::review::handle(&method, &path, user.as_ref()) {
            Some(resp) => Ok(resp),
            None => rest::handle(state, method, path, query, parts.headers, user, body).await,
        },
        Route::NotFound => Err(ApiError(unknown_path())),
        _ => Err(ApiError(crate::response::method_not_allowed(
            method.as_str(),
        ))),
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

fn health(state: &AppState, name: &str) -> Response {
    if name == "readyz" && !state.is_ready() {
        let mut r = Response::new(Body::from(
            "[-]k1s-ready failed: not ready yet\nreadyz check failed\n",
        ));
        *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        return r;
    }
    let mut r = Response::new(Body::from("ok"));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn discovery_response(state: &AppState, headers: &axum::http::HeaderMap, core: bool) -> Response {
    let table = state.table();
    if want(headers) == Want::AggregatedDiscovery {
        let mut r = json_value(StatusCode::OK, &discovery::aggregated(&table, core));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
            ),
        );
        r.headers_mut()
            .insert("Vary", HeaderValue::from_static("Accept"));
        return r;
    }
    let body = if core {
        discovery::core_versions(&state.config().advertise_address)
    } else {
        discovery::group_list(&table)
    };
    ok(&body)
}
