//! SPDY/3 header blocks: a count, then length-prefixed names and values (32-bit big-endian
//! lengths; several values of one name are joined by NUL), compressed with zlib and the SPDY
//! dictionary. Each direction of a connection is one zlib stream, each block ends with a sync
//! flush, so the (de)compressor lives as long as the connection.
//!
//! Invariants: every block of the connection passes through the decoder, also those of streams
//! that are refused, or the shared zlib state would go out of step; a block never inflates
//! past [`MAX_BLOCK`] and never holds more than [`MAX_PAIRS`] pairs, so a hostile peer cannot
//! make us allocate more than that.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};

use super::SpdyError;
use super::dictionary::DICTIONARY;

/// Largest header block accepted, once inflated.
pub const MAX_BLOCK: usize = 64 * 1024;
/// Most name/value pairs accepted in one block.
pub const MAX_PAIRS: usize = 128;

/// Header pairs in order; names are lowercase on the wire.
pub type Headers = Vec<(String, String)>;

/// The value of `name` (case-insensitive), if present.
pub fn get<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Inflates the peer's header blocks.
pub struct Decoder {
    z: Decompress,
}

impl Default for Decoder {
    fn default() -> Self {
        Self {
            z: Decompress::new(true),
        }
    }
}

impl Decoder {
    /// Decodes one compressed block.
    pub fn decode(&mut self, block: &[u8]) -> Result<Headers, SpdyError> {
        let raw = self.inflate(block)?;
        parse(&raw)
    }

    fn inflate(&mut self, block: &[u8]) -> Result<Vec<u8>, SpdyError> {
        let mut out = Vec::with_capacity(block.len().saturating_mul(4).min(MAX_BLOCK));
        let start = self.z.total_in();
        loop {
            let used = (self.z.total_in() - start) as usize;
            let input = &block[used..];
            if out.len() == out.capacity() {
                if out.len() >= MAX_BLOCK {
                    return Err(SpdyError::HeaderTooLarge);
                }
                out.reserve((MAX_BLOCK - out.len()).min(16 * 1024));
            }
            let before = out.len();
            match self
                .z
                .decompress_vec(input, &mut out, FlushDecompress::Sync)
            {
                Ok(_) => {}
                Err(e) if e.needs_dictionary().is_some() => {
                    self.z
                        .set_dictionary(&DICTIONARY)
                        .map_err(|e| SpdyError::Compression(e.to_string()))?;
                    continue;
                }
                Err(e) => return Err(SpdyError::Compression(e.to_string())),
            }
            let used_now = (self.z.total_in() - start) as usize;
            // Done once the input is consumed and the output had room to spare (nothing pending).
            if used_now >= block.len() && out.len() < out.capacity() {
                return Ok(out);
            }
            if used_now == used && out.len() == before && out.len() < out.capacity() {
                return Err(SpdyError::Compression(
                    "header block does not progress".into(),
                ));
            }
        }
    }
}

fn parse(raw: &[u8]) -> Result<Headers, SpdyError> {
    let mut r = raw;
    let take_u32 = |r: &mut &[u8]| -> Result<usize, SpdyError> {
        let (n, rest) = r
            .split_first_chunk::<4>()
            .ok_or(SpdyError::BadHeaders("truncated length"))?;
        *r = rest;
        Ok(u32::from_be_bytes(*n) as usize)
    };
    let count = take_u32(&mut r)?;
    if count > MAX_PAIRS {
        return Err(SpdyError::BadHeaders("too many header pairs"));
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let field = |r: &mut &[u8]| -> Result<String, SpdyError> {
            let n = take_u32(r)?;
            if n > r.len() {
                return Err(SpdyError::BadHeaders("length past the block"));
            }
            let (s, rest) = r.split_at(n);
            *r = rest;
            Ok(String::from_utf8_lossy(s).into_owned())
        };
        let name = field(&mut r)?;
        let value = field(&mut r)?;
        if name.is_empty() {
            return Err(SpdyError::BadHeaders("empty header name"));
        }
        out.push((name, value));
    }
    Ok(out)
}

/// Deflates our header blocks.
pub struct Encoder {
    z: Compress,
}

impl Default for Encoder {
    fn default() -> Self {
        let mut z = Compress::new(Compression::default(), true);
        // Cannot fail on a fresh stream.
        let _ = z.set_dictionary(&DICTIONARY);
        Self { z }
    }
}

impl Encoder {
    /// Encodes and compresses one block.
    pub fn encode(&mut self, headers: &[(&str, &str)]) -> Result<Vec<u8>, SpdyError> {
        let mut raw = Vec::new();
        raw.extend_from_slice(&(headers.len() as u32).to_be_bytes());
        for (n, v) in headers {
            for s in [n.to_ascii_lowercase().as_str(), v] {
                raw.extend_from_slice(&(s.len() as u32).to_be_bytes());
                raw.extend_from_slice(s.as_bytes());
            }
        }
        let mut out = Vec::with_capacity(raw.len() + 64);
        let start = self.z.total_in();
        loop {
            let used = (self.z.total_in() - start) as usize;
            if out.len() == out.capacity() {
                out.reserve(256);
            }
            self.z
                .compress_vec(&raw[used..], &mut out, FlushCompress::Sync)
                .map_err(|e| SpdyError::Compression(e.to_string()))?;
            let used = (self.z.total_in() - start) as usize;
            if used >= raw.len() && out.len() < out.capacity() {
                return Ok(out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_across_blocks() {
        let mut enc = Encoder::default();
        let mut dec = Decoder::default();
        for i in 0..5 {
            let id = i.to_string();
            let block = enc
                .encode(&[("streamType", "data"), ("port", "8080"), ("requestID", &id)])
                .unwrap();
            let h = dec.decode(&block).unwrap();
            assert_eq!(get(&h, "streamtype"), Some("data"));
            assert_eq!(get(&h, "requestid"), Some(id.as_str()));
            assert_eq!(h[0].0, "streamtype");
        }
        assert!(dec.decode(&enc.encode(&[]).unwrap()).unwrap().is_empty());
    }

    #[test]
    fn rejects_garbage_and_bombs() {
        let mut dec = Decoder::default();
        assert!(dec.decode(b"\x00\x01\x02garbage").is_err());
        // A valid block that claims more pairs than allowed.
        let mut enc = Encoder::default();
        let pairs: Vec<(String, String)> = (0..MAX_PAIRS + 1)
            .map(|i| (format!("h{i}"), "v".into()))
            .collect();
        let refs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let mut dec = Decoder::default();
        assert!(matches!(
            dec.decode(&enc.encode(&refs).unwrap()),
            Err(SpdyError::BadHeaders(_))
        ));
        // A block that inflates past the limit (a megabyte of one value compresses to little).
        let big = "x".repeat(1 << 20);
        let mut enc = Encoder::default();
        let block = enc.encode(&[("a", &big)]).unwrap();
        assert!(block.len() < 8 * 1024);
        let mut dec = Decoder::default();
        assert!(matches!(dec.decode(&block), Err(SpdyError::HeaderTooLarge)));
    }

    #[test]
    fn lengths_past_the_block_are_refused() {
        assert!(parse(b"\x00\x00\x00\x01\x00\x00\x00\xffab").is_err());
        assert!(parse(b"\x00\x00").is_err());
        assert!(parse(b"\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00").is_err());
    }
}
