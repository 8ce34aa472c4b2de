//! A SPDY/3.1 server connection over any byte transport (an upgraded HTTP connection, or a
//! WebSocket tunnel): one task reads and dispatches frames, one writes them; the application
//! gets each stream the client opens as a [`Stream`] (its headers, a receiver of its data, a
//! writer).
//!
//! Flow control: kubectl's SPDY library (spdystream) neither sends WINDOW_UPDATE nor obeys
//! ours; it relies on the transport's back-pressure. So does this side: incoming data waits in
//! a bounded per-stream queue and a per-connection byte budget, and when either is full the
//! reader stops reading the transport (the client's writes then block in TCP); outgoing frames
//! go through a bounded queue to the one writer, so a client that does not read slows the
//! producers instead of growing a buffer.
//!
//! Invariants: every SYN_STREAM gets a SYN_REPLY before any data of ours on that stream (one
//! ordered out queue); client stream ids are odd and increasing, or the connection ends with
//! GOAWAY(PROTOCOL_ERROR); at most [`MAX_STREAMS`] streams are open at once (more are
//! refused); a client FIN or RST ends the stream's receiver; the transport is closed once the
//! reader has ended and every writer is dropped.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::SpdyError;
use super::frame::{self, Frame, MAX_DATA_OUT, status};
use super::headers::{Decoder, Encoder, Headers};

/// Streams open at once per connection (kubectl uses two per forwarded connection).
pub const MAX_STREAMS: usize = 512;
/// Bytes of client data held per connection before the reader pauses.
const BUDGET: usize = 4 * 1024 * 1024;
/// Data frames queued per stream.
const STREAM_DEPTH: usize = 4;
/// Frames queued for the writer.
const OUT_DEPTH: usize = 32;

type Chunk = (Bytes, OwnedSemaphorePermit);

/// A stream the client opened.
pub struct Stream {
    pub id: u32,
    pub headers: Headers,
    pub input: Input,
    pub output: Output,
}

/// The client's data on one stream; ends at its FIN or RST (or when the connection ends).
pub struct Input(mpsc::Receiver<Chunk>);

impl Input {
    /// The next chunk, `None` at the end.
    pub async fn recv(&mut self) -> Option<Bytes> {
        self.0.recv().await.map(|(b, _permit)| b)
    }
}

/// Our side of one stream.
#[derive(Clone)]
pub struct Output {
    id: u32,
    out: mpsc::Sender<Frame>,
    reset: Arc<AtomicBool>,
}

impl Output {
    /// Sends `data` (split into frames); fails once the stream was reset or the connection ended.
    pub async fn send(&self, data: Bytes) -> Result<(), SpdyError> {
        let mut rest = data;
        while !rest.is_empty() {
            let chunk = rest.split_to(rest.len().min(MAX_DATA_OUT));
            self.frame(Frame::Data {
                stream: self.id,
                fin: false,
                data: chunk,
            })
            .await?;
        }
        Ok(())
    }

    /// Ends our half of the stream (an empty data frame with FIN).
    pub async fn finish(&self) -> Result<(), SpdyError> {
        self.frame(Frame::Data {
            stream: self.id,
            fin: true,
            data: Bytes::new(),
        })
        .await
    }

    /// Aborts the stream with RST_STREAM.
    pub async fn reset(&self, code: u32) {
        if !self.reset.swap(true, Ordering::AcqRel) {
            let _ = self
                .out
                .send(Frame::RstStream {
                    stream: self.id,
                    status: code,
                })
                .await;
        }
    }

    async fn frame(&self, f: Frame) -> Result<(), SpdyError> {
        if self.reset.load(Ordering::Acquire) {
            return Err(SpdyError::Reset);
        }
        self.out.send(f).await.map_err(|_| SpdyError::Closed)
    }
}

/// A running connection: the streams the client opens, in order.
pub struct Connection {
    pub streams: mpsc::Receiver<Stream>,
    reader: tokio::task::JoinHandle<()>,
}

impl Connection {
    /// Starts serving `io`.
    pub fn start<T>(io: T) -> Connection
    where
        T: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (rd, wr) = tokio::io::split(io);
        let (out_tx, out_rx) = mpsc::channel(OUT_DEPTH);
        let (streams_tx, streams) = mpsc::channel(16);
        tokio::spawn(write_loop(wr, out_rx));
        let reader = tokio::spawn(read_loop(rd, out_tx, streams_tx));
        Connection { streams, reader }
    }

    /// Waits until the client has closed the connection (or `limit` passes), so that nothing
    /// it still sends is answered with a reset of the transport.
    pub async fn closed(mut self, limit: std::time::Duration) {
        self.streams.close();
        if tokio::time::timeout(limit, &mut self.reader).await.is_err() {
            self.reader.abort();
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

async fn write_loop<W: AsyncWrite>(wr: W, mut rx: mpsc::Receiver<Frame>) {
    tokio::pin!(wr);
    let mut enc = Encoder::default();
    let mut buf = BytesMut::with_capacity(MAX_DATA_OUT + 64);
    while let Some(f) = rx.recv().await {
        buf.clear();
        if frame::encode(&f, &mut enc, &mut buf).is_err() {
            break;
        }
        // Batch what is already queued into one write.
        while buf.len() < 64 * 1024 {
            match rx.try_recv() {
                Ok(f) => {
                    if frame::encode(&f, &mut enc, &mut buf).is_err() {
                        return;
                    }
                }
                Err(_) => break,
            }
        }
        if wr.write_all(&buf).await.is_err() || wr.flush().await.is_err() {
            break;
        }
    }
    let _ = wr.shutdown().await;
}

struct Open {
    tx: Option<mpsc::Sender<Chunk>>,
    reset: Arc<AtomicBool>,
}

async fn read_loop<R: AsyncRead>(
    rd: R,
    out: mpsc::Sender<Frame>,
    streams_tx: mpsc::Sender<Stream>,
) {
    tokio::pin!(rd);
    let mut dec = Decoder::default();
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut open: HashMap<u32, Open> = HashMap::new();
    let mut last_id = 0u32;
    let budget = Arc::new(Semaphore::new(BUDGET));
    loop {
        let f = match frame::decode(&mut buf, &mut dec) {
            Ok(Some(f)) => f,
            Ok(None) => match rd.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            },
            Err(e) => {
                tracing::debug!("spdy: ending connection: {e}");
                let _ = out
                    .send(Frame::GoAway {
                        last_good: last_id,
                        status: 1,
                    })
                    .await;
                return;
            }
        };
        match f {
            Frame::SynStream {
                stream,
                fin,
                headers,
            } => {
                if stream % 2 == 0 || stream <= last_id {
                    let _ = out
                        .send(Frame::GoAway {
                            last_good: last_id,
                            status: 1,
                        })
                        .await;
                    return;
                }
                last_id = stream;
                if open.len() >= MAX_STREAMS {
                    let _ = out
                        .send(Frame::RstStream {
                            stream,
                            status: status::REFUSED_STREAM,
                        })
                        .await;
                    continue;
                }
                let (tx, rx) = mpsc::channel(STREAM_DEPTH);
                let reset = Arc::new(AtomicBool::new(false));
                if out
                    .send(Frame::SynReply {
                        stream,
                        fin: false,
                        headers: Vec::new(),
                    })
                    .await
                    .is_err()
                {
                    return;
                }
                let s = Stream {
                    id: stream,
                    headers,
                    input: Input(rx),
                    output: Output {
                        id: stream,
                        out: out.clone(),
                        reset: reset.clone(),
                    },
                };
                open.insert(
                    stream,
                    Open {
                        tx: (!fin).then_some(tx),
                        reset,
                    },
                );
                if fin {
                    open.remove(&stream);
                }
                if streams_tx.send(s).await.is_err() {
                    // Nobody takes new streams any more: refuse it.
                    let _ = out
                        .send(Frame::RstStream {
                            stream,
                            status: status::REFUSED_STREAM,
                        })
                        .await;
                    open.remove(&stream);
                }
            }
            Frame::Data { stream, fin, data } => {
                let Some(o) = open.get_mut(&stream) else {
                    continue;
                };
                if !data.is_empty()
                    && let Some(tx) = &o.tx
                {
                    // The size is at most MAX_FRAME, far below the budget.
                    let Ok(permit) = budget.clone().acquire_many_owned(data.len() as u32).await
                    else {
                        return;
                    };
                    if tx.send((data, permit)).await.is_err() {
                        // The application stopped reading this stream: drop what follows.
                        o.tx = None;
                    }
                }
                if fin {
                    open.remove(&stream);
                }
            }
            Frame::RstStream { stream, .. } => {
                if let Some(o) = open.remove(&stream) {
                    o.reset.store(true, Ordering::Release);
                }
            }
            Frame::Ping(id) => {
                // Odd ids are the client's; echo them. Even ones would answer our own pings.
                if id % 2 == 1 && out.send(Frame::Ping(id)).await.is_err() {
                    return;
                }
            }
            Frame::GoAway { .. } => return,
            Frame::SynReply { .. }
            | Frame::Settings
            | Frame::Headers { .. }
            | Frame::WindowUpdate { .. }
            | Frame::Other(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client end that speaks frames.
    struct Peer {
        io: tokio::io::DuplexStream,
        enc: Encoder,
        dec: Decoder,
        buf: BytesMut,
    }

    impl Peer {
        async fn send(&mut self, f: Frame) {
            let mut b = BytesMut::new();
            frame::encode(&f, &mut self.enc, &mut b).unwrap();
            self.io.write_all(&b).await.unwrap();
        }

        async fn next(&mut self) -> Option<Frame> {
            loop {
                if let Some(f) = frame::decode(&mut self.buf, &mut self.dec).unwrap() {
                    return Some(f);
                }
                if self.io.read_buf(&mut self.buf).await.unwrap() == 0 {
                    return None;
                }
            }
        }
    }

    fn pair() -> (Connection, Peer) {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let conn = Connection::start(a);
        let peer = Peer {
            io: b,
            enc: Encoder::default(),
            dec: Decoder::default(),
            buf: BytesMut::new(),
        };
        (conn, peer)
    }

    fn syn(stream: u32, kind: &str) -> Frame {
        Frame::SynStream {
            stream,
            fin: false,
            headers: vec![("streamtype".into(), kind.into())],
        }
    }

    #[tokio::test]
    async fn streams_reply_echo_and_finish() {
        let (mut conn, mut peer) = pair();
        peer.send(syn(1, "data")).await;
        let mut s = conn.streams.recv().await.unwrap();
        assert_eq!(
            super::super::headers::get(&s.headers, "streamType"),
            Some("data")
        );
        assert!(matches!(
            peer.next().await,
            Some(Frame::SynReply { stream: 1, .. })
        ));
        peer.send(Frame::Data {
            stream: 1,
            fin: true,
            data: Bytes::from_static(b"ping"),
        })
        .await;
        assert_eq!(s.input.recv().await.unwrap(), Bytes::from_static(b"ping"));
        assert!(s.input.recv().await.is_none());
        let big = Bytes::from(vec![7u8; 100_000]);
        s.output.send(big.clone()).await.unwrap();
        s.output.finish().await.unwrap();
        let mut got = Vec::new();
        loop {
            match peer.next().await.unwrap() {
                Frame::Data { data, fin, .. } => {
                    assert!(data.len() <= MAX_DATA_OUT);
                    got.extend_from_slice(&data);
                    if fin {
                        break;
                    }
                }
                f => panic!("unexpected {f:?}"),
            }
        }
        assert_eq!(got, big);
        peer.send(Frame::Ping(5)).await;
        assert_eq!(peer.next().await, Some(Frame::Ping(5)));
    }

    #[tokio::test]
    async fn reset_and_protocol_errors() {
        let (mut conn, mut peer) = pair();
        peer.send(syn(3, "data")).await;
        let s = conn.streams.recv().await.unwrap();
        assert!(matches!(peer.next().await, Some(Frame::SynReply { .. })));
        peer.send(Frame::RstStream {
            stream: 3,
            status: status::CANCEL,
        })
        .await;
        // The reset reaches the writer side: sends fail (after the reader has seen it).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while s.output.send(Bytes::from_static(b"x")).await.is_ok() {
            assert!(std::time::Instant::now() < deadline, "reset never seen");
            tokio::task::yield_now().await;
        }
        // A stream id that goes backwards ends the connection.
        peer.send(syn(1, "data")).await;
        loop {
            match peer.next().await {
                Some(Frame::GoAway { status, .. }) => {
                    assert_eq!(status, 1);
                    break;
                }
                Some(_) => {}
                None => panic!("closed without GOAWAY"),
            }
        }
    }
}
