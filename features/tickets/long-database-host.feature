@config @ticket @local @docker
Feature: Ticket: a stale keytab on a database with a long host name

  Reported: "After the DBAs rotated the postgres service key, Airflow lost its database. The
  PostgreSQL log shows a GSS failure whose text stops in the middle of the host name." The
  customer's database host name is 75 characters long. PostgreSQL keeps only 128 bytes of a GSS
  status message, so "keytab is likely out of date" is cut off and the server logs "incomplete
  GSS error report" instead. Replaying this file once failed before any login: a TLS certificate's
  common name cannot be longer than 64 characters. The harness now cuts the common name (clients
  match the subjectAltName) and reads the server's Kerberos trace when PostgreSQL cut a message.

  Scenario: The long host name works, and the stale keytab is diagnosed despite the cut message
    Given the customer's deployment file:
      """
      releaseName: finance-etl
      kerberosEnabled: true
      metadataConnectionJson:
        user: svc_airflow@CORP.EXAMPLE.COM
        pass: ${generated}
        host: customer-production-metadata-db-primary.us-east-1.internal.corp.example.com
        port: 5432
        db: finance_airflow
        sslmode: prefer
      resultBackendConnectionJson:
        user: svc_airflow@CORP.EXAMPLE.COM
        pass: ${generated}
        host: customer-production-metadata-db-primary.us-east-1.internal.corp.example.com
        port: 5432
        db: finance_airflow
        sslmode: prefer
      pgbouncerConfig:
        labels:
          krb-inject: enabled
        env:
          - name: KERBEROS_USER
            value: svc_airflow@CORP.EXAMPLE.COM
        extraIni: |
          server_gssauth_negotiate = allow
          server_krb_spn = postgres/customer-production-metadata-db-primary.us-east-1.internal.corp.example.com@CORP.EXAMPLE.COM
        extraIniMetadata: user=svc_airflow@CORP.EXAMPLE.COM
        extraIniResultBackend: user=svc_airflow@CORP.EXAMPLE.COM
      """
    And the control plane values "fixtures/values.yaml"
    When the deployment is linted
    Then lint reports no error and no warning
    When the environment is built from the deployment file
    And a client connects through PgBouncer to the metadata database as Airflow would
    Then the connection succeeds
    And pg_stat_gssapi shows the client's session GSS-authenticated as "svc_airflow@CORP.EXAMPLE.COM"
    Given the service principal's key is rotated in the KDC
    When the Kerberos user logs in to PostgreSQL with GSSAPI
    Then the login fails
    And the PostgreSQL log says "incomplete GSS error report"
    And the PostgreSQL log says "keytab is likely out of date"
