//! Request bodies: size limit, content type, JSON/YAML decoding into an object.
//!
//! Bodies are hostile input: they are read with a hard cap (3 MiB, as kube-apiserver), YAML goes through
//! serde-saphyr's budgets (alias and depth limits), JSON through serde_json's recursion limit.

use axum::body::Body;
use axum::http::{HeaderMap, header};
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use k1s_apimachinery::status::StatusError;
use serde_json::Value;

/// Largest request body accepted, as kube-apiserver's default `--max-request-bytes`.
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// Reads the whole body, failing with 413 past [`MAX_BODY`].
pub async fn read(body: Body) -> Result<Bytes, StatusError> {
    match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(StatusError::too_large(&format!("limit is {MAX_BODY}")))
        }
        Err(e) => Err(StatusError::bad_request(format!(
            "unable to read request body: {e}"
        ))),
    }
}

/// The media type of the request (no parameters), lower-cased; `application/json` if absent.
pub fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "application/json".into())
}

/// Decodes an object body sent with POST/PUT (JSON or YAML).
pub fn decode_object(headers: &HeaderMap, bytes: &[u8]) -> Result<Value, StatusError> {
    let ct = content_type(headers);
    let value = match ct.as_str() {
        "application/json" | "*/*" => decode_json(bytes)?,
        "application/yaml" | "application/x-yaml" | "text/yaml" => decode_yaml(bytes)?,
        "application/vnd.kubernetes.protobuf" => match crate::protobuf::decode(bytes) {
            Ok(v) => v,
            Err(crate::protobuf::ProtobufError::UnknownKind { .. }) => {
                return Err(StatusError::unsupported_media_type(&ct));
            }
            Err(e) => return Err(StatusError::bad_request(e.to_string())),
        },
        other => return Err(StatusError::unsupported_media_type(other)),
    };
    if !value.is_object() {
        return Err(StatusError::bad_request(
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml",
        ));
    }
    Ok(value)
}

/// Parses JSON with an upstream-like message on failure.
pub fn decode_json(bytes: &[u8]) -> Result<Value, StatusError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(StatusError::bad_request("the request body is empty"));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        StatusError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
    })
}

/// Parses YAML (one document) into JSON values.
pub fn decode_yaml(bytes: &[u8]) -> Result<Value, StatusError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| StatusError::bad_request("error converting YAML to JSON: invalid UTF-8"))?;
    if text.trim().is_empty() {
        return Err(StatusError::bad_request("the request body is empty"));
    }
    serde_saphyr::from_str::<Value>(text)
        .map_err(|e| StatusError::bad_request(format!("error converting YAML to JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(ct: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, ct.parse().unwrap());
        h
    }

    #[test]
    fn json_and_yaml() {
        let v = decode_object(&headers("application/json"), br#"{"a":1}"#).unwrap();
        assert_eq!(v["a"], 1);
        let v = decode_object(&headers("application/yaml"), b"a: 1\nb: [x]\n").unwrap();
        assert_eq!(v["b"][0], "x");
    }

    #[test]
    fn bad_input() {
        let e = decode_object(&headers("application/json"), b"{nope").unwrap_err();
        assert_eq!(e.code, 400);
        // Garbage protobuf is a 400; a content type k1s cannot decode is a 415.
        let e = decode_object(&headers("application/vnd.kubernetes.protobuf"), b"x").unwrap_err();
        assert_eq!(e.code, 400);
        let e = decode_object(&headers("application/cbor"), b"x").unwrap_err();
        assert_eq!(e.code, 415);
        let e = decode_object(&headers("application/json"), b"[1]").unwrap_err();
        assert_eq!(e.code, 400);
        let e = decode_object(&headers("application/yaml"), b"a: [").unwrap_err();
        assert_eq!(e.code, 400);
    }

    #[test]
    fn deep_json_is_rejected_not_crashing() {
        let deep = "[".repeat(100_000);
        assert!(decode_json(deep.as_bytes()).is_err());
    }

    #[tokio::test]
    async fn too_large() {
        let big = vec![b' '; MAX_BODY + 1];
        let e = read(Body::from(big)).await.unwrap_err();
        assert_eq!(e.code, 413);
    }
}
