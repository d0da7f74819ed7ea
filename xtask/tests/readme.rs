//! The README's rule table is a copy for readers; RULES.md is where rules are documented next to
//! their code. This keeps the copy honest.

use std::path::Path;

fn rule_rows(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with("| KRB"))
        .map(|l| l.trim().to_string())
        .collect()
}

#[test]
fn readme_lists_every_rule_as_rules_md_does() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let rules = std::fs::read_to_string(root.join("harness/config/RULES.md")).unwrap();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let want = rule_rows(&rules);
    assert!(want.len() > 30, "RULES.md lost its table");
    let have = rule_rows(&readme);
    for row in &want {
        assert!(have.contains(row), "README.md lacks or differs in the row:\n{row}\n(copy the table from harness/config/RULES.md)");
    }
    assert_eq!(
        have.len(),
        want.len(),
        "README.md has rule rows RULES.md does not"
    );
}
