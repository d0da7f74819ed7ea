//! `{{name}}` templates for the configuration files kept beside their components (`kdc/`,
//! `postgres/`). A placeholder without a value is an error, never an empty string.

use anyhow::{bail, Result};

pub fn fill(name: &str, template: &str, vars: &[(&str, &str)]) -> Result<String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            bail!("template {name}: unclosed `{{{{`");
        };
        let key = after[..end].trim();
        match vars.iter().find(|(k, _)| *k == key) {
            Some((_, v)) => out.push_str(v),
            None => bail!("template {name}: no value for placeholder `{key}`"),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::fill;

    #[test]
    fn fills_and_rejects_missing() {
        assert_eq!(
            fill("t", "a={{ x }};b={{y}}", &[("x", "1"), ("y", "2")]).unwrap(),
            "a=1;b=2"
        );
        let e = fill("t", "{{nope}}", &[]).unwrap_err().to_string();
        assert!(e.contains("nope"), "{e}");
    }
}
