//! The channel protocol of `kubectl exec`/`attach` over a WebSocket (`v5.channel.k8s.io`, or
//! `v4.channel.k8s.io`): every binary message starts with a channel byte — 0 stdin, 1 stdout,
//! 2 stderr, 3 error (one `Status` JSON, sent last), 4 resize (`{"Width":..,"Height":..}`), and
//! with v5 255 "close" (`[255, ch]`: the client has no more input on `ch`).
//!
//! Invariants: the status goes out only after stdout and stderr have ended, and the socket is
//! closed right after it, which is how the client knows the session is over; a client that
//! goes away ends the session (its input and output channels are dropped).

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::response::Response;
use bytes::{BufMut, Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use super::{Exit, OpenSession, StreamSession};

const V5: &str = "v5.channel.k8s.io";
/// The subprotocols served, preferred first.
pub const PROTOCOLS: [&str; 2] = [V5, "v4.channel.k8s.io"];

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const RESIZE: u8 = 4;
const CLOSE: u8 = 255;

/// Largest message accepted from a client (stdin chunks and resizes are small).
const MAX_MESSAGE: usize = 1 << 20;

/// Answers the upgrade; `open` starts the session once the socket is up.
pub fn upgrade<F>(ws: WebSocketUpgrade, open: F) -> Response
where
    F: FnOnce() -> OpenSession + Send + 'static,
{
    let ws = ws
        .protocols(PROTOCOLS)
        .max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE);
    let v5 = ws.selected_protocol().is_some_and(|p| p == V5);
    ws.on_upgrade(move |socket| run(socket, v5, open()))
}

/// `Status` JSON for the error channel, as upstream's remotecommand server writes it.
pub fn status(exit: &Exit) -> Value {
    match exit {
        Exit::Code(0) => json!({"metadata": {}, "status": "Success"}),
        Exit::Code(code) => json!({
            "metadata": {},
            "status": "Failure",
            "message": format!("command terminated with non-zero exit code: exit status {code}"),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
        }),
        Exit::Error(msg) => json!({
            "metadata": {},
            "status": "Failure",
            "message": msg,
            "reason": "InternalError",
            "code": 500,
        }),
    }
}

fn frame(ch: u8, data: &[u8]) -> Message {
    let mut b = BytesMut::with_capacity(data.len() + 1);
    b.put_u8(ch);
    b.extend_from_slice(data);
    Message::Binary(b.freeze())
}

/// What a client message asks for.
#[derive(Debug, PartialEq, Eq)]
enum Input {
    Stdin(Bytes),
    Resize(u16, u16),
    CloseStdin,
    Ignore,
}

fn decode(msg: Bytes, v5: bool) -> Input {
    match msg.first() {
        Some(&STDIN) => Input::Stdin(msg.slice(1..)),
        Some(&RESIZE) => {
            let v: Value = serde_json::from_slice(&msg[1..]).unwrap_or_default();
            let dim = |k: &str| v[k].as_u64().map(|n| n.min(u16::MAX as u64) as u16);
            match (dim("Width"), dim("Height")) {
                (Some(w), Some(h)) => Input::Resize(w, h),
                _ => Input::Ignore,
            }
        }
        Some(&CLOSE) if v5 && msg.get(1) == Some(&STDIN) => Input::CloseStdin,
        _ => Input::Ignore,
    }
}

async fn pump(rx: Option<mpsc::Receiver<Bytes>>, ch: u8, out: mpsc::Sender<Message>) {
    let Some(mut rx) = rx else { return };
    while let Some(data) = rx.recv().await {
        if out.send(frame(ch, &data)).await.is_err() {
            return;
        }
    }
}

/// Reads the client until it closes. Once `done` fires (output is over) input is dropped, which
/// ends the node's stdin and resize relays, but reading goes on: closing a socket with unread
/// data makes the kernel reset it, and the client would lose the status and close frame.
async fn read_client(
    mut stream: futures::stream::SplitStream<WebSocket>,
    mut stdin: Option<mpsc::Sender<Bytes>>,
    mut resize: Option<mpsc::Sender<(u16, u16)>>,
    v5: bool,
    mut done: oneshot::Receiver<()>,
) {
    let mut open = true;
    loop {
        let msg = tokio::select! {
            m = stream.next() => m,
            _ = &mut done, if open => {
                open = false;
                stdin = None;
                resize = None;
                continue;
            }
        };
        let data = match msg {
            Some(Ok(Message::Binary(b))) => b,
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
            Some(Ok(_)) => continue,
        };
        match decode(data, v5) {
            Input::Stdin(d) if !d.is_empty() => {
                if let Some(tx) = &stdin
                    && tx.send(d).await.is_err()
                {
                    stdin = None;
                }
            }
            Input::Resize(w, h) => {
                if let Some(tx) = &resize {
                    let _ = tx.try_send((w, h));
                }
            }
            Input::CloseStdin => stdin = None,
            _ => {}
        }
    }
}

/// How long a client gets to answer our close frame.
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

async fn run(socket: WebSocket, v5: bool, open: OpenSession) {
    let (mut sink, stream) = socket.split();
    let (out, mut out_rx) = mpsc::channel::<Message>(16);
    let writer = tokio::spawn(async move {
        while let Some(m) = out_rx.recv().await {
            if sink.send(m).await.is_err() {
                return;
            }
        }
        // A normal close (1000): clients read it as the end of every stream; a bare close
        // (1005) is an error to them.
        let bye = CloseFrame {
            code: close_code::NORMAL,
            reason: "".into(),
        };
        let _ = sink.send(Message::Close(Some(bye))).await;
        let _ = sink.flush().await;
    });
    let (done_tx, done_rx) = oneshot::channel();
    let (exit, mut reader) = match open.await {
        Ok(session) => {
            let StreamSession {
                stdin,
                stdout,
                stderr,
                resize,
                exit,
            } = session;
            let mut reader = tokio::spawn(read_client(stream, stdin, resize, v5, done_rx));
            let outputs = futures::future::join(
                pump(stdout, STDOUT, out.clone()),
                pump(stderr, STDERR, out.clone()),
            );
            tokio::select! {
                _ = outputs => {
                    let _ = done_tx.send(());
                    let exit = exit.await.unwrap_or_else(|_| {
                        Exit::Error("the session ended without an exit status".into())
                    });
                    (Some(exit), Some(reader))
                }
                // The client went away first.
                _ = &mut reader => (None, None),
            }
        }
        Err(e) => {
            drop(done_tx);
            let reader = tokio::spawn(read_client(stream, None, None, v5, done_rx));
            (Some(Exit::Error(e.message)), Some(reader))
        }
    };
    if let Some(exit) = exit {
        let _ = out
            .send(frame(ERROR, status(&exit).to_string().as_bytes()))
            .await;
    }
    drop(out);
    let _ = writer.await;
    if let Some(r) = reader.as_mut()
        && tokio::time::timeout(CLOSE_WAIT, &mut *r).await.is_err()
    {
        r.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_client_channels() {
        assert_eq!(
            decode(Bytes::from_static(b"\x00hi"), true),
            Input::Stdin(Bytes::from_static(b"hi"))
        );
        assert_eq!(
            decode(
                Bytes::from_static(b"\x04{\"Width\":80,\"Height\":24}"),
                true
            ),
            Input::Resize(80, 24)
        );
        assert_eq!(decode(Bytes::from_static(b"\x04{bad"), true), Input::Ignore);
        assert_eq!(
            decode(Bytes::from_static(b"\xff\x00"), true),
            Input::CloseStdin
        );
        assert_eq!(
            decode(Bytes::from_static(b"\xff\x00"), false),
            Input::Ignore
        );
        assert_eq!(decode(Bytes::new(), true), Input::Ignore);
    }

    #[test]
    fn exit_status_json() {
        assert_eq!(status(&Exit::Code(0))["status"], "Success");
        let s = status(&Exit::Code(3));
        assert_eq!(s["reason"], "NonZeroExitCode");
        assert_eq!(s["details"]["causes"][0]["reason"], "ExitCode");
        assert_eq!(s["details"]["causes"][0]["message"], "3");
        assert_eq!(status(&Exit::Error("x".into()))["message"], "x");
    }

    #[test]
    fn frames_carry_the_channel() {
        let Message::Binary(b) = frame(STDERR, b"e") else {
            panic!("not binary")
        };
        assert_eq!(&b[..], b"\x02e");
    }
}
