//! `exec`/`attach` over SPDY (kubectl's fallback, `KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false`),
//! protocols `v5.channel.k8s.io` and `v4.channel.k8s.io` (the same on SPDY): the client opens
//! one stream per channel, `streamType: error|stdin|stdout|stderr|resize`; stdin ends with the
//! client's FIN; resizes are a sequence of `{"Width":..,"Height":..}` JSON objects; the error
//! stream carries the final `Status` (with the exit code), then FIN.
//!
//! Invariants: the session starts only when every stream the options call for has arrived
//! (or fails after [`STREAM_WAIT`]); stdout and stderr are finished before the status is
//! written, which is the order kubectl reads them in; after the status the connection stays
//! until the client closes it (bounded), so nothing it still sends resets the transport.

use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::mpsc;

use super::channel::status;
use super::{Exit, OpenSession, StreamOptions, StreamSession};
use crate::spdy::headers::get;
use crate::spdy::{Connection, Input, Output, Stream};

/// The protocols served, preferred first.
pub const PROTOCOLS: [&str; 2] = ["v5.channel.k8s.io", "v4.channel.k8s.io"];
/// How long the client has to open its streams.
const STREAM_WAIT: Duration = Duration::from_secs(30);
/// How long the client gets to close the connection after the status.
const CLOSE_WAIT: Duration = Duration::from_secs(5);
/// Largest resize message buffered.
const MAX_RESIZE: usize = 4096;

#[derive(Default)]
struct Streams {
    error: Option<Stream>,
    stdin: Option<Stream>,
    stdout: Option<Stream>,
    stderr: Option<Stream>,
    resize: Option<Stream>,
}

impl Streams {
    fn complete(&self, o: &StreamOptions) -> bool {
        self.error.is_some()
            && (!o.stdin || self.stdin.is_some())
            && (!o.stdout || self.stdout.is_some())
            && (!o.stderr || self.stderr.is_some())
            && (!o.tty || self.resize.is_some())
    }
}

async fn gather(conn: &mut Connection, opts: &StreamOptions) -> Result<Streams, Streams> {
    let mut got = Streams::default();
    let deadline = tokio::time::Instant::now() + STREAM_WAIT;
    while !got.complete(opts) {
        let s = match tokio::time::timeout_at(deadline, conn.streams.recv()).await {
            Ok(Some(s)) => s,
            _ => return Err(got),
        };
        let slot = match get(&s.headers, "streamType").unwrap_or_default() {
            "error" => &mut got.error,
            "stdin" => &mut got.stdin,
            "stdout" => &mut got.stdout,
            "stderr" => &mut got.stderr,
            "resize" => &mut got.resize,
            _ => {
                s.output
                    .reset(crate::spdy::frame::status::PROTOCOL_ERROR)
                    .await;
                continue;
            }
        };
        *slot = Some(s);
    }
    Ok(got)
}

/// Serves one exec or attach connection.
pub async fn serve(mut conn: Connection, opts: StreamOptions, open: OpenSession) {
    let streams = match gather(&mut conn, &opts).await {
        Ok(s) => s,
        Err(partial) => {
            if let Some(e) = partial.error {
                let exit = Exit::Error("timed out waiting for client to create streams".into());
                write_status(&e.output, &exit).await;
            }
            return;
        }
    };
    let Some(error) = streams.error else { return };
    let session = match open.await {
        Ok(s) => s,
        Err(e) => {
            write_status(&error.output, &Exit::Error(e.message)).await;
            conn.closed(CLOSE_WAIT).await;
            return;
        }
    };
    let StreamSession {
        stdin,
        stdout,
        stderr,
        resize,
        exit,
    } = session;
    let mut relays = Vec::new();
    if let (Some(s), Some(tx)) = (streams.stdin, stdin) {
        relays.push(tokio::spawn(relay_stdin(s.input, tx)));
    }
    if let (Some(s), Some(tx)) = (streams.resize, resize) {
        relays.push(tokio::spawn(relay_resize(s.input, tx)));
    }
    futures::future::join(
        pump(stdout, streams.stdout.map(|s| s.output)),
        pump(stderr, streams.stderr.map(|s| s.output)),
    )
    .await;
    // Output is over: the node waits for its input and resize relays to end before it reports
    // the exit, and the client keeps those streams open until it has the status.
    for r in relays {
        r.abort();
    }
    let exit = exit
        .await
        .unwrap_or_else(|_| Exit::Error("the session ended without an exit status".into()));
    write_status(&error.output, &exit).await;
    conn.closed(CLOSE_WAIT).await;
}

async fn write_status(out: &Output, exit: &Exit) {
    let _ = out.send(Bytes::from(status(exit).to_string())).await;
    let _ = out.finish().await;
}

/// Copies the process's output to a stream, then finishes it. Output nobody asked for is
/// still drained, so the process never blocks on it.
async fn pump(rx: Option<mpsc::Receiver<Bytes>>, out: Option<Output>) {
    let Some(mut rx) = rx else {
        if let Some(out) = out {
            let _ = out.finish().await;
        }
        return;
    };
    let mut out = out;
    while let Some(data) = rx.recv().await {
        if let Some(o) = &out
            && o.send(data).await.is_err()
        {
            out = None;
        }
    }
    if let Some(o) = out {
        let _ = o.finish().await;
    }
}

async fn relay_stdin(mut input: Input, tx: mpsc::Sender<Bytes>) {
    while let Some(data) = input.recv().await {
        if tx.send(data).await.is_err() {
            return;
        }
    }
    // Dropping `tx` is the end of the process's input.
}

async fn relay_resize(mut input: Input, tx: mpsc::Sender<(u16, u16)>) {
    let mut buf: Vec<u8> = Vec::new();
    while let Some(data) = input.recv().await {
        buf.extend_from_slice(&data);
        let (sizes, used) = parse_sizes(&buf);
        buf.drain(..used);
        for (w, h) in sizes {
            let _ = tx.try_send((w, h));
        }
        if buf.len() > MAX_RESIZE {
            return;
        }
    }
}

/// The complete JSON objects at the start of `buf` as (width, height), and how many bytes
/// they took.
fn parse_sizes(buf: &[u8]) -> (Vec<(u16, u16)>, usize) {
    let mut out = Vec::new();
    let mut it = serde_json::Deserializer::from_slice(buf).into_iter::<Value>();
    let mut used = 0;
    while let Some(Ok(v)) = it.next() {
        used = it.byte_offset();
        let dim = |k: &str| v[k].as_u64().map(|n| n.min(u16::MAX as u64) as u16);
        if let (Some(w), Some(h)) = (dim("Width"), dim("Height")) {
            out.push((w, h));
        }
    }
    (out, used)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_messages_split_anywhere() {
        let (s, used) = parse_sizes(b"{\"Width\":80,\"Height\":24}\n{\"Width\":1");
        assert_eq!(s, vec![(80, 24)]);
        assert_eq!(used, 24);
        let (s, used) = parse_sizes(b"{\"Width\":100,\"Height\":30}{\"Width\":7,\"Height\":9}");
        assert_eq!(s, vec![(100, 30), (7, 9)]);
        assert_eq!(used, 47);
        assert_eq!(parse_sizes(b"{\"Wid").1, 0);
    }
}
