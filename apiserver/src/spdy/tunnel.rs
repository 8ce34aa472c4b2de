//! SPDY tunnelled in a WebSocket (kubectl 1.32's default for port-forward, subprotocol
//! `SPDY/3.1+portforward.k8s.io`): the SPDY byte stream travels in binary messages cut
//! anywhere, so the tunnel is a byte pipe between the socket and an in-memory duplex the SPDY
//! connection runs on.
//!
//! Invariants: the pipe is bounded both ways (a duplex buffer, one message in flight); when the
//! SPDY side ends, the socket gets a normal close (1000), which the client reads as EOF; when
//! the client closes, the SPDY side reads EOF.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, close_code};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

/// Bytes buffered in the pipe per direction.
const PIPE: usize = 64 * 1024;
/// How long the client gets to answer our close.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Returns the byte stream carried by `socket`; a task moves the bytes until both ends are done.
pub fn open(socket: WebSocket) -> DuplexStream {
    let (ours, theirs) = tokio::io::duplex(PIPE);
    tokio::spawn(pump(socket, theirs));
    ours
}

async fn pump(socket: WebSocket, io: DuplexStream) {
    let (mut sink, mut stream) = socket.split();
    let (mut rd, mut wr) = tokio::io::split(io);
    let mut up = tokio::spawn(async move {
        while let Some(Ok(msg)) = stream.next().await {
            match msg {
                Message::Binary(b) if wr.write_all(&b).await.is_err() => break,
                Message::Close(_) => break,
                _ => {}
            }
        }
        let _ = wr.shutdown().await;
    });
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match rd.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if sink
                    .send(Message::Binary(Bytes::copy_from_slice(&buf[..n])))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        }
    }
    let bye = CloseFrame {
        code: close_code::NORMAL,
        reason: "".into(),
    };
    let _ = sink.send(Message::Close(Some(bye))).await;
    let _ = sink.flush().await;
    if tokio::time::timeout(CLOSE_WAIT, &mut up).await.is_err() {
        up.abort();
    }
}
