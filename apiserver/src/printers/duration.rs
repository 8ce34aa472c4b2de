//! Upstream's `duration.HumanDuration`: the AGE format kubectl users know.
//!
//! Precision drops as the duration grows: seconds up to 2 minutes (`119s`), minutes and seconds
//! below 10 minutes (`3m2s`), minutes below 3 hours (`179m`), hours and minutes below 8 hours
//! (`7h59m`), hours below 2 days (`47h`), days and hours below 8 days (`7d23h`), days below 2
//! years (`729d`), years and days below 8 years (`7y364d`), then years. Up to one second in the
//! future still reads `0s` (clock skew); further is `<invalid>`.

use jiff::SignedDuration;

/// Formats `d` the way `k8s.io/apimachinery/pkg/util/duration.HumanDuration` does.
pub fn human_duration(d: SignedDuration) -> String {
    // Whole seconds, truncated toward zero like Go's int(d.Seconds()).
    let seconds = d.as_secs();
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: i64) -> SignedDuration {
        SignedDuration::from_secs(s)
    }

    #[test]
    fn worked_examples() {
        const M: i64 = 60;
        const H: i64 = 3600;
        const D: i64 = 24 * H;
        const Y: i64 = 365 * D;
        let cases = [
            (secs(-5), "<invalid>"),
            (SignedDuration::from_millis(-1500), "0s"),
            (secs(-1), "0s"),
            (secs(0), "0s"),
            (secs(5), "5s"),
            (secs(119), "119s"),
            (secs(2 * M), "2m"),
            (secs(3 * M + 2), "3m2s"),
            (secs(9 * M + 59), "9m59s"),
            (secs(10 * M), "10m"),
            (secs(179 * M + 59), "179m"),
            (secs(3 * H), "3h"),
            (secs(3 * H + 5 * M), "3h5m"),
            (secs(7 * H + 59 * M), "7h59m"),
            (secs(8 * H + 30 * M), "8h"),
            (secs(47 * H), "47h"),
            (secs(2 * D), "2d"),
            (secs(2 * D + 3 * H), "2d3h"),
            (secs(7 * D + 23 * H), "7d23h"),
            (secs(8 * D + 5 * H), "8d"),
            (secs(400 * D), "400d"),
            (secs(729 * D), "729d"),
            (secs(2 * Y), "2y"),
            (secs(3 * Y + 100 * D), "3y100d"),
            (secs(8 * Y + 100 * D), "8y"),
        ];
        for (d, want) in cases {
            assert_eq!(human_duration(d), want, "{d:?}");
        }
    }
}
