//! Steps for the realm and the Kerberized PostgreSQL: tickets, direct GSS logins, and the ways
//! a login breaks on the server side.

use std::time::Duration;

use anyhow::{bail, ensure, Context as _, Result};
use cucumber::{given, then, when};
use harness::environment::Component;
use harness::probe::gss::{self, LoginOutcome, LoginRequest};
use harness::probe::sql;
use harness::secret::Secret;

use super::World;

#[given("the Kerberos reference environment")]
async fn reference_environment(w: &mut World) -> Result<()> {
    let shape = w.shape.clone();
    w.up(shape).await
}

#[when("the client principal gets a ticket from its keytab")]
async fn kinit(w: &mut World) -> Result<()> {
    let s = w.env()?;
    let klist = s
        .kinit(
            "client",
            &s.shape().names.client_principal,
            s.client_keytab(),
        )
        .await?;
    w.klist = Some(klist);
    Ok(())
}

#[then(expr = "the ticket cache holds a ticket for {string}")]
async fn ticket_for(w: &mut World, who: String) -> Result<()> {
    let who = w.x(&who);
    let klist = w.klist.as_deref().context("no ticket cache was listed")?;
    ensure!(
        klist.contains(&who),
        "klist does not show `{who}`:\n{klist}"
    );
    Ok(())
}

async fn gss_login(
    w: &mut World,
    keytab: Option<std::path::PathBuf>,
    spn: Option<String>,
    role: Option<String>,
) -> Result<()> {
    let s = w.env()?;
    let pg = s.endpoint(Component::Postgres)?;
    let req = LoginRequest {
        addr: pg.host,
        port: pg.port,
        spn: spn.unwrap_or_else(|| s.shape().names.server_spn.clone()),
        user: role.unwrap_or_else(|| s.shape().names.client_principal.clone()),
        database: s.shape().names.metadata_db.clone(),
        query: Some("SELECT principal, gss_authenticated::text FROM pg_stat_gssapi WHERE pid = pg_backend_pid()".into()),
        auth_request_only: false,
    };
    let env = s.client_env("probe", keytab.as_deref());
    w.login = Some(gss::login(&req, &env).await?);
    Ok(())
}

#[when("the Kerberos user logs in to PostgreSQL with GSSAPI")]
async fn login_direct(w: &mut World) -> Result<()> {
    let kt = w.env()?.client_keytab().to_path_buf();
    gss_login(w, Some(kt), None, None).await
}

#[when(expr = "the Kerberos user logs in to PostgreSQL with GSSAPI asking for {string}")]
async fn login_direct_spn(w: &mut World, spn: String) -> Result<()> {
    let kt = w.env()?.client_keytab().to_path_buf();
    let spn = w.x(&spn);
    gss_login(w, Some(kt), Some(spn), None).await
}

#[when("a client without Kerberos credentials logs in to PostgreSQL with GSSAPI")]
async fn login_no_creds(w: &mut World) -> Result<()> {
    gss_login(w, None, None, None).await
}

#[when(expr = "{string} logs in to PostgreSQL with GSSAPI as role {string}")]
async fn login_as_other(w: &mut World, principal: String, role: String) -> Result<()> {
    let principal = w.x(&principal);
    let kt = w
        .keytabs
        .get(&principal)
        .cloned()
        .with_context(|| format!("no keytab for {principal}: add the principal first"))?;
    let role = w.x(&role);
    gss_login(w, Some(kt), None, Some(role)).await
}

#[given("the Kerberos role has a valid password")]
async fn role_password(w: &mut World) -> Result<()> {
    let s = w.env()?;
    let pw = Secret::generate();
    let role = s.shape().names.client_principal.replace('"', "\"\"");
    s.superuser_execute(
        "postgres",
        &format!("ALTER ROLE \"{role}\" PASSWORD '{}'", pw.expose()),
    )
    .await
    .context("setting the role's password")?;
    w.password = Some(pw);
    Ok(())
}

#[when("the Kerberos user logs in to PostgreSQL with that password")]
async fn login_password(w: &mut World) -> Result<()> {
    let s = w.env()?;
    let pw = w.password.as_ref().context("no password was set")?;
    let shape = s.shape();
    let target = s.direct_target(
        &shape.names.client_principal,
        pw.expose(),
        &shape.names.metadata_db,
    )?;
    let mut outcome = LoginOutcome::default();
    match sql::connect(&target, Duration::from_secs(10)).await {
        Ok(_) => outcome.authenticated = true,
        Err(e) => outcome.server_error = Some(e),
    }
    // Which authentication did the server ask for? A password-capable client must be met with
    // a GSS request (code 7), never a password one.
    let req = LoginRequest {
        addr: target.host.clone(),
        port: target.port,
        spn: shape.names.server_spn.clone(),
        user: shape.names.client_principal.clone(),
        database: shape.names.metadata_db.clone(),
        query: None,
        auth_request_only: true,
    };
    let asked = gss::login(&req, &s.client_env("probe", None)).await?;
    outcome.auth_request = asked.auth_request;
    w.login = Some(outcome);
    Ok(())
}

#[then("the login succeeds")]
async fn login_succeeds(w: &mut World) -> Result<()> {
    let l = w.login.as_ref().context("no login was attempted")?;
    ensure!(
        l.authenticated && l.server_error.is_none(),
        "the login failed: {}",
        l.diagnosis()
    );
    Ok(())
}

#[then("the login fails")]
async fn login_fails(w: &mut World) -> Result<()> {
    let l = w.login.as_ref().context("no login was attempted")?;
    ensure!(
        !l.authenticated,
        "the login succeeded, but it should have failed"
    );
    Ok(())
}

#[then(expr = "the login fails with {string}")]
async fn login_fails_with(w: &mut World, needle: String) -> Result<()> {
    let needle = w.x(&needle);
    let l = w.login.as_ref().context("no login was attempted")?;
    ensure!(
        !l.authenticated,
        "the login succeeded, but it should have failed with `{needle}`"
    );
    let d = l.diagnosis();
    ensure!(
        d.contains(&needle),
        "the login failed, but not with `{needle}`: {d}"
    );
    Ok(())
}

#[then("the server asked for GSSAPI authentication, not a password")]
async fn asked_for_gss(w: &mut World) -> Result<()> {
    let l = w.login.as_ref().context("no login was attempted")?;
    match l.auth_request {
        Some(7) => Ok(()),
        Some(code) => bail!("the server asked for authentication method {code}, a password method: GSS is not enforced"),
        None => bail!("the server asked for no authentication at all: {}", l.diagnosis()),
    }
}

#[then(expr = "the session is GSS-authenticated as {string}")]
async fn session_gss(w: &mut World, principal: String) -> Result<()> {
    let principal = w.x(&principal);
    let l = w.login.as_ref().context("no login was attempted")?;
    let row = l.rows.first().with_context(|| {
        format!(
            "pg_stat_gssapi returned no row for the session ({})",
            l.diagnosis()
        )
    })?;
    ensure!(
        row.first().cloned().flatten().as_deref() == Some(principal.as_str())
            && row.get(1).cloned().flatten().as_deref() == Some("true"),
        "pg_stat_gssapi says principal={:?} gss_authenticated={:?}, expected {principal} and true",
        row.first(),
        row.get(1)
    );
    Ok(())
}

#[then(expr = "the PostgreSQL log shows a GSS-authenticated connection for {string}")]
async fn pg_log_gss(w: &mut World, principal: String) -> Result<()> {
    let principal = w.x(&principal);
    let needle = format!("connection authorized: user={principal}");
    let text = w.pg_log_contains(&needle).await?;
    let line = text
        .lines()
        .find(|l| l.contains(&needle))
        .unwrap_or_default();
    ensure!(
        line.contains("GSS (authenticated=yes") && line.contains(&format!("principal={principal}")),
        "the connection of {principal} was not authorized by GSS: {line}"
    );
    Ok(())
}

#[then(expr = "the PostgreSQL log says {string}")]
async fn pg_log_says(w: &mut World, needle: String) -> Result<()> {
    let needle = w.x(&needle);
    w.pg_log_contains(&needle).await.map(drop)
}

#[given(expr = "the database server's keytab holds only {string}")]
async fn server_keytab_only(w: &mut World, principal: String) -> Result<()> {
    let principal = w.x(&principal);
    let s = w.env()?;
    // Where the database has its own host name (docker), `{postgres_host}` is the configured
    // host and its principal is the server's own, already alone in its keytab.
    if principal == s.shape().names.server_spn {
        return Ok(());
    }
    let kt = s.add_principal(&principal).await?;
    s.replace_server_keytab(&kt).await
}

#[given("the service principal's key is rotated in the KDC")]
async fn rotate(w: &mut World) -> Result<()> {
    let s = w.env()?;
    s.rotate_key(&s.shape().names.server_spn).await
}

#[given(expr = "a principal {string} with its own keytab")]
async fn other_principal(w: &mut World, principal: String) -> Result<()> {
    let principal = w.x(&principal);
    let kt = w.env()?.add_principal(&principal).await?;
    w.keytabs.insert(principal, kt);
    Ok(())
}
