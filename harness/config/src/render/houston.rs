//! Houston's side: its own PgBouncer (from templates the customer writes), its database URL,
//! and the GraphQL mutation that creates a Kerberos deployment.

use super::{fill, RenderError};
use crate::load::HoustonTemplates;
use crate::model::Deployment;
use percent_encoding::percent_decode_str;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoustonPgbouncer {
    pub ini: String,
    pub users: String,
}

/// Fill Houston's PgBouncer templates. `vars` carries per-run values (`password`, `db_host`,
/// ...); the templates in the repository hold no secret.
pub fn render_houston_pgbouncer(
    t: &HoustonTemplates,
    vars: &[(&str, &str)],
) -> Result<HoustonPgbouncer, RenderError> {
    Ok(HoustonPgbouncer {
        ini: fill("pgbouncer.ini.tmpl", &t.ini, vars)?,
        users: fill("users.txt.tmpl", &t.users, vars)?,
    })
}

/// User names of a users.txt (`"user" "secret"` per line).
pub fn parse_users_txt(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| l.starts_with('"'))
        .filter_map(|l| {
            let mut name = String::new();
            let mut chars = l[1..].chars().peekable();
            while let Some(c) = chars.next() {
                if c == '"' {
                    if chars.peek() == Some(&'"') {
                        chars.next();
                        name.push('"');
                    } else {
                        return Some(name);
                    }
                } else {
                    name.push(c);
                }
            }
            None
        })
        .collect()
}

/// Entry names of the `[databases]` section of a pgbouncer.ini.
pub fn database_aliases(ini_text: &str) -> Vec<String> {
    let mut in_databases = false;
    let mut out = Vec::new();
    for line in ini_text.lines().map(str::trim) {
        if line.starts_with('[') && line.ends_with(']') {
            in_databases = line[1..line.len() - 1]
                .trim()
                .eq_ignore_ascii_case("databases");
        } else if in_databases && !line.starts_with(';') && !line.starts_with('#') {
            if let Some((k, _)) = line.split_once('=') {
                out.push(k.trim().to_string());
            }
        }
    }
    out
}

/// The parts of a `postgres[ql]://user:pass@host:port/db?query` URL the rules look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    pub database: Option<String>,
    pub query: Vec<(String, String)>,
}

impl DatabaseUrl {
    pub fn parse(url: &str) -> Result<DatabaseUrl, String> {
        let rest = url
            .strip_prefix("postgresql://")
            .or_else(|| url.strip_prefix("postgres://"))
            .ok_or("it does not start with postgresql:// or postgres://")?;
        let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, path) = before_query.split_once('/').unwrap_or((before_query, ""));
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let user = userinfo
            .map(|u| u.split_once(':').map(|(n, _)| n).unwrap_or(u))
            .map(|u| percent_decode_str(u).decode_utf8_lossy().into_owned());
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (
                h,
                Some(
                    p.parse::<u16>()
                        .map_err(|_| format!("port `{p}` is not a number"))?,
                ),
            ),
            None => (hostport, None),
        };
        if host.is_empty() {
            return Err("it has no host".into());
        }
        let database = Some(percent_decode_str(path).decode_utf8_lossy().into_owned())
            .filter(|d| !d.is_empty());
        let query = query
            .split('&')
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (
                    k.to_string(),
                    percent_decode_str(v).decode_utf8_lossy().into_owned(),
                )
            })
            .collect();
        Ok(DatabaseUrl {
            user,
            host: host.to_string(),
            port,
            database,
            query,
        })
    }

    pub fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Houston API generation: the mutation's name differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoustonApi {
    /// Software 0.3x: `createDeployment`.
    CreateDeployment,
    /// APC 1.x: `upsertDeployment`.
    UpsertDeployment,
}

impl HoustonApi {
    pub fn mutation_name(self) -> &'static str {
        match self {
            HoustonApi::CreateDeployment => "createDeployment",
            HoustonApi::UpsertDeployment => "upsertDeployment",
        }
    }
}

/// The mutation's name and its variables' GraphQL types. The defaults are a best guess [?];
/// callers should replace them with the types read by introspecting the live schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MutationSpec {
    pub api: HoustonApi,
    pub types: BTreeMap<String, String>,
    /// Fields requested back.
    pub selection: String,
}

impl MutationSpec {
    pub fn new(api: HoustonApi) -> Self {
        let types = [
            ("workspaceUuid", "Uuid!"),
            ("deploymentUuid", "Uuid"),
            ("type", "String"),
            ("label", "String!"),
            ("releaseName", "String"),
            ("namespace", "String"),
            ("description", "String"),
            ("executor", "ExecutorType"),
            ("airflowVersion", "String"),
            ("runtimeVersion", "String"),
            ("config", "JSON"),
            ("properties", "JSON"),
            ("cloudRole", "String"),
            ("dagDeployment", "DagDeployment"),
            ("kerberosEnabled", "Boolean"),
            ("metadataConnectionJson", "JSON"),
            ("resultBackendConnectionJson", "JSON"),
            ("pgbouncerConfig", "JSON"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        MutationSpec {
            api,
            types,
            selection: "id releaseName label".into(),
        }
    }

    pub fn with_type(mut self, name: &str, ty: &str) -> Self {
        self.types.insert(name.into(), ty.into());
        self
    }
}

/// `{query, variables}` ready to POST to Houston's `/v1`. Send it after
/// [`Deployment::with_generated_secret`] so no placeholder reaches Houston.
pub fn houston_mutation(
    d: &Deployment,
    spec: &MutationSpec,
) -> Result<serde_json::Value, RenderError> {
    let variables = serde_json::to_value(d).map_err(|e| RenderError::Template {
        name: "variables".into(),
        why: e.to_string(),
    })?;
    let names: Vec<String> = variables
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    let mut params = Vec::new();
    let mut args = Vec::new();
    for name in &names {
        let ty = spec
            .types
            .get(name)
            .ok_or_else(|| RenderError::UnknownVariableType { name: name.clone() })?;
        params.push(format!("${name}: {ty}"));
        args.push(format!("{name}: ${name}"));
    }
    let m = spec.api.mutation_name();
    let query = format!(
        "mutation {m}({}) {{\n  {m}({}) {{\n    {}\n  }}\n}}\n",
        params.join(", "),
        args.join(", "),
        spec.selection
    );
    Ok(serde_json::json!({ "query": query, "variables": variables }))
}
