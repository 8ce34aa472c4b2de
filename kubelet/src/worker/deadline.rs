//! `activeDeadlineSeconds`: once a pod has been active on the node (since its `startTime`) for
//! longer, the worker records a `DeadlineExceeded` event, stops every container with the grace
//! period and never starts one again; the pod is `Failed` with reason `DeadlineExceeded`, as
//! upstream's kubelet reports it.
//!
//! Invariant: a pod without the field, or with an unparseable start time, never expires.

use super::*;

/// When `pod` (started at `start_time`) passes its deadline, if it has one.
pub fn deadline(pod: &Value, start_time: &str) -> Option<Timestamp> {
    let secs = pod["spec"]["activeDeadlineSeconds"].as_i64()?;
    let start: Timestamp = start_time.parse().ok()?;
    start
        .checked_add(jiff::SignedDuration::from_secs(secs))
        .ok()
}

impl Worker {
    /// `true` when the pod is past its deadline (its containers then are being stopped);
    /// otherwise arms a wake-up for the deadline.
    pub(super) fn check_deadline(&mut self) -> bool {
        if !self.deadline_exceeded {
            let Some(at) = deadline(&self.pod, &self.start_time) else {
                return false;
            };
            let now = Timestamp::now();
            if now < at {
                let left = at.duration_since(now).unsigned_abs();
                self.wake_at(Instant::now() + left);
                return false;
            }
            self.deadline_exceeded = true;
            self.event(
                None,
                "Normal",
                status::DEADLINE_REASON,
                status::DEADLINE_MESSAGE.to_string(),
            );
            self.stop_probers(None);
            let grace = self.pod["spec"]["terminationGracePeriodSeconds"]
                .as_u64()
                .unwrap_or(30);
            let ids: Vec<String> = self
                .conts
                .values()
                .filter_map(|k| k.current.clone())
                .collect();
            for id in &ids {
                self.watch_exit(id);
            }
            let rt = self.runtime();
            // Once, at the transition; the exits wake the worker to report them.
            tokio::task::spawn_blocking(move || {
                for id in ids {
                    let _ = rt.containers.stop(&id, SIGTERM, Duration::from_secs(grace));
                }
            });
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines() {
        let pod = json!({"spec": {"activeDeadlineSeconds": 30}});
        assert_eq!(
            deadline(&pod, "2026-01-01T00:00:00Z").unwrap().to_string(),
            "2026-01-01T00:00:30Z"
        );
        assert!(deadline(&json!({}), "2026-01-01T00:00:00Z").is_none());
        assert!(deadline(&pod, "garbage").is_none());
    }
}
