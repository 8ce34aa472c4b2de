//! The gRPC probe: one `grpc.health.v1.Health/Check` call over cleartext HTTP/2, as upstream's
//! prober makes it. The two protobuf messages have one field each, so they are encoded and decoded
//! here by hand.
//!
//! Invariants: the whole call (connect, handshake, request, response, trailers) is bounded by the
//! caller's timeout; a response body larger than [`MAX_RESPONSE`] fails the probe instead of
//! growing a buffer; only `SERVING` (1) with `grpc-status: 0` passes.

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};

/// The health response is a handful of bytes; anything far larger is not a health server.
const MAX_RESPONSE: usize = 4096;
/// `HealthCheckResponse.ServingStatus.SERVING`.
const SERVING: u64 = 1;

/// The length-prefixed gRPC message of a `HealthCheckRequest { service }`.
pub fn encode_request(service: &str) -> Bytes {
    let mut msg = Vec::new();
    if !service.is_empty() {
        // Field 1, wire type 2 (length-delimited).
        msg.push(0x0a);
        put_varint(&mut msg, service.len() as u64);
        msg.extend_from_slice(service.as_bytes());
    }
    let mut out = Vec::with_capacity(5 + msg.len());
    out.push(0); // not compressed
    out.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    out.extend_from_slice(&msg);
    Bytes::from(out)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(b: &[u8], i: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*i)?;
        *i += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// The `status` of a length-prefixed `HealthCheckResponse`; unknown fields are skipped.
pub fn decode_status(body: &[u8]) -> Result<u64, String> {
    let [flag, l0, l1, l2, l3, rest @ ..] = body else {
        return Err("short gRPC response".into());
    };
    if *flag != 0 {
        return Err("compressed gRPC response".into());
    }
    let len = u32::from_be_bytes([*l0, *l1, *l2, *l3]) as usize;
    let msg = rest.get(..len).ok_or("truncated gRPC response")?;
    let mut status = 0; // proto3 default: UNKNOWN
    let mut i = 0;
    while i < msg.len() {
        let key = get_varint(msg, &mut i).ok_or("bad protobuf key")?;
        match key & 7 {
            0 => {
                let v = get_varint(msg, &mut i).ok_or("bad protobuf varint")?;
                if key >> 3 == 1 {
                    status = v;
                }
            }
            2 => {
                let l = get_varint(msg, &mut i).ok_or("bad protobuf length")?;
                i = usize::try_from(l)
                    .ok()
                    .and_then(|l| i.checked_add(l))
                    .filter(|e| *e <= msg.len())
                    .ok_or("bad protobuf length")?;
            }
            5 => i += 4,
            1 => i += 8,
            _ => return Err("bad protobuf wire type".into()),
        }
    }
    Ok(status)
}

fn status_name(s: u64) -> &'static str {
    match s {
        0 => "UNKNOWN",
        1 => "SERVING",
        2 => "NOT_SERVING",
        3 => "SERVICE_UNKNOWN",
        _ => "unrecognized",
    }
}

/// One health check of `service` at `addr`; the caller bounds it with the probe's timeout.
pub async fn check(addr: SocketAddr, service: &str) -> Result<(), String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("failed to connect service {addr}: {e}"))?;
    let (client, conn) = h2::client::handshake(tcp)
        .await
        .map_err(|e| format!("failed to connect service {addr}: {e}"))?;
    // The connection task ends with the client (dropped at return) or on error.
    let conn = tokio::spawn(async move { drop(conn.await) });
    let result = call(client, addr, service).await;
    conn.abort();
    result
}

async fn call(
    client: h2::client::SendRequest<Bytes>,
    addr: SocketAddr,
    service: &str,
) -> Result<(), String> {
    let rpc_err = |e: h2::Error| format!("health rpc to {addr} failed: {e}");
    let mut client = client.ready().await.map_err(rpc_err)?;
    let req = http::Request::post(format!("http://{addr}/grpc.health.v1.Health/Check"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("user-agent", "kube-probe/1.33")
        .body(())
        .map_err(|e| e.to_string())?;
    let (resp, mut send) = client.send_request(req, false).map_err(rpc_err)?;
    send.send_data(encode_request(service), true)
        .map_err(rpc_err)?;
    let resp = resp.await.map_err(rpc_err)?;
    if resp.status() != http::StatusCode::OK {
        return Err(format!(
            "health rpc to {addr}: HTTP status {}",
            resp.status()
        ));
    }
    // A trailers-only response carries grpc-status in the headers.
    let head_status = resp.headers().get("grpc-status").cloned();
    let mut body = resp.into_body();
    let mut buf = BytesMut::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.map_err(rpc_err)?;
        let _ = body.flow_control().release_capacity(chunk.len());
        if buf.len() + chunk.len() > MAX_RESPONSE {
            return Err(format!("health rpc to {addr}: response too large"));
        }
        buf.extend_from_slice(&chunk);
    }
    let trailers = body.trailers().await.map_err(rpc_err)?;
    let grpc_status = trailers
        .as_ref()
        .and_then(|t| t.get("grpc-status").cloned())
        .or(head_status);
    let code = grpc_status
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .unwrap_or("missing");
    if code != "0" {
        let msg = trailers
            .as_ref()
            .and_then(|t| t.get("grpc-message"))
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        return Err(format!("health rpc to {addr}: grpc-status {code} {msg}"));
    }
    match decode_status(&buf)? {
        SERVING => Ok(()),
        s => Err(format!(
            "service unhealthy (responded with \"{}\")",
            status_name(s)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_encoding() {
        assert_eq!(&encode_request("")[..], &[0, 0, 0, 0, 0]);
        assert_eq!(
            &encode_request("ab")[..],
            &[0, 0, 0, 0, 4, 0x0a, 2, b'a', b'b']
        );
    }

    #[test]
    fn response_decoding() {
        assert_eq!(decode_status(&[0, 0, 0, 0, 2, 0x08, 1]), Ok(1));
        assert_eq!(decode_status(&[0, 0, 0, 0, 2, 0x08, 2]), Ok(2));
        // Empty message: the proto3 default, UNKNOWN.
        assert_eq!(decode_status(&[0, 0, 0, 0, 0]), Ok(0));
        // An unknown length-delimited field before the status is skipped.
        assert_eq!(
            decode_status(&[0, 0, 0, 0, 5, 0x12, 1, b'x', 0x08, 1]),
            Ok(1)
        );
        assert!(decode_status(&[0, 0, 0]).is_err());
        assert!(decode_status(&[0, 0, 0, 0, 9, 0x08]).is_err());
        assert!(decode_status(&[0, 0, 0, 0, 3, 0x12, 0xff, 0x7f]).is_err());
        assert!(decode_status(&[1, 0, 0, 0, 0]).is_err());
    }
}

#[cfg(test)]
mod server_tests {
    //! Against a gRPC health server written with h2 in the test.
    use super::*;
    use std::time::Duration;

    /// Serves Health/Check: SERVING for "", NOT_SERVING for "down", grpc-status 5 (NOT_FOUND)
    /// otherwise; returns its address.
    async fn health_server() -> SocketAddr {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let mut conn = h2::server::handshake(s).await.unwrap();
                    while let Some(Ok((req, mut respond))) = conn.accept().await {
                        assert_eq!(req.uri().path(), "/grpc.health.v1.Health/Check");
                        let mut body = req.into_body();
                        let mut buf = Vec::new();
                        while let Some(Ok(d)) = body.data().await {
                            buf.extend_from_slice(&d);
                        }
                        let service = String::from_utf8_lossy(buf.get(7..).unwrap_or_default());
                        let resp = http::Response::builder()
                            .header("content-type", "application/grpc")
                            .body(())
                            .unwrap();
                        let mut send = respond.send_response(resp, false).unwrap();
                        let mut trailers = http::HeaderMap::new();
                        let status = match service.as_ref() {
                            "" => Some(1u8),
                            "down" => Some(2),
                            _ => None,
                        };
                        if let Some(s) = status {
                            send.send_data(Bytes::from(vec![0, 0, 0, 0, 2, 0x08, s]), false)
                                .unwrap();
                            trailers.insert("grpc-status", "0".parse().unwrap());
                        } else {
                            trailers.insert("grpc-status", "5".parse().unwrap());
                            trailers.insert("grpc-message", "unknown service".parse().unwrap());
                        }
                        send.send_trailers(trailers).unwrap();
                    }
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn serving_passes_and_the_rest_fails() {
        let addr = health_server().await;
        assert_eq!(check(addr, "").await, Ok(()));
        let down = check(addr, "down").await.unwrap_err();
        assert!(down.contains("NOT_SERVING"), "{down}");
        let unknown = check(addr, "nope").await.unwrap_err();
        assert!(unknown.contains("grpc-status 5"), "{unknown}");
    }

    #[tokio::test]
    async fn a_silent_server_fails_by_the_timeout_and_a_closed_port_at_once() {
        // Accepts TCP but never speaks HTTP/2: only the caller's timeout ends the call.
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = l.accept().await {
                held.push(s);
            }
        });
        let r = tokio::time::timeout(Duration::from_millis(300), check(addr, "")).await;
        assert!(r.is_err(), "a silent server must not pass: {r:?}");
        hold.abort();
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let e = check(closed, "").await.unwrap_err();
        assert!(e.contains("failed to connect"), "{e}");
    }
}
