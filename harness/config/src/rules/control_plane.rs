//! The control plane's values.yaml: manual connection strings, Houston's own PgBouncer, its
//! image and Houston's database URL.

use super::catalog::*;
use crate::finding::Sink;
use crate::load::HoustonTemplates;
use crate::model::Values;
use crate::render::houston::{parse_users_txt, DatabaseUrl};

/// Prisma's PgBouncer parameters, as the documentation gives them.
pub const PRISMA_QUERY: &[(&str, &str)] = &[
    ("pgbouncer", "true"),
    ("connection_limit", "100"),
    ("pool_timeout", "60"),
    ("prisma_connection_limit", "100"),
];

pub use crate::platform::KRB_IMAGE;
pub const HOUSTON_PGBOUNCER_PORT: u16 = 6543;
const CONFIG_URL: &str = "astronomer.houston.config.database.connection";

/// The platform release the values are for: `harness.platform.version`, else 0.37.7.
pub(crate) fn platform(v: &Values) -> crate::Platform {
    v.platform_version()
        .and_then(|s| s.parse().ok())
        .unwrap_or_default()
}

/// What every deployment gets from the control plane: its PgBouncer image and Houston's gate
/// on `extraIni`. Checked whether or not Houston's own PgBouncer is enabled.
pub(super) fn check_deployments(sink: &mut Sink, v: &Values) {
    let platform = platform(v);
    let choice = v.deployment_pgbouncer_image(platform);
    let path = choice.path.unwrap_or(crate::model::HELM_PGBOUNCER_IMAGE);
    if choice.image.name() != KRB_IMAGE {
        let origin = match choice.path {
            None => format!(
                "not overridden, so every deployment gets the platform {platform} default `{}`",
                choice.image
            ),
            Some(p) => format!("`{p}` gives every deployment `{}`", choice.image),
        };
        sink.add_fix(
            &DEPLOYMENT_PGBOUNCER_IMAGE,
            path,
            format!("the deployments' PgBouncer image is {origin}, which is not the Kerberos build `{KRB_IMAGE}`"),
            format!(
                "Set `{}: {{repository: {}, tag: {}}}`.",
                crate::model::HELM_PGBOUNCER_IMAGE,
                platform.krb_pgbouncer_image().repository,
                platform.krb_pgbouncer_image().tag
            ),
        );
    } else if let Some(why) = old_tag(&choice.image.tag) {
        sink.add(&PGBOUNCER_IMAGE_TAG, format!("{path}.tag"), why);
    }
    match v.extra_ini_allowed() {
        Some(true) => {}
        Some(false) => sink.add(
            &EXTRA_INI_DISALLOWED,
            "astronomer.houston.config.deployments.upsertExtraIniAllowed",
            "Houston refuses `pgbouncerConfig.extraIni`, which carries the Kerberos settings",
        ),
        None => sink.add(
            &EXTRA_INI_GATE,
            "astronomer.houston.config.deployments.upsertExtraIniAllowed",
            "Houston's gate on `extraIni` is not set; it may default to false",
        ),
    }
    let config_url = v
        .houston()
        .and_then(|h| h.config.as_ref()?.database.as_ref()?.connection.as_ref());
    if config_url.is_some() {
        sink.add(
            &HOUSTON_URL_CONFIG,
            CONFIG_URL,
            "this URL does not reach Houston: its container's DATABASE__CONNECTION comes from the backend Secret",
        );
    }
}

/// Why a `ap-pgbouncer-krb` tag is too old, if it is.
fn old_tag(tag: &str) -> Option<String> {
    let version: Vec<u32> = tag
        .split(['-', '+'])
        .next()
        .unwrap_or("")
        .split('.')
        .map_while(|p| p.parse().ok())
        .collect();
    (version.len() >= 2 && version[..] < [1, 25][..]).then(|| {
        format!("tag `{tag}` is older than 1.25.0, the first documented with the GSSAPI options")
    })
}

pub(super) fn check(sink: &mut Sink, v: &Values, templates: Option<&HoustonTemplates>) {
    if v.manual_connection_strings() != Some(true) {
        let state = match v.manual_connection_strings() {
            Some(_) => "are disabled",
            None => "are not enabled (the key is not set)",
        };
        sink.add(
            &MANUAL_CONNECTION_STRINGS,
            "astronomer.houston.config.deployments.manualConnectionStrings.enabled",
            format!("manual connection strings {state}"),
        );
    }

    let gp = v.global_pgbouncer();
    let enabled = gp.and_then(|g| g.enabled) == Some(true);
    let url = v.houston_url();
    let release = v.platform_release();
    let mut why_configured = Vec::new();
    if let Some(g) = gp {
        if g.secret_name.is_some() {
            why_configured.push("secretName");
        }
        if g.extra_labels.as_ref().is_some_and(|l| !l.is_empty()) {
            why_configured.push("extraLabels");
        }
        if g.extra_env.as_ref().is_some_and(|l| !l.is_empty()) {
            why_configured.push("extraEnv");
        }
    }
    if v.image().is_some() {
        why_configured.push("pgbouncer.image");
    }
    if url
        .as_ref()
        .is_some_and(|u| u.url.contains(&format!("{release}-pgbouncer")))
    {
        why_configured.push("Houston's URL");
    }
    if !enabled {
        if !why_configured.is_empty() {
            sink.add(
                &HOUSTON_PGBOUNCER_ENABLED,
                "global.pgbouncer.enabled",
                format!(
                    "Houston's PgBouncer is configured ({}) but not enabled",
                    why_configured.join(", ")
                ),
            );
        }
        return;
    }

    check_image(sink, v);

    let Some(url) = url else {
        if v.houston()
            .and_then(|h| h.backend_connection.as_ref())
            .is_some()
        {
            sink.add_fix(
                &PRISMA_PARAMS,
                "astronomer.houston.backendConnection",
                format!(
                    "with `backendConnection` the chart builds no URL and creates no Secret, yet Houston's container still reads `{}-houston-backend`; a URL there cannot carry {} unless you write it yourself",
                    v.platform_release(),
                    names(PRISMA_QUERY.iter().map(|(k, _)| *k))
                ),
                "Create the Secret with a full URL carrying the Prisma parameters (`backendSecretName`) and record it under `harness.houston.connection`.",
            );
        } else {
            sink.add(
                &HOUSTON_URL_UNKNOWN,
                "harness.houston.connection",
                "Houston's database URL is not recorded in the values",
            );
        }
        return;
    };
    let parsed = match DatabaseUrl::parse(&url.url) {
        Ok(p) => p,
        Err(why) => {
            sink.add(
                &HOUSTON_DB_TARGET,
                url.path.clone(),
                format!("Houston's URL is not a PostgreSQL URL: {why}"),
            );
            return;
        }
    };
    let missing: Vec<String> = PRISMA_QUERY
        .iter()
        .filter(|(k, want)| match parsed.param(k) {
            None => true,
            Some(got) => *k == "pgbouncer" && got != *want,
        })
        .map(|(k, want)| format!("{k}={want}"))
        .collect();
    if !missing.is_empty() {
        sink.add_fix(
            &PRISMA_PARAMS,
            url.path.clone(),
            format!(
                "Houston's URL lacks {}",
                missing
                    .iter()
                    .map(|m| format!("`{m}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            format!("Append `{}` to the query string.", missing.join("&")),
        );
    }
    let service = format!("{release}-pgbouncer");
    let host_ok = parsed.host == service || parsed.host.starts_with(&format!("{service}."));
    if !host_ok || parsed.port != Some(HOUSTON_PGBOUNCER_PORT) {
        let ns = v
            .harness
            .as_ref()
            .and_then(|h| h.platform.as_ref()?.namespace.as_deref())
            .unwrap_or("astronomer");
        sink.add_fix(
            &HOUSTON_DB_TARGET,
            url.path.clone(),
            format!(
                "Houston's URL points at `{}:{}`, not at Houston's PgBouncer `{service}:{HOUSTON_PGBOUNCER_PORT}`",
                parsed.host,
                parsed.port.map(|p| p.to_string()).unwrap_or_else(|| "<default 5432>".into())
            ),
            format!("Use `{service}.{ns}.svc.cluster.local:{HOUSTON_PGBOUNCER_PORT}` as host and port."),
        );
    }
    if let Some(t) = templates {
        check_templates(sink, &url.path, &parsed, t);
    }
}

fn names<'a>(it: impl Iterator<Item = &'a str>) -> String {
    it.map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

/// Houston's own PgBouncer image. Not set is right: the platform chart's default is the
/// Kerberos build for every modelled release.
fn check_image(sink: &mut Sink, v: &Values) {
    let path = "pgbouncer.image";
    let Some(img) = v.image() else { return };
    if let Some(repo) = img.repository.as_deref() {
        let name = repo.rsplit('/').next().unwrap_or(repo);
        if name != KRB_IMAGE {
            let why = if name == "ap-pgbouncer" {
                "is the generic PgBouncer image, which has no GSSAPI".to_string()
            } else {
                format!("is not the Kerberos PgBouncer `{KRB_IMAGE}`")
            };
            sink.add(
                &PGBOUNCER_IMAGE,
                format!("{path}.repository"),
                format!("`{repo}` {why}"),
            );
            return;
        }
    }
    if let Some(why) = img.tag.as_deref().and_then(old_tag) {
        sink.add(&PGBOUNCER_IMAGE_TAG, format!("{path}.tag"), why);
    }
}

fn check_templates(sink: &mut Sink, url_path: &str, url: &DatabaseUrl, t: &HoustonTemplates) {
    let users = parse_users_txt(&t.users);
    let templated = |u: &str| u.contains("{{");
    if let Some(user) = url.user.as_deref() {
        if !users.iter().any(|u| u == user || templated(u)) {
            sink.add_fix(
                &HOUSTON_USERS,
                url_path,
                format!(
                    "user `{user}` of Houston's URL is not in {} (it has {})",
                    t.dir.join("users.txt.tmpl").display(),
                    names(users.iter().map(String::as_str))
                ),
                format!("Add `\"{user}\" \"<secret>\"` to users.txt, or use one of its users in the URL."),
            );
        }
    }
    let aliases = crate::render::houston::database_aliases(&t.ini);
    if let Some(db) = url.database.as_deref() {
        if !aliases.iter().any(|a| a == db || templated(a)) {
            sink.add_fix(
                &HOUSTON_DB_ALIAS,
                url_path,
                format!(
                    "database `{db}` of Houston's URL is not in `[databases]` of {} (it has {})",
                    t.dir.join("pgbouncer.ini.tmpl").display(),
                    names(aliases.iter().map(String::as_str))
                ),
                format!(
                    "Use one of {} as the URL's database.",
                    names(aliases.iter().map(String::as_str))
                ),
            );
        }
    }
}
