//! Which ReplicaSets belong to a Deployment: owned ones that still match its selector, plus matching
//! orphans it adopts; owned ones that stopped matching are released.

use k1s_apimachinery::meta;
use k1s_apimachinery::selector::label::LabelSelector;
use serde_json::Value;

use super::{Controller, DEPLOYMENTS, Error};
use crate::replicaset::REPLICASETS;
use crate::replicaset::pods::{controlled_by, controller_ref_to};

impl Controller {
    /// The Deployment's ReplicaSets: owned ones that match, plus matching orphans it adopts;
    /// owned ones that stopped matching are released.
    pub(super) async fn claim(
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
}
