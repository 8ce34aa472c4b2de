//! The worker's side of probes: starting and stopping a run's probers, their results (readiness
//! for the status, a failed liveness or startup probe kills the run so it restarts per policy),
//! Unhealthy events. A run with a startup probe gets only that prober until it succeeds; its
//! readiness and liveness probers start then, as upstream.

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
            probe::Kind::Startup if ok => {
                // The next sync starts readiness and liveness in its place.
                if let Some(t) = self.probers.remove(&id) {
                    t.cancel();
                }
                self.started.insert(id);
            }
            probe::Kind::Liveness | probe::Kind::Startup if !ok => {
                self.unhealthy.insert(id, kind);
            }
            probe::Kind::Liveness | probe::Kind::Startup => {}
        }
    }

    /// Starts the probes container `c`'s run `id` asks for, once.
    pub(super) fn ensure_probers(&mut self, c: &Value, id: &str) {
        if self.probers.contains_key(id) {
            return;
        }
        let stop = self.shutdown.child_token();
        let kinds: &[probe::Kind] = if self.starting(c, id) {
            &[probe::Kind::Startup]
        } else {
            &[probe::Kind::Readiness, probe::Kind::Liveness]
        };
        for &kind in kinds {
            let spec = &c[kind.field()];
            if !spec.is_object() {
                continue;
            }
            let target = self.target(c, id);
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
            self.started.remove(&id);
        }
    }

    /// Whether run `id` of container `c` still waits for its startup probe.
    pub(super) fn starting(&self, c: &Value, id: &str) -> bool {
        c[probe::Kind::Startup.field()].is_object() && !self.started.contains(id)
    }

    /// Stops a run whose liveness or startup probe failed (preStop first); its exit then
    /// restarts it per policy.
    pub(super) fn kill_unhealthy(&mut self, c: &Value, name: &str, id: &str, kind: probe::Kind) {
        if let Some(t) = self.probers.get(id) {
            t.cancel();
        }
        let field = Some(format!("spec.containers{{{name}}}"));
        self.event(
            field,
            "Normal",
            "Killing",
            format!(
                "Container {name} failed {} probe, will be restarted",
                kind.word().to_lowercase()
            ),
        );
        let grace = c[kind.field()]["terminationGracePeriodSeconds"]
            .as_u64()
            .or_else(|| self.pod["spec"]["terminationGracePeriodSeconds"].as_u64())
            .unwrap_or(30);
        // The exit reaches the worker through the exit watcher.
        tokio::spawn(self.stop_of(c, name, id, Duration::from_secs(grace)).run());
    }
}
