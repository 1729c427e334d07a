//! Time to revoke: for each offboarding, when the change was first seen (a notification's
//! arrival, or the start of the run that found it), when the run decided, and when access
//! ended; and the tenant's p50/p95 of "seen → access ended". Pure; `service` words it for
//! the page.

use crate::users::store::Offboarding;

/// How far back the Reconciliation page looks.
pub const WINDOW_SECS: i64 = 30 * 86_400;

/// "Seen → access ended" over `count` offboardings, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Percentiles {
    pub p50: i64,
    pub p95: i64,
    pub count: usize,
}

/// p50 and p95 of "seen → access ended" over the offboardings whose access has ended.
pub fn percentiles(offboardings: &[Offboarding]) -> Option<Percentiles> {
    let mut took: Vec<i64> = offboardings
        .iter()
        .filter_map(|o| Some((o.access_ended_at? - o.seen_at).max(0)))
        .collect();
    took.sort_unstable();
    Some(Percentiles {
        p50: nearest_rank(&took, 50)?,
        p95: nearest_rank(&took, 95)?,
        count: took.len(),
    })
}

/// How long after the change was first seen `at` came: "+4 s".
pub fn after_seen(o: &Offboarding, at: i64) -> String {
    format!("+{}", duration((at - o.seen_at).max(0)))
}

/// The nearest-rank percentile of sorted values: the smallest value with at least `p` % of
/// the values at or below it.
fn nearest_rank(sorted: &[i64], p: usize) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

/// "4 s", "3 min 20 s", "2 h 5 min", "1 d 3 h".
pub fn duration(secs: i64) -> String {
    let (d, h, m, s) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s} s"),
        (0, 0, _) if s == 0 => format!("{m} min"),
        (0, 0, _) => format!("{m} min {s} s"),
        (0, _, 0) => format!("{h} h"),
        (0, _, _) => format!("{h} h {m} min"),
        (_, 0, _) => format!("{d} d"),
        _ => format!("{d} d {h} h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offboarding(seen: i64, ended: Option<i64>) -> Offboarding {
        Offboarding {
            id: crate::domain::UserId::from_outside("u1"),
            username: "msp-alex".into(),
            email: "alex@contoso.com".into(),
            reason: Some("hard_deleted".into()),
            group_name: None,
            seen_at: seen,
            decided_at: seen + 1,
            access_ended_at: ended,
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<i64> = (1..=20).collect();
        assert_eq!(nearest_rank(&values, 50), Some(10));
        assert_eq!(nearest_rank(&values, 95), Some(19));
        assert_eq!(nearest_rank(&[7], 95), Some(7));
        assert_eq!(nearest_rank(&[], 50), None);
    }

    #[test]
    fn only_ended_offboardings_count() {
        let all = [
            offboarding(100, Some(103)),
            offboarding(100, Some(160)),
            offboarding(100, None),
        ];
        let t = percentiles(&all).unwrap();
        assert_eq!((t.p50, t.p95, t.count), (3, 60, 2));
        assert_eq!(percentiles(&[offboarding(100, None)]), None);
    }

    #[test]
    fn times_count_from_first_sight() {
        let o = offboarding(1_000, Some(1_004));
        assert_eq!(after_seen(&o, o.decided_at), "+1 s");
        assert_eq!(after_seen(&o, 1_004), "+4 s");
        assert_eq!(after_seen(&o, 990), "+0 s");
    }

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(duration(4), "4 s");
        assert_eq!(duration(200), "3 min 20 s");
        assert_eq!(duration(240), "4 min");
        assert_eq!(duration(7_500), "2 h 5 min");
        assert_eq!(duration(7_200), "2 h");
        assert_eq!(duration(97_200), "1 d 3 h");
        assert_eq!(duration(86_400), "1 d");
    }
}
