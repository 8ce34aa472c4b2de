//! Choosing and running one sync's transaction: the full replacement goes to nf_tables as one
//! netlink batch ([`crate::full`]; `nft -f` when the table has session-affinity chains, or after
//! a batch failed); a change of elements only goes over netlink too (one batch), which skips
//! starting `nft` and its read-back of the table; any other change to chains or affinity sets is
//! an incremental `nft -f` script, preceded by a netlink batch creating the new chains that use
//! the endpoint maps (which `nft -f` cannot add to an existing table).
//!
//! Invariants: a sync is one kernel transaction, applied all or nothing, except the incremental
//! script with new endpoint-map chains: two, the first only adding chains nothing jumps to yet;
//! a failure of any leaves the caller to replace the whole table next time. Blocking: run [`Transaction::
//! run`] on a blocking thread.

use std::collections::BTreeSet;
use std::path::Path;

use crate::assemble::Touched;
use crate::elements::{self, Op};
use crate::netlink::{Netlink, NetlinkError};
use crate::nft::{self, NftError};
use crate::rules::{Params, Ruleset};
use crate::script;

/// Element-only transactions larger than this go through `nft` (which streams them in its own
/// batches): keeps a netlink batch far below the socket's buffer.
const MAX_NETLINK_OPS: usize = 1_000;

/// Why a transaction failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Nft(#[from] NftError),
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
}

/// One sync's transaction.
#[derive(Debug)]
pub enum Transaction {
    /// Nothing changed.
    None,
    /// An `nft -f` script; `full` when it replaces the whole table. `chains`: the new chains that
    /// use the endpoint maps, as a netlink batch (with its sequence numbers) sent just before the
    /// script, which leaves them out (see [`script::uses_endpoint_maps`]).
    Script {
        text: String,
        full: bool,
        chains: Option<(Vec<u8>, Vec<u32>)>,
    },
    /// Element additions and deletions, sent over netlink.
    Elements(Vec<Op>),
    /// The whole table as one encoded netlink batch ([`crate::full`]), with the sequence numbers
    /// to be acknowledged.
    FullBatch { batch: Vec<u8>, acks: Vec<u32> },
}

impl Transaction {
    /// The transaction bringing the kernel from `applied` (`None`: unknown) to `new`, where only
    /// the names in `touched` may differ. A full replacement is one netlink batch when
    /// `full_by_netlink` and [`crate::full::batch`] can encode `new`, else an `nft -f` script.
    pub fn plan(
        params: &Params,
        applied: Option<&Ruleset>,
        new: &Ruleset,
        touched: &Touched,
        full_by_netlink: bool,
    ) -> Transaction {
        let Some(old) = applied else {
            if full_by_netlink && let Some((batch, acks)) = crate::full::batch(params, new, 0) {
                return Transaction::FullBatch { batch, acks };
            }
            return Transaction::Script {
                text: script::full(params, new),
                full: true,
                chains: None,
            };
        };
        match elements::changes(old, new, touched) {
            Some(ops) if ops.is_empty() => Transaction::None,
            Some(ops) if ops.len() <= MAX_NETLINK_OPS => Transaction::Elements(ops),
            _ => {
                let made: Vec<(&str, &[String])> = touched
                    .chains
                    .iter()
                    .filter(|n| !old.chains.contains_key(*n))
                    .filter_map(|n| new.chains.get(n).map(|r| (n.as_str(), r.as_slice())))
                    .filter(|(_, r)| script::uses_endpoint_maps(r))
                    .collect();
                // A rule the batch cannot encode stays in the script (which nft then rejects,
                // and the next sync replaces the whole table).
                let chains = if made.is_empty() {
                    None
                } else {
                    crate::full::new_chains(made.iter().copied(), 0)
                };
                let skip: BTreeSet<String> = match chains {
                    Some(_) => made.iter().map(|(n, _)| n.to_string()).collect(),
                    None => BTreeSet::new(),
                };
                let text = script::diff_touched_except(old, new, touched, &skip);
                if text.is_empty() && chains.is_none() {
                    Transaction::None
                } else {
                    Transaction::Script {
                        text,
                        full: false,
                        chains,
                    }
                }
            }
        }
    }

    /// Whether it replaces the whole table.
    pub fn is_full(&self) -> bool {
        matches!(
            self,
            Transaction::Script { full: true, .. } | Transaction::FullBatch { .. }
        )
    }

    /// Applies it (blocking): scripts with the `nft` program at `nft_path`, element batches on
    /// `netlink` (kept open between syncs).
    pub fn run(&self, nft_path: &Path, netlink: &mut Netlink) -> Result<(), ApplyError> {
        match self {
            Transaction::None => Ok(()),
            Transaction::Script { text, chains, .. } => {
                // The new chains first: nothing jumps to them until the script's elements do.
                if let Some((batch, acks)) = chains {
                    netlink.apply_encoded(batch, acks.clone())?;
                }
                if !text.is_empty() {
                    nft::apply(nft_path, text, false)?;
                }
                Ok(())
            }
            Transaction::Elements(ops) => Ok(netlink.apply(script::TABLE_NAME, ops)?),
            Transaction::FullBatch { batch, acks } => {
                Ok(netlink.apply_encoded(batch, acks.clone())?)
            }
        }
    }
}
