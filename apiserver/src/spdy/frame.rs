//! SPDY/3.1 frames (draft 3.1, section 2.2): an 8-byte header — control frames start with the
//! control bit, version 3 and a type, data frames with a 31-bit stream id — then flags and a
//! 24-bit length. Only what kubectl's spdystream sends or needs is decoded; other control
//! frames are skipped, as the specification asks.
//!
//! Invariants: [`decode`] never buffers more than one frame of at most [`MAX_FRAME`] bytes (a
//! longer length is an error before anything is read); header blocks go through the
//! connection's [`Decoder`] in arrival order; malformed fixed-size frames are errors, never
//! panics.

use bytes::{BufMut, Bytes, BytesMut};

use super::SpdyError;
use super::headers::{Decoder, Encoder, Headers};

/// Largest frame payload accepted (kubectl writes data frames of at most 32 KiB).
pub const MAX_FRAME: usize = 256 * 1024;
/// Largest data frame we send.
pub const MAX_DATA_OUT: usize = 32 * 1024;

const VERSION: u16 = 3;
const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const SETTINGS: u16 = 4;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;

/// FLAG_FIN on data, SYN_STREAM, SYN_REPLY and HEADERS frames.
pub const FLAG_FIN: u8 = 0x01;

/// RST_STREAM status codes (section 2.6.3).
pub mod status {
    pub const PROTOCOL_ERROR: u32 = 1;
    pub const INVALID_STREAM: u32 = 2;
    pub const REFUSED_STREAM: u32 = 3;
    pub const CANCEL: u32 = 5;
    pub const INTERNAL_ERROR: u32 = 6;
    pub const FRAME_TOO_LARGE: u32 = 11;
}

/// One frame, header blocks decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Data {
        stream: u32,
        fin: bool,
        data: Bytes,
    },
    SynStream {
        stream: u32,
        fin: bool,
        headers: Headers,
    },
    SynReply {
        stream: u32,
        fin: bool,
        headers: Headers,
    },
    RstStream {
        stream: u32,
        status: u32,
    },
    Settings,
    Ping(u32),
    GoAway {
        last_good: u32,
        status: u32,
    },
    Headers {
        stream: u32,
    },
    WindowUpdate {
        stream: u32,
        delta: u32,
    },
    /// A control frame type this server ignores.
    Other(u16),
}

fn stream_id(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]]) & 0x7fff_ffff
}

fn fixed(payload: &[u8], n: usize) -> Result<&[u8], SpdyError> {
    if payload.len() < n {
        return Err(SpdyError::Malformed("control frame too short"));
    }
    Ok(payload)
}

/// Takes one frame off the front of `buf`, or `None` while it is incomplete.
pub fn decode(buf: &mut BytesMut, headers: &mut Decoder) -> Result<Option<Frame>, SpdyError> {
    if buf.len() < 8 {
        return Ok(None);
    }
    let len = u32::from_be_bytes([0, buf[5], buf[6], buf[7]]) as usize;
    if len > MAX_FRAME {
        return Err(SpdyError::FrameTooLarge(len));
    }
    if buf.len() < 8 + len {
        buf.reserve(8 + len - buf.len());
        return Ok(None);
    }
    let head = buf.split_to(8);
    let payload = buf.split_to(len).freeze();
    let flags = head[4];
    let fin = flags & FLAG_FIN != 0;
    if head[0] & 0x80 == 0 {
        return Ok(Some(Frame::Data {
            stream: stream_id(&head),
            fin,
            data: payload,
        }));
    }
    let version = u16::from_be_bytes([head[0], head[1]]) & 0x7fff;
    if version != VERSION {
        return Err(SpdyError::Version(version));
    }
    let kind = u16::from_be_bytes([head[2], head[3]]);
    let p = &payload[..];
    Ok(Some(match kind {
        SYN_STREAM => {
            let p = fixed(p, 10)?;
            Frame::SynStream {
                stream: stream_id(p),
                fin,
                headers: headers.decode(&p[10..])?,
            }
        }
        SYN_REPLY => {
            let p = fixed(p, 4)?;
            Frame::SynReply {
                stream: stream_id(p),
                fin,
                headers: headers.decode(&p[4..])?,
            }
        }
        HEADERS => {
            let p = fixed(p, 4)?;
            // Decoded to keep the zlib stream in step; nothing here uses them.
            headers.decode(&p[4..])?;
            Frame::Headers {
                stream: stream_id(p),
            }
        }
        RST_STREAM => {
            let p = fixed(p, 8)?;
            Frame::RstStream {
                stream: stream_id(p),
                status: u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
            }
        }
        SETTINGS => Frame::Settings,
        PING => {
            let p = fixed(p, 4)?;
            Frame::Ping(u32::from_be_bytes([p[0], p[1], p[2], p[3]]))
        }
        GOAWAY => {
            let p = fixed(p, 4)?;
            let status = if p.len() >= 8 {
                u32::from_be_bytes([p[4], p[5], p[6], p[7]])
            } else {
                0
            };
            Frame::GoAway {
                last_good: stream_id(p),
                status,
            }
        }
        WINDOW_UPDATE => {
            let p = fixed(p, 8)?;
            Frame::WindowUpdate {
                stream: stream_id(p),
                delta: stream_id(&p[4..]),
            }
        }
        other => Frame::Other(other),
    }))
}

fn control(out: &mut BytesMut, kind: u16, flags: u8, payload: &[u8]) {
    out.put_u16(0x8000 | VERSION);
    out.put_u16(kind);
    out.put_u32(((flags as u32) << 24) | payload.len() as u32);
    out.put_slice(payload);
}

/// Appends `frame` to `out`. Data longer than [`MAX_FRAME`] must be split by the caller.
pub fn encode(frame: &Frame, headers: &mut Encoder, out: &mut BytesMut) -> Result<(), SpdyError> {
    let flag = |fin: bool| if fin { FLAG_FIN } else { 0 };
    match frame {
        Frame::Data { stream, fin, data } => {
            if data.len() > MAX_FRAME {
                return Err(SpdyError::FrameTooLarge(data.len()));
            }
            out.put_u32(stream & 0x7fff_ffff);
            out.put_u32(((flag(*fin) as u32) << 24) | data.len() as u32);
            out.put_slice(data);
        }
        Frame::SynStream {
            stream,
            fin,
            headers: h,
        } => {
            let refs: Vec<(&str, &str)> = h.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
            let mut p = BytesMut::new();
            p.put_u32(*stream);
            p.put_u32(0);
            p.put_u16(0);
            p.put_slice(&headers.encode(&refs)?);
            control(out, SYN_STREAM, flag(*fin), &p);
        }
        Frame::SynReply {
            stream,
            fin,
            headers: h,
        } => {
            let refs: Vec<(&str, &str)> = h.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
            let mut p = BytesMut::new();
            p.put_u32(*stream);
            p.put_slice(&headers.encode(&refs)?);
            control(out, SYN_REPLY, flag(*fin), &p);
        }
        Frame::RstStream { stream, status } => {
            let mut p = [0u8; 8];
            p[..4].copy_from_slice(&stream.to_be_bytes());
            p[4..].copy_from_slice(&status.to_be_bytes());
            control(out, RST_STREAM, 0, &p);
        }
        Frame::Ping(id) => control(out, PING, 0, &id.to_be_bytes()),
        Frame::GoAway { last_good, status } => {
            let mut p = [0u8; 8];
            p[..4].copy_from_slice(&last_good.to_be_bytes());
            p[4..].copy_from_slice(&status.to_be_bytes());
            control(out, GOAWAY, 0, &p);
        }
        Frame::WindowUpdate { stream, delta } => {
            let mut p = [0u8; 8];
            p[..4].copy_from_slice(&stream.to_be_bytes());
            p[4..].copy_from_slice(&delta.to_be_bytes());
            control(out, WINDOW_UPDATE, 0, &p);
        }
        Frame::Settings => {
            control(out, SETTINGS, 0, &0u32.to_be_bytes());
        }
        Frame::Headers { .. } | Frame::Other(_) => {
            return Err(SpdyError::Malformed("frame kind is never sent"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(frames: &[Frame]) -> Vec<Frame> {
        let (mut enc, mut dec) = (Encoder::default(), Decoder::default());
        let mut wire = BytesMut::new();
        for f in frames {
            encode(f, &mut enc, &mut wire).unwrap();
        }
        // Fed one byte at a time: partial frames must wait, not fail.
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for b in wire.iter() {
            buf.put_u8(*b);
            while let Some(f) = decode(&mut buf, &mut dec).unwrap() {
                out.push(f);
            }
        }
        assert!(buf.is_empty());
        out
    }

    #[test]
    fn frames_round_trip() {
        let h = vec![("streamtype".to_string(), "error".to_string())];
        let frames = vec![
            Frame::SynStream {
                stream: 1,
                fin: false,
                headers: h.clone(),
            },
            Frame::SynReply {
                stream: 1,
                fin: true,
                headers: vec![],
            },
            Frame::Data {
                stream: 1,
                fin: true,
                data: Bytes::from_static(b"hello"),
            },
            Frame::Data {
                stream: 3,
                fin: false,
                data: Bytes::new(),
            },
            Frame::RstStream {
                stream: 5,
                status: status::CANCEL,
            },
            Frame::Ping(7),
            Frame::GoAway {
                last_good: 9,
                status: 0,
            },
            Frame::WindowUpdate {
                stream: 1,
                delta: 65536,
            },
            Frame::Settings,
        ];
        assert_eq!(round_trip(&frames), frames);
    }

    #[test]
    fn hostile_lengths_are_refused_before_buffering() {
        let mut dec = Decoder::default();
        let mut buf = BytesMut::from(&b"\x00\x00\x00\x01\x00\xff\xff\xff"[..]);
        assert!(matches!(
            decode(&mut buf, &mut dec),
            Err(SpdyError::FrameTooLarge(_))
        ));
        // A short fixed-size control frame.
        let mut buf = BytesMut::from(&b"\x80\x03\x00\x03\x00\x00\x00\x02ab"[..]);
        assert!(decode(&mut buf, &mut dec).is_err());
        // Another version.
        let mut buf = BytesMut::from(&b"\x80\x02\x00\x06\x00\x00\x00\x04abcd"[..]);
        assert!(matches!(
            decode(&mut buf, &mut dec),
            Err(SpdyError::Version(2))
        ));
        // An unknown control type is skipped whole.
        let mut buf = BytesMut::from(&b"\x80\x03\x00\x0a\x00\x00\x00\x02abXY"[..]);
        assert_eq!(decode(&mut buf, &mut dec).unwrap(), Some(Frame::Other(10)));
        assert_eq!(&buf[..], b"XY");
    }
}
