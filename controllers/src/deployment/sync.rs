//! One Deployment sync, in upstream order: claim ReplicaSets ([`claim`](super::claim)), paused
//! condition, then scale only ([`scale`](super::scale)) or roll out ([`rollout`](super::rollout)), and
//! status ([`progress`](super::progress)). [`State`] carries what the steps learn and write.

use std::time::Duration;

use k1s_apimachinery::meta;
use k1s_apimachinery::selector::label::LabelSelector;
use k1s_apimachinery::status::StatusError;
use serde_json::{Value, json};

use super::rolling::resolve_fenceposts;
use super::status::{self as st, PROGRESSING};
use super::util::{self, replicas};
use super::{Controller, DEPLOYMENTS, Error};

/// What one sync knows: the Deployment and its ReplicaSets as last read or written.
pub(super) struct State {
    pub d: Value,
    pub rss: Vec<Value>,
    /// Index of the ReplicaSet running the current template, once looked up.
    pub new: Option<usize>,
    pub surge: i32,
    pub unavailable: i32,
    pub key: String,
}

impl State {
    pub fn is_recreate(&self) -> bool {
        self.d["spec"]["strategy"]["type"] == "Recreate"
    }

    /// Indices of the old ReplicaSets, oldest first.
    pub fn old(&self) -> Vec<usize> {
        let mut v: Vec<usize> = (0..self.rss.len())
            .filter(|i| Some(*i) != self.new)
            .collect();
        v.sort_by(|&a, &b| util::older_first(&self.rss[a], &self.rss[b]));
        v
    }

    pub fn total_replicas(&self) -> i32 {
        self.rss.iter().map(replicas).sum()
    }

    /// Pods that may exist for this Deployment: the new ReplicaSet's size, and for old ones the
    /// larger of their size and the pods they still report. Upstream sums sizes only, so while
    /// the ReplicaSet controller has not yet deleted the pods of a scaled-down old ReplicaSet,
    /// new pods could push the live count past `replicas + maxSurge`; k1s waits for those
    /// deletions (reported in the old ReplicaSet's status) before surging again.
    pub fn surge_total(&self) -> i32 {
        self.rss
            .iter()
            .enumerate()
            .map(|(i, rs)| match self.new == Some(i) {
                true => replicas(rs),
                false => replicas(rs).max(super::util::status_count(rs, "replicas")),
            })
            .sum()
    }

    pub fn api(&self, action: &'static str) -> impl FnOnce(StatusError) -> Error + '_ {
        move |source| Error::Api {
            action,
            deployment: self.key.clone(),
            source,
        }
    }
}

impl Controller {
    /// Syncs the Deployment at `key`; `Ok(Some(d))` asks to be synced again after `d`.
    pub(super) async fn sync(&self, key: &str) -> Result<Option<Duration>, Error> {
        let Some(d) = self.deployments.get(key) else {
            return Ok(None);
        };
        let d = (*d).clone();
        let selector = match LabelSelector::from_metav1(&d["spec"]["selector"]) {
            Ok(s) if !s.is_everything() => s,
            Ok(_) => {
                self.recorder.warning(
                    &d,
                    "SelectingAll",
                    "This deployment is selecting all pods. A non-empty selector is required.",
                );
                return Ok(None);
            }
            Err(e) => {
                self.recorder.warning(&d, "InvalidSelector", &e.to_string());
                return Ok(None);
            }
        };
        let rolling = d["spec"]["strategy"]["type"] != "Recreate";
        let want = replicas(&d);
        let (surge, unavailable) = if rolling {
            let ru = &d["spec"]["strategy"]["rollingUpdate"];
            let or_default = |v: &Value| if v.is_null() { json!("25%") } else { v.clone() };
            match resolve_fenceposts(
                &or_default(&ru["maxSurge"]),
                &or_default(&ru["maxUnavailable"]),
                want,
            ) {
                Ok((s, u)) => (s, if want == 0 { 0 } else { u.min(want) }),
                Err(message) => {
                    self.recorder.warning(&d, "InvalidRollingUpdate", &message);
                    return Err(Error::Invalid {
                        deployment: key.to_string(),
                        message,
                    });
                }
            }
        } else {
            (0, 0)
        };
        let rss = self.claim(&d, &selector, key).await?;
        let mut state = State {
            d,
            rss,
            new: None,
            surge,
            unavailable,
            key: key.to_string(),
        };
        if meta::deletion_timestamp(&state.d).is_some() {
            self.find_new(&mut state, false).await?;
            self.sync_status(&mut state).await?;
            return Ok(None);
        }
        self.check_paused(&mut state).await?;
        if state.d["spec"]["paused"] == true || self.is_scaling_event(&state) {
            return self.sync_scale(&mut state).await;
        }
        if state.is_recreate() {
            self.rollout_recreate(&mut state).await
        } else {
            self.rollout_rolling(&mut state).await
        }
    }

    /// Sets the Progressing condition to reflect a pause or a resume.
    async fn check_paused(&self, s: &mut State) -> Result<(), Error> {
        if !st::has_deadline(&s.d) {
            return Ok(());
        }
        let reason = st::get(&s.d["status"], PROGRESSING).map(|c| c["reason"].clone());
        if reason.as_ref().is_some_and(|r| r == st::TIMED_OUT) {
            return Ok(());
        }
        let paused_cond = reason.as_ref().is_some_and(|r| r == st::PAUSED);
        let paused = s.d["spec"]["paused"] == true;
        let now = meta::now_rfc3339();
        let cond = if paused && !paused_cond {
            st::condition(
                PROGRESSING,
                "Unknown",
                st::PAUSED,
                "Deployment is paused",
                &now,
            )
        } else if !paused && paused_cond {
            st::condition(
                PROGRESSING,
                "Unknown",
                st::RESUMED,
                "Deployment is resumed",
                &now,
            )
        } else {
            return Ok(());
        };
        st::set(&mut s.d["status"], cond);
        self.write_deployment_status(s).await
    }

    /// Whether `spec.replicas` changed since the Deployment last scaled its active ReplicaSets.
    fn is_scaling_event(&self, s: &State) -> bool {
        let want = replicas(&s.d);
        s.rss
            .iter()
            .filter(|rs| replicas(rs) > 0)
            .any(|rs| util::int_annotation(rs, util::DESIRED_REPLICAS).is_some_and(|d| d != want))
    }

    /// Scaling without rolling out (paused, or a resize): scale, clean up, status.
    async fn sync_scale(&self, s: &mut State) -> Result<Option<Duration>, Error> {
        self.find_new(s, false).await?;
        self.scale(s).await?;
        if s.d["spec"]["paused"] == true {
            self.cleanup(s).await?;
        }
        self.sync_status(s).await?;
        Ok(None)
    }

    /// Writes `s.d` (status and annotations) through the status subresource.
    pub(super) async fn write_deployment_status(&self, s: &mut State) -> Result<(), Error> {
        s.d = self
            .client
            .update_status(DEPLOYMENTS, &s.d)
            .await
            .map_err(s.api("update status"))?;
        Ok(())
    }
}
