//! The pod status the worker writes: the runtime's view of every container run turned into
//! [`ContainerView`]s, then [`crate::status::pod_status`], merge-patched only when it changed.

use super::*;

impl Worker {
    /// The current view of the containers of `field` (`containers`, `initContainers` or
    /// `ephemeralContainers`).
    /// `default_reason`: the waiting reason of a container not created yet.
    pub(super) async fn view(&self, field: &str, default_reason: &str) -> Vec<ContainerView> {
        let init = field == "initContainers";
        // Upstream reports an ephemeral container never ready.
        let ephemeral = field == "ephemeralContainers";
        let specs = self.specs(field);
        if specs.is_empty() {
            // Most pods have no init or ephemeral containers: no runtime call to make.
            return Vec::new();
        }
        let ids: Vec<Option<String>> = specs
            .iter()
            .map(|c| {
                self.conts
                    .get(c["name"].as_str().unwrap_or_default())
                    .and_then(|k| k.current.clone())
            })
            .collect();
        let rt = self.runtime();
        let statuses = blocking(move || {
            ids.iter()
                .map(|id| id.as_ref().and_then(|id| rt.containers.status(id).ok()))
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        specs
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let name = c["name"].as_str().unwrap_or_default();
                let cont = self.conts.get(name);
                let st = statuses.get(i).cloned().flatten();
                let state = match (&st, cont.and_then(|k| k.waiting.clone())) {
                    (Some(st), _) if st.phase == Phase::Running => State::Running {
                        started_at: st
                            .started_at
                            .clone()
                            .unwrap_or_else(|| st.created_at.clone()),
                    },
                    (_, Some((reason, message))) => State::Waiting { reason, message },
                    (Some(st), None) if matches!(st.phase, Phase::Exited | Phase::Unknown) => {
                        State::Terminated(terminated(st))
                    }
                    _ => State::Waiting {
                        reason: default_reason.into(),
                        message: None,
                    },
                };
                let ready = match &state {
                    _ if ephemeral => false,
                    State::Running { .. } if init => true,
                    State::Running { .. } => st.as_ref().is_some_and(|s| {
                        !self.starting(c, &s.id)
                            && self
                                .readiness
                                .get(&s.id)
                                .copied()
                                .unwrap_or(!c["readinessProbe"].is_object())
                    }),
                    State::Terminated(t) => init && t.exit_code == 0,
                    State::Waiting { .. } => false,
                };
                let started = matches!(state, State::Running { .. })
                    && st.as_ref().is_some_and(|s| !self.starting(c, &s.id));
                ContainerView {
                    ready,
                    started,
                    name: name.to_string(),
                    image: c["image"].as_str().unwrap_or_default().to_string(),
                    image_id: cont.map(|k| k.image_id.clone()).unwrap_or_default(),
                    container_id: st.as_ref().map(|s| format!("k1s://{}", s.id)),
                    state,
                    last: cont.and_then(|k| k.last.clone()),
                    restart_count: cont.map_or(0, |k| k.attempt),
                }
            })
            .collect()
    }

    pub(super) async fn write_status(&mut self) {
        // A waiting reason only holds until the next sync decides again.
        let init_containers = self.view("initContainers", "PodInitializing").await;
        let incomplete: Vec<&str> = init_containers
            .iter()
            .filter(|c| !c.ready)
            .map(|c| c.name.as_str())
            .collect();
        let init_pending = (!incomplete.is_empty()).then(|| {
            format!(
                "containers with incomplete status: [{}]",
                incomplete.join(" ")
            )
        });
        let default_reason = if init_pending.is_some() {
            "PodInitializing"
        } else {
            "ContainerCreating"
        };
        let containers = self.view("containers", default_reason).await;
        let ephemeral = self.view("ephemeralContainers", "ContainerCreating").await;
        for k in self.conts.values_mut() {
            k.waiting = None;
        }
        let view = PodView {
            sandbox_ready: self.sandbox.is_some(),
            // hostNetwork pods have the node's address.
            pod_ip: match self.sandbox.as_ref() {
                Some(sb) if self.pod["spec"]["hostNetwork"] == true => {
                    Some(sb.ip.unwrap_or(self.ctx.host_ip).to_string())
                }
                sb => sb.and_then(|s| s.ip).map(|ip| ip.to_string()),
            },
            host_ip: self.ctx.host_ip.to_string(),
            start_time: self.start_time.clone(),
            qos: self.qos().as_str(),
            containers,
            init_containers,
            ephemeral,
            init_pending,
            init_failed: self.init_failed,
            deadline_exceeded: self.deadline_exceeded,
        };
        let status = status::pod_status(&self.pod, &view, &now_rfc3339());
        if self.last_status.as_ref() == Some(&status) {
            return;
        }
        let (ns, name) = self.ns_name();
        match self
            .ctx
            .client
            .merge_patch(
                PODS,
                Some(&ns),
                &name,
                Some("status"),
                &json!({"status": status}),
            )
            .await
        {
            Ok(p) => {
                self.pod["status"] = p["status"].clone();
                self.last_status = Some(status);
            }
            Err(e) if e.code == 404 => self.deleted = true,
            Err(e) => {
                tracing::warn!(pod = %self.key(), error = %e.message, "writing pod status failed; retrying");
                self.wake_at(Instant::now() + RETRY);
            }
        }
    }
}
