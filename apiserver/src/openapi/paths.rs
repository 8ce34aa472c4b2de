//! `paths` of a group-version document: one collection path, one item path, an all-namespaces
//! list path for namespaced resources, and one path per subresource, with upstream's operation
//! ids, `x-kubernetes-action` and `x-kubernetes-group-version-kind` (an object on operations).
//!
//! Every write operation (`post`, `put`, `patch`) lists `dryRun`, `fieldManager` and
//! `fieldValidation`; PATCH also lists `force`. kubectl decides whether to send
//! `fieldValidation=Strict` by finding that parameter on the kind's PATCH operation.

use serde_json::{Map, Value, json};

use super::ResourceDoc;
use super::builtin::{DELETE_OPTIONS, PATCH, STATUS};

/// Media types the server answers with.
const RESPONSE_TYPES: &[&str] = &["application/json", "application/yaml"];
const WATCH_TYPES: &[&str] = &["application/json;stream=watch"];

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "kind": kind, "version": version})
}

fn response(description: &str, schema: &Value, types: &[&str]) -> Value {
    let content: Map<String, Value> = types
        .iter()
        .map(|t| ((*t).to_string(), json!({"schema": schema})))
        .collect();
    json!({"description": description, "content": content})
}

fn unauthorized() -> Value {
    json!({"description": "Unauthorized"})
}

fn param(name: &str, location: &str, description: &str, schema: Value) -> Value {
    let mut p = json!({"name": name, "in": location, "description": description, "schema": schema});
    if location == "path" {
        p["required"] = true.into();
    }
    p
}

fn query_string(name: &str, description: &str) -> Value {
    param(
        name,
        "query",
        description,
        json!({"type": "string", "uniqueItems": true}),
    )
}

fn query_bool(name: &str, description: &str) -> Value {
    param(
        name,
        "query",
        description,
        json!({"type": "boolean", "uniqueItems": true}),
    )
}

fn query_int(name: &str, description: &str) -> Value {
    param(
        name,
        "query",
        description,
        json!({"type": "integer", "uniqueItems": true}),
    )
}

fn path_params(namespaced: bool, named: bool, subject: &str) -> Vec<Value> {
    let mut v = Vec::new();
    if named {
        v.push(param(
            "name",
            "path",
            &format!("name of the {subject}"),
            json!({"type": "string", "uniqueItems": true}),
        ));
    }
    if namespaced {
        v.push(param(
            "namespace",
            "path",
            "object name and auth scope, such as for teams and projects",
            json!({"type": "string", "uniqueItems": true}),
        ));
    }
    v.push(query_string(
        "pretty",
        "If 'true', then the output is pretty printed.",
    ));
    v
}

fn dry_run() -> Value {
    query_string(
        "dryRun",
        "When present, indicates that modifications should not be persisted. Valid value: All (process the request fully without persisting it).",
    )
}

fn field_manager() -> Value {
    query_string(
        "fieldManager",
        "Name of the actor making the change, recorded in managedFields. At most 128 printable characters.",
    )
}

fn field_validation() -> Value {
    query_string(
        "fieldValidation",
        "How the server treats unknown or duplicate fields in the request body: Ignore (drop them silently), Warn (drop them and return a warning header per field; the default) or Strict (fail the request with a BadRequest error).",
    )
}

fn force() -> Value {
    query_bool(
        "force",
        "Force an apply request to take ownership of conflicting fields from other managers. Only valid for apply patches.",
    )
}

fn list_params() -> Vec<Value> {
    vec![
        query_bool(
            "allowWatchBookmarks",
            "Ask the server to send BOOKMARK events on watches.",
        ),
        query_string(
            "continue",
            "The continue token returned by a previous list call, to fetch the next page.",
        ),
        query_string(
            "fieldSelector",
            "Restrict the returned objects by their fields.",
        ),
        query_string(
            "labelSelector",
            "Restrict the returned objects by their labels.",
        ),
        query_int(
            "limit",
            "Maximum number of items to return; a continue token is set when more remain.",
        ),
        query_string(
            "resourceVersion",
            "Constrains which resource versions the request may be served from.",
        ),
        query_string(
            "resourceVersionMatch",
            "How resourceVersion applies to list calls: Exact or NotOlderThan.",
        ),
        query_bool(
            "sendInitialEvents",
            "Start a watch with synthetic ADDED events for the current state.",
        ),
        query_int("timeoutSeconds", "Timeout for the list or watch call."),
        query_bool(
            "watch",
            "Watch for changes and return them as a stream of add, update and remove notifications.",
        ),
    ]
}

fn delete_params() -> Vec<Value> {
    vec![
        dry_run(),
        query_int(
            "gracePeriodSeconds",
            "Seconds before the object should be deleted; zero means delete immediately.",
        ),
        query_bool(
            "ignoreStoreReadErrorWithClusterBreakingPotential",
            "Delete an object that cannot be read from storage (for example, it cannot be decoded).",
        ),
        query_bool(
            "orphanDependents",
            "Deprecated: use propagationPolicy. Whether dependents are orphaned.",
        ),
        query_string(
            "propagationPolicy",
            "Whether and how garbage collection runs: Orphan, Background or Foreground.",
        ),
    ]
}

fn body(schema_name: &str) -> Value {
    json!({"content": {"*/*": {"schema": schema_ref(schema_name)}}, "required": true})
}

fn patch_body(strategic: bool) -> Value {
    let mut types = vec![
        "application/apply-patch+yaml",
        "application/json-patch+json",
        "application/merge-patch+json",
    ];
    if strategic {
        types.push("application/strategic-merge-patch+json");
    }
    let content: Map<String, Value> = types
        .into_iter()
        .map(|t| (t.to_string(), json!({"schema": schema_ref(PATCH)})))
        .collect();
    json!({"content": content, "required": true})
}

/// Naming context shared by one resource's operations.
struct Names<'a> {
    r: &'a ResourceDoc,
    /// `CoreV1`, `AppsV1`, `RbacAuthorizationV1`.
    gv: String,
    tag: String,
    scope: &'static str,
}

impl Names<'_> {
    fn op_id(&self, verb: &str, suffix: &str) -> String {
        format!("{verb}{}{}{}{suffix}", self.gv, self.scope, self.r.kind)
    }

    fn op(
        &self,
        action: &str,
        op_id: String,
        description: String,
        gvk_value: Option<Value>,
        params: Vec<Value>,
    ) -> Map<String, Value> {
        let mut op = Map::new();
        op.insert("tags".into(), json!([self.tag]));
        op.insert("description".into(), description.into());
        op.insert("operationId".into(), op_id.into());
        if !params.is_empty() {
            op.insert("parameters".into(), Value::Array(params));
        }
        op.insert("x-kubernetes-action".into(), action.into());
        if let Some(g) = gvk_value {
            op.insert("x-kubernetes-group-version-kind".into(), g);
        }
        op
    }
}

/// `Core`, `Apps`, `RbacAuthorization`, `StableExampleCom`: upstream's group token in operation ids.
fn group_token(group: &str) -> String {
    if group.is_empty() {
        return "core".into();
    }
    let trimmed = group.strip_suffix(".k8s.io").unwrap_or(group);
    let mut out = String::new();
    for (i, part) in trimmed
        .split(['.', '-'])
        .filter(|p| !p.is_empty())
        .enumerate()
    {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            if i == 0 {
                out.push(first.to_ascii_lowercase());
            } else {
                out.push(first.to_ascii_uppercase());
            }
            out.push_str(chars.as_str());
        }
    }
    out
}

fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default()
}

/// Adds every path of resource `r` to `paths`.
pub fn add_resource_paths(
    paths: &mut Map<String, Value>,
    r: &ResourceDoc,
    kind_schema: &str,
    list_schema: &str,
    strategic_patch: bool,
) {
    let token = group_token(&r.group);
    let names = Names {
        r,
        gv: format!("{}{}", upper_first(&token), upper_first(&r.version)),
        tag: format!("{token}_{}", r.version),
        scope: if r.namespaced { "Namespaced" } else { "" },
    };
    let prefix = if r.group.is_empty() {
        format!("/api/{}", r.version)
    } else {
        format!("/apis/{}/{}", r.group, r.version)
    };
    let collection = if r.namespaced {
        format!("{prefix}/namespaces/{{namespace}}/{}", r.plural)
    } else {
        format!("{prefix}/{}", r.plural)
    };
    let item = format!("{collection}/{{name}}");
    let has = |v: &str| r.verbs.iter().any(|x| x == v);
    let kind_gvk = gvk(&r.group, &r.version, &r.kind);
    let kind_ref = schema_ref(kind_schema);
    let kind = &r.kind;

    // Collection: list, create, deletecollection.
    let mut coll = Map::new();
    if has("list") {
        let mut op = names.op(
            "list",
            names.op_id("list", ""),
            format!("list or watch objects of kind {kind}"),
            Some(kind_gvk.clone()),
            list_params(),
        );
        op.insert("responses".into(), list_responses(list_schema));
        coll.insert("get".into(), Value::Object(op));
    }
    if has("create") {
        let mut op = names.op(
            "post",
            names.op_id("create", ""),
            format!("create a {kind}"),
            Some(kind_gvk.clone()),
            vec![dry_run(), field_manager(), field_validation()],
        );
        op.insert("requestBody".into(), body(kind_schema));
        op.insert(
            "responses".into(),
            json!({
                "200": response("OK", &kind_ref, RESPONSE_TYPES),
                "201": response("Created", &kind_ref, RESPONSE_TYPES),
                "202": response("Accepted", &kind_ref, RESPONSE_TYPES),
                "401": unauthorized(),
            }),
        );
        coll.insert("post".into(), Value::Object(op));
    }
    if has("deletecollection") {
        let mut params = delete_params();
        params.extend(
            list_params()
                .into_iter()
                .filter(|p| !matches!(p["name"].as_str(), Some("watch" | "allowWatchBookmarks"))),
        );
        let mut op = names.op(
            "deletecollection",
            format!("delete{}Collection{}{kind}", names.gv, names.scope),
            format!("delete collection of {kind}"),
            Some(kind_gvk.clone()),
            params,
        );
        op.insert("requestBody".into(), body(DELETE_OPTIONS));
        op.insert(
            "responses".into(),
            json!({"200": response("OK", &schema_ref(STATUS), RESPONSE_TYPES), "401": unauthorized()}),
        );
        coll.insert("delete".into(), Value::Object(op));
    }
    if !coll.is_empty() {
        coll.insert(
            "parameters".into(),
            Value::Array(path_params(r.namespaced, false, kind)),
        );
        paths.insert(collection.clone(), Value::Object(coll));
    }

    // All-namespaces list.
    if r.namespaced && has("list") {
        let mut op = names.op(
            "list",
            format!("list{}{kind}ForAllNamespaces", names.gv),
            format!("list or watch objects of kind {kind}"),
            Some(kind_gvk.clone()),
            list_params(),
        );
        op.insert("responses".into(), list_responses(list_schema));
        let mut p = Map::new();
        p.insert("get".into(), Value::Object(op));
        p.insert(
            "parameters".into(),
            json!([query_string(
                "pretty",
                "If 'true', then the output is pretty printed."
            )]),
        );
        paths.insert(format!("{prefix}/{}", r.plural), Value::Object(p));
    }

    // Item: read, replace, patch, delete.
    let mut it = Map::new();
    add_item_ops(
        &mut it,
        &names,
        "",
        kind_schema,
        &kind_gvk,
        strategic_patch,
        &has,
    );
    if has("delete") {
        let mut op = names.op(
            "delete",
            names.op_id("delete", ""),
            format!("delete a {kind}"),
            Some(kind_gvk.clone()),
            delete_params(),
        );
        op.insert("requestBody".into(), body(DELETE_OPTIONS));
        op.insert(
            "responses".into(),
            json!({
                "200": response("OK", &schema_ref(STATUS), RESPONSE_TYPES),
                "202": response("Accepted", &schema_ref(STATUS), RESPONSE_TYPES),
                "401": unauthorized(),
            }),
        );
        it.insert("delete".into(), Value::Object(op));
    }
    if !it.is_empty() {
        it.insert(
            "parameters".into(),
            Value::Array(path_params(r.namespaced, true, kind)),
        );
        paths.insert(item.clone(), Value::Object(it));
    }

    for sub in &r.subresources {
        if let Some(p) = subresource_path(&names, sub, kind_schema, &kind_gvk, strategic_patch) {
            paths.insert(format!("{item}/{sub}"), p);
        }
    }
}

fn list_responses(list_schema: &str) -> Value {
    let list_ref = schema_ref(list_schema);
    let mut types: Vec<&str> = RESPONSE_TYPES.to_vec();
    types.extend(WATCH_TYPES);
    json!({"200": response("OK", &list_ref, &types), "401": unauthorized()})
}

/// GET, PUT and PATCH on an object (or on a subresource with `suffix`, e.g. `Status`).
fn add_item_ops(
    it: &mut Map<String, Value>,
    names: &Names<'_>,
    suffix: &str,
    schema: &str,
    gvk_value: &Value,
    strategic_patch: bool,
    has: &dyn Fn(&str) -> bool,
) {
    let kind = &names.r.kind;
    let what = if suffix.is_empty() {
        format!("the specified {kind}")
    } else {
        format!("{} of the specified {kind}", suffix.to_lowercase())
    };
    let sref = schema_ref(schema);
    let ok = |desc: &str| response(desc, &sref, RESPONSE_TYPES);
    if has("get") {
        let mut op = names.op(
            "get",
            names.op_id("read", suffix),
            format!("read {what}"),
            Some(gvk_value.clone()),
            vec![],
        );
        op.insert(
            "responses".into(),
            json!({"200": ok("OK"), "401": unauthorized()}),
        );
        it.insert("get".into(), Value::Object(op));
    }
    if has("update") {
        let mut op = names.op(
            "put",
            names.op_id("replace", suffix),
            format!("replace {what}"),
            Some(gvk_value.clone()),
            vec![dry_run(), field_manager(), field_validation()],
        );
        op.insert("requestBody".into(), body(schema));
        op.insert(
            "responses".into(),
            json!({"200": ok("OK"), "201": ok("Created"), "401": unauthorized()}),
        );
        it.insert("put".into(), Value::Object(op));
    }
    if has("patch") {
        let mut op = names.op(
            "patch",
            names.op_id("patch", suffix),
            format!("partially update {what}"),
            Some(gvk_value.clone()),
            vec![dry_run(), field_manager(), field_validation(), force()],
        );
        op.insert("requestBody".into(), patch_body(strategic_patch));
        op.insert(
            "responses".into(),
            json!({"200": ok("OK"), "201": ok("Created"), "401": unauthorized()}),
        );
        it.insert("patch".into(), Value::Object(op));
    }
}

fn subresource_path(
    names: &Names<'_>,
    sub: &str,
    kind_schema: &str,
    kind_gvk: &Value,
    strategic_patch: bool,
) -> Option<Value> {
    let r = names.r;
    let suffix = upper_first(sub);
    let mut p = Map::new();
    let all = |_: &str| true;
    match sub {
        "scale" => {
            let scale = super::builtin::builtin_kind_schema_name("autoscaling", "v1", "Scale")?;
            let g = gvk("autoscaling", "v1", "Scale");
            add_item_ops(&mut p, names, &suffix, scale, &g, strategic_patch, &all);
        }
        "log" => {
            let params = vec![
                query_string("container", "The container for which to stream logs."),
                query_bool("follow", "Follow the log stream of the pod."),
                query_bool(
                    "insecureSkipTLSVerifyBackend",
                    "Skip verifying the serving certificate of the kubelet.",
                ),
                query_int("limitBytes", "Maximum number of bytes to return."),
                query_bool(
                    "previous",
                    "Return logs of the previous terminated container.",
                ),
                query_int(
                    "sinceSeconds",
                    "Relative time in seconds before now from which to show logs.",
                ),
                query_string("stream", "Which stream to return: All, Stdout or Stderr."),
                query_int(
                    "tailLines",
                    "Number of lines from the end of the logs to show.",
                ),
                query_bool(
                    "timestamps",
                    "Prefix every line of log output with an RFC3339 timestamp.",
                ),
            ];
            let mut op = names.op(
                "get",
                names.op_id("read", "Log"),
                format!("read log of the specified {}", r.kind),
                Some(kind_gvk.clone()),
                params,
            );
            op.insert(
                "responses".into(),
                json!({"200": response("OK", &json!({"type": "string"}), &["text/plain", "application/json", "application/yaml"]), "401": unauthorized()}),
            );
            p.insert("get".into(), Value::Object(op));
        }
        "exec" | "attach" | "portforward" | "proxy" => {
            let options_kind = match sub {
                "exec" => "PodExecOptions",
                "attach" => "PodAttachOptions",
                "portforward" => "PodPortForwardOptions",
                _ => "PodProxyOptions",
            };
            let params: Vec<Value> = match sub {
                "exec" => vec![
                    query_string("command", "Command to run in the container."),
                    query_string("container", "Container in which to execute the command."),
                    query_bool(
                        "stderr",
                        "Redirect the standard error stream of the command.",
                    ),
                    query_bool(
                        "stdin",
                        "Redirect the standard input stream of the command.",
                    ),
                    query_bool(
                        "stdout",
                        "Redirect the standard output stream of the command.",
                    ),
                    query_bool("tty", "Allocate a terminal for the command."),
                ],
                "attach" => vec![
                    query_string("container", "The container to attach to."),
                    query_bool("stderr", "Stream the container's standard error."),
                    query_bool("stdin", "Pass standard input to the container."),
                    query_bool("stdout", "Stream the container's standard output."),
                    query_bool("tty", "The attached stream is a terminal."),
                ],
                "portforward" => vec![query_int("ports", "Pod ports to forward.")],
                _ => vec![query_string("path", "Path to proxy to.")],
            };
            let g = gvk("", "v1", options_kind);
            for (method, verb) in [("get", "Get"), ("post", "Post")] {
                let mut op = names.op(
                    "connect",
                    format!("connect{verb}{}{}{}{suffix}", names.gv, names.scope, r.kind),
                    format!("connect {method} requests to {sub} of {}", r.kind),
                    Some(g.clone()),
                    params.clone(),
                );
                op.insert(
                    "responses".into(),
                    json!({"200": response("OK", &json!({"type": "string"}), &["*/*"]), "401": unauthorized()}),
                );
                p.insert(method.into(), Value::Object(op));
            }
        }
        "eviction" | "binding" | "token" => {
            let (g, v, k) = match sub {
                "eviction" => ("policy", "v1", "Eviction"),
                "binding" => ("", "v1", "Binding"),
                _ => ("authentication.k8s.io", "v1", "TokenRequest"),
            };
            let schema = super::builtin::builtin_kind_schema_name(g, v, k)?;
            let sref = schema_ref(schema);
            let mut op = names.op(
                "post",
                names.op_id("create", &suffix),
                format!("create {sub} of a {}", r.kind),
                Some(gvk(g, v, k)),
                vec![dry_run(), field_manager(), field_validation()],
            );
            op.insert("requestBody".into(), body(schema));
            op.insert(
                "responses".into(),
                json!({
                    "200": response("OK", &sref, RESPONSE_TYPES),
                    "201": response("Created", &sref, RESPONSE_TYPES),
                    "202": response("Accepted", &sref, RESPONSE_TYPES),
                    "401": unauthorized(),
                }),
            );
            p.insert("post".into(), Value::Object(op));
        }
        // status, ephemeralcontainers, resize and the like read and write the kind itself.
        _ => add_item_ops(
            &mut p,
            names,
            &suffix,
            kind_schema,
            kind_gvk,
            strategic_patch,
            &all,
        ),
    }
    p.insert(
        "parameters".into(),
        Value::Array(path_params(r.namespaced, true, &r.kind)),
    );
    Some(Value::Object(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_tokens() {
        assert_eq!(group_token(""), "core");
        assert_eq!(group_token("apps"), "apps");
        assert_eq!(
            group_token("rbac.authorization.k8s.io"),
            "rbacAuthorization"
        );
        assert_eq!(group_token("stable.example.com"), "stableExampleCom");
    }
}
