//! Rolling-update arithmetic as pure functions over replica counts.
//!
//! Worked example (10 replicas, maxSurge 25%, maxUnavailable 25%): surge rounds up to 3 and
//! unavailable rounds down to 2, so the rollout keeps between 8 available and 13 total pods. The new
//! ReplicaSet goes up to 3 at once (13 total); old ones go down by 2 + whatever the new ReplicaSet
//! already has available; and so on until the new one holds all 10.

/// A ReplicaSet as the arithmetic sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// `spec.replicas`.
    pub replicas: i32,
    /// `status.availableReplicas`.
    pub available: i32,
}

/// Resolves an int-or-percent value against `total`: an integer as is, `"N%"` scaled with rounding
/// up or down. Other strings are invalid (upstream's message).
pub fn scaled_value(v: &serde_json::Value, total: i32, round_up: bool) -> Result<i32, String> {
    if let Some(i) = v.as_i64() {
        return Ok(i as i32);
    }
    let s = v
        .as_str()
        .ok_or_else(|| format!("invalid value for IntOrString: {v}"))?;
    let pct = s
        .strip_suffix('%')
        .and_then(|p| p.parse::<i64>().ok())
        .ok_or_else(|| {
            format!(
                "invalid value for IntOrString: invalid type: string is not a percentage: {s:?}"
            )
        })?;
    let scaled = pct * i64::from(total);
    let v = if round_up {
        (scaled + 99).div_euclid(100)
    } else {
        scaled.div_euclid(100)
    };
    Ok(v as i32)
}

/// `(maxSurge, maxUnavailable)` for `desired` replicas: surge rounds up, unavailable rounds down,
/// and when both come out zero unavailable becomes 1 so the rollout can move at all.
pub fn resolve_fenceposts(
    max_surge: &serde_json::Value,
    max_unavailable: &serde_json::Value,
    desired: i32,
) -> Result<(i32, i32), String> {
    let surge = scaled_value(max_surge, desired, true)?;
    let unavailable = scaled_value(max_unavailable, desired, false)?;
    if surge == 0 && unavailable == 0 {
        return Ok((0, 1));
    }
    Ok((surge, unavailable))
}

/// Replicas the new ReplicaSet may have now: grow toward `desired` without the total of all
/// ReplicaSets (`total`, including the new one) exceeding `desired + max_surge`.
pub fn new_rs_replicas(desired: i32, max_surge: i32, total: i32, new_replicas: i32) -> i32 {
    let max_total = desired + max_surge;
    if total >= max_total {
        return new_replicas;
    }
    let up = (max_total - total).min(desired - new_replicas).max(0);
    new_replicas + up
}

/// How many old pods may go now without availability dropping below `desired - max_unavailable`,
/// counting the new ReplicaSet's not-yet-available pods as already unavailable.
pub fn max_scaled_down(desired: i32, max_unavailable: i32, total: i32, new: &Counts) -> i32 {
    let min_available = desired - max_unavailable;
    let new_unavailable = (new.replicas - new.available).max(0);
    total - min_available - new_unavailable
}

/// Scale-downs of unhealthy old pods first (old ReplicaSets oldest first): at most `max_cleanup`
/// pods, each ReplicaSet losing no more than its unavailable ones. Returns new replica counts.
pub fn cleanup_unhealthy(old: &[Counts], max_cleanup: i32) -> (Vec<i32>, i32) {
    let mut out: Vec<i32> = old.iter().map(|c| c.replicas).collect();
    let mut done = 0;
    for (i, c) in old.iter().enumerate() {
        if done >= max_cleanup {
            break;
        }
        if c.replicas == 0 {
            continue;
        }
        let unhealthy = (c.replicas - c.available).max(0);
        let n = (max_cleanup - done).min(unhealthy);
        out[i] = c.replicas - n;
        done += n;
    }
    (out, done)
}

/// Scale-downs of healthy old pods (old ReplicaSets oldest first) so that availability stays at or
/// above `min_available`, where `available` counts every ReplicaSet's available pods. Returns the new
/// replica counts and how many were removed.
pub fn scale_down_old(old: &[Counts], available: i32, min_available: i32) -> (Vec<i32>, i32) {
    let mut out: Vec<i32> = old.iter().map(|c| c.replicas).collect();
    if available <= min_available {
        return (out, 0);
    }
    let budget = available - min_available;
    let mut done = 0;
    for (i, c) in old.iter().enumerate() {
        if done >= budget {
            break;
        }
        if c.replicas == 0 {
            continue;
        }
        let n = c.replicas.min(budget - done);
        out[i] = c.replicas - n;
        done += n;
    }
    (out, done)
}

/// Proportional scaling of several active ReplicaSets when a Deployment is resized mid-rollout:
/// every ReplicaSet gets its share of `allowed - current`, the share measured against the size the
/// Deployment had when it last scaled it (`annotated_max`, else `fallback_max`); rounding leftovers
/// go to the first ReplicaSet. `rss` must already be in upstream order (larger first; newer first
/// when growing, older first when shrinking). Returns the new sizes.
pub fn proportional(
    rss: &[(i32, Option<i32>)],
    desired: i32,
    max_surge: i32,
    fallback_max: i32,
) -> Vec<i32> {
    let current: i32 = rss.iter().map(|r| r.0).sum();
    let allowed = if desired > 0 { desired + max_surge } else { 0 };
    let to_add = allowed - current;
    let mut added = 0;
    let mut out = Vec::with_capacity(rss.len());
    for &(size, annotated) in rss {
        if to_add == 0 || size == 0 || to_add == added {
            out.push(size);
            continue;
        }
        let fraction = if desired == 0 {
            -size
        } else {
            let base = annotated.unwrap_or(fallback_max);
            if base == 0 {
                0
            } else {
                let target = (f64::from(size) * f64::from(desired + max_surge) / f64::from(base))
                    .round() as i32;
                target - size
            }
        };
        let left = to_add - added;
        let p = if to_add > 0 {
            fraction.min(left)
        } else {
            fraction.max(left)
        };
        out.push(size + p);
        added += p;
    }
    if let Some(first) = out.first_mut() {
        *first = (*first + to_add - added).max(0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fenceposts() {
        // (maxSurge, maxUnavailable, desired) -> (surge, unavailable)
        let cases = [
            (json!("25%"), json!("25%"), 10, (3, 2)),
            (json!("25%"), json!("25%"), 4, (1, 1)),
            (json!("25%"), json!("25%"), 1, (1, 0)),
            (json!("39%"), json!("39%"), 10, (4, 3)),
            (json!("0%"), json!("0%"), 0, (0, 1)),
            (json!(0), json!(0), 5, (0, 1)),
            (json!(1), json!(0), 3, (1, 0)),
            (json!("50%"), json!(2), 3, (2, 2)),
            (json!("100%"), json!("100%"), 7, (7, 7)),
        ];
        for (surge, unav, desired, want) in cases {
            assert_eq!(
                resolve_fenceposts(&surge, &unav, desired).unwrap(),
                want,
                "{surge} {unav} {desired}"
            );
        }
        assert!(resolve_fenceposts(&json!("oops"), &json!(1), 3).is_err());
        assert!(resolve_fenceposts(&json!("55%"), &json!("urg"), 3).is_err());
        assert!(resolve_fenceposts(&json!("5"), &json!(1), 3).is_err());
    }

    #[test]
    fn new_replica_set_grows_within_surge() {
        // (desired, maxSurge, old replicas, new replicas) -> new replicas (upstream's examples)
        let cases = [
            (10, 0, 10, 0, 0),
            (10, 2, 10, 0, 2),
            (10, 2, 5, 0, 7),
            (10, 2, 10, 2, 2),
            (3, 1, 3, 0, 1),
            (3, 1, 2, 1, 2),
            (3, 1, 0, 3, 3),
        ];
        for (desired, surge, old, new, want) in cases {
            assert_eq!(new_rs_replicas(desired, surge, old + new, new), want);
        }
    }

    #[test]
    fn old_replica_sets_shrink_within_unavailability() {
        // (desired, maxSurge, maxUnavailable, old replicas, new replicas, old available,
        //  new available) -> old replicas afterwards. The first five are upstream's
        // reconcileOldReplicaSets examples (maxSurge 0, so maxUnavailable 0 resolves to 1).
        let cases = [
            (10, 0, 0, 10, 0, 10, 0, 9),
            (10, 0, 2, 10, 0, 10, 0, 8),
            (10, 0, 2, 10, 0, 8, 0, 8),
            (10, 0, 2, 10, 0, 9, 0, 8),
            (10, 0, 2, 8, 2, 8, 0, 8),
            // 3 replicas, maxSurge 1, maxUnavailable 0: one old pod goes per available new one.
            (3, 1, 0, 3, 1, 3, 1, 2),
            (3, 1, 0, 2, 2, 2, 1, 2),
            (3, 1, 0, 2, 2, 2, 2, 1),
        ];
        for (desired, surge, unav, old, new, old_avail, new_avail, want) in cases {
            let (_, unav) = resolve_fenceposts(&json!(surge), &json!(unav), desired).unwrap();
            let newc = Counts {
                replicas: new,
                available: new_avail,
            };
            let oldc = [Counts {
                replicas: old,
                available: old_avail,
            }];
            let max_down = max_scaled_down(desired, unav, old + new, &newc);
            let mut after = old;
            if max_down > 0 {
                let (cleaned, n) = cleanup_unhealthy(&oldc, max_down);
                let oldc = [Counts {
                    replicas: cleaned[0],
                    available: old_avail.min(cleaned[0]),
                }];
                let min_available = desired - unav;
                let available = (oldc[0].available + new_avail).min(min_available + max_down - n);
                after = scale_down_old(&oldc, available, min_available).0[0];
            }
            assert_eq!(
                after, want,
                "{desired} {surge} {unav} {old} {new} {old_avail} {new_avail}"
            );
        }
    }

    #[test]
    fn unhealthy_pods_go_first_up_to_the_limit() {
        // old replicas 10, 8 available: (max cleanup) -> cleaned up
        for (max, want) in [(1, 1), (3, 2), (0, 0)] {
            let (_, n) = cleanup_unhealthy(
                &[Counts {
                    replicas: 10,
                    available: 8,
                }],
                max,
            );
            assert_eq!(n, want);
        }
        let (_, n) = cleanup_unhealthy(
            &[Counts {
                replicas: 10,
                available: 10,
            }],
            3,
        );
        assert_eq!(n, 0);
    }

    #[test]
    fn healthy_old_pods_go_while_availability_allows() {
        // (desired, maxUnavailable, available, old replicas) -> old replicas afterwards; maxSurge 0
        // (upstream's scaleDownOldReplicaSetsForRollingUpdate examples)
        let cases = [
            (10, 0, 10, 10, 9),
            (10, 2, 10, 10, 8),
            (10, 2, 8, 10, 10),
            (10, 2, 10, 0, 0),
            (10, 2, 1, 10, 10),
        ];
        for (desired, unav, avail, old, want) in cases {
            let (_, unav) = resolve_fenceposts(&json!(0), &json!(unav), desired).unwrap();
            let c = [Counts {
                replicas: old,
                available: avail,
            }];
            let (out, _) = scale_down_old(&c, avail, desired - unav);
            assert_eq!(out[0], want, "{desired} {unav} {avail} {old}");
        }
    }

    #[test]
    fn proportional_scaling_splits_by_share() {
        // Mid-rollout 10 -> 20 with maxSurge 3: new 8, old 5 (both annotated with max 13).
        assert_eq!(
            proportional(&[(8, Some(13)), (5, Some(13))], 20, 3, 13),
            vec![14, 9]
        );
        // Scaling down 10 -> 5 (maxSurge 0): old-first order, larger first.
        assert_eq!(
            proportional(&[(6, Some(10)), (4, Some(10))], 5, 0, 10),
            vec![3, 2]
        );
        // To zero.
        assert_eq!(
            proportional(&[(6, Some(10)), (4, Some(10))], 0, 0, 10),
            vec![0, 0]
        );
        // Leftover from rounding goes to the first.
        assert_eq!(
            proportional(&[(1, Some(3)), (1, Some(3)), (1, Some(3))], 4, 0, 3),
            vec![2, 1, 1]
        );
    }
}
