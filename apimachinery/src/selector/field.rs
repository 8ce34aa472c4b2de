//! Field selectors (`?fieldSelector=`) and the fields each kind lets clients select on.
//!
//! Invariants:
//! - parsing follows upstream: terms split on unescaped `,`, the first `!=`, `==` or `=` splits
//!   a term, values are unescaped (`\\`, `\,`, `\=`; any other escape or a bare `,`/`=` in a
//!   value is an error with upstream's text); empty terms are skipped;
//! - matching treats a missing field as the empty string, as upstream's `fields.Set.Get`;
//! - [`field_value`] returns `None` only for fields the kind does not support, so the server can
//!   answer `field label not supported: <f>` (400); present-but-unset fields are `Some("")` or
//!   the Go zero value (`"0"`, `"false"`) like upstream's selectable-field conversions.

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

/// A field selector could not be parsed; the message is upstream's.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[error("{0}")]
pub struct FieldSelectorError(pub String);

/// Field selector operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldOp {
    /// `f=v` or `f==v`.
    Equals,
    /// `f!=v`.
    NotEquals,
}

/// One `field op value` term (value unescaped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    /// Field path, e.g. `metadata.name`.
    pub field: String,
    /// Operator.
    pub op: FieldOp,
    /// Unescaped value.
    pub value: String,
}

/// A conjunction of field requirements, sorted as upstream's parser sorts its terms.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldSelector {
    /// Requirements.
    pub requirements: Vec<FieldRequirement>,
}

fn split_terms(s: &str) -> Vec<&str> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in s.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&s[start..i]);
            start = i + 1;
        }
    }
    terms.push(&s[start..]);
    terms
}

fn split_term(term: &str) -> Option<(&str, FieldOp, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for (op, kind) in [
            ("!=", FieldOp::NotEquals),
            ("==", FieldOp::Equals),
            ("=", FieldOp::Equals),
        ] {
            if let Some(value) = rest.strip_prefix(op) {
                return Some((&term[..i], kind, value));
            }
        }
    }
    None
}

/// Reverses [`escape_value`]; errors on unknown escapes and on bare `,` or `=`.
pub fn unescape_value(s: &str) -> Result<String, FieldSelectorError> {
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            match c {
                '\\' | ',' | '=' => out.push(c),
                other => {
                    return Err(FieldSelectorError(format!(
                        "invalid field selector: invalid escape sequence: \\{other}"
                    )));
                }
            }
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            ',' | '=' => {
                return Err(FieldSelectorError(format!(
                    "invalid field selector: unescaped character in value: {c}"
                )));
            }
            other => out.push(other),
        }
    }
    if in_slash {
        return Err(FieldSelectorError(
            "invalid field selector: invalid escape sequence: \\".into(),
        ));
    }
    Ok(out)
}

/// Escapes `\`, `,` and `=` in a value.
pub fn escape_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl FieldSelector {
    /// Parses `a=b,c!=d`.
    pub fn parse(s: &str) -> Result<Self, FieldSelectorError> {
        let mut parts = split_terms(s);
        parts.sort_unstable();
        let mut requirements = Vec::new();
        for part in parts {
            if part.is_empty() {
                continue;
            }
            let Some((field, op, rhs)) = split_term(part) else {
                return Err(FieldSelectorError(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                )));
            };
            requirements.push(FieldRequirement {
                field: field.to_string(),
                op,
                value: unescape_value(rhs)?,
            });
        }
        Ok(FieldSelector { requirements })
    }

    /// True when the selector has no terms (matches everything).
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Matches using `get` to read a field; `None` counts as the empty string.
    pub fn matches(&self, get: impl Fn(&str) -> Option<String>) -> bool {
        self.requirements.iter().all(|r| {
            let v = get(&r.field).unwrap_or_default();
            match r.op {
                FieldOp::Equals => v == r.value,
                FieldOp::NotEquals => v != r.value,
            }
        })
    }

    /// Matches an object of `kind` using [`field_value`].
    pub fn matches_object(&self, kind: &str, obj: &Value) -> bool {
        self.matches(|f| field_value(kind, obj, f))
    }

    /// The value `field` must equal, if the selector pins it (`metadata.name=x`).
    pub fn requires_exact_match(&self, field: &str) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| r.field == field && r.op == FieldOp::Equals)
            .map(|r| r.value.as_str())
    }

    /// The first field not in `supported`, for the `field label not supported` error.
    pub fn unsupported_field<'a>(&'a self, supported: &[&str]) -> Option<&'a str> {
        self.requirements
            .iter()
            .map(|r| r.field.as_str())
            .find(|f| !supported.contains(f))
    }
}

impl FromStr for FieldSelector {
    type Err = FieldSelectorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let op = match r.op {
                FieldOp::Equals => "=",
                FieldOp::NotEquals => "!=",
            };
            write!(f, "{}{op}{}", r.field, escape_value(&r.value))?;
        }
        Ok(())
    }
}

const META: &[&str] = &["metadata.name", "metadata.namespace"];
const POD: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
];
const EVENT: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
];
const SECRET: &[&str] = &["metadata.name", "metadata.namespace", "type"];
const NAMESPACE: &[&str] = &["metadata.name", "metadata.namespace", "status.phase"];
const NODE: &[&str] = &["metadata.name", "metadata.namespace", "spec.unschedulable"];
const REPLICAS: &[&str] = &["metadata.name", "metadata.namespace", "status.replicas"];
const JOB: &[&str] = &["metadata.name", "metadata.namespace", "status.successful"];
const SERVICE: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "spec.clusterIP",
    "spec.type",
];
const CSR: &[&str] = &["metadata.name", "metadata.namespace", "spec.signerName"];

/// Normalises a Kind (`Pod`) or plural resource (`pods`) to the Kind.
fn kind_of(kind: &str) -> &str {
    match kind {
        "pods" | "pod" => "Pod",
        "events" | "event" => "Event",
        "secrets" | "secret" => "Secret",
        "namespaces" | "namespace" => "Namespace",
        "nodes" | "node" => "Node",
        "replicasets" | "replicaset" => "ReplicaSet",
        "replicationcontrollers" | "replicationcontroller" => "ReplicationController",
        "jobs" | "job" => "Job",
        "services" | "service" => "Service",
        "certificatesigningrequests" => "CertificateSigningRequest",
        other => other,
    }
}

/// Fields selectable for a kind (`Pod`) or plural resource (`pods`). Other kinds support
/// `metadata.name` and `metadata.namespace` only.
pub fn supported_fields(kind: &str) -> &'static [&'static str] {
    match kind_of(kind) {
        "Pod" => POD,
        "Event" => EVENT,
        "Secret" => SECRET,
        "Namespace" => NAMESPACE,
        "Node" => NODE,
        "ReplicaSet" | "ReplicationController" => REPLICAS,
        "Job" => JOB,
        "Service" => SERVICE,
        "CertificateSigningRequest" => CSR,
        _ => META,
    }
}

fn str_at(obj: &Value, path: &str) -> String {
    match crate::meta::get_path(obj, path) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    }
}

fn num_at(obj: &Value, path: &str) -> String {
    crate::meta::get_path(obj, path)
        .and_then(Value::as_i64)
        .unwrap_or(0)
        .to_string()
}

fn bool_at(obj: &Value, path: &str) -> String {
    crate::meta::get_path(obj, path)
        .and_then(Value::as_bool)
        .unwrap_or(false)
        .to_string()
}

/// The selectable value of `field` on `obj` of `kind`, or `None` if the kind does not support
/// selecting on that field.
pub fn field_value(kind: &str, obj: &Value, field: &str) -> Option<String> {
    if !supported_fields(kind).contains(&field) {
        return None;
    }
    Some(match (kind_of(kind), field) {
        ("Pod", "spec.hostNetwork") => bool_at(obj, "spec.hostNetwork"),
        ("Pod", "status.podIP") => {
            let first = crate::meta::get_path(obj, "status.podIPs.0.ip").and_then(Value::as_str);
            first.map_or_else(|| str_at(obj, "status.podIP"), str::to_string)
        }
        ("Event", "source") => str_at(obj, "source.component"),
        ("Node", "spec.unschedulable") => bool_at(obj, field),
        ("ReplicaSet" | "ReplicationController", "status.replicas") => num_at(obj, field),
        ("Job", "status.successful") => num_at(obj, field),
        _ => str_at(obj, field),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parse_and_display() {
        let cases = [
            ("", ""),
            ("metadata.name=web", "metadata.name=web"),
            ("metadata.name==web", "metadata.name=web"),
            (
                "status.phase!=Running,spec.nodeName=n1",
                "spec.nodeName=n1,status.phase!=Running",
            ),
            (r"a=x\,y\=z\\", r"a=x\,y\=z\\"),
            ("a=,,b=c", "a=,b=c"),
        ];
        for (input, want) in cases {
            let s = FieldSelector::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(s.to_string(), want, "{input}");
        }
        assert_eq!(
            FieldSelector::parse(r"a=x\,y").unwrap().requirements[0].value,
            "x,y"
        );
    }

    #[test]
    fn parse_errors() {
        let cases = [
            ("abc", "invalid selector: 'abc'; can't understand 'abc'"),
            (
                "a=b=c",
                "invalid field selector: unescaped character in value: =",
            ),
            (
                r"a=\x",
                r"invalid field selector: invalid escape sequence: \x",
            ),
            (
                r"a=b\",
                r"invalid field selector: invalid escape sequence: \",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(FieldSelector::parse(input).unwrap_err().0, want, "{input}");
        }
    }

    #[test]
    fn per_kind_fields() {
        let pod = json!({"metadata": {"name": "p", "namespace": "d"},
            "spec": {"nodeName": "n1"}, "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.1"}]}});
        assert_eq!(
            field_value("Pod", &pod, "spec.nodeName").as_deref(),
            Some("n1")
        );
        assert_eq!(
            field_value("pods", &pod, "status.podIP").as_deref(),
            Some("10.0.0.1")
        );
        assert_eq!(
            field_value("Pod", &pod, "spec.hostNetwork").as_deref(),
            Some("false")
        );
        assert_eq!(
            field_value("Pod", &pod, "spec.restartPolicy").as_deref(),
            Some("")
        );
        assert_eq!(field_value("Pod", &pod, "spec.foo"), None);
        assert_eq!(
            field_value("ConfigMap", &pod, "metadata.name").as_deref(),
            Some("p")
        );
        let ev = json!({"involvedObject": {"kind": "Pod", "name": "p", "uid": "u"}, "source": {"component": "kubelet"}, "type": "Normal"});
        let s =
            FieldSelector::parse("involvedObject.name=p,involvedObject.kind=Pod,source=kubelet")
                .unwrap();
        assert!(s.matches_object("Event", &ev));
        assert!(
            !FieldSelector::parse("type=Warning")
                .unwrap()
                .matches_object("Event", &ev)
        );
        let rs = json!({"status": {}});
        assert_eq!(
            field_value("ReplicaSet", &rs, "status.replicas").as_deref(),
            Some("0")
        );
        assert!(
            FieldSelector::parse("status.replicas!=0")
                .unwrap()
                .matches_object("ReplicaSet", &json!({"status": {"replicas": 2}}))
        );
        let sel = FieldSelector::parse("metadata.name=a,spec.bogus=1").unwrap();
        assert_eq!(
            sel.unsupported_field(supported_fields("pods")),
            Some("spec.bogus")
        );
        assert_eq!(sel.requires_exact_match("metadata.name"), Some("a"));
    }

    #[test]
    fn garbage_never_panics() {
        for s in [
            "=", "!=", "==", ",", "\\", "é=ü", "a!", "a=\\é", "!", "a===",
        ] {
            let _ = FieldSelector::parse(s);
        }
    }
}
