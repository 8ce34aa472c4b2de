//! Resizing ReplicaSets: one at a time with its event, proportionally across several when the
//! Deployment is resized mid-rollout, and pruning old ones beyond `revisionHistoryLimit`.

use k1s_apimachinery::meta;
use serde_json::json;

use super::rolling::proportional;
use super::sync::State;
use super::util::{self, replicas, revision, status_count};
use super::{Controller, Error};
use crate::replicaset::REPLICASETS;
use crate::runtime::key_of;

impl Controller {
    /// Sets `rss[i]` to `to` replicas (and the replica annotations); records a ScalingReplicaSet
    /// event when the size changed. Returns whether it did.
    pub(super) async fn scale_rs(&self, s: &mut State, i: usize, to: i32) -> Result<bool, Error> {
        let from = replicas(&s.rss[i]);
        let mut copy = s.rss[i].clone();
        let want = replicas(&s.d);
        let annotations = util::set_replicas_annotations(&mut copy, want, want + s.surge);
        if from == to && !annotations {
            return Ok(false);
        }
        copy["spec"]["replicas"] = json!(to);
        s.rss[i] = self
            .client
            .update(REPLICASETS, &copy)
            .await
            .map_err(s.api("scale replica set"))?;
        if from != to {
            let verb = if to > from { "up" } else { "down" };
            let name = meta::name(&copy).unwrap_or_default();
            let msg = format!("Scaled {verb} replica set {name} from {from} to {to}");
            self.recorder.normal(&s.d, "ScalingReplicaSet", &msg);
        }
        Ok(from != to)
    }

    /// Resizes the active ReplicaSets to the Deployment's size (proportionally mid-rollout).
    pub(super) async fn scale(&self, s: &mut State) -> Result<(), Error> {
        let want = replicas(&s.d);
        let active: Vec<usize> = (0..s.rss.len())
            .filter(|&i| replicas(&s.rss[i]) > 0)
            .collect();
        let only = match active.len() {
            0 => s.new.or_else(|| s.old().last().copied()),
            1 => Some(active[0]),
            _ => None,
        };
        if let Some(i) = only {
            if replicas(&s.rss[i]) != want {
                self.scale_rs(s, i, want).await?;
            }
            return Ok(());
        }
        if let Some(n) = s.new {
            let rs = &s.rss[n];
            let saturated = replicas(rs) == want
                && util::int_annotation(rs, util::DESIRED_REPLICAS) == Some(want)
                && status_count(rs, "availableReplicas") == want;
            if saturated {
                for j in s.old() {
                    if replicas(&s.rss[j]) > 0 {
                        self.scale_rs(s, j, 0).await?;
                    }
                }
                return Ok(());
            }
        }
        if s.is_recreate() {
            return Ok(());
        }
        let current: i32 = active.iter().map(|&i| replicas(&s.rss[i])).sum();
        let allowed = if want > 0 { want + s.surge } else { 0 };
        let growing = allowed > current;
        let mut order = active;
        order.sort_by(|&a, &b| {
            let by_size = replicas(&s.rss[b]).cmp(&replicas(&s.rss[a]));
            let by_age = util::older_first(&s.rss[a], &s.rss[b]);
            by_size.then(if growing { by_age.reverse() } else { by_age })
        });
        let input: Vec<(i32, Option<i32>)> = order
            .iter()
            .map(|&i| {
                (
                    replicas(&s.rss[i]),
                    util::int_annotation(&s.rss[i], util::MAX_REPLICAS),
                )
            })
            .collect();
        let sizes = proportional(&input, want, s.surge, status_count(&s.d, "replicas"));
        for (&i, size) in order.iter().zip(sizes) {
            self.scale_rs(s, i, size.max(0)).await?;
        }
        Ok(())
    }

    /// Deletes old, empty ReplicaSets beyond `revisionHistoryLimit`, lowest revisions first.
    pub(super) async fn cleanup(&self, s: &mut State) -> Result<(), Error> {
        let Some(limit) = s.d["spec"]["revisionHistoryLimit"].as_i64() else {
            return Ok(());
        };
        let mut alive: Vec<usize> = s
            .old()
            .into_iter()
            .filter(|&i| meta::deletion_timestamp(&s.rss[i]).is_none())
            .collect();
        let excess = alive.len() as i64 - limit;
        if excess <= 0 {
            return Ok(());
        }
        alive.sort_by_key(|&i| (revision(&s.rss[i]), key_of(&s.rss[i])));
        for &i in alive.iter().take(excess as usize) {
            let rs = &s.rss[i];
            let empty = replicas(rs) == 0
                && status_count(rs, "replicas") == 0
                && rs["status"]["observedGeneration"].as_i64().unwrap_or(0) >= meta::generation(rs);
            if !empty {
                continue;
            }
            self.client
                .delete(
                    REPLICASETS,
                    meta::namespace(rs),
                    meta::name(rs).unwrap_or_default(),
                    None,
                )
                .await
                .map_err(s.api("delete old replica set"))?;
        }
        Ok(())
    }
}
