@apiserver @local
Feature: The reference webhook injects Kerberos credentials through a real Kubernetes API server

  The API server is Kubernetes v1.20.2, built from Debian's `kubernetes` source package
  (kind/apiserver/build.sh), on Debian's etcd, on loopback, with its own CA, a token file and
  RBAC. The reference webhook (kind/webhook) is registered as a cluster calls it: HTTPS, the
  run's CA as caBundle, one objectSelector per injector selector, failurePolicy Fail. There is
  no node: pods are admitted, mutated and stored, never run.

  Background:
    Given the control plane values "fixtures/values.yaml"
    And a Kubernetes API server with the reference webhook registered for the injector's selectors

  Scenario: The deployment's PgBouncer pod comes back with Kerberos credentials
    Given the deployment file "fixtures/deployments/kerberos.yaml"
    When the deployment's PgBouncer pod is created through the API server
    Then the stored pod has Kerberos credentials for uid 65534

  Scenario: Houston's PgBouncer pod is selected through the chart's label rewrite
    When Houston's PgBouncer pod is created through the API server
    Then the stored pod carries the label "krb_inject: enabled" and no label "krb-inject"
    And the stored pod has Kerberos credentials for uid 65534

  Scenario: A PgBouncer pod with labels the injector does not select comes back untouched
    Given the customer's deployment file:
      """
      releaseName: analytics
      namespace: astronomer-analytics
      kerberosEnabled: true
      metadataConnectionJson:
        user: astro_user@EXAMPLE.TEST
        pass: ${generated}
        host: db.example.test
        port: 5432
        db: analytics_airflow
      resultBackendConnectionJson:
        user: astro_user@EXAMPLE.TEST
        pass: ${generated}
        host: db.example.test
        port: 5432
        db: analytics_airflow
      pgbouncerConfig:
        labels:
          kerberos-inject: "true"
        extraIni: |
          server_gssauth_negotiate = allow
          server_krb_spn = postgres/db.example.test@EXAMPLE.TEST
        extraIniMetadata: user=astro_user@EXAMPLE.TEST
        extraIniResultBackend: user=astro_user@EXAMPLE.TEST
      """
    When the deployment is linted
    Then lint reports KRB017 as error in the deployment file
    And lint's KRB017 message names the pod labels "kerberos-inject: true"
    When the deployment's PgBouncer pod is created through the API server
    Then the stored pod is the pod as sent, without Kerberos credentials

  Scenario: With the webhook down, failurePolicy Fail refuses selected pods and only those
    Given the deployment file "fixtures/deployments/kerberos.yaml"
    When the webhook stops serving
    Then creating the deployment's PgBouncer pod is refused with "failed calling webhook"
    And a pod the injector does not select is still created
    When the webhook serves again
    Then the deployment's PgBouncer pod is created with Kerberos credentials

  Scenario: A pod mutated twice equals a pod mutated once
    Given the deployment file "fixtures/deployments/kerberos.yaml"
    When the deployment's PgBouncer pod is created through the API server
    Then the webhook returns an empty patch for the stored pod
    And a copy of the stored pod created again comes back with the same spec

  Scenario: Every manifest the harness renders is accepted by the API server
    Given the deployment file "fixtures/deployments/kerberos.yaml"
    When every manifest the harness renders is applied server-side
    Then the API server accepts all 19 of them
    And a Deployment with the misspelt field "securityContxt" is refused naming it

  Scenario: Every object the kind tier's plan applies before the platform is accepted by the API server
    Given the deployment file "fixtures/deployments/kerberos.yaml"
    And the Kerberos reference environment
    When the kind tier's plan is made for the deployment
    And every object the kind tier's plan applies is applied server-side
    Then the API server accepts all 19 of them
    And the kind plan's keytab Secrets hold the keytabs the realm exported
    And the kind plan's Houston Secrets are stored where Houston and its PgBouncer read them
    And the kind plan's Deployment with the misspelt field "securityContxt" is refused naming it

  Scenario: The kind substrate's namespace, Service and pod are accepted by the API server
    When the kind substrate's namespace, KDC Service and KDC pod are created through the API server
    Then the stored KDC pod is the kind substrate's pod, with the KDC Service's ClusterIP as kdc.example.test
