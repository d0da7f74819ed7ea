@airflow @pgbouncer @postgres @kdc @local @docker @kind
Feature: Airflow reaches a healthy UI through the Kerberized path

  Airflow's metadata connection and its Celery result backend log in to PgBouncer with the
  password in users.txt; PgBouncer logs in to PostgreSQL with GSSAPI. The CeleryExecutor uses a
  Redis broker and one Celery worker. Steps without a version run the one E2E_AIRFLOW names
  (3, the default, or 2).

  Background:
    Given the Kerberos reference environment

  Scenario Outline: A Kerberos-enabled deployment reaches a healthy Airflow UI
    Given PgBouncer is configured as the deployment renders it
    When Airflow "<version>" is deployed with its connections through PgBouncer
    Then every component in Airflow's health report is healthy
    And Airflow's REST API rejects a malformed parameter and answers a valid one
    And a browser logs in to the Airflow UI and sees it healthy
    And pg_stat_gssapi shows Airflow's connections GSS-authenticated as "{principal}"
    When the DAG "harness_probe" is triggered
    Then the DAG run succeeds on the Celery worker
    And PgBouncer's pools show traffic on "{release}-metadata" and "{release}-result-backend"
    And Airflow stops before PgBouncer and PostgreSQL, leaving no process behind

    @airflow3
    Examples: Airflow 3
      | version |
      | 3.3.2   |

    @airflow2
    Examples: Airflow 2
      | version |
      | 2.11.2  |

  Scenario: Airflow's PgBouncer has no Kerberos credentials
    Given PgBouncer is started without Kerberos credentials
    When Airflow is deployed with its connections through PgBouncer
    Then Airflow does not become healthy, and the harness says so within 60 seconds
    And the diagnosis says "No credentials were supplied"
    And the diagnosis says "GSSAPI login to server failed (spn={spn})"
    And the diagnosis points at the PgBouncer log line

  Scenario: Airflow's metadata password does not match users.txt
    Given PgBouncer is configured as the deployment renders it
    When Airflow is deployed with a metadata connection password that differs from users.txt
    Then Airflow does not become healthy, and the harness says so within 60 seconds
    And the diagnosis says "password authentication failed"
    And the diagnosis says "does not match users.txt"
    And the diagnosis says "{release}-metadata/{principal}@"
    And the diagnosis points at the PgBouncer log line
