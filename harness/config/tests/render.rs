//! Rendering of the valid fixture, against golden text.

use harness_config::*;
use rstest::rstest;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

fn deployment(file: &str) -> Deployment {
    load_deployment(&fixtures().join("deployments").join(file))
        .unwrap()
        .with_generated_secret("pw/@ x")
}

/// The chart's file byte for byte, as `helm template` renders airflow-chart 1.15.9 / 1.17.20 for
/// the reference deployment: three leading blank lines, pools 3 / 2 (airflow-chart's values),
/// `extraIni` last, verbatim.
const PLATFORM_INI: &str = "\n\n\n\
[databases]
kerberos-demo-metadata = host=db.example.test dbname=kerberos_demo_airflow port=5432 pool_size=3 user=astro_user@EXAMPLE.TEST
kerberos-demo-result-backend = host=db.example.test dbname=kerberos_demo_airflow port=5432 pool_size=2 user=astro_user@EXAMPLE.TEST

[pgbouncer]
pool_mode = transaction
listen_port = 6543
listen_addr = *
auth_type = scram-sha-256
auth_file = /etc/pgbouncer/users.txt
stats_users = astro_user@EXAMPLE.TEST
ignore_startup_parameters = extra_float_digits
max_client_conn = 100
verbose = 0
log_disconnections = 0
log_connections = 0

server_tls_sslmode = prefer
server_tls_ciphers = normal
server_gssauth_negotiate = allow
server_krb_spn = postgres/db.example.test@EXAMPLE.TEST
";

const LOCAL_INI: &str = "\n\n\n\
[databases]
kerberos-demo-metadata = host=127.0.0.1 dbname=kerberos_demo_airflow port=40002 pool_size=3 user=astro_user@EXAMPLE.TEST
kerberos-demo-result-backend = host=127.0.0.1 dbname=kerberos_demo_airflow port=40002 pool_size=2 user=astro_user@EXAMPLE.TEST

[pgbouncer]
pool_mode = transaction
listen_port = 40001
listen_addr = 127.0.0.1
auth_type = scram-sha-256
auth_file = /run/e2e/users.txt
stats_users = astro_user@EXAMPLE.TEST
ignore_startup_parameters = extra_float_digits
max_client_conn = 100
verbose = 0
log_disconnections = 0
log_connections = 0

server_tls_sslmode = prefer
server_tls_ciphers = normal

; ---- harness: local placement, not part of the platform's file ----
logfile = /run/e2e/pgbouncer.log
pidfile = /run/e2e/pgbouncer.pid
unix_socket_dir = /run/e2e
log_connections = 1
; ---- pgbouncerConfig.extraIni, verbatim ----
server_gssauth_negotiate = allow
server_krb_spn = postgres/db.example.test@EXAMPLE.TEST
";

fn local_placement() -> Placement {
    let mut p = Placement::platform();
    p.listen_addr = "127.0.0.1".into();
    p.listen_port = 40001;
    p.auth_file = "/run/e2e/users.txt".into();
    p.logfile = Some("/run/e2e/pgbouncer.log".into());
    p.pidfile = Some("/run/e2e/pgbouncer.pid".into());
    p.unix_socket_dir = Some("/run/e2e".into());
    p.extra_lines = vec!["log_connections = 1".into()];
    p.host_map.insert(
        "db.example.test".into(),
        Dial {
            host: "127.0.0.1".into(),
            port: Some(40002),
        },
    );
    p
}

#[rstest]
#[case("kerberos.yaml")]
#[case("kerberos.json")]
fn platform_ini_matches_the_chart(#[case] file: &str) {
    assert_eq!(
        render_for_platform(&deployment(file)).unwrap(),
        PLATFORM_INI
    );
}

#[test]
fn local_ini_changes_only_addresses_and_keeps_extra_ini_last() {
    let ini = render_pgbouncer_ini(&deployment("kerberos.yaml"), &local_placement()).unwrap();
    assert_eq!(ini, LOCAL_INI);
    assert!(
        ini.ends_with("server_krb_spn = postgres/db.example.test@EXAMPLE.TEST\n"),
        "the SPN keeps the configured host"
    );
}

#[test]
fn users_txt_has_one_line_per_distinct_user_and_uses_the_callers_verifier() {
    let users = render_users_txt(&deployment("kerberos.yaml"), |u, p| {
        format!("SCRAM({u}|{p})")
    })
    .unwrap();
    assert_eq!(
        users,
        "\"astro_user@EXAMPLE.TEST\" \"SCRAM(astro_user@EXAMPLE.TEST|pw/@ x)\"\n"
    );
}

#[test]
fn users_txt_refuses_one_user_with_two_passwords() {
    let mut d = deployment("kerberos.yaml");
    d.result_backend_connection_json
        .as_mut()
        .unwrap()
        .value
        .pass = Some("other".into());
    assert_eq!(
        render_users_txt(&d, |_, p| p.to_string()),
        Err(RenderError::ConflictingPasswords {
            user: "astro_user@EXAMPLE.TEST".into()
        })
    );
}

#[test]
fn airflow_urls_encode_the_principal_and_password_as_the_chart_does() {
    let ep = PgbouncerEndpoint {
        host: "127.0.0.1".into(),
        port: 40001,
        sslmode: Some("disable".into()),
    };
    let urls = airflow_urls(&deployment("kerberos.yaml"), &ep).unwrap();
    // urlquery then urlJoin: `/` and `@` escaped, the space a literal `+` (rule KRB027).
    assert_eq!(
        urls.metadata,
        "postgresql://astro_user%40EXAMPLE.TEST:pw%2F%40+x@127.0.0.1:40001/kerberos-demo-metadata?sslmode=disable"
    );
    assert_eq!(
        urls.result_backend,
        "db+postgresql://astro_user%40EXAMPLE.TEST:pw%2F%40+x@127.0.0.1:40001/kerberos-demo-result-backend?sslmode=disable"
    );
}

/// The connection Secrets' URLs, byte for byte: the metadata service with its namespace, the
/// result backend's without, each connection's own `sslmode`.
#[test]
fn chart_urls_are_the_secrets_urls() {
    let urls = chart_urls(&deployment("kerberos.yaml")).unwrap();
    assert_eq!(
        urls.metadata,
        "postgresql://astro_user%40EXAMPLE.TEST:pw%2F%40+x@kerberos-demo-pgbouncer.astronomer-kerberos-demo:6543/kerberos-demo-metadata?sslmode=prefer"
    );
    assert_eq!(
        urls.result_backend,
        "db+postgresql://astro_user%40EXAMPLE.TEST:pw%2F%40+x@kerberos-demo-pgbouncer:6543/kerberos-demo-result-backend?sslmode=prefer"
    );
    // A metadata connection without sslmode gets the subchart's default, `disable`.
    let mut d = deployment("kerberos.yaml");
    d.metadata_connection_json.as_mut().unwrap().value.sslmode = None;
    assert!(chart_urls(&d)
        .unwrap()
        .metadata
        .ends_with("?sslmode=disable"));
    // The result backend's is required by the schema: no silent default.
    d.result_backend_connection_json
        .as_mut()
        .unwrap()
        .value
        .sslmode = None;
    assert!(matches!(chart_urls(&d), Err(RenderError::Missing { .. })));
}

#[rstest]
#[case("plain", "plain")]
#[case("a b", "a+b")]
#[case("a+b", "a+b")]
#[case("p@ss:w/rd?", "p%40ss%3Aw%2Frd%3F")]
#[case("$&,;=~-._", "$&,;=~-._")]
#[case("100%!*'()\"", "100%25%21%2A%27%28%29%22")]
#[case("é", "%C3%A9")]
fn userinfo_escaping_follows_urlquery_then_urljoin(#[case] raw: &str, #[case] want: &str) {
    assert_eq!(harness_config::render::airflow::encode(raw), want);
}

#[test]
fn server_tls_sslmode_comes_from_pgbouncer_config_not_the_connection() {
    let mut d = deployment("kerberos.yaml");
    d.metadata_connection_json.as_mut().unwrap().value.sslmode = Some("disable".into());
    assert!(render_for_platform(&d)
        .unwrap()
        .contains("\nserver_tls_sslmode = prefer\n"));
    d.pgbouncer_config
        .as_mut()
        .unwrap()
        .extra
        .insert("sslmode".into(), "verify-full".into());
    assert!(render_for_platform(&d)
        .unwrap()
        .contains("\nserver_tls_sslmode = verify-full\n"));
}

#[test]
fn chart_users_txt_has_a_leading_blank_line_one_line_per_connection_and_no_final_newline() {
    let users = render_chart_users_txt(&deployment("kerberos.yaml")).unwrap();
    assert_eq!(
        users,
        "\n\"astro_user@EXAMPLE.TEST\" \"pw/@ x\"\n\"astro_user@EXAMPLE.TEST\" \"pw/@ x\""
    );
    let mut d = deployment("kerberos.yaml");
    d.metadata_connection_json.as_mut().unwrap().value.pass = Some("a\"b\\c".into());
    assert!(render_chart_users_txt(&d)
        .unwrap()
        .starts_with("\n\"astro_user@EXAMPLE.TEST\" \"a\\\"b\\\\c\"\n"));
}

#[test]
fn a_database_line_without_extras_ends_in_the_charts_space() {
    let mut d = deployment("kerberos.yaml");
    d.pgbouncer_config.as_mut().unwrap().extra_ini_metadata = None;
    assert!(render_for_platform(&d).unwrap().contains(
        "\nkerberos-demo-metadata = host=db.example.test dbname=kerberos_demo_airflow port=5432 pool_size=3 \n"
    ));
}

#[test]
fn pool_sizes_follow_pgbouncer_config() {
    let mut d = deployment("kerberos.yaml");
    let pg = d.pgbouncer_config.as_mut().unwrap();
    pg.extra.insert("metadataPoolSize".into(), 7.into());
    pg.extra.insert("maxClientConn".into(), 250.into());
    let ini = render_for_platform(&d).unwrap();
    assert!(ini.contains(" pool_size=7 "), "{ini}");
    assert!(ini.contains(" pool_size=2 "), "{ini}");
    assert!(ini.contains("\nmax_client_conn = 250\n"), "{ini}");
}

#[rstest]
#[case(HoustonApi::UpsertDeployment, "upsertDeployment")]
#[case(HoustonApi::CreateDeployment, "createDeployment")]
fn houston_mutation_carries_the_variables(#[case] api: HoustonApi, #[case] name: &str) {
    let body = houston_mutation(&deployment("kerberos.json"), &MutationSpec::new(api)).unwrap();
    let query = body["query"].as_str().unwrap();
    assert!(
        query.starts_with(&format!("mutation {name}($description: String, ")),
        "{query}"
    );
    assert!(
        query.contains(&format!("  {name}(description: $description, ")),
        "{query}"
    );
    assert!(
        query.contains("$kerberosEnabled: Boolean") && query.contains("$pgbouncerConfig: JSON"),
        "{query}"
    );
    let vars = &body["variables"];
    assert_eq!(vars["kerberosEnabled"], true);
    // The JSON twin sends the metadata connection as a JSON string and keeps that form.
    let meta: serde_json::Value =
        serde_json::from_str(vars["metadataConnectionJson"].as_str().unwrap()).unwrap();
    assert_eq!(meta["pass"], "pw/@ x");
    assert_eq!(
        vars["resultBackendConnectionJson"]["user"],
        "astro_user@EXAMPLE.TEST"
    );
    // env given as a map is sent as the list the chart expects.
    assert_eq!(
        vars["pgbouncerConfig"]["env"],
        serde_json::json!([{"name": "KERBEROS_USER", "value": "astro_user@EXAMPLE.TEST"}])
    );
}

#[test]
fn houston_mutation_needs_a_type_for_every_variable() {
    let mut d = deployment("kerberos.yaml");
    d.extra.insert("shinyNewField".into(), serde_json::json!(1));
    let spec = MutationSpec::new(HoustonApi::UpsertDeployment);
    assert_eq!(
        houston_mutation(&d, &spec),
        Err(RenderError::UnknownVariableType {
            name: "shinyNewField".into()
        })
    );
    let spec = spec.with_type("shinyNewField", "Int");
    assert!(houston_mutation(&d, &spec).unwrap()["query"]
        .as_str()
        .unwrap()
        .contains("$shinyNewField: Int"));
}

#[test]
fn environment_shape_of_the_valid_fixture() {
    let shape = EnvironmentShape::from_deployment(&deployment("kerberos.yaml")).unwrap();
    assert_eq!(
        shape,
        EnvironmentShape {
            realm: "EXAMPLE.TEST".into(),
            client_principal: "astro_user@EXAMPLE.TEST".into(),
            client_username: "astro_user".into(),
            db_host: "db.example.test".into(),
            db_port: 5432,
            metadata_db: "kerberos_demo_airflow".into(),
            result_backend_db: "kerberos_demo_airflow".into(),
            release_name: "kerberos-demo".into(),
            server_spn: "postgres/db.example.test@EXAMPLE.TEST".into(),
            requested_spn: "postgres/db.example.test@EXAMPLE.TEST".into(),
            sslmode: "prefer".into(),
            labels: [("krb-inject", "enabled")].into(),
            negotiate: Negotiate::Allow,
        }
    );
}

#[rstest]
#[case(
    "spn-missing.yaml",
    "postgres/db.example.test@EXAMPLE.TEST",
    Negotiate::Allow
)]
#[case(
    "spn-host-mismatch.yaml",
    "postgres/db.example.com@EXAMPLE.TEST",
    Negotiate::Allow
)]
#[case(
    "negotiate-missing.yaml",
    "postgres/db.example.test@EXAMPLE.TEST",
    Negotiate::Absent
)]
#[case(
    "negotiate-disable.yaml",
    "postgres/db.example.test@EXAMPLE.TEST",
    Negotiate::Disable
)]
fn environment_shape_replays_broken_configurations(
    #[case] file: &str,
    #[case] spn: &str,
    #[case] negotiate: Negotiate,
) {
    let d = load_deployment(&fixtures().join("deployments/broken").join(file)).unwrap();
    let shape = EnvironmentShape::from_deployment(&d).unwrap();
    assert_eq!(
        (shape.requested_spn.as_str(), shape.negotiate),
        (spn, negotiate)
    );
    // What the server holds follows the connection's host, whatever PgBouncer asks for.
    assert_eq!(shape.server_spn, "postgres/db.example.test@EXAMPLE.TEST");
}

#[test]
fn houston_pgbouncer_from_templates() {
    let t = load_houston_templates(&fixtures().join("houston-pgbouncer")).unwrap();
    let vars = [
        ("db_host", "db.example.test"),
        ("db_port", "5432"),
        ("db_name", "houston"),
        ("krb_user", "houston@EXAMPLE.TEST"),
        ("realm", "EXAMPLE.TEST"),
        ("listen_addr", "127.0.0.1"),
        ("listen_port", "40003"),
        ("auth_file", "/run/e2e/houston-users.txt"),
        ("password", "SCRAM-SHA-256$4096:abc"),
    ];
    let out = render_houston_pgbouncer(&t, &vars).unwrap();
    assert_eq!(out.users, "\"houston\" \"SCRAM-SHA-256$4096:abc\"\n");
    assert!(
        out.ini.contains(
            "\nhouston = host=db.example.test port=5432 dbname=houston user=houston@EXAMPLE.TEST\n"
        ),
        "{}",
        out.ini
    );
    assert!(
        out.ini
            .contains("\nserver_krb_spn = postgres/db.example.test@EXAMPLE.TEST\n"),
        "{}",
        out.ini
    );
    let err = render_houston_pgbouncer(&t, &vars[..3]).unwrap_err();
    assert!(
        err.to_string().contains("no value for placeholder"),
        "{err}"
    );
}

#[test]
fn missing_fields_are_render_errors_not_panics() {
    let d: Deployment = serde_yaml::from_str("kerberosEnabled: true\n").unwrap();
    assert!(matches!(
        render_for_platform(&d),
        Err(RenderError::Missing { .. })
    ));
    assert!(matches!(
        EnvironmentShape::from_deployment(&d),
        Err(RenderError::Missing { .. })
    ));
    assert!(render_users_txt(&d, |_, p| p.into()).is_err());
}
