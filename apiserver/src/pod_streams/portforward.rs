//! `pods/portforward` over SPDY (protocol `portforward.k8s.io`): for every local connection
//! kubectl opens two streams with headers `streamType: error|data`, `port` and `requestID`;
//! the pair is joined by `requestID`, the node opens a connection to that port inside the pod,
//! and bytes are relayed both ways. A failed connect is written to the error stream, which
//! kubectl prints (and then ends the forward, as against upstream).
//!
//! Invariants: a stream whose partner does not arrive within [`PAIR_TIMEOUT`] is reset; each
//! relay direction holds at most one chunk (the SPDY connection and the TCP socket bound the
//! rest); the error stream is finished after the relay ends, which is what kubectl waits for.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::SharedPodStreams;
use crate::spdy::frame::status;
use crate::spdy::headers::get;
use crate::spdy::{Connection, Stream};

/// How long the first stream of a pair waits for the second.
const PAIR_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Default)]
struct Pending {
    error: Option<Stream>,
    data: Option<Stream>,
    since: Option<Instant>,
}

/// Serves one port-forward connection until the client closes it.
pub async fn serve(mut conn: Connection, source: SharedPodStreams, pod: Value) {
    let mut pending: HashMap<String, Pending> = HashMap::new();
    let mut sweep = tokio::time::interval(Duration::from_secs(5));
    loop {
        let s = tokio::select! {
            s = conn.streams.recv() => match s {
                Some(s) => s,
                None => return,
            },
            _ = sweep.tick() => {
                expire(&mut pending).await;
                continue;
            }
        };
        let port = get(&s.headers, "port").and_then(|p| p.parse::<u16>().ok());
        let kind = get(&s.headers, "streamType")
            .unwrap_or_default()
            .to_string();
        let Some(port) = port.filter(|p| *p > 0) else {
            s.output.reset(status::PROTOCOL_ERROR).await;
            continue;
        };
        let id = get(&s.headers, "requestID").unwrap_or_default().to_string();
        let p = pending.entry(id.clone()).or_default();
        p.since.get_or_insert_with(Instant::now);
        match kind.as_str() {
            "error" if p.error.is_none() => p.error = Some(s),
            "data" if p.data.is_none() => p.data = Some(s),
            _ => {
                s.output.reset(status::PROTOCOL_ERROR).await;
                continue;
            }
        }
        if p.error.is_some() && p.data.is_some() {
            let Some(Pending {
                error: Some(error),
                data: Some(data),
                ..
            }) = pending.remove(&id)
            else {
                continue;
            };
            tokio::spawn(forward(source.clone(), pod.clone(), port, error, data));
        }
    }
}

async fn expire(pending: &mut HashMap<String, Pending>) {
    let old: Vec<String> = pending
        .iter()
        .filter(|(_, p)| p.since.is_some_and(|t| t.elapsed() > PAIR_TIMEOUT))
        .map(|(k, _)| k.clone())
        .collect();
    for k in old {
        if let Some(p) = pending.remove(&k) {
            for s in [p.error, p.data].into_iter().flatten() {
                s.output.reset(status::REFUSED_STREAM).await;
            }
        }
    }
}

async fn forward(source: SharedPodStreams, pod: Value, port: u16, error: Stream, data: Stream) {
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let uid = pod["metadata"]["uid"].as_str().unwrap_or_default();
    let tcp = match source.port_forward(&pod, port).await {
        Ok(tcp) => tcp,
        Err(msg) => {
            let text = format!("error forwarding port {port} to pod {name}, uid {uid}: {msg}");
            let _ = error.output.send(Bytes::from(text)).await;
            let _ = error.output.finish().await;
            let _ = data.output.finish().await;
            return;
        }
    };
    let Stream {
        mut input, output, ..
    } = data;
    let (mut rd, mut wr) = tcp.into_split();
    let up = async move {
        while let Some(chunk) = input.recv().await {
            if wr.write_all(&chunk).await.is_err() {
                break;
            }
        }
        // The client's FIN (or reset) is the end of what the pod gets.
        let _ = wr.shutdown().await;
    };
    let down_out = output.clone();
    let down = async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if down_out
                        .send(Bytes::copy_from_slice(&buf[..n]))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
        let _ = down_out.finish().await;
    };
    futures::future::join(up, down).await;
    let _ = error.output.finish().await;
}
