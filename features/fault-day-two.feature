@fault @pgbouncer @postgres @kdc @local
Feature: Day two: a rotated server key, a restarted database, expiring tickets, a skewed clock, reverse DNS

  Each fault is reproduced with the text the component itself logs or the client sees, and how
  the set-up recovers. Where PgBouncer has to log in again after a failed login the scenarios set
  server_login_retry = 1 (default 15 s: recovery then waits up to 15 s longer). "PgBouncer logs
  in to the server again" drops its server connections (admin console KILL and RESUME), as
  server_lifetime or a PgBouncer restart would, and connects a client.

  Background:
    Given the Kerberos reference environment

  Scenario: The server key is rotated while PgBouncer holds a service ticket: the stale server keytab is named, the new one recovers
    Given PgBouncer is configured as the deployment renders it, plus "server_login_retry = 1"
    And a client has connected through PgBouncer to the metadata database
    When the service principal's key is rotated in the KDC
    And PgBouncer logs in to the server again
    # The cached service ticket is for the old key, which the server's keytab still holds.
    Then the connection succeeds
    When PgBouncer's ticket cache is emptied
    And PgBouncer logs in to the server again
    Then the connection fails within 5 seconds with "GSSAPI login to server failed (spn={spn}): Unspecified GSS failure.  Minor code may provide more information: Key version is not available"
    And the PostgreSQL log says "Request ticket server {spn} kvno 3 not found in keytab; keytab is likely out of date"
    When the database server's keytab is replaced by one with "the new key"
    And PgBouncer logs in to the server again
    Then the connection succeeds

  Scenario: A server keytab with only the new key refuses the ticket PgBouncer holds for the old one, until it keeps both
    Given PgBouncer is configured as the deployment renders it, plus "server_login_retry = 1"
    And a client has connected through PgBouncer to the metadata database
    When the service principal's key is rotated in the KDC
    And the database server's keytab is replaced by one with "only the new key"
    And PgBouncer logs in to the server again
    Then the connection fails within 5 seconds with "GSSAPI login to server failed (spn={spn}): Unspecified GSS failure.  Minor code may provide more information: Key version is not available"
    And the PostgreSQL log says "Request ticket server {spn} kvno 2 not found in keytab; ticket is likely out of date"
    When the database server's keytab is replaced by one with "the old and the new key"
    And PgBouncer logs in to the server again
    Then the connection succeeds

  Scenario: PostgreSQL restarted under load: PgBouncer logs in again over GSSAPI and only the queries in flight fail
    Given PgBouncer is configured as the deployment renders it, plus "server_login_retry = 1"
    And 20 clients run queries through PgBouncer on a full pool
    When PostgreSQL is restarted
    Then after the restart the PgBouncer log says "GSSAPI login to server succeeded (spn={spn}, client={principal})"
    And the pooled clients complete queries again within 10 seconds
    And no pooled client saw an error but the queries in flight when PostgreSQL stopped
    When a client connects through PgBouncer to the result-backend database
    Then the connection succeeds

  Scenario: With the injected keytab, PgBouncer logs in again after its tickets expire
    Given tickets of "{principal}" live at most 4 seconds
    And PgBouncer is configured as the deployment renders it
    And a client has connected through PgBouncer to the metadata database
    When PgBouncer's tickets have expired
    And PgBouncer logs in to the server again
    Then the connection succeeds
    And since the tickets expired the KDC log says "ISSUE: "
    And since the tickets expired the KDC log says "{principal} for krbtgt/{realm}@{realm}"
    And since the tickets expired the PgBouncer log says "GSSAPI login to server succeeded (spn={spn}, client={principal})"

  Scenario: With only an injected ticket cache, PgBouncer's first login after the tickets expire fails naming the expiry
    Given tickets of "{principal}" live at most 4 seconds
    And PgBouncer is started with a ticket cache and no keytab
    And a client has connected through PgBouncer to the metadata database
    When PgBouncer's tickets have expired
    And PgBouncer logs in to the server again
    Then the connection fails within 5 seconds with "GSSAPI login to server failed (spn={spn}): Unspecified GSS failure.  Minor code may provide more information: Ticket expired"
    And since the tickets expired the PgBouncer log says "GSSAPI login to server failed (spn={spn}): Unspecified GSS failure.  Minor code may provide more information: Ticket expired"

  Scenario: A refresh sidecar renewing the ticket cache from a keytab keeps PgBouncer logging in past the expiry
    Given tickets of "{principal}" live at most 4 seconds
    And PgBouncer is started with no keytab and a sidecar that renews its ticket cache from a keytab every 1 second
    And a client has connected through PgBouncer to the metadata database
    When PgBouncer's tickets have expired
    And PgBouncer logs in to the server again
    Then the connection succeeds
    And since the tickets expired the PgBouncer log says "GSSAPI login to server succeeded (spn={spn}, client={principal})"
    And the sidecar's log says "krb5-refresh: renewed the ticket cache of {principal}"

  Scenario: PgBouncer's clock 10 minutes ahead with an injected ticket cache: the KDC refuses with clock skew
    Given PgBouncer is started with a ticket cache and no keytab, its clock 10 minutes ahead
    When a client connects through PgBouncer to the metadata database
    Then the connection fails within 5 seconds with "GSSAPI login to server failed (spn={spn}): Unspecified GSS failure.  Minor code may provide more information: Clock skew too great"
    And the KDC log says "{principal} for {spn}, Clock skew too great"
    And PgBouncer's own log is stamped 10 minutes ahead of the harness's clock

  Scenario: PgBouncer's clock 10 minutes ahead with the injected keytab: MIT corrects for it from the KDC's reply
    Given PgBouncer is configured as the deployment renders it, its clock 10 minutes ahead
    When a client connects through PgBouncer to the metadata database
    Then the connection succeeds
    And the PgBouncer log says "GSSAPI login to server succeeded (spn={spn}, client={principal})"
    And PgBouncer's own log is stamped 10 minutes ahead of the harness's clock

  Scenario: The reverse-DNS trap: with rdns on, an empty server_krb_spn asks for the reverse name of the database address
    # The fork's host-based fallback (postgres@<[databases] host>) is what MIT canonicalises;
    # here the [databases] host is the address PgBouncer dials, and its reverse name comes from
    # the resolver where PgBouncer runs (/etc/hosts locally), which the scenario only reads.
    Given the database server's keytab holds only "postgres/{postgres_host}@{realm}"
    And PgBouncer is started with server_krb_spn "" and "rdns = true; dns_canonicalize_hostname = true" in its krb5.conf
    And the database address has a reverse name other than the database host
    When a client connects through PgBouncer to the metadata database
    Then the connection fails within 5 seconds with "GSSAPI login to server failed (spn=postgres/{postgres_host}): Unspecified GSS failure.  Minor code may provide more information: Server postgres/{postgres_reverse_name}@{realm} not found in Kerberos database"
    And the KDC log says "{principal} for postgres/{postgres_reverse_name}@{realm}, Server not found in Kerberos database"

  Scenario: The reverse-DNS trap does not reach a full server_krb_spn: the deployment's SPN logs in with rdns on
    Given PgBouncer is started with server_krb_spn "{spn}" and "rdns = true; dns_canonicalize_hostname = true" in its krb5.conf
    And the database address has a reverse name other than the database host
    When a client connects through PgBouncer to the metadata database
    Then the connection succeeds
    And the PgBouncer log says "GSSAPI login to server succeeded (spn={spn}, client={principal})"
