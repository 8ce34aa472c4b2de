//! Label selectors: parsing, matching, conversion from `metav1.LabelSelector`, display.
//!
//! Invariants:
//! - parsing follows upstream's lexer/parser exactly, including error texts such as
//!   `unable to parse requirement: <nil>: Invalid value: "-a": ...` (upstream prints `<nil>`
//!   because the parser has no field path);
//! - requirements are kept sorted by key (stable), and set values sorted and de-duplicated,
//!   so [`LabelSelector`]'s `Display` is canonical like upstream's `String()`;
//! - an empty selector matches everything; [`LabelSelector::nothing`] (upstream's nil selector)
//!   matches nothing and displays as the empty string.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value};

use crate::status::render_value;
use crate::validation::{is_qualified_name, is_valid_label_value};

/// A label selector could not be parsed or converted; the message is upstream's.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[error("{0}")]
pub struct LabelSelectorError(pub String);

/// Requirement operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// `key in (a,b)`.
    In,
    /// `key notin (a,b)`.
    NotIn,
    /// `key=a`.
    Equals,
    /// `key==a`.
    DoubleEquals,
    /// `key!=a`.
    NotEquals,
    /// `key`.
    Exists,
    /// `!key`.
    DoesNotExist,
    /// `key>1`.
    GreaterThan,
    /// `key<1`.
    LessThan,
}

/// One `key op values` term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// Label key (a qualified name).
    pub key: String,
    /// Operator.
    pub operator: Operator,
    /// Values; sorted and unique for set operators coming from the parser.
    pub values: Vec<String>,
}

fn field_err(path: &str, value: &Value, detail: &str) -> String {
    format!("{path}: Invalid value: {}: {detail}", render_value(value))
}

fn aggregate(errs: Vec<String>) -> Option<String> {
    let mut seen: Vec<String> = Vec::new();
    for e in errs {
        if !seen.contains(&e) {
            seen.push(e);
        }
    }
    match seen.len() {
        0 => None,
        1 => seen.pop(),
        _ => Some(format!("[{}]", seen.join(", "))),
    }
}

fn validate_key(key: &str, path: &str) -> Option<String> {
    let errs = is_qualified_name(key);
    (!errs.is_empty()).then(|| field_err(path, &Value::from(key), &errs.join("; ")))
}

impl Requirement {
    /// Builds a validated requirement, with upstream's checks and messages.
    pub fn new(
        key: &str,
        operator: Operator,
        values: Vec<String>,
    ) -> Result<Self, LabelSelectorError> {
        let mut errs = Vec::new();
        if let Some(e) = validate_key(key, "key") {
            errs.push(e);
        }
        let vals = || Value::from(values.clone());
        match operator {
            Operator::In | Operator::NotIn => {
                if values.is_empty() {
                    errs.push(field_err(
                        "values",
                        &vals(),
                        "for 'in', 'notin' operators, values set can't be empty",
                    ));
                }
            }
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals => {
                if values.len() != 1 {
                    errs.push(field_err(
                        "values",
                        &vals(),
                        "exact-match compatibility requires one single value",
                    ));
                }
            }
            Operator::Exists | Operator::DoesNotExist => {
                if !values.is_empty() {
                    errs.push(field_err(
                        "values",
                        &vals(),
                        "values set must be empty for exists and does not exist",
                    ));
                }
            }
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    errs.push(field_err(
                        "values",
                        &vals(),
                        "for 'Gt', 'Lt' operators, exactly one value is required",
                    ));
                }
                for (i, v) in values.iter().enumerate() {
                    if v.parse::<i64>().is_err() {
                        errs.push(field_err(
                            &format!("values[{i}]"),
                            &Value::from(v.as_str()),
                            "for 'Gt', 'Lt' operators, the value must be an integer",
                        ));
                    }
                }
            }
        }
        for (i, v) in values.iter().enumerate() {
            let e = is_valid_label_value(v);
            if !e.is_empty() {
                errs.push(field_err(
                    &format!("values[{i}][{key}]"),
                    &Value::from(v.as_str()),
                    &e.join("; "),
                ));
            }
        }
        match aggregate(errs) {
            Some(e) => Err(LabelSelectorError(e)),
            None => Ok(Requirement {
                key: key.to_string(),
                operator,
                values,
            }),
        }
    }

    /// Whether a label set satisfies this requirement. `get` looks a label up.
    pub fn matches_with<'a>(&self, get: impl Fn(&str) -> Option<&'a str>) -> bool {
        let v = get(&self.key);
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => {
                v.is_some_and(|v| self.values.iter().any(|x| x == v))
            }
            Operator::NotIn | Operator::NotEquals => {
                v.is_none_or(|v| !self.values.iter().any(|x| x == v))
            }
            Operator::Exists => v.is_some(),
            Operator::DoesNotExist => v.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let Some(have) = v.and_then(|v| v.parse::<i64>().ok()) else {
                    return false;
                };
                let Some(want) = self.values.first().and_then(|v| v.parse::<i64>().ok()) else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    have > want
                } else {
                    have < want
                }
            }
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.operator == Operator::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let op = match self.operator {
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => " in ",
            Operator::NotIn => " notin ",
            Operator::GreaterThan => ">",
            Operator::LessThan => "<",
            Operator::Exists | Operator::DoesNotExist => return Ok(()),
        };
        f.write_str(op)?;
        let set = matches!(self.operator, Operator::In | Operator::NotIn);
        if set {
            f.write_str("(")?;
        }
        if self.values.len() == 1 {
            f.write_str(&self.values[0])?;
        } else {
            let mut v = self.values.clone();
            v.sort();
            f.write_str(&v.join(","))?;
        }
        if set {
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// A parsed label selector: a conjunction of requirements.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
    nothing: bool,
}

impl LabelSelector {
    /// Matches every object (upstream `labels.Everything()`).
    pub fn everything() -> Self {
        Self::default()
    }

    /// Matches no object (upstream `labels.Nothing()`, what a nil `metav1.LabelSelector` means).
    pub fn nothing() -> Self {
        LabelSelector {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// Parses the string form used by `?labelSelector=` and `kubectl -l`.
    pub fn parse(s: &str) -> Result<Self, LabelSelectorError> {
        let tokens = lex(s);
        let mut p = Parser { tokens, pos: 0 };
        let mut requirements = p.parse().map_err(LabelSelectorError)?;
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }

    /// Builds an equality selector from a label map (upstream `SelectorFromSet`).
    pub fn from_set(set: &BTreeMap<String, String>) -> Self {
        LabelSelector {
            requirements: set
                .iter()
                .map(|(k, v)| Requirement {
                    key: k.clone(),
                    operator: Operator::Equals,
                    values: vec![v.clone()],
                })
                .collect(),
            nothing: false,
        }
    }

    /// Converts a `metav1.LabelSelector` JSON value (`{matchLabels, matchExpressions}`).
    ///
    /// `null` gives [`LabelSelector::nothing`]; `{}` gives [`LabelSelector::everything`].
    pub fn from_metav1(v: &Value) -> Result<Self, LabelSelectorError> {
        if v.is_null() {
            return Ok(Self::nothing());
        }
        let Some(obj) = v.as_object() else {
            return Err(LabelSelectorError(format!("invalid label selector: {v}")));
        };
        let mut reqs = Vec::new();
        if let Some(ml) = obj.get("matchLabels").filter(|v| !v.is_null()) {
            let Some(ml) = ml.as_object() else {
                return Err(LabelSelectorError(
                    "matchLabels must be a map of strings".into(),
                ));
            };
            for (k, v) in ml {
                let v = v.as_str().ok_or_else(|| {
                    LabelSelectorError(format!("matchLabels[{k}] must be a string"))
                })?;
                reqs.push(Requirement::new(k, Operator::Equals, vec![v.to_string()])?);
            }
        }
        if let Some(me) = obj.get("matchExpressions").filter(|v| !v.is_null()) {
            let Some(me) = me.as_array() else {
                return Err(LabelSelectorError("matchExpressions must be a list".into()));
            };
            for e in me {
                let key = e.get("key").and_then(Value::as_str).unwrap_or("");
                let op_s = e.get("operator").and_then(Value::as_str).unwrap_or("");
                let op = match op_s {
                    "In" => Operator::In,
                    "NotIn" => Operator::NotIn,
                    "Exists" => Operator::Exists,
                    "DoesNotExist" => Operator::DoesNotExist,
                    other => {
                        return Err(LabelSelectorError(format!(
                            "{} is not a valid label selector operator",
                            render_value(&Value::from(other))
                        )));
                    }
                };
                let values: Vec<String> = e
                    .get("values")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                reqs.push(Requirement::new(key, op, values)?);
            }
        }
        reqs.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements: reqs,
            nothing: false,
        })
    }

    /// Like [`LabelSelector::from_metav1`] for an optional field (absent → nothing).
    pub fn from_metav1_opt(v: Option<&Value>) -> Result<Self, LabelSelectorError> {
        match v {
            None => Ok(Self::nothing()),
            Some(v) => Self::from_metav1(v),
        }
    }

    /// The requirements, sorted by key.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// True for a selector that matches everything.
    pub fn is_everything(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// True for the nil selector that matches nothing.
    pub fn is_nothing(&self) -> bool {
        self.nothing
    }

    /// Matches a label map.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        !self.nothing
            && self
                .requirements
                .iter()
                .all(|r| r.matches_with(|k| labels.get(k).map(String::as_str)))
    }

    /// Matches a JSON label map (`metadata.labels`); non-string values count as absent.
    pub fn matches_map(&self, labels: &Map<String, Value>) -> bool {
        !self.nothing
            && self
                .requirements
                .iter()
                .all(|r| r.matches_with(|k| labels.get(k).and_then(Value::as_str)))
    }

    /// Matches an object by its `metadata.labels`.
    pub fn matches_object(&self, obj: &Value) -> bool {
        let empty = Map::new();
        self.matches_map(crate::meta::labels_map(obj).unwrap_or(&empty))
    }

    /// If the selector requires `key` to equal exactly one value, that value.
    pub fn requires_exact_match(&self, key: &str) -> Option<&str> {
        self.requirements.iter().find_map(|r| {
            (r.key == key
                && matches!(
                    r.operator,
                    Operator::Equals | Operator::DoubleEquals | Operator::In
                )
                && r.values.len() == 1)
                .then(|| r.values[0].as_str())
        })
    }
}

impl FromStr for LabelSelector {
    type Err = LabelSelectorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

/// kubectl's `FormatLabelSelector` for a `metav1.LabelSelector`: the canonical string,
/// `<none>` when it is empty, `<error>` when it does not convert.
pub fn format_metav1(v: &Value) -> String {
    match LabelSelector::from_metav1(v) {
        Ok(s) => {
            let s = s.to_string();
            if s.is_empty() {
                "<none>".to_string()
            } else {
                s
            }
        }
        Err(_) => "<error>".to_string(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Error,
    Eos,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

fn keyword(s: &str) -> Option<Tok> {
    Some(match s {
        ")" => Tok::ClosedPar,
        "," => Tok::Comma,
        "!" => Tok::DoesNotExist,
        "==" => Tok::DoubleEquals,
        "=" => Tok::Equals,
        ">" => Tok::GreaterThan,
        "in" => Tok::In,
        "<" => Tok::LessThan,
        "!=" => Tok::NotEquals,
        "notin" => Tok::NotIn,
        "(" => Tok::OpenPar,
        _ => return None,
    })
}

fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special(c: u8) -> bool {
    matches!(c, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

/// Tokenizes like upstream's byte-oriented lexer (a 0 byte ends the input, as upstream).
fn lex(s: &str) -> Vec<(Tok, String)> {
    let b = s.as_bytes();
    let mut pos = 0;
    let mut out = Vec::new();
    let at = |i: usize| if i < b.len() { b[i] } else { 0 };
    loop {
        while at(pos) != 0 && is_ws(at(pos)) {
            pos += 1;
        }
        let c = at(pos);
        if c == 0 {
            out.push((Tok::Eos, String::new()));
            return out;
        }
        if is_special(c) {
            let start = pos;
            let mut last: Option<(Tok, usize)> = None;
            while at(pos) != 0 && is_special(at(pos)) {
                pos += 1;
                match keyword(&s[start..pos]) {
                    Some(t) => last = Some((t, pos)),
                    None if last.is_some() => {
                        pos -= 1;
                        break;
                    }
                    None => {}
                }
            }
            match last {
                Some((t, end)) => {
                    pos = end;
                    out.push((t, s[start..end].to_string()));
                }
                None => out.push((
                    Tok::Error,
                    format!("error expected: keyword found '{}'", &s[start..pos]),
                )),
            }
        } else {
            let start = pos;
            while at(pos) != 0 && !is_special(at(pos)) && !is_ws(at(pos)) {
                pos += 1;
            }
            // Identifiers end at ASCII bytes, so `start..pos` is on char boundaries.
            let lit = String::from_utf8_lossy(&b[start..pos]).into_owned();
            let t = keyword(&lit).unwrap_or(Tok::Identifier);
            out.push((t, lit));
        }
    }
}

struct Parser {
    tokens: Vec<(Tok, String)>,
    pos: usize,
}

impl Parser {
    fn map(tok: Tok, values: bool) -> Tok {
        if values && matches!(tok, Tok::In | Tok::NotIn) {
            Tok::Identifier
        } else {
            tok
        }
    }

    fn lookahead(&self, values: bool) -> (Tok, String) {
        let (t, l) = self
            .tokens
            .get(self.pos)
            .cloned()
            .unwrap_or((Tok::Eos, String::new()));
        (Self::map(t, values), l)
    }

    fn consume(&mut self, values: bool) -> (Tok, String) {
        let r = self.lookahead(values);
        if self.pos < self.tokens.len() {
            self.pos += 1;
        }
        r
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, String> {
        let mut reqs = Vec::new();
        loop {
            let (tok, lit) = self.lookahead(true);
            match tok {
                Tok::Identifier | Tok::DoesNotExist => {
                    let r = self
                        .parse_requirement()
                        .map_err(|e| format!("unable to parse requirement: {e}"))?;
                    reqs.push(r);
                    let (t, l) = self.consume(true);
                    match t {
                        Tok::Eos => return Ok(reqs),
                        Tok::Comma => {
                            let (t2, l2) = self.lookahead(true);
                            if t2 != Tok::Identifier && t2 != Tok::DoesNotExist {
                                return Err(format!(
                                    "found '{l2}', expected: identifier after ','"
                                ));
                            }
                        }
                        _ => return Err(format!("found '{l}', expected: ',' or 'end of string'")),
                    }
                }
                Tok::Eos => return Ok(reqs),
                _ => {
                    return Err(format!(
                        "found '{lit}', expected: !, identifier, or 'end of string'"
                    ));
                }
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, String> {
        let mut op = None;
        let (mut tok, mut lit) = self.consume(true);
        if tok == Tok::DoesNotExist {
            op = Some(Operator::DoesNotExist);
            (tok, lit) = self.consume(true);
        }
        if tok != Tok::Identifier {
            return Err(format!("found '{lit}', expected: identifier"));
        }
        if let Some(e) = validate_key(&lit, "<nil>") {
            return Err(e);
        }
        let key = lit;
        let (next, _) = self.lookahead(true);
        if matches!(next, Tok::Eos | Tok::Comma) || op.is_some() {
            // `!a=b`: like upstream, the requirement ends at the key and the caller then
            // rejects the `=`.
            let op = op.unwrap_or(Operator::Exists);
            return Requirement::new(&key, op, Vec::new()).map_err(|e| e.0);
        }
        let op = self.parse_operator()?;
        let values = match op {
            Operator::In | Operator::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        Requirement::new(&key, op, values).map_err(|e| e.0)
    }

    fn parse_operator(&mut self) -> Result<Operator, String> {
        let (tok, lit) = self.consume(false);
        Ok(match tok {
            Tok::In => Operator::In,
            Tok::Equals => Operator::Equals,
            Tok::DoubleEquals => Operator::DoubleEquals,
            Tok::GreaterThan => Operator::GreaterThan,
            Tok::LessThan => Operator::LessThan,
            Tok::NotIn => Operator::NotIn,
            Tok::NotEquals => Operator::NotEquals,
            _ => {
                return Err(format!(
                    "found '{lit}', expected: '=', '!=', '==', 'in', notin'"
                ));
            }
        })
    }

    fn parse_values(&mut self) -> Result<Vec<String>, String> {
        let (tok, lit) = self.consume(true);
        if tok != Tok::OpenPar {
            return Err(format!("found '{lit}' expected: '('"));
        }
        let (tok, lit) = self.lookahead(true);
        match tok {
            Tok::Identifier | Tok::Comma => {
                let s = self.parse_identifiers_list()?;
                if self.consume(true).0 != Tok::ClosedPar {
                    return Err(format!("found '{lit}', expected: ')'"));
                }
                Ok(s)
            }
            Tok::ClosedPar => {
                self.consume(true);
                Ok(vec![String::new()])
            }
            _ => Err(format!("found '{lit}', expected: ',', ')' or identifier")),
        }
    }

    fn parse_identifiers_list(&mut self) -> Result<Vec<String>, String> {
        let mut s = std::collections::BTreeSet::new();
        loop {
            let (tok, lit) = self.consume(true);
            match tok {
                Tok::Identifier => {
                    s.insert(lit);
                    let (t2, l2) = self.lookahead(true);
                    match t2 {
                        Tok::Comma => continue,
                        Tok::ClosedPar => return Ok(s.into_iter().collect()),
                        _ => return Err(format!("found '{l2}', expected: ',' or ')'")),
                    }
                }
                Tok::Comma => {
                    if s.is_empty() {
                        s.insert(String::new());
                    }
                    let (t2, _) = self.lookahead(true);
                    if t2 == Tok::ClosedPar {
                        s.insert(String::new());
                        return Ok(s.into_iter().collect());
                    }
                    if t2 == Tok::Comma {
                        self.consume(true);
                        s.insert(String::new());
                    }
                }
                _ => return Err(format!("found '{lit}', expected: ',', or identifier")),
            }
        }
    }

    fn parse_exact_value(&mut self) -> Result<Vec<String>, String> {
        let (tok, _) = self.lookahead(true);
        if matches!(tok, Tok::Eos | Tok::Comma) {
            return Ok(vec![String::new()]);
        }
        let (tok, lit) = self.consume(true);
        if tok == Tok::Identifier {
            Ok(vec![lit])
        } else {
            Err(format!("found '{lit}', expected: identifier"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parse_and_display() {
        let cases = [
            ("", ""),
            ("a=b", "a=b"),
            ("a==b", "a==b"),
            ("a!=b", "a!=b"),
            (" a = b , c ", "a=b,c"),
            (
                "x in (foo,,baz),y,z notin ()",
                "x in (,baz,foo),y,z notin ()",
            ),
            ("b,!a", "!a,b"),
            ("env in (prod, dev)", "env in (dev,prod)"),
            ("a>1,b<2", "a>1,b<2"),
            ("in in (in,notin)", "in in (in,notin)"),
            ("app.kubernetes.io/name=web", "app.kubernetes.io/name=web"),
            ("a=", "a="),
        ];
        for (input, want) in cases {
            let s = LabelSelector::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(s.to_string(), want, "{input}");
        }
    }

    #[test]
    fn parse_errors() {
        let cases = [
            ("a=b c", "found 'c', expected: ',' or 'end of string'"),
            ("!a=b", "found '=', expected: ',' or 'end of string'"),
            ("a,", "found '', expected: identifier after ','"),
            (
                "=a",
                "found '=', expected: !, identifier, or 'end of string'",
            ),
            (
                "a in b",
                "unable to parse requirement: found 'b' expected: '('",
            ),
            (
                "a in (b",
                "unable to parse requirement: found '', expected: ',' or ')'",
            ),
            (
                "a (b)",
                "unable to parse requirement: found '(', expected: '=', '!=', '==', 'in', notin'",
            ),
            (
                "a>x",
                "unable to parse requirement: values[0]: Invalid value: \"x\": for 'Gt', 'Lt' operators, the value must be an integer",
            ),
            (
                "-a=b",
                "unable to parse requirement: <nil>: Invalid value: \"-a\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
            ),
            (
                "a=b@",
                "unable to parse requirement: values[0][a]: Invalid value: \"b@\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
            ),
        ];
        for (input, want) in cases {
            let e = LabelSelector::parse(input).expect_err(input);
            assert_eq!(e.0, want, "{input}");
        }
    }

    #[test]
    fn matching() {
        let l = labels(&[("app", "web"), ("tier", "fe"), ("n", "5")]);
        let cases = [
            ("", true),
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("missing!=x", true),
            ("app in (web,db)", true),
            ("app notin (web)", false),
            ("missing notin (web)", true),
            ("app", true),
            ("!app", false),
            ("!missing", true),
            ("n>4,n<6", true),
            ("n>5", false),
            ("app>1", false),
            ("app=web,tier=be", false),
        ];
        for (sel, want) in cases {
            let s = LabelSelector::parse(sel).unwrap();
            assert_eq!(s.matches(&l), want, "{sel}");
            let m: Map<String, Value> = l.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
            assert_eq!(s.matches_map(&m), want, "{sel}");
        }
        assert!(!LabelSelector::nothing().matches(&l));
        assert!(LabelSelector::everything().matches(&l));
    }

    #[test]
    fn metav1_conversion() {
        let s = LabelSelector::from_metav1(&json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "dev"]},
                                 {"key": "canary", "operator": "DoesNotExist"}]
        }))
        .unwrap();
        assert_eq!(s.to_string(), "app=web,!canary,env in (dev,prod)");
        assert!(s.matches(&labels(&[("app", "web"), ("env", "dev")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("env", "dev"), ("canary", "1")])));
        assert!(
            LabelSelector::from_metav1(&json!({}))
                .unwrap()
                .is_everything()
        );
        assert!(
            LabelSelector::from_metav1(&Value::Null)
                .unwrap()
                .is_nothing()
        );
        assert_eq!(
            LabelSelector::from_metav1(
                &json!({"matchExpressions": [{"key": "a", "operator": "Foo"}]})
            )
            .unwrap_err()
            .0,
            "\"Foo\" is not a valid label selector operator"
        );
        assert_eq!(
            LabelSelector::from_metav1(
                &json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]})
            )
            .unwrap_err()
            .0,
            "values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty"
        );
        assert_eq!(format_metav1(&json!({})), "<none>");
        assert_eq!(
            format_metav1(&json!({"matchLabels": {"b": "1", "a": "2"}})),
            "a=2,b=1"
        );
    }

    #[test]
    fn garbage_never_panics() {
        for s in [
            "(",
            ")",
            "!",
            "!!",
            "!=",
            "a in (",
            "a in ((",
            "a notin",
            "é=ü",
            "a=b,,",
            ",",
            "a<",
            "<>",
            "=!=",
            "a\u{0}b",
            "!a=b",
            "!a in (x)",
            "x in (a,,)",
        ] {
            let _ = LabelSelector::parse(s);
        }
        for v in [
            json!(1),
            json!({"matchLabels": 1}),
            json!({"matchExpressions": [1, {"key": 2}]}),
            json!({"matchLabels": {"a": 1}}),
        ] {
            let _ = LabelSelector::from_metav1(&v);
        }
    }
}
