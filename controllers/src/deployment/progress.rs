//! Writing Deployment status: counters and `Available` always, and after a rollout step the
//! `Progressing` condition (progress, completion, deadline) and `ReplicaFailure` from the
//! ReplicaSets.

use std::time::Duration;

use k1s_apimachinery::meta;
use serde_json::Value;

use super::status::{self as st, PROGRESSING};
use super::sync::State;
use super::{Controller, Error};

impl Controller {
    /// Counters and `Available` only (no progress estimate), written if changed.
    pub(super) async fn sync_status(&self, s: &mut State) -> Result<(), Error> {
        let now = meta::now_rfc3339();
        let all: Vec<&Value> = s.rss.iter().collect();
        let new = s.new.map(|i| &s.rss[i]);
        let wanted = st::calculate(&s.d, &all, new, s.unavailable, &now);
        if st::differs(&s.d["status"], &wanted) {
            s.d["status"] = wanted;
            self.write_deployment_status(s).await?;
        }
        Ok(())
    }

    /// Status after a rollout step, with the Progressing condition estimated as upstream does;
    /// asks to be requeued when the progress deadline may pass.
    pub(super) async fn sync_rollout_status(
        &self,
        s: &mut State,
    ) -> Result<Option<Duration>, Error> {
        let now_ts = jiff::Timestamp::now();
        let now = meta::format_rfc3339(now_ts);
        let all: Vec<&Value> = s.rss.iter().collect();
        let new = s.new.map(|i| &s.rss[i]);
        let new_name = new.and_then(meta::name).map(str::to_string);
        let mut wanted = st::calculate(&s.d, &all, new, s.unavailable, &now);
        let has_deadline = st::has_deadline(&s.d);
        if !has_deadline {
            st::remove(&mut wanted, PROGRESSING);
        }
        let current = st::get(&s.d["status"], PROGRESSING).cloned();
        let already_complete = wanted["replicas"] == wanted["updatedReplicas"]
            && current
                .as_ref()
                .is_some_and(|c| c["reason"] == st::NEW_RS_AVAILABLE);
        let subject = match &new_name {
            Some(n) => format!("ReplicaSet {n:?}"),
            None => format!("Deployment {:?}", meta::name(&s.d).unwrap_or_default()),
        };
        if has_deadline && !already_complete {
            if st::complete(&s.d, &wanted) {
                let msg = format!("{subject} has successfully progressed.");
                st::set(
                    &mut wanted,
                    st::condition(PROGRESSING, "True", st::NEW_RS_AVAILABLE, &msg, &now),
                );
            } else if st::progressing(&s.d, &wanted) {
                let msg = format!("{subject} is progressing.");
                let mut cond = st::condition(PROGRESSING, "True", st::RS_UPDATED, &msg, &now);
                if let Some(cur) = &current {
                    if cur["status"] == "True" {
                        cond["lastTransitionTime"] = cur["lastTransitionTime"].clone();
                    }
                    st::remove(&mut wanted, PROGRESSING);
                }
                st::set(&mut wanted, cond);
            } else if st::timed_out(&s.d, &wanted, now_ts) {
                let msg = format!("{subject} has timed out progressing.");
                st::set(
                    &mut wanted,
                    st::condition(PROGRESSING, "False", st::TIMED_OUT, &msg, &now),
                );
            }
        }
        let failure = new
            .into_iter()
            .chain(s.old().into_iter().map(|i| &s.rss[i]))
            .find_map(|rs| {
                st::get(&rs["status"], st::REPLICA_FAILURE)
                    .filter(|c| c["status"] == "True")
                    .cloned()
            });
        match failure {
            Some(c) => {
                let cond = st::condition(
                    st::REPLICA_FAILURE,
                    "True",
                    c["reason"].as_str().unwrap_or_default(),
                    c["message"].as_str().unwrap_or_default(),
                    &now,
                );
                st::set(&mut wanted, cond);
            }
            None => st::remove(&mut wanted, st::REPLICA_FAILURE),
        }
        let requeue = if st::complete(&s.d, &wanted) {
            None
        } else {
            st::deadline_left(&s.d, &s.d["status"], now_ts)
                .map(|left| Duration::from_secs(left.max(0) as u64 + 1))
        };
        if st::differs(&s.d["status"], &wanted) {
            s.d["status"] = wanted;
            self.write_deployment_status(s).await?;
        }
        Ok(requeue)
    }
}
