//! Pod termination: stop the containers with the grace period (each one's preStop hook first,
//! concurrently), remove every runtime object of the pod, then delete the API object with a UID
//! precondition.

use super::*;

/// Removes every container, the sandbox and the cgroups of pod `uid` (running containers are
/// killed). Blocking.
pub fn cleanup_pod(rt: &Runtime, uid: &str, cgroup_parents: &[String]) -> Result<(), String> {
    let conts = rt.containers.list().map_err(|e| e.to_string())?;
    for c in conts
        .iter()
        .filter(|c| parse_id(&c.id).is_some_and(|(u, _, _)| u == uid))
    {
        if c.phase == Phase::Running {
            let _ = rt.containers.stop(&c.id, 9, Duration::ZERO);
        }
        rt.containers.remove(&c.id).map_err(|e| e.to_string())?;
    }
    rt.sandboxes.remove(uid).map_err(|e| e.to_string())?;
    for p in cgroup_parents {
        cgroup::remove_pod(p).map_err(|e| e.to_string())?;
    }
    Ok(())
}

impl Worker {
    /// Stops the pod (SIGTERM, grace period, SIGKILL), removes its runtime objects, and deletes
    /// the API object. `true` when done.
    pub(super) async fn terminate(&mut self) -> bool {
        self.stop_probers(None);
        let grace = self.grace();
        let mut specs = self.specs("containers");
        specs.extend(self.specs("initContainers"));
        specs.extend(self.specs("ephemeralContainers"));
        let running: Vec<(String, String)> = self
            .conts
            .iter()
            .filter_map(|(n, k)| k.current.clone().map(|id| (n.clone(), id)))
            .collect();
        let mut stops = tokio::task::JoinSet::new();
        for (name, id) in running {
            let rt = self.runtime();
            let field = Some(format!("spec.containers{{{name}}}"));
            let status = {
                let rt = rt.clone();
                let id = id.clone();
                blocking(move || rt.containers.status(&id)).await
            };
            if matches!(status, Some(Ok(ref s)) if s.phase == Phase::Running) {
                self.event(
                    field,
                    "Normal",
                    "Killing",
                    format!("Stopping container {name}"),
                );
            }
            let spec = specs
                .iter()
                .find(|c| c["name"] == name.as_str())
                .cloned()
                .unwrap_or_default();
            stops.spawn(self.stop_of(&spec, &name, &id, grace).run());
        }
        while stops.join_next().await.is_some() {}
        let rt = self.runtime();
        let uid = self.uid.clone();
        let parents: Vec<String> = [
            QosClass::Guaranteed,
            QosClass::Burstable,
            QosClass::BestEffort,
        ]
        .iter()
        .map(|q| cgroup_parent(&self.ctx.config.cgroup_root, *q, &uid))
        .collect();
        let cleaned = blocking(move || cleanup_pod(&rt, &uid, &parents)).await;
        if let Some(Err(e)) = cleaned {
            tracing::warn!(pod = %self.key(), error = %e, "cleaning up the pod failed; retrying");
            self.wake_at(Instant::now() + RETRY);
            return false;
        }
        self.sandbox = None;
        if let Err(e) = self.teardown_volumes().await {
            tracing::warn!(pod = %self.key(), error = %e, "removing the pod's volumes failed; retrying");
            self.wake_at(Instant::now() + RETRY);
            return false;
        }
        if !self.deleted {
            let (ns, name) = self.ns_name();
            if let Err(e) = self.ctx.client.delete_pod_now(&ns, &name, &self.uid).await {
                tracing::warn!(pod = %self.key(), error = %e, "deleting the terminated pod failed; retrying");
                self.wake_at(Instant::now() + RETRY);
                return false;
            }
        }
        tracing::info!(pod = %self.key(), "pod terminated and removed");
        true
    }
}
