@pgbouncer @postgres @kdc @local @docker @kind
Feature: Clients reach the Kerberized database through PgBouncer with a password

  Airflow logs in to PgBouncer with the password in users.txt; PgBouncer logs in to PostgreSQL
  with GSSAPI, using the credentials the injector put into its pod (here: a keytab in its
  directory, named by KRB5_CLIENT_KTNAME).

  Background:
    Given the Kerberos reference environment

  Scenario: A client reaches PostgreSQL through PgBouncer as the Kerberos principal
    Given PgBouncer is configured as the deployment renders it
    When a client connects through PgBouncer to the metadata database
    Then the connection succeeds
    And pg_stat_gssapi shows the client's session GSS-authenticated as "{principal}"
    And the PgBouncer log says "GSSAPI login to server succeeded (spn={spn}"
    And the PostgreSQL log shows a GSS-authenticated connection for "{principal}"

  Scenario: PgBouncer has no Kerberos credentials
    Given PgBouncer is started without Kerberos credentials
    When a client connects through PgBouncer to the metadata database
    Then the connection fails within 10 seconds with "No credentials were supplied"
    And the PgBouncer log says "GSSAPI login to server failed (spn={spn})"

  Scenario: server_krb_spn names a principal the KDC does not know
    Given PgBouncer is started with server_krb_spn "postgres/nosuch.{db_host}@{realm}"
    When a client connects through PgBouncer to the metadata database
    Then the connection fails within 10 seconds with "not found in Kerberos database"

  Scenario: The server keytab lacks the service principal PgBouncer asks for
    Given the database server's keytab holds only "postgres/other.{db_host}@{realm}"
    And PgBouncer is configured as the deployment renders it
    When a client connects through PgBouncer to the metadata database
    Then the connection fails within 10 seconds with "The ticket isn't for us"

  Scenario: The server keytab is stale after the service key was rotated
    Given the service principal's key is rotated in the KDC
    And PgBouncer is configured as the deployment renders it
    When a client connects through PgBouncer to the metadata database
    Then the connection fails within 10 seconds with "Key version is not available"
    And the PostgreSQL log says "keytab is likely out of date"

  Scenario: PgBouncer's keytab belongs to another principal than the role
    Given a principal "other_user@{realm}" with its own keytab
    And PgBouncer is started with the keytab of "other_user@{realm}"
    When a client connects through PgBouncer to the metadata database
    Then the connection fails within 10 seconds with "GSSAPI authentication failed for user"
    And the PostgreSQL log says "do not match"

  Scenario: The client's password does not match users.txt
    Given PgBouncer is configured as the deployment renders it
    When a client connects through PgBouncer to the metadata database with a wrong password
    Then the connection fails within 10 seconds with "SASL authentication failed"
    And the PgBouncer log says "{release}-metadata/{principal}@"
    And the PgBouncer log says "password authentication failed"
    And PostgreSQL saw no login attempt from PgBouncer

  Scenario: server_gssauth_negotiate is disable
    Given PgBouncer is started with server_gssauth_negotiate "disable"
    When a client connects through PgBouncer to the metadata database
    Then the connection fails within 10 seconds with "server_gssauth_negotiate = disable"

  Scenario: A per-database server_krb_spn wins over the global one
    Given PgBouncer is started with server_krb_spn "postgres/wrong.{db_host}@{realm}" and the metadata database's server_krb_spn "{spn}"
    When a client connects through PgBouncer to the metadata database
    Then the connection succeeds
    And pg_stat_gssapi shows the client's session GSS-authenticated as "{principal}"
    And the PgBouncer log says "GSSAPI login to server succeeded (spn={spn}, client={principal})"

  Scenario: An empty server_krb_spn falls back to the host-based name of the [databases] host
    # The fork then asks for postgres@<host> (GSS_C_NT_HOSTBASED_SERVICE), which the default
    # realm turns into postgres/<host>@<realm>: a server holding that key admits it.
    Given the database server's keytab holds only "postgres/{postgres_host}@{realm}"
    And PgBouncer is started with server_krb_spn ""
    When a client connects through PgBouncer to the metadata database
    Then the connection succeeds
    And pg_stat_gssapi shows the client's session GSS-authenticated as "{principal}"
    And the PgBouncer log says "GSSAPI login to server succeeded (spn=postgres/{postgres_host}, client={principal})"

  Scenario: An invalid server_gssauth_negotiate value is a configuration error
    When PgBouncer is started with the invalid server_gssauth_negotiate "maybe"
    Then PgBouncer refuses to start, naming "server_gssauth_negotiate"
