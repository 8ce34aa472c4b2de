//! The ReplicaSet running a Deployment's current template: found by template (ignoring the
//! pod-template-hash label) or created as `<deployment>-<hash>`, and given the next revision.

use k1s_apimachinery::meta;
use serde_json::json;

use super::status::{self as st, PROGRESSING};
use super::sync::State;
use super::util::{self, REVISION, replicas, revision};
use super::{Controller, Error};
use crate::replicaset::REPLICASETS;
use crate::replicaset::pods::{controlled_by, controller_ref_to};

impl Controller {
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
}
