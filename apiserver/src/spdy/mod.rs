//! SPDY/3.1, the multiplexing protocol kubectl still speaks for `port-forward` (tunnelled in
//! a WebSocket, or over a plain `Upgrade: SPDY/3.1`) and as the fallback of `exec`/`attach`.
//! Only the server side and only what kubectl's spdystream uses: framing ([`frame`]), header
//! blocks ([`headers`]), a connection serving client-opened streams ([`session`]) and the
//! WebSocket tunnel ([`tunnel`]). No crate implements it, so it is written here.

pub mod dictionary;
pub mod frame;
pub mod headers;
pub mod session;
pub mod tunnel;

pub use headers::Headers;
pub use session::{Connection, Input, Output, Stream};

/// What went wrong on a SPDY connection.
#[derive(Debug, thiserror::Error)]
pub enum SpdyError {
    #[error("frame of {0} bytes is too large")]
    FrameTooLarge(usize),
    #[error("unsupported SPDY version {0}")]
    Version(u16),
    #[error("malformed frame: {0}")]
    Malformed(&'static str),
    #[error("malformed header block: {0}")]
    BadHeaders(&'static str),
    #[error("header block too large")]
    HeaderTooLarge,
    #[error("header compression: {0}")]
    Compression(String),
    #[error("the stream was reset")]
    Reset,
    #[error("the connection is closed")]
    Closed,
}
