//! One Deployment sync: claim ReplicaSets, find or create the new one, scale, clean up, status.

use std::time::Duration;

use k1s_apimachinery::meta;
use k1s_apimachinery::selector::label::LabelSelector;
use k1s_apimachinery::status::StatusError;
use serde_json::{Value, json};

use super::rolling::{proportional, resolve_fenceposts};
use super::status::{self as st, PROGRESSING};
use super::util::{self, REVISION, replicas, revision, status_count};
use super::{Controller, DEPLOYMENTS, Error};
use crate::replicaset::REPLICASETS;
use crate::replicaset::pods::{controlled_by, controller_ref_to};
use crate::runtime::key_of;

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

    fn api(&self, action: &'static str) -> impl FnOnce(StatusError) -> Error + '_ {
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

    /// The Deployment's ReplicaSets: owned ones that match, plus matching orphans it adopts;
    /// owned ones that stopped matching are released.
    async fn claim(
        &self,
        d: &Value,
        selector: &LabelSelector,
        key: &str,
    ) -> Result<Vec<Value>, Error> {
        let uid = meta::uid(d).unwrap_or_default();
        let deleting = meta::deletion_timestamp(d).is_some();
        let api = |action| {
            move |source| Error::Api {
                action,
                deployment: key.to_string(),
                source,
            }
        };
        let mut out = Vec::new();
        let mut may_adopt = None;
        for rs in self.rs.list(meta::namespace(d)) {
            match meta::controller_ref(&rs) {
                Some(_) if controlled_by(&rs, uid) => {
                    if selector.matches_object(&rs) {
                        out.push((*rs).clone());
                    } else if !deleting {
                        let mut copy = (*rs).clone();
                        let refs = meta::owner_references(&rs)
                            .into_iter()
                            .filter(|r| r.get("uid").and_then(Value::as_str) != Some(uid))
                            .map(|r| Value::Object(r.clone()))
                            .collect();
                        meta::set_owner_references(&mut copy, refs);
                        match self.client.update(REPLICASETS, &copy).await {
                            Ok(_) => {}
                            Err(e) if e.code == 404 => {}
                            Err(e) => return Err(api("release replica set")(e)),
                        }
                    }
                }
                Some(_) => {}
                None => {
                    if deleting
                        || meta::deletion_timestamp(&rs).is_some()
                        || !selector.matches_object(&rs)
                    {
                        continue;
                    }
                    if may_adopt.is_none() {
                        let fresh = self
                            .client
                            .get(
                                DEPLOYMENTS,
                                meta::namespace(d),
                                meta::name(d).unwrap_or_default(),
                            )
                            .await
                            .map_err(api("get"))?;
                        may_adopt = Some(fresh.is_some_and(|f| {
                            meta::uid(&f) == Some(uid) && meta::deletion_timestamp(&f).is_none()
                        }));
                    }
                    if may_adopt != Some(true) {
                        continue;
                    }
                    let mut copy = (*rs).clone();
                    let mut refs: Vec<Value> = meta::owner_references(&rs)
                        .into_iter()
                        .map(|r| Value::Object(r.clone()))
                        .collect();
                    refs.push(controller_ref_to(d, "apps/v1", "Deployment"));
                    meta::set_owner_references(&mut copy, refs);
                    match self.client.update(REPLICASETS, &copy).await {
                        Ok(adopted) => out.push(adopted),
                        Err(e) if e.code == 404 => {}
                        Err(e) => return Err(api("adopt replica set")(e)),
                    }
                }
            }
        }
        Ok(out)
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

    /// Finds the ReplicaSet running the current template and syncs its revision (creating it when
    /// `create`); records the result in `s.new`.
    pub(super) async fn find_new(&self, s: &mut State, create: bool) -> Result<(), Error> {
        let new_idx = util::find_new(&s.d, &s.rss);
        let max_old = (0..s.rss.len())
            .filter(|i| Some(*i) != new_idx)
            .map(|i| revision(&s.rss[i]))
            .max()
            .unwrap_or(0);
        let new_revision = max_old + 1;
        if let Some(i) = new_idx {
            s.new = Some(i);
            let mut rs = s.rss[i].clone();
            let mut changed =
                util::set_new_rs_annotations(&s.d, &mut rs, new_revision, true, s.surge);
            let min_ready = s.d["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
            if rs["spec"]["minReadySeconds"].as_i64().unwrap_or(0) != min_ready {
                rs["spec"]["minReadySeconds"] = json!(min_ready);
                changed = true;
            }
            if changed {
                s.rss[i] = self
                    .client
                    .update(REPLICASETS, &rs)
                    .await
                    .map_err(s.api("update replica set"))?;
            }
            let rev = meta::annotation(&s.rss[i], REVISION).map(str::to_string);
            let mut d_changed = false;
            if let Some(rev) = rev
                && meta::annotation(&s.d, REVISION) != Some(rev.as_str())
            {
                meta::set_annotation(&mut s.d, REVISION, Some(&rev));
                d_changed = true;
            }
            if st::has_deadline(&s.d) && st::get(&s.d["status"], PROGRESSING).is_none() {
                let msg = format!(
                    "Found new replica set {:?}",
                    meta::name(&s.rss[i]).unwrap_or_default()
                );
                let cond = st::condition(
                    PROGRESSING,
                    "True",
                    st::FOUND_NEW_RS,
                    &msg,
                    &meta::now_rfc3339(),
                );
                st::set(&mut s.d["status"], cond);
                d_changed = true;
            }
            if d_changed {
                self.write_deployment_status(s).await?;
            }
            return Ok(());
        }
        s.new = None;
        if !create {
            return Ok(());
        }
        let collision = s.d["status"]["collisionCount"].as_i64();
        let hash = util::template_hash(&s.d["spec"]["template"], collision);
        let name = format!("{}-{hash}", meta::name(&s.d).unwrap_or_default());
        let mut template = s.d["spec"]["template"].clone();
        template["metadata"]["labels"] =
            util::add_hash_label(template["metadata"].get("labels"), &hash);
        let mut selector = s.d["spec"]["selector"].clone();
        selector["matchLabels"] = util::add_hash_label(selector.get("matchLabels"), &hash);
        let want = replicas(&s.d);
        let initial = if s.is_recreate() {
            want
        } else {
            super::rolling::new_rs_replicas(want, s.surge, s.total_replicas(), 0)
        };
        let mut rs = json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {
                "name": name,
                "namespace": meta::namespace(&s.d).unwrap_or_default(),
                "labels": template["metadata"]["labels"].clone(),
                "ownerReferences": [controller_ref_to(&s.d, "apps/v1", "Deployment")],
            },
            "spec": {
                "replicas": initial,
                "minReadySeconds": s.d["spec"]["minReadySeconds"].as_i64().unwrap_or(0),
                "selector": selector,
                "template": template,
            },
        });
        util::set_new_rs_annotations(&s.d, &mut rs, new_revision, false, s.surge);
        let ns = meta::namespace(&s.d).map(str::to_string);
        match self.client.create(REPLICASETS, ns.as_deref(), &rs).await {
            Ok(created) => {
                s.rss.push(created);
                s.new = Some(s.rss.len() - 1);
                if initial > 0 {
                    let msg = format!("Scaled up replica set {name} from 0 to {initial}");
                    self.recorder.normal(&s.d, "ScalingReplicaSet", &msg);
                }
                meta::set_annotation(&mut s.d, REVISION, Some(&new_revision.to_string()));
                if st::has_deadline(&s.d) {
                    let msg = format!("Created new replica set {name:?}");
                    let cond = st::condition(
                        PROGRESSING,
                        "True",
                        st::NEW_RS_CREATED,
                        &msg,
                        &meta::now_rfc3339(),
                    );
                    st::set(&mut s.d["status"], cond);
                }
                self.write_deployment_status(s).await
            }
            Err(e) if e.code == 409 => {
                // Same name: ours with the same template (a stale cache) or a hash collision.
                let existing = self
                    .client
                    .get(REPLICASETS, ns.as_deref(), &name)
                    .await
                    .map_err(s.api("get replica set"))?;
                if let Some(existing) = existing
                    && controlled_by(&existing, meta::uid(&s.d).unwrap_or_default())
                    && util::templates_equal(
                        &existing["spec"]["template"],
                        &s.d["spec"]["template"],
                    )
                {
                    return Err(Error::Api {
                        action: "create replica set (cache behind)",
                        deployment: s.key.clone(),
                        source: e,
                    });
                }
                s.d["status"]["collisionCount"] = json!(collision.unwrap_or(0) + 1);
                self.write_deployment_status(s).await?;
                Err(Error::Invalid {
                    deployment: s.key.clone(),
                    message: format!(
                        "hash collision on replica set {name}; retrying with a new hash"
                    ),
                })
            }
            Err(e) => {
                if st::has_deadline(&s.d) {
                    let msg = format!("Failed to create new replica set {name:?}: {}", e.message);
                    let cond = st::condition(
                        PROGRESSING,
                        "False",
                        "ReplicaSetCreateError",
                        &msg,
                        &meta::now_rfc3339(),
                    );
                    st::set(&mut s.d["status"], cond);
                    let _ = self.write_deployment_status(s).await;
                }
                self.recorder.warning(
                    &s.d,
                    "FailedCreate",
                    &format!("Failed to create new replica set {name:?}: {}", e.message),
                );
                Err(Error::Api {
                    action: "create replica set",
                    deployment: s.key.clone(),
                    source: e,
                })
            }
        }
    }

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
    async fn scale(&self, s: &mut State) -> Result<(), Error> {
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

    /// Counters and `Available` only (no progress estimate), written if changed.
    async fn sync_status(&self, s: &mut State) -> Result<(), Error> {
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

    /// Writes `s.d` (status and annotations) through the status subresource.
    async fn write_deployment_status(&self, s: &mut State) -> Result<(), Error> {
        s.d = self
            .client
            .update_status(DEPLOYMENTS, &s.d)
            .await
            .map_err(s.api("update status"))?;
        Ok(())
    }
}
