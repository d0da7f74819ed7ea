@airflow @config @pgbouncer @postgres @kdc @local @docker @kind
Feature: The Celery result backend is a connection of its own

  Houston's resultBackendConnectionJson has its own user, password and database; the deployment
  chart gives it its own PgBouncer alias, `<release>-result-backend`. Airflow's Celery workers
  store task results through that alias into that database, never into the metadata database.

  Scenario: A result backend with its own database stores the Celery result there
    Given the deployment file "fixtures/deployments/result-backend-database.yaml"
    When the deployment is linted
    Then lint reports no error and no warning
    When the environment is built from the deployment file
    And Airflow is deployed with its connections through PgBouncer
    Then every component in Airflow's health report is healthy
    And pg_stat_gssapi shows Airflow's connections GSS-authenticated as "{principal}"
    When the DAG "harness_probe" is triggered
    Then the DAG run succeeds on the Celery worker
    And the Celery result is in the result backend's own database, not in the metadata database
    And PgBouncer's pools show traffic on "{release}-metadata" and "{release}-result-backend"
    And Airflow stops before PgBouncer and PostgreSQL, leaving no process behind
