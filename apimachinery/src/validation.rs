//! Name, label and object-meta validation with upstream's messages.
//!
//! Invariants:
//! - the `is_*` checks return an empty list for valid input and otherwise upstream's messages
//!   (`k8s.io/apimachinery/pkg/util/validation`), in upstream's order;
//! - the `validate_*` functions return [`StatusCause`]s whose `field` is rooted at the path
//!   passed in (normally `metadata`), ready for [`crate::status::StatusError::invalid`];
//! - checks are hand-written character tests equivalent to upstream's regexes.

use serde_json::Value;

use crate::status::{Cause, StatusCause};

const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";
const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const QUALIFIED_NAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";

/// Maximum length of a DNS-1123 / DNS-1035 label.
pub const DNS1123_LABEL_MAX_LEN: usize = 63;
/// Maximum length of a DNS-1123 subdomain.
pub const DNS1123_SUBDOMAIN_MAX_LEN: usize = 253;
/// Maximum length of the name part of a qualified name, and of a label value.
pub const QUALIFIED_NAME_MAX_LEN: usize = 63;
/// Maximum total size of all annotations (keys plus values), in bytes.
pub const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// Upstream's `RegexError`: message, examples and the regex. Note the quirk of a double space
/// before `or`, which upstream prints.
pub fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let mut s = format!("{msg} (e.g. ");
    for (i, e) in examples.iter().enumerate() {
        if i > 0 {
            s.push_str(" or ");
        }
        s.push('\'');
        s.push_str(e);
        s.push_str("', ");
    }
    s.push_str("regex used for validation is '");
    s.push_str(fmt);
    s.push_str("')");
    s
}

/// `must be no more than N characters`.
pub fn max_len_error(n: usize) -> String {
    format!("must be no more than {n} characters")
}

fn lower_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

fn matches_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && lower_alnum(b[0])
        && lower_alnum(b[b.len() - 1])
        && b.iter().all(|&c| lower_alnum(c) || c == b'-')
}

fn matches_dns1123_subdomain(s: &str) -> bool {
    s.split('.').all(matches_dns1123_label)
}

fn matches_qualified_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.')
}

/// RFC 1123 label (namespace names, container names ...).
pub fn is_dns1123_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_LABEL_MAX_LEN {
        errs.push(max_len_error(DNS1123_LABEL_MAX_LEN));
    }
    if !matches_dns1123_label(value) {
        if matches_dns1123_subdomain(value) {
            errs.push("must not contain dots".to_string());
        } else {
            errs.push(regex_error(
                DNS1123_LABEL_MSG,
                DNS1123_LABEL_FMT,
                &["my-name", "123-abc"],
            ));
        }
    }
    errs
}

/// RFC 1123 subdomain (most object names).
pub fn is_dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LEN {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LEN));
    }
    if !matches_dns1123_subdomain(value) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_MSG,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// RFC 1035 label (service names).
pub fn is_dns1035_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_LABEL_MAX_LEN {
        errs.push(max_len_error(DNS1123_LABEL_MAX_LEN));
    }
    if !(matches_dns1123_label(value) && value.as_bytes()[0].is_ascii_lowercase()) {
        errs.push(regex_error(
            DNS1035_LABEL_MSG,
            DNS1035_LABEL_FMT,
            &["my-name", "abc-123"],
        ));
    }
    errs
}

/// Qualified name: `[prefix/]name` (label keys, annotation keys, finalizers).
pub fn is_qualified_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                for m in is_dns1123_subdomain(prefix) {
                    errs.push(format!("prefix part {m}"));
                }
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(
                    QUALIFIED_NAME_MSG,
                    QUALIFIED_NAME_FMT,
                    &["MyName", "my.name", "123-abc"]
                )
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > QUALIFIED_NAME_MAX_LEN {
        errs.push(format!(
            "name part {}",
            max_len_error(QUALIFIED_NAME_MAX_LEN)
        ));
    }
    if !matches_qualified_part(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_MSG,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// Label value: empty or a qualified-name part of at most 63 characters.
pub fn is_valid_label_value(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > QUALIFIED_NAME_MAX_LEN {
        errs.push(max_len_error(QUALIFIED_NAME_MAX_LEN));
    }
    if !value.is_empty() && !matches_qualified_part(value) {
        errs.push(regex_error(
            LABEL_VALUE_MSG,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// Path-segment names (RBAC objects, CRDs ...): may not be `.`/`..` or contain `/`/`%`.
pub fn is_valid_path_segment_name(value: &str) -> Vec<String> {
    if value == "." || value == ".." {
        return vec![format!("may not be '{value}'")];
    }
    let mut errs = Vec::new();
    for bad in ["/", "%"] {
        if value.contains(bad) {
            errs.push(format!("may not contain '{bad}'"));
        }
    }
    errs
}

/// Which rule an object's `metadata.name` follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// RFC 1123 subdomain (the default for most kinds).
    DnsSubdomain,
    /// RFC 1123 label (namespaces, nodes are subdomains).
    DnsLabel,
    /// RFC 1035 label (services).
    Dns1035Label,
    /// Any string that is a valid path segment (RBAC, ...).
    PathSegment,
}

impl NameRule {
    /// Validates a name; `prefix` is true for `generateName`, where a trailing `-` is allowed.
    pub fn check(self, name: &str, prefix: bool) -> Vec<String> {
        let masked;
        let name = if prefix && name.len() > 1 && name.ends_with('-') {
            masked = format!("{}a", &name[..name.len() - 1]);
            masked.as_str()
        } else {
            name
        };
        match self {
            NameRule::DnsSubdomain => is_dns1123_subdomain(name),
            NameRule::DnsLabel => is_dns1123_label(name),
            NameRule::Dns1035Label => is_dns1035_label(name),
            NameRule::PathSegment => is_valid_path_segment_name(name),
        }
    }
}

fn join(path: &str, child: &str) -> String {
    if path.is_empty() {
        child.to_string()
    } else {
        format!("{path}.{child}")
    }
}

/// Validates `labels` (a JSON map) at `path` (e.g. `metadata.labels`).
pub fn validate_labels(labels: &Value, path: &str) -> Vec<StatusCause> {
    let mut out = Vec::new();
    let Some(m) = labels.as_object() else {
        if !labels.is_null() {
            out.push(Cause::invalid(path, labels, "must be a map of strings"));
        }
        return out;
    };
    for (k, v) in m {
        for msg in is_qualified_name(k) {
            out.push(Cause::invalid(path, &Value::from(k.as_str()), &msg));
        }
        match v.as_str() {
            Some(s) => {
                for msg in is_valid_label_value(s) {
                    out.push(Cause::invalid(path, v, &msg));
                }
            }
            None => out.push(Cause::invalid(path, v, "must be a string")),
        }
    }
    out
}

/// Validates annotation keys (qualified names, case-insensitive) and the 256 KiB total size.
pub fn validate_annotations(annotations: &Value, path: &str) -> Vec<StatusCause> {
    let mut out = Vec::new();
    let Some(m) = annotations.as_object() else {
        if !annotations.is_null() {
            out.push(Cause::invalid(
                path,
                annotations,
                "must be a map of strings",
            ));
        }
        return out;
    };
    let mut total = 0usize;
    for (k, v) in m {
        for msg in is_qualified_name(&k.to_lowercase()) {
            out.push(Cause::invalid(path, &Value::from(k.as_str()), &msg));
        }
        total += k.len() + v.as_str().map_or(0, str::len);
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        out.push(Cause::too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT));
    }
    out
}

/// Validates `ownerReferences` entries and that at most one is the controller.
pub fn validate_owner_references(refs: &Value, path: &str) -> Vec<StatusCause> {
    let mut out = Vec::new();
    let Some(list) = refs.as_array() else {
        return out;
    };
    let mut first_controller: Option<String> = None;
    for r in list {
        let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("");
        let api_version = s("apiVersion");
        let version = api_version.rsplit('/').next().unwrap_or("");
        if version.is_empty() {
            out.push(Cause::invalid(
                &join(path, "apiVersion"),
                &Value::from(api_version),
                "version must not be empty",
            ));
        }
        for (k, msg) in [
            ("kind", "must not be empty"),
            ("name", "must not be empty"),
            ("uid", "must not be empty"),
        ] {
            if s(k).is_empty() {
                out.push(Cause::invalid(&join(path, k), &Value::from(""), msg));
            }
        }
        if r.get("controller").and_then(Value::as_bool) == Some(true) {
            let cur = format!("{}/{}", s("kind"), s("name"));
            match &first_controller {
                Some(first) => out.push(Cause::invalid(
                    path,
                    refs,
                    &format!(
                        "Only one reference can have Controller set to true. Found \"true\" in references for {first} and {cur}"
                    ),
                )),
                None => first_controller = Some(cur),
            }
        }
    }
    out
}

/// Validates finalizer names (qualified names) and the orphan/foreground exclusion.
pub fn validate_finalizers(finalizers: &Value, path: &str) -> Vec<StatusCause> {
    let mut out = Vec::new();
    let Some(list) = finalizers.as_array() else {
        return out;
    };
    let (mut orphan, mut foreground) = (false, false);
    for f in list {
        let s = f.as_str().unwrap_or("");
        for msg in is_qualified_name(s) {
            out.push(Cause::invalid(path, f, &msg));
        }
        orphan |= s == "orphan";
        foreground |= s == "foregroundDeletion";
    }
    if orphan && foreground {
        out.push(Cause::invalid(
            path,
            finalizers,
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
    out
}

/// Validates an object's `metadata` (the map itself) at `path` (normally `metadata`).
///
/// Checks generateName/name with `name_rule`, namespace presence per scope (and that it is a
/// DNS label), non-negative generation, labels, annotations, ownerReferences and finalizers.
pub fn validate_object_meta(
    meta: &Value,
    namespaced: bool,
    name_rule: NameRule,
    path: &str,
) -> Vec<StatusCause> {
    let mut out = Vec::new();
    let s = |k: &str| meta.get(k).and_then(Value::as_str).unwrap_or("");
    let generate_name = s("generateName");
    if !generate_name.is_empty() {
        for msg in name_rule.check(generate_name, true) {
            out.push(Cause::invalid(
                &join(path, "generateName"),
                &Value::from(generate_name),
                &msg,
            ));
        }
    }
    let name = s("name");
    if name.is_empty() {
        out.push(Cause::required(
            &join(path, "name"),
            "name or generateName is required",
        ));
    } else {
        for msg in name_rule.check(name, false) {
            out.push(Cause::invalid(
                &join(path, "name"),
                &Value::from(name),
                &msg,
            ));
        }
    }
    let ns = s("namespace");
    if namespaced {
        if ns.is_empty() {
            out.push(Cause::required(&join(path, "namespace"), ""));
        } else {
            for msg in is_dns1123_label(ns) {
                out.push(Cause::invalid(
                    &join(path, "namespace"),
                    &Value::from(ns),
                    &msg,
                ));
            }
        }
    } else if !ns.is_empty() {
        out.push(Cause::forbidden(
            &join(path, "namespace"),
            "not allowed on this type",
        ));
    }
    if let Some(g) = meta.get("generation").and_then(Value::as_i64)
        && g < 0
    {
        out.push(Cause::invalid(
            &join(path, "generation"),
            &Value::from(g),
            "must be greater than or equal to 0",
        ));
    }
    let null = Value::Null;
    out.extend(validate_labels(
        meta.get("labels").unwrap_or(&null),
        &join(path, "labels"),
    ));
    out.extend(validate_annotations(
        meta.get("annotations").unwrap_or(&null),
        &join(path, "annotations"),
    ));
    out.extend(validate_owner_references(
        meta.get("ownerReferences").unwrap_or(&null),
        &join(path, "ownerReferences"),
    ));
    out.extend(validate_finalizers(
        meta.get("finalizers").unwrap_or(&null),
        &join(path, "finalizers"),
    ));
    out
}

/// `Invalid value: <new>: field is immutable` when `old != new`.
pub fn validate_immutable(old: &Value, new: &Value, path: &str) -> Vec<StatusCause> {
    if old == new {
        Vec::new()
    } else {
        vec![Cause::invalid(path, new, "field is immutable")]
    }
}

/// Update-time checks on `metadata`: name, namespace, uid and creationTimestamp may not change
/// (the caller normally restores server-owned fields before validating).
pub fn validate_object_meta_update(new: &Value, old: &Value, path: &str) -> Vec<StatusCause> {
    let mut out = Vec::new();
    for k in ["name", "namespace", "uid", "creationTimestamp"] {
        let o = old.get(k).cloned().unwrap_or(Value::String(String::new()));
        let n = new.get(k).cloned().unwrap_or(Value::String(String::new()));
        out.extend(validate_immutable(&o, &n, &join(path, k)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dns_checks() {
        assert!(is_dns1123_label("my-name").is_empty());
        assert!(is_dns1123_label("123-abc").is_empty());
        assert_eq!(is_dns1123_label("a.b"), vec!["must not contain dots"]);
        assert_eq!(
            is_dns1123_label("Web"),
            vec![
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
            ]
        );
        assert_eq!(
            is_dns1123_label(&"a".repeat(64)),
            vec!["must be no more than 63 characters"]
        );
        assert!(is_dns1123_subdomain("example.com").is_empty());
        assert_eq!(
            is_dns1123_subdomain("Web_1"),
            vec![
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
            ]
        );
        assert!(!is_dns1123_subdomain("a..b").is_empty());
        assert!(!is_dns1123_subdomain("").is_empty());
        assert!(is_dns1035_label("my-svc").is_empty());
        assert_eq!(is_dns1035_label("1svc").len(), 1);
    }

    #[test]
    fn qualified_names_and_values() {
        for ok in [
            "app",
            "app.kubernetes.io/name",
            "A_b.c",
            "example.com/MyName",
        ] {
            assert!(is_qualified_name(ok).is_empty(), "{ok}");
        }
        assert_eq!(
            is_qualified_name("/a"),
            vec!["prefix part must be non-empty"]
        );
        assert_eq!(is_qualified_name("a/").len(), 2);
        assert_eq!(is_qualified_name("a/b/c").len(), 1);
        assert!(is_qualified_name("a/b/c")[0].starts_with("a qualified name must consist"));
        assert!(is_qualified_name("-a")[0].starts_with("name part must consist of alphanumeric"));
        assert!(is_valid_label_value("").is_empty());
        assert!(is_valid_label_value("v1.2_3-x").is_empty());
        assert_eq!(
            is_valid_label_value("a b"),
            vec![
                "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
            ]
        );
    }

    #[test]
    fn object_meta() {
        let c = validate_object_meta(&json!({}), true, NameRule::DnsSubdomain, "metadata");
        let msgs: Vec<String> = c.iter().map(StatusCause::to_error_string).collect();
        assert_eq!(
            msgs,
            vec![
                "metadata.name: Required value: name or generateName is required",
                "metadata.namespace: Required value"
            ]
        );
        let c = validate_object_meta(
            &json!({"name": "n", "namespace": "x"}),
            false,
            NameRule::DnsSubdomain,
            "metadata",
        );
        assert_eq!(
            c[0].to_error_string(),
            "metadata.namespace: Forbidden: not allowed on this type"
        );
        let c = validate_object_meta(
            &json!({"generateName": "web-", "namespace": "d", "labels": {"a": "b c"}, "finalizers": ["x/y", "-"]}),
            true,
            NameRule::DnsSubdomain,
            "metadata",
        );
        assert_eq!(c.len(), 3, "{c:?}");
        assert_eq!(c[0].field, "metadata.name");
        assert_eq!(c[1].field, "metadata.labels");
        assert!(
            c[1].message
                .starts_with("Invalid value: \"b c\": a valid label")
        );
        assert_eq!(c[2].field, "metadata.finalizers");
        let c = validate_object_meta(
            &json!({"name": "n", "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "a", "uid": "1", "controller": true},
                                                      {"apiVersion": "v1", "kind": "X", "name": "b", "uid": "2", "controller": true}]}),
            false,
            NameRule::DnsSubdomain,
            "metadata",
        );
        assert_eq!(c.len(), 1);
        assert!(
            c[0].message
                .ends_with("Found \"true\" in references for ReplicaSet/a and X/b")
        );
    }

    #[test]
    fn annotations_size_and_immutable() {
        let big = "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT);
        let c = validate_annotations(&json!({"a": big}), "metadata.annotations");
        assert_eq!(
            c[0].to_error_string(),
            "metadata.annotations: Too long: may not be more than 262144 bytes"
        );
        assert!(validate_annotations(&json!({"Example.com/Foo": "x"}), "m").is_empty());
        let c = validate_immutable(&json!("a"), &json!("b"), "spec.selector");
        assert_eq!(
            c[0].to_error_string(),
            "spec.selector: Invalid value: \"b\": field is immutable"
        );
        assert!(
            validate_object_meta_update(&json!({"name":"a"}), &json!({"name":"a"}), "metadata")
                .is_empty()
        );
    }

    #[test]
    fn garbage_never_panics() {
        for s in ["", "/", "//", "é", "a/é", "-", ".", "a..b", "\u{0}", "ä/b"] {
            let _ = is_qualified_name(s);
            let _ = is_dns1123_label(s);
            let _ = is_dns1035_label(s);
            let _ = is_dns1123_subdomain(s);
            let _ = is_valid_label_value(s);
            let _ = NameRule::DnsSubdomain.check(s, true);
        }
        let _ = validate_object_meta(&json!([1]), true, NameRule::DnsLabel, "");
        let _ = validate_object_meta(
            &json!({"labels": 3, "annotations": [1], "finalizers": {}}),
            true,
            NameRule::DnsLabel,
            "",
        );
    }
}
