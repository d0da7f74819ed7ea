//! `kerberosEnabled`, GSS negotiation and the service principal PgBouncer asks tickets for.

use super::catalog::*;
use super::{View, EXTRA_INI};
use crate::finding::Sink;
use crate::ini;
use crate::render::shape::service_principal;

pub(super) fn check(sink: &mut Sink, v: &View) {
    check_enabled(sink, v);
    match ini::last_setting(&v.ini, "server_gssauth_negotiate") {
        None => sink.add(
            &GSS_NEGOTIATE,
            EXTRA_INI,
            "`server_gssauth_negotiate` is not set (the fork's default is `disable`)",
        ),
        Some(val) if val.eq_ignore_ascii_case("allow") => {}
        Some(val) => sink.add(
            &GSS_NEGOTIATE,
            EXTRA_INI,
            format!("`server_gssauth_negotiate = {val}`; it must be `allow`"),
        ),
    }
    check_spn(sink, v);
}

fn check_enabled(sink: &mut Sink, v: &View) {
    if v.d.kerberos_enabled == Some(true) {
        return;
    }
    let state = match v.d.kerberos_enabled {
        Some(_) => "`kerberosEnabled` is false",
        None => "`kerberosEnabled` is missing",
    };
    let mut hints = Vec::new();
    if v.databases.iter().any(|db| {
        db.conn
            .and_then(|c| c.user.as_deref())
            .is_some_and(|u| u.contains('@'))
    }) {
        hints.push("principal users");
    }
    if v.ini
        .iter()
        .any(|(k, _)| k == "server_krb_spn" || k == "server_gssauth_negotiate")
    {
        hints.push("GSS settings in extraIni");
    }
    if v.databases.iter().any(|db| db.extra("user").is_some()) {
        hints.push("user= in the database extras");
    }
    let msg = if hints.is_empty() {
        state.to_string()
    } else {
        format!(
            "{state} but the deployment is configured for Kerberos ({})",
            hints.join(", ")
        )
    };
    sink.add(&KERBEROS_ENABLED, "kerberosEnabled", msg);
}

/// `postgres/<host>@<REALM>` split into its parts.
pub(crate) struct Spn<'a> {
    pub host: &'a str,
    pub realm: &'a str,
}

pub(crate) fn parse_spn(spn: &str) -> Result<Spn<'_>, String> {
    let Some((service_host, realm)) = spn.rsplit_once('@') else {
        return Err("has no `@<REALM>`".into());
    };
    let Some((service, host)) = service_host.split_once('/') else {
        return Err("has no `postgres/` service part".into());
    };
    if service != "postgres" {
        return Err(format!(
            "names service `{service}`, PostgreSQL's is `postgres`"
        ));
    }
    if host.is_empty() || realm.is_empty() {
        return Err("has an empty host or realm".into());
    }
    if let Some(why) = super::connection::host_problem(host) {
        return Err(format!("host `{host}` {why}"));
    }
    Ok(Spn { host, realm })
}

/// The SPN the metadata connection implies, for fix suggestions.
fn example_spn(v: &View) -> Option<String> {
    let c = v.databases[0].conn?;
    Some(service_principal(c.host.as_deref()?, c.realm()?))
}

fn check_spn(sink: &mut Sink, v: &View) {
    let global = ini::last_setting(&v.ini, "server_krb_spn").filter(|s| !s.is_empty());
    let global_ok = match global {
        Some(spn) => match parse_spn(spn) {
            Ok(_) => true,
            Err(why) => {
                let fix = match example_spn(v) {
                    Some(e) => format!("Write `server_krb_spn = {e}`."),
                    None => SPN_FORM.fix.to_string(),
                };
                sink.add_fix(
                    &SPN_FORM,
                    EXTRA_INI,
                    format!("`server_krb_spn = {spn}` {why}"),
                    fix,
                );
                false
            }
        },
        None => false,
    };
    let mut mismatches: Vec<Mismatch> = Vec::new();
    for db in &v.databases {
        // A per-database server_krb_spn in the extras wins over the global one.
        let (spn, path) = match db.extra("server_krb_spn").filter(|s| !s.is_empty()) {
            Some(s) => match parse_spn(s) {
                Ok(_) => (s, db.extras_field),
                Err(why) => {
                    sink.add(
                        &SPN_FORM,
                        db.extras_field,
                        format!("`server_krb_spn={s}` {why}"),
                    );
                    continue;
                }
            },
            None if global_ok => (global.unwrap_or_default(), EXTRA_INI),
            None => {
                if global.is_none() {
                    let example = db
                        .conn
                        .and_then(|c| Some(service_principal(c.host.as_deref()?, c.realm()?)));
                    let fix = match example {
                        Some(e) => format!("Add `server_krb_spn = {e}` to `extraIni`."),
                        None => SPN_FORM.fix.to_string(),
                    };
                    sink.add_fix(&SPN_FORM, EXTRA_INI, "`server_krb_spn` is not set", fix);
                }
                continue;
            }
        };
        let Ok(parsed) = parse_spn(spn) else { continue };
        let Some(conn) = db.conn else { continue };
        // A malformed host is reported by its own rule; comparing it to the SPN adds only noise.
        if let Some(host) = conn
            .host
            .as_deref()
            .filter(|h| super::connection::host_problem(h).is_none())
        {
            if !parsed.host.eq_ignore_ascii_case(host) {
                mismatches.push(Mismatch {
                    rule: &SPN_HOST,
                    path,
                    spn: spn.to_string(),
                    what: format!("names host `{}`", parsed.host),
                    field: "host",
                    expected: host.to_string(),
                    fields: vec![db.field],
                    fix: format!("Use `{}`.", service_principal(host, parsed.realm)),
                });
            }
        }
        let single_at = conn
            .user
            .as_deref()
            .is_some_and(|u| u.matches('@').count() == 1);
        if let Some(realm) = conn.realm().filter(|_| single_at) {
            if parsed.realm != realm {
                mismatches.push(Mismatch {
                    rule: &SPN_REALM,
                    path,
                    spn: spn.to_string(),
                    what: format!("is in realm `{}`", parsed.realm),
                    field: "user's realm",
                    expected: realm.to_string(),
                    fields: vec![db.field],
                    fix: format!("Use `{}`.", service_principal(parsed.host, realm)),
                });
            }
        }
    }
    // One shared SPN that is wrong for both databases is one problem, reported once.
    let mut merged: Vec<Mismatch> = Vec::new();
    for m in mismatches {
        let same = |o: &&mut Mismatch| {
            o.rule.id == m.rule.id && o.path == m.path && o.spn == m.spn && o.expected == m.expected
        };
        match merged.iter_mut().find(same) {
            Some(o) => o.fields.extend(m.fields),
            None => merged.push(m),
        }
    }
    for m in merged {
        let fields = m
            .fields
            .iter()
            .map(|f| format!("`{f}`"))
            .collect::<Vec<_>>()
            .join(" and ");
        sink.add_fix(
            m.rule,
            m.path,
            format!(
                "`server_krb_spn = {}` {}, but the {} of {fields} is `{}`",
                m.spn, m.what, m.field, m.expected
            ),
            m.fix,
        );
    }
}

struct Mismatch {
    rule: &'static crate::finding::Rule,
    path: &'static str,
    spn: String,
    what: String,
    field: &'static str,
    expected: String,
    fields: Vec<&'static str>,
    fix: String,
}
