//! A throwaway MIT Kerberos realm per environment: krb5.conf and kdc.conf from `kdc/`, a fresh
//! database, principals, keytabs exported once, and `krb5kdc` in the foreground on loopback.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::io::AsyncWriteExt;

use crate::component::{Readiness, RunAs, Spec};
use crate::ports;
use crate::secret::Secret;
use crate::substrate::local::{run_tool, Process};
use crate::template;
use crate::tools;

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

#[derive(Debug, Clone)]
pub struct RealmSpec {
    pub realm: String,
    /// Host names mapped to the realm in `[domain_realm]` (the database host, `localhost`).
    pub hosts: Vec<String>,
}

pub struct Realm {
    pub realm: String,
    pub dir: PathBuf,
    pub krb5_conf: PathBuf,
    pub kdc_conf: PathBuf,
    pub port: u16,
    process: Option<Process>,
}

impl Realm {
    /// Writes the configuration, creates the database and starts the KDC.
    pub async fn start(dir: &Path, spec: &RealmSpec) -> Result<Realm> {
        validate_realm(&spec.realm)?;
        let db_dir = dir.join("kdc-db");
        std::fs::create_dir_all(&db_dir)?;
        let port = ports::free_port()?;
        let port_s = port.to_string();
        let domain_realm: String = spec
            .hosts
            .iter()
            .map(|h| format!("    {h} = {}\n", spec.realm))
            .collect();
        let vars = [
            ("realm", spec.realm.as_str()),
            ("kdc_port", port_s.as_str()),
            ("domain_realm", domain_realm.as_str()),
            (
                "db_dir",
                db_dir.to_str().context("non-UTF-8 run directory")?,
            ),
        ];
        let krb5_conf = dir.join("krb5.conf");
        let kdc_conf = dir.join("kdc.conf");
        std::fs::write(
            &krb5_conf,
            template::fill("kdc/krb5.conf.tmpl", KRB5_CONF, &vars)?,
        )?;
        std::fs::write(
            &kdc_conf,
            template::fill("kdc/kdc.conf.tmpl", KDC_CONF, &vars)?,
        )?;
        std::fs::write(db_dir.join("kadm5.acl"), "")?;

        let mut realm = Realm {
            realm: spec.realm.clone(),
            dir: dir.to_path_buf(),
            krb5_conf,
            kdc_conf,
            port,
            process: None,
        };
        // The master key only protects this throwaway database; it is still never printed.
        let master = Secret::generate();
        run_tool(
            "creating the KDC database",
            &tools::path("kdb5_util")?,
            &["create", "-s", "-r", &spec.realm, "-P", master.expose()],
            &realm.admin_env(),
            RunAs::Invoker,
        )
        .await?;

        realm.start_kdc().await?;
        Ok(realm)
    }

    /// `krb5kdc` in the foreground on the realm's port, appending to its log.
    async fn start_kdc(&mut self) -> Result<()> {
        let spec = Spec::new("kdc", tools::path("krb5kdc")?)
            .args(["-n", "-r", &self.realm])
            .envs(&self.admin_env())
            .ready_when(Readiness::TcpPort(self.port), Duration::from_secs(10));
        self.process = Some(Process::start(&spec, &self.log()).await?);
        Ok(())
    }

    /// The KDC back on the same port and database after [`Realm::stop`] (the KDC-down fault).
    pub async fn restart_kdc(&mut self) -> Result<()> {
        if self.is_running() {
            bail!("the KDC of {} is still running", self.realm);
        }
        self.start_kdc().await
    }

    /// Sends `signal` to the running KDC (SIGSTOP/SIGCONT: a KDC that stops answering).
    pub fn signal_kdc(&self, signal: nix::sys::signal::Signal) -> Result<()> {
        let pid = self
            .process
            .as_ref()
            .and_then(|p| p.pid())
            .with_context(|| format!("the KDC of {} is not running", self.realm))?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal)
            .with_context(|| format!("sending {signal} to the KDC (pid {pid})"))
    }

    /// The environment every admin tool runs with: private profile and configuration.
    fn admin_env(&self) -> Vec<(String, String)> {
        vec![
            ("KRB5_CONFIG".into(), self.krb5_conf.display().to_string()),
            (
                "KRB5_KDC_PROFILE".into(),
                self.kdc_conf.display().to_string(),
            ),
        ]
    }

    /// Runs `kadmin.local` queries in one process (each extra process costs ~40 ms).
    pub async fn kadmin(&self, queries: &[String]) -> Result<String> {
        let mut child = tokio::process::Command::new(tools::path("kadmin.local")?)
            .args(["-r", &self.realm])
            .envs(self.admin_env())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .context("could not start kadmin.local")?;
        let mut stdin = child.stdin.take().unwrap();
        let script = queries.join("\n") + "\nquit\n";
        stdin.write_all(script.as_bytes()).await?;
        drop(stdin);
        let out = child.wait_with_output().await?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        // kadmin.local exits 0 even when a query fails; its complaints go to stderr.
        let errors: Vec<&str> = stderr
            .lines()
            .filter(|l| {
                !l.trim().is_empty()
                    && !l.contains("No policy specified")
                    && !l.contains("Authenticating as")
            })
            .collect();
        if !out.status.success() || !errors.is_empty() {
            bail!(
                "kadmin.local failed for `{}`:\n{}",
                queries.join("; "),
                errors.join("\n")
            );
        }
        Ok(stdout)
    }

    /// Adds principals with random keys and exports each to its own keytab, once: every `ktadd`
    /// re-randomises the key and bumps the kvno, so exporting twice would stale the first keytab.
    pub async fn add_principals(&self, entries: &[(&str, &Path)]) -> Result<()> {
        let mut queries = Vec::new();
        for (p, keytab) in entries {
            validate_principal(p)?;
            queries.push(format!("addprinc -randkey {p}"));
            queries.push(format!("ktadd -k {} {p}", keytab.display()));
        }
        self.kadmin(&queries).await?;
        for (_, keytab) in entries {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(keytab, std::fs::Permissions::from_mode(0o600))?;
        }
        Ok(())
    }

    /// Re-randomises a principal's key (kvno + 1) without touching the keytabs already handed
    /// out: they become stale, as after a password rotation nobody propagated.
    pub async fn bump_kvno(&self, principal: &str) -> Result<()> {
        let scratch = self.dir.join("secrets-rotated.keytab");
        self.kadmin(&[format!("ktadd -k {} {principal}", scratch.display())])
            .await?;
        let _ = std::fs::remove_file(scratch);
        Ok(())
    }

    pub async fn delete_principal(&self, principal: &str) -> Result<()> {
        self.kadmin(&[format!("delprinc -force {principal}")])
            .await
            .map(drop)
    }

    /// The environment of a Kerberos client that takes its identity from `keytab` (no kinit:
    /// MIT acquires and renews initiator credentials itself), with a private cache and a trace.
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
        run_tool(
            "kinit",
            &tools::path("kinit")?,
            &["-k", "-t", keytab.to_str().unwrap_or_default(), principal],
            &env,
            RunAs::Invoker,
        )
        .await?;
        run_tool("klist", &tools::path("klist")?, &[], &env, RunAs::Invoker).await
    }

    pub fn log(&self) -> PathBuf {
        self.dir.join("kdc.log")
    }

    pub async fn stop(&mut self) {
        // A KDC a fault left stopped would sit out its whole SIGTERM grace period.
        let _ = self.signal_kdc(nix::sys::signal::Signal::SIGCONT);
        if let Some(mut p) = self.process.take() {
            p.stop().await;
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.process.as_mut().is_some_and(|p| p.is_running())
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
