@config @ticket @local @docker
Feature: Ticket: the Airflow UI reports the metadatabase unhealthy; PgBouncer has a valid keytab

  Reported: "klist in the PgBouncer pod shows a ticket for svc_airflow@CORP.EXAMPLE.COM, yet every
  Airflow component fails to reach the database." The connection users were written without the
  realm, so PgBouncer logs in to PostgreSQL as role `svc_airflow` while holding credentials of
  `svc_airflow@CORP.EXAMPLE.COM`; with include_realm=1 PostgreSQL refuses the mapping.

  Scenario: Users without @REALM are refused by PostgreSQL, not by Kerberos
    Given the customer's deployment file:
      """
      releaseName: data-platform
      kerberosEnabled: true
      metadataConnectionJson:
        user: svc_airflow
        pass: ${generated}
        host: airflowdb.prod.corp.example.com
        port: 5432
        db: airflow_meta
        sslmode: prefer
      resultBackendConnectionJson:
        user: svc_airflow
        pass: ${generated}
        host: airflowdb.prod.corp.example.com
        port: 5432
        db: airflow_meta
        sslmode: prefer
      pgbouncerConfig:
        labels:
          krb-inject: enabled
        env:
          - name: KERBEROS_USER
            value: svc_airflow@CORP.EXAMPLE.COM
        extraIni: |
          server_gssauth_negotiate = allow
          server_krb_spn = postgres/airflowdb.prod.corp.example.com@CORP.EXAMPLE.COM
        extraIniMetadata: user=svc_airflow
        extraIniResultBackend: user=svc_airflow
      """
    When the deployment is linted
    Then lint exits with 1
    And lint reports KRB003 as error in the deployment file
    When the environment is built from the deployment file as written, errors included
    And a client connects through PgBouncer to the metadata database as Airflow would
    Then the connection fails within 10 seconds with 'GSSAPI authentication failed for user "svc_airflow"'
    And the PgBouncer log says "GSSAPI login to server rejected by server (spn=postgres/airflowdb.prod.corp.example.com@CORP.EXAMPLE.COM)"
    And the PostgreSQL log says "provided user name (svc_airflow) and authenticated user name (svc_airflow@CORP.EXAMPLE.COM) do not match"
