//! The JSONPath subset CRD `additionalPrinterColumns` use (as in kubectl's `jsonpath`, with
//! missing keys allowed): `.a.b`, `['a.b']`, `.a\.b`, `[0]`, `[-1]`, `[1:3]`, `[*]`, `.*`,
//! `..name` and filters `[?(@.type=="Ready")]` with `== != < <= > >=` or bare existence
//! `[?(@.x)]`. A path may be wrapped in `{...}` and may start with `$`.
//!
//! Evaluation never fails: anything that does not match simply yields no result.

use serde_json::Value;
use thiserror::Error;

/// Why a JSONPath expression could not be parsed.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum Error {
    #[error("unexpected character {found:?} at offset {offset} in JSONPath {path:?}")]
    Unexpected {
        path: String,
        offset: usize,
        found: char,
    },
    #[error("unterminated {what} in JSONPath {path:?}")]
    Unterminated { path: String, what: &'static str },
    #[error("invalid index {index:?} in JSONPath {path:?}")]
    BadIndex { path: String, index: String },
}

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Field(String),
    Recursive(String),
    Wildcard,
    Index(i64),
    Slice(Option<i64>, Option<i64>),
    Filter(Filter),
}

#[derive(Debug, Clone, PartialEq)]
struct Filter {
    path: Vec<Segment>,
    cmp: Option<(Op, Value)>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A parsed JSONPath expression.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath {
    segments: Vec<Segment>,
}

impl JsonPath {
    /// Parses `expr` (e.g. `.status.conditions[?(@.type=="Ready")].status`).
    pub fn parse(expr: &str) -> Result<Self, Error> {
        let trimmed = expr.trim();
        let inner = trimmed
            .strip_prefix('{')
            .and_then(|s| s.strip_suffix('}'))
            .unwrap_or(trimmed)
            .trim();
        let inner = inner.strip_prefix('$').unwrap_or(inner);
        let mut p = Parser {
            src: expr,
            chars: inner.chars().collect(),
            pos: 0,
        };
        let segments = p.segments(false)?;
        Ok(JsonPath { segments })
    }

    /// Every value the path selects, in document order.
    pub fn find<'a>(&self, root: &'a Value) -> Vec<&'a Value> {
        eval(&self.segments, vec![root])
    }

    /// The first value the path selects.
    pub fn first<'a>(&self, root: &'a Value) -> Option<&'a Value> {
        self.find(root).into_iter().next()
    }
}

struct Parser<'s> {
    src: &'s str,
    chars: Vec<char>,
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn unexpected(&self) -> Error {
        Error::Unexpected {
            path: self.src.to_string(),
            offset: self.pos,
            found: self.peek().unwrap_or('\0'),
        }
    }

    fn unterminated(&self, what: &'static str) -> Error {
        Error::Unterminated {
            path: self.src.to_string(),
            what,
        }
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    /// Parses segments until the end, or (inside a filter) until an operator or `)`.
    fn segments(&mut self, in_filter: bool) -> Result<Vec<Segment>, Error> {
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Ok(out),
                Some('.') => {
                    self.pos += 1;
                    if self.peek() == Some('.') {
                        self.pos += 1;
                        let name = self.ident();
                        if name.is_empty() {
                            return Err(self.unexpected());
                        }
                        out.push(Segment::Recursive(name));
                    } else if self.peek() == Some('*') {
                        self.pos += 1;
                        out.push(Segment::Wildcard);
                    } else {
                        let name = self.ident();
                        // A lone trailing `.` (e.g. `{.}`) selects the current node.
                        if !name.is_empty() {
                            out.push(Segment::Field(name));
                        }
                    }
                }
                Some('[') => {
                    self.pos += 1;
                    out.push(self.bracket()?);
                }
                Some(c) if in_filter && (c.is_whitespace() || "=!<>)".contains(c)) => {
                    return Ok(out);
                }
                Some(c) if !in_filter && out.is_empty() && is_ident_char(c) => {
                    // Tolerate a missing leading dot: `metadata.name`.
                    let name = self.ident();
                    out.push(Segment::Field(name));
                }
                Some(_) => return Err(self.unexpected()),
            }
        }
    }

    fn ident(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if c == '\\'
                && let Some(next) = self.chars.get(self.pos + 1).copied()
            {
                name.push(next);
                self.pos += 2;
                continue;
            }
            if !is_ident_char(c) {
                break;
            }
            name.push(c);
            self.pos += 1;
        }
        name
    }

    fn quoted(&mut self) -> Result<String, Error> {
        let quote = self.peek().ok_or_else(|| self.unterminated("string"))?;
        self.pos += 1;
        let mut s = String::new();
        loop {
            match self.peek() {
                None => return Err(self.unterminated("string")),
                Some('\\') => {
                    self.pos += 1;
                    if let Some(c) = self.peek() {
                        s.push(c);
                        self.pos += 1;
                    }
                }
                Some(c) if c == quote => {
                    self.pos += 1;
                    return Ok(s);
                }
                Some(c) => {
                    s.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn expect(&mut self, c: char, what: &'static str) -> Result<(), Error> {
        self.skip_ws();
        match self.peek() {
            Some(found) if found == c => {
                self.pos += 1;
                Ok(())
            }
            Some(_) => Err(self.unexpected()),
            None => Err(self.unterminated(what)),
        }
    }

    fn bracket(&mut self) -> Result<Segment, Error> {
        self.skip_ws();
        let seg = match self.peek() {
            Some('\'' | '"') => Segment::Field(self.quoted()?),
            Some('*') => {
                self.pos += 1;
                Segment::Wildcard
            }
            Some('?') => {
                self.pos += 1;
                self.expect('(', "filter")?;
                self.skip_ws();
                if self.peek() != Some('@') {
                    return Err(self.unexpected());
                }
                self.pos += 1;
                let path = self.segments(true)?;
                self.skip_ws();
                let cmp = if self.peek() == Some(')') {
                    None
                } else {
                    let op = self.op()?;
                    self.skip_ws();
                    Some((op, self.literal()?))
                };
                self.expect(')', "filter")?;
                Segment::Filter(Filter { path, cmp })
            }
            None => return Err(self.unterminated("bracket")),
            Some(_) => {
                let start = self.pos;
                while self.peek().is_some_and(|c| c != ']') {
                    self.pos += 1;
                }
                let text: String = self.chars[start..self.pos].iter().collect();
                self.index_or_slice(text.trim())?
            }
        };
        self.expect(']', "bracket")?;
        Ok(seg)
    }

    fn index_or_slice(&self, text: &str) -> Result<Segment, Error> {
        let bad = || Error::BadIndex {
            path: self.src.to_string(),
            index: text.to_string(),
        };
        let num = |s: &str| -> Result<Option<i64>, Error> {
            let s = s.trim();
            if s.is_empty() {
                Ok(None)
            } else {
                s.parse().map(Some).map_err(|_| bad())
            }
        };
        match text.split_once(':') {
            Some((a, b)) => {
                // A step (`::2`) is accepted and ignored only when it is 1.
                let (b, step) = b.split_once(':').unwrap_or((b, ""));
                if !matches!(step.trim(), "" | "1") {
                    return Err(bad());
                }
                Ok(Segment::Slice(num(a)?, num(b)?))
            }
            None => num(text)?.map(Segment::Index).ok_or_else(bad),
        }
    }

    fn op(&mut self) -> Result<Op, Error> {
        let two: String = self.chars[self.pos..].iter().take(2).collect();
        let (op, len) = match two.as_str() {
            "==" => (Op::Eq, 2),
            "!=" => (Op::Ne, 2),
            "<=" => (Op::Le, 2),
            ">=" => (Op::Ge, 2),
            _ if two.starts_with('<') => (Op::Lt, 1),
            _ if two.starts_with('>') => (Op::Gt, 1),
            _ if two.starts_with('=') => (Op::Eq, 1),
            _ => return Err(self.unexpected()),
        };
        self.pos += len;
        Ok(op)
    }

    fn literal(&mut self) -> Result<Value, Error> {
        match self.peek() {
            Some('\'' | '"') => Ok(Value::String(self.quoted()?)),
            Some(_) => {
                let start = self.pos;
                while self.peek().is_some_and(|c| c != ')' && !c.is_whitespace()) {
                    self.pos += 1;
                }
                let word: String = self.chars[start..self.pos].iter().collect();
                Ok(match word.as_str() {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    "nil" | "null" => Value::Null,
                    _ => serde_json::from_str::<serde_json::Number>(&word)
                        .map(Value::Number)
                        .unwrap_or(Value::String(word)),
                })
            }
            None => Err(self.unterminated("filter")),
        }
    }
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-' || c == '/' || c == '$'
}

fn eval<'a>(segments: &[Segment], mut nodes: Vec<&'a Value>) -> Vec<&'a Value> {
    for seg in segments {
        let mut next = Vec::new();
        for node in nodes {
            step(seg, node, &mut next);
        }
        nodes = next;
    }
    nodes
}

fn step<'a>(seg: &Segment, node: &'a Value, out: &mut Vec<&'a Value>) {
    match seg {
        Segment::Field(name) => {
            if let Some(v) = node.get(name.as_str()) {
                out.push(v);
            }
        }
        Segment::Recursive(name) => recurse(name, node, out),
        Segment::Wildcard => match node {
            Value::Object(m) => out.extend(m.values()),
            Value::Array(a) => out.extend(a.iter()),
            _ => {}
        },
        Segment::Index(i) => {
            if let Some(a) = node.as_array() {
                let idx = if *i < 0 {
                    i64::try_from(a.len()).unwrap_or(i64::MAX) + i
                } else {
                    *i
                };
                if let Some(v) = usize::try_from(idx).ok().and_then(|i| a.get(i)) {
                    out.push(v);
                }
            }
        }
        Segment::Slice(start, end) => {
            if let Some(a) = node.as_array() {
                let len = i64::try_from(a.len()).unwrap_or(i64::MAX);
                let clamp = |v: i64| if v < 0 { (len + v).max(0) } else { v.min(len) };
                let s = clamp(start.unwrap_or(0));
                let e = clamp(end.unwrap_or(len));
                for i in s..e {
                    if let Some(v) = usize::try_from(i).ok().and_then(|i| a.get(i)) {
                        out.push(v);
                    }
                }
            }
        }
        Segment::Filter(f) => {
            let items: Vec<&Value> = match node {
                Value::Array(a) => a.iter().collect(),
                Value::Object(m) => m.values().collect(),
                _ => Vec::new(),
            };
            out.extend(items.into_iter().filter(|item| f.matches(item)));
        }
    }
}

fn recurse<'a>(name: &str, node: &'a Value, out: &mut Vec<&'a Value>) {
    match node {
        Value::Object(m) => {
            if let Some(v) = m.get(name) {
                out.push(v);
            }
            for v in m.values() {
                recurse(name, v, out);
            }
        }
        Value::Array(a) => {
            for v in a {
                recurse(name, v, out);
            }
        }
        _ => {}
    }
}

impl Filter {
    fn matches(&self, item: &Value) -> bool {
        let found = eval(&self.path, vec![item]);
        let Some((op, lit)) = &self.cmp else {
            return !found.is_empty();
        };
        let Some(left) = found.first() else {
            return false;
        };
        match (left, lit) {
            (Value::Number(a), Value::Number(b)) => {
                let (a, b) = (a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(0.0));
                compare(*op, a.partial_cmp(&b))
            }
            (Value::String(a), Value::String(b)) => compare(*op, Some(a.cmp(b))),
            (a, b) => match op {
                Op::Eq => *a == b,
                Op::Ne => *a != b,
                _ => false,
            },
        }
    }
}

fn compare(op: Op, ord: Option<std::cmp::Ordering>) -> bool {
    use std::cmp::Ordering::{Equal, Greater, Less};
    let Some(ord) = ord else { return false };
    match op {
        Op::Eq => ord == Equal,
        Op::Ne => ord != Equal,
        Op::Lt => ord == Less,
        Op::Le => ord != Greater,
        Op::Gt => ord == Greater,
        Op::Ge => ord != Less,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({
            "metadata": {"name": "x", "labels": {"app.kubernetes.io/name": "web"}},
            "spec": {"replicas": 3, "ports": [{"port": 80}, {"port": 443}, {"port": 8080}]},
            "status": {"conditions": [
                {"type": "Ready", "status": "True", "n": 1},
                {"type": "Synced", "status": "False", "n": 2},
            ]},
        })
    }

    fn first(path: &str) -> Option<Value> {
        JsonPath::parse(path).unwrap().first(&doc()).cloned()
    }

    #[test]
    fn table() {
        let cases: &[(&str, Option<Value>)] = &[
            (".spec.replicas", Some(json!(3))),
            ("{.spec.replicas}", Some(json!(3))),
            ("$.metadata.name", Some(json!("x"))),
            ("metadata.name", Some(json!("x"))),
            (".spec.ports[1].port", Some(json!(443))),
            (".spec.ports[-1].port", Some(json!(8080))),
            (".spec.ports[*].port", Some(json!(80))),
            (".spec.ports[1:].port", Some(json!(443))),
            (
                ".status.conditions[?(@.type==\"Ready\")].status",
                Some(json!("True")),
            ),
            (
                ".status.conditions[?(@.type == 'Synced')].status",
                Some(json!("False")),
            ),
            (
                ".status.conditions[?(@.type!=\"Ready\")].type",
                Some(json!("Synced")),
            ),
            (".status.conditions[?(@.n > 1)].type", Some(json!("Synced"))),
            (".status.conditions[?(@.missing)].type", None),
            (
                ".metadata.labels['app.kubernetes.io/name']",
                Some(json!("web")),
            ),
            (
                ".metadata.labels.app\\.kubernetes\\.io/name",
                Some(json!("web")),
            ),
            ("..port", Some(json!(80))),
            (".spec.missing.deeper", None),
            (".spec.replicas.notanobject", None),
            (".spec.ports[9]", None),
        ];
        for (path, want) in cases {
            assert_eq!(&first(path), want, "{path}");
        }
    }

    #[test]
    fn all_results() {
        let p = JsonPath::parse(".spec.ports[*].port").unwrap();
        let d = doc();
        let got: Vec<&Value> = p.find(&d);
        assert_eq!(got, vec![&json!(80), &json!(443), &json!(8080)]);
    }

    #[test]
    fn parse_errors() {
        assert!(JsonPath::parse(".a[").is_err());
        assert!(JsonPath::parse(".a[x]").is_err());
        assert!(JsonPath::parse(".a[?(@.b==\"c\"]").is_err());
        assert!(JsonPath::parse(".a[?(@.b==\"c)]").is_err());
    }
}
