@config @ticket @local @docker
Feature: Ticket: PgBouncer stopped logging in after the database moved to a new host

  Reported: "We moved the Airflow database to airflowdb.prod.corp.example.com and updated both
  connections. Since then the PgBouncer pod logs a GSSAPI failure and the Airflow UI shows the
  metadatabase as unhealthy." The customer's extraIni still names the old host in
  server_krb_spn. The replay uses the customer's realm, principal, host and database names.

  Scenario: The customer's file, run as written, fails where the customer's does
    Given the customer's deployment file:
      """
      releaseName: data-platform
      kerberosEnabled: true
      metadataConnectionJson:
        user: svc_airflow@CORP.EXAMPLE.COM
        pass: ${generated}
        host: airflowdb.prod.corp.example.com
        port: 5432
        db: airflow_meta
        sslmode: prefer
      resultBackendConnectionJson:
        user: svc_airflow@CORP.EXAMPLE.COM
        pass: ${generated}
        host: airflowdb.prod.corp.example.com
        port: 5432
        db: airflow_results
        sslmode: prefer
      pgbouncerConfig:
        labels:
          krb-inject: enabled
        env:
          - name: KERBEROS_USER
            value: svc_airflow@CORP.EXAMPLE.COM
        extraIni: |
          server_gssauth_negotiate = allow
          server_krb_spn = postgres/airflowdb-old.corp.example.com@CORP.EXAMPLE.COM
        extraIniMetadata: user=svc_airflow@CORP.EXAMPLE.COM
        extraIniResultBackend: user=svc_airflow@CORP.EXAMPLE.COM
      """
    When the deployment is linted
    Then lint exits with 1
    And lint reports KRB011 as error in the deployment file
    When the environment is built from the deployment file as written, errors included
    And a client connects through PgBouncer to the metadata database as Airflow would
    Then the connection fails within 10 seconds with "Server postgres/airflowdb-old.corp.example.com@CORP.EXAMPLE.COM not found in Kerberos database"
    And the PgBouncer log says "GSSAPI login to server failed (spn=postgres/airflowdb-old.corp.example.com@CORP.EXAMPLE.COM)"

  Scenario: The corrected file reaches the database as the customer's principal
    Given the customer's deployment file:
      """
      releaseName: data-platform
      kerberosEnabled: true
      metadataConnectionJson:
        user: svc_airflow@CORP.EXAMPLE.COM
        pass: ${generated}
        host: airflowdb.prod.corp.example.com
        port: 5432
        db: airflow_meta
        sslmode: prefer
      resultBackendConnectionJson:
        user: svc_airflow@CORP.EXAMPLE.COM
        pass: ${generated}
        host: airflowdb.prod.corp.example.com
        port: 5432
        db: airflow_results
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
        extraIniMetadata: user=svc_airflow@CORP.EXAMPLE.COM
        extraIniResultBackend: user=svc_airflow@CORP.EXAMPLE.COM
      """
    When the deployment is linted
    Then lint reports no error and no warning
    When the environment is built from the deployment file
    And a client connects through PgBouncer to the result-backend database as Airflow would
    Then the connection succeeds
    And pg_stat_gssapi shows the client's session GSS-authenticated as "svc_airflow@CORP.EXAMPLE.COM"
    And the PgBouncer log says "GSSAPI login to server succeeded (spn=postgres/airflowdb.prod.corp.example.com@CORP.EXAMPLE.COM, client=svc_airflow@CORP.EXAMPLE.COM)"
