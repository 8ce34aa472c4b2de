//! The worker's side of lifecycle hooks: postStart right after a start (the run is reported
//! Running only once it returned; a failure kills the run), and stopping a run with its preStop
//! hook first (pod deletion, failed liveness or startup probes, failed postStart).
//!
//! Invariants: a stop always ends in the runtime's SIGTERM-then-SIGKILL; after a preStop hook at
//! least [`MIN_GRACE`] is left for SIGTERM (upstream's minimum), so a hanging preStop never keeps a
//! container alive past its grace period plus that minimum.

use super::*;
use crate::hooks::{self, Hook};

/// What upstream leaves for SIGTERM after a preStop hook used up the grace period.
const MIN_GRACE: Duration = Duration::from_secs(2);
/// Bounds a postStart hook (upstream has none) so a hanging one cannot hold the worker forever.
const POST_START_LIMIT: Duration = Duration::from_secs(120);

/// Stops one container run: its preStop hook (events on failure), then SIGTERM, grace, SIGKILL.
pub(super) struct Stop {
    ctx: Arc<Ctx>,
    pod: Value,
    name: String,
    target: probe::Target,
    pre_stop: Option<Value>,
    grace: Duration,
}

impl Stop {
    /// Runs the stop to the container's exit (or the runtime's error).
    pub(super) async fn run(self) {
        let start = Instant::now();
        if let Some(h) = &self.pre_stop
            && let Err(e) = hooks::run(h, &self.target, self.grace).await
        {
            let field = format!("spec.containers{{{}}}", self.name);
            api::event(
                &self.ctx.client,
                &self.ctx.config.node_name,
                &self.pod,
                Some(&field),
                "Warning",
                Hook::PreStop.failed_reason(),
                e,
            );
        }
        // Without a hook the whole grace period is SIGTERM's, as given (0 included).
        let left = match &self.pre_stop {
            Some(_) => self.grace.saturating_sub(start.elapsed()).max(MIN_GRACE),
            None => self.grace,
        };
        let rt = self.ctx.runtime.clone();
        let id = self.target.container_id.clone();
        blocking(move || drop(rt.containers.stop(&id, SIGTERM, left))).await;
    }
}

impl Worker {
    /// The probe and hook target of run `id` of container `c`.
    pub(super) fn target(&self, c: &Value, id: &str) -> probe::Target {
        probe::Target {
            containers: self.ctx.runtime.containers.clone(),
            container_id: id.to_string(),
            container: c.clone(),
            // hostNetwork pods answer on the node's address.
            pod_ip: self
                .sandbox
                .as_ref()
                .and_then(|s| s.ip)
                .or(Some(self.ctx.host_ip)),
        }
    }

    /// A stop of run `id` of container `c` (`name`) with `grace`, preStop first if it has one.
    pub(super) fn stop_of(&self, c: &Value, name: &str, id: &str, grace: Duration) -> Stop {
        Stop {
            ctx: self.ctx.clone(),
            pod: self.pod.clone(),
            name: name.to_string(),
            target: self.target(c, id),
            pre_stop: hooks::handler(c, Hook::PreStop).cloned(),
            grace,
        }
    }

    /// The pod's grace period (the delete's when it is being deleted).
    pub(super) fn grace(&self) -> Duration {
        Duration::from_secs(
            self.pod["metadata"]["deletionGracePeriodSeconds"]
                .as_u64()
                .or_else(|| self.pod["spec"]["terminationGracePeriodSeconds"].as_u64())
                .unwrap_or(30),
        )
    }

    /// Runs container `c`'s postStart hook on the run `id` just started; `false` when it failed
    /// and the run is being killed (its exit then restarts it per policy).
    pub(super) async fn post_start(&mut self, c: &Value, name: &str, id: &str) -> bool {
        let Some(h) = hooks::handler(c, Hook::PostStart).cloned() else {
            return true;
        };
        let target = self.target(c, id);
        let Err(e) = hooks::run(&h, &target, POST_START_LIMIT).await else {
            return true;
        };
        let field = Some(format!("spec.containers{{{name}}}"));
        self.event(field.clone(), "Warning", Hook::PostStart.failed_reason(), e);
        self.event(
            field,
            "Normal",
            "Killing",
            format!("FailedPostStartHook: container {name} will be restarted"),
        );
        tokio::spawn(self.stop_of(c, name, id, self.grace()).run());
        false
    }
}
