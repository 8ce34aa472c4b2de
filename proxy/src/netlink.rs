//! Sending transactions to nf_tables over netlink, without the `nft` program: one batch
//! (`BATCH_BEGIN`, messages, `BATCH_END`) that the kernel applies all or nothing, with no
//! read-back of the table — element changes (`NEWSETELEM`/`DELSETELEM`, built here) and the full
//! replacement ([`crate::full`] builds it with this module's [`Builder`]). The message layout is
//! written by hand (no maintained pure-Rust crate covers nf_tables rules and set elements with
//! concatenated keys); `netlink-sys` provides the socket.
//!
//! Invariants:
//! - one [`Netlink::apply`] or [`Netlink::apply_encoded`] is one nf_tables transaction: every
//!   message asks for an acknowledgement, and
//!   success means every one was acknowledged with no error (the kernel processes a batch inside
//!   the `send` call, so all replies are queued when it returns);
//! - only table `ip k1s` is named; blocking: call it from a blocking thread.

use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_NETFILTER};
use nix::sys::socket::{setsockopt, sockopt};

use crate::elem::Value;
use crate::elements::Op;

/// Why a netlink transaction failed.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("netlink socket: {0}")]
    Socket(#[source] std::io::Error),
    #[error("nf_tables rejected the element batch: {0}")]
    Rejected(#[source] std::io::Error),
    #[error("nf_tables acknowledged {got} of {want} messages")]
    Incomplete { got: usize, want: usize },
}

pub(crate) const NFNL_SUBSYS_NFTABLES: u16 = 10;
pub(crate) const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
pub(crate) const NFNL_MSG_BATCH_END: u16 = 0x11;
pub(crate) const NFT_MSG_NEWSETELEM: u16 = 12;
const NFT_MSG_DELSETELEM: u16 = 14;
pub(crate) const NLM_F_REQUEST: u16 = 0x1;
pub(crate) const NLM_F_ACK: u16 = 0x4;
pub(crate) const NLM_F_CREATE: u16 = 0x400;
const NLMSG_ERROR: u16 = 2;
pub(crate) const NFPROTO_IPV4: u8 = 2;
const NLA_F_NESTED: u16 = 0x8000;
const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_DATA: u16 = 2;
pub(crate) const NFTA_DATA_VALUE: u16 = 1;
pub(crate) const NFTA_DATA_VERDICT: u16 = 2;
pub(crate) const NFTA_VERDICT_CODE: u16 = 1;
pub(crate) const NFTA_VERDICT_CHAIN: u16 = 2;
pub(crate) const NFT_GOTO: i32 = -4;
/// Batches up to this size fit the socket's default buffers.
const DEFAULT_SNDBUF: usize = 200 * 1024;
/// Elements per message: keeps each message far below the socket buffer.
const PER_MESSAGE: usize = 128;

/// A netlink message being built: header, `nfgenmsg`, attributes.
/// A batch being encoded (for [`crate::full`] and the element batches here).
pub(crate) struct Builder {
    pub(crate) buf: Vec<u8>,
}

impl Builder {
    /// Starts a message; returns its offset (to patch the length in [`Builder::end`]).
    pub(crate) fn begin(
        &mut self,
        kind: u16,
        flags: u16,
        seq: u32,
        family: u8,
        res_id: u16,
    ) -> usize {
        let at = self.buf.len();
        self.buf.extend_from_slice(&0u32.to_ne_bytes()); // length, patched by end()
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&seq.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel
        self.buf.extend_from_slice(&[family, 0]); // nfgenmsg: family, version 0
        self.buf.extend_from_slice(&res_id.to_be_bytes());
        at
    }

    pub(crate) fn end(&mut self, at: usize) {
        let len = (self.buf.len() - at) as u32;
        self.buf[at..at + 4].copy_from_slice(&len.to_ne_bytes());
    }

    pub(crate) fn attr(&mut self, kind: u16, payload: &[u8]) {
        let len = 4 + payload.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(payload);
        self.pad();
    }

    pub(crate) fn string(&mut self, kind: u16, s: &str) {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        self.attr(kind, &v);
    }

    /// Opens a nested attribute; close it with [`Builder::close`].
    pub(crate) fn open(&mut self, kind: u16) -> usize {
        let at = self.buf.len();
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf
            .extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        at
    }

    pub(crate) fn close(&mut self, at: usize) {
        let len = (self.buf.len() - at) as u16;
        self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    }

    /// `BATCH_BEGIN` for nf_tables.
    pub(crate) fn batch_begin(&mut self, seq: u32) {
        let at = self.begin(
            NFNL_MSG_BATCH_BEGIN,
            NLM_F_REQUEST,
            seq,
            0,
            NFNL_SUBSYS_NFTABLES,
        );
        self.end(at);
    }

    /// `BATCH_END`: the kernel commits everything since `BATCH_BEGIN` as one transaction.
    pub(crate) fn batch_end(&mut self, seq: u32) {
        let at = self.begin(
            NFNL_MSG_BATCH_END,
            NLM_F_REQUEST,
            seq,
            0,
            NFNL_SUBSYS_NFTABLES,
        );
        self.end(at);
    }

    /// A u32 attribute, network order (as every nf_tables integer attribute).
    pub(crate) fn u32(&mut self, kind: u16, v: u32) {
        self.attr(kind, &v.to_be_bytes());
    }

    /// A nested `NFTA_DATA_VERDICT` (`code`, and the chain for jump and goto).
    pub(crate) fn verdict(&mut self, code: i32, chain: Option<&str>) {
        let verdict = self.open(NFTA_DATA_VERDICT);
        self.attr(NFTA_VERDICT_CODE, &code.to_be_bytes());
        if let Some(chain) = chain {
            self.string(NFTA_VERDICT_CHAIN, chain);
        }
        self.close(verdict);
    }

    pub(crate) fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }
}

/// Encodes `ops` as one batch; returns it and the number of acknowledgements to expect.
fn batch(table: &str, ops: &[Op], first_seq: u32) -> (Vec<u8>, Vec<u32>) {
    let mut b = Builder { buf: Vec::new() };
    let mut seq = first_seq;
    b.batch_begin(seq);
    let mut acked = Vec::new();
    element_messages(&mut b, table, ops, &mut seq, &mut acked);
    seq += 1;
    b.batch_end(seq);
    (b.buf, acked)
}

/// Appends `ops` as `NEWSETELEM`/`DELSETELEM` messages, each asking for an acknowledgement (its
/// sequence number goes to `acked`).
pub(crate) fn element_messages(
    b: &mut Builder,
    table: &str,
    ops: &[Op],
    seq: &mut u32,
    acked: &mut Vec<u32>,
) {
    // Consecutive operations with the same verb and set share a message.
    let mut i = 0;
    while i < ops.len() {
        let (delete, set) = (ops[i].delete, ops[i].set);
        let mut j = i;
        while j < ops.len() && j - i < PER_MESSAGE && ops[j].delete == delete && ops[j].set == set {
            j += 1;
        }
        *seq += 1;
        acked.push(*seq);
        let (kind, flags) = if delete {
            (NFT_MSG_DELSETELEM, NLM_F_REQUEST | NLM_F_ACK)
        } else {
            (NFT_MSG_NEWSETELEM, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE)
        };
        let at = b.begin(
            (NFNL_SUBSYS_NFTABLES << 8) | kind,
            flags,
            *seq,
            NFPROTO_IPV4,
            0,
        );
        b.string(NFTA_SET_ELEM_LIST_TABLE, table);
        b.string(NFTA_SET_ELEM_LIST_SET, set);
        let list = b.open(NFTA_SET_ELEM_LIST_ELEMENTS);
        for op in &ops[i..j] {
            let elem = b.open(NFTA_LIST_ELEM);
            let key = b.open(NFTA_SET_ELEM_KEY);
            b.attr(NFTA_DATA_VALUE, op.key.encode().as_bytes());
            b.close(key);
            match &op.data {
                Value::Endpoint(..) => {
                    if let Some(v) = op.data.encode_endpoint() {
                        let data = b.open(NFTA_SET_ELEM_DATA);
                        b.attr(NFTA_DATA_VALUE, v.as_bytes());
                        b.close(data);
                    }
                }
                // Deletions carry no datum: the key names the element.
                Value::Goto(chain) if !op.delete => {
                    let data = b.open(NFTA_SET_ELEM_DATA);
                    b.verdict(NFT_GOTO, Some(chain));
                    b.close(data);
                }
                Value::Goto(_) | Value::Member => {}
            }
            b.close(elem);
        }
        b.close(list);
        b.end(at);
        i = j;
    }
}

/// A netlink socket to nf_tables, opened on first use and kept: closing one costs the kernel a
/// grace period (~15 ms measured here), far more than a transaction.
#[derive(Default)]
pub struct Netlink {
    socket: Option<Socket>,
    seq: u32,
}

impl Netlink {
    fn socket(&mut self) -> Result<&Socket, NetlinkError> {
        if self.socket.is_none() {
            let socket = Socket::new(NETLINK_NETFILTER).map_err(NetlinkError::Socket)?;
            // Acknowledgements without a copy of the request: they stay small in the buffer.
            socket.set_cap_ack(true).map_err(NetlinkError::Socket)?;
            socket
                .set_non_blocking(true)
                .map_err(NetlinkError::Socket)?;
            self.socket = Some(socket);
        }
        Ok(self.socket.as_ref().expect("just opened"))
    }

    /// Applies `ops` to set/map elements of `table` (family `ip`) in one transaction. After a
    /// failure the socket is closed, so no stale reply can be read as the next one's.
    pub fn apply(&mut self, table: &str, ops: &[Op]) -> Result<(), NetlinkError> {
        if ops.is_empty() {
            return Ok(());
        }
        let result = self.try_apply(table, ops);
        if result.is_err() {
            self.socket = None;
        }
        result
    }

    fn try_apply(&mut self, table: &str, ops: &[Op]) -> Result<(), NetlinkError> {
        let first_seq = self.seq;
        let (buf, want) = batch(table, ops, first_seq);
        self.seq = first_seq.wrapping_add(want.len() as u32 + 2);
        self.exchange(&buf, want)
    }

    /// Sends an encoded batch as one transaction and waits for the acknowledgement of each
    /// sequence number in `want`. Its sequence numbers need not follow this socket's: every
    /// exchange reads all of its replies, and after a failure the socket is closed, as in
    /// [`Netlink::apply`], so no reply is ever matched to the wrong batch.
    pub fn apply_encoded(&mut self, buf: &[u8], want: Vec<u32>) -> Result<(), NetlinkError> {
        let result = self.exchange(buf, want);
        if result.is_err() {
            self.socket = None;
        }
        result
    }

    /// Sends `buf` and waits for an acknowledgement of every sequence number in `want`.
    fn exchange(&mut self, buf: &[u8], mut want: Vec<u32>) -> Result<(), NetlinkError> {
        let socket = self.socket()?;
        // A batch is one datagram: the send buffer must hold it whole (nft does the same).
        if buf.len() > DEFAULT_SNDBUF {
            setsockopt(socket, sockopt::SndBufForce, &(buf.len() + 4096))
                .map_err(|e| NetlinkError::Socket(e.into()))?;
        }
        // Every acknowledgement is queued before `send` returns: room for all of them, counted
        // as the kernel does (each is an skb of about a kilobyte, whatever its payload).
        let replies = want.len() * 2048 + 64 * 1024;
        if replies > DEFAULT_SNDBUF {
            setsockopt(socket, sockopt::RcvBufForce, &replies)
                .map_err(|e| NetlinkError::Socket(e.into()))?;
        }
        socket
            .send_to(buf, &SocketAddr::new(0, 0), 0)
            .map_err(NetlinkError::Socket)?;
        let total = want.len();
        let mut reply = Vec::with_capacity(64 * 1024);
        while !want.is_empty() {
            reply.clear();
            match socket.recv(&mut reply, 0) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(NetlinkError::Socket(e)),
            }
            let mut rest = &reply[..];
            while rest.len() >= 16 {
                let len = u32::from_ne_bytes(rest[0..4].try_into().expect("4 bytes")) as usize;
                let kind = u16::from_ne_bytes(rest[4..6].try_into().expect("2 bytes"));
                let seq = u32::from_ne_bytes(rest[8..12].try_into().expect("4 bytes"));
                if len < 16 || len > rest.len() {
                    break;
                }
                if kind == NLMSG_ERROR && len >= 20 && want.contains(&seq) {
                    let code = i32::from_ne_bytes(rest[16..20].try_into().expect("4 bytes"));
                    if code != 0 {
                        return Err(NetlinkError::Rejected(std::io::Error::from_raw_os_error(
                            code.saturating_neg(),
                        )));
                    }
                    want.retain(|s| *s != seq);
                }
                rest = &rest[len.next_multiple_of(4).min(rest.len())..];
            }
        }
        if want.is_empty() {
            Ok(())
        } else {
            Err(NetlinkError::Incomplete {
                got: total - want.len(),
                want: total,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_frames_its_messages() {
        let ops: Vec<Op> = (0..130)
            .map(|i| Op {
                delete: false,
                set: "hairpin",
                key: {
                    let ip = std::net::Ipv4Addr::new(10, 42, 0, i as u8);
                    crate::elem::Key::Pair(ip, ip)
                },
                data: Value::Member,
            })
            .collect();
        let (buf, acked) = batch("k1s", &ops, 7);
        // 130 elements: two messages of at most 128, between BEGIN (seq 7) and END.
        assert_eq!(acked, vec![8, 9]);
        let mut offsets = Vec::new();
        let mut at = 0;
        while at < buf.len() {
            let len = u32::from_ne_bytes(buf[at..at + 4].try_into().unwrap()) as usize;
            assert!(len >= 20 && len.is_multiple_of(4), "length {len} at {at}");
            offsets.push(at);
            at += len;
        }
        assert_eq!(at, buf.len());
        assert_eq!(offsets.len(), 4);
        let kind = |at: usize| u16::from_ne_bytes(buf[at + 4..at + 6].try_into().unwrap());
        assert_eq!(kind(offsets[0]), NFNL_MSG_BATCH_BEGIN);
        assert_eq!(kind(offsets[1]), (10 << 8) | NFT_MSG_NEWSETELEM);
        assert_eq!(kind(offsets[3]), NFNL_MSG_BATCH_END);
    }
}
