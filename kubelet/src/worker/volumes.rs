//! The worker's volume side: set up the pod's volumes before its containers start (a
//! `FailedMount` event and a retry while a referenced ConfigMap or Secret is missing), mount
//! them per `volumeMounts`, and keep projected content current while the pod runs.
//!
//! Updates: a projector task per pod with configMap, secret, downwardAPI or projected volumes
//! re-reads the referenced objects every [`PROJECT_PERIOD`] (and on pod updates, for downward
//! API labels and annotations) and re-projects through the atomic writer, which writes nothing
//! when nothing changed. Containers see updates through their bind mount of the volume
//! directory; a `subPath` mount pins the file it resolved at start, as upstream (no updates).
//!
//! Invariants: the projector never creates volumes that `setup` has not created first (it runs
//! only after a successful set-up) and ends with the pod's worker (its token is cancelled before
//! teardown), so it cannot recreate a removed pod directory.

use std::time::Duration;

use k1s_runtime::container::Mount;
use tokio::sync::watch;

use super::*;
use crate::volumes::{self, Sources};

/// How often projected volumes are refreshed (upstream: the kubelet's sync period, ~1 min;
/// k1s is faster because the reads are in-process).
pub const PROJECT_PERIOD: Duration = Duration::from_secs(3);

/// The projector of one pod.
pub(super) struct Projector {
    pod: watch::Sender<Value>,
    stop: CancellationToken,
    /// Held around each re-projection, so teardown can wait for one in flight.
    busy: Arc<tokio::sync::Mutex<()>>,
}

impl Drop for Projector {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The referenced ConfigMaps and Secrets of `pod`, read through the in-process client.
async fn fetch_sources(ctx: &Ctx, pod: &Value) -> Sources {
    let ns = pod["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default")
        .to_string();
    let (cms, secrets) = volumes::project::referenced(pod);
    let (configmaps, secrets) = api::fetch_config(&ctx.client, &ns, cms, secrets).await;
    Sources {
        configmaps,
        secrets,
        allocatable: ctx.allocatable,
        tokens: ctx.tokens.tokens(&ctx.client, pod).await,
    }
}

fn has_projected(pod: &Value) -> bool {
    pod["spec"]["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|v| {
            ["configMap", "secret", "downwardAPI", "projected"]
                .iter()
                .any(|k| v[*k].is_object())
        })
}

async fn project_loop(
    ctx: Arc<Ctx>,
    mut pod: watch::Receiver<Value>,
    stop: CancellationToken,
    busy: Arc<tokio::sync::Mutex<()>>,
) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(PROJECT_PERIOD) => {}
            changed = pod.changed() => if changed.is_err() { return },
        }
        let current = pod.borrow_and_update().clone();
        let sources = fetch_sources(&ctx, &current).await;
        let _busy = busy.lock().await;
        if stop.is_cancelled() {
            return;
        }
        let uid = current["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let dir = volumes::pod_dir(&ctx.config.runtime_root, &uid);
        let done = blocking(move || volumes::setup(&dir, &current, &sources)).await;
        if let Some(Err(e)) = done {
            // Upstream keeps the last content and retries at the next sync.
            tracing::debug!(pod_uid = %uid, error = %e, "re-projecting volumes failed");
        }
    }
}

impl Worker {
    fn pod_dir(&self) -> std::path::PathBuf {
        volumes::pod_dir(&self.ctx.config.runtime_root, &self.uid)
    }

    /// Sets the pod's volumes up (once; re-projection is the projector's job); `false` if they
    /// are not ready and no container may start yet.
    pub(super) async fn sync_volumes(&mut self) -> bool {
        if let Some(p) = &self.projector {
            p.pod.send_if_modified(|old| {
                // Only labels and annotations reach projected files (the downward API).
                let (o, n) = (&old["metadata"], &self.pod["metadata"]);
                let changed = o["labels"] != n["labels"] || o["annotations"] != n["annotations"];
                if changed {
                    *old = self.pod.clone();
                }
                changed
            });
        }
        if self.volumes.is_some() {
            return true;
        }
        let sources = fetch_sources(&self.ctx, &self.pod).await;
        let dir = self.pod_dir();
        let pod = self.pod.clone();
        match blocking(move || volumes::setup(&dir, &pod, &sources)).await {
            Some(Ok(v)) => {
                self.volumes = Some(v);
                if has_projected(&self.pod) && self.projector.is_none() {
                    let (tx, rx) = watch::channel(self.pod.clone());
                    let stop = self.shutdown.child_token();
                    let busy = Arc::new(tokio::sync::Mutex::new(()));
                    tokio::spawn(project_loop(
                        self.ctx.clone(),
                        rx,
                        stop.clone(),
                        busy.clone(),
                    ));
                    self.projector = Some(Projector {
                        pod: tx,
                        stop,
                        busy,
                    });
                }
                true
            }
            Some(Err(e)) => {
                self.event(
                    None,
                    "Warning",
                    "FailedMount",
                    format!("MountVolume.SetUp failed: {e}"),
                );
                self.wake_at(Instant::now() + CONFIG_RETRY);
                false
            }
            None => false,
        }
    }

    /// Container `c`'s bind mounts (blocking work off the worker).
    pub(super) async fn container_mounts(&self, c: &Value) -> Result<Vec<Mount>, String> {
        let Some(vols) = self.volumes.clone() else {
            return Ok(Vec::new());
        };
        let c = c.clone();
        blocking(move || volumes::mounts(&c, &vols).map_err(|e| e.to_string()))
            .await
            .unwrap_or_else(|| Err("volume mount task failed".into()))
    }

    /// Stops re-projection and removes the pod's volumes (tmpfs unmounted).
    pub(super) async fn teardown_volumes(&mut self) -> Result<(), String> {
        if let Some(p) = self.projector.take() {
            p.stop.cancel();
            // A re-projection in flight finishes before the directory goes.
            let _done = p.busy.lock().await;
        }
        self.volumes = None;
        let dir = self.pod_dir();
        blocking(move || volumes::teardown(&dir).map_err(|e| e.to_string()))
            .await
            .unwrap_or_else(|| Err("volume teardown task failed".into()))
    }
}
