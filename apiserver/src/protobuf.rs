//! Decoding of Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`).
//!
//! client-go's typed clients (used by `kubectl create <kind>` and friends) send objects as protobuf: the
//! 4-byte magic `k8s\0` followed by a `runtime.Unknown` envelope
//! (`typeMeta{apiVersion=1, kind=2}=1, raw=2, contentEncoding=3, contentType=4`) whose `raw` holds the
//! object message. This module turns such a body into the JSON object the Go apiserver would have
//! decoded, so the rest of k1s only ever sees `serde_json::Value`.
//!
//! The wire decoder is hand-written and treats the input as hostile: every length is checked against
//! the remaining input before use (nothing is allocated from an unchecked length), nesting is capped at
//! [`MAX_DEPTH`], and malformed input of any kind is an error, never a panic. Unknown field numbers are
//! an error too, so data is never silently dropped.
//!
//! Decoding is driven by static descriptor tables (one `static` per message, see [`tables`]). Field
//! numbers and types come from upstream's `generated.proto`; the JSON names and the Go shapes from the
//! `json`/`protobuf` struct tags. Upstream's Go marshaller always writes non-pointer scalar fields, even
//! when they hold the zero value, and Go's JSON encoder then drops them again when they are tagged
//! `omitempty`; such fields are marked [`Card::Zero`] and their zero values are omitted here too, so the
//! result equals what `kubectl` sends as JSON. Every other field is emitted exactly when it is present on
//! the wire (so explicit `replicas: 0` or `automountServiceAccountToken: false` survive).

use base64::Engine;
use serde_json::{Map, Value};

/// The prefix of every Kubernetes protobuf body.
pub const MAGIC: &[u8] = b"k8s\0";

/// The media type of Kubernetes protobuf bodies.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// Deepest message nesting accepted.
pub const MAX_DEPTH: usize = 64;

/// Why a protobuf body could not be decoded.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum ProtobufError {
    #[error("provided protobuf body does not start with the \"k8s\\x00\" prefix")]
    MissingMagic,
    #[error("truncated protobuf data in message {0}")]
    Truncated(&'static str),
    #[error("malformed varint in message {0}")]
    BadVarint(&'static str),
    #[error("invalid field number 0 in message {0}")]
    ZeroField(&'static str),
    #[error("unsupported wire type {wire} for field {field} in message {msg}")]
    WireType {
        msg: &'static str,
        field: u64,
        wire: u8,
    },
    #[error("unknown field number {field} in message {msg}")]
    UnknownField { msg: &'static str, field: u64 },
    #[error("protobuf message nesting exceeds {MAX_DEPTH} levels")]
    TooDeep,
    #[error("invalid value for {field} in message {msg}: {reason}")]
    InvalidValue {
        msg: &'static str,
        field: &'static str,
        reason: String,
    },
    #[error("object 'Kind' is missing in protobuf envelope")]
    MissingKind,
    #[error("object 'apiVersion' is missing in protobuf envelope")]
    MissingApiVersion,
    #[error("unsupported protobuf content encoding {0:?}")]
    ContentEncoding(String),
    #[error("unsupported protobuf content type {0:?}")]
    ContentType(String),
    /// No descriptor for this kind; callers answer 415 so the client can retry as JSON.
    #[error("no protobuf decoder for kind {kind:?} in {api_version:?}")]
    UnknownKind { api_version: String, kind: String },
}

type Result<T> = std::result::Result<T, ProtobufError>;

/// Decodes a Kubernetes protobuf body (magic `k8s\0` + `runtime.Unknown`) into the JSON object upstream
/// would have decoded, with `apiVersion` and `kind` set from the envelope.
pub fn decode(bytes: &[u8]) -> Result<Value> {
    let body = bytes
        .strip_prefix(MAGIC)
        .ok_or(ProtobufError::MissingMagic)?;
    let env = decode_envelope(body)?;
    if !env.content_encoding.is_empty() {
        return Err(ProtobufError::ContentEncoding(env.content_encoding));
    }
    if !env.content_type.is_empty() && env.content_type != CONTENT_TYPE {
        return Err(ProtobufError::ContentType(env.content_type));
    }
    if env.kind.is_empty() {
        return Err(ProtobufError::MissingKind);
    }
    if env.api_version.is_empty() {
        return Err(ProtobufError::MissingApiVersion);
    }
    let message =
        tables::lookup(&env.api_version, &env.kind).ok_or_else(|| ProtobufError::UnknownKind {
            api_version: env.api_version.clone(),
            kind: env.kind.clone(),
        })?;
    let mut out = Map::new();
    out.insert("kind".into(), Value::String(env.kind));
    out.insert("apiVersion".into(), Value::String(env.api_version));
    decode_message(env.raw, message, &mut out, 1)?;
    Ok(Value::Object(out))
}

/// The decoded `runtime.Unknown` envelope.
struct Envelope<'a> {
    api_version: String,
    kind: String,
    raw: &'a [u8],
    content_encoding: String,
    content_type: String,
}

fn decode_envelope(body: &[u8]) -> Result<Envelope<'_>> {
    const UNKNOWN: &str = "Unknown";
    const TYPE_META: &str = "TypeMeta";
    let mut env = Envelope {
        api_version: String::new(),
        kind: String::new(),
        raw: &[],
        content_encoding: String::new(),
        content_type: String::new(),
    };
    let mut r = Reader::new(body, UNKNOWN);
    while let Some((field, wire)) = r.key()? {
        let data = r.len_delimited(field, wire)?;
        match field {
            1 => {
                let mut t = Reader::new(data, TYPE_META);
                while let Some((field, wire)) = t.key()? {
                    let s = t.len_delimited(field, wire)?;
                    match field {
                        1 => env.api_version = utf8(s),
                        2 => env.kind = utf8(s),
                        _ => return Err(t.unknown(field)),
                    }
                }
            }
            2 => env.raw = data,
            3 => env.content_encoding = utf8(data),
            4 => env.content_type = utf8(data),
            _ => return Err(r.unknown(field)),
        }
    }
    Ok(env)
}

/// How a field's value is placed in the JSON object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Card {
    /// Emitted whenever present on the wire (pointers, structs, maps, non-`omitempty` scalars).
    One,
    /// A non-pointer `omitempty` scalar: Go always writes it, and its zero value means "unset".
    Zero,
    /// A repeated field: a JSON array, omitted when empty.
    Rep,
}

/// The type of a field's value.
#[derive(Clone, Copy, Debug)]
pub enum Ty {
    Str,
    /// `bytes`, base64 in JSON.
    Bytes,
    I32,
    I64,
    Bool,
    F64,
    Msg(&'static Message),
    /// An embedded Go struct with no JSON name: its fields are merged into the parent object.
    Inline(&'static Message),
    /// `map<string, V>`, a JSON object.
    MapOf(&'static Ty),
    /// `meta.v1.Time{seconds=1, nanos=2}`: RFC 3339 at second precision, `null` when zero.
    Time,
    /// `meta.v1.MicroTime{seconds=1, nanos=2}`: RFC 3339 with 6 fraction digits, `null` when zero.
    MicroTime,
    /// `meta.v1.Duration{duration=1}` (nanoseconds): a Go duration string such as `1h0m0s`.
    Duration,
    /// `intstr.IntOrString{type=1, intVal=2, strVal=3}`: a JSON number or string.
    IntOrString,
    /// `resource.Quantity{string=1}`: a JSON string.
    Quantity,
    /// `runtime.RawExtension{raw=1}`: embedded JSON.
    RawExtension,
    /// `meta.v1.FieldsV1{Raw=1}`: embedded JSON.
    FieldsV1,
}

/// A field of a message.
#[derive(Debug)]
pub struct Field {
    pub tag: u32,
    /// The JSON name (empty for [`Ty::Inline`]).
    pub json: &'static str,
    pub card: Card,
    pub ty: Ty,
}

/// A message descriptor.
#[derive(Debug)]
pub struct Message {
    pub name: &'static str,
    pub fields: &'static [Field],
}

impl Message {
    fn field(&self, tag: u64) -> Option<&'static Field> {
        self.fields.iter().find(|f| u64::from(f.tag) == tag)
    }
}

const fn f(tag: u32, json: &'static str, card: Card, ty: Ty) -> Field {
    Field {
        tag,
        json,
        card,
        ty,
    }
}

const fn msg(name: &'static str, fields: &'static [Field]) -> Message {
    Message { name, fields }
}

const WIRE_VARINT: u8 = 0;
const WIRE_I64: u8 = 1;
const WIRE_LEN: u8 = 2;

/// A cursor over protobuf wire data; every read is bounds-checked.
struct Reader<'a> {
    buf: &'a [u8],
    msg: &'static str,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], msg: &'static str) -> Self {
        Self { buf, msg }
    }

    fn varint(&mut self) -> Result<u64> {
        let mut value = 0u64;
        for i in 0..10 {
            let (&b, rest) = self
                .buf
                .split_first()
                .ok_or(ProtobufError::Truncated(self.msg))?;
            self.buf = rest;
            if i == 9 && b > 1 {
                return Err(ProtobufError::BadVarint(self.msg));
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(value);
            }
        }
        Err(ProtobufError::BadVarint(self.msg))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.buf.len() {
            return Err(ProtobufError::Truncated(self.msg));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    /// The next field key as (field number, wire type), or `None` at the end.
    fn key(&mut self) -> Result<Option<(u64, u8)>> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let field = key >> 3;
        if field == 0 {
            return Err(ProtobufError::ZeroField(self.msg));
        }
        Ok(Some((field, (key & 7) as u8)))
    }

    fn len_delimited(&mut self, field: u64, wire: u8) -> Result<&'a [u8]> {
        self.expect(field, wire, WIRE_LEN)?;
        let len = self.varint()?;
        let len = usize::try_from(len).map_err(|_| ProtobufError::Truncated(self.msg))?;
        self.take(len)
    }

    fn expect(&self, field: u64, wire: u8, want: u8) -> Result<()> {
        if wire == want {
            Ok(())
        } else {
            Err(ProtobufError::WireType {
                msg: self.msg,
                field,
                wire,
            })
        }
    }

    fn unknown(&self, field: u64) -> ProtobufError {
        ProtobufError::UnknownField {
            msg: self.msg,
            field,
        }
    }

    /// Reads one scalar of the wire type `ty` needs (after checking `wire`).
    fn scalar(&mut self, field: u64, wire: u8, ty: Ty) -> Result<u64> {
        match ty {
            Ty::F64 => {
                self.expect(field, wire, WIRE_I64)?;
                let b = self.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                Ok(u64::from_le_bytes(a))
            }
            _ => {
                self.expect(field, wire, WIRE_VARINT)?;
                self.varint()
            }
        }
    }
}

/// Go's lenient conversion of string bytes (invalid UTF-8 becomes U+FFFD when marshalled to JSON).
fn utf8(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn invalid(msg: &'static str, field: &'static str, reason: impl Into<String>) -> ProtobufError {
    ProtobufError::InvalidValue {
        msg,
        field,
        reason: reason.into(),
    }
}

fn is_packable(ty: Ty) -> bool {
    matches!(ty, Ty::I32 | Ty::I64 | Ty::Bool | Ty::F64)
}

fn scalar_json(msg: &'static str, field: &'static Field, ty: Ty, raw: u64) -> Result<Value> {
    Ok(match ty {
        // Two's complement truncation, as Go's `int32(v)`.
        Ty::I32 => Value::from(raw as u32 as i32),
        Ty::I64 => Value::from(raw as i64),
        Ty::Bool => Value::Bool(raw != 0),
        Ty::F64 => {
            let v = f64::from_bits(raw);
            serde_json::Number::from_f64(v)
                .map(Value::Number)
                .ok_or_else(|| invalid(msg, field.json, format!("{v} is not a JSON number")))?
        }
        // Only called with the scalar types above; null keeps this total without panicking.
        _ => Value::Null,
    })
}

/// Decodes the message `buf` of type `message` into `out` (merging, as protobuf does).
fn decode_message(
    buf: &[u8],
    message: &'static Message,
    out: &mut Map<String, Value>,
    depth: usize,
) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(ProtobufError::TooDeep);
    }
    let mut r = Reader::new(buf, message.name);
    while let Some((tag, wire)) = r.key()? {
        let field = message.field(tag).ok_or_else(|| r.unknown(tag))?;
        let ty = field.ty;
        match ty {
            Ty::I32 | Ty::I64 | Ty::Bool | Ty::F64 => {
                if field.card == Card::Rep && wire == WIRE_LEN && is_packable(ty) {
                    let data = r.len_delimited(tag, wire)?;
                    let mut p = Reader::new(data, message.name);
                    while !p.buf.is_empty() {
                        let raw = p.scalar(
                            tag,
                            if matches!(ty, Ty::F64) {
                                WIRE_I64
                            } else {
                                WIRE_VARINT
                            },
                            ty,
                        )?;
                        push(out, field, scalar_json(message.name, field, ty, raw)?);
                    }
                    continue;
                }
                let raw = r.scalar(tag, wire, ty)?;
                place(out, field, scalar_json(message.name, field, ty, raw)?);
            }
            Ty::Inline(inner) => {
                let data = r.len_delimited(tag, wire)?;
                decode_message(data, inner, out, depth + 1)?;
            }
            Ty::Msg(inner) if field.card != Card::Rep => {
                let data = r.len_delimited(tag, wire)?;
                let slot = out
                    .entry(field.json)
                    .or_insert_with(|| Value::Object(Map::new()));
                if !slot.is_object() {
                    *slot = Value::Object(Map::new());
                }
                if let Value::Object(obj) = slot {
                    decode_message(data, inner, obj, depth + 1)?;
                }
            }
            Ty::MapOf(value_ty) => {
                let data = r.len_delimited(tag, wire)?;
                let (key, value) = decode_map_entry(data, message, field, *value_ty, depth + 1)?;
                let slot = out
                    .entry(field.json)
                    .or_insert_with(|| Value::Object(Map::new()));
                if !slot.is_object() {
                    *slot = Value::Object(Map::new());
                }
                if let Value::Object(obj) = slot {
                    obj.insert(key, value);
                }
            }
            _ => {
                let data = r.len_delimited(tag, wire)?;
                let value = decode_len_value(data, message, field, ty, depth + 1)?;
                place(out, field, value);
            }
        }
    }
    Ok(())
}

/// Stores a single (non-message-merge) value per the field's cardinality.
fn place(out: &mut Map<String, Value>, field: &'static Field, value: Value) {
    match field.card {
        Card::Rep => push(out, field, value),
        Card::Zero if is_zero(&value) => {
            out.remove(field.json);
        }
        Card::Zero | Card::One => {
            out.insert(field.json.into(), value);
        }
    }
}

fn push(out: &mut Map<String, Value>, field: &'static Field, value: Value) {
    let slot = out
        .entry(field.json)
        .or_insert_with(|| Value::Array(Vec::new()));
    if !slot.is_array() {
        *slot = Value::Array(Vec::new());
    }
    if let Value::Array(items) = slot {
        items.push(value);
    }
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::String(s) => s.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Null => true,
        Value::Array(_) | Value::Object(_) => false,
    }
}

/// Decodes a length-delimited value (string, bytes, message or special type).
fn decode_len_value(
    data: &[u8],
    parent: &'static Message,
    field: &'static Field,
    ty: Ty,
    depth: usize,
) -> Result<Value> {
    if depth > MAX_DEPTH {
        return Err(ProtobufError::TooDeep);
    }
    Ok(match ty {
        Ty::Str => Value::String(utf8(data)),
        Ty::Bytes => Value::String(base64::engine::general_purpose::STANDARD.encode(data)),
        Ty::Msg(inner) => {
            let mut obj = Map::new();
            decode_message(data, inner, &mut obj, depth)?;
            Value::Object(obj)
        }
        Ty::Time | Ty::MicroTime => decode_time(data, parent, field, matches!(ty, Ty::MicroTime))?,
        Ty::Duration => {
            let mut r = Reader::new(data, "Duration");
            let mut nanos = 0i64;
            while let Some((tag, wire)) = r.key()? {
                match tag {
                    1 => nanos = r.scalar(tag, wire, Ty::I64)? as i64,
                    _ => return Err(r.unknown(tag)),
                }
            }
            Value::String(go_duration(nanos))
        }
        Ty::IntOrString => {
            let mut r = Reader::new(data, "IntOrString");
            let (mut kind, mut int_val, mut str_val) = (0i64, 0i32, String::new());
            while let Some((tag, wire)) = r.key()? {
                match tag {
                    1 => kind = r.scalar(tag, wire, Ty::I64)? as i64,
                    2 => int_val = r.scalar(tag, wire, Ty::I32)? as u32 as i32,
                    3 => str_val = utf8(r.len_delimited(tag, wire)?),
                    _ => return Err(r.unknown(tag)),
                }
            }
            match kind {
                0 => Value::from(int_val),
                1 => Value::String(str_val),
                other => {
                    return Err(invalid(
                        parent.name,
                        field.json,
                        format!("impossible IntOrString type {other}"),
                    ));
                }
            }
        }
        Ty::Quantity => {
            let mut r = Reader::new(data, "Quantity");
            let mut s = String::from("0");
            while let Some((tag, wire)) = r.key()? {
                match tag {
                    1 => s = utf8(r.len_delimited(tag, wire)?),
                    _ => return Err(r.unknown(tag)),
                }
            }
            Value::String(s)
        }
        Ty::RawExtension | Ty::FieldsV1 => {
            let name = if matches!(ty, Ty::FieldsV1) {
                "FieldsV1"
            } else {
                "RawExtension"
            };
            let mut r = Reader::new(data, name);
            let mut raw: Option<&[u8]> = None;
            while let Some((tag, wire)) = r.key()? {
                match tag {
                    1 => raw = Some(r.len_delimited(tag, wire)?),
                    _ => return Err(r.unknown(tag)),
                }
            }
            match raw {
                None | Some([]) => Value::Null,
                Some(raw) => serde_json::from_slice(raw)
                    .map_err(|e| invalid(parent.name, field.json, format!("embedded JSON: {e}")))?,
            }
        }
        Ty::I32 | Ty::I64 | Ty::Bool | Ty::F64 | Ty::Inline(_) | Ty::MapOf(_) => {
            return Err(ProtobufError::WireType {
                msg: parent.name,
                field: u64::from(field.tag),
                wire: WIRE_LEN,
            });
        }
    })
}

/// Decodes a map entry (`key=1` string, `value=2`); a missing value is the type's zero value.
fn decode_map_entry(
    data: &[u8],
    parent: &'static Message,
    field: &'static Field,
    value_ty: Ty,
    depth: usize,
) -> Result<(String, Value)> {
    let mut r = Reader::new(data, parent.name);
    let mut key = String::new();
    let mut value: Option<Value> = None;
    while let Some((tag, wire)) = r.key()? {
        match tag {
            1 => key = utf8(r.len_delimited(tag, wire)?),
            2 => match value_ty {
                Ty::I32 | Ty::I64 | Ty::Bool | Ty::F64 => {
                    let raw = r.scalar(tag, wire, value_ty)?;
                    value = Some(scalar_json(parent.name, field, value_ty, raw)?);
                }
                _ => {
                    let d = r.len_delimited(tag, wire)?;
                    value = Some(decode_len_value(d, parent, field, value_ty, depth)?);
                }
            },
            _ => {
                return Err(invalid(
                    parent.name,
                    field.json,
                    format!("unknown field number {tag} in map entry"),
                ));
            }
        }
    }
    let value = match value {
        Some(v) => v,
        None => match value_ty {
            Ty::I32 | Ty::I64 | Ty::F64 => Value::from(0),
            Ty::Bool => Value::Bool(false),
            _ => decode_len_value(&[], parent, field, value_ty, depth)?,
        },
    };
    Ok((key, value))
}

/// Seconds of Go's zero `time.Time` (0001-01-01T00:00:00Z) relative to the Unix epoch.
const GO_ZERO_TIME: i64 = -62_135_596_800;

fn decode_time(
    data: &[u8],
    parent: &'static Message,
    field: &'static Field,
    micro: bool,
) -> Result<Value> {
    if data.is_empty() {
        return Ok(Value::Null);
    }
    let mut r = Reader::new(data, if micro { "MicroTime" } else { "Time" });
    let (mut seconds, mut nanos) = (0i64, 0i32);
    while let Some((tag, wire)) = r.key()? {
        match tag {
            1 => seconds = r.scalar(tag, wire, Ty::I64)? as i64,
            2 => nanos = r.scalar(tag, wire, Ty::I32)? as u32 as i32,
            _ => return Err(r.unknown(tag)),
        }
    }
    if seconds == GO_ZERO_TIME && nanos == 0 {
        return Ok(Value::Null);
    }
    if !(0..1_000_000_000).contains(&nanos) {
        return Err(invalid(parent.name, field.json, format!("nanos {nanos}")));
    }
    let ts = jiff::Timestamp::new(seconds, nanos)
        .map_err(|e| invalid(parent.name, field.json, e.to_string()))?;
    let dt = ts.to_zoned(jiff::tz::TimeZone::UTC).datetime();
    if dt.year() < 0 {
        return Err(invalid(parent.name, field.json, "year outside of [0,9999]"));
    }
    let base = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    );
    Ok(Value::String(if micro {
        format!("{base}.{:06}Z", nanos / 1000)
    } else {
        format!("{base}Z")
    }))
}

/// Formats nanoseconds like Go's `time.Duration.String`.
fn go_duration(d: i64) -> String {
    let sign = if d < 0 { "-" } else { "" };
    let u = d.unsigned_abs();
    let frac = |v: u64, digits: usize| -> String {
        if v == 0 {
            String::new()
        } else {
            let s = format!("{v:0digits$}");
            format!(".{}", s.trim_end_matches('0'))
        }
    };
    if u == 0 {
        return "0s".into();
    }
    if u < 1_000 {
        return format!("{sign}{u}ns");
    }
    if u < 1_000_000 {
        return format!("{sign}{}{}µs", u / 1_000, frac(u % 1_000, 3));
    }
    if u < 1_000_000_000 {
        return format!("{sign}{}{}ms", u / 1_000_000, frac(u % 1_000_000, 6));
    }
    let secs = u / 1_000_000_000;
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    let mut out = String::from(sign);
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&format!("{s}{}s", frac(u % 1_000_000_000, 9)));
    out
}

/// The descriptor tables: every message reachable from the kinds in [`lookup`](tables::lookup).
///
/// Field numbers and wire types follow upstream's `generated.proto` (k8s.io/api and
/// k8s.io/apimachinery); JSON names and [`Card::Zero`] (non-pointer `omitempty` scalars) follow the Go
/// struct tags. Fields appear in `generated.proto` order (alphabetical by name).
#[rustfmt::skip]
pub mod tables {
    use super::Card::{One, Rep, Zero};
    use super::Ty::{
        Bool, Bytes, FieldsV1, I32, I64, Inline, IntOrString, MapOf, MicroTime, Msg, Quantity, Str,
        Time,
    };
    use super::{Message, f, msg};

    /// The message for a kind sent by client-go's typed clients, by envelope `apiVersion` and `kind`.
    pub fn lookup(api_version: &str, kind: &str) -> Option<&'static Message> {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        if version != "v1" {
            return None;
        }
        Some(match (group, kind) {
            // Registered in every group version (and in meta.k8s.io/v1).
            (_, "DeleteOptions") => &META_DELETE_OPTIONS,
            ("", "ConfigMap") => &CORE_CONFIG_MAP,
            ("", "Secret") => &CORE_SECRET,
            ("", "Namespace") => &CORE_NAMESPACE,
            ("", "Service") => &CORE_SERVICE,
            ("", "ServiceAccount") => &CORE_SERVICE_ACCOUNT,
            ("", "Pod") => &CORE_POD,
            ("", "ResourceQuota") => &CORE_RESOURCE_QUOTA,
            ("", "LimitRange") => &CORE_LIMIT_RANGE,
            ("", "Endpoints") => &CORE_ENDPOINTS,
            ("", "Event") => &CORE_EVENT,
            ("", "Node") => &CORE_NODE,
            ("", "Binding") => &CORE_BINDING,
            ("apps", "Deployment") => &APPS_DEPLOYMENT,
            ("apps", "ReplicaSet") => &APPS_REPLICA_SET,
            ("apps", "StatefulSet") => &APPS_STATEFUL_SET,
            ("apps", "DaemonSet") => &APPS_DAEMON_SET,
            ("autoscaling", "Scale") => &AUTOSCALING_SCALE,
            ("policy", "Eviction") => &POLICY_EVICTION,
            ("authentication.k8s.io", "TokenRequest") => &AUTHN_TOKEN_REQUEST,
            ("policy", "PodDisruptionBudget") => &POLICY_POD_DISRUPTION_BUDGET,
            _ => return None,
        })
    }

    pub(super) static CORE_CONFIG_MAP: Message = msg("ConfigMap", &[
        f(1, "metadata", One, Msg(&META_OBJECT_META)),
        f(4, "immutable", One, Bool),
        f(2, "data", One, MapOf(&Str)),
        f(3, "binaryData", One, MapOf(&Bytes)),
    ]);
    pub(super) static CORE_SECRET: Message = msg("Secret", &[
        f(1, "metadata", One, Msg(&META_OBJECT_META)),
        f(5, "immutable", One, Bool),
        f(2, "data", One, MapOf(&Bytes)),
        f(4, "stringData", One, MapOf(&Str)),
        f(3, "type", Zero, Str),
    ]);
    pub(super) static CORE_NAMESPACE: Message = msg("Namespace", &[
        f(1, "metadata", One, Msg(&META_OBJECT_META)),
        f(2, "spec", One, Msg(&CORE_NAMESPACE_SPEC)),
        f(3, "status", One, Msg(&CORE_NAMESPACE_STATUS)),
    ]);
    pub(super) static CORE_SERVICE: Message = msg("Service", &[
        f(1, "metadata", One, Msg(&META_OBJECT_META)),
        f(2, "spec", One, Msg(&CORE_SERVICE_SPEC)),
        f(3, "status", One, Msg(&CORE_SERVICE_STATUS)),
    ]);
    pub(super) static CORE_SERVICE_ACCOUNT: Message = msg("ServiceAccount", &[
        f(1, "metadata", One, Msg(&META_OBJECT_META)),
        f(2, "secrets", Rep, Msg(&CORE_OBJECT_REFERENCE)),
        f(3, "imagePullSecrets", Rep, Msg(&CORE_LOCAL_OBJECT_REFERENCE)),
        f(4, "automountServiceAccountToken", One, Bool),
    ]);
    pub(super) static CORE_POD: Message = msg("Pod", &[
        f(1, "metadata", One, Msg(&META_OBJECT_META)),
        f(2, "spec", One, Msg(&CORE_POD_SPEC)),
        f(3, "status", One, Msg(&CORE_POD_STATUS)),
    ]);
    pub(super) static CORE_RESOURCE_QUOTA: Message = msg("ResourceQuota", &[
        f(1, "metadata", One, Msg(&META_OBJECT_META)),
        f(2, "spec", One, Msg(&CORE_RESOURCE_QUOTA_SPEC)),
        f(3, "status", One, Msg(&CORE_RESOURCE_QUOTA_STATUS)),
    ]);
    pub(super) static CORE_LIMIT_RANGE: Message = msg("LimitRange", &[
        f(1, "metadata", One, Msg(&META_OBJECT_META)),
        f(2, "spec", One, Msg(&CORE_LIMIT_RANGE_SPEC)),
    ]);
    pub(super) static CORE_ENDPOINTS: Message = msg("Endpoints", &[
        f(1, "metadata", One, Msg(&META_OBJECT_META)),
        f(2, "subsets", Rep, Msg(&CORE_ENDPOINT_SUBSET)),
    ]);
    pub(super) static CORE_EVENT: Message = msg("Event", &[
        f(1, "metadata", One, Msg(&META_OBJECT_META)),
        f(2, "involvedObject", One, Msg(&CORE_OBJECT_REFERENCE)),
        f(3, "reason", Zero, Str),
        f(4, "message", Zero, Str),
        f(5, "source", One, Msg(&CORE_EVENT_SOURCE)),
        f(6, "firstTimestamp", One, Time),
        f(7, "lastTimestamp", One, Time),
        f(8, "count", Zero, I32),
        f(9, "type", Zero, Str),
        f(10, "eventTime", One, MicroTime),
        f(11, "series", One, Msg(&CORE_EVENT_SERIES)),
        f(12, "action", Zero, Str),
        f(13, "related", One, Msg(&CORE_OBJECT_REFERENCE)),
        f(14, "reportingComponent", One, Str),
        f(15, "reportingInstance", One, Str),
    ]);
    pub(super) static CORE_NODE: Message = msg("Node", &[
        f(1, "metadata", One, Msg(&META_OBJECT_META)),
        f(2, "spec", One, Msg(&CORE_NODE_SPEC)),
        f(3, "status", One, Msg(&CORE_NODE_STATUS)),
    ]);
    pub(super) static CORE_BINDING: Message = msg("Binding", &[
        f(1, "metadata", One, Msg(&META_OBJECT_META)),
        f(2, "target", One, Msg(&CORE_OBJECT_REFERENCE)),
    ]);
    pub(super) static APPS_DEPLOYMENT: Message = msg("Deployment", &[
        f(1, "metadata", One, Msg(&META_OBJECT_META)),
        f(2, "spec", One, Msg(&APPS_DEPLOYMENT_SPEC)),
        f(3, "status", One, Msg(&APPS_DEPLOYMENT_STATUS)),
    ]);
    pub(super) static APPS_REPLICA_SET: Message = msg("ReplicaSet", &[
        f(1, "metadata", One, Msg(&META_OBJECT_META)),
        f(2, "spec", One, Msg(&APPS_REPLICA_SET_SPEC)),
        f(3, "status", One, Msg(&APPS_REPLICA_SET_STATUS)),
    ]);
    pub(super) static APPS_STATEFUL_SET: Message = msg("StatefulSet", &[
        f(1, "metadata", One, Msg(&META_OBJECT_META)),
        f(2, "spec", One, Msg(&APPS_STATEFUL_SET_SPEC)),
        f(3, "status", One, Msg(&APPS_STATEFUL_SET_STATUS)),
    ]);
    pub(super) static APPS_DAEMON_SET: Message = msg("DaemonSet", &[
        f(1, "metadata", One, Msg(&META_OBJECT_META)),
        f(2, "spec", One, Msg(&APPS_DAEMON_SET_SPEC)),
        f(3, "status", One, Msg(&APPS_DAEMON_SET_STATUS)),
    ]);
    pub(super) static AUTOSCALING_SCALE: Message = msg("Scale", &[
        f(1, "metadata", One, Msg(&META_OBJECT_META)),
        f(2, "spec", One, Msg(&AUTOSCALING_SCALE_SPEC)),
        f(3, "status", One, Msg(&AUTOSCALING_SCALE_STATUS)),
    ]);
    pub(super) static AUTHN_TOKEN_REQUEST: Message = msg("TokenRequest", &[
        f(1, "metadata", One, Msg(&META_OBJECT_META)),
        f(2, "spec", One, Msg(&AUTHN_TOKEN_REQUEST_SPEC)),
        f(3, "status", One, Msg(&AUTHN_TOKEN_REQUEST_STATUS)),
    ]);
    pub(super) static AUTHN_TOKEN_REQUEST_SPEC: Message = msg("TokenRequestSpec", &[
        f(1, "audiences", Rep, Str),
        f(3, "boundObjectRef", One, Msg(&AUTHN_BOUND_OBJECT_REFERENCE)),
        f(4, "expirationSeconds", One, I64),
    ]);
    pub(super) static AUTHN_BOUND_OBJECT_REFERENCE: Message = msg("BoundObjectReference", &[
        f(2, "apiVersion", Zero, Str),
        f(1, "kind", Zero, Str),
        f(3, "name", Zero, Str),
        f(4, "uid", Zero, Str),
    ]);
    pub(super) static AUTHN_TOKEN_REQUEST_STATUS: Message = msg("TokenRequestStatus", &[
        f(2, "expirationTimestamp", One, Time),
        f(1, "token", One, Str),
    ]);
    pub(super) static POLICY_EVICTION: Message = msg("Eviction", &[
        f(1, "metadata", One, Msg(&META_OBJECT_META)),
        f(2, "deleteOptions", One, Msg(&META_DELETE_OPTIONS)),
    ]);
    pub(super) static POLICY_POD_DISRUPTION_BUDGET: Message = msg("PodDisruptionBudget", &[
        f(1, "metadata", One, Msg(&META_OBJECT_META)),
        f(2, "spec", One, Msg(&POLICY_POD_DISRUPTION_BUDGET_SPEC)),
        f(3, "status", One, Msg(&POLICY_POD_DISRUPTION_BUDGET_STATUS)),
    ]);
    pub(super) static POLICY_POD_DISRUPTION_BUDGET_SPEC: Message = msg("PodDisruptionBudgetSpec", &[
        f(3, "maxUnavailable", One, IntOrString),
        f(1, "minAvailable", One, IntOrString),
        f(2, "selector", One, Msg(&META_LABEL_SELECTOR)),
        f(4, "unhealthyPodEvictionPolicy", One, Str),
    ]);
    pub(super) static POLICY_POD_DISRUPTION_BUDGET_STATUS: Message = msg("PodDisruptionBudgetStatus", &[
        f(7, "conditions", Rep, Msg(&META_CONDITION)),
        f(4, "currentHealthy", Zero, I32),
        f(5, "desiredHealthy", Zero, I32),
        f(2, "disruptedPods", One, MapOf(&Time)),
        f(3, "disruptionsAllowed", Zero, I32),
        f(6, "expectedPods", Zero, I32),
        f(1, "observedGeneration", Zero, I64),
    ]);
    pub(super) static META_DELETE_OPTIONS: Message = msg("DeleteOptions", &[
        f(1, "gracePeriodSeconds", One, I64),
        f(2, "preconditions", One, Msg(&META_PRECONDITIONS)),
        f(3, "orphanDependents", One, Bool),
        f(4, "propagationPolicy", One, Str),
        f(5, "dryRun", Rep, Str),
        f(6, "ignoreStoreReadErrorWithClusterBreakingPotential", One, Bool),
    ]);
    pub(super) static META_OBJECT_META: Message = msg("ObjectMeta", &[
        f(1, "name", Zero, Str),
        f(2, "generateName", Zero, Str),
        f(3, "namespace", Zero, Str),
        f(4, "selfLink", Zero, Str),
        f(5, "uid", Zero, Str),
        f(6, "resourceVersion", Zero, Str),
        f(7, "generation", Zero, I64),
        f(8, "creationTimestamp", One, Time),
        f(9, "deletionTimestamp", One, Time),
        f(10, "deletionGracePeriodSeconds", One, I64),
        f(11, "labels", One, MapOf(&Str)),
        f(12, "annotations", One, MapOf(&Str)),
        f(13, "ownerReferences", Rep, Msg(&META_OWNER_REFERENCE)),
        f(14, "finalizers", Rep, Str),
        f(17, "managedFields", Rep, Msg(&META_MANAGED_FIELDS_ENTRY)),
    ]);
    pub(super) static CORE_NAMESPACE_SPEC: Message = msg("NamespaceSpec", &[
        f(1, "finalizers", Rep, Str),
    ]);
    pub(super) static CORE_NAMESPACE_STATUS: Message = msg("NamespaceStatus", &[
        f(1, "phase", Zero, Str),
        f(2, "conditions", Rep, Msg(&CORE_NAMESPACE_CONDITION)),
    ]);
    pub(super) static CORE_SERVICE_SPEC: Message = msg("ServiceSpec", &[
        f(1, "ports", Rep, Msg(&CORE_SERVICE_PORT)),
        f(2, "selector", One, MapOf(&Str)),
        f(3, "clusterIP", Zero, Str),
        f(18, "clusterIPs", Rep, Str),
        f(4, "type", Zero, Str),
        f(5, "externalIPs", Rep, Str),
        f(7, "sessionAffinity", Zero, Str),
        f(8, "loadBalancerIP", Zero, Str),
        f(9, "loadBalancerSourceRanges", Rep, Str),
        f(10, "externalName", Zero, Str),
        f(11, "externalTrafficPolicy", Zero, Str),
        f(12, "healthCheckNodePort", Zero, I32),
        f(13, "publishNotReadyAddresses", Zero, Bool),
        f(14, "sessionAffinityConfig", One, Msg(&CORE_SESSION_AFFINITY_CONFIG)),
        f(19, "ipFamilies", Rep, Str),
        f(17, "ipFamilyPolicy", One, Str),
        f(20, "allocateLoadBalancerNodePorts", One, Bool),
        f(21, "loadBalancerClass", One, Str),
        f(22, "internalTrafficPolicy", One, Str),
        f(23, "trafficDistribution", One, Str),
    ]);
    pub(super) static CORE_SERVICE_STATUS: Message = msg("ServiceStatus", &[
        f(1, "loadBalancer", One, Msg(&CORE_LOAD_BALANCER_STATUS)),
        f(2, "conditions", Rep, Msg(&META_CONDITION)),
    ]);
    pub(super) static CORE_OBJECT_REFERENCE: Message = msg("ObjectReference", &[
        f(1, "kind", Zero, Str),
        f(2, "namespace", Zero, Str),
        f(3, "name", Zero, Str),
        f(4, "uid", Zero, Str),
        f(5, "apiVersion", Zero, Str),
        f(6, "resourceVersion", Zero, Str),
        f(7, "fieldPath", Zero, Str),
    ]);
    pub(super) static CORE_LOCAL_OBJECT_REFERENCE: Message = msg("LocalObjectReference", &[
        f(1, "name", Zero, Str),
    ]);
    pub(super) static CORE_POD_SPEC: Message = msg("PodSpec", &[
        f(1, "volumes", Rep, Msg(&CORE_VOLUME)),
        f(20, "initContainers", Rep, Msg(&CORE_CONTAINER)),
        f(2, "containers", Rep, Msg(&CORE_CONTAINER)),
        f(34, "ephemeralContainers", Rep, Msg(&CORE_EPHEMERAL_CONTAINER)),
        f(3, "restartPolicy", Zero, Str),
        f(4, "terminationGracePeriodSeconds", One, I64),
        f(5, "activeDeadlineSeconds", One, I64),
        f(6, "dnsPolicy", Zero, Str),
        f(7, "nodeSelector", One, MapOf(&Str)),
        f(8, "serviceAccountName", Zero, Str),
        f(9, "serviceAccount", Zero, Str),
        f(21, "automountServiceAccountToken", One, Bool),
        f(10, "nodeName", Zero, Str),
        f(11, "hostNetwork", Zero, Bool),
        f(12, "hostPID", Zero, Bool),
        f(13, "hostIPC", Zero, Bool),
        f(27, "shareProcessNamespace", One, Bool),
        f(14, "securityContext", One, Msg(&CORE_POD_SECURITY_CONTEXT)),
        f(15, "imagePullSecrets", Rep, Msg(&CORE_LOCAL_OBJECT_REFERENCE)),
        f(16, "hostname", Zero, Str),
        f(17, "subdomain", Zero, Str),
        f(18, "affinity", One, Msg(&CORE_AFFINITY)),
        f(19, "schedulerName", Zero, Str),
        f(22, "tolerations", Rep, Msg(&CORE_TOLERATION)),
        f(23, "hostAliases", Rep, Msg(&CORE_HOST_ALIAS)),
        f(24, "priorityClassName", Zero, Str),
        f(25, "priority", One, I32),
        f(26, "dnsConfig", One, Msg(&CORE_POD_DNS_CONFIG)),
        f(28, "readinessGates", Rep, Msg(&CORE_POD_READINESS_GATE)),
        f(29, "runtimeClassName", One, Str),
        f(30, "enableServiceLinks", One, Bool),
        f(31, "preemptionPolicy", One, Str),
        f(32, "overhead", One, MapOf(&Quantity)),
        f(33, "topologySpreadConstraints", Rep, Msg(&CORE_TOPOLOGY_SPREAD_CONSTRAINT)),
        f(35, "setHostnameAsFQDN", One, Bool),
        f(36, "os", One, Msg(&CORE_POD_OS)),
        f(37, "hostUsers", One, Bool),
        f(38, "schedulingGates", Rep, Msg(&CORE_POD_SCHEDULING_GATE)),
        f(39, "resourceClaims", Rep, Msg(&CORE_POD_RESOURCE_CLAIM)),
        f(40, "resources", One, Msg(&CORE_RESOURCE_REQUIREMENTS)),
        f(41, "hostnameOverride", One, Str),
        f(43, "schedulingGroup", One, Msg(&CORE_POD_SCHEDULING_GROUP)),
        f(44, "evictionResponders", Rep, Msg(&CORE_EVICTION_RESPONDER)),
    ]);
    pub(super) static CORE_POD_STATUS: Message = msg("PodStatus", &[
        f(17, "observedGeneration", Zero, I64),
        f(1, "phase", Zero, Str),
        f(2, "conditions", Rep, Msg(&CORE_POD_CONDITION)),
        f(3, "message", Zero, Str),
        f(4, "reason", Zero, Str),
        f(11, "nominatedNodeName", Zero, Str),
        f(5, "hostIP", Zero, Str),
        f(16, "hostIPs", Rep, Msg(&CORE_HOST_IP)),
        f(6, "podIP", Zero, Str),
        f(12, "podIPs", Rep, Msg(&CORE_POD_IP)),
        f(7, "startTime", One, Time),
        f(10, "initContainerStatuses", Rep, Msg(&CORE_CONTAINER_STATUS)),
        f(8, "containerStatuses", Rep, Msg(&CORE_CONTAINER_STATUS)),
        f(9, "qosClass", Zero, Str),
        f(13, "ephemeralContainerStatuses", Rep, Msg(&CORE_CONTAINER_STATUS)),
        f(14, "resize", Zero, Str),
        f(15, "resourceClaimStatuses", Rep, Msg(&CORE_POD_RESOURCE_CLAIM_STATUS)),
        f(18, "extendedResourceClaimStatus", One, Msg(&CORE_POD_EXTENDED_RESOURCE_CLAIM_STATUS)),
        f(19, "allocatedResources", One, MapOf(&Quantity)),
        f(20, "resources", One, Msg(&CORE_RESOURCE_REQUIREMENTS)),
        f(21, "nodeAllocatableResourceClaimStatuses", Rep, Msg(&CORE_NODE_ALLOCATABLE_RESOURCE_CLAIM_STATUS)),
        f(22, "volumeHealth", Rep, Msg(&CORE_POD_VOLUME_HEALTH)),
    ]);
    pub(super) static CORE_RESOURCE_QUOTA_SPEC: Message = msg("ResourceQuotaSpec", &[
        f(1, "hard", One, MapOf(&Quantity)),
        f(2, "scopes", Rep, Str),
        f(3, "scopeSelector", One, Msg(&CORE_SCOPE_SELECTOR)),
    ]);
    pub(super) static CORE_RESOURCE_QUOTA_STATUS: Message = msg("ResourceQuotaStatus", &[
        f(1, "hard", One, MapOf(&Quantity)),
        f(2, "used", One, MapOf(&Quantity)),
    ]);
    pub(super) static CORE_LIMIT_RANGE_SPEC: Message = msg("LimitRangeSpec", &[
        f(1, "limits", Rep, Msg(&CORE_LIMIT_RANGE_ITEM)),
    ]);
    pub(super) static CORE_ENDPOINT_SUBSET: Message = msg("EndpointSubset", &[
        f(1, "addresses", Rep, Msg(&CORE_ENDPOINT_ADDRESS)),
        f(2, "notReadyAddresses", Rep, Msg(&CORE_ENDPOINT_ADDRESS)),
        f(3, "ports", Rep, Msg(&CORE_ENDPOINT_PORT)),
    ]);
    pub(super) static CORE_EVENT_SOURCE: Message = msg("EventSource", &[
        f(1, "component", Zero, Str),
        f(2, "host", Zero, Str),
    ]);
    pub(super) static CORE_EVENT_SERIES: Message = msg("EventSeries", &[
        f(1, "count", Zero, I32),
        f(2, "lastObservedTime", One, MicroTime),
    ]);
    pub(super) static CORE_NODE_SPEC: Message = msg("NodeSpec", &[
        f(1, "podCIDR", Zero, Str),
        f(7, "podCIDRs", Rep, Str),
        f(3, "providerID", Zero, Str),
        f(4, "unschedulable", Zero, Bool),
        f(5, "taints", Rep, Msg(&CORE_TAINT)),
        f(6, "configSource", One, Msg(&CORE_NODE_CONFIG_SOURCE)),
        f(2, "externalID", Zero, Str),
        f(8, "podPreemptionPolicy", One, Msg(&CORE_NODE_POD_PREEMPTION_POLICY)),
    ]);
    pub(super) static CORE_NODE_STATUS: Message = msg("NodeStatus", &[
        f(1, "capacity", One, MapOf(&Quantity)),
        f(2, "allocatable", One, MapOf(&Quantity)),
        f(3, "phase", Zero, Str),
        f(4, "conditions", Rep, Msg(&CORE_NODE_CONDITION)),
        f(5, "addresses", Rep, Msg(&CORE_NODE_ADDRESS)),
        f(6, "daemonEndpoints", One, Msg(&CORE_NODE_DAEMON_ENDPOINTS)),
        f(7, "nodeInfo", One, Msg(&CORE_NODE_SYSTEM_INFO)),
        f(8, "images", Rep, Msg(&CORE_CONTAINER_IMAGE)),
        f(9, "volumesInUse", Rep, Str),
        f(10, "volumesAttached", Rep, Msg(&CORE_ATTACHED_VOLUME)),
        f(11, "config", One, Msg(&CORE_NODE_CONFIG_STATUS)),
        f(12, "runtimeHandlers", Rep, Msg(&CORE_NODE_RUNTIME_HANDLER)),
        f(13, "features", One, Msg(&CORE_NODE_FEATURES)),
        f(14, "declaredFeatures", Rep, Str),
    ]);
    pub(super) static APPS_DEPLOYMENT_SPEC: Message = msg("DeploymentSpec", &[
        f(1, "replicas", One, I32),
        f(2, "selector", One, Msg(&META_LABEL_SELECTOR)),
        f(3, "template", One, Msg(&CORE_POD_TEMPLATE_SPEC)),
        f(4, "strategy", One, Msg(&APPS_DEPLOYMENT_STRATEGY)),
        f(5, "minReadySeconds", Zero, I32),
        f(6, "revisionHistoryLimit", One, I32),
        f(7, "paused", Zero, Bool),
        f(9, "progressDeadlineSeconds", One, I32),
    ]);
    pub(super) static APPS_DEPLOYMENT_STATUS: Message = msg("DeploymentStatus", &[
        f(1, "observedGeneration", Zero, I64),
        f(2, "replicas", Zero, I32),
        f(3, "updatedReplicas", Zero, I32),
        f(7, "readyReplicas", Zero, I32),
        f(4, "availableReplicas", Zero, I32),
        f(5, "unavailableReplicas", Zero, I32),
        f(9, "terminatingReplicas", One, I32),
        f(6, "conditions", Rep, Msg(&APPS_DEPLOYMENT_CONDITION)),
        f(8, "collisionCount", One, I32),
    ]);
    pub(super) static APPS_REPLICA_SET_SPEC: Message = msg("ReplicaSetSpec", &[
        f(1, "replicas", One, I32),
        f(4, "minReadySeconds", Zero, I32),
        f(2, "selector", One, Msg(&META_LABEL_SELECTOR)),
        f(3, "template", One, Msg(&CORE_POD_TEMPLATE_SPEC)),
    ]);
    pub(super) static APPS_REPLICA_SET_STATUS: Message = msg("ReplicaSetStatus", &[
        f(1, "replicas", One, I32),
        f(2, "fullyLabeledReplicas", Zero, I32),
        f(4, "readyReplicas", Zero, I32),
        f(5, "availableReplicas", Zero, I32),
        f(7, "terminatingReplicas", One, I32),
        f(3, "observedGeneration", Zero, I64),
        f(6, "conditions", Rep, Msg(&APPS_REPLICA_SET_CONDITION)),
    ]);
    pub(super) static APPS_STATEFUL_SET_SPEC: Message = msg("StatefulSetSpec", &[
        f(1, "replicas", One, I32),
        f(2, "selector", One, Msg(&META_LABEL_SELECTOR)),
        f(3, "template", One, Msg(&CORE_POD_TEMPLATE_SPEC)),
        f(4, "volumeClaimTemplates", Rep, Msg(&CORE_PERSISTENT_VOLUME_CLAIM)),
        f(5, "serviceName", One, Str),
        f(6, "podManagementPolicy", Zero, Str),
        f(7, "updateStrategy", One, Msg(&APPS_STATEFUL_SET_UPDATE_STRATEGY)),
        f(8, "revisionHistoryLimit", One, I32),
        f(9, "minReadySeconds", Zero, I32),
        f(10, "persistentVolumeClaimRetentionPolicy", One, Msg(&APPS_STATEFUL_SET_PERSISTENT_VOLUME_CLAIM_RETENTION_POLICY)),
        f(11, "ordinals", One, Msg(&APPS_STATEFUL_SET_ORDINALS)),
    ]);
    pub(super) static APPS_STATEFUL_SET_STATUS: Message = msg("StatefulSetStatus", &[
        f(1, "observedGeneration", Zero, I64),
        f(2, "replicas", One, I32),
        f(3, "readyReplicas", Zero, I32),
        f(4, "currentReplicas", Zero, I32),
        f(5, "updatedReplicas", Zero, I32),
        f(6, "currentRevision", Zero, Str),
        f(7, "updateRevision", Zero, Str),
        f(9, "collisionCount", One, I32),
        f(10, "conditions", Rep, Msg(&APPS_STATEFUL_SET_CONDITION)),
        f(11, "availableReplicas", One, I32),
    ]);
    pub(super) static APPS_DAEMON_SET_SPEC: Message = msg("DaemonSetSpec", &[
        f(1, "selector", One, Msg(&META_LABEL_SELECTOR)),
        f(2, "template", One, Msg(&CORE_POD_TEMPLATE_SPEC)),
        f(3, "updateStrategy", One, Msg(&APPS_DAEMON_SET_UPDATE_STRATEGY)),
        f(4, "minReadySeconds", Zero, I32),
        f(6, "revisionHistoryLimit", One, I32),
    ]);
    pub(super) static APPS_DAEMON_SET_STATUS: Message = msg("DaemonSetStatus", &[
        f(1, "currentNumberScheduled", One, I32),
        f(2, "numberMisscheduled", One, I32),
        f(3, "desiredNumberScheduled", One, I32),
        f(4, "numberReady", One, I32),
        f(5, "observedGeneration", Zero, I64),
        f(6, "updatedNumberScheduled", Zero, I32),
        f(7, "numberAvailable", Zero, I32),
        f(8, "numberUnavailable", Zero, I32),
        f(9, "collisionCount", One, I32),
        f(10, "conditions", Rep, Msg(&APPS_DAEMON_SET_CONDITION)),
    ]);
    pub(super) static AUTOSCALING_SCALE_SPEC: Message = msg("ScaleSpec", &[
        f(1, "replicas", Zero, I32),
    ]);
    pub(super) static AUTOSCALING_SCALE_STATUS: Message = msg("ScaleStatus", &[
        f(1, "replicas", One, I32),
        f(2, "selector", Zero, Str),
    ]);
    pub(super) static META_PRECONDITIONS: Message = msg("Preconditions", &[
        f(1, "uid", One, Str),
        f(2, "resourceVersion", One, Str),
    ]);
    pub(super) static META_OWNER_REFERENCE: Message = msg("OwnerReference", &[
        f(5, "apiVersion", One, Str),
        f(1, "kind", One, Str),
        f(3, "name", One, Str),
        f(4, "uid", One, Str),
        f(6, "controller", One, Bool),
        f(7, "blockOwnerDeletion", One, Bool),
    ]);
    pub(super) static META_MANAGED_FIELDS_ENTRY: Message = msg("ManagedFieldsEntry", &[
        f(1, "manager", Zero, Str),
        f(2, "operation", Zero, Str),
        f(3, "apiVersion", Zero, Str),
        f(4, "time", One, Time),
        f(6, "fieldsType", Zero, Str),
        f(7, "fieldsV1", One, FieldsV1),
        f(8, "subresource", Zero, Str),
    ]);
    pub(super) static CORE_NAMESPACE_CONDITION: Message = msg("NamespaceCondition", &[
        f(1, "type", One, Str),
        f(2, "status", One, Str),
        f(4, "lastTransitionTime", One, Time),
        f(5, "reason", Zero, Str),
        f(6, "message", Zero, Str),
    ]);
    pub(super) static CORE_SERVICE_PORT: Message = msg("ServicePort", &[
        f(1, "name", Zero, Str),
        f(2, "protocol", Zero, Str),
        f(6, "appProtocol", One, Str),
        f(3, "port", One, I32),
        f(4, "targetPort", One, IntOrString),
        f(5, "nodePort", Zero, I32),
    ]);
    pub(super) static CORE_SESSION_AFFINITY_CONFIG: Message = msg("SessionAffinityConfig", &[
        f(1, "clientIP", One, Msg(&CORE_CLIENT_IP_CONFIG)),
    ]);
    pub(super) static CORE_LOAD_BALANCER_STATUS: Message = msg("LoadBalancerStatus", &[
        f(1, "ingress", Rep, Msg(&CORE_LOAD_BALANCER_INGRESS)),
    ]);
    pub(super) static META_CONDITION: Message = msg("Condition", &[
        f(1, "type", One, Str),
        f(2, "status", One, Str),
        f(3, "observedGeneration", Zero, I64),
        f(4, "lastTransitionTime", One, Time),
        f(5, "reason", One, Str),
        f(6, "message", One, Str),
    ]);
    pub(super) static CORE_VOLUME: Message = msg("Volume", &[
        f(1, "name", One, Str),
        f(2, "", One, Inline(&CORE_VOLUME_SOURCE)),
    ]);
    pub(super) static CORE_CONTAINER: Message = msg("Container", &[
        f(1, "name", One, Str),
        f(2, "image", Zero, Str),
        f(3, "command", Rep, Str),
        f(4, "args", Rep, Str),
        f(5, "workingDir", Zero, Str),
        f(6, "ports", Rep, Msg(&CORE_CONTAINER_PORT)),
        f(19, "envFrom", Rep, Msg(&CORE_ENV_FROM_SOURCE)),
        f(7, "env", Rep, Msg(&CORE_ENV_VAR)),
        f(8, "resources", One, Msg(&CORE_RESOURCE_REQUIREMENTS)),
        f(23, "resizePolicy", Rep, Msg(&CORE_CONTAINER_RESIZE_POLICY)),
        f(24, "restartPolicy", One, Str),
        f(25, "restartPolicyRules", Rep, Msg(&CORE_CONTAINER_RESTART_RULE)),
        f(9, "volumeMounts", Rep, Msg(&CORE_VOLUME_MOUNT)),
        f(21, "volumeDevices", Rep, Msg(&CORE_VOLUME_DEVICE)),
        f(10, "livenessProbe", One, Msg(&CORE_PROBE)),
        f(11, "readinessProbe", One, Msg(&CORE_PROBE)),
        f(22, "startupProbe", One, Msg(&CORE_PROBE)),
        f(12, "lifecycle", One, Msg(&CORE_LIFECYCLE)),
        f(13, "terminationMessagePath", Zero, Str),
        f(20, "terminationMessagePolicy", Zero, Str),
        f(14, "imagePullPolicy", Zero, Str),
        f(15, "securityContext", One, Msg(&CORE_SECURITY_CONTEXT)),
        f(16, "stdin", Zero, Bool),
        f(17, "stdinOnce", Zero, Bool),
        f(18, "tty", Zero, Bool),
    ]);
    pub(super) static CORE_EPHEMERAL_CONTAINER: Message = msg("EphemeralContainer", &[
        f(1, "", One, Inline(&CORE_EPHEMERAL_CONTAINER_COMMON)),
        f(2, "targetContainerName", Zero, Str),
    ]);
    pub(super) static CORE_POD_SECURITY_CONTEXT: Message = msg("PodSecurityContext", &[
        f(1, "seLinuxOptions", One, Msg(&CORE_SE_LINUX_OPTIONS)),
        f(8, "windowsOptions", One, Msg(&CORE_WINDOWS_SECURITY_CONTEXT_OPTIONS)),
        f(2, "runAsUser", One, I64),
        f(6, "runAsGroup", One, I64),
        f(3, "runAsNonRoot", One, Bool),
        f(4, "supplementalGroups", Rep, I64),
        f(12, "supplementalGroupsPolicy", One, Str),
        f(5, "fsGroup", One, I64),
        f(7, "sysctls", Rep, Msg(&CORE_SYSCTL)),
        f(9, "fsGroupChangePolicy", One, Str),
        f(10, "seccompProfile", One, Msg(&CORE_SECCOMP_PROFILE)),
        f(11, "appArmorProfile", One, Msg(&CORE_APP_ARMOR_PROFILE)),
        f(13, "seLinuxChangePolicy", One, Str),
    ]);
    pub(super) static CORE_AFFINITY: Message = msg("Affinity", &[
        f(1, "nodeAffinity", One, Msg(&CORE_NODE_AFFINITY)),
        f(2, "podAffinity", One, Msg(&CORE_POD_AFFINITY)),
        f(3, "podAntiAffinity", One, Msg(&CORE_POD_ANTI_AFFINITY)),
    ]);
    pub(super) static CORE_TOLERATION: Message = msg("Toleration", &[
        f(1, "key", Zero, Str),
        f(2, "operator", Zero, Str),
        f(3, "value", Zero, Str),
        f(4, "effect", Zero, Str),
        f(5, "tolerationSeconds", One, I64),
    ]);
    pub(super) static CORE_HOST_ALIAS: Message = msg("HostAlias", &[
        f(1, "ip", One, Str),
        f(2, "hostnames", Rep, Str),
    ]);
    pub(super) static CORE_POD_DNS_CONFIG: Message = msg("PodDNSConfig", &[
        f(1, "nameservers", Rep, Str),
        f(2, "searches", Rep, Str),
        f(3, "options", Rep, Msg(&CORE_POD_DNS_CONFIG_OPTION)),
    ]);
    pub(super) static CORE_POD_READINESS_GATE: Message = msg("PodReadinessGate", &[
        f(1, "conditionType", One, Str),
    ]);
    pub(super) static CORE_TOPOLOGY_SPREAD_CONSTRAINT: Message = msg("TopologySpreadConstraint", &[
        f(1, "maxSkew", One, I32),
        f(2, "topologyKey", One, Str),
        f(3, "whenUnsatisfiable", One, Str),
        f(4, "labelSelector", One, Msg(&META_LABEL_SELECTOR)),
        f(5, "minDomains", One, I32),
        f(6, "nodeAffinityPolicy", One, Str),
        f(7, "nodeTaintsPolicy", One, Str),
        f(8, "matchLabelKeys", Rep, Str),
    ]);
    pub(super) static CORE_POD_OS: Message = msg("PodOS", &[
        f(1, "name", One, Str),
    ]);
    pub(super) static CORE_POD_SCHEDULING_GATE: Message = msg("PodSchedulingGate", &[
        f(1, "name", One, Str),
    ]);
    pub(super) static CORE_POD_RESOURCE_CLAIM: Message = msg("PodResourceClaim", &[
        f(1, "name", One, Str),
        f(3, "resourceClaimName", One, Str),
        f(4, "resourceClaimTemplateName", One, Str),
    ]);
    pub(super) static CORE_RESOURCE_REQUIREMENTS: Message = msg("ResourceRequirements", &[
        f(1, "limits", One, MapOf(&Quantity)),
        f(2, "requests", One, MapOf(&Quantity)),
        f(3, "claims", Rep, Msg(&CORE_RESOURCE_CLAIM)),
    ]);
    pub(super) static CORE_POD_SCHEDULING_GROUP: Message = msg("PodSchedulingGroup", &[
        f(1, "podGroupName", One, Str),
    ]);
    pub(super) static CORE_EVICTION_RESPONDER: Message = msg("EvictionResponder", &[
        f(1, "name", One, Str),
        f(2, "priority", One, I32),
    ]);
    pub(super) static CORE_POD_CONDITION: Message = msg("PodCondition", &[
        f(1, "type", One, Str),
        f(7, "observedGeneration", Zero, I64),
        f(2, "status", One, Str),
        f(3, "lastProbeTime", One, Time),
        f(4, "lastTransitionTime", One, Time),
        f(5, "reason", Zero, Str),
        f(6, "message", Zero, Str),
    ]);
    pub(super) static CORE_HOST_IP: Message = msg("HostIP", &[
        f(1, "ip", One, Str),
    ]);
    pub(super) static CORE_POD_IP: Message = msg("PodIP", &[
        f(1, "ip", One, Str),
    ]);
    pub(super) static CORE_CONTAINER_STATUS: Message = msg("ContainerStatus", &[
        f(1, "name", One, Str),
        f(2, "state", One, Msg(&CORE_CONTAINER_STATE)),
        f(3, "lastState", One, Msg(&CORE_CONTAINER_STATE)),
        f(4, "ready", One, Bool),
        f(5, "restartCount", One, I32),
        f(6, "image", One, Str),
        f(7, "imageID", One, Str),
        f(8, "containerID", Zero, Str),
        f(9, "started", One, Bool),
        f(10, "allocatedResources", One, MapOf(&Quantity)),
        f(11, "resources", One, Msg(&CORE_RESOURCE_REQUIREMENTS)),
        f(12, "volumeMounts", Rep, Msg(&CORE_VOLUME_MOUNT_STATUS)),
        f(13, "user", One, Msg(&CORE_CONTAINER_USER)),
        f(14, "allocatedResourcesStatus", Rep, Msg(&CORE_RESOURCE_STATUS)),
        f(15, "stopSignal", One, Str),
    ]);
    pub(super) static CORE_POD_RESOURCE_CLAIM_STATUS: Message = msg("PodResourceClaimStatus", &[
        f(1, "name", One, Str),
        f(2, "resourceClaimName", One, Str),
    ]);
    pub(super) static CORE_POD_EXTENDED_RESOURCE_CLAIM_STATUS: Message = msg("PodExtendedResourceClaimStatus", &[
        f(1, "requestMappings", Rep, Msg(&CORE_CONTAINER_EXTENDED_RESOURCE_REQUEST)),
        f(2, "resourceClaimName", One, Str),
    ]);
    pub(super) static CORE_NODE_ALLOCATABLE_RESOURCE_CLAIM_STATUS: Message = msg("NodeAllocatableResourceClaimStatus", &[
        f(1, "resourceClaimName", One, Str),
        f(2, "containers", Rep, Str),
        f(4, "mapping", Rep, Msg(&CORE_NODE_ALLOCATABLE_MAPPED_RESOURCES)),
        f(5, "overhead", Rep, Msg(&CORE_NODE_ALLOCATABLE_OVERHEAD_RESOURCES)),
    ]);
    pub(super) static CORE_POD_VOLUME_HEALTH: Message = msg("PodVolumeHealth", &[
        f(1, "name", One, Str),
        f(2, "healthConditions", Rep, Msg(&CORE_VOLUME_HEALTH_CONDITION)),
        f(3, "lastTransitionTime", One, Time),
    ]);
    pub(super) static CORE_SCOPE_SELECTOR: Message = msg("ScopeSelector", &[
        f(1, "matchExpressions", Rep, Msg(&CORE_SCOPED_RESOURCE_SELECTOR_REQUIREMENT)),
    ]);
    pub(super) static CORE_LIMIT_RANGE_ITEM: Message = msg("LimitRangeItem", &[
        f(1, "type", One, Str),
        f(2, "max", One, MapOf(&Quantity)),
        f(3, "min", One, MapOf(&Quantity)),
        f(4, "default", One, MapOf(&Quantity)),
        f(5, "defaultRequest", One, MapOf(&Quantity)),
        f(6, "maxLimitRequestRatio", One, MapOf(&Quantity)),
    ]);
    pub(super) static CORE_ENDPOINT_ADDRESS: Message = msg("EndpointAddress", &[
        f(1, "ip", One, Str),
        f(3, "hostname", Zero, Str),
        f(4, "nodeName", One, Str),
        f(2, "targetRef", One, Msg(&CORE_OBJECT_REFERENCE)),
    ]);
    pub(super) static CORE_ENDPOINT_PORT: Message = msg("EndpointPort", &[
        f(1, "name", Zero, Str),
        f(2, "port", One, I32),
        f(3, "protocol", Zero, Str),
        f(4, "appProtocol", One, Str),
    ]);
    pub(super) static CORE_TAINT: Message = msg("Taint", &[
        f(1, "key", One, Str),
        f(2, "value", Zero, Str),
        f(3, "effect", One, Str),
        f(4, "timeAdded", One, Time),
    ]);
    pub(super) static CORE_NODE_CONFIG_SOURCE: Message = msg("NodeConfigSource", &[
        f(2, "configMap", One, Msg(&CORE_CONFIG_MAP_NODE_CONFIG_SOURCE)),
    ]);
    pub(super) static CORE_NODE_POD_PREEMPTION_POLICY: Message = msg("NodePodPreemptionPolicy", &[
        f(1, "disableResizePreemption", Rep, Str),
    ]);
    pub(super) static CORE_NODE_CONDITION: Message = msg("NodeCondition", &[
        f(1, "type", One, Str),
        f(2, "status", One, Str),
        f(3, "lastHeartbeatTime", One, Time),
        f(4, "lastTransitionTime", One, Time),
        f(5, "reason", Zero, Str),
        f(6, "message", Zero, Str),
    ]);
    pub(super) static CORE_NODE_ADDRESS: Message = msg("NodeAddress", &[
        f(1, "type", One, Str),
        f(2, "address", One, Str),
    ]);
    pub(super) static CORE_NODE_DAEMON_ENDPOINTS: Message = msg("NodeDaemonEndpoints", &[
        f(1, "kubeletEndpoint", One, Msg(&CORE_DAEMON_ENDPOINT)),
    ]);
    pub(super) static CORE_NODE_SYSTEM_INFO: Message = msg("NodeSystemInfo", &[
        f(1, "machineID", One, Str),
        f(2, "systemUUID", One, Str),
        f(3, "bootID", One, Str),
        f(4, "kernelVersion", One, Str),
        f(5, "osImage", One, Str),
        f(6, "containerRuntimeVersion", One, Str),
        f(7, "kubeletVersion", One, Str),
        f(8, "kubeProxyVersion", One, Str),
        f(9, "operatingSystem", One, Str),
        f(10, "architecture", One, Str),
        f(11, "swap", One, Msg(&CORE_NODE_SWAP_STATUS)),
    ]);
    pub(super) static CORE_CONTAINER_IMAGE: Message = msg("ContainerImage", &[
        f(1, "names", Rep, Str),
        f(2, "sizeBytes", Zero, I64),
    ]);
    pub(super) static CORE_ATTACHED_VOLUME: Message = msg("AttachedVolume", &[
        f(1, "name", One, Str),
        f(2, "devicePath", One, Str),
    ]);
    pub(super) static CORE_NODE_CONFIG_STATUS: Message = msg("NodeConfigStatus", &[
        f(1, "assigned", One, Msg(&CORE_NODE_CONFIG_SOURCE)),
        f(2, "active", One, Msg(&CORE_NODE_CONFIG_SOURCE)),
        f(3, "lastKnownGood", One, Msg(&CORE_NODE_CONFIG_SOURCE)),
        f(4, "error", Zero, Str),
    ]);
    pub(super) static CORE_NODE_RUNTIME_HANDLER: Message = msg("NodeRuntimeHandler", &[
        f(1, "name", One, Str),
        f(2, "features", One, Msg(&CORE_NODE_RUNTIME_HANDLER_FEATURES)),
    ]);
    pub(super) static CORE_NODE_FEATURES: Message = msg("NodeFeatures", &[
        f(1, "supplementalGroupsPolicy", One, Bool),
    ]);
    pub(super) static META_LABEL_SELECTOR: Message = msg("LabelSelector", &[
        f(1, "matchLabels", One, MapOf(&Str)),
        f(2, "matchExpressions", Rep, Msg(&META_LABEL_SELECTOR_REQUIREMENT)),
    ]);
    pub(super) static CORE_POD_TEMPLATE_SPEC: Message = msg("PodTemplateSpec", &[
        f(1, "metadata", One, Msg(&META_OBJECT_META)),
        f(2, "spec", One, Msg(&CORE_POD_SPEC)),
    ]);
    pub(super) static APPS_DEPLOYMENT_STRATEGY: Message = msg("DeploymentStrategy", &[
        f(1, "type", Zero, Str),
        f(2, "rollingUpdate", One, Msg(&APPS_ROLLING_UPDATE_DEPLOYMENT)),
    ]);
    pub(super) static APPS_DEPLOYMENT_CONDITION: Message = msg("DeploymentCondition", &[
        f(1, "type", One, Str),
        f(2, "status", One, Str),
        f(6, "lastUpdateTime", One, Time),
        f(7, "lastTransitionTime", One, Time),
        f(4, "reason", Zero, Str),
        f(5, "message", Zero, Str),
    ]);
    pub(super) static APPS_REPLICA_SET_CONDITION: Message = msg("ReplicaSetCondition", &[
        f(1, "type", One, Str),
        f(2, "status", One, Str),
        f(3, "lastTransitionTime", One, Time),
        f(4, "reason", Zero, Str),
        f(5, "message", Zero, Str),
    ]);
    pub(super) static CORE_PERSISTENT_VOLUME_CLAIM: Message = msg("PersistentVolumeClaim", &[
        f(1, "metadata", One, Msg(&META_OBJECT_META)),
        f(2, "spec", One, Msg(&CORE_PERSISTENT_VOLUME_CLAIM_SPEC)),
        f(3, "status", One, Msg(&CORE_PERSISTENT_VOLUME_CLAIM_STATUS)),
    ]);
    pub(super) static APPS_STATEFUL_SET_UPDATE_STRATEGY: Message = msg("StatefulSetUpdateStrategy", &[
        f(1, "type", Zero, Str),
        f(2, "rollingUpdate", One, Msg(&APPS_ROLLING_UPDATE_STATEFUL_SET_STRATEGY)),
    ]);
    pub(super) static APPS_STATEFUL_SET_PERSISTENT_VOLUME_CLAIM_RETENTION_POLICY: Message = msg("StatefulSetPersistentVolumeClaimRetentionPolicy", &[
        f(1, "whenDeleted", Zero, Str),
        f(2, "whenScaled", Zero, Str),
    ]);
    pub(super) static APPS_STATEFUL_SET_ORDINALS: Message = msg("StatefulSetOrdinals", &[
        f(1, "start", One, I32),
    ]);
    pub(super) static APPS_STATEFUL_SET_CONDITION: Message = msg("StatefulSetCondition", &[
        f(1, "type", One, Str),
        f(2, "status", One, Str),
        f(3, "lastTransitionTime", One, Time),
        f(4, "reason", Zero, Str),
        f(5, "message", Zero, Str),
    ]);
    pub(super) static APPS_DAEMON_SET_UPDATE_STRATEGY: Message = msg("DaemonSetUpdateStrategy", &[
        f(1, "type", Zero, Str),
        f(2, "rollingUpdate", One, Msg(&APPS_ROLLING_UPDATE_DAEMON_SET)),
    ]);
    pub(super) static APPS_DAEMON_SET_CONDITION: Message = msg("DaemonSetCondition", &[
        f(1, "type", One, Str),
        f(2, "status", One, Str),
        f(3, "lastTransitionTime", One, Time),
        f(4, "reason", Zero, Str),
        f(5, "message", Zero, Str),
    ]);
    pub(super) static CORE_CLIENT_IP_CONFIG: Message = msg("ClientIPConfig", &[
        f(1, "timeoutSeconds", One, I32),
    ]);
    pub(super) static CORE_LOAD_BALANCER_INGRESS: Message = msg("LoadBalancerIngress", &[
        f(1, "ip", Zero, Str),
        f(2, "hostname", Zero, Str),
        f(3, "ipMode", One, Str),
        f(4, "ports", Rep, Msg(&CORE_PORT_STATUS)),
    ]);
    pub(super) static CORE_VOLUME_SOURCE: Message = msg("VolumeSource", &[
        f(1, "hostPath", One, Msg(&CORE_HOST_PATH_VOLUME_SOURCE)),
        f(2, "emptyDir", One, Msg(&CORE_EMPTY_DIR_VOLUME_SOURCE)),
        f(3, "gcePersistentDisk", One, Msg(&CORE_GCE_PERSISTENT_DISK_VOLUME_SOURCE)),
        f(4, "awsElasticBlockStore", One, Msg(&CORE_AWS_ELASTIC_BLOCK_STORE_VOLUME_SOURCE)),
        f(5, "gitRepo", One, Msg(&CORE_GIT_REPO_VOLUME_SOURCE)),
        f(6, "secret", One, Msg(&CORE_SECRET_VOLUME_SOURCE)),
        f(7, "nfs", One, Msg(&CORE_NFS_VOLUME_SOURCE)),
        f(8, "iscsi", One, Msg(&CORE_ISCSI_VOLUME_SOURCE)),
        f(9, "glusterfs", One, Msg(&CORE_GLUSTERFS_VOLUME_SOURCE)),
        f(10, "persistentVolumeClaim", One, Msg(&CORE_PERSISTENT_VOLUME_CLAIM_VOLUME_SOURCE)),
        f(11, "rbd", One, Msg(&CORE_RBD_VOLUME_SOURCE)),
        f(12, "flexVolume", One, Msg(&CORE_FLEX_VOLUME_SOURCE)),
        f(13, "cinder", One, Msg(&CORE_CINDER_VOLUME_SOURCE)),
        f(14, "cephfs", One, Msg(&CORE_CEPH_FS_VOLUME_SOURCE)),
        f(15, "flocker", One, Msg(&CORE_FLOCKER_VOLUME_SOURCE)),
        f(16, "downwardAPI", One, Msg(&CORE_DOWNWARD_API_VOLUME_SOURCE)),
        f(17, "fc", One, Msg(&CORE_FC_VOLUME_SOURCE)),
        f(18, "azureFile", One, Msg(&CORE_AZURE_FILE_VOLUME_SOURCE)),
        f(19, "configMap", One, Msg(&CORE_CONFIG_MAP_VOLUME_SOURCE)),
        f(20, "vsphereVolume", One, Msg(&CORE_VSPHERE_VIRTUAL_DISK_VOLUME_SOURCE)),
        f(21, "quobyte", One, Msg(&CORE_QUOBYTE_VOLUME_SOURCE)),
        f(22, "azureDisk", One, Msg(&CORE_AZURE_DISK_VOLUME_SOURCE)),
        f(23, "photonPersistentDisk", One, Msg(&CORE_PHOTON_PERSISTENT_DISK_VOLUME_SOURCE)),
        f(26, "projected", One, Msg(&CORE_PROJECTED_VOLUME_SOURCE)),
        f(24, "portworxVolume", One, Msg(&CORE_PORTWORX_VOLUME_SOURCE)),
        f(25, "scaleIO", One, Msg(&CORE_SCALE_IO_VOLUME_SOURCE)),
        f(27, "storageos", One, Msg(&CORE_STORAGE_OS_VOLUME_SOURCE)),
        f(28, "csi", One, Msg(&CORE_CSI_VOLUME_SOURCE)),
        f(29, "ephemeral", One, Msg(&CORE_EPHEMERAL_VOLUME_SOURCE)),
        f(30, "image", One, Msg(&CORE_IMAGE_VOLUME_SOURCE)),
    ]);
    pub(super) static CORE_CONTAINER_PORT: Message = msg("ContainerPort", &[
        f(1, "name", Zero, Str),
        f(2, "hostPort", Zero, I32),
        f(3, "containerPort", One, I32),
        f(4, "protocol", Zero, Str),
        f(5, "hostIP", Zero, Str),
    ]);
    pub(super) static CORE_ENV_FROM_SOURCE: Message = msg("EnvFromSource", &[
        f(1, "prefix", Zero, Str),
        f(2, "configMapRef", One, Msg(&CORE_CONFIG_MAP_ENV_SOURCE)),
        f(3, "secretRef", One, Msg(&CORE_SECRET_ENV_SOURCE)),
    ]);
    pub(super) static CORE_ENV_VAR: Message = msg("EnvVar", &[
        f(1, "name", One, Str),
        f(2, "value", Zero, Str),
        f(3, "valueFrom", One, Msg(&CORE_ENV_VAR_SOURCE)),
    ]);
    pub(super) static CORE_CONTAINER_RESIZE_POLICY: Message = msg("ContainerResizePolicy", &[
        f(1, "resourceName", One, Str),
        f(2, "restartPolicy", One, Str),
    ]);
    pub(super) static CORE_CONTAINER_RESTART_RULE: Message = msg("ContainerRestartRule", &[
        f(1, "action", Zero, Str),
        f(2, "exitCodes", One, Msg(&CORE_CONTAINER_RESTART_RULE_ON_EXIT_CODES)),
    ]);
    pub(super) static CORE_VOLUME_MOUNT: Message = msg("VolumeMount", &[
        f(1, "name", One, Str),
        f(2, "readOnly", Zero, Bool),
        f(7, "recursiveReadOnly", One, Str),
        f(3, "mountPath", One, Str),
        f(4, "subPath", Zero, Str),
        f(5, "mountPropagation", One, Str),
        f(6, "subPathExpr", Zero, Str),
        f(8, "bindMountOptions", Rep, Str),
    ]);
    pub(super) static CORE_VOLUME_DEVICE: Message = msg("VolumeDevice", &[
        f(1, "name", One, Str),
        f(2, "devicePath", One, Str),
    ]);
    pub(super) static CORE_PROBE: Message = msg("Probe", &[
        f(1, "", One, Inline(&CORE_PROBE_HANDLER)),
        f(2, "initialDelaySeconds", Zero, I32),
        f(3, "timeoutSeconds", Zero, I32),
        f(4, "periodSeconds", Zero, I32),
        f(5, "successThreshold", Zero, I32),
        f(6, "failureThreshold", Zero, I32),
        f(7, "terminationGracePeriodSeconds", One, I64),
    ]);
    pub(super) static CORE_LIFECYCLE: Message = msg("Lifecycle", &[
        f(1, "postStart", One, Msg(&CORE_LIFECYCLE_HANDLER)),
        f(2, "preStop", One, Msg(&CORE_LIFECYCLE_HANDLER)),
        f(3, "stopSignal", One, Str),
    ]);
    pub(super) static CORE_SECURITY_CONTEXT: Message = msg("SecurityContext", &[
        f(1, "capabilities", One, Msg(&CORE_CAPABILITIES)),
        f(2, "privileged", One, Bool),
        f(3, "seLinuxOptions", One, Msg(&CORE_SE_LINUX_OPTIONS)),
        f(10, "windowsOptions", One, Msg(&CORE_WINDOWS_SECURITY_CONTEXT_OPTIONS)),
        f(4, "runAsUser", One, I64),
        f(8, "runAsGroup", One, I64),
        f(5, "runAsNonRoot", One, Bool),
        f(6, "readOnlyRootFilesystem", One, Bool),
        f(7, "allowPrivilegeEscalation", One, Bool),
        f(9, "procMount", One, Str),
        f(11, "seccompProfile", One, Msg(&CORE_SECCOMP_PROFILE)),
        f(12, "appArmorProfile", One, Msg(&CORE_APP_ARMOR_PROFILE)),
    ]);
    pub(super) static CORE_EPHEMERAL_CONTAINER_COMMON: Message = msg("EphemeralContainerCommon", &[
        f(1, "name", One, Str),
        f(2, "image", Zero, Str),
        f(3, "command", Rep, Str),
        f(4, "args", Rep, Str),
        f(5, "workingDir", Zero, Str),
        f(6, "ports", Rep, Msg(&CORE_CONTAINER_PORT)),
        f(19, "envFrom", Rep, Msg(&CORE_ENV_FROM_SOURCE)),
        f(7, "env", Rep, Msg(&CORE_ENV_VAR)),
        f(8, "resources", One, Msg(&CORE_RESOURCE_REQUIREMENTS)),
        f(23, "resizePolicy", Rep, Msg(&CORE_CONTAINER_RESIZE_POLICY)),
        f(24, "restartPolicy", One, Str),
        f(25, "restartPolicyRules", Rep, Msg(&CORE_CONTAINER_RESTART_RULE)),
        f(9, "volumeMounts", Rep, Msg(&CORE_VOLUME_MOUNT)),
        f(21, "volumeDevices", Rep, Msg(&CORE_VOLUME_DEVICE)),
        f(10, "livenessProbe", One, Msg(&CORE_PROBE)),
        f(11, "readinessProbe", One, Msg(&CORE_PROBE)),
        f(22, "startupProbe", One, Msg(&CORE_PROBE)),
        f(12, "lifecycle", One, Msg(&CORE_LIFECYCLE)),
        f(13, "terminationMessagePath", Zero, Str),
        f(20, "terminationMessagePolicy", Zero, Str),
        f(14, "imagePullPolicy", Zero, Str),
        f(15, "securityContext", One, Msg(&CORE_SECURITY_CONTEXT)),
        f(16, "stdin", Zero, Bool),
        f(17, "stdinOnce", Zero, Bool),
        f(18, "tty", Zero, Bool),
    ]);
    pub(super) static CORE_SE_LINUX_OPTIONS: Message = msg("SELinuxOptions", &[
        f(1, "user", Zero, Str),
        f(2, "role", Zero, Str),
        f(3, "type", Zero, Str),
        f(4, "level", Zero, Str),
    ]);
    pub(super) static CORE_WINDOWS_SECURITY_CONTEXT_OPTIONS: Message = msg("WindowsSecurityContextOptions", &[
        f(1, "gmsaCredentialSpecName", One, Str),
        f(2, "gmsaCredentialSpec", One, Str),
        f(3, "runAsUserName", One, Str),
        f(4, "hostProcess", One, Bool),
    ]);
    pub(super) static CORE_SYSCTL: Message = msg("Sysctl", &[
        f(1, "name", One, Str),
        f(2, "value", One, Str),
    ]);
    pub(super) static CORE_SECCOMP_PROFILE: Message = msg("SeccompProfile", &[
        f(1, "type", One, Str),
        f(2, "localhostProfile", One, Str),
    ]);
    pub(super) static CORE_APP_ARMOR_PROFILE: Message = msg("AppArmorProfile", &[
        f(1, "type", One, Str),
        f(2, "localhostProfile", One, Str),
    ]);
    pub(super) static CORE_NODE_AFFINITY: Message = msg("NodeAffinity", &[
        f(1, "requiredDuringSchedulingIgnoredDuringExecution", One, Msg(&CORE_NODE_SELECTOR)),
        f(2, "preferredDuringSchedulingIgnoredDuringExecution", Rep, Msg(&CORE_PREFERRED_SCHEDULING_TERM)),
    ]);
    pub(super) static CORE_POD_AFFINITY: Message = msg("PodAffinity", &[
        f(1, "requiredDuringSchedulingIgnoredDuringExecution", Rep, Msg(&CORE_POD_AFFINITY_TERM)),
        f(2, "preferredDuringSchedulingIgnoredDuringExecution", Rep, Msg(&CORE_WEIGHTED_POD_AFFINITY_TERM)),
    ]);
    pub(super) static CORE_POD_ANTI_AFFINITY: Message = msg("PodAntiAffinity", &[
        f(1, "requiredDuringSchedulingIgnoredDuringExecution", Rep, Msg(&CORE_POD_AFFINITY_TERM)),
        f(2, "preferredDuringSchedulingIgnoredDuringExecution", Rep, Msg(&CORE_WEIGHTED_POD_AFFINITY_TERM)),
    ]);
    pub(super) static CORE_POD_DNS_CONFIG_OPTION: Message = msg("PodDNSConfigOption", &[
        f(1, "name", Zero, Str),
        f(2, "value", One, Str),
    ]);
    pub(super) static CORE_RESOURCE_CLAIM: Message = msg("ResourceClaim", &[
        f(1, "name", One, Str),
        f(2, "request", Zero, Str),
    ]);
    pub(super) static CORE_CONTAINER_STATE: Message = msg("ContainerState", &[
        f(1, "waiting", One, Msg(&CORE_CONTAINER_STATE_WAITING)),
        f(2, "running", One, Msg(&CORE_CONTAINER_STATE_RUNNING)),
        f(3, "terminated", One, Msg(&CORE_CONTAINER_STATE_TERMINATED)),
    ]);
    pub(super) static CORE_VOLUME_MOUNT_STATUS: Message = msg("VolumeMountStatus", &[
        f(1, "name", One, Str),
        f(2, "mountPath", One, Str),
        f(3, "readOnly", Zero, Bool),
        f(4, "recursiveReadOnly", One, Str),
        f(5, "volumeStatus", One, Msg(&CORE_VOLUME_STATUS)),
    ]);
    pub(super) static CORE_CONTAINER_USER: Message = msg("ContainerUser", &[
        f(1, "linux", One, Msg(&CORE_LINUX_CONTAINER_USER)),
    ]);
    pub(super) static CORE_RESOURCE_STATUS: Message = msg("ResourceStatus", &[
        f(1, "name", One, Str),
        f(2, "resources", Rep, Msg(&CORE_RESOURCE_HEALTH)),
    ]);
    pub(super) static CORE_CONTAINER_EXTENDED_RESOURCE_REQUEST: Message = msg("ContainerExtendedResourceRequest", &[
        f(1, "containerName", One, Str),
        f(2, "resourceName", One, Str),
        f(3, "requestName", One, Str),
    ]);
    pub(super) static CORE_NODE_ALLOCATABLE_MAPPED_RESOURCES: Message = msg("NodeAllocatableMappedResources", &[
        f(1, "name", One, Str),
        f(2, "quantity", One, Quantity),
    ]);
    pub(super) static CORE_NODE_ALLOCATABLE_OVERHEAD_RESOURCES: Message = msg("NodeAllocatableOverheadResources", &[
        f(1, "name", One, Str),
        f(2, "perPod", One, Quantity),
        f(3, "perContainer", One, Quantity),
    ]);
    pub(super) static CORE_VOLUME_HEALTH_CONDITION: Message = msg("VolumeHealthCondition", &[
        f(1, "status", One, Str),
        f(2, "reason", One, Str),
        f(3, "message", Zero, Str),
    ]);
    pub(super) static CORE_SCOPED_RESOURCE_SELECTOR_REQUIREMENT: Message = msg("ScopedResourceSelectorRequirement", &[
        f(1, "scopeName", One, Str),
        f(2, "operator", One, Str),
        f(3, "values", Rep, Str),
    ]);
    pub(super) static CORE_CONFIG_MAP_NODE_CONFIG_SOURCE: Message = msg("ConfigMapNodeConfigSource", &[
        f(1, "namespace", One, Str),
        f(2, "name", One, Str),
        f(3, "uid", Zero, Str),
        f(4, "resourceVersion", Zero, Str),
        f(5, "kubeletConfigKey", One, Str),
    ]);
    pub(super) static CORE_DAEMON_ENDPOINT: Message = msg("DaemonEndpoint", &[
        f(1, "Port", One, I32),
    ]);
    pub(super) static CORE_NODE_SWAP_STATUS: Message = msg("NodeSwapStatus", &[
        f(1, "capacity", One, I64),
    ]);
    pub(super) static CORE_NODE_RUNTIME_HANDLER_FEATURES: Message = msg("NodeRuntimeHandlerFeatures", &[
        f(1, "recursiveReadOnlyMounts", One, Bool),
        f(2, "userNamespaces", One, Bool),
    ]);
    pub(super) static META_LABEL_SELECTOR_REQUIREMENT: Message = msg("LabelSelectorRequirement", &[
        f(1, "key", One, Str),
        f(2, "operator", One, Str),
        f(3, "values", Rep, Str),
    ]);
    pub(super) static APPS_ROLLING_UPDATE_DEPLOYMENT: Message = msg("RollingUpdateDeployment", &[
        f(1, "maxUnavailable", One, IntOrString),
        f(2, "maxSurge", One, IntOrString),
    ]);
    pub(super) static CORE_PERSISTENT_VOLUME_CLAIM_SPEC: Message = msg("PersistentVolumeClaimSpec", &[
        f(1, "accessModes", Rep, Str),
        f(4, "selector", One, Msg(&META_LABEL_SELECTOR)),
        f(2, "resources", One, Msg(&CORE_VOLUME_RESOURCE_REQUIREMENTS)),
        f(3, "volumeName", Zero, Str),
        f(5, "storageClassName", One, Str),
        f(6, "volumeMode", One, Str),
        f(7, "dataSource", One, Msg(&CORE_TYPED_LOCAL_OBJECT_REFERENCE)),
        f(8, "dataSourceRef", One, Msg(&CORE_TYPED_OBJECT_REFERENCE)),
        f(9, "volumeAttributesClassName", One, Str),
    ]);
    pub(super) static CORE_PERSISTENT_VOLUME_CLAIM_STATUS: Message = msg("PersistentVolumeClaimStatus", &[
        f(1, "phase", Zero, Str),
        f(2, "accessModes", Rep, Str),
        f(3, "capacity", One, MapOf(&Quantity)),
        f(4, "conditions", Rep, Msg(&CORE_PERSISTENT_VOLUME_CLAIM_CONDITION)),
        f(5, "allocatedResources", One, MapOf(&Quantity)),
        f(7, "allocatedResourceStatuses", One, MapOf(&Str)),
        f(8, "currentVolumeAttributesClassName", One, Str),
        f(9, "modifyVolumeStatus", One, Msg(&CORE_MODIFY_VOLUME_STATUS)),
        f(10, "healthStatus", One, Msg(&CORE_VOLUME_HEALTH_STATUS)),
    ]);
    pub(super) static APPS_ROLLING_UPDATE_STATEFUL_SET_STRATEGY: Message = msg("RollingUpdateStatefulSetStrategy", &[
        f(1, "partition", One, I32),
        f(2, "maxUnavailable", One, IntOrString),
    ]);
    pub(super) static APPS_ROLLING_UPDATE_DAEMON_SET: Message = msg("RollingUpdateDaemonSet", &[
        f(1, "maxUnavailable", One, IntOrString),
        f(2, "maxSurge", One, IntOrString),
    ]);
    pub(super) static CORE_PORT_STATUS: Message = msg("PortStatus", &[
        f(1, "port", One, I32),
        f(2, "protocol", One, Str),
        f(3, "error", One, Str),
    ]);
    pub(super) static CORE_HOST_PATH_VOLUME_SOURCE: Message = msg("HostPathVolumeSource", &[
        f(1, "path", One, Str),
        f(2, "type", One, Str),
    ]);
    pub(super) static CORE_EMPTY_DIR_VOLUME_SOURCE: Message = msg("EmptyDirVolumeSource", &[
        f(1, "medium", Zero, Str),
        f(2, "sizeLimit", One, Quantity),
        f(3, "mode", One, I32),
    ]);
    pub(super) static CORE_GCE_PERSISTENT_DISK_VOLUME_SOURCE: Message = msg("GCEPersistentDiskVolumeSource", &[
        f(1, "pdName", One, Str),
        f(2, "fsType", Zero, Str),
        f(3, "partition", Zero, I32),
        f(4, "readOnly", Zero, Bool),
    ]);
    pub(super) static CORE_AWS_ELASTIC_BLOCK_STORE_VOLUME_SOURCE: Message = msg("AWSElasticBlockStoreVolumeSource", &[
        f(1, "volumeID", One, Str),
        f(2, "fsType", Zero, Str),
        f(3, "partition", Zero, I32),
        f(4, "readOnly", Zero, Bool),
    ]);
    pub(super) static CORE_GIT_REPO_VOLUME_SOURCE: Message = msg("GitRepoVolumeSource", &[
        f(1, "repository", One, Str),
        f(2, "revision", Zero, Str),
        f(3, "directory", Zero, Str),
    ]);
    pub(super) static CORE_SECRET_VOLUME_SOURCE: Message = msg("SecretVolumeSource", &[
        f(1, "secretName", Zero, Str),
        f(2, "items", Rep, Msg(&CORE_KEY_TO_PATH)),
        f(3, "defaultMode", One, I32),
        f(4, "optional", One, Bool),
        f(5, "defaultUser", One, I64),
    ]);
    pub(super) static CORE_NFS_VOLUME_SOURCE: Message = msg("NFSVolumeSource", &[
        f(1, "server", One, Str),
        f(2, "path", One, Str),
        f(3, "readOnly", Zero, Bool),
    ]);
    pub(super) static CORE_ISCSI_VOLUME_SOURCE: Message = msg("ISCSIVolumeSource", &[
        f(1, "targetPortal", One, Str),
        f(2, "iqn", One, Str),
        f(3, "lun", One, I32),
        f(4, "iscsiInterface", Zero, Str),
        f(5, "fsType", Zero, Str),
        f(6, "readOnly", Zero, Bool),
        f(7, "portals", Rep, Str),
        f(8, "chapAuthDiscovery", Zero, Bool),
        f(11, "chapAuthSession", Zero, Bool),
        f(10, "secretRef", One, Msg(&CORE_LOCAL_OBJECT_REFERENCE)),
        f(12, "initiatorName", One, Str),
    ]);
    pub(super) static CORE_GLUSTERFS_VOLUME_SOURCE: Message = msg("GlusterfsVolumeSource", &[
        f(1, "endpoints", One, Str),
        f(2, "path", One, Str),
        f(3, "readOnly", Zero, Bool),
    ]);
    pub(super) static CORE_PERSISTENT_VOLUME_CLAIM_VOLUME_SOURCE: Message = msg("PersistentVolumeClaimVolumeSource", &[
        f(1, "claimName", One, Str),
        f(2, "readOnly", Zero, Bool),
    ]);
    pub(super) static CORE_RBD_VOLUME_SOURCE: Message = msg("RBDVolumeSource", &[
        f(1, "monitors", Rep, Str),
        f(2, "image", One, Str),
        f(3, "fsType", Zero, Str),
        f(4, "pool", Zero, Str),
        f(5, "user", Zero, Str),
        f(6, "keyring", Zero, Str),
        f(7, "secretRef", One, Msg(&CORE_LOCAL_OBJECT_REFERENCE)),
        f(8, "readOnly", Zero, Bool),
    ]);
    pub(super) static CORE_FLEX_VOLUME_SOURCE: Message = msg("FlexVolumeSource", &[
        f(1, "driver", One, Str),
        f(2, "fsType", Zero, Str),
        f(3, "secretRef", One, Msg(&CORE_LOCAL_OBJECT_REFERENCE)),
        f(4, "readOnly", Zero, Bool),
        f(5, "options", One, MapOf(&Str)),
    ]);
    pub(super) static CORE_CINDER_VOLUME_SOURCE: Message = msg("CinderVolumeSource", &[
        f(1, "volumeID", One, Str),
        f(2, "fsType", Zero, Str),
        f(3, "readOnly", Zero, Bool),
        f(4, "secretRef", One, Msg(&CORE_LOCAL_OBJECT_REFERENCE)),
    ]);
    pub(super) static CORE_CEPH_FS_VOLUME_SOURCE: Message = msg("CephFSVolumeSource", &[
        f(1, "monitors", Rep, Str),
        f(2, "path", Zero, Str),
        f(3, "user", Zero, Str),
        f(4, "secretFile", Zero, Str),
        f(5, "secretRef", One, Msg(&CORE_LOCAL_OBJECT_REFERENCE)),
        f(6, "readOnly", Zero, Bool),
    ]);
    pub(super) static CORE_FLOCKER_VOLUME_SOURCE: Message = msg("FlockerVolumeSource", &[
        f(1, "datasetName", Zero, Str),
        f(2, "datasetUUID", Zero, Str),
    ]);
    pub(super) static CORE_DOWNWARD_API_VOLUME_SOURCE: Message = msg("DownwardAPIVolumeSource", &[
        f(1, "items", Rep, Msg(&CORE_DOWNWARD_API_VOLUME_FILE)),
        f(2, "defaultMode", One, I32),
        f(3, "defaultUser", One, I64),
    ]);
    pub(super) static CORE_FC_VOLUME_SOURCE: Message = msg("FCVolumeSource", &[
        f(1, "targetWWNs", Rep, Str),
        f(2, "lun", One, I32),
        f(3, "fsType", Zero, Str),
        f(4, "readOnly", Zero, Bool),
        f(5, "wwids", Rep, Str),
    ]);
    pub(super) static CORE_AZURE_FILE_VOLUME_SOURCE: Message = msg("AzureFileVolumeSource", &[
        f(1, "secretName", One, Str),
        f(2, "shareName", One, Str),
        f(3, "readOnly", Zero, Bool),
    ]);
    pub(super) static CORE_CONFIG_MAP_VOLUME_SOURCE: Message = msg("ConfigMapVolumeSource", &[
        f(1, "", One, Inline(&CORE_LOCAL_OBJECT_REFERENCE)),
        f(2, "items", Rep, Msg(&CORE_KEY_TO_PATH)),
        f(3, "defaultMode", One, I32),
        f(4, "optional", One, Bool),
        f(5, "defaultUser", One, I64),
    ]);
    pub(super) static CORE_VSPHERE_VIRTUAL_DISK_VOLUME_SOURCE: Message = msg("VsphereVirtualDiskVolumeSource", &[
        f(1, "volumePath", One, Str),
        f(2, "fsType", Zero, Str),
        f(3, "storagePolicyName", Zero, Str),
        f(4, "storagePolicyID", Zero, Str),
    ]);
    pub(super) static CORE_QUOBYTE_VOLUME_SOURCE: Message = msg("QuobyteVolumeSource", &[
        f(1, "registry", One, Str),
        f(2, "volume", One, Str),
        f(3, "readOnly", Zero, Bool),
        f(4, "user", Zero, Str),
        f(5, "group", Zero, Str),
        f(6, "tenant", Zero, Str),
    ]);
    pub(super) static CORE_AZURE_DISK_VOLUME_SOURCE: Message = msg("AzureDiskVolumeSource", &[
        f(1, "diskName", One, Str),
        f(2, "diskURI", One, Str),
        f(3, "cachingMode", One, Str),
        f(4, "fsType", One, Str),
        f(5, "readOnly", One, Bool),
        f(6, "kind", One, Str),
    ]);
    pub(super) static CORE_PHOTON_PERSISTENT_DISK_VOLUME_SOURCE: Message = msg("PhotonPersistentDiskVolumeSource", &[
        f(1, "pdID", One, Str),
        f(2, "fsType", Zero, Str),
    ]);
    pub(super) static CORE_PROJECTED_VOLUME_SOURCE: Message = msg("ProjectedVolumeSource", &[
        f(1, "sources", Rep, Msg(&CORE_VOLUME_PROJECTION)),
        f(2, "defaultMode", One, I32),
        f(3, "defaultUser", One, I64),
    ]);
    pub(super) static CORE_PORTWORX_VOLUME_SOURCE: Message = msg("PortworxVolumeSource", &[
        f(1, "volumeID", One, Str),
        f(2, "fsType", Zero, Str),
        f(3, "readOnly", Zero, Bool),
    ]);
    pub(super) static CORE_SCALE_IO_VOLUME_SOURCE: Message = msg("ScaleIOVolumeSource", &[
        f(1, "gateway", One, Str),
        f(2, "system", One, Str),
        f(3, "secretRef", One, Msg(&CORE_LOCAL_OBJECT_REFERENCE)),
        f(4, "sslEnabled", Zero, Bool),
        f(5, "protectionDomain", Zero, Str),
        f(6, "storagePool", Zero, Str),
        f(7, "storageMode", Zero, Str),
        f(8, "volumeName", Zero, Str),
        f(9, "fsType", Zero, Str),
        f(10, "readOnly", Zero, Bool),
    ]);
    pub(super) static CORE_STORAGE_OS_VOLUME_SOURCE: Message = msg("StorageOSVolumeSource", &[
        f(1, "volumeName", Zero, Str),
        f(2, "volumeNamespace", Zero, Str),
        f(3, "fsType", Zero, Str),
        f(4, "readOnly", Zero, Bool),
        f(5, "secretRef", One, Msg(&CORE_LOCAL_OBJECT_REFERENCE)),
    ]);
    pub(super) static CORE_CSI_VOLUME_SOURCE: Message = msg("CSIVolumeSource", &[
        f(1, "driver", One, Str),
        f(2, "readOnly", One, Bool),
        f(3, "fsType", One, Str),
        f(4, "volumeAttributes", One, MapOf(&Str)),
        f(5, "nodePublishSecretRef", One, Msg(&CORE_LOCAL_OBJECT_REFERENCE)),
    ]);
    pub(super) static CORE_EPHEMERAL_VOLUME_SOURCE: Message = msg("EphemeralVolumeSource", &[
        f(1, "volumeClaimTemplate", One, Msg(&CORE_PERSISTENT_VOLUME_CLAIM_TEMPLATE)),
    ]);
    pub(super) static CORE_IMAGE_VOLUME_SOURCE: Message = msg("ImageVolumeSource", &[
        f(1, "reference", Zero, Str),
        f(2, "pullPolicy", Zero, Str),
    ]);
    pub(super) static CORE_CONFIG_MAP_ENV_SOURCE: Message = msg("ConfigMapEnvSource", &[
        f(1, "", One, Inline(&CORE_LOCAL_OBJECT_REFERENCE)),
        f(2, "optional", One, Bool),
    ]);
    pub(super) static CORE_SECRET_ENV_SOURCE: Message = msg("SecretEnvSource", &[
        f(1, "", One, Inline(&CORE_LOCAL_OBJECT_REFERENCE)),
        f(2, "optional", One, Bool),
    ]);
    pub(super) static CORE_ENV_VAR_SOURCE: Message = msg("EnvVarSource", &[
        f(1, "fieldRef", One, Msg(&CORE_OBJECT_FIELD_SELECTOR)),
        f(2, "resourceFieldRef", One, Msg(&CORE_RESOURCE_FIELD_SELECTOR)),
        f(3, "configMapKeyRef", One, Msg(&CORE_CONFIG_MAP_KEY_SELECTOR)),
        f(4, "secretKeyRef", One, Msg(&CORE_SECRET_KEY_SELECTOR)),
        f(5, "fileKeyRef", One, Msg(&CORE_FILE_KEY_SELECTOR)),
    ]);
    pub(super) static CORE_CONTAINER_RESTART_RULE_ON_EXIT_CODES: Message = msg("ContainerRestartRuleOnExitCodes", &[
        f(1, "operator", Zero, Str),
        f(2, "values", Rep, I32),
    ]);
    pub(super) static CORE_PROBE_HANDLER: Message = msg("ProbeHandler", &[
        f(1, "exec", One, Msg(&CORE_EXEC_ACTION)),
        f(2, "httpGet", One, Msg(&CORE_HTTP_GET_ACTION)),
        f(3, "tcpSocket", One, Msg(&CORE_TCP_SOCKET_ACTION)),
        f(4, "grpc", One, Msg(&CORE_GRPC_ACTION)),
    ]);
    pub(super) static CORE_LIFECYCLE_HANDLER: Message = msg("LifecycleHandler", &[
        f(1, "exec", One, Msg(&CORE_EXEC_ACTION)),
        f(2, "httpGet", One, Msg(&CORE_HTTP_GET_ACTION)),
        f(3, "tcpSocket", One, Msg(&CORE_TCP_SOCKET_ACTION)),
        f(4, "sleep", One, Msg(&CORE_SLEEP_ACTION)),
    ]);
    pub(super) static CORE_CAPABILITIES: Message = msg("Capabilities", &[
        f(1, "add", Rep, Str),
        f(2, "drop", Rep, Str),
    ]);
    pub(super) static CORE_NODE_SELECTOR: Message = msg("NodeSelector", &[
        f(1, "nodeSelectorTerms", Rep, Msg(&CORE_NODE_SELECTOR_TERM)),
    ]);
    pub(super) static CORE_PREFERRED_SCHEDULING_TERM: Message = msg("PreferredSchedulingTerm", &[
        f(1, "weight", One, I32),
        f(2, "preference", One, Msg(&CORE_NODE_SELECTOR_TERM)),
    ]);
    pub(super) static CORE_POD_AFFINITY_TERM: Message = msg("PodAffinityTerm", &[
        f(1, "labelSelector", One, Msg(&META_LABEL_SELECTOR)),
        f(2, "namespaces", Rep, Str),
        f(3, "topologyKey", One, Str),
        f(4, "namespaceSelector", One, Msg(&META_LABEL_SELECTOR)),
        f(5, "matchLabelKeys", Rep, Str),
        f(6, "mismatchLabelKeys", Rep, Str),
    ]);
    pub(super) static CORE_WEIGHTED_POD_AFFINITY_TERM: Message = msg("WeightedPodAffinityTerm", &[
        f(1, "weight", One, I32),
        f(2, "podAffinityTerm", One, Msg(&CORE_POD_AFFINITY_TERM)),
    ]);
    pub(super) static CORE_CONTAINER_STATE_WAITING: Message = msg("ContainerStateWaiting", &[
        f(1, "reason", Zero, Str),
        f(2, "message", Zero, Str),
    ]);
    pub(super) static CORE_CONTAINER_STATE_RUNNING: Message = msg("ContainerStateRunning", &[
        f(1, "startedAt", One, Time),
    ]);
    pub(super) static CORE_CONTAINER_STATE_TERMINATED: Message = msg("ContainerStateTerminated", &[
        f(1, "exitCode", One, I32),
        f(2, "signal", Zero, I32),
        f(3, "reason", Zero, Str),
        f(4, "message", Zero, Str),
        f(5, "startedAt", One, Time),
        f(6, "finishedAt", One, Time),
        f(7, "containerID", Zero, Str),
    ]);
    pub(super) static CORE_VOLUME_STATUS: Message = msg("VolumeStatus", &[
        f(1, "image", One, Msg(&CORE_IMAGE_VOLUME_STATUS)),
    ]);
    pub(super) static CORE_LINUX_CONTAINER_USER: Message = msg("LinuxContainerUser", &[
        f(1, "uid", One, I64),
        f(2, "gid", One, I64),
        f(3, "supplementalGroups", Rep, I64),
    ]);
    pub(super) static CORE_RESOURCE_HEALTH: Message = msg("ResourceHealth", &[
        f(1, "resourceID", One, Str),
        f(2, "health", Zero, Str),
        f(6, "message", One, Str),
    ]);
    pub(super) static CORE_VOLUME_RESOURCE_REQUIREMENTS: Message = msg("VolumeResourceRequirements", &[
        f(1, "limits", One, MapOf(&Quantity)),
        f(2, "requests", One, MapOf(&Quantity)),
    ]);
    pub(super) static CORE_TYPED_LOCAL_OBJECT_REFERENCE: Message = msg("TypedLocalObjectReference", &[
        f(1, "apiGroup", One, Str),
        f(2, "kind", One, Str),
        f(3, "name", One, Str),
    ]);
    pub(super) static CORE_TYPED_OBJECT_REFERENCE: Message = msg("TypedObjectReference", &[
        f(1, "apiGroup", One, Str),
        f(2, "kind", One, Str),
        f(3, "name", One, Str),
        f(4, "namespace", One, Str),
    ]);
    pub(super) static CORE_PERSISTENT_VOLUME_CLAIM_CONDITION: Message = msg("PersistentVolumeClaimCondition", &[
        f(1, "type", One, Str),
        f(2, "status", One, Str),
        f(3, "lastProbeTime", One, Time),
        f(4, "lastTransitionTime", One, Time),
        f(5, "reason", Zero, Str),
        f(6, "message", Zero, Str),
    ]);
    pub(super) static CORE_MODIFY_VOLUME_STATUS: Message = msg("ModifyVolumeStatus", &[
        f(1, "targetVolumeAttributesClassName", Zero, Str),
        f(2, "status", One, Str),
    ]);
    pub(super) static CORE_VOLUME_HEALTH_STATUS: Message = msg("VolumeHealthStatus", &[
        f(1, "healthConditions", Rep, Msg(&CORE_VOLUME_HEALTH_CONDITION)),
        f(2, "lastTransitionTime", One, Time),
    ]);
    pub(super) static CORE_KEY_TO_PATH: Message = msg("KeyToPath", &[
        f(1, "key", One, Str),
        f(2, "path", One, Str),
        f(3, "mode", One, I32),
        f(4, "user", One, I64),
    ]);
    pub(super) static CORE_DOWNWARD_API_VOLUME_FILE: Message = msg("DownwardAPIVolumeFile", &[
        f(1, "path", One, Str),
        f(2, "fieldRef", One, Msg(&CORE_OBJECT_FIELD_SELECTOR)),
        f(3, "resourceFieldRef", One, Msg(&CORE_RESOURCE_FIELD_SELECTOR)),
        f(4, "mode", One, I32),
        f(5, "user", One, I64),
    ]);
    pub(super) static CORE_VOLUME_PROJECTION: Message = msg("VolumeProjection", &[
        f(1, "secret", One, Msg(&CORE_SECRET_PROJECTION)),
        f(2, "downwardAPI", One, Msg(&CORE_DOWNWARD_API_PROJECTION)),
        f(3, "configMap", One, Msg(&CORE_CONFIG_MAP_PROJECTION)),
        f(4, "serviceAccountToken", One, Msg(&CORE_SERVICE_ACCOUNT_TOKEN_PROJECTION)),
        f(5, "clusterTrustBundle", One, Msg(&CORE_CLUSTER_TRUST_BUNDLE_PROJECTION)),
        f(6, "podCertificate", One, Msg(&CORE_POD_CERTIFICATE_PROJECTION)),
    ]);
    pub(super) static CORE_PERSISTENT_VOLUME_CLAIM_TEMPLATE: Message = msg("PersistentVolumeClaimTemplate", &[
        f(1, "metadata", One, Msg(&META_OBJECT_META)),
        f(2, "spec", One, Msg(&CORE_PERSISTENT_VOLUME_CLAIM_SPEC)),
    ]);
    pub(super) static CORE_OBJECT_FIELD_SELECTOR: Message = msg("ObjectFieldSelector", &[
        f(1, "apiVersion", Zero, Str),
        f(2, "fieldPath", One, Str),
    ]);
    pub(super) static CORE_RESOURCE_FIELD_SELECTOR: Message = msg("ResourceFieldSelector", &[
        f(1, "containerName", Zero, Str),
        f(2, "resource", One, Str),
        f(3, "divisor", One, Quantity),
    ]);
    pub(super) static CORE_CONFIG_MAP_KEY_SELECTOR: Message = msg("ConfigMapKeySelector", &[
        f(1, "", One, Inline(&CORE_LOCAL_OBJECT_REFERENCE)),
        f(2, "key", One, Str),
        f(3, "optional", One, Bool),
    ]);
    pub(super) static CORE_SECRET_KEY_SELECTOR: Message = msg("SecretKeySelector", &[
        f(1, "", One, Inline(&CORE_LOCAL_OBJECT_REFERENCE)),
        f(2, "key", One, Str),
        f(3, "optional", One, Bool),
    ]);
    pub(super) static CORE_FILE_KEY_SELECTOR: Message = msg("FileKeySelector", &[
        f(1, "volumeName", One, Str),
        f(2, "path", One, Str),
        f(3, "key", One, Str),
        f(4, "optional", One, Bool),
    ]);
    pub(super) static CORE_EXEC_ACTION: Message = msg("ExecAction", &[
        f(1, "command", Rep, Str),
    ]);
    pub(super) static CORE_HTTP_GET_ACTION: Message = msg("HTTPGetAction", &[
        f(1, "path", Zero, Str),
        f(2, "port", One, IntOrString),
        f(3, "host", Zero, Str),
        f(4, "scheme", Zero, Str),
        f(5, "httpHeaders", Rep, Msg(&CORE_HTTP_HEADER)),
        f(6, "protocol", One, Str),
    ]);
    pub(super) static CORE_TCP_SOCKET_ACTION: Message = msg("TCPSocketAction", &[
        f(1, "port", One, IntOrString),
        f(2, "host", Zero, Str),
    ]);
    pub(super) static CORE_GRPC_ACTION: Message = msg("GRPCAction", &[
        f(1, "port", One, I32),
        f(2, "service", One, Str),
        f(3, "mode", One, Str),
    ]);
    pub(super) static CORE_SLEEP_ACTION: Message = msg("SleepAction", &[
        f(1, "seconds", One, I64),
    ]);
    pub(super) static CORE_NODE_SELECTOR_TERM: Message = msg("NodeSelectorTerm", &[
        f(1, "matchExpressions", Rep, Msg(&CORE_NODE_SELECTOR_REQUIREMENT)),
        f(2, "matchFields", Rep, Msg(&CORE_NODE_SELECTOR_REQUIREMENT)),
    ]);
    pub(super) static CORE_IMAGE_VOLUME_STATUS: Message = msg("ImageVolumeStatus", &[
        f(1, "imageRef", Zero, Str),
    ]);
    pub(super) static CORE_SECRET_PROJECTION: Message = msg("SecretProjection", &[
        f(1, "", One, Inline(&CORE_LOCAL_OBJECT_REFERENCE)),
        f(2, "items", Rep, Msg(&CORE_KEY_TO_PATH)),
        f(4, "optional", One, Bool),
    ]);
    pub(super) static CORE_DOWNWARD_API_PROJECTION: Message = msg("DownwardAPIProjection", &[
        f(1, "items", Rep, Msg(&CORE_DOWNWARD_API_VOLUME_FILE)),
    ]);
    pub(super) static CORE_CONFIG_MAP_PROJECTION: Message = msg("ConfigMapProjection", &[
        f(1, "", One, Inline(&CORE_LOCAL_OBJECT_REFERENCE)),
        f(2, "items", Rep, Msg(&CORE_KEY_TO_PATH)),
        f(4, "optional", One, Bool),
    ]);
    pub(super) static CORE_SERVICE_ACCOUNT_TOKEN_PROJECTION: Message = msg("ServiceAccountTokenProjection", &[
        f(1, "audience", Zero, Str),
        f(2, "expirationSeconds", One, I64),
        f(3, "path", One, Str),
        f(4, "user", One, I64),
    ]);
    pub(super) static CORE_CLUSTER_TRUST_BUNDLE_PROJECTION: Message = msg("ClusterTrustBundleProjection", &[
        f(1, "name", One, Str),
        f(2, "signerName", One, Str),
        f(3, "labelSelector", One, Msg(&META_LABEL_SELECTOR)),
        f(5, "optional", One, Bool),
        f(4, "path", One, Str),
        f(6, "user", One, I64),
    ]);
    pub(super) static CORE_POD_CERTIFICATE_PROJECTION: Message = msg("PodCertificateProjection", &[
        f(1, "signerName", Zero, Str),
        f(2, "keyType", Zero, Str),
        f(3, "maxExpirationSeconds", One, I32),
        f(4, "credentialBundlePath", Zero, Str),
        f(5, "keyPath", Zero, Str),
        f(6, "certificateChainPath", Zero, Str),
        f(7, "userAnnotations", One, MapOf(&Str)),
        f(8, "user", One, I64),
    ]);
    pub(super) static CORE_HTTP_HEADER: Message = msg("HTTPHeader", &[
        f(1, "name", One, Str),
        f(2, "value", One, Str),
    ]);
    pub(super) static CORE_NODE_SELECTOR_REQUIREMENT: Message = msg("NodeSelectorRequirement", &[
        f(1, "key", One, Str),
        f(2, "operator", One, Str),
        f(3, "values", Rep, Str),
    ]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // ---- a tiny table-driven encoder, test-only ----

    fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    fn key(out: &mut Vec<u8>, tag: u32, wire: u8) {
        varint(out, (u64::from(tag) << 3) | u64::from(wire));
    }

    fn len(out: &mut Vec<u8>, tag: u32, data: &[u8]) {
        key(out, tag, WIRE_LEN);
        varint(out, data.len() as u64);
        out.extend_from_slice(data);
    }

    fn encode_message(obj: &Map<String, Value>, m: &Message) -> Vec<u8> {
        let mut out = Vec::new();
        for field in m.fields {
            if let Ty::Inline(inner) = field.ty {
                if inner.fields.iter().any(|f| obj.contains_key(f.json)) {
                    len(&mut out, field.tag, &encode_message(obj, inner));
                }
                continue;
            }
            let Some(v) = obj.get(field.json) else {
                continue;
            };
            match (field.card, field.ty) {
                (Card::Rep, ty) => {
                    for item in v.as_array().unwrap() {
                        encode_value(&mut out, field.tag, ty, item);
                    }
                }
                (_, Ty::MapOf(vt)) => {
                    for (k, val) in v.as_object().unwrap() {
                        let mut entry = Vec::new();
                        len(&mut entry, 1, k.as_bytes());
                        encode_value(&mut entry, 2, *vt, val);
                        len(&mut out, field.tag, &entry);
                    }
                }
                (_, ty) => encode_value(&mut out, field.tag, ty, v),
            }
        }
        out
    }

    fn time_message(v: &Value) -> Vec<u8> {
        let mut sub = Vec::new();
        if let Some(s) = v.as_str() {
            let ts: jiff::Timestamp = s.parse().unwrap();
            key(&mut sub, 1, WIRE_VARINT);
            varint(&mut sub, ts.as_second() as u64);
            key(&mut sub, 2, WIRE_VARINT);
            varint(&mut sub, ts.subsec_nanosecond() as u64);
        }
        sub
    }

    fn encode_value(out: &mut Vec<u8>, tag: u32, ty: Ty, v: &Value) {
        match ty {
            Ty::Str => len(out, tag, v.as_str().unwrap().as_bytes()),
            Ty::Bytes => {
                let b = base64::engine::general_purpose::STANDARD
                    .decode(v.as_str().unwrap())
                    .unwrap();
                len(out, tag, &b);
            }
            Ty::I32 | Ty::I64 => {
                key(out, tag, WIRE_VARINT);
                varint(out, v.as_i64().unwrap() as u64);
            }
            Ty::Bool => {
                key(out, tag, WIRE_VARINT);
                varint(out, u64::from(v.as_bool().unwrap()));
            }
            Ty::F64 => {
                key(out, tag, WIRE_I64);
                out.extend_from_slice(&v.as_f64().unwrap().to_le_bytes());
            }
            Ty::Msg(m) => len(out, tag, &encode_message(v.as_object().unwrap(), m)),
            Ty::Time | Ty::MicroTime => len(out, tag, &time_message(v)),
            Ty::IntOrString => {
                let mut sub = Vec::new();
                key(&mut sub, 1, WIRE_VARINT);
                if let Some(s) = v.as_str() {
                    varint(&mut sub, 1);
                    len(&mut sub, 3, s.as_bytes());
                } else {
                    varint(&mut sub, 0);
                    key(&mut sub, 2, WIRE_VARINT);
                    varint(&mut sub, v.as_i64().unwrap() as u64);
                }
                len(out, tag, &sub);
            }
            Ty::Quantity => {
                let mut sub = Vec::new();
                len(&mut sub, 1, v.as_str().unwrap().as_bytes());
                len(out, tag, &sub);
            }
            Ty::RawExtension | Ty::FieldsV1 => {
                let mut sub = Vec::new();
                len(&mut sub, 1, &serde_json::to_vec(v).unwrap());
                len(out, tag, &sub);
            }
            Ty::Duration | Ty::Inline(_) | Ty::MapOf(_) => panic!("not encodable here"),
        }
    }

    fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
        let mut tm = Vec::new();
        len(&mut tm, 1, api_version.as_bytes());
        len(&mut tm, 2, kind.as_bytes());
        let mut out = MAGIC.to_vec();
        len(&mut out, 1, &tm);
        len(&mut out, 2, raw);
        len(&mut out, 4, CONTENT_TYPE.as_bytes());
        out
    }

    /// Encodes `obj` with the tables for its kind and checks it decodes back unchanged.
    fn round_trip(obj: Value) {
        let api_version = obj["apiVersion"].as_str().unwrap();
        let kind = obj["kind"].as_str().unwrap();
        let m = tables::lookup(api_version, kind).unwrap();
        let body = envelope(
            api_version,
            kind,
            &encode_message(obj.as_object().unwrap(), m),
        );
        let got = decode(&body).unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(got, obj, "{kind}");
    }

    /// Bodies captured from `kubectl v1.32 create ...` (protobuf) and the same command's
    /// `--dry-run=client -o json` output.
    const GOLDEN: &[(&str, &[u8], &str)] = &[
        (
            "configmap",
            include_bytes!("protobuf_fixtures/configmap.pb"),
            include_str!("protobuf_fixtures/configmap.json"),
        ),
        (
            "secret",
            include_bytes!("protobuf_fixtures/secret.pb"),
            include_str!("protobuf_fixtures/secret.json"),
        ),
        (
            "namespace",
            include_bytes!("protobuf_fixtures/namespace.pb"),
            include_str!("protobuf_fixtures/namespace.json"),
        ),
        (
            "deployment",
            include_bytes!("protobuf_fixtures/deployment.pb"),
            include_str!("protobuf_fixtures/deployment.json"),
        ),
        (
            "service",
            include_bytes!("protobuf_fixtures/service.pb"),
            include_str!("protobuf_fixtures/service.json"),
        ),
        (
            "serviceaccount",
            include_bytes!("protobuf_fixtures/serviceaccount.pb"),
            include_str!("protobuf_fixtures/serviceaccount.json"),
        ),
        (
            "quota",
            include_bytes!("protobuf_fixtures/quota.pb"),
            include_str!("protobuf_fixtures/quota.json"),
        ),
    ];

    #[test]
    fn golden_kubectl_bodies() {
        for (name, pb, js) in GOLDEN {
            let want: Value = serde_json::from_str(js).unwrap();
            let got = decode(pb).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(got, want, "{name}");
        }
    }

    fn meta() -> Value {
        json!({
            "name": "x",
            "namespace": "default",
            "uid": "3b1d0a50-0000-4000-8000-000000000001",
            "resourceVersion": "42",
            "generation": 3,
            "creationTimestamp": "2024-01-01T00:00:00Z",
            "deletionTimestamp": "2024-02-29T23:59:59Z",
            "deletionGracePeriodSeconds": 0,
            "labels": {"app": "x", "tier": ""},
            "annotations": {"a.example.com/b": "c"},
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u1",
                "controller": true, "blockOwnerDeletion": false
            }],
            "finalizers": ["kubernetes.io/x", "y"],
            "managedFields": [{
                "manager": "kubectl", "operation": "Update", "apiVersion": "v1",
                "time": "2024-01-01T00:00:01Z", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:data": {"f:a": {}}}, "subresource": "status"
            }]
        })
    }

    fn pod_spec() -> Value {
        json!({
            "volumes": [
                {"name": "e", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
                {"name": "c", "configMap": {"name": "cm", "items": [{"key": "k", "path": "p", "mode": 256}],
                    "defaultMode": 420, "optional": false}},
                {"name": "s", "secret": {"secretName": "sec", "defaultMode": 384}},
                {"name": "h", "hostPath": {"path": "/var/log", "type": "Directory"}},
                {"name": "pr", "projected": {"defaultMode": 420, "sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token", "audience": "api"}},
                    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                    {"downwardAPI": {"items": [{"path": "namespace",
                        "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
                    {"secret": {"name": "s2", "optional": true}}
                ]}},
                {"name": "d", "downwardAPI": {"items": [{"path": "cpu",
                    "resourceFieldRef": {"containerName": "c", "resource": "limits.cpu", "divisor": "1m"}}]}},
                {"name": "pvc", "persistentVolumeClaim": {"claimName": "data", "readOnly": true}}
            ],
            "initContainers": [{"name": "init", "image": "busybox", "command": ["true"], "resources": {}}],
            "containers": [{
                "name": "c",
                "image": "nginx:1.27",
                "command": ["sh", "-c"],
                "args": ["sleep 1"],
                "workingDir": "/w",
                "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"},
                          {"containerPort": 53, "hostPort": 5353, "protocol": "UDP", "hostIP": "0.0.0.0"}],
                "envFrom": [{"prefix": "P_", "configMapRef": {"name": "cm"}}, {"secretRef": {"name": "s", "optional": true}}],
                "env": [
                    {"name": "A", "value": "1"},
                    {"name": "B"},
                    {"name": "C", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                    {"name": "D", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k", "optional": false}}},
                    {"name": "E", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}},
                    {"name": "F", "valueFrom": {"resourceFieldRef": {"resource": "requests.memory", "divisor": "1Mi"}}}
                ],
                "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "100m"}},
                "volumeMounts": [{"name": "e", "mountPath": "/e", "readOnly": true, "subPath": "x",
                                  "mountPropagation": "HostToContainer"}],
                "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP",
                                  "httpHeaders": [{"name": "X", "value": "y"}]},
                                  "initialDelaySeconds": 5, "periodSeconds": 10, "timeoutSeconds": 1,
                                  "successThreshold": 1, "failureThreshold": 3, "terminationGracePeriodSeconds": 0},
                "readinessProbe": {"tcpSocket": {"port": "http"}},
                "startupProbe": {"exec": {"command": ["cat", "/ready"]}},
                "lifecycle": {"preStop": {"sleep": {"seconds": 2}}, "postStart": {"exec": {"command": ["x"]}}},
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "imagePullPolicy": "IfNotPresent",
                "securityContext": {"runAsUser": 0, "runAsNonRoot": false, "privileged": false,
                    "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false,
                    "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]},
                    "seccompProfile": {"type": "RuntimeDefault"}},
                "stdin": true,
                "tty": true
            }],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 0,
            "activeDeadlineSeconds": 60,
            "dnsPolicy": "ClusterFirst",
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "serviceAccountName": "default",
            "automountServiceAccountToken": false,
            "nodeName": "node-1",
            "hostNetwork": true,
            "securityContext": {"fsGroup": 2000, "runAsGroup": 0, "supplementalGroups": [1, 2, 0],
                                "sysctls": [{"name": "net.core.somaxconn", "value": "1024"}]},
            "imagePullSecrets": [{"name": "reg"}],
            "hostname": "h",
            "subdomain": "sd",
            "affinity": {
                "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}]},
                    "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "preference":
                        {"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["n"]}]}}]},
                "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
                    "labelSelector": {"matchLabels": {"app": "x"}},
                    "topologyKey": "kubernetes.io/hostname", "namespaces": ["default"]}]}
            },
            "schedulerName": "default-scheduler",
            "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 0},
                            {"operator": "Exists"}],
            "hostAliases": [{"ip": "127.0.0.1", "hostnames": ["foo"]}],
            "priorityClassName": "high",
            "priority": 0,
            "dnsConfig": {"nameservers": ["1.1.1.1"], "options": [{"name": "ndots", "value": "2"}]},
            "enableServiceLinks": false,
            "overhead": {"cpu": "10m"},
            "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
                                           "labelSelector": {"matchExpressions": [{"key": "app", "operator": "Exists"}]}}]
        })
    }

    fn template() -> Value {
        json!({"metadata": {"creationTimestamp": null, "labels": {"app": "x"}}, "spec": pod_spec()})
    }

    #[test]
    fn round_trip_core_kinds() {
        round_trip(
            json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": meta(),
            "data": {"a": "b", "empty": ""}, "binaryData": {"bin": "AAEC/w=="}, "immutable": false}),
        );
        round_trip(
            json!({"kind": "Secret", "apiVersion": "v1", "metadata": {"name": "s"},
            "data": {"pw": "czNjcjN0"}, "stringData": {"x": "y"}, "type": "Opaque", "immutable": true}),
        );
        round_trip(
            json!({"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": "ns"},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active",
            "conditions": [{"type": "T", "status": "False", "lastTransitionTime": "2024-01-01T00:00:00Z"}]}}),
        );
        round_trip(
            json!({"kind": "ServiceAccount", "apiVersion": "v1", "metadata": {"name": "sa"},
            "secrets": [{"name": "t"}], "imagePullSecrets": [{"name": "r"}], "automountServiceAccountToken": false}),
        );
        round_trip(
            json!({"kind": "Service", "apiVersion": "v1", "metadata": {"name": "s"},
            "spec": {"ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": "http", "nodePort": 30080},
                               {"port": 53, "targetPort": 5353, "appProtocol": "dns"}],
                     "selector": {"app": "s"}, "clusterIP": "10.0.0.1", "clusterIPs": ["10.0.0.1"],
                     "type": "NodePort", "sessionAffinity": "ClientIP",
                     "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}},
                     "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "externalTrafficPolicy": "Local",
                     "internalTrafficPolicy": "Cluster", "allocateLoadBalancerNodePorts": false},
            "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4", "ports": [{"port": 80, "protocol": "TCP"}]}]}}}),
        );
        round_trip(
            json!({"kind": "Pod", "apiVersion": "v1", "metadata": meta(), "spec": pod_spec(),
            "status": {"phase": "Running", "podIP": "10.1.0.5", "podIPs": [{"ip": "10.1.0.5"}],
                "startTime": "2024-01-01T00:00:00Z", "qosClass": "Burstable",
                "conditions": [{"type": "Ready", "status": "True", "lastProbeTime": null,
                                "lastTransitionTime": "2024-01-01T00:00:05Z"}],
                "containerStatuses": [{"name": "c", "ready": true, "restartCount": 0, "image": "nginx",
                    "imageID": "", "started": true,
                    "state": {"running": {"startedAt": "2024-01-01T00:00:03Z"}},
                    "lastState": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}}),
        );
        round_trip(
            json!({"kind": "ResourceQuota", "apiVersion": "v1", "metadata": {"name": "q"},
            "spec": {"hard": {"pods": "2", "requests.cpu": "1"}, "scopes": ["BestEffort"],
                     "scopeSelector": {"matchExpressions": [{"scopeName": "PriorityClass", "operator": "In", "values": ["high"]}]}},
            "status": {"hard": {"pods": "2"}, "used": {"pods": "0"}}}),
        );
        round_trip(
            json!({"kind": "LimitRange", "apiVersion": "v1", "metadata": {"name": "l"},
            "spec": {"limits": [{"type": "Container", "max": {"cpu": "2"}, "default": {"cpu": "500m"},
                                 "defaultRequest": {"cpu": "100m"}, "maxLimitRequestRatio": {"cpu": "4"}}]}}),
        );
        round_trip(
            json!({"kind": "Endpoints", "apiVersion": "v1", "metadata": {"name": "e"},
            "subsets": [{"addresses": [{"ip": "10.1.0.5", "nodeName": "n",
                            "targetRef": {"kind": "Pod", "name": "p", "namespace": "default", "uid": "u"}}],
                         "notReadyAddresses": [{"ip": "10.1.0.6"}],
                         "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}]}),
        );
        round_trip(
            json!({"kind": "Event", "apiVersion": "v1", "metadata": {"name": "p.1", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "p", "apiVersion": "v1", "fieldPath": "spec.containers{c}"},
            "reason": "Pulled", "message": "ok", "source": {"component": "kubelet", "host": "n"},
            "firstTimestamp": "2024-01-01T00:00:00Z", "lastTimestamp": null, "count": 2, "type": "Normal",
            "eventTime": "2024-01-01T00:00:00.123456Z",
            "series": {"count": 2, "lastObservedTime": "2024-01-01T00:00:01.000001Z"},
            "action": "Pull", "reportingComponent": "kubelet", "reportingInstance": "n"}),
        );
        round_trip(
            json!({"kind": "Node", "apiVersion": "v1", "metadata": {"name": "n"},
            "spec": {"podCIDR": "10.1.0.0/24", "podCIDRs": ["10.1.0.0/24"], "unschedulable": true,
                     "taints": [{"key": "k", "effect": "NoSchedule", "timeAdded": "2024-01-01T00:00:00Z"}]},
            "status": {"capacity": {"cpu": "2", "pods": "110"}, "allocatable": {"cpu": "2"},
                "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": "2024-01-01T00:00:00Z",
                                "lastTransitionTime": "2024-01-01T00:00:00Z", "reason": "KubeletReady"}],
                "addresses": [{"type": "InternalIP", "address": "192.168.1.2"}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                "nodeInfo": {"machineID": "m", "systemUUID": "s", "bootID": "b", "kernelVersion": "6",
                             "osImage": "Debian", "containerRuntimeVersion": "k1s", "kubeletVersion": "v1.32.0",
                             "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": "amd64"},
                "images": [{"names": ["nginx"], "sizeBytes": 1234}]}}),
        );
        round_trip(
            json!({"kind": "Binding", "apiVersion": "v1", "metadata": {"name": "p", "namespace": "default"},
            "target": {"kind": "Node", "name": "n"}}),
        );
    }

    #[test]
    fn round_trip_workloads_and_subresources() {
        let selector = json!({"matchLabels": {"app": "x"},
            "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}]});
        round_trip(
            json!({"kind": "Deployment", "apiVersion": "apps/v1", "metadata": meta(),
            "spec": {"replicas": 0, "selector": selector, "template": template(),
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
                     "minReadySeconds": 5, "revisionHistoryLimit": 10, "paused": true, "progressDeadlineSeconds": 600},
            "status": {"observedGeneration": 3, "replicas": 1, "readyReplicas": 1,
                       "conditions": [{"type": "Available", "status": "True",
                                       "lastUpdateTime": "2024-01-01T00:00:00Z", "lastTransitionTime": null}]}}),
        );
        round_trip(
            json!({"kind": "ReplicaSet", "apiVersion": "apps/v1", "metadata": {"name": "rs"},
            "spec": {"replicas": 2, "selector": selector, "template": template()}, "status": {"replicas": 0}}),
        );
        round_trip(
            json!({"kind": "StatefulSet", "apiVersion": "apps/v1", "metadata": {"name": "ss"},
            "spec": {"replicas": 1, "selector": selector, "template": template(), "serviceName": "ss",
                     "podManagementPolicy": "Parallel",
                     "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0, "maxUnavailable": 1}},
                     "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                         "accessModes": ["ReadWriteOnce"], "storageClassName": "",
                         "resources": {"requests": {"storage": "1Gi"}}}}],
                     "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Delete"},
                     "ordinals": {"start": 0}},
            "status": {"replicas": 0, "availableReplicas": 0}}),
        );
        round_trip(
            json!({"kind": "DaemonSet", "apiVersion": "apps/v1", "metadata": {"name": "ds"},
            "spec": {"selector": selector, "template": template(),
                     "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
                     "revisionHistoryLimit": 3},
            "status": {"currentNumberScheduled": 0, "numberMisscheduled": 0, "desiredNumberScheduled": 0,
                       "numberReady": 0}}),
        );
        round_trip(
            json!({"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": {"name": "d"},
            "spec": {"replicas": 3}, "status": {"replicas": 2, "selector": "app=x"}}),
        );
        round_trip(
            json!({"kind": "Eviction", "apiVersion": "policy/v1", "metadata": {"name": "p", "namespace": "default"},
            "deleteOptions": {"gracePeriodSeconds": 0, "preconditions": {"uid": "u", "resourceVersion": "1"},
                              "propagationPolicy": "Foreground", "dryRun": ["All"], "orphanDependents": false}}),
        );
        round_trip(
            json!({"kind": "DeleteOptions", "apiVersion": "meta.k8s.io/v1",
            "gracePeriodSeconds": 30, "propagationPolicy": "Background"}),
        );
        round_trip(
            json!({"kind": "DeleteOptions", "apiVersion": "apps/v1", "preconditions": {"uid": "u"}}),
        );
    }

    #[test]
    fn zero_valued_omitempty_scalars_are_dropped_but_pointers_kept() {
        // ObjectMeta{name: "", generation: 0, creationTimestamp: {}} + spec{replicas: 0 (pointer)}.
        let mut meta = Vec::new();
        len(&mut meta, 1, b"");
        key(&mut meta, 7, WIRE_VARINT);
        varint(&mut meta, 0);
        len(&mut meta, 8, b"");
        let mut spec = Vec::new();
        key(&mut spec, 1, WIRE_VARINT);
        varint(&mut spec, 0);
        let mut raw = Vec::new();
        len(&mut raw, 1, &meta);
        len(&mut raw, 2, &spec);
        let got = decode(&envelope("apps/v1", "Deployment", &raw)).unwrap();
        assert_eq!(
            got,
            json!({"kind": "Deployment", "apiVersion": "apps/v1",
                   "metadata": {"creationTimestamp": null}, "spec": {"replicas": 0}})
        );
    }

    #[test]
    fn scale_replicas_zero_is_omitted_like_go_json() {
        // autoscaling/v1 ScaleSpec.replicas is a non-pointer `omitempty` int32: Go JSON clients send
        // `spec: {}` for zero, and so does this decoder (the scale handler reads a missing value as 0).
        let mut spec = Vec::new();
        key(&mut spec, 1, WIRE_VARINT);
        varint(&mut spec, 0);
        let mut raw = Vec::new();
        len(&mut raw, 2, &spec);
        let got = decode(&envelope("autoscaling/v1", "Scale", &raw)).unwrap();
        assert_eq!(got["spec"], json!({}));
    }

    #[test]
    fn scalars_edge_cases() {
        // Negative int32 as a 10-byte varint, packed repeated int64, repeated field merging.
        let mut sc = Vec::new();
        key(&mut sc, 2, WIRE_VARINT);
        varint(&mut sc, -5i64 as u64);
        let mut packed = Vec::new();
        varint(&mut packed, 1);
        varint(&mut packed, 300);
        len(&mut sc, 4, &packed);
        key(&mut sc, 4, WIRE_VARINT);
        varint(&mut sc, 7);
        let mut spec = Vec::new();
        len(&mut spec, 14, &sc);
        let mut raw = Vec::new();
        len(&mut raw, 2, &spec);
        let got = decode(&envelope("v1", "Pod", &raw)).unwrap();
        assert_eq!(
            got["spec"]["securityContext"],
            json!({"runAsUser": -5, "supplementalGroups": [1, 300, 7]})
        );
    }

    #[test]
    fn time_formats() {
        let field = &tables::CORE_EVENT.fields[0];
        let mut t = Vec::new();
        key(&mut t, 1, WIRE_VARINT);
        varint(&mut t, 1_704_067_200);
        key(&mut t, 2, WIRE_VARINT);
        varint(&mut t, 5_000);
        let ev = &tables::CORE_EVENT;
        assert_eq!(
            decode_time(&t, ev, field, false).unwrap(),
            json!("2024-01-01T00:00:00Z")
        );
        assert_eq!(
            decode_time(&t, ev, field, true).unwrap(),
            json!("2024-01-01T00:00:00.000005Z")
        );
        assert_eq!(decode_time(&[], ev, field, false).unwrap(), Value::Null);
        let mut zero = Vec::new();
        key(&mut zero, 1, WIRE_VARINT);
        varint(&mut zero, GO_ZERO_TIME as u64);
        assert_eq!(decode_time(&zero, ev, field, false).unwrap(), Value::Null);
        let mut epoch = Vec::new();
        key(&mut epoch, 1, WIRE_VARINT);
        varint(&mut epoch, 0);
        assert_eq!(
            decode_time(&epoch, ev, field, false).unwrap(),
            json!("1970-01-01T00:00:00Z")
        );
        let mut bad = Vec::new();
        key(&mut bad, 2, WIRE_VARINT);
        varint(&mut bad, 2_000_000_000);
        assert!(decode_time(&bad, ev, field, false).is_err());
        let mut huge = Vec::new();
        key(&mut huge, 1, WIRE_VARINT);
        varint(&mut huge, i64::MAX as u64);
        assert!(decode_time(&huge, ev, field, false).is_err());
    }

    #[test]
    fn durations_format_like_go() {
        for (ns, want) in [
            (0, "0s"),
            (1, "1ns"),
            (1_500, "1.5µs"),
            (2_000_000, "2ms"),
            (1_000_000_000, "1s"),
            (90_000_000_000, "1m30s"),
            (3_600_000_000_000, "1h0m0s"),
            (3_723_500_000_000, "1h2m3.5s"),
            (-1_500_000_000, "-1.5s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
        ] {
            assert_eq!(go_duration(ns), want);
        }
    }

    #[test]
    fn errors() {
        let cm = |raw: &[u8]| decode(&envelope("v1", "ConfigMap", raw));
        assert_eq!(decode(b"{}"), Err(ProtobufError::MissingMagic));
        // Unknown field numbers are reported, not dropped.
        let mut raw = Vec::new();
        len(&mut raw, 99, b"x");
        let e = cm(&raw).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown field number 99 in message ConfigMap"
        );
        // Wrong wire type.
        let mut raw = Vec::new();
        key(&mut raw, 1, WIRE_VARINT);
        varint(&mut raw, 1);
        assert!(matches!(
            cm(&raw),
            Err(ProtobufError::WireType { field: 1, .. })
        ));
        // Truncated length, overlong varint, field 0, groups.
        assert!(matches!(
            cm(&[0x0a, 0x05, 0x00]),
            Err(ProtobufError::Truncated(_))
        ));
        assert!(matches!(
            cm(&[0x20; 1][..]
                .iter()
                .chain(&[0xff; 11])
                .copied()
                .collect::<Vec<_>>()),
            Err(ProtobufError::BadVarint(_))
        ));
        assert!(matches!(
            cm(&[0x00, 0x00]),
            Err(ProtobufError::ZeroField(_))
        ));
        assert!(matches!(
            cm(&[0x0b]),
            Err(ProtobufError::WireType { wire: 3, .. })
        ));
        // Envelope problems.
        let e = decode(&envelope("batch/v1", "Job", b"")).unwrap_err();
        assert_eq!(
            e,
            ProtobufError::UnknownKind {
                api_version: "batch/v1".into(),
                kind: "Job".into()
            }
        );
        assert_eq!(
            decode(&envelope("v1", "", b"")),
            Err(ProtobufError::MissingKind)
        );
        assert_eq!(
            decode(&envelope("", "Pod", b"")),
            Err(ProtobufError::MissingApiVersion)
        );
        let mut gz = envelope("v1", "ConfigMap", b"");
        len(&mut gz, 3, b"gzip");
        assert!(matches!(
            decode(&gz),
            Err(ProtobufError::ContentEncoding(_))
        ));
        // Bad IntOrString type and bad embedded JSON.
        let mut ios = Vec::new();
        key(&mut ios, 1, WIRE_VARINT);
        varint(&mut ios, 7);
        let mut port = Vec::new();
        len(&mut port, 3, &ios);
        let mut raw = Vec::new();
        len(&mut raw, 1, &port);
        assert!(matches!(
            decode(&envelope("v1", "Service", &{
                let mut spec = Vec::new();
                len(&mut spec, 1, &{
                    let mut p = Vec::new();
                    len(&mut p, 4, &ios);
                    p
                });
                let mut r = Vec::new();
                len(&mut r, 2, &spec);
                r
            })),
            Err(ProtobufError::InvalidValue { .. })
        ));
        let mut f = Vec::new();
        len(&mut f, 1, b"{nope");
        let mut mf = Vec::new();
        len(&mut mf, 7, &f);
        let mut m = Vec::new();
        len(&mut m, 17, &mf);
        let mut raw = Vec::new();
        len(&mut raw, 1, &m);
        assert!(matches!(cm(&raw), Err(ProtobufError::InvalidValue { .. })));
        // Depth limit.
        let mut out = Map::new();
        assert_eq!(
            decode_message(b"", &tables::CORE_CONFIG_MAP, &mut out, MAX_DEPTH + 1),
            Err(ProtobufError::TooDeep)
        );
    }

    #[test]
    fn mangled_input_never_panics() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for (_, pb, _) in GOLDEN {
            for cut in 0..pb.len() {
                let _ = decode(&pb[..cut]);
            }
            for _ in 0..2000 {
                let mut b = pb.to_vec();
                for _ in 0..1 + rnd() % 4 {
                    let i = (rnd() as usize) % b.len();
                    b[i] = rnd() as u8;
                }
                let _ = decode(&b);
            }
        }
        for _ in 0..2000 {
            let n = (rnd() % 64) as usize;
            let mut b = MAGIC.to_vec();
            b.extend((0..n).map(|_| rnd() as u8));
            let _ = decode(&b);
        }
    }

    #[test]
    fn tables_are_consistent() {
        fn check(m: &'static Message, seen: &mut Vec<&'static str>) {
            if seen.contains(&m.name) {
                return;
            }
            seen.push(m.name);
            for (i, f) in m.fields.iter().enumerate() {
                assert!(
                    m.fields[i + 1..]
                        .iter()
                        .all(|g| g.tag != f.tag && (f.json.is_empty() || g.json != f.json)),
                    "duplicate field {} in {}",
                    f.tag,
                    m.name
                );
                if f.card == Card::Zero {
                    assert!(matches!(
                        f.ty,
                        Ty::Str | Ty::Bytes | Ty::I32 | Ty::I64 | Ty::Bool | Ty::F64
                    ));
                }
                match f.ty {
                    Ty::Msg(inner) | Ty::Inline(inner) => check(inner, seen),
                    Ty::MapOf(Ty::Msg(inner)) => check(inner, seen),
                    _ => {}
                }
            }
        }
        let mut seen = Vec::new();
        for (av, k) in [
            ("v1", "ConfigMap"),
            ("v1", "Secret"),
            ("v1", "Namespace"),
            ("v1", "Service"),
            ("v1", "ServiceAccount"),
            ("v1", "Pod"),
            ("v1", "ResourceQuota"),
            ("v1", "LimitRange"),
            ("v1", "Endpoints"),
            ("v1", "Event"),
            ("v1", "Node"),
            ("v1", "Binding"),
            ("apps/v1", "Deployment"),
            ("apps/v1", "ReplicaSet"),
            ("apps/v1", "StatefulSet"),
            ("apps/v1", "DaemonSet"),
            ("autoscaling/v1", "Scale"),
            ("policy/v1", "Eviction"),
            ("authentication.k8s.io/v1", "TokenRequest"),
            ("v1", "DeleteOptions"),
        ] {
            check(tables::lookup(av, k).unwrap(), &mut seen);
        }
        assert!(seen.len() > 200, "{}", seen.len());
    }
}
