//! One ReplicaSet sync: claim pods, create or delete the difference, write status.

use std::sync::Arc;
use std::time::Duration;

use k1s_apimachinery::meta;
use k1s_apimachinery::selector::label::LabelSelector;
use k1s_apimachinery::status::StatusError;
use serde_json::Value;
use tokio::task::JoinSet;

use super::pods::{self, controlled_by, deletion_order, is_active, pod_from_template};
use super::{BURST, Controller, Error, PODS, REPLICASETS, status};
use crate::runtime::key_of;

impl Controller {
    /// Syncs the ReplicaSet at `key`; `Ok(Some(d))` asks to be synced again after `d`.
    pub(super) async fn sync(&self, key: &str) -> Result<Option<Duration>, Error> {
        let Some(rs) = self.rs.get(key) else {
            self.expectations.forget(key);
            return Ok(None);
        };
        let selector = match LabelSelector::from_metav1(&rs["spec"]["selector"]) {
            Ok(s) => s,
            Err(e) => {
                // Validation rejects such objects; nothing sensible to do but say so and wait
                // for a fix.
                tracing::warn!(key, error = %e, "replica set has an invalid selector");
                self.recorder
                    .warning(&rs, "InvalidSelector", &e.to_string());
                return Ok(None);
            }
        };
        let needs_sync = self.expectations.satisfied(key);
        let ns = meta::namespace(&rs).unwrap_or_default();
        let candidates: Vec<Arc<Value>> = self
            .index
            .candidates(meta::uid(&rs).unwrap_or_default(), ns)
            .iter()
            .filter_map(|k| self.pods.get(k))
            .filter(|p| is_active(p))
            .collect();
        let owned = self.claim(&rs, &selector, candidates).await?;
        let mut manage_err = None;
        if needs_sync && meta::deletion_timestamp(&rs).is_none() {
            manage_err = self.manage(&rs, key, &owned).await.err();
        }
        let failure = manage_err.as_ref().map(|e| {
            let Error::Api { action, source, .. } = e;
            let reason = if *action == "create pods" {
                "FailedCreate"
            } else {
                "FailedDelete"
            };
            (reason, source.message.clone())
        });
        let refs: Vec<&Value> = owned.iter().map(|p| p.as_ref()).collect();
        let now = jiff::Timestamp::now();
        let wanted = status::compute(
            &rs,
            &refs,
            failure.as_ref().map(|(r, m)| (*r, m.as_str())),
            now,
        );
        self.write_status(&rs, &wanted, &refs, failure.as_ref(), now)
            .await?;
        if let Some(e) = manage_err {
            return Err(e);
        }
        let replicas = rs["spec"]["replicas"].as_i64().unwrap_or(1);
        let min_ready = rs["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
        if min_ready > 0
            && wanted["readyReplicas"].as_i64() == Some(replicas)
            && wanted["availableReplicas"].as_i64() != Some(replicas)
        {
            return Ok(Some(Duration::from_secs(min_ready as u64)));
        }
        Ok(None)
    }

    /// Adopts matching orphans and releases owned pods that stopped matching; returns the pods the
    /// ReplicaSet owns and that match.
    async fn claim(
        &self,
        rs: &Value,
        selector: &LabelSelector,
        candidates: Vec<Arc<Value>>,
    ) -> Result<Vec<Arc<Value>>, Error> {
        let uid = meta::uid(rs).unwrap_or_default();
        let rs_key = key_of(rs);
        let deleting = meta::deletion_timestamp(rs).is_some();
        let mut owned = Vec::new();
        let mut may_adopt: Option<bool> = None;
        for pod in candidates {
            match meta::controller_ref(&pod) {
                Some(_) if controlled_by(&pod, uid) => {
                    if selector.matches_object(&pod) {
                        owned.push(pod);
                    } else if !deleting {
                        self.set_owner(&pod, None)
                            .await
                            .map_err(|source| Error::Api {
                                action: "release pod",
                                rs: rs_key.clone(),
                                source,
                            })?;
                    }
                }
                Some(_) => {}
                None => {
                    if deleting || selector.is_nothing() || !selector.matches_object(&pod) {
                        continue;
                    }
                    if may_adopt.is_none() {
                        // Recheck with a live read: a ReplicaSet deleted (or replaced under the same
                        // name) since the cache saw it must not adopt anything.
                        let (ns, name) = (meta::namespace(rs), meta::name(rs).unwrap_or_default());
                        let fresh =
                            self.client
                                .get(REPLICASETS, ns, name)
                                .await
                                .map_err(|source| Error::Api {
                                    action: "get",
                                    rs: rs_key.clone(),
                                    source,
                                })?;
                        may_adopt = Some(fresh.is_some_and(|f| {
                            meta::uid(&f) == Some(uid) && meta::deletion_timestamp(&f).is_none()
                        }));
                    }
                    if may_adopt != Some(true) {
                        continue;
                    }
                    match self.set_owner(&pod, Some(rs)).await {
                        Ok(Some(p)) => owned.push(Arc::new(p)),
                        Ok(None) => {}
                        Err(source) => {
                            return Err(Error::Api {
                                action: "adopt pod",
                                rs: rs_key,
                                source,
                            });
                        }
                    }
                }
            }
        }
        Ok(owned)
    }

    /// Makes `owner` the pod's controller (adopt) or removes the pod's controller reference
    /// (release). `Ok(None)` when the pod is gone. A merge patch of the ownerReferences pinned to
    /// the cached resourceVersion (409 when the pod changed meanwhile): the cached pod is a
    /// projection and must never be written back whole.
    async fn set_owner(
        &self,
        pod: &Value,
        owner: Option<&Value>,
    ) -> Result<Option<Value>, StatusError> {
        let mut refs: Vec<Value> = meta::owner_references(pod)
            .into_iter()
            .filter(|r| r.get("controller").and_then(Value::as_bool) != Some(true))
            .map(|r| Value::Object(r.clone()))
            .collect();
        if let Some(rs) = owner {
            refs.push(pods::controller_ref_to(rs, "apps/v1", "ReplicaSet"));
        }
        let refs = if refs.is_empty() {
            Value::Null
        } else {
            Value::Array(refs)
        };
        let patch = serde_json::json!({"metadata": {
            "ownerReferences": refs,
            "resourceVersion": pod["metadata"]["resourceVersion"],
        }});
        let (ns, name) = (
            meta::namespace(pod).unwrap_or_default(),
            meta::name(pod).unwrap_or_default(),
        );
        match self
            .client
            .merge_patch(PODS, Some(ns), name, None, &patch)
            .await
        {
            Ok(p) => Ok(Some(p)),
            Err(e) if e.code == 404 => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates or deletes pods so that `owned` reaches `spec.replicas`.
    async fn manage(&self, rs: &Value, key: &str, owned: &[Arc<Value>]) -> Result<(), Error> {
        let want = rs["spec"]["replicas"].as_i64().unwrap_or(1).max(0) as usize;
        let ns = meta::namespace(rs).unwrap_or_default().to_string();
        if owned.len() < want {
            let n = (want - owned.len()).min(BURST);
            self.expectations.expect_creations(key, n as i64);
            let pod = Arc::new(pod_from_template(rs));
            let mut issued = 0;
            for batch in pods::slow_start_batches(n, 1) {
                let mut set = JoinSet::new();
                for _ in 0..batch {
                    let (client, pod, ns) = (self.client.clone(), pod.clone(), ns.clone());
                    set.spawn(async move { client.create(PODS, Some(&ns), &pod).await });
                }
                issued += batch;
                let mut first_err = None;
                while let Some(r) = set.join_next().await {
                    let err = match r {
                        Ok(Ok(pod)) => {
                            let name = meta::name(&pod).unwrap_or_default();
                            self.recorder.normal(
                                rs,
                                "SuccessfulCreate",
                                &format!("Created pod: {name}"),
                            );
                            continue;
                        }
                        Ok(Err(e)) => e,
                        Err(e) => StatusError::internal(&e.to_string()),
                    };
                    // This create will never show up in the watch.
                    self.expectations.creation_observed(key);
                    if !namespace_terminating(&err) {
                        self.recorder.warning(
                            rs,
                            "FailedCreate",
                            &format!("Error creating: {}", err.message),
                        );
                        first_err.get_or_insert(err);
                    }
                }
                if let Some(source) = first_err {
                    // Batches not issued will not show up either.
                    for _ in issued..n {
                        self.expectations.creation_observed(key);
                    }
                    return Err(Error::Api {
                        action: "create pods",
                        rs: key.to_string(),
                        source,
                    });
                }
            }
        } else if owned.len() > want {
            let n = (owned.len() - want).min(BURST);
            let mut victims: Vec<Arc<Value>> = owned.to_vec();
            victims.sort_by(|a, b| deletion_order(a, b));
            victims.truncate(n);
            self.expectations
                .expect_deletions(key, victims.iter().map(|p| key_of(p)));
            let mut set = JoinSet::new();
            for pod in victims {
                let (client, ns) = (self.client.clone(), ns.clone());
                set.spawn(async move {
                    let name = meta::name(&pod).unwrap_or_default();
                    let r = client.delete(PODS, Some(&ns), name, None).await;
                    (key_of(&pod), r)
                });
            }
            let mut first_err = None;
            while let Some(r) = set.join_next().await {
                let Ok((pod_key, r)) = r else { continue };
                let name = crate::runtime::split_key(&pod_key).1;
                match r {
                    Ok(()) => self.recorder.normal(
                        rs,
                        "SuccessfulDelete",
                        &format!("Deleted pod: {name}"),
                    ),
                    Err(e) => {
                        self.expectations.deletion_observed(key, &pod_key);
                        self.recorder.warning(
                            rs,
                            "FailedDelete",
                            &format!("Error deleting pod {name}: {}", e.message),
                        );
                        first_err.get_or_insert(e);
                    }
                }
            }
            if let Some(source) = first_err {
                return Err(Error::Api {
                    action: "delete pods",
                    rs: key.to_string(),
                    source,
                });
            }
        }
        Ok(())
    }

    /// Writes `wanted` as the status of `rs` if it differs; on a conflict rereads and retries.
    async fn write_status(
        &self,
        rs: &Value,
        wanted: &Value,
        pods: &[&Value],
        failure: Option<&(&str, String)>,
        now: jiff::Timestamp,
    ) -> Result<(), Error> {
        let mut current = rs.clone();
        let mut wanted = wanted.clone();
        for _ in 0..3 {
            if !status::differs(&current["status"], &wanted) {
                return Ok(());
            }
            let mut obj = current.clone();
            obj["status"] = wanted.clone();
            match self.client.update_status(REPLICASETS, &obj).await {
                Ok(_) => return Ok(()),
                Err(e) if e.code == 404 => return Ok(()),
                Err(e) if e.code == 409 => {
                    let (ns, name) = (meta::namespace(rs), meta::name(rs).unwrap_or_default());
                    match self.client.get(REPLICASETS, ns, name).await {
                        Ok(Some(fresh)) if meta::uid(&fresh) == meta::uid(rs) => {
                            wanted = status::compute(
                                &fresh,
                                pods,
                                failure.map(|(r, m)| (*r, m.as_str())),
                                now,
                            );
                            current = fresh;
                        }
                        Ok(_) => return Ok(()),
                        Err(source) => {
                            return Err(Error::Api {
                                action: "get",
                                rs: key_of(rs),
                                source,
                            });
                        }
                    }
                }
                Err(source) => {
                    return Err(Error::Api {
                        action: "update status",
                        rs: key_of(rs),
                        source,
                    });
                }
            }
        }
        Err(Error::Api {
            action: "update status",
            rs: key_of(rs),
            source: StatusError::new(409, "Conflict", "status kept conflicting"),
        })
    }
}

/// Creating in a namespace being deleted fails; that is expected, not a controller error.
fn namespace_terminating(e: &StatusError) -> bool {
    e.code == 403 && e.message.contains("being terminated")
}
