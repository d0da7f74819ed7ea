//! A clock that is off: PgBouncer started with libfaketime preloaded, so only its own clock runs
//! ahead of the KDC's and PostgreSQL's (the machine's clock is untouched).

use anyhow::Result;

use crate::tools;

/// PgBouncer's environment for a clock `secs` ahead (negative: behind). Monotonic clocks stay
/// real, so PgBouncer's own timers (libevent) are not disturbed.
pub fn clock_offset_env(secs: i64) -> Result<Vec<(String, String)>> {
    Ok(vec![
        (
            "LD_PRELOAD".into(),
            tools::path("libfaketime")?.display().to_string(),
        ),
        ("FAKETIME".into(), format!("{secs:+}")),
        ("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()),
    ])
}

/// How far ahead of `now` PgBouncer's clock ran when it wrote the last line of `log` that carries
/// its time stamp (`2026-12-01 13:47:49.071 UTC [pid] ...`), in whole seconds; the proof that
/// the offset took effect in PgBouncer and not only in the scenario's text.
pub fn log_clock_ahead(log: &str, now: chrono::DateTime<chrono::Utc>) -> Option<i64> {
    let stamped = log.lines().rev().find_map(|l| {
        let stamp = l.get(..23)?;
        chrono::NaiveDateTime::parse_from_str(stamp, "%Y-%m-%d %H:%M:%S%.3f").ok()
    })?;
    Some((stamped.and_utc() - now).num_seconds())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offset_is_read_from_the_last_stamped_line() {
        let now = chrono::NaiveDateTime::parse_from_str("2026-12-01 13:37:50", "%Y-%m-%d %H:%M:%S")
            .unwrap()
            .and_utc();
        let log = "2026-12-01 13:47:49.071 UTC [1] LOG listening\n\
                   a line without a stamp\n";
        assert_eq!(log_clock_ahead(log, now), Some(599));
        assert_eq!(log_clock_ahead("no stamps\n", now), None);
    }
}
