//! `extraIniMetadata` / `extraIniResultBackend`: appended by the chart to the database's line
//! in `[databases]`, so they are `key=value` pairs on one line, and they carry the Kerberos user.

use super::catalog::*;
use super::View;
use crate::finding::Sink;
use crate::ini;

pub(super) fn check(sink: &mut Sink, v: &View) {
    for db in &v.databases {
        let path = db.extras_field;
        let expected_user = db
            .conn
            .and_then(|c| c.user.as_deref())
            .filter(|u| !u.is_empty());
        let example = expected_user.unwrap_or("<username>@<REALM>");
        let Some(text) = db.extras_text.filter(|t| !t.trim().is_empty()) else {
            sink.add_fix(
                &DB_EXTRA_USER_MISSING,
                path,
                format!("`{path}` is missing; it must specify the Kerberos user"),
                format!("Set `{path}: \"user={example}\"`."),
            );
            continue;
        };
        let pairs = match ini::parse_db_extras(text) {
            Ok(p) => p,
            Err(why) => {
                // Escaped so the finding stays on one line of the report.
                let shown = text.trim().replace('\n', "\\n");
                sink.add(
                    &DB_EXTRAS_ONE_LINE,
                    path,
                    format!("`{shown}` cannot go on a `[databases]` line: {why}"),
                );
                continue;
            }
        };
        match ini::last_setting(&pairs, "user") {
            None => sink.add_fix(
                &DB_EXTRA_USER_MISSING,
                path,
                format!("`{path}` must specify the Kerberos user (no `user=`)"),
                format!("Add `user={example}`."),
            ),
            Some(u) => {
                if let Some(want) = expected_user {
                    if u != want {
                        sink.add_fix(
                            &DB_EXTRA_USER_MISMATCH,
                            path,
                            format!("`user={u}` differs from `{}.user` `{want}`", db.field),
                            format!("Use `user={want}`."),
                        );
                    }
                }
            }
        }
        for (key, _) in &pairs {
            if ini::CHART_DATABASE_KEYS.contains(&key.as_str()) {
                sink.add(
                    &INI_OVERRIDES_CHART,
                    path,
                    format!(
                        "`{key}=` is already written by the chart on this line from `{}`",
                        db.field
                    ),
                );
            } else if !ini::DATABASE_KEYS.contains(&key.as_str()) {
                let hint = super::closest(key, ini::DATABASE_KEYS)
                    .map(|c| format!(" (did you mean `{c}`?)"))
                    .unwrap_or_default();
                sink.add(
                    &INI_UNKNOWN_KEY,
                    path,
                    format!("`{key}` is not a `[databases]` setting{hint}"),
                );
            }
        }
    }
}
