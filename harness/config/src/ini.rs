//! The two ini dialects the deployment's PgBouncer config is written in: `extraIni` (whole
//! `key = value` lines appended to `[pgbouncer]`) and the database extras (`key=value` pairs
//! appended to a single `[databases]` line).

/// One line of `extraIni`, numbered from 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IniLine {
    Blank,
    Comment,
    Setting {
        key: String,
        value: String,
    },
    Section(String),
    /// Neither comment, section nor `key = value`.
    Invalid(String),
}

pub fn parse_lines(text: &str) -> Vec<(usize, IniLine)> {
    text.lines()
        .enumerate()
        .map(|(i, raw)| {
            let line = raw.trim();
            let parsed = if line.is_empty() {
                IniLine::Blank
            } else if line.starts_with(';') || line.starts_with('#') {
                IniLine::Comment
            } else if line.starts_with('[') && line.ends_with(']') {
                IniLine::Section(line[1..line.len() - 1].trim().to_string())
            } else if let Some((k, v)) = line.split_once('=') {
                let key = k.trim();
                if key.is_empty() || key.contains(char::is_whitespace) {
                    IniLine::Invalid(line.to_string())
                } else {
                    IniLine::Setting {
                        key: key.to_ascii_lowercase(),
                        value: v.trim().to_string(),
                    }
                }
            } else {
                IniLine::Invalid(line.to_string())
            };
            (i + 1, parsed)
        })
        .collect()
}

/// Settings of `extraIni` as `(key, value)`, in order; later lines win in PgBouncer, so callers
/// that want the effective value take the last.
pub fn settings(text: &str) -> Vec<(String, String)> {
    parse_lines(text)
        .into_iter()
        .filter_map(|(_, l)| match l {
            IniLine::Setting { key, value } => Some((key, value)),
            _ => None,
        })
        .collect()
}

pub fn last_setting<'a>(settings: &'a [(String, String)], key: &str) -> Option<&'a str> {
    settings
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Why a database-line extra cannot be appended to a `[databases]` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbExtrasProblem {
    Newline,
    Section(String),
    SpacedEquals(String),
    NotKeyValue(String),
    UnclosedQuote,
}

impl std::fmt::Display for DbExtrasProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DbExtrasProblem::Newline => f.write_str("it spans several lines"),
            DbExtrasProblem::Section(s) => write!(f, "it contains a section header `{s}`"),
            DbExtrasProblem::SpacedEquals(s) => write!(f, "`{s}` has spaces around `=`"),
            DbExtrasProblem::NotKeyValue(s) => write!(f, "`{s}` is not a key=value pair"),
            DbExtrasProblem::UnclosedQuote => f.write_str("a single quote is not closed"),
        }
    }
}

/// Split `user=astro_user@EXAMPLE.TEST pool_mode=session` into pairs. PgBouncer's connstring
/// syntax allows single-quoted values with spaces; nothing else may contain whitespace.
pub fn parse_db_extras(text: &str) -> Result<Vec<(String, String)>, DbExtrasProblem> {
    let text = text.trim();
    if text.contains('\n') || text.contains('\r') {
        return Err(DbExtrasProblem::Newline);
    }
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for ch in text.chars() {
        match ch {
            '\'' => {
                quoted = !quoted;
                current.push(ch);
            }
            c if c.is_whitespace() && !quoted => {
                if !current.is_empty() {
                    tokens.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if quoted {
        return Err(DbExtrasProblem::UnclosedQuote);
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    let mut pairs = Vec::new();
    for (i, tok) in tokens.iter().enumerate() {
        if tok.starts_with('[') && tok.ends_with(']') {
            return Err(DbExtrasProblem::Section(tok.clone()));
        }
        let next_is_eq = tokens.get(i + 1).is_some_and(|t| t.starts_with('='));
        if tok == "=" || tok.starts_with('=') || tok.ends_with('=') || next_is_eq {
            let center = if next_is_eq { i + 1 } else { i };
            let around = tokens[center.saturating_sub(1)..(center + 2).min(tokens.len())].join(" ");
            return Err(DbExtrasProblem::SpacedEquals(around));
        }
        match tok.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                let v = v
                    .strip_prefix('\'')
                    .and_then(|v| v.strip_suffix('\''))
                    .unwrap_or(v);
                pairs.push((k.to_ascii_lowercase(), v.to_string()));
            }
            _ => return Err(DbExtrasProblem::NotKeyValue(tok.clone())),
        }
    }
    Ok(pairs)
}

/// `[pgbouncer]` settings of PgBouncer 1.25, plus the two options of Astronomer's GSSAPI fork.
/// A key outside this list is most likely misspelled and silently ignored... or, on the image
/// without GSS, a startup failure.
pub const PGBOUNCER_KEYS: &[&str] = &[
    "admin_users",
    "application_name_add_host",
    "auth_dbname",
    "auth_file",
    "auth_hba_file",
    "auth_ident_file",
    "auth_query",
    "auth_type",
    "auth_user",
    "autodb_idle_timeout",
    "cancel_wait_timeout",
    "client_idle_timeout",
    "client_login_timeout",
    "client_tls13_ciphers",
    "client_tls_ca_file",
    "client_tls_cert_file",
    "client_tls_ciphers",
    "client_tls_dheparams",
    "client_tls_ecdhcurve",
    "client_tls_key_file",
    "client_tls_protocols",
    "client_tls_sslmode",
    "conffile",
    "default_pool_size",
    "disable_pqexec",
    "dns_max_ttl",
    "dns_nxdomain_ttl",
    "dns_zone_check_period",
    "idle_transaction_timeout",
    "ignore_startup_parameters",
    "job_name",
    "listen_addr",
    "listen_backlog",
    "listen_port",
    "log_connections",
    "log_disconnections",
    "log_pooler_errors",
    "log_stats",
    "logfile",
    "max_client_conn",
    "max_db_client_connections",
    "max_db_connections",
    "max_packet_size",
    "max_prepared_statements",
    "max_user_client_connections",
    "max_user_connections",
    "min_pool_size",
    "peer_id",
    "pidfile",
    "pkt_buf",
    "pool_mode",
    "query_timeout",
    "query_wait_notify",
    "query_wait_timeout",
    "reserve_pool_size",
    "reserve_pool_timeout",
    "resolv_conf",
    "sbuf_loopcnt",
    "scram_iterations",
    "server_check_delay",
    "server_check_query",
    "server_connect_timeout",
    "server_fast_close",
    "server_idle_timeout",
    "server_lifetime",
    "server_login_retry",
    "server_reset_query",
    "server_reset_query_always",
    "server_round_robin",
    "server_tls13_ciphers",
    "server_tls_ca_file",
    "server_tls_cert_file",
    "server_tls_ciphers",
    "server_tls_key_file",
    "server_tls_protocols",
    "server_tls_sslmode",
    "service_name",
    "so_reuseport",
    "stats_period",
    "stats_users",
    "suspend_timeout",
    "syslog",
    "syslog_facility",
    "syslog_ident",
    "tcp_defer_accept",
    "tcp_keepalive",
    "tcp_keepcnt",
    "tcp_keepidle",
    "tcp_keepintvl",
    "tcp_socket_buffer",
    "tcp_user_timeout",
    "track_extra_parameters",
    "transaction_timeout",
    "unix_socket_dir",
    "unix_socket_group",
    "unix_socket_mode",
    "user",
    "verbose",
    // Astronomer's fork (ap-pgbouncer-krb).
    "server_gssauth_negotiate",
    "server_krb_spn",
];

/// Keys of a `[databases]` entry, plus the fork's per-database SPN.
pub const DATABASE_KEYS: &[&str] = &[
    "dbname",
    "host",
    "port",
    "user",
    "password",
    "auth_user",
    "auth_query",
    "auth_dbname",
    "pool_size",
    "min_pool_size",
    "reserve_pool",
    "reserve_pool_size",
    "connect_query",
    "pool_mode",
    "max_db_connections",
    "max_db_client_connections",
    "server_lifetime",
    "client_encoding",
    "datestyle",
    "timezone",
    "application_name",
    "load_balance_hosts",
    "server_krb_spn",
];

/// What the deployment chart already writes in `[pgbouncer]`; the same key in `extraIni`
/// silently overrides it.
pub const CHART_PGBOUNCER_KEYS: &[&str] = &[
    "pool_mode",
    "listen_port",
    "listen_addr",
    "auth_type",
    "auth_file",
    "stats_users",
    "ignore_startup_parameters",
    "max_client_conn",
    "verbose",
    "log_disconnections",
    "log_connections",
    "server_tls_sslmode",
    "server_tls_ciphers",
];

/// What the chart writes on the `[databases]` line before the extras.
pub const CHART_DATABASE_KEYS: &[&str] = &["host", "dbname", "port", "pool_size"];

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("user=a@B.C", Ok(vec![("user".into(), "a@B.C".into())]))]
    #[case("user=a@B.C  application_name='x y'", Ok(vec![("user".into(), "a@B.C".into()), ("application_name".into(), "x y".into())]))]
    #[case("user = a@B.C", Err(DbExtrasProblem::SpacedEquals("user = a@B.C".into())))]
    #[case("user= a", Err(DbExtrasProblem::SpacedEquals("user= a".into())))]
    #[case("user=a\npool_size=3", Err(DbExtrasProblem::Newline))]
    #[case("[databases] user=a", Err(DbExtrasProblem::Section("[databases]".into())))]
    #[case("astro_user", Err(DbExtrasProblem::NotKeyValue("astro_user".into())))]
    #[case("  user=a\n", Ok(vec![("user".into(), "a".into())]))]
    fn db_extras(
        #[case] input: &str,
        #[case] want: Result<Vec<(String, String)>, DbExtrasProblem>,
    ) {
        assert_eq!(parse_db_extras(input), want);
    }

    #[test]
    fn ini_lines() {
        let l = parse_lines(
            "server_gssauth_negotiate = allow\n; c\n\n[x]\nnonsense\nServer_Krb_Spn=postgres/h@R",
        );
        assert_eq!(
            l[0].1,
            IniLine::Setting {
                key: "server_gssauth_negotiate".into(),
                value: "allow".into()
            }
        );
        assert_eq!(l[1].1, IniLine::Comment);
        assert_eq!(l[2].1, IniLine::Blank);
        assert_eq!(l[3].1, IniLine::Section("x".into()));
        assert_eq!(l[4].1, IniLine::Invalid("nonsense".into()));
        assert_eq!(
            l[5].1,
            IniLine::Setting {
                key: "server_krb_spn".into(),
                value: "postgres/h@R".into()
            }
        );
    }
}
