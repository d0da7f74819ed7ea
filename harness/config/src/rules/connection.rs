//! The connection JSON objects: principal, realm, host, port, sslmode, pass.

use super::catalog::*;
use super::View;
use crate::finding::Sink;
use crate::model::GENERATED_SECRET;

pub const SSLMODES: &[&str] = &[
    "disable",
    "allow",
    "prefer",
    "require",
    "verify-ca",
    "verify-full",
];

/// Modes that demand TLS from the server; the deployment PgBouncer offers none to its clients.
pub const CLIENT_TLS_MODES: &[&str] = &["require", "verify-ca", "verify-full"];

pub(super) fn check(sink: &mut Sink, v: &View) {
    for db in &v.databases {
        let name = db.field;
        let Some(c) = db.conn else {
            sink.add_fix(
                &CONNECTION_FIELD,
                name,
                format!("`{name}` is missing"),
                format!("Add `{name}: {{user, pass, host, port, db, sslmode}}`."),
            );
            continue;
        };
        let present = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.trim().is_empty());
        for (field, ok) in [
            ("user", present(&c.user)),
            ("host", present(&c.host)),
            ("port", c.port.is_some()),
            ("db", present(&c.db)),
        ] {
            if !ok {
                sink.add(
                    &CONNECTION_FIELD,
                    format!("{name}.{field}"),
                    format!("`{name}.{field}` is missing or empty"),
                );
            }
        }
        if let Some(user) = c.user.as_deref().filter(|u| !u.trim().is_empty()) {
            match principal_problem(user) {
                Some(why) => sink.add(
                    &USER_PRINCIPAL,
                    format!("{name}.user"),
                    format!("`{user}` {why}"),
                ),
                None => {
                    let realm = c.realm().unwrap_or_default();
                    if realm != realm.to_ascii_uppercase() {
                        sink.add_fix(
                            &REALM_CASE,
                            format!("{name}.user"),
                            format!("realm `{realm}` of `{user}` is not upper-case"),
                            format!(
                                "Write the realm as in krb5.conf, normally `{}`.",
                                realm.to_ascii_uppercase()
                            ),
                        );
                    }
                }
            }
        }
        match c.pass.as_deref() {
            None | Some("") => sink.add(
                &PASS_REQUIRED,
                format!("{name}.pass"),
                format!("`{name}.pass` is missing or empty"),
            ),
            Some(GENERATED_SECRET) | Some("no-pass") => {}
            Some(_) => sink.add(
                &PASS_LITERAL,
                format!("{name}.pass"),
                "a literal password is written in the file (value not shown)",
            ),
        }
        if c.port.is_some() {
            if let Err(why) = c.port_number() {
                sink.add(&PORT_RANGE, format!("{name}.port"), format!("port {why}"));
            }
        }
        if let Some(host) = c.host.as_deref().filter(|h| !h.trim().is_empty()) {
            if let Some(why) = host_problem(host) {
                sink.add(
                    &HOST_FORMAT,
                    format!("{name}.host"),
                    format!("`{host}` {why}"),
                );
            }
        }
        if let Some(mode) = c.sslmode.as_deref() {
            if !SSLMODES.contains(&mode) {
                sink.add(
                    &SSLMODE,
                    format!("{name}.sslmode"),
                    format!("`{mode}` is not one of {}", SSLMODES.join(", ")),
                );
            } else if CLIENT_TLS_MODES.contains(&mode) {
                sink.add(
                    &CLIENT_SSLMODE,
                    format!("{name}.sslmode"),
                    format!(
                        "`sslmode: {mode}` goes into Airflow's URL to PgBouncer, which has no client TLS; Airflow cannot connect"
                    ),
                );
            }
        }
        if c.pass.as_deref().is_some_and(|p| p.contains(' ')) {
            sink.add(
                &PASS_URL_SPACE,
                format!("{name}.pass"),
                "the password contains a space, which the chart writes as `+` into Airflow's URL (value not shown)",
            );
        }
    }
    let realms: Vec<_> = v
        .databases
        .iter()
        .filter_map(|db| {
            db.conn
                .filter(|c| {
                    c.user
                        .as_deref()
                        .is_some_and(|u| principal_problem(u).is_none())
                })
                .and_then(|c| c.realm())
        })
        .collect();
    if let [meta, rb] = realms[..] {
        if meta != rb {
            sink.add(
                &REALM_MISMATCH,
                format!("{}.user", super::RESULT_BACKEND),
                format!("result-backend realm `{rb}` differs from metadata realm `{meta}`"),
            );
        }
    }
    // Two principals of one realm: the pod still has one default credential (KRB005 covers
    // two realms).
    let users: Vec<&str> = v
        .databases
        .iter()
        .filter_map(|db| db.conn.and_then(|c| c.user.as_deref()))
        .filter(|u| principal_problem(u).is_none())
        .collect();
    if let ([meta, rb], [meta_realm, rb_realm]) = (&users[..], &realms[..]) {
        if meta != rb && meta_realm == rb_realm {
            sink.add(
                &ONE_POD_CREDENTIAL,
                format!("{}.user", super::RESULT_BACKEND),
                format!(
                    "result-backend user `{rb}` is another principal than metadata user `{meta}`; PgBouncer logs in to both databases as one of them"
                ),
            );
        }
    }
}

/// Why `user` is not `<username>@<REALM>`, if it is not.
pub(crate) fn principal_problem(user: &str) -> Option<String> {
    if user.chars().any(char::is_whitespace) {
        return Some("contains whitespace".into());
    }
    let Some((name, realm)) = user.rsplit_once('@') else {
        return Some("has no `@<REALM>`; it must be `<username>@<REALM>`".into());
    };
    if name.is_empty() {
        return Some("has an empty user name before `@`".into());
    }
    if name.contains('@') {
        return Some("contains more than one `@`".into());
    }
    if realm.is_empty() {
        return Some("has an empty realm after `@`".into());
    }
    None
}

/// Why `host` is not a bare host name or IP address, if it is not.
pub(crate) fn host_problem(host: &str) -> Option<String> {
    if host.contains("://") {
        return Some("has a URL scheme; give only the host name".into());
    }
    if host.chars().any(char::is_whitespace) {
        return Some("contains whitespace".into());
    }
    if host.contains('/') {
        return Some("contains `/`; give only the host name".into());
    }
    if host.parse::<std::net::IpAddr>().is_ok() {
        return None;
    }
    if host.contains(':') {
        return Some("contains a port; put the port into `port`".into());
    }
    if host.len() > 253 {
        return Some("is longer than 253 characters".into());
    }
    for label in host.trim_end_matches('.').split('.') {
        let ok_chars = label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if label.is_empty()
            || label.len() > 63
            || !ok_chars
            || label.starts_with('-')
            || label.ends_with('-')
        {
            return Some(format!("has an invalid DNS label `{label}`"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("db.example.test", true)]
    #[case("10.0.0.5", true)]
    #[case("::1", true)]
    #[case("postgres://db.example.test", false)]
    #[case("db.example.test:5432", false)]
    #[case("db example", false)]
    #[case("-db.example", false)]
    #[case("db..example", false)]
    fn hosts(#[case] host: &str, #[case] ok: bool) {
        assert_eq!(
            host_problem(host).is_none(),
            ok,
            "{host}: {:?}",
            host_problem(host)
        );
    }

    #[rstest]
    #[case("astro_user@EXAMPLE.TEST", true)]
    #[case("astro_user", false)]
    #[case("@EXAMPLE.TEST", false)]
    #[case("astro_user@", false)]
    #[case("a@b@C", false)]
    fn principals(#[case] user: &str, #[case] ok: bool) {
        assert_eq!(principal_problem(user).is_none(), ok);
    }
}
