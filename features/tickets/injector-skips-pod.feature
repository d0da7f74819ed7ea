@config @ticket @local @docker
Feature: Ticket: PgBouncer starts, but it has no Kerberos credentials

  Reported: "The PgBouncer pod is Running and the krb5.conf ConfigMap is mounted, but every
  Airflow connection fails, and the mutating webhook's log never mentions the pod." The webhook
  selects pods labelled `krb-inject: enabled` (recorded in the control plane's values under
  harness.injector.selectors); the deployment's pgbouncerConfig.labels say
  `kerberos-inject: "true"`, so the pod is never injected with a keytab.

  Scenario: Labels the injector does not select leave PgBouncer without credentials
    Given the control plane values "fixtures/values.yaml"
    And the customer's deployment file:
      """
      releaseName: analytics
      kerberosEnabled: true
      metadataConnectionJson:
        user: svc_airflow@CORP.EXAMPLE.COM
        pass: ${generated}
        host: pg-airflow.corp.example.com
        port: 5432
        db: analytics_airflow
        sslmode: prefer
      resultBackendConnectionJson:
        user: svc_airflow@CORP.EXAMPLE.COM
        pass: ${generated}
        host: pg-airflow.corp.example.com
        port: 5432
        db: analytics_airflow
        sslmode: prefer
      pgbouncerConfig:
        labels:
          kerberos-inject: "true"
        env:
          - name: KERBEROS_USER
            value: svc_airflow@CORP.EXAMPLE.COM
        extraIni: |
          server_gssauth_negotiate = allow
          server_krb_spn = postgres/pg-airflow.corp.example.com@CORP.EXAMPLE.COM
        extraIniMetadata: user=svc_airflow@CORP.EXAMPLE.COM
        extraIniResultBackend: user=svc_airflow@CORP.EXAMPLE.COM
      """
    When the deployment is linted
    Then lint exits with 1
    And lint reports KRB017 as error in the deployment file
    When the environment is built from the deployment file as written, errors included
    And a client connects through PgBouncer to the metadata database as Airflow would
    Then the connection fails within 10 seconds with "No credentials were supplied"
    And the PgBouncer log says "GSSAPI login to server failed (spn=postgres/pg-airflow.corp.example.com@CORP.EXAMPLE.COM)"
