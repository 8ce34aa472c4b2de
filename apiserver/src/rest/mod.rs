//! The generic REST path: one set of handlers for every resource in the table.
//!
//! [`handle`] resolves the resource row, then dispatches on verb. Objects are read from and written to
//! the store as JSON; per-kind behaviour comes from [`crate::strategy`].

mod delete;
mod eviction;
mod read;
mod scale;
mod watch;
mod write;

pub use delete::delete_object;
pub(crate) use write::random_suffix;
pub use write::{create_object, update_object};

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use k1s_apimachinery::status::StatusError;
use k1s_store::{KeyValue, StoreError};
use serde_json::Value;

use crate::auth::UserInfo;
use crate::request::{Query, ResourcePath};
use crate::resources::Resource;
use crate::response::{ApiError, ApiResult, store_error};
use crate::state::AppState;

/// Everything a verb handler needs about its request.
#[derive(Clone)]
pub struct Ctx {
    pub state: AppState,
    pub res: Arc<Resource>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
    pub query: Query,
    pub headers: HeaderMap,
    pub user: Option<UserInfo>,
}

impl Ctx {
    /// A request made by k1s itself (bootstrap, controllers): no user, default options, and a
    /// User-Agent that names the component as field manager.
    pub fn internal(
        state: &AppState,
        res: Arc<Resource>,
        namespace: Option<&str>,
        name: Option<&str>,
        component: &'static str,
    ) -> Ctx {
        let mut headers = HeaderMap::new();
        headers.insert(
            axum::http::header::USER_AGENT,
            axum::http::HeaderValue::from_static(component),
        );
        Ctx {
            state: state.clone(),
            res,
            namespace: namespace.map(str::to_string),
            name: name.map(str::to_string),
            subresource: None,
            query: Query::default(),
            headers,
            user: None,
        }
    }

    /// Name from the URL (handlers that need one are only reached with one).
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or_default()
    }

    pub fn key(&self) -> String {
        self.res.key(self.namespace.as_deref(), self.name())
    }

    pub fn not_found(&self) -> ApiError {
        ApiError(StatusError::not_found(
            &self.res.group,
            &self.res.plural,
            self.name(),
        ))
    }

    /// Maps a store error on this object to upstream's Status.
    pub fn store_err(&self, e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound => self.not_found(),
            StoreError::AlreadyExists => ApiError(StatusError::already_exists(
                &self.res.group,
                &self.res.plural,
                self.name(),
            )),
            StoreError::Conflict { .. } => ApiError(StatusError::conflict(
                &self.res.group,
                &self.res.plural,
                self.name(),
                "the object has been modified; please apply your changes to the latest version and try again",
            )),
            other => store_error(other),
        }
    }

    /// Reads the current object at this request's key.
    /// (as this request's resource shows it: see [`crate::events_view`]).
    pub fn load(&self) -> ApiResult<KeyValue> {
        match self.state.store().get(&self.key()) {
            Ok(Some(kv)) => Ok(crate::events_view::view_kv(&self.res, kv)),
            Ok(None) => Err(self.not_found()),
            Err(e) => Err(store_error(e)),
        }
    }

    /// The field manager of a write: `?fieldManager=`, else derived from the User-Agent as upstream.
    pub fn field_manager(&self) -> String {
        if let Some(m) = self.query.get("fieldManager") {
            return m.to_string();
        }
        let ua = self
            .headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("unknown");
        ua.split('/')
            .next()
            .unwrap_or("unknown")
            .chars()
            .take(128)
            .collect()
    }
}

/// Parses a stored value (always valid JSON written by us).
pub fn parse(kv: &KeyValue) -> ApiResult<Value> {
    serde_json::from_slice(&kv.value).map_err(|e| {
        ApiError(StatusError::internal(&format!(
            "stored object {} is corrupt: {e}",
            kv.key
        )))
    })
}

/// Entry point for `/api/...` and `/apis/...` resource URLs.
pub async fn handle(
    state: AppState,
    method: Method,
    path: ResourcePath,
    query: Query,
    headers: HeaderMap,
    user: Option<UserInfo>,
    body: Body,
) -> ApiResult {
    if path.group == crate::metrics_api::GROUP {
        return crate::metrics_api::handle(state.resource_metrics(), &method, &path, &query).await;
    }
    let table = state.table();
    let Some(res) = table.get(&path.group, &path.version, &path.plural) else {
        return Err(ApiError(crate::response::unknown_path()));
    };
    if let Some(sub) = &path.subresource
        && !res.subresources.iter().any(|s| s == sub)
    {
        return Err(ApiError(crate::response::unknown_path()));
    }
    if !res.namespaced && path.namespace.is_some() {
        return Err(ApiError(crate::response::unknown_path()));
    }
    if res.namespaced && path.name.is_some() && path.namespace.is_none() {
        // `/api/v1/pods/foo` has no meaning for namespaced resources.
        return Err(ApiError(crate::response::unknown_path()));
    }
    let ctx = Ctx {
        state,
        res,
        namespace: path.namespace,
        name: path.name,
        subresource: path.subresource,
        query,
        headers,
        user,
    };
    let sub = ctx.subresource.clone();
    match (&method, ctx.name.is_some(), sub.as_deref()) {
        (&Method::GET, false, None) => {
            if ctx.query.flag("watch") {
                watch::watch(ctx).await
            } else {
                read::list(ctx).await
            }
        }
        (&Method::GET, true, None | Some("status") | Some("ephemeralcontainers")) => {
            read::get(ctx).await
        }
        (&Method::GET, true, Some("scale")) => scale::get(ctx).await,
        (&Method::POST, false, None) => write::create(ctx, body).await,
        (&Method::POST, true, Some("binding")) => write::bind(ctx, body).await,
        (&Method::POST, true, Some("eviction")) => eviction::evict(ctx, body).await,
        (&Method::POST, true, Some("token")) => crate::satoken::request::create(ctx, body).await,
        (&Method::PUT, true, None | Some("status" | "finalize" | "ephemeralcontainers")) => {
            write::update(ctx, body).await
        }
        (&Method::PUT, true, Some("scale")) => scale::update(ctx, body).await,
        (&Method::PATCH, true, None | Some("status" | "ephemeralcontainers")) => {
            write::patch(ctx, body).await
        }
        (&Method::PATCH, true, Some("scale")) => scale::patch(ctx, body).await,
        (&Method::DELETE, true, None) => delete::delete(ctx, body).await,
        (&Method::DELETE, false, None) => delete::delete_collection(ctx, body).await,
        (&Method::GET, true, Some("log")) => crate::pod_logs::get(ctx).await,
        _ => Err(ApiError(StatusError::method_not_supported(
            &ctx.res.group,
            &ctx.res.plural,
            method.as_str(),
        ))),
    }
}

/// Builds the response for a single object already serialised (as stored).
pub fn raw_response(ctx: &Ctx, code: axum::http::StatusCode, raw: bytes::Bytes) -> Response {
    if crate::request::want(&ctx.headers) == crate::request::Want::Table {
        return match serde_json::from_slice::<Value>(&raw) {
            Ok(obj) => object_response(ctx, code, &obj),
            Err(e) => ApiError(StatusError::internal(&e.to_string())).into_response(),
        };
    }
    crate::response::json_bytes(code, raw)
}

/// Builds the response for a single object.
pub fn object_response(ctx: &Ctx, code: axum::http::StatusCode, obj: &Value) -> Response {
    if crate::request::want(&ctx.headers) == crate::request::Want::Table {
        let table = crate::table::render(
            &ctx.res,
            std::slice::from_ref(obj),
            &ctx.query,
            "",
            None,
            None,
        );
        return crate::response::json_value(code, &table);
    }
    crate::response::json_value(code, obj)
}
