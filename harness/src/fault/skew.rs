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
