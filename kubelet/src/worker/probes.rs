//! The worker's side of probes: starting and stopping a run's probers, their results (readiness
//! for the status, a failed liveness probe kills the run so it restarts per policy), Unhealthy events.

use super::*;

impl Worker {
    pub(super) fn unhealthy_event(&self, id: &str, message: String) {
        if let Some((_, name, _)) = parse_id(id) {
            let field = Some(format!("spec.containers{{{name}}}"));
            self.event(field, "Warning", "Unhealthy", message);
        }
    }

    pub(super) fn on_probe(
        &mut self,
        id: String,
        kind: probe::Kind,
        ok: bool,
        message: Option<String>,
    ) {
        if !self.probers.contains_key(&id) {
            return;
        }
        if let Some(m) = message {
            self.unhealthy_event(&id, m);
        }
        match kind {
            probe::Kind::Readiness => {
                self.readiness.insert(id, ok);
            }
            probe::Kind::Liveness if !ok => {
                self.unhealthy.insert(id);
            }
            probe::Kind::Liveness => {}
        }
    }

    /// Starts the probes container `c`'s run `id` asks for, once.
    pub(super) fn ensure_probers(&mut self, c: &Value, id: &str) {
        if self.probers.contains_key(id) {
            return;
        }
        let stop = self.shutdown.child_token();
        for kind in [probe::Kind::Readiness, probe::Kind::Liveness] {
            let spec = &c[kind.field()];
            if !spec.is_object() {
                continue;
            }
            let target = probe::Target {
                containers: self.ctx.runtime.containers.clone(),
                container_id: id.to_string(),
                container: c.clone(),
                // hostNetwork pods answer on the node's address.
                pod_ip: self
                    .sandbox
                    .as_ref()
                    .and_then(|s| s.ip)
                    .or(Some(self.ctx.host_ip)),
            };
            tokio::spawn(probe::run(
                kind,
                spec.clone(),
                target,
                self.tx.clone(),
                stop.clone(),
            ));
        }
        self.probers.insert(id.to_string(), stop);
    }

    /// Stops the probers of run `id` (all with `None`) and forgets their results.
    pub(super) fn stop_probers(&mut self, id: Option<&str>) {
        let ids: Vec<String> = match id {
            Some(id) => vec![id.to_string()],
            None => self.probers.keys().cloned().collect(),
        };
        for id in ids {
            if let Some(t) = self.probers.remove(&id) {
                t.cancel();
            }
            self.readiness.remove(&id);
            self.unhealthy.remove(&id);
        }
    }

    /// Stops a run whose liveness probe failed; its exit then restarts it per policy.
    pub(super) fn kill_unhealthy(&mut self, c: &Value, name: &str, id: &str) {
        if let Some(t) = self.probers.get(id) {
            t.cancel();
        }
        let field = Some(format!("spec.containers{{{name}}}"));
        self.event(
            field,
            "Normal",
            "Killing",
            format!("Container {name} failed liveness probe, will be restarted"),
        );
        let grace = c["livenessProbe"]["terminationGracePeriodSeconds"]
            .as_u64()
            .or_else(|| self.pod["spec"]["terminationGracePeriodSeconds"].as_u64())
            .unwrap_or(30);
        let rt = self.runtime();
        let id = id.to_string();
        // The exit reaches the worker through the exit watcher.
        tokio::task::spawn_blocking(move || {
            let _ = rt.containers.stop(&id, SIGTERM, Duration::from_secs(grace));
        });
    }
}
