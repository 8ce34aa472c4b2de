//! Images for a pod's containers: the pull policy (upstream's default by tag), pulls with the pod's
//! pull secrets and their events, and the pull back-off (`ErrImagePull`, then `ImagePullBackOff`).

use super::*;

/// `repo@<manifest digest>`, as runtimes report a container's imageID.
pub fn image_id(image: &Image) -> String {
    let r = image.reference.split('@').next().unwrap_or_default();
    let slash = r.rfind('/').map_or(0, |i| i + 1);
    let repo = match r[slash..].find(':') {
        Some(colon) => &r[..slash + colon],
        None => r,
    };
    format!("{repo}@{}", image.manifest_digest)
}

/// Upstream's default pull policy: `Always` for `:latest` or no tag, else `IfNotPresent`.
pub fn default_pull_policy(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    let slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[slash..].split_once(':') {
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

impl Worker {
    /// The image of `c` per its pull policy, or the waiting reason and message.
    pub(super) async fn ensure_image(
        &mut self,
        c: &Value,
        field: Option<String>,
    ) -> Result<Image, (String, String)> {
        let reference = c["image"].as_str().unwrap_or_default().to_string();
        let policy = c["imagePullPolicy"]
            .as_str()
            .unwrap_or_else(|| default_pull_policy(&reference))
            .to_string();
        if policy != "Always" {
            let rt = self.runtime();
            let r = reference.clone();
            if let Some(Ok(Some(image))) = blocking(move || rt.images.get(&r)).await {
                self.event(
                    field,
                    "Normal",
                    "Pulled",
                    format!("Container image \"{reference}\" already present on machine"),
                );
                return Ok(image);
            }
            if policy == "Never" {
                let msg = format!(
                    "Container image \"{reference}\" is not present with pull policy of Never"
                );
                self.event(field, "Warning", "ErrImageNeverPull", msg.clone());
                return Err(("ErrImageNeverPull".into(), msg));
            }
        }
        let now = Timestamp::now();
        if let Some((b, failed)) = self.pull_backoff.get(&reference)
            && let Some(until) = b.wait_until(*failed, now)
        {
            let msg = format!("Back-off pulling image \"{reference}\"");
            self.wake_at(Instant::now() + until.duration_since(now).unsigned_abs());
            self.event(field, "Normal", "BackOff", msg.clone());
            return Err(("ImagePullBackOff".into(), msg));
        }
        self.event(
            field.clone(),
            "Normal",
            "Pulling",
            format!("Pulling image \"{reference}\""),
        );
        let started = Instant::now();
        let auth = api::pull_auth(&self.ctx.client, &self.pod).await;
        match self.ctx.runtime.images.pull(&reference, &auth).await {
            Ok(image) => {
                let took = go_duration_fine(started.elapsed());
                self.pull_backoff.remove(&reference);
                self.event(
                    field,
                    "Normal",
                    "Pulled",
                    format!("Successfully pulled image \"{reference}\" in {took} ({took} including waiting). Image size: {} bytes.", image.size),
                );
                Ok(image)
            }
            Err(e) => {
                let msg = format!("Failed to pull image \"{reference}\": {e}");
                self.event(field.clone(), "Warning", "Failed", msg.clone());
                self.event(field, "Warning", "Failed", "Error: ErrImagePull".into());
                let entry = self.pull_backoff.entry(reference).or_default();
                entry.0.next(now);
                entry.1 = now;
                let delay = entry.0.delay();
                self.wake_at(Instant::now() + delay);
                Err(("ErrImagePull".into(), msg))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policy_defaults() {
        assert_eq!(default_pull_policy("busybox"), "Always");
        assert_eq!(default_pull_policy("busybox:latest"), "Always");
        assert_eq!(default_pull_policy("127.0.0.1:5000/busybox"), "Always");
        assert_eq!(
            default_pull_policy("127.0.0.1:5000/busybox:1.35"),
            "IfNotPresent"
        );
        assert_eq!(default_pull_policy("busybox@sha256:abc"), "IfNotPresent");
    }

    #[test]
    fn image_ids() {
        let image = Image {
            reference: "127.0.0.1:5000/k1s/busybox:1".into(),
            id: "sha256:c".into(),
            manifest_digest: "sha256:m".into(),
            config: Default::default(),
            layers: vec![],
            size: 0,
        };
        assert_eq!(image_id(&image), "127.0.0.1:5000/k1s/busybox@sha256:m");
    }
}
