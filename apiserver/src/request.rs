//! Request parsing: URL path → [`Route`], query string → [`Query`], headers → content negotiation.
//!
//! Mirrors kube-apiserver's request-info resolution: `/api/v1/...` and `/apis/<group>/<version>/...`,
//! optionally `namespaces/<ns>/`, then `<resource>[/<name>[/<subresource>]]`.

use std::collections::HashMap;

use axum::http::HeaderMap;

/// Where a request goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    Version,
    Health(&'static str),
    /// `/api`
    CoreVersions,
    /// `/apis`
    Groups,
    /// `/apis/<group>`
    Group(String),
    /// `/api/v1` or `/apis/<group>/<version>`
    ResourceList {
        group: String,
        version: String,
    },
    OpenApiIndex,
    /// `/openapi/v3/<api/v1 | apis/group/version>`
    OpenApiDoc(String),
    OpenApiV2,
    Resource(ResourcePath),
    NotFound,
}

/// The parts of a resource URL.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResourcePath {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

/// Parses a URL path (without the query string).
pub fn route(path: &str) -> Route {
    let path = path.trim_end_matches('/');
    let parts: Vec<&str> = path.split('/').skip(1).collect();
    match parts.as_slice() {
        ["version"] => Route::Version,
        ["healthz", ..] => Route::Health("healthz"),
        ["livez", ..] => Route::Health("livez"),
        ["readyz", ..] => Route::Health("readyz"),
        ["api"] => Route::CoreVersions,
        ["apis"] => Route::Groups,
        ["apis", group] => Route::Group(group.to_string()),
        ["api", version] => Route::ResourceList {
            group: String::new(),
            version: version.to_string(),
        },
        ["apis", group, version] => Route::ResourceList {
            group: group.to_string(),
            version: version.to_string(),
        },
        ["openapi", "v3"] => Route::OpenApiIndex,
        ["openapi", "v3", rest @ ..] => Route::OpenApiDoc(rest.join("/")),
        ["openapi", "v2"] => Route::OpenApiV2,
        ["api", version, rest @ ..] => resource_route("", version, rest),
        ["apis", group, version, rest @ ..] => resource_route(group, version, rest),
        _ => Route::NotFound,
    }
}

fn resource_route(group: &str, version: &str, rest: &[&str]) -> Route {
    let mut p = ResourcePath {
        group: group.into(),
        version: version.into(),
        ..Default::default()
    };
    let rest: &[&str] = match rest {
        // `namespaces/<ns>/<resource>...` is a namespaced request, unless it is the namespace itself
        // (`namespaces/<ns>`) or one of its subresources (`namespaces/<ns>/status|finalize`).
        ["namespaces", ns, resource, tail @ ..]
            if !(tail.is_empty() && matches!(*resource, "status" | "finalize")) =>
        {
            p.namespace = Some(ns.to_string());
            p.plural = resource.to_string();
            tail
        }
        [resource, tail @ ..] => {
            p.plural = resource.to_string();
            tail
        }
        [] => return Route::NotFound,
    };
    match rest {
        [] => {}
        [name] => p.name = Some(name.to_string()),
        [name, sub] => {
            p.name = Some(name.to_string());
            p.subresource = Some(sub.to_string());
        }
        _ => return Route::NotFound,
    }
    if p.plural.is_empty() || p.name.as_deref() == Some("") {
        return Route::NotFound;
    }
    Route::Resource(p)
}

/// Query parameters, parsed once.
#[derive(Debug, Default, Clone)]
pub struct Query(pub HashMap<String, String>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        let mut map = HashMap::new();
        if let Some(raw) = raw {
            for (k, v) in form_urlencoded::parse(raw.as_bytes()) {
                map.insert(k.into_owned(), v.into_owned());
            }
        }
        Query(map)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// `true`/`1` → true, absent → false.
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1" | "True"))
    }

    pub fn dry_run(&self) -> bool {
        self.get("dryRun") == Some("All")
    }
}

/// What representation the client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    Json,
    Table,
    /// Aggregated discovery (`APIGroupDiscoveryList`, apidiscovery.k8s.io/v2).
    AggregatedDiscovery,
}

/// Reads the Accept header the way kube-apiserver negotiates: the first acceptable entry wins.
pub fn want(headers: &HeaderMap) -> Want {
    let Some(accept) = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
    else {
        return Want::Json;
    };
    for entry in accept.split(',') {
        let params: Vec<&str> = entry.split(';').map(str::trim).collect();
        let media = params.first().copied().unwrap_or_default();
        let has = |p: &str| params.iter().any(|x| x.eq_ignore_ascii_case(p));
        if has("as=Table") && has("g=meta.k8s.io") && (has("v=v1") || has("v=v1beta1")) {
            return Want::Table;
        }
        if has("as=APIGroupDiscoveryList") && has("g=apidiscovery.k8s.io") && has("v=v2") {
            return Want::AggregatedDiscovery;
        }
        if media == "application/json" && params.len() == 1
            || media == "*/*"
            || media == "application/*"
        {
            return Want::Json;
        }
    }
    Want::Json
}

/// Whether Table rows should carry the full object.
pub fn include_object(query: &Query) -> bool {
    query.get("includeObject") == Some("Object")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(
        group: &str,
        plural: &str,
        ns: Option<&str>,
        name: Option<&str>,
        sub: Option<&str>,
    ) -> Route {
        Route::Resource(ResourcePath {
            group: group.into(),
            version: "v1".into(),
            plural: plural.into(),
            namespace: ns.map(Into::into),
            name: name.map(Into::into),
            subresource: sub.map(Into::into),
        })
    }

    #[test]
    fn routes() {
        assert_eq!(route("/api"), Route::CoreVersions);
        assert_eq!(
            route("/apis/apps/v1"),
            Route::ResourceList {
                group: "apps".into(),
                version: "v1".into()
            }
        );
        assert_eq!(route("/api/v1/pods"), res("", "pods", None, None, None));
        assert_eq!(
            route("/api/v1/namespaces"),
            res("", "namespaces", None, None, None)
        );
        assert_eq!(
            route("/api/v1/namespaces/default"),
            res("", "namespaces", None, Some("default"), None)
        );
        assert_eq!(
            route("/api/v1/namespaces/default/status"),
            res("", "namespaces", None, Some("default"), Some("status"))
        );
        assert_eq!(
            route("/api/v1/namespaces/default/finalize"),
            res("", "namespaces", None, Some("default"), Some("finalize"))
        );
        assert_eq!(
            route("/api/v1/namespaces/default/pods"),
            res("", "pods", Some("default"), None, None)
        );
        assert_eq!(
            route("/apis/apps/v1/namespaces/ns/deployments/web/scale"),
            res(
                "apps",
                "deployments",
                Some("ns"),
                Some("web"),
                Some("scale")
            )
        );
        assert_eq!(
            route("/api/v1/nodes/n1/status"),
            res("", "nodes", None, Some("n1"), Some("status"))
        );
        assert_eq!(route("/api/v1/namespaces/a/pods/b/c/d"), Route::NotFound);
        assert_eq!(
            route("/openapi/v3/apis/apps/v1"),
            Route::OpenApiDoc("apis/apps/v1".into())
        );
        assert_eq!(route("/nope"), Route::NotFound);
    }

    #[test]
    fn negotiation() {
        let mut h = HeaderMap::new();
        h.insert(
            "accept",
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
                .parse()
                .unwrap(),
        );
        assert_eq!(want(&h), Want::Table);
        h.insert(
            "accept",
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
                .parse()
                .unwrap(),
        );
        assert_eq!(want(&h), Want::AggregatedDiscovery);
        h.insert("accept", "application/json, */*".parse().unwrap());
        assert_eq!(want(&h), Want::Json);
    }

    #[test]
    fn query_flags() {
        let q = Query::parse(Some("watch=1&labelSelector=a%3Db&dryRun=All&empty="));
        assert!(q.flag("watch"));
        assert_eq!(q.get("labelSelector"), Some("a=b"));
        assert!(q.dry_run());
        assert_eq!(q.get("empty"), None);
    }
}
