//! `{{name}}` placeholders, as in the templates under `fixtures/houston-pgbouncer/`. A
//! placeholder without a value is an error: an empty password or host would fail much later and
//! far less clearly.

use super::RenderError;

pub fn fill(name: &str, template: &str, vars: &[(&str, &str)]) -> Result<String, RenderError> {
    let err = |why: String| RenderError::Template {
        name: name.to_string(),
        why,
    };
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| err("unclosed `{{`".into()))?;
        let key = after[..end].trim();
        let (_, value) = vars
            .iter()
            .find(|(k, _)| *k == key)
            .ok_or_else(|| err(format!("no value for placeholder `{key}`")))?;
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}
