//! Every rule the linter knows. Ids never change meaning; a retired rule keeps its number.

use crate::finding::{Rule, Severity::*};

macro_rules! rules {
    ($($ident:ident = $id:literal $name:literal $sev:ident, $meaning:literal, $fix:literal;)*) => {
        $(pub const $ident: Rule = Rule { id: $id, name: $name, severity: $sev, meaning: $meaning, fix: $fix };)*
        /// All rules, in id order.
        pub const ALL: &[Rule] = &[$($ident),*];
    };
}

rules! {
    KERBEROS_ENABLED = "KRB001" "kerberos-enabled" Error,
        "`kerberosEnabled` is not `true`; Houston then skips its Kerberos validation and renders a password-only PgBouncer.",
        "Set `kerberosEnabled: true` in the deployment variables.";
    CONNECTION_FIELD = "KRB002" "connection-field" Error,
        "`metadataConnectionJson` or `resultBackendConnectionJson`, or one of its `user`, `host`, `port`, `db`, is missing.",
        "Give both connections as `{user, pass, host, port, db, sslmode}`.";
    USER_PRINCIPAL = "KRB003" "user-principal" Error,
        "A connection `user` is not a Kerberos principal `<username>@<REALM>`; PostgreSQL's role must be named exactly like the principal.",
        "Write the user as `<username>@<REALM>`, e.g. `astro_user@EXAMPLE.TEST`.";
    REALM_CASE = "KRB004" "realm-case" Warning,
        "The realm of a connection user is not upper-case; realms are case-sensitive and upper-case by convention, so this usually is a typo.",
        "Write the realm exactly as in krb5.conf, normally upper-case (`EXAMPLE.TEST`).";
    REALM_MISMATCH = "KRB005" "realm-mismatch" Error,
        "The metadata and result-backend users are in different realms; one PgBouncer pod holds credentials for one realm.",
        "Use principals of the same realm for both connections.";
    DB_EXTRA_USER_MISSING = "KRB006" "db-extra-user-missing" Error,
        "`extraIniMetadata` or `extraIniResultBackend` does not set `user=`; PgBouncer then logs in to PostgreSQL as the client's user name, not as the Kerberos principal.",
        "Add `user=<username>@<REALM>` (the connection's user) to the extra.";
    DB_EXTRA_USER_MISMATCH = "KRB007" "db-extra-user-mismatch" Error,
        "The `user=` of a database extra differs from the connection's `user`.",
        "Make `user=` in the extra equal to the connection's `user`.";
    DB_EXTRAS_ONE_LINE = "KRB008" "db-extras-one-line" Error,
        "A database extra is not space-separated `key=value` pairs on one line; the chart appends it to the `[databases]` line, so newlines, `key = value` or `[section]` break the ini.",
        "Write it as one line of `key=value` pairs without spaces around `=`, e.g. `user=astro_user@EXAMPLE.TEST`.";
    GSS_NEGOTIATE = "KRB009" "gss-negotiate" Error,
        "`extraIni` does not hold `server_gssauth_negotiate = allow`; PgBouncer then refuses the server's GSSAPI request.",
        "Add the line `server_gssauth_negotiate = allow` to `extraIni`.";
    SPN_FORM = "KRB010" "spn-form" Error,
        "`server_krb_spn` is missing or not of the form `postgres/<db host>@<REALM>`.",
        "Add `server_krb_spn = postgres/<db host>@<REALM>` to `extraIni`.";
    SPN_HOST = "KRB011" "spn-host" Error,
        "The host in `server_krb_spn` differs from the connection's host; the KDC issues a ticket for a service PostgreSQL does not hold a key for.",
        "Use the database host exactly as in the connection: `postgres/<host>@<REALM>`.";
    SPN_REALM = "KRB012" "spn-realm" Error,
        "The realm in `server_krb_spn` differs from the connection user's realm.",
        "Use the same realm in `server_krb_spn` as in the connection user.";
    INI_UNKNOWN_KEY = "KRB013" "ini-unknown-key" Warning,
        "A key in `extraIni` or a database extra is not a PgBouncer setting (nor one of the fork's); probably misspelled, and fatal on an image without the fork.",
        "Correct the key; see the PgBouncer configuration reference.";
    INI_OVERRIDES_CHART = "KRB014" "ini-overrides-chart" Warning,
        "`extraIni` or a database extra sets a key the chart already writes; the later line wins and silently changes the chart's setting.",
        "Remove the key, or set the value through the chart's own field (e.g. `sslmode`).";
    EXTRA_INI_SYNTAX = "KRB015" "extra-ini-syntax" Error,
        "A line of `extraIni` is neither `key = value`, a comment nor blank, or opens a section; it is appended to `[pgbouncer]` and must hold only global settings.",
        "Keep `extraIni` to `key = value` lines.";
    LABELS_REQUIRED = "KRB016" "labels-required" Error,
        "`pgbouncerConfig.labels` is missing or empty; the credential injector selects the PgBouncer pod by these labels.",
        "Add the labels your injector selects on, e.g. `krb-inject: enabled`.";
    LABELS_SELECTOR = "KRB017" "labels-selector" Error,
        "`pgbouncerConfig.labels` matches none of the injector's selectors; the pod starts without Kerberos credentials.",
        "Set labels that the injector's selector matches.";
    PORT_RANGE = "KRB018" "port-range" Error,
        "A connection `port` is not an integer between 1 and 65535.",
        "Write the port as a number, e.g. `5432`.";
    HOST_FORMAT = "KRB019" "host-format" Error,
        "A connection `host` is not a bare host name: it has a scheme, a port, a path, spaces or invalid characters.",
        "Write only the host name, e.g. `db.example.test`; the port goes into `port`.";
    SSLMODE = "KRB020" "sslmode" Error,
        "`sslmode` is not one of disable, allow, prefer, require, verify-ca, verify-full.",
        "Use a libpq sslmode; `prefer` for RDS and other TLS databases.";
    PASS_REQUIRED = "KRB021" "pass-required" Error,
        "A connection has no `pass`; Houston requires one even though PgBouncer logs in with Kerberos (it becomes the users.txt password).",
        "Set `pass` to `${generated}` in fixtures, or any value such as `no-pass`.";
    PASS_LITERAL = "KRB022" "pass-literal" Info,
        "A connection `pass` holds a literal value that may be a real secret committed to a file.",
        "Use the placeholder `${generated}` and let the harness generate a per-run secret.";
    RELEASE_NAME = "KRB023" "release-name" Warning,
        "`releaseName` is missing or not a DNS label; the PgBouncer database aliases (`<release>-metadata`) and services are named after it.",
        "Set `releaseName` to lower-case letters, digits and `-` (at most 63).";
    ONE_POD_CREDENTIAL = "KRB024" "one-pod-credential" Error,
        "The metadata and result-backend users are different principals; one PgBouncer pod logs in to PostgreSQL with one default Kerberos credential (the fork passes `GSS_C_NO_CREDENTIAL`, and MIT Kerberos takes the first principal of the injected keytab), so PostgreSQL refuses the connection whose user is the other principal (`provided user name ... and authenticated user name ... do not match`).",
        "Use the pod's principal (`KERBEROS_USER`) as the `user` of both connections; a second principal needs a PgBouncer pod of its own.";
    CHART_SCHEMA = "KRB025" "chart-schema" Error,
        "The deployment chart's `values.schema.json` rejects what Houston would pass it: an unknown `pgbouncerConfig` key, a non-string label value, an `env` entry that is not exactly `{name, value}` strings, an unknown connection key, a `port` that is not an integer, or a result-backend connection without `sslmode`. Helm refuses to render; the deployment is never created or updated.",
        "Change the field as the message says; the subchart's schema is the authority.";
    CLIENT_SSLMODE = "KRB026" "client-sslmode" Error,
        "A connection's `sslmode` is `require`, `verify-ca` or `verify-full`. The chart puts it into Airflow's URL to PgBouncer (`?sslmode=...`), and the deployment PgBouncer has no client TLS, so Airflow cannot connect. TLS to the database is `pgbouncerConfig.sslmode` (`server_tls_sslmode`).",
        "Use `sslmode: prefer` (or `disable`) in the connection, and set `pgbouncerConfig.sslmode` for TLS between PgBouncer and PostgreSQL.";
    PASS_URL_SPACE = "KRB027" "pass-url-space" Error,
        "A connection `pass` contains a space. The chart's URL escaping turns it into a literal `+` in Airflow's URL, while users.txt keeps the space, so Airflow's password does not match.",
        "Use a password without spaces.";
    MANUAL_CONNECTION_STRINGS = "KRB101" "manual-connection-strings" Error,
        "`astronomer.houston.config.deployments.manualConnectionStrings.enabled` is not `true`; Houston then ignores the deployment's connection JSON.",
        "Set `astronomer.houston.config.deployments.manualConnectionStrings.enabled: true`.";
    HOUSTON_PGBOUNCER_ENABLED = "KRB102" "houston-pgbouncer-enabled" Error,
        "Houston's PgBouncer is configured (secret, labels, image or a URL pointing at it) but `global.pgbouncer.enabled` is not `true`, so it is never deployed.",
        "Set `global.pgbouncer.enabled: true`.";
    PGBOUNCER_IMAGE = "KRB103" "pgbouncer-image" Error,
        "Houston's PgBouncer image (`pgbouncer.image`) is set to something other than the Kerberos build `ap-pgbouncer-krb`; the generic `ap-pgbouncer` has no GSSAPI. Not set is fine: the platform chart's default is the Kerberos build.",
        "Set `pgbouncer.image.repository: quay.io/astronomer/ap-pgbouncer-krb` (or your mirror of it), or remove the override.";
    PGBOUNCER_IMAGE_TAG = "KRB104" "pgbouncer-image-tag" Warning,
        "A Kerberos PgBouncer image (Houston's or the deployments') is overridden with a tag older than 1.25.0, the first release documented with the GSSAPI options.",
        "Use tag `1.25.0-2` (Software 0.37.7) or `1.25.0-3` (APC 1.1.0), or remove the tag override.";
    PRISMA_PARAMS = "KRB105" "prisma-params" Error,
        "Houston's database URL (the Secret `<release>-houston-backend`, recorded under `harness.houston.connection`) lacks Prisma's PgBouncer parameters `pgbouncer=true&connection_limit=100&pool_timeout=60&prisma_connection_limit=100`, or cannot carry them (`backendConnection`).",
        "Append the missing parameters to the URL in Houston's backend Secret.";
    HOUSTON_DB_TARGET = "KRB106" "houston-db-target" Error,
        "Houston's database URL (the Secret `<release>-houston-backend`) does not point at Houston's PgBouncer service `<release>-pgbouncer[.<namespace>...]:6543`.",
        "Point the URL in Houston's backend Secret at `<release>-pgbouncer.<namespace>.svc.cluster.local:6543`.";
    HOUSTON_LABEL_SELECTOR = "KRB107" "houston-label-selector" Error,
        "Houston's PgBouncer labels (after the chart rewrites `-` to `_` in `global.pgbouncer.extraLabels` keys) match none of the injector's selectors.",
        "Make the injector select on the rewritten key (e.g. `krb_inject`) or use a key without `-`.";
    HOUSTON_LABEL_REWRITE = "KRB108" "houston-label-rewrite" Warning,
        "A key of `global.pgbouncer.extraLabels` contains `-`, which the chart rewrites to `_`; an injector expecting the original key will not match.",
        "Use a key without `-`, or record the injector's selector under `harness.injector.selectors` so lint can check it.";
    HOUSTON_PGBOUNCER_LABELS = "KRB109" "houston-pgbouncer-labels" Warning,
        "Houston's PgBouncer is enabled but `global.pgbouncer.extraLabels` is empty; a label-selecting injector will not give it credentials.",
        "Add the labels your injector selects on to `global.pgbouncer.extraLabels`.";
    HOUSTON_USERS = "KRB110" "houston-users" Error,
        "The user in Houston's database URL has no line in Houston's PgBouncer `users.txt`.",
        "Use the same user in Houston's connection string and in users.txt.";
    HOUSTON_DB_ALIAS = "KRB111" "houston-db-alias" Error,
        "The database in Houston's URL is not an entry of `[databases]` in Houston's `pgbouncer.ini`.",
        "Name the database in the URL after the `[databases]` entry, or add the entry.";
    HOUSTON_URL_UNKNOWN = "KRB112" "houston-url-unknown" Info,
        "Houston's PgBouncer is enabled but its database URL is not in the values (it lives in a Secret), so the Prisma parameters and target were not checked.",
        "Record the URL (with a placeholder password) under `harness.houston.connection`.";
    DEPLOYMENT_PGBOUNCER_IMAGE = "KRB113" "deployment-pgbouncer-image" Error,
        "The image Houston gives every deployment's PgBouncer is not the Kerberos build `ap-pgbouncer-krb`. Its default (`global.airflow.images.pgbouncer`) is the generic `quay.io/astronomer/ap-pgbouncer`, which has no GSSAPI; the documentation's first warning.",
        "Set `astronomer.houston.config.deployments.helm.airflow.images.pgbouncer: {repository: quay.io/astronomer/ap-pgbouncer-krb, tag: 1.25.0-2}` (1.1.0: `1.25.0-3`).";
    EXTRA_INI_DISALLOWED = "KRB114" "extra-ini-disallowed" Error,
        "`astronomer.houston.config.deployments.upsertExtraIniAllowed` is `false`: Houston refuses `pgbouncerConfig.extraIni`, which carries the Kerberos settings (`server_gssauth_negotiate`, `server_krb_spn`).",
        "Set `astronomer.houston.config.deployments.upsertExtraIniAllowed: true`.";
    EXTRA_INI_GATE = "KRB115" "extra-ini-gate" Warning,
        "`astronomer.houston.config.deployments.upsertExtraIniAllowed` is not set. Houston has this gate on `extraIni`; a configuration migration and an unmerged chart change default it to `false` (evidence in RULES.md), and the Kerberos flow depends on `extraIni`.",
        "Set `astronomer.houston.config.deployments.upsertExtraIniAllowed: true` explicitly.";
    HOUSTON_URL_CONFIG = "KRB116" "houston-url-config" Warning,
        "`astronomer.houston.config.database.connection` is set. Houston's container gets `DATABASE__CONNECTION`/`DATABASE_URL` from the Secret `<release>-houston-backend` (or `backendSecretName`), which overrides the configuration file, so this value does not reach Houston (an inference: Houston's loader is not public).",
        "Put the URL in Houston's backend Secret (`astronomer.houston.backendSecretName`) and record it, with a placeholder password, under `harness.houston.connection`.";
    UNKNOWN_FIELD = "KRB901" "unknown-field" Warning,
        "A field that the model does not know appears where every field is known; most likely misspelled, and ignored by the platform.",
        "Correct the field name, or remove it.";
    UNMODELLED_FIELD = "KRB902" "unmodelled-field" Info,
        "A values.yaml key outside what the Kerberos flow reads; kept and not checked.",
        "Nothing to do unless it was meant to be one of the checked keys.";
}

pub fn by_id(id: &str) -> Option<&'static Rule> {
    ALL.iter().find(|r| r.id == id)
}
