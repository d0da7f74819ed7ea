//! Houston's side of the customer's database, which the customer creates before the platform
//! chart: the Secret Houston's PgBouncer mounts at `/etc/pgbouncer` (`global.pgbouncer.secretName`,
//! keys `pgbouncer.ini` and `users.txt`) and the Secret Houston's container reads its database
//! URL from (`astronomer.houston.backendSecretName`, key `connection`). Every name comes from
//! the control plane's values; the ini and users.txt are the customer's templates
//! (`harness.houston.pgbouncerTemplates`) filled by harness-config's renderer, the one that
//! lint checks; the password is generated per run and only ever written into a 0600 file.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::Options;
use crate::secret::Secret;
use harness_config::render::houston::{parse_users_txt, DatabaseUrl};
use harness_config::{Placement, Values, GENERATED_SECRET};

/// Where Houston's data lives and who logs in to it, read from the values once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoustonDb {
    /// The platform's namespace, where both Secrets go.
    pub namespace: String,
    /// Houston's PgBouncer principal (`KERBEROS_USER`): the `[databases]` entry's `user=` and
    /// the login role on PostgreSQL, named exactly like it.
    pub principal: String,
    pub realm: String,
    /// Houston's database on the customer's PostgreSQL (`harness.houston.database`).
    pub host: String,
    pub port: u16,
    pub database: String,
    pub pgbouncer_secret: String,
    pub backend_secret: String,
}

impl HoustonDb {
    pub fn from_values(o: &Options, v: &Values) -> Result<HoustonDb> {
        let file = o.values.display();
        let principal = super::plan::houston_principal(o, v)?;
        let realm = principal
            .split_once('@')
            .map(|(_, r)| r.to_string())
            .filter(|r| !r.is_empty())
            .with_context(|| {
                format!(
                    "{file}: `global.pgbouncer.extraEnv.KERBEROS_USER` is `{principal}`, without a realm: write it as `<name>@<REALM>`, the principal whose keytab Houston's PgBouncer gets"
                )
            })?;
        let fix = "add `harness.houston.database: {host: <db host>, port: 5432, name: <database>}`, the database the `[databases]` entry of Houston's pgbouncer.ini points at";
        let target = v
            .houston_database()
            .with_context(|| format!("{file}: no `harness.houston.database`: {fix}"))?;
        let field = |value: &Option<String>, key: &str| {
            value
                .clone()
                .filter(|s| !s.is_empty())
                .with_context(|| format!("{file}: no `harness.houston.database.{key}`: {fix}"))
        };
        Ok(HoustonDb {
            namespace: crate::kube::pods::houston_namespace(v),
            principal,
            realm,
            host: field(&target.host, "host")?,
            port: target.port.unwrap_or(5432),
            database: field(&target.name, "name")?,
            pgbouncer_secret: v.pgbouncer_secret_name(),
            backend_secret: v.houston_backend_secret_name(),
        })
    }
}

/// What goes into the two Secrets, rendered; `url` and `users` hold the run's password.
pub struct Files {
    pub ini: String,
    pub users: String,
    pub url: Secret,
}

/// Fills the customer's templates for the pod (PgBouncer's platform placement: `*:6543`,
/// `/etc/pgbouncer/users.txt`) and puts `password` into Houston's URL in place of
/// `${generated}`. `users_secret` turns the password into what users.txt holds (a SCRAM
/// verifier in a run, so PgBouncer's pod never holds Houston's password; the password itself
/// in tests, which then compare it with the URL's).
pub fn render(
    o: &Options,
    v: &Values,
    db: &HoustonDb,
    password: &Secret,
    users_secret: impl Fn(&str) -> String,
) -> Result<Files> {
    let file = o.values.display();
    let dir = v.templates_dir().with_context(|| {
        format!("{file}: no `harness.houston.pgbouncerTemplates`: name the directory (relative to the values file) that holds Houston's pgbouncer.ini.tmpl and users.txt.tmpl")
    })?;
    let dir = o.values.parent().unwrap_or(Path::new(".")).join(dir);
    let templates =
        harness_config::load_houston_templates(&dir).map_err(|e| anyhow::anyhow!("{e}"))?;
    let url = v.houston_url().with_context(|| {
        format!("{file}: no `harness.houston.connection`: record the URL the Secret `{}` holds, with `{GENERATED_SECRET}` as its password", db.backend_secret)
    })?;
    let parsed = DatabaseUrl::parse(&url.url)
        .map_err(|why| anyhow::anyhow!("{file}: `{}` is not a PostgreSQL URL: {why}", url.path))?;
    if url.url.matches(GENERATED_SECRET).count() != 1 {
        bail!(
            "{file}: `{}` must carry its password as `{GENERATED_SECRET}` exactly once: the kind tier puts the run's password there and into users.txt",
            url.path
        );
    }
    let user = parsed
        .user
        .with_context(|| format!("{file}: `{}` has no user", url.path))?;
    let users = parse_users_txt(&templates.users);
    if !users.iter().any(|u| u == &user) {
        bail!(
            "{file}: the user `{user}` of `{}` has no line in {} (it has {users:?}): use the same login in both",
            url.path,
            templates.dir.join("users.txt.tmpl").display()
        );
    }
    let place = Placement::platform();
    let (port, listen_port, auth_file) = (
        db.port.to_string(),
        place.listen_port.to_string(),
        place.auth_file.display().to_string(),
    );
    let secret = users_secret(password.expose());
    let vars: [(&str, &str); 9] = [
        ("db_host", &db.host),
        ("db_port", &port),
        ("db_name", &db.database),
        ("krb_user", &db.principal),
        ("realm", &db.realm),
        ("listen_addr", &place.listen_addr),
        ("listen_port", &listen_port),
        ("auth_file", &auth_file),
        ("password", &secret),
    ];
    let out = harness_config::render_houston_pgbouncer(&templates, &vars)
        .map_err(|e| anyhow::anyhow!("{}: {e}", templates.dir.display()))?;
    Ok(Files {
        ini: out.ini,
        users: out.users,
        url: Secret::adopt(url.url.replace(GENERATED_SECRET, password.expose())),
    })
}

/// The platform's namespace and the two Secrets, as the API server takes them.
pub fn objects(db: &HoustonDb, f: &Files) -> Vec<Value> {
    let ns = &db.namespace;
    vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": db.pgbouncer_secret, "namespace": ns},
            "data": {"pgbouncer.ini": b64(&f.ini), "users.txt": b64(&f.users)}}),
        json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": db.backend_secret, "namespace": ns},
            "data": {"connection": b64(f.url.expose())}}),
    ]
}

/// What users.txt holds for a run: a SCRAM-SHA-256 verifier, which `auth_type = scram-sha-256`
/// checks Houston's login against.
pub fn scram_verifier(password: &str) -> String {
    postgres_protocol::password::scram_sha_256(password.as_bytes())
}

fn b64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn options(values: &Path) -> Options {
        let root = crate::run::workspace_root();
        Options::new(
            "astro-e2e-t1",
            Path::new("/nonexistent"),
            values,
            &root.join("fixtures/deployments/kerberos.yaml"),
        )
    }

    fn reference() -> (Options, Values) {
        let o = options(&crate::run::workspace_root().join("fixtures/values.yaml"));
        let v = harness_config::load_values(&o.values).unwrap();
        (o, v)
    }

    /// A Secret's `data` entry, decoded (the plan's tests read the same objects).
    pub(crate) fn decoded(obj: &Value, key: &str) -> String {
        use base64::Engine;
        let d = base64::engine::general_purpose::STANDARD
            .decode(obj["data"][key].as_str().unwrap())
            .unwrap();
        String::from_utf8(d).unwrap()
    }

    #[test]
    fn the_names_come_from_the_values() {
        let (o, v) = reference();
        let db = HoustonDb::from_values(&o, &v).unwrap();
        assert_eq!(
            db,
            HoustonDb {
                namespace: "astronomer".into(),
                principal: "houston@EXAMPLE.TEST".into(),
                realm: "EXAMPLE.TEST".into(),
                host: "db.example.test".into(),
                port: 5432,
                database: "houston".into(),
                pgbouncer_secret: "astronomer-pgbouncer-config".into(),
                backend_secret: "astronomer-houston-kerberos-backend".into(),
            }
        );
    }

    #[test]
    fn the_secrets_hold_the_kerberos_ini_the_login_and_prisma_s_url() {
        let (o, v) = reference();
        let db = HoustonDb::from_values(&o, &v).unwrap();
        let password = Secret::generate();
        let f = render(&o, &v, &db, &password, str::to_string).unwrap();
        let objs = objects(&db, &f);
        let kinds: Vec<&str> = objs.iter().filter_map(|o| o["kind"].as_str()).collect();
        assert_eq!(kinds, ["Namespace", "Secret", "Secret"]);
        let ini = decoded(&objs[1], "pgbouncer.ini");
        for line in [
            "houston = host=db.example.test port=5432 dbname=houston user=houston@EXAMPLE.TEST",
            "server_gssauth_negotiate = allow",
            "server_krb_spn = postgres/db.example.test@EXAMPLE.TEST",
            "listen_port = 6543",
            "listen_addr = *",
            "auth_type = scram-sha-256",
            "auth_file = /etc/pgbouncer/users.txt",
        ] {
            assert!(ini.lines().any(|l| l == line), "no `{line}` in:\n{ini}");
        }
        assert_eq!(objs[1]["metadata"]["name"], "astronomer-pgbouncer-config");
        // users.txt: `"user" "secret"`, the login of the URL with the URL's password.
        let users = decoded(&objs[1], "users.txt");
        assert_eq!(users, format!("\"houston\" \"{}\"\n", password.expose()));
        assert_eq!(
            objs[2]["metadata"]["name"],
            "astronomer-houston-kerberos-backend"
        );
        let url = decoded(&objs[2], "connection");
        let parsed = DatabaseUrl::parse(&url).unwrap();
        assert_eq!(parsed.user.as_deref(), Some("houston"));
        assert_eq!(
            url.split_once("://").unwrap().1.split_once('@').unwrap().0,
            format!("houston:{}", password.expose())
        );
        assert_eq!(
            parsed.host,
            "astronomer-pgbouncer.astronomer.svc.cluster.local"
        );
        assert_eq!(parsed.port, Some(6543));
        assert_eq!(parsed.database.as_deref(), Some("houston"));
        for (k, want) in [
            ("pgbouncer", "true"),
            ("connection_limit", "100"),
            ("pool_timeout", "60"),
            ("prisma_connection_limit", "100"),
        ] {
            assert_eq!(
                parsed.param(k),
                Some(want),
                "{k} in {}",
                url.replace(password.expose(), "***")
            );
        }
        // The URL's database is the ini's `[databases]` entry.
        assert!(harness_config::render::houston::database_aliases(&ini).contains(&"houston".into()));
    }

    #[test]
    fn a_run_writes_a_scram_verifier_not_the_password() {
        let (o, v) = reference();
        let db = HoustonDb::from_values(&o, &v).unwrap();
        let password = Secret::generate();
        let f = render(&o, &v, &db, &password, scram_verifier).unwrap();
        assert!(
            f.users.starts_with("\"houston\" \"SCRAM-SHA-256$4096:"),
            "{}",
            f.users
        );
        assert!(!f.users.contains(password.expose()));
    }

    #[test]
    fn values_without_houston_s_database_name_the_field_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let root = crate::run::workspace_root();
        let text = std::fs::read_to_string(root.join("fixtures/values.yaml")).unwrap();
        let cut = text.replace(
            "    database:\n      host: db.example.test\n",
            "    database:\n",
        );
        assert_ne!(cut, text);
        let path = dir.path().join("values.yaml");
        std::fs::write(&path, cut).unwrap();
        let o = options(&path);
        let v = harness_config::load_values(&path).unwrap();
        let e = HoustonDb::from_values(&o, &v).unwrap_err().to_string();
        assert!(
            e.contains(&path.display().to_string())
                && e.contains("harness.houston.database.host")
                && e.contains("add `harness.houston.database"),
            "{e}"
        );
    }

    #[test]
    fn a_url_without_the_generated_password_is_refused() {
        let (o, mut v) = reference();
        let db = HoustonDb::from_values(&o, &v).unwrap();
        let h = v.harness.as_mut().unwrap().houston.as_mut().unwrap();
        h.connection = h
            .connection
            .as_ref()
            .map(|c| c.replace(GENERATED_SECRET, "hunter2"));
        let e = render(&o, &v, &db, &Secret::generate(), str::to_string)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("harness.houston.connection") && e.contains(GENERATED_SECRET),
            "{e}"
        );
    }
}
