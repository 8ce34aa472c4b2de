//! The desired table as the sum of per-service fragments, updated one service at a time, so a
//! change to one service costs work proportional to that service, not to the cluster.
//!
//! Invariants:
//! - a chain stays while any fragment has it (the shared `dnat-N` chains are in many; a chain's
//!   rules depend only on its name, so every fragment agrees on them);
//! - `ruleset` always equals what assembling every current fragment from scratch gives: each map
//!   key's verdict is that of its first claimant in key order (the DNS fragment, key `""`, first),
//!   the `hairpin` set holds a pair while any service claims it, a cluster IP stays while any
//!   service has it;
//! - every chain, set, element and cluster IP whose value may have changed since the last
//!   [`Assembled::take_touched`] is in the touched sets, so a diff over them alone is complete.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::sync::Arc;

use crate::elem::{self, Value};
use crate::model::Key;
use crate::rules::{DNS_KEY, Map, Params, Problem, Ruleset, dns_fragment};

/// An element of one map.
type ElemId = (Map, elem::Key);

/// The services claiming one element with their values, sorted by service key. Almost always
/// one: a vector keeps that to a single small allocation per element.
type Claims = Vec<(Arc<str>, Value)>;

/// Names whose content may have changed.
#[derive(Clone, Debug, Default)]
pub struct Touched {
    pub chains: BTreeSet<String>,
    pub sets: BTreeSet<String>,
    pub elements: BTreeSet<ElemId>,
    pub cluster_ips: BTreeSet<Ipv4Addr>,
}

/// The desired ruleset with the bookkeeping to update it per service.
#[derive(Debug, Default)]
pub struct Assembled {
    fragments: BTreeMap<Key, (Ruleset, Vec<Problem>)>,
    /// Map key → claimant services with their values.
    owners: BTreeMap<ElemId, Claims>,
    /// Chain → number of fragments that have it (the shared `dnat-N` chains have many).
    chain_refs: BTreeMap<String, usize>,
    /// Cluster IP → number of fragments that have it.
    ips: BTreeMap<Ipv4Addr, usize>,
    /// Map keys (not hairpin pairs) claimed by more than one service.
    contested: BTreeSet<ElemId>,
    touched: Touched,
    /// The assembled table content.
    pub ruleset: Ruleset,
}

impl Assembled {
    /// An empty assembly holding the cluster DNS fragment, if any.
    pub fn new(params: &Params) -> Self {
        let mut a = Assembled::default();
        a.update(DNS_KEY, dns_fragment(params));
        a
    }

    /// Service keys with a fragment (the DNS pseudo-key excluded).
    pub fn keys(&self) -> impl Iterator<Item = &Key> {
        self.fragments.keys().filter(|k| &***k != DNS_KEY)
    }

    /// Replaces the fragment of `key` (`None`: the service is gone or has no virtual IP).
    pub fn update(&mut self, key: &str, new: Option<(Ruleset, Vec<Problem>)>) {
        if let Some((old, _)) = self.fragments.remove(key) {
            for name in old.chains.keys() {
                if let Some(n) = self.chain_refs.get_mut(name) {
                    *n -= 1;
                    if *n == 0 {
                        self.chain_refs.remove(name);
                        self.ruleset.chains.remove(name);
                    }
                }
                self.touched.chains.insert(name.clone());
            }
            for name in old.sets.keys() {
                self.ruleset.sets.remove(name);
                self.touched.sets.insert(name.clone());
            }
            for k in old.elements.into_keys() {
                if let Some(owners) = self.owners.get_mut(&k) {
                    owners.retain(|(o, _)| &**o != key);
                    if owners.is_empty() {
                        self.owners.remove(&k);
                    }
                }
                self.settle(k);
            }
            for ip in old.cluster_ips {
                if let Some(n) = self.ips.get_mut(&ip) {
                    *n -= 1;
                    if *n == 0 {
                        self.ips.remove(&ip);
                        self.ruleset.cluster_ips.remove(&ip);
                    }
                }
                self.touched.cluster_ips.insert(ip);
            }
        }
        let Some((new, problems)) = new else { return };
        for (name, rules) in &new.chains {
            *self.chain_refs.entry(name.clone()).or_default() += 1;
            // Shared chains are in thousands of fragments with the same rules: copy only news.
            if self.ruleset.chains.get(name) != Some(rules) {
                self.ruleset.chains.insert(name.clone(), rules.clone());
            }
            self.touched.chains.insert(name.clone());
        }
        for (name, timeout) in &new.sets {
            self.ruleset.sets.insert(name.clone(), *timeout);
            self.touched.sets.insert(name.clone());
        }
        let claimant: Arc<str> = key.into();
        for (k, value) in &new.elements {
            let owners = self.owners.entry(*k).or_default();
            match owners.binary_search_by(|(o, _)| (**o).cmp(key)) {
                Ok(at) => owners[at].1 = value.clone(),
                Err(at) => owners.insert(at, (claimant.clone(), value.clone())),
            }
            self.settle(*k);
        }
        for ip in &new.cluster_ips {
            *self.ips.entry(*ip).or_default() += 1;
            self.ruleset.cluster_ips.insert(*ip);
            self.touched.cluster_ips.insert(*ip);
        }
        self.fragments.insert(key.into(), (new, problems));
    }

    /// Sets element `k` to its first claimant's verdict (or removes it).
    fn settle(&mut self, k: ElemId) {
        let claimants = self.owners.get(&k).map_or(0, Vec::len);
        // Hairpin pairs are shared by design; endpoint elements follow their entry key's claim.
        let claimed = !matches!(k.0, Map::Hairpin | Map::Endpoints | Map::NodeportEndpoints);
        if claimed && claimants > 1 {
            self.contested.insert(k);
        } else if !self.contested.is_empty() {
            self.contested.remove(&k);
        }
        match self.owners.get(&k).and_then(|o| o.first()) {
            Some((_, v)) => {
                if self.ruleset.elements.get(&k) != Some(v) {
                    self.ruleset.elements.insert(k, v.clone());
                }
            }
            None => {
                self.ruleset.elements.remove(&k);
            }
        }
        self.touched.elements.insert(k);
    }

    /// Every service's own problems, plus `AddressInUse` for each claim another service won.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out: Vec<Problem> = self
            .fragments
            .values()
            .flat_map(|(_, p)| p.iter().cloned())
            .collect();
        for key in &self.contested {
            let Some(owners) = self.owners.get(key) else {
                continue;
            };
            let k = &key.1;
            for (loser, _) in owners.iter().skip(1) {
                out.push(Problem {
                    service: (**loser).into(),
                    reason: "AddressInUse",
                    message: format!("{k} is already served by another service"),
                });
            }
        }
        out
    }

    /// The names touched since the last call.
    pub fn take_touched(&mut self) -> Touched {
        std::mem::take(&mut self.touched)
    }
}
