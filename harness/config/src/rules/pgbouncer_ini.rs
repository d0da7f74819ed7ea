//! `extraIni`: whole lines appended at the end of `[pgbouncer]`.

use super::catalog::*;
use super::{View, EXTRA_INI};
use crate::finding::Sink;
use crate::ini::{self, IniLine};

pub(super) fn check(sink: &mut Sink, v: &View) {
    let Some(text) =
        v.d.pgbouncer_config
            .as_ref()
            .and_then(|p| p.extra_ini.as_deref())
    else {
        return;
    };
    for (n, line) in ini::parse_lines(text) {
        match line {
            IniLine::Blank | IniLine::Comment => {}
            IniLine::Section(s) => sink.add(
                &EXTRA_INI_SYNTAX,
                EXTRA_INI,
                format!("line {n} opens section `[{s}]`; everything after it leaves `[pgbouncer]`"),
            ),
            IniLine::Invalid(s) => sink.add(
                &EXTRA_INI_SYNTAX,
                EXTRA_INI,
                format!("line {n} `{s}` is not `key = value`"),
            ),
            IniLine::Setting { key, .. } => {
                if ini::CHART_PGBOUNCER_KEYS.contains(&key.as_str()) {
                    sink.add(
                        &INI_OVERRIDES_CHART,
                        EXTRA_INI,
                        format!(
                            "line {n}: `{key}` is already set by the chart; this line overrides it"
                        ),
                    );
                } else if !ini::PGBOUNCER_KEYS.contains(&key.as_str()) {
                    let hint = super::closest(&key, ini::PGBOUNCER_KEYS)
                        .map(|c| format!(" (did you mean `{c}`?)"))
                        .unwrap_or_default();
                    sink.add(
                        &INI_UNKNOWN_KEY,
                        EXTRA_INI,
                        format!("line {n}: `{key}` is not a PgBouncer setting{hint}"),
                    );
                }
            }
        }
    }
}
