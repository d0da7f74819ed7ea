@fault @pgbouncer @postgres @kdc @local
Feature: PgBouncer keeps serving when the KDC is slow or down, and the generic image is named

  A server login that needs the KDC (a first login, an emptied or expired ticket cache, another
  SPN) must not freeze the clients PgBouncer already serves: the GSS step runs off PgBouncer's
  event loop, bounded by server_connect_timeout. New logins fail with a GSS error naming the KDC
  and recover once it is back. The generic PgBouncer image has no GSSAPI support at all; the
  harness says so from PgBouncer's own log, before any timeout. The KDC that stops answering is
  a paused container; Kubernetes cannot freeze a pod, so those scenarios are not @kind.
  The scenarios allow pooled clients 1000 ms without a completed query: the GSS step on the
  event loop stalled them for the whole KDC stop (3 s here, server_connect_timeout in the silent
  case), while scenarios sharing 2 loaded cores in CI, with the docker tier's containers and
  Airflows beside them, left gaps of 84-133 ms in a normal run and once more than 250 ms; the
  bench figure kdc_stall_max_gap_ms holds the 50 ms floor on a quiet machine.

  Background:
    Given the Kerberos reference environment

  @docker
  Scenario: A stopped KDC does not stall pooled clients while a server login waits for it
    Given PgBouncer is configured as the deployment renders it, plus "server_connect_timeout = 30"
    And 20 clients run queries through PgBouncer on a full pool
    When PgBouncer's ticket cache is emptied and the KDC stops answering
    And a client connects through PgBouncer to the result-backend database, waiting in the background
    And 3 seconds pass
    And the KDC answers again
    Then the waiting client's connection succeeds within 10 seconds
    And the pooled clients never went more than 1000 ms without a completed query
    And no pooled client saw an error

  @docker
  Scenario: A KDC that stays silent fails new server logins with an error naming the KDC, and logins recover
    Given PgBouncer is configured as the deployment renders it, plus "server_connect_timeout = 3; server_login_retry = 1"
    And 20 clients run queries through PgBouncer on a full pool
    When PgBouncer's ticket cache is emptied and the KDC stops answering
    And a client connects through PgBouncer to the result-backend database
    Then the connection fails within 8 seconds with "GSSAPI login to server failed (spn={spn}): no answer from the KDC of realm {realm} (kdc = {kdc_host}:"
    And the PgBouncer log says "no answer from the KDC of realm {realm}"
    And the pooled clients never went more than 1000 ms without a completed query
    When the KDC answers again
    And 2 seconds pass
    And a client connects through PgBouncer to the result-backend database
    Then the connection succeeds
    And no pooled client saw an error

  @docker @kind
  Scenario: The KDC is down: new server logins fail at once naming the KDC, and recover once it is back
    Given PgBouncer is configured as the deployment renders it, plus "server_login_retry = 1"
    And 20 clients run queries through PgBouncer on a full pool
    When PgBouncer's ticket cache is emptied and the KDC is stopped
    And a client connects through PgBouncer to the result-backend database
    Then the connection fails within 5 seconds with "Cannot contact any KDC for realm '{realm}' [the KDC of realm {realm} (kdc = {kdc_host}:"
    And the pooled clients never went more than 1000 ms without a completed query
    When the KDC is started again
    And 2 seconds pass
    And a client connects through PgBouncer to the result-backend database
    Then the connection succeeds
    And no pooled client saw an error

  @docker @kind
  Scenario: The generic PgBouncer image refuses the deployment's Kerberos settings, and the harness says why
    When the generic PgBouncer image is started as the deployment renders it
    Then within 15 seconds the harness says "PgBouncer has no GSSAPI support: it does not know `server_gssauth_negotiate`"

  @docker @kind
  Scenario: The generic PgBouncer image without the Kerberos settings is named before any timeout
    Given the generic PgBouncer image is started without server_gssauth_negotiate and server_krb_spn
    When a client connects through PgBouncer to the metadata database while the harness watches PgBouncer's log
    Then within 5 seconds the harness says "PgBouncer has no GSSAPI support: PostgreSQL asked it for a Kerberos (GSSAPI) login and it logged `unknown/unsupported auth method: 7`"
