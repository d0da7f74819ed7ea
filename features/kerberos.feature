@kdc @postgres @local @docker @kind
Feature: A throwaway realm and a database that admits the Kerberos user through GSSAPI only

  Every scenario gets its own MIT realm and PostgreSQL cluster on free loopback ports. Names come
  from the run's configuration ({realm}, {principal}, {db_host}), so a replayed customer
  configuration runs the same scenarios.

  Background:
    Given the Kerberos reference environment

  Scenario: A principal gets a ticket from its keytab
    When the client principal gets a ticket from its keytab
    Then the ticket cache holds a ticket for "{principal}"
    And the ticket cache holds a ticket for "krbtgt/{realm}@{realm}"

  Scenario: The Kerberos user logs in to PostgreSQL directly
    When the Kerberos user logs in to PostgreSQL with GSSAPI
    Then the login succeeds
    And the session is GSS-authenticated as "{principal}"
    And the PostgreSQL log shows a GSS-authenticated connection for "{principal}"

  Scenario: A password login is refused even when the role has a password
    Given the Kerberos role has a valid password
    When the Kerberos user logs in to PostgreSQL with that password
    Then the login fails with "unsupported authentication method"
    And the server asked for GSSAPI authentication, not a password

  Scenario: No Kerberos credentials
    When a client without Kerberos credentials logs in to PostgreSQL with GSSAPI
    Then the login fails with "No credentials were supplied"

  Scenario: The service principal is not in the server's keytab
    Given the database server's keytab holds only "postgres/other.{db_host}@{realm}"
    When the Kerberos user logs in to PostgreSQL with GSSAPI
    Then the login fails
    And the PostgreSQL log says "not found in keytab"

  Scenario: The service principal is unknown to the KDC
    When the Kerberos user logs in to PostgreSQL with GSSAPI asking for "postgres/nosuch.{db_host}@{realm}"
    Then the login fails with "not found in Kerberos database"

  Scenario: The server's keytab is stale after the service key was rotated
    Given the service principal's key is rotated in the KDC
    When the Kerberos user logs in to PostgreSQL with GSSAPI
    Then the login fails
    And the PostgreSQL log says "keytab is likely out of date"

  Scenario: The principal does not match the role
    Given a principal "other_user@{realm}" with its own keytab
    When "other_user@{realm}" logs in to PostgreSQL with GSSAPI as role "{principal}"
    Then the login fails with "GSSAPI authentication failed for user"
    And the PostgreSQL log says "do not match"
