//! The fixtures are the specification: the valid ones lint clean, each broken one triggers
//! exactly the rules its `# expect:` header names, malformed ones fail to load with a position.

use harness_config::rules::catalog;
use harness_config::{lint, lint_main, Format, LintArgs, LoadError, Severity};
use rstest::rstest;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

fn values() -> PathBuf {
    fixtures().join("values.yaml")
}

fn valid_deployment() -> PathBuf {
    fixtures().join("deployments/kerberos.yaml")
}

fn expected_rules(file: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("# expect:"))
        .unwrap_or_else(|| panic!("{} has no `# expect:` header", file.display()));
    line.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {}", dir.display());
    files
}

#[rstest]
#[case("deployments/kerberos.yaml")]
#[case("deployments/kerberos.json")]
fn valid_fixtures_have_no_error_or_warning(#[case] file: &str) {
    let findings = lint(Some(&fixtures().join(file)), Some(&values()), None).unwrap();
    let loud: Vec<_> = findings
        .iter()
        .filter(|f| f.severity != Severity::Info)
        .collect();
    assert!(loud.is_empty(), "{file}: {loud:#?}");
    assert!(
        findings.is_empty(),
        "{file}: even infos are unexpected here: {findings:#?}"
    );
}

#[test]
fn yaml_and_json_twins_are_the_same_deployment() {
    let y = harness_config::load_deployment(&valid_deployment()).unwrap();
    let j = harness_config::load_deployment(&fixtures().join("deployments/kerberos.json")).unwrap();
    assert_eq!(
        y.metadata(),
        j.metadata(),
        "connection given as a JSON string must parse like the object"
    );
    assert_eq!(
        y.pgbouncer().env,
        j.pgbouncer().env,
        "env as a map and as a list must agree"
    );
    assert_eq!(
        y.pgbouncer().env.unwrap().get("KERBEROS_USER"),
        Some("astro_user@EXAMPLE.TEST")
    );
}

#[test]
fn each_broken_deployment_triggers_exactly_its_rules() {
    let mut failures = Vec::new();
    for file in yaml_files(&fixtures().join("deployments/broken")) {
        let want = expected_rules(&file);
        let got: BTreeSet<String> = lint(Some(&file), Some(&values()), None)
            .unwrap()
            .iter()
            .map(|f| f.rule.to_string())
            .collect();
        if got != want {
            failures.push(format!(
                "{}: expected {want:?}, got {got:?}",
                file.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn each_broken_values_file_triggers_exactly_its_rules() {
    let mut failures = Vec::new();
    for file in yaml_files(&fixtures().join("values/broken")) {
        let want = expected_rules(&file);
        let got: BTreeSet<String> = lint(Some(&valid_deployment()), Some(&file), None)
            .unwrap()
            .iter()
            .map(|f| f.rule.to_string())
            .collect();
        if got != want {
            failures.push(format!(
                "{}: expected {want:?}, got {got:?}",
                file.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_rule_has_a_broken_fixture() {
    let mut covered = BTreeSet::new();
    for dir in ["deployments/broken", "values/broken"] {
        for file in yaml_files(&fixtures().join(dir)) {
            covered.extend(expected_rules(&file));
        }
    }
    let missing: Vec<_> = catalog::ALL
        .iter()
        .filter(|r| !covered.contains(r.id))
        .map(|r| r.id)
        .collect();
    assert!(
        missing.is_empty(),
        "rules without a broken fixture: {missing:?}"
    );
}

#[test]
fn rules_md_documents_every_rule() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("RULES.md")).unwrap();
    for r in catalog::ALL {
        let row = format!("| {} | {} | {} |", r.id, r.name, r.severity.as_str());
        assert!(doc.contains(&row), "RULES.md lacks the row start `{row}`");
    }
    assert!(doc.contains(harness_config::SCHEMA));
    assert!(doc.contains("${generated}"));
}

#[rstest]
#[case("bad-syntax.yaml", 5)]
#[case("wrong-type.yaml", 3)]
#[case("connection-string-not-json.yaml", 3)]
#[case("env-wrong-type.yaml", 4)]
#[case("bad-json.json", 4)]
fn malformed_deployments_fail_with_a_position(#[case] file: &str, #[case] line: usize) {
    let path = fixtures().join("malformed").join(file);
    let err = lint(Some(&path), None, None).unwrap_err();
    let LoadError::Parse {
        location: Some((l, c)),
        ..
    } = &err
    else {
        panic!("{file}: {err:?}")
    };
    assert_eq!(*l, line, "{file}: {err}");
    assert!(*c >= 1);
    let text = err.to_string();
    assert!(
        text.contains(file) && text.contains(&format!(":{l}:{c}:")),
        "{text}"
    );
}

#[test]
fn malformed_values_fail_with_a_position() {
    let path = fixtures().join("malformed/values-wrong-type.yaml");
    let err = lint(None, Some(&path), None).unwrap_err();
    assert_eq!(err.location().map(|l| l.0), Some(4), "{err}");
    assert!(
        err.to_string().contains("global.pgbouncer.enabled"),
        "{err}"
    );
}

fn run(args: LintArgs) -> (i32, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = lint_main(&args, &mut out, &mut err);
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

#[rstest]
#[case(Some("deployments/kerberos.yaml"), Some("values.yaml"), 0)]
#[case(Some("deployments/broken/spn-host-mismatch.yaml"), None, 1)]
#[case(Some("deployments/broken/realm-lowercase.yaml"), None, 0)]
#[case(Some("deployments/broken/pass-literal.yaml"), None, 0)]
#[case(Some("malformed/wrong-type.yaml"), None, 2)]
#[case(Some("deployments/missing-file.yaml"), None, 2)]
#[case(None, None, 2)]
#[case(Some("values.yaml"), None, 2)]
#[case(None, Some("deployments/kerberos.yaml"), 2)]
fn lint_main_exit_codes(
    #[case] deployment: Option<&str>,
    #[case] values: Option<&str>,
    #[case] code: i32,
) {
    let args = LintArgs {
        deployment: deployment.map(|d| fixtures().join(d)),
        values: values.map(|v| fixtures().join(v)),
        ..Default::default()
    };
    let (got, out, err) = run(args);
    assert_eq!(got, code, "stdout:\n{out}\nstderr:\n{err}");
}

#[test]
fn text_report_names_rule_file_field_and_fix() {
    let file = fixtures().join("deployments/broken/spn-host-mismatch.yaml");
    let (code, out, _) = run(LintArgs {
        deployment: Some(file.clone()),
        ..Default::default()
    });
    assert_eq!(code, 1);
    let first = format!(
        "error[KRB011 spn-host] {}: pgbouncerConfig.extraIni: ",
        file.display()
    );
    assert!(out.starts_with(&first), "{out}");
    assert!(
        out.contains("\n    fix: Use `postgres/db.example.test@EXAMPLE.TEST`.\n"),
        "{out}"
    );
    assert!(
        out.ends_with("1 error, 0 warnings, 0 infos in 1 file\n"),
        "{out}"
    );
}

#[test]
fn json_report_follows_the_schema() {
    let file = fixtures().join("deployments/broken/realm-lowercase.yaml");
    let args = LintArgs {
        deployment: Some(file.clone()),
        format: Format::Json,
        ..Default::default()
    };
    let (code, out, _) = run(args);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["schema"], "astro-kerberos-lint/v1");
    assert_eq!(v["files"][0], file.display().to_string());
    let f = &v["findings"][0];
    assert_eq!(f["rule"], "KRB004");
    assert_eq!(f["name"], "realm-case");
    assert_eq!(f["severity"], "warning");
    for key in ["file", "path", "message", "fix"] {
        assert!(f[key].is_string(), "{key} in {f}");
    }
    assert_eq!(
        v["summary"],
        serde_json::json!({"errors": 0, "warnings": 2, "infos": 0})
    );
}

#[test]
fn a_cli_selector_overrides_the_values_selectors() {
    let args = LintArgs {
        deployment: Some(valid_deployment()),
        selectors: vec!["inject-kerberos=true".into()],
        ..Default::default()
    };
    let (code, out, _) = run(args);
    assert_eq!(code, 1);
    assert!(out.contains("error[KRB017 labels-selector]"), "{out}");
}

#[test]
fn unknown_fields_are_kept_and_reported_with_their_path() {
    let file = fixtures().join("deployments/broken/unknown-connection-field.yaml");
    let d = harness_config::load_deployment(&file).unwrap();
    assert_eq!(
        d.metadata().unwrap().extra.get("sslMode"),
        Some(&serde_json::json!("prefer"))
    );
    // The chart's schema refuses unknown connection keys: an error, with the close match.
    let findings = lint(Some(&file), None, None).unwrap();
    let f = findings.iter().find(|f| f.rule == "KRB025").unwrap();
    assert_eq!(f.path, "metadataConnectionJson.sslMode");
    assert_eq!(f.severity, Severity::Error);
    assert!(
        f.message.contains("did you mean `sslmode`"),
        "{}",
        f.message
    );

    let file = fixtures().join("deployments/broken/unknown-field.yaml");
    let findings = lint(Some(&file), None, None).unwrap();
    let f = findings.iter().find(|f| f.rule == "KRB901").unwrap();
    assert!(
        f.message.contains("did you mean `kerberosEnabled`"),
        "{}",
        f.message
    );
}

#[rstest]
#[case("env:\n  - name: KERBEROS_USER\n    value: a@B\n")]
#[case("env:\n  KERBEROS_USER: a@B\n")]
#[case("{\"env\": [{\"name\": \"KERBEROS_USER\", \"value\": \"a@B\"}]}")]
#[case("{\"env\": {\"KERBEROS_USER\": \"a@B\"}}")]
fn env_as_list_or_map(#[case] text: &str) {
    let name = if text.starts_with('{') {
        "x.json"
    } else {
        "x.yaml"
    };
    let p: harness_config::model::PgbouncerConfig =
        harness_config::load::parse_str(Path::new(name), text).unwrap();
    assert_eq!(p.env.unwrap().get("KERBEROS_USER"), Some("a@B"));
}

#[test]
fn a_platform_version_that_is_not_modelled_stops_lint_naming_the_key() {
    let dir = std::env::temp_dir().join(format!("charts-platform-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("values.yaml");
    std::fs::write(&file, "harness:\n  platform:\n    version: 2.0.0\n").unwrap();
    let err = lint(None, Some(&file), None).unwrap_err().to_string();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        err.contains("harness.platform.version") && err.contains("0.37.7, 1.1.0"),
        "{err}"
    );
}
