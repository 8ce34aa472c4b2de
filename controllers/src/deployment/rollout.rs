//! The two rollout strategies: RollingUpdate (new pods up within maxSurge, old ones down within
//! maxUnavailable) and Recreate (all old pods gone before any new one starts).

use std::time::Duration;

use k1s_apimachinery::meta;
use k1s_apimachinery::selector::label::LabelSelector;
use serde_json::Value;

use super::rolling::{Counts, cleanup_unhealthy, max_scaled_down, new_rs_replicas, scale_down_old};
use super::status as st;
use super::sync::State;
use super::util::{replicas, status_count};
use super::{Controller, Error};
use crate::replicaset::PODS;
use crate::replicaset::pods::controlled_by;

/// A ReplicaSet's counts, its available pods never counted above its size (a stale status can
/// still count pods that are being deleted).
fn counts(rs: &Value) -> Counts {
    let r = replicas(rs);
    Counts {
        replicas: r,
        available: status_count(rs, "availableReplicas").min(r),
    }
}

impl Controller {
    pub(super) async fn rollout_rolling(&self, s: &mut State) -> Result<Option<Duration>, Error> {
        self.find_new(s, true).await?;
        if self.reconcile_new(s).await? || self.reconcile_old(s).await? {
            return self.sync_rollout_status(s).await;
        }
        if st::complete(&s.d, &s.d["status"]) {
            self.cleanup(s).await?;
        }
        self.sync_rollout_status(s).await
    }

    /// Grows (or trims) the new ReplicaSet within maxSurge; returns whether it scaled.
    async fn reconcile_new(&self, s: &mut State) -> Result<bool, Error> {
        let Some(i) = s.new else {
            return Ok(false);
        };
        let want = replicas(&s.d);
        let cur = replicas(&s.rss[i]);
        if cur == want {
            return Ok(false);
        }
        if cur > want {
            return self.scale_rs(s, i, want).await;
        }
        let to = new_rs_replicas(want, s.surge, s.surge_total(), cur);
        self.scale_rs(s, i, to).await
    }

    /// Shrinks old ReplicaSets within maxUnavailable, unhealthy pods first; returns whether any
    /// scaled.
    async fn reconcile_old(&self, s: &mut State) -> Result<bool, Error> {
        let old = s.old();
        let old_total: i32 = old.iter().map(|&i| replicas(&s.rss[i])).sum();
        if old_total == 0 {
            return Ok(false);
        }
        let want = replicas(&s.d);
        let new = s.new.map(|i| counts(&s.rss[i])).unwrap_or_default();
        let max_down = max_scaled_down(want, s.unavailable, s.total_replicas(), &new);
        if max_down <= 0 {
            return Ok(false);
        }
        let old_counts: Vec<Counts> = old.iter().map(|&i| counts(&s.rss[i])).collect();
        let (sizes, cleaned) = cleanup_unhealthy(&old_counts, max_down);
        let mut scaled = false;
        for (&i, &size) in old.iter().zip(&sizes) {
            if size != replicas(&s.rss[i]) {
                scaled |= self.scale_rs(s, i, size).await?;
            }
        }
        let old_counts: Vec<Counts> = old.iter().map(|&i| counts(&s.rss[i])).collect();
        let min_available = want - s.unavailable;
        let available: i32 = old_counts.iter().map(|c| c.available).sum::<i32>() + new.available;
        // Never take away more than the budget computed from the specs, whatever the statuses say.
        let available = available.min(min_available + max_down - cleaned);
        let (sizes, _) = scale_down_old(&old_counts, available, min_available);
        for (&i, &size) in old.iter().zip(&sizes) {
            if size != replicas(&s.rss[i]) {
                scaled |= self.scale_rs(s, i, size).await?;
            }
        }
        Ok(scaled)
    }

    pub(super) async fn rollout_recreate(&self, s: &mut State) -> Result<Option<Duration>, Error> {
        self.find_new(s, false).await?;
        let mut scaled = false;
        for j in s.old() {
            if replicas(&s.rss[j]) > 0 {
                scaled |= self.scale_rs(s, j, 0).await?;
            }
        }
        if scaled || self.old_pods_running(s).await? {
            return self.sync_rollout_status(s).await;
        }
        if s.new.is_none() {
            self.find_new(s, true).await?;
        }
        if let Some(i) = s.new
            && self.scale_rs(s, i, replicas(&s.d)).await?
        {
            return self.sync_rollout_status(s).await;
        }
        if st::complete(&s.d, &s.d["status"]) {
            self.cleanup(s).await?;
        }
        self.sync_rollout_status(s).await
    }

    /// Whether any pod of an old ReplicaSet still exists and has not finished (terminating ones
    /// count: Recreate means no old pod runs beside a new one). Only asked once the old
    /// ReplicaSets report no pods, so the live list is rare.
    async fn old_pods_running(&self, s: &State) -> Result<bool, Error> {
        let old = s.old();
        if old.iter().any(|&i| status_count(&s.rss[i], "replicas") > 0) {
            return Ok(true);
        }
        let uids: Vec<&str> = old.iter().filter_map(|&i| meta::uid(&s.rss[i])).collect();
        if uids.is_empty() {
            return Ok(false);
        }
        let selector = LabelSelector::from_metav1(&s.d["spec"]["selector"])
            .map(|sel| sel.to_string())
            .unwrap_or_default();
        let (pods, _) = self
            .client
            .list(PODS, meta::namespace(&s.d), Some(&selector))
            .await
            .map_err(|source| Error::Api {
                action: "list pods",
                deployment: s.key.clone(),
                source,
            })?;
        Ok(pods.iter().any(|p| {
            let phase = p["status"]["phase"].as_str().unwrap_or_default();
            phase != "Succeeded" && phase != "Failed" && uids.iter().any(|u| controlled_by(p, u))
        }))
    }
}
