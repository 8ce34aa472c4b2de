//! Upstream's crash-loop back-off: the first restart is immediate, then a failed container waits
//! 10 s, doubling to 5 min; an entry untouched for 10 min (a container that ran that long) starts
//! over. Times are wall-clock (the runtime's `finishedAt`), so the rule survives a k1s restart.

use std::time::Duration;

use jiff::Timestamp;

pub const INITIAL: Duration = Duration::from_secs(10);
pub const MAX: Duration = Duration::from_secs(300);
/// Upstream forgets an entry after twice the maximum.
pub const RESET_AFTER: Duration = Duration::from_secs(600);

/// One container's (or image's) back-off.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backoff {
    /// The current delay, `None` before the first failure.
    delay: Option<Duration>,
    updated: Option<Timestamp>,
}

impl Backoff {
    /// The current delay (for messages such as `back-off 20s restarting ...`).
    pub fn delay(&self) -> Duration {
        self.delay.unwrap_or(INITIAL)
    }

    fn expired(&self, now: Timestamp) -> bool {
        self.updated
            .is_some_and(|u| now.duration_since(u).unsigned_abs() > RESET_AFTER)
    }

    /// When a failure at `event` may be retried; `None` when it may be retried now.
    pub fn wait_until(&self, event: Timestamp, now: Timestamp) -> Option<Timestamp> {
        let delay = self.delay.filter(|_| !self.expired(now))?;
        let until = event + delay;
        (until > now).then_some(until)
    }

    /// Records a retry at `now`: the next delay doubles (10 s first), capped at [`MAX`].
    pub fn next(&mut self, now: Timestamp) {
        self.delay = match self.delay {
            Some(d) if !self.expired(now) => Some((d * 2).min(MAX)),
            _ => Some(INITIAL),
        };
        self.updated = Some(now);
    }
}

/// `10s`, `2m40s`, `5m0s`: Go's `Duration.String` for whole seconds.
pub fn go_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m{}s", s / 60, s % 60)
    } else {
        format!("{}h{}m{}s", s / 3600, (s % 3600) / 60, s % 60)
    }
}

/// Go's `Duration.String` with fractions, for pull times (`1.234s`, `56ms`).
pub fn go_duration_fine(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{}µs", d.as_micros())
    } else if d < Duration::from_secs(1) {
        let ms = d.as_secs_f64() * 1000.0;
        format!("{}ms", trim(format!("{ms:.3}")))
    } else if d < Duration::from_secs(60) {
        format!("{}s", trim(format!("{:.3}", d.as_secs_f64())))
    } else {
        go_duration(d)
    }
}

fn trim(s: String) -> String {
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    #[test]
    fn first_restart_immediate_then_doubling_to_five_minutes() {
        let mut b = Backoff::default();
        assert_eq!(b.wait_until(t(0), t(0)), None);
        b.next(t(0));
        // Crashed again at 1 s: wait until 11 s.
        assert_eq!(b.wait_until(t(1), t(2)), Some(t(11)));
        assert_eq!(b.wait_until(t(1), t(11)), None);
        let mut delays = Vec::new();
        for i in 0..8 {
            b.next(t(12 + i));
            delays.push(b.delay().as_secs());
        }
        assert_eq!(delays, [20, 40, 80, 160, 300, 300, 300, 300]);
    }

    #[test]
    fn resets_after_ten_minutes() {
        let mut b = Backoff::default();
        b.next(t(0));
        b.next(t(1));
        assert_eq!(b.delay(), Duration::from_secs(20));
        // Ran for 11 minutes, then failed: no wait, and the next delay starts at 10 s again.
        assert_eq!(b.wait_until(t(661), t(661)), None);
        b.next(t(661));
        assert_eq!(b.delay(), INITIAL);
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(Duration::from_secs(10)), "10s");
        assert_eq!(go_duration(Duration::from_secs(160)), "2m40s");
        assert_eq!(go_duration(Duration::from_secs(300)), "5m0s");
        assert_eq!(go_duration_fine(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration_fine(Duration::from_micros(56_700)), "56.7ms");
    }
}
