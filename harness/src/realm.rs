//! A throwaway MIT Kerberos realm per environment: krb5.conf and kdc.conf from `kdc/`, a fresh
//! database, principals, keytabs exported once, and `krb5kdc` in the foreground in its place.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::component::{Exec, File, Readiness, RunAs, Spec};
use crate::secret::Secret;
use crate::substrate::{Endpoint, Place, Running, Substrate};
use crate::tools;
use harness_config::render::fill;

const KRB5_CONF: &str = include_str!("../../kdc/krb5.conf.tmpl");
const KDC_CONF: &str = include_str!("../../kdc/kdc.conf.tmpl");

/// Checks a realm name before anything is written, so a typo fails with a fix, not with a KDC
/// error three steps later.
pub fn validate_realm(realm: &str) -> Result<()> {
    if realm.is_empty() {
        bail!("realm is empty: set it to an upper-case name such as EXAMPLE.TEST");
    }
    if let Some(c) = realm
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '.' || *c == '-' || *c == '_'))
    {
        bail!(
            "realm `{realm}` contains `{c}`: a realm name may hold letters, digits, `.`, `-` and `_` only (e.g. EXAMPLE.TEST)"
        );
    }
    if realm.starts_with('.') || realm.ends_with('.') || realm.contains("..") {
        bail!("realm `{realm}` has an empty label (a leading, trailing or doubled `.`): use a name such as EXAMPLE.TEST");
    }
    Ok(())
}

/// A principal name `primary[/instance]@REALM`.
pub fn validate_principal(p: &str) -> Result<()> {
    let Some((name, realm)) = p.rsplit_once('@') else {
        bail!(
            "principal `{p}` has no realm: write it as name@REALM (e.g. astro_user@EXAMPLE.TEST)"
        );
    };
    if name.is_empty() || name.contains(char::is_whitespace) {
        bail!("principal `{p}` has an empty or blank name part before `@`");
    }
    validate_realm(realm)
}

/// `conf` with each `(key, value)` set in `[libdefaults]`: an existing line for the key is
/// replaced (MIT reads the first occurrence of a relation, so appending would not win), a
/// missing one is added at the end of the section.
pub fn with_libdefaults(conf: &str, settings: &[(String, String)]) -> String {
    let mut lines: Vec<String> = conf.lines().map(str::to_string).collect();
    for (key, value) in settings {
        let wanted = format!("    {key} = {value}");
        let mut section = String::new();
        let mut end = None;
        let mut found = false;
        for (i, line) in lines.iter_mut().enumerate() {
            let t = line.trim().to_string();
            if t.starts_with('[') {
                section = t;
                continue;
            }
            if section != "[libdefaults]" {
                continue;
            }
            if t.split_once('=').is_some_and(|(k, _)| k.trim() == key) {
                *line = wanted.clone();
                found = true;
            }
            if !t.is_empty() && !t.starts_with('#') {
                end = Some(i);
            }
        }
        if !found {
            let at = end.map_or(lines.len(), |i| i + 1);
            lines.insert(at, wanted);
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

#[derive(Debug, Clone)]
pub struct RealmSpec {
    pub realm: String,
    /// Host names mapped to the realm in `[domain_realm]` (the database host).
    pub hosts: Vec<String>,
}

/// The realm: the KDC running in its place, and the admin tools run beside its database.
pub struct Realm {
    pub realm: String,
    /// The harness's own krb5.conf (the KDC as the harness dials it), for its clients and probes.
    pub krb5_conf: PathBuf,
    dir: PathBuf,
    place: Place,
    substrate: Arc<dyn Substrate>,
    kdc_port: u16,
    domain_realm: String,
    kdc: Option<Box<dyn Running>>,
}

impl Realm {
    /// Writes the configuration, creates the database and starts the KDC.
    pub async fn start(
        substrate: Arc<dyn Substrate>,
        dir: &Path,
        spec: &RealmSpec,
    ) -> Result<Realm> {
        validate_realm(&spec.realm)?;
        let place = substrate.place("kdc", dir, RunAs::Invoker)?;
        let kdc_port = substrate.listen_port(&place, "kdc", 88)?;
        let domain_realm: String = spec
            .hosts
            .iter()
            .map(|h| format!("    {h} = {}\n", spec.realm))
            .collect();
        let mut realm = Realm {
            realm: spec.realm.clone(),
            krb5_conf: dir.join("krb5.conf"),
            dir: dir.to_path_buf(),
            place,
            substrate,
            kdc_port,
            domain_realm,
            kdc: None,
        };
        let peer = Endpoint {
            host: realm.place.host.clone(),
            port: kdc_port,
        };
        let kdc_port_s = kdc_port.to_string();
        let db_dir = realm.place.path_str("kdc-db")?;
        let kdc_conf = fill(
            "kdc/kdc.conf.tmpl",
            KDC_CONF,
            &[
                ("realm", spec.realm.as_str()),
                ("bind", realm.place.bind.as_str()),
                ("kdc_port", kdc_port_s.as_str()),
                ("db_dir", db_dir.as_str()),
            ],
        )?;
        let files = [
            ("krb5.conf", realm.krb5_conf_for(&peer)?),
            ("kdc.conf", kdc_conf),
            ("kdc-db/kadm5.acl", String::new()),
        ];
        for (path, text) in files {
            realm
                .substrate
                .put_file(&realm.place, File::new(path, text.into_bytes(), 0o644))
                .await?;
        }
        // The master key only protects this throwaway database; it is still never printed, and
        // it goes in on stdin (kdb5_util prompts twice): `-P` would show it to every user of
        // the machine in the process list for as long as the database takes to make.
        let master = Secret::generate();
        let prompts = format!("{0}\n{0}\n", master.expose());
        realm
            .substrate
            .exec(
                &realm.place,
                Exec::new(
                    "creating the KDC database",
                    realm.substrate.program(&realm.place, "kdb5_util")?,
                )
                .args(["create", "-s", "-r", &spec.realm])
                .stdin(prompts)
                .envs(&realm.admin_env()?),
            )
            .await?;

        realm.start_kdc().await?;
        Ok(realm)
    }

    /// `krb5kdc` in the foreground on the realm's port and database.
    async fn start_kdc(&mut self) -> Result<()> {
        let spec = Spec::new("kdc", self.substrate.program(&self.place, "krb5kdc")?)
            .args(["-n", "-r", &self.realm])
            .envs(&self.admin_env()?)
            .port("kdc", self.kdc_port)
            .ready_when(Readiness::Port("kdc".into()), Duration::from_secs(10));
        let kdc = self.substrate.start(&self.place, spec).await?;
        // The harness's clients dial the KDC where the substrate published it.
        let own = self.krb5_conf_for(&kdc.endpoint("kdc")?)?;
        std::fs::write(&self.krb5_conf, own)?;
        self.kdc = Some(kdc);
        Ok(())
    }

    /// The KDC back on the same port and database after [`Realm::stop`] (the KDC-down fault).
    pub async fn restart_kdc(&mut self) -> Result<()> {
        if self.is_running() {
            bail!("the KDC of {} is still running", self.realm);
        }
        self.start_kdc().await
    }

    /// Freezes the running KDC (it keeps its socket and answers nothing: a hung KDC).
    pub async fn pause_kdc(&self) -> Result<()> {
        self.running_kdc()?.pause().await
    }

    /// Lets a paused KDC answer again.
    pub async fn resume_kdc(&self) -> Result<()> {
        self.running_kdc()?.resume().await
    }

    fn running_kdc(&self) -> Result<&dyn Running> {
        self.kdc
            .as_deref()
            .with_context(|| format!("the KDC of {} is not running", self.realm))
    }

    /// krb5.conf for a client that reaches the KDC at `kdc`.
    fn krb5_conf_for(&self, kdc: &Endpoint) -> Result<String> {
        let kdc = kdc.to_string();
        fill(
            "kdc/krb5.conf.tmpl",
            KRB5_CONF,
            &[
                ("realm", self.realm.as_str()),
                ("kdc", kdc.as_str()),
                ("domain_realm", self.domain_realm.as_str()),
            ],
        )
        .map_err(Into::into)
    }

    /// The KDC as the other components dial it (also while it is stopped: it is where their
    /// krb5.conf says it is).
    pub fn peer_endpoint(&self) -> Endpoint {
        Endpoint {
            host: self.place.host.clone(),
            port: self.kdc_port,
        }
    }

    /// krb5.conf for another component (the KDC as components dial it), to place beside it.
    pub fn peer_krb5_conf(&self) -> Result<String> {
        self.krb5_conf_for(&self.peer_endpoint())
    }

    /// The environment every admin tool runs with inside the KDC's place: private profile and
    /// configuration.
    fn admin_env(&self) -> Result<Vec<(String, String)>> {
        Ok(vec![
            ("KRB5_CONFIG".into(), self.place.path_str("krb5.conf")?),
            ("KRB5_KDC_PROFILE".into(), self.place.path_str("kdc.conf")?),
        ])
    }

    /// Runs `kadmin.local` queries in one process (each extra process costs ~40 ms).
    pub async fn kadmin(&self, queries: &[String]) -> Result<String> {
        let script = queries.join("\n") + "\nquit\n";
        let out = self
            .substrate
            .exec(
                &self.place,
                Exec::new(
                    "kadmin.local",
                    self.substrate.program(&self.place, "kadmin.local")?,
                )
                .args(["-r", &self.realm])
                .envs(&self.admin_env()?)
                .stdin(script),
            )
            .await?;
        // kadmin.local exits 0 even when a query fails; its complaints go to stderr.
        let errors: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| {
                !l.trim().is_empty()
                    && !l.contains("No policy specified")
                    && !l.contains("Authenticating as")
            })
            .collect();
        if !errors.is_empty() {
            bail!(
                "kadmin.local failed for `{}`:\n{}",
                queries.join("; "),
                errors.join("\n")
            );
        }
        Ok(out.stdout)
    }

    /// Adds principals with random keys and exports each to its own keytab, once: every `ktadd`
    /// re-randomises the key and bumps the kvno, so exporting twice would stale the first keytab.
    /// The keytab is exported in the KDC's place and handed to the harness at `keytab` (0600).
    pub async fn add_principals(&self, entries: &[(&str, &Path)]) -> Result<()> {
        let mut queries = Vec::new();
        let mut exports = Vec::new();
        for (p, _) in entries {
            validate_principal(p)?;
            // ktadd appends to an existing file: every export gets a file of its own.
            static EXPORTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = EXPORTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let export = format!("kdc-db/export-{n}-{}.keytab", crate::run::slug(p));
            queries.push(format!("addprinc -randkey {p}"));
            queries.push(format!("ktadd -k {} {p}", self.place.path_str(&export)?));
            exports.push(export);
        }
        self.kadmin(&queries).await?;
        for ((_, keytab), export) in entries.iter().zip(&exports) {
            let bytes = self.substrate.read_file(&self.place, export).await?;
            crate::secret::write_private(keytab, &bytes)?;
        }
        Ok(())
    }

    /// Re-randomises a principal's key (kvno + 1) without touching the keytabs already handed
    /// out: they become stale, as after a password rotation nobody propagated.
    pub async fn bump_kvno(&self, principal: &str) -> Result<()> {
        let scratch = self.place.path_str("kdc-db/rotated.keytab")?;
        self.kadmin(&[format!("ktadd -k {scratch} {principal}")])
            .await
            .map(drop)
    }

    /// Exports the keys the KDC holds for `principal` now, without changing them (`ktadd
    /// -norandkey`), to `keytab` (harness side, 0600). With `append_to`, the export is appended to
    /// a copy of that keytab, as `ktadd` on a server adds a rotated key beside the old one.
    pub async fn export_keys(
        &self,
        principal: &str,
        keytab: &Path,
        append_to: Option<&Path>,
    ) -> Result<()> {
        static EXPORTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = EXPORTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let export = format!("kdc-db/keys-{n}-{}.keytab", crate::run::slug(principal));
        if let Some(old) = append_to {
            let bytes = std::fs::read(old)
                .with_context(|| format!("keytab {} is missing", old.display()))?;
            self.substrate
                .put_file(&self.place, File::new(&export, bytes, 0o600))
                .await?;
        }
        self.kadmin(&[format!(
            "ktadd -norandkey -k {} {principal}",
            self.place.path_str(&export)?
        )])
        .await?;
        let bytes = self.substrate.read_file(&self.place, &export).await?;
        crate::secret::write_private(keytab, &bytes)
    }

    /// The environment of a Kerberos client in the harness that takes its identity from
    /// `keytab` (no kinit: MIT acquires and renews initiator credentials itself), with a
    /// private cache and a trace.
    pub fn client_env(&self, who: &str, keytab: Option<&Path>) -> Vec<(String, String)> {
        let mut env = vec![
            ("KRB5_CONFIG".into(), self.krb5_conf.display().to_string()),
            (
                "KRB5CCNAME".into(),
                format!("FILE:{}", self.dir.join(format!("{who}.ccache")).display()),
            ),
            (
                "KRB5_TRACE".into(),
                self.dir
                    .join(format!("trace-{who}.log"))
                    .display()
                    .to_string(),
            ),
            ("KRB5RCACHEDIR".into(), self.dir.display().to_string()),
        ];
        if let Some(kt) = keytab {
            env.push((
                "KRB5_CLIENT_KTNAME".into(),
                format!("FILE:{}", kt.display()),
            ));
        } else {
            // Point at a keytab that does not exist, so no default keytab is used by accident.
            env.push((
                "KRB5_CLIENT_KTNAME".into(),
                format!("FILE:{}", self.dir.join("no-such.keytab").display()),
            ));
        }
        env
    }

    /// `kinit -k -t keytab principal` into the client's cache; the error text is kinit's.
    pub async fn kinit(&self, who: &str, principal: &str, keytab: &Path) -> Result<String> {
        let env = self.client_env(who, Some(keytab));
        tools::run(
            &Exec::new("kinit", tools::path("kinit")?)
                .args(["-k", "-t", keytab.to_str().unwrap_or_default(), principal])
                .envs(&env),
            None,
        )
        .await?;
        Ok(
            tools::run(&Exec::new("klist", tools::path("klist")?).envs(&env), None)
                .await?
                .stdout,
        )
    }

    /// The KDC's log (harness side).
    pub fn log(&self) -> PathBuf {
        self.kdc
            .as_ref()
            .map(|k| k.log_file())
            .unwrap_or_else(|| self.dir.join("kdc.log"))
    }

    /// The KDC as the harness dials it.
    pub fn endpoint(&self) -> Result<Endpoint> {
        self.kdc
            .as_ref()
            .context("the KDC is not running")?
            .endpoint("kdc")
    }

    pub async fn stop(&mut self) {
        if let Some(mut p) = self.kdc.take() {
            p.stop().await;
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.kdc.as_mut().is_some_and(|p| p.is_running())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("EXAMPLE.TEST", true)]
    #[case("APC.ASTRONOMER.IO", true)]
    #[case("", false)]
    #[case("EXAMPLE TEST", false)]
    #[case("EXA$MPLE", false)]
    #[case(".EXAMPLE", false)]
    #[case("EXAMPLE..TEST", false)]
    fn realm_names(#[case] realm: &str, #[case] ok: bool) {
        assert_eq!(validate_realm(realm).is_ok(), ok, "{realm}");
    }

    #[test]
    fn libdefaults_are_replaced_in_place_or_added_to_the_section() {
        let conf = "[libdefaults]\n    default_realm = R\n    rdns = false\n\n[realms]\n    R = {\n    }\n";
        let out = with_libdefaults(
            conf,
            &[
                ("rdns".into(), "true".into()),
                ("dns_canonicalize_hostname".into(), "true".into()),
            ],
        );
        assert_eq!(
            out,
            "[libdefaults]\n    default_realm = R\n    rdns = true\n    dns_canonicalize_hostname = true\n\n[realms]\n    R = {\n    }\n"
        );
        // Nothing to set: the text as it was.
        assert_eq!(with_libdefaults(conf, &[]), conf);
    }

    #[test]
    fn realm_error_names_the_character_and_fix() {
        let e = validate_realm("EXA$MPLE").unwrap_err().to_string();
        assert!(e.contains('$') && e.contains("EXAMPLE.TEST"), "{e}");
    }

    #[rstest]
    #[case("astro_user@EXAMPLE.TEST", true)]
    #[case("postgres/db.example.test@EXAMPLE.TEST", true)]
    #[case("astro_user", false)]
    #[case("@EXAMPLE.TEST", false)]
    fn principal_names(#[case] p: &str, #[case] ok: bool) {
        assert_eq!(validate_principal(p).is_ok(), ok, "{p}");
    }
}
