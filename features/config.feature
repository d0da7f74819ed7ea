@config @local @docker @kind
Feature: The configuration a user applies is linted, and what it renders is what runs

  The deployment file is the `variables` of Houston's upsertDeployment/createDeployment mutation.
  `cargo xtask lint` checks it with stable rule ids (harness/config/RULES.md); the environment is
  built from the same file with the same renderer the platform's chart follows, so a customer's
  file that is wrong fails here the way it fails on the platform.

  Scenario: The reference deployment lints clean and reaches a healthy stack
    Given the deployment file "fixtures/deployments/kerberos.yaml"
    And the control plane values "fixtures/values.yaml"
    When the deployment is linted
    Then lint reports no error and no warning
    When the environment is built from the deployment file
    Then PgBouncer runs an ini that says "server_gssauth_negotiate = allow"
    And PgBouncer runs an ini that says "server_krb_spn = {spn}"
    When a client connects through PgBouncer to the metadata database as Airflow would
    Then the connection succeeds
    And pg_stat_gssapi shows the client's session GSS-authenticated as "{principal}"
    And the PgBouncer log says "GSSAPI login to server succeeded (spn={spn}, client={principal})"
    When a client connects through PgBouncer to the result-backend database as Airflow would
    Then the connection succeeds
    And pg_stat_gssapi shows the client's session GSS-authenticated as "{principal}"

  Scenario: The JSON twin of the reference deployment reaches a healthy stack
    Given the deployment file "fixtures/deployments/kerberos.json"
    When the deployment is linted
    Then lint reports no error and no warning
    When the environment is built from the deployment file
    And a client connects through PgBouncer to the metadata database as Airflow would
    Then the connection succeeds
    And pg_stat_gssapi shows the client's session GSS-authenticated as "{principal}"

  Scenario Outline: A broken deployment is rejected by lint with its rule id: <file>
    Given the deployment file "fixtures/deployments/broken/<file>.yaml"
    And the control plane values "fixtures/values.yaml"
    When the deployment is linted
    Then lint exits with 1
    And lint reports <rule> as error in the deployment file
    And replaying the deployment is refused naming <rule>, the field and the fix

    Examples:
      | file                     | rule   |
      | connection-field-missing | KRB002 |
      | connection-missing       | KRB002 |
      | client-sslmode-require   | KRB026 |
      | env-as-map               | KRB025 |
      | env-value-from           | KRB025 |
      | label-not-string         | KRB025 |
      | pass-with-space          | KRB027 |
      | pgbouncer-unknown-key    | KRB025 |
      | port-quoted              | KRB025 |
      | result-backend-sslmode-missing | KRB025 |
      | unknown-connection-field | KRB025 |
      | extra-ini-section        | KRB015 |
      | extra-ini-syntax         | KRB015 |
      | extra-metadata-absent    | KRB006 |
      | extra-user-mismatch      | KRB007 |
      | extra-user-missing       | KRB006 |
      | extras-multiline         | KRB008 |
      | extras-section           | KRB008 |
      | extras-spaced-equals     | KRB008 |
      | host-with-port           | KRB019 |
      | host-with-scheme         | KRB019 |
      | kerberos-disabled        | KRB001 |
      | kerberos-enabled-missing | KRB001 |
      | labels-missing           | KRB016 |
      | labels-selector          | KRB017 |
      | negotiate-disable        | KRB009 |
      | negotiate-missing        | KRB009 |
      | pass-missing             | KRB021 |
      | port-not-integer         | KRB018 |
      | port-out-of-range        | KRB018 |
      | realm-mismatch           | KRB005 |
      | spn-host-mismatch        | KRB011 |
      | spn-malformed            | KRB010 |
      | spn-missing              | KRB010 |
      | spn-realm-mismatch       | KRB012 |
      | sslmode-invalid          | KRB020 |
      | two-principals           | KRB024 |
      | user-not-principal       | KRB003 |
      | unknown-field            | KRB001 |

  Scenario Outline: A questionable deployment passes lint with its warning: <file>
    Given the deployment file "fixtures/deployments/broken/<file>.yaml"
    And the control plane values "fixtures/values.yaml"
    When the deployment is linted
    Then lint exits with 0
    And lint reports <rule> as <severity> in the deployment file
    And replaying the deployment is accepted

    Examples:
      | file                     | rule   | severity |
      | ini-overrides-chart      | KRB014 | warning  |
      | ini-unknown-key          | KRB013 | warning  |
      | pass-literal             | KRB022 | info     |
      | realm-lowercase          | KRB004 | warning  |
      | release-name-invalid     | KRB023 | warning  |

  Scenario Outline: A file that cannot be parsed stops lint with its position: <file>
    Given the deployment file "fixtures/malformed/<file>"
    When the deployment is linted
    Then lint stops with a message naming the file and "<says>"

    Examples:
      | file                            | says   |
      | bad-json.json                   | :      |
      | bad-syntax.yaml                 | :      |
      | connection-string-not-json.yaml | JSON   |
      | env-wrong-type.yaml             | env    |
      | wrong-type.yaml                 | :      |
      | values-wrong-type.yaml          | values |

  Scenario Outline: Run as written, <file> fails the way it fails on the platform
    Given the deployment file "fixtures/deployments/broken/<file>.yaml"
    And the control plane values "fixtures/values.yaml"
    When the environment is built from the deployment file as written, errors included
    Then PgBouncer runs an ini that says "<ini line>"
    When a client connects through PgBouncer to the <database> database as Airflow would
    Then the connection fails within 10 seconds with '<diagnosis>'

    Examples:
      | file                | database       | ini line                                                  | diagnosis                                                                  |
      | negotiate-disable   | metadata       | server_gssauth_negotiate = disable                        | server_gssauth_negotiate = disable                                         |
      | negotiate-missing   | metadata       | server_krb_spn = postgres/db.example.test@EXAMPLE.TEST    | server_gssauth_negotiate = disable                                         |
      | spn-host-mismatch   | metadata       | server_krb_spn = postgres/db.example.com@EXAMPLE.TEST     | not found in Kerberos database                                             |
      | spn-realm-mismatch  | metadata       | server_krb_spn = postgres/db.example.test@EXAMPLE.COM     | Server krbtgt/EXAMPLE.COM@EXAMPLE.TEST not found in Kerberos database      |
      | user-not-principal  | metadata       | server_krb_spn = postgres/db.example.test@EXAMPLE.TEST    | GSSAPI authentication failed for user "astro_user"                         |
      | extra-user-mismatch | result-backend | server_krb_spn = postgres/db.example.test@EXAMPLE.TEST    | GSSAPI authentication failed for user "airflow@EXAMPLE.TEST"               |
      | labels-missing      | metadata       | server_gssauth_negotiate = allow                          | No credentials were supplied                                               |
      | labels-selector     | metadata       | server_gssauth_negotiate = allow                          | No credentials were supplied                                               |
      | spn-malformed       | metadata       | server_gssauth_negotiate = allow                          | Server db.example.test@EXAMPLE.TEST not found in Kerberos database         |
      | two-principals      | result-backend | server_krb_spn = postgres/db.example.test@EXAMPLE.TEST    | GSSAPI authentication failed for user "celery_user@EXAMPLE.TEST"           |

  Scenario Outline: Run as written, <file> still reaches the database: the error is latent
    Given the deployment file "fixtures/deployments/broken/<file>.yaml"
    When the environment is built from the deployment file as written, errors included
    And a client connects through PgBouncer to the metadata database as Airflow would
    Then the connection succeeds
    And pg_stat_gssapi shows the client's session GSS-authenticated as "{principal}"

    # extra-user-missing: without user= PgBouncer logs in as the client's name, which happens to
    # be the principal; it breaks as soon as the client name differs. spn-missing: the fork asks
    # for postgres/<configured host>, right as long as the pod's default realm is the database's.
    Examples:
      | file                  |
      | extra-user-missing    |
      | extra-metadata-absent |
      | spn-missing           |

  Scenario: Two principals, one pod: PgBouncer logs in to both databases with the pod's credential
    # The fork asks for the default initiator credential (GSS_C_NO_CREDENTIAL); MIT Kerberos
    # takes it from the injected keytab, which holds the pod's one principal. The metadata
    # database works; the result backend, whose role is another principal, is refused.
    Given the deployment file "fixtures/deployments/broken/two-principals.yaml"
    When the deployment is linted
    Then lint reports KRB024 as error in the deployment file
    When the environment is built from the deployment file as written, errors included
    And a client connects through PgBouncer to the metadata database as Airflow would
    Then the connection succeeds
    And pg_stat_gssapi shows the client's session GSS-authenticated as "{principal}"
    When a client connects through PgBouncer to the result-backend database as Airflow would
    Then the connection fails within 10 seconds with 'GSSAPI authentication failed for user "celery_user@EXAMPLE.TEST"'
    And the PostgreSQL log says "provided user name (celery_user@EXAMPLE.TEST) and authenticated user name ({principal}) do not match"
    And the PgBouncer log says "GSSAPI login to server rejected by server"

  Scenario Outline: A control plane that breaks the flow is named by lint: <file>
    Given the deployment file "fixtures/deployments/kerberos.yaml"
    And the control plane values "fixtures/values/broken/<file>.yaml"
    When the deployment is linted
    Then lint exits with <exit>
    And lint reports <rule> as <severity> in the values file

    Examples:
      | file                          | rule   | severity | exit |
      | deployment-image-generic      | KRB113 | error    | 1    |
      | deployment-image-old-tag      | KRB104 | warning  | 0    |
      | extra-ini-disallowed          | KRB114 | error    | 1    |
      | extra-ini-gate-unset          | KRB115 | warning  | 0    |
      | houston-backend-connection    | KRB105 | error    | 1    |
      | houston-db-alias              | KRB111 | error    | 1    |
      | houston-db-target             | KRB106 | error    | 1    |
      | houston-label-no-selector     | KRB108 | warning  | 0    |
      | houston-label-rewrite         | KRB107 | error    | 1    |
      | houston-labels-missing        | KRB109 | warning  | 0    |
      | houston-pgbouncer-disabled    | KRB102 | error    | 1    |
      | houston-url-config            | KRB116 | warning  | 0    |
      | houston-url-in-secret         | KRB112 | info     | 0    |
      | houston-user-mismatch         | KRB110 | error    | 1    |
      | image-generic                 | KRB103 | error    | 1    |
      | image-old-tag                 | KRB104 | warning  | 0    |
      | manual-connection-strings-off | KRB101 | error    | 1    |
      | prisma-params-missing         | KRB105 | error    | 1    |
      | unknown-field                 | KRB901 | warning  | 1    |
      | unmodelled-field              | KRB902 | info     | 0    |

  Scenario Outline: What the platform <platform> renders is what its charts write
    Given the deployment file "fixtures/deployments/kerberos.yaml"
    And the control plane values "fixtures/values.yaml"
    Then the <platform> render of "metadata-url.txt" is "postgresql://astro_user%40EXAMPLE.TEST:{pass}@kerberos-demo-pgbouncer.astronomer-kerberos-demo:6543/kerberos-demo-metadata?sslmode=prefer"
    And the <platform> render of "result-backend-url.txt" is "db+postgresql://astro_user%40EXAMPLE.TEST:{pass}@kerberos-demo-pgbouncer:6543/kerberos-demo-result-backend?sslmode=prefer"
    And the <platform> render of "pgbouncer.ini" says "pool_size=3 user=astro_user@EXAMPLE.TEST"
    And the <platform> render of "pgbouncer-deployment.yaml" says "image: quay.io/astronomer/ap-pgbouncer-krb:1.25.0-2"
    And the <platform> render of "pgbouncer-deployment.yaml" says "runAsUser: 65534"
    And the <platform> render of "pgbouncer-deployment.yaml" says "<hardening>"
    And the <platform> render of "houston-pgbouncer-deployment.yaml" says "krb_inject: enabled"

    Examples:
      | platform | hardening                    |
      | 0.37.7   | allowPrivilegeEscalation: false |
      | 1.1.0    | readOnlyRootFilesystem: true |

  Scenario: Without the override every deployment's PgBouncer gets the generic image
    Given the deployment file "fixtures/deployments/kerberos.yaml"
    And the control plane values "fixtures/values/broken/deployment-image-generic.yaml"
    Then the 1.1.0 render of "pgbouncer-deployment.yaml" says "image: quay.io/astronomer/ap-pgbouncer:1.24.1-4"
    And the 0.37.7 render of "pgbouncer-deployment.yaml" says "image: quay.io/astronomer/ap-pgbouncer:1.24.1-2"
