//! The harness's own Kerberos login to PostgreSQL: a GSS-API initiator (libgssapi) speaking the
//! PostgreSQL wire protocol (postgres-protocol) directly, because tokio-postgres has no GSSAPI.
//! It reports the GSS major/minor status text or the server's error: that text is the diagnosis.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::BytesMut;
use fallible_iterator::FallibleIterator;
use libgssapi::context::{ClientCtx, CtxFlags, SecurityContext};
use libgssapi::name::Name;
use libgssapi::oid::{GSS_MECH_KRB5, GSS_NT_KRB5_PRINCIPAL};
use postgres_protocol::message::{backend, frontend};
use serde::{Deserialize, Serialize};

/// The variable that makes a re-executed harness binary run a probe ([`crate::child::dispatch`]),
/// and its value for the GSS login.
pub const CHILD_VAR: &str = "HARNESS_CHILD";
pub const GSS_LOGIN: &str = "gss-login";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginRequest {
    /// Address to dial (the SPN's host need not resolve).
    pub addr: String,
    pub port: u16,
    /// Full service principal, e.g. `postgres/db.example.test@EXAMPLE.TEST`.
    pub spn: String,
    pub user: String,
    pub database: String,
    /// Run after a successful login; rows come back as text.
    pub query: Option<String>,
    /// Only announce a password-capable client and report which authentication the server asks
    /// for, without answering it (proves a password login cannot happen).
    pub auth_request_only: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LoginOutcome {
    pub authenticated: bool,
    /// The authentication request code the server sent first (7 = GSS, 10 = SASL, 3 = cleartext, 5 = md5).
    pub auth_request: Option<i32>,
    /// GSS major/minor status text when the initiator failed.
    pub gss_error: Option<String>,
    /// The server's ErrorResponse message (with SQLSTATE) when it refused.
    pub server_error: Option<String>,
    /// The rows the request's `query` returned after the login, as text (NULL as None).
    pub rows: Vec<Vec<Option<String>>>,
}

impl LoginOutcome {
    /// One line naming what happened, for step failures and reports.
    pub fn diagnosis(&self) -> String {
        match (&self.gss_error, &self.server_error) {
            _ if self.authenticated => "authenticated".into(),
            (Some(g), Some(s)) => format!("GSS error: {g}; server said: {s}"),
            (Some(g), None) => format!("GSS error: {g}"),
            (None, Some(s)) => format!("server said: {s}"),
            (None, None) => "no answer".into(),
        }
    }
}

/// Runs the login in a child process whose environment is `krb_env` (and nothing Kerberos else).
pub async fn login(req: &LoginRequest, krb_env: &[(String, String)]) -> Result<LoginOutcome> {
    let exe =
        std::env::current_exe().context("cannot find the harness binary to run the GSS probe")?;
    let mut cmd = tokio::process::Command::new(exe);
    for (k, _) in std::env::vars() {
        if k.starts_with("KRB5") {
            cmd.env_remove(k);
        }
    }
    cmd.env(CHILD_VAR, GSS_LOGIN)
        .envs(krb_env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().context("could not start the GSS probe child")?;
    let input = serde_json::to_vec(req)?;
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(&input).await?;
    }
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .context("the GSS probe did not finish within 30 s")??;
    serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "the GSS probe child failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Entry point of the child process.
pub fn child_main() -> i32 {
    let mut input = Vec::new();
    if std::io::stdin().read_to_end(&mut input).is_err() {
        return 71;
    }
    let req: LoginRequest = match serde_json::from_slice(&input) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bad probe request: {e}");
            return 72;
        }
    };
    let outcome = match run(&req) {
        Ok(o) => o,
        Err(e) => LoginOutcome {
            server_error: Some(format!("probe error: {e:#}")),
            ..Default::default()
        },
    };
    println!("{}", serde_json::to_string(&outcome).unwrap_or_default());
    0
}

fn run(req: &LoginRequest) -> Result<LoginOutcome> {
    let mut out = LoginOutcome::default();
    let mut conn = Wire::connect(&req.addr, req.port)?;
    let mut buf = BytesMut::new();
    frontend::startup_message(
        [
            ("user", req.user.as_str()),
            ("database", req.database.as_str()),
            ("application_name", "harness-gss-probe"),
        ],
        &mut buf,
    )?;
    conn.send(&mut buf)?;

    let mut ctx: Option<ClientCtx> = None;
    loop {
        match conn.recv()? {
            backend::Message::AuthenticationGss => {
                out.auth_request.get_or_insert(7);
                if req.auth_request_only {
                    return Ok(out);
                }
                let target = Name::new(req.spn.as_bytes(), Some(GSS_NT_KRB5_PRINCIPAL))
                    .map_err(|e| anyhow::anyhow!("bad SPN `{}`: {e}", req.spn))?;
                let mut c = ClientCtx::new(
                    None,
                    target,
                    CtxFlags::GSS_C_MUTUAL_FLAG,
                    Some(GSS_MECH_KRB5),
                );
                match c.step(None, None) {
                    Ok(Some(token)) => {
                        frontend::sasl_response(&token, &mut buf)?;
                        conn.send(&mut buf)?;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        out.gss_error = Some(e.to_string());
                        return Ok(out);
                    }
                }
                ctx = Some(c);
            }
            backend::Message::AuthenticationGssContinue(body) => {
                let Some(c) = ctx.as_mut() else {
                    anyhow::bail!("server sent GSSContinue before GSS");
                };
                match c.step(Some(body.data()), None) {
                    Ok(Some(token)) if !token.is_empty() => {
                        frontend::sasl_response(&token, &mut buf)?;
                        conn.send(&mut buf)?;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        out.gss_error = Some(e.to_string());
                        return Ok(out);
                    }
                }
            }
            backend::Message::AuthenticationOk => {
                out.authenticated = true;
                if let Some(c) = ctx.as_ref() {
                    if !c.is_complete() {
                        anyhow::bail!(
                            "server accepted the login before mutual authentication completed"
                        );
                    }
                }
            }
            backend::Message::AuthenticationSasl(_) => {
                out.auth_request.get_or_insert(10);
                return Ok(out);
            }
            backend::Message::AuthenticationMd5Password(_) => {
                out.auth_request.get_or_insert(5);
                return Ok(out);
            }
            backend::Message::AuthenticationCleartextPassword => {
                out.auth_request.get_or_insert(3);
                return Ok(out);
            }
            backend::Message::ErrorResponse(body) => {
                out.server_error = Some(error_text(body.fields())?);
                return Ok(out);
            }
            backend::Message::ReadyForQuery(_) => break,
            _ => {}
        }
    }
    if let Some(q) = &req.query {
        frontend::query(q, &mut buf)?;
        conn.send(&mut buf)?;
        loop {
            match conn.recv()? {
                backend::Message::DataRow(row) => {
                    let data = row.buffer();
                    let cells: Vec<Option<String>> = row
                        .ranges()
                        .map(|r| Ok(r.map(|r| String::from_utf8_lossy(&data[r]).into_owned())))
                        .collect()?;
                    out.rows.push(cells);
                }
                backend::Message::ErrorResponse(body) => {
                    out.server_error = Some(error_text(body.fields())?);
                }
                backend::Message::ReadyForQuery(_) => break,
                _ => {}
            }
        }
    }
    frontend::terminate(&mut buf);
    let _ = conn.send(&mut buf);
    Ok(out)
}

fn error_text(mut fields: backend::ErrorFields<'_>) -> Result<String> {
    let (mut severity, mut code, mut message) = (String::new(), String::new(), String::new());
    while let Some(f) = fields.next()? {
        match f.type_() {
            b'S' => severity = String::from_utf8_lossy(f.value_bytes()).into_owned(),
            b'C' => code = String::from_utf8_lossy(f.value_bytes()).into_owned(),
            b'M' => message = String::from_utf8_lossy(f.value_bytes()).into_owned(),
            _ => {}
        }
    }
    Ok(format!("{severity}: {message} (SQLSTATE {code})"))
}

/// A blocking PostgreSQL wire connection: the child does one login, no runtime needed.
struct Wire {
    stream: TcpStream,
    inbuf: BytesMut,
}

impl Wire {
    fn connect(addr: &str, port: u16) -> Result<Wire> {
        let stream = TcpStream::connect((addr, port))
            .with_context(|| format!("could not connect to {addr}:{port}"))?;
        stream.set_read_timeout(Some(Duration::from_secs(20)))?;
        Ok(Wire {
            stream,
            inbuf: BytesMut::new(),
        })
    }

    fn send(&mut self, buf: &mut BytesMut) -> Result<()> {
        self.stream.write_all(buf)?;
        buf.clear();
        Ok(())
    }

    fn recv(&mut self) -> Result<backend::Message> {
        loop {
            if let Some(m) = backend::Message::parse(&mut self.inbuf)? {
                return Ok(m);
            }
            let mut chunk = [0u8; 8192];
            let n = self
                .stream
                .read(&mut chunk)
                .context("reading from the server")?;
            if n == 0 {
                anyhow::bail!("the server closed the connection");
            }
            self.inbuf.extend_from_slice(&chunk[..n]);
        }
    }
}
