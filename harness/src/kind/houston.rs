//! Houston's GraphQL API, as the kind tier uses it: the documents it sends (kept as files under
//! `kind/houston/`, checked in the tests against `kind/houston/schema.graphql`), the check of the
//! live schema for the Kerberos fields before anything is sent, and the client.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

/// One GraphQL document the tier sends.
#[derive(Debug, PartialEq, Eq)]
pub struct Document {
    /// The root field it calls (`createDeployment`), as plans and errors name it.
    pub operation: &'static str,
    /// Its file under `kind/houston/`.
    pub file: &'static str,
    pub text: &'static str,
}

macro_rules! document {
    ($name:ident, $op:literal, $file:literal) => {
        pub static $name: Document = Document {
            operation: $op,
            file: $file,
            text: include_str!(concat!("../../../kind/houston/", $file)),
        };
    };
}

document!(INTROSPECT, "__type", "introspect.graphql");
document!(CREATE_USER, "createUser", "create-user.graphql");
document!(
    CREATE_WORKSPACE,
    "createWorkspace",
    "create-workspace.graphql"
);
document!(CLUSTERS, "paginatedClusters", "clusters.graphql");
document!(
    CREATE_DEPLOYMENT,
    "createDeployment",
    "create-deployment.graphql"
);
document!(
    UPSERT_DEPLOYMENT,
    "upsertDeployment",
    "upsert-deployment.graphql"
);

pub static ALL: [&Document; 6] = [
    &INTROSPECT,
    &CREATE_USER,
    &CREATE_WORKSPACE,
    &CLUSTERS,
    &CREATE_DEPLOYMENT,
    &UPSERT_DEPLOYMENT,
];

/// The arguments the documentation's Kerberos deployment needs from the mutation.
pub const KERBEROS_ARGUMENTS: &[&str] = &[
    "kerberosEnabled",
    "metadataConnectionJson",
    "resultBackendConnectionJson",
    "pgbouncerConfig",
];

/// What the live server lacks of `mutation`'s Kerberos arguments, from the answer to
/// `introspect.graphql`: the mutation itself, or each missing argument. Empty when it has all.
pub fn missing_arguments(introspection: &Value, mutation: &str) -> Vec<String> {
    let fields = introspection["data"]["__type"]["fields"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let Some(field) = fields.iter().find(|f| f["name"] == mutation) else {
        let known: Vec<&str> = fields.iter().filter_map(|f| f["name"].as_str()).collect();
        let near: Vec<&&str> = known.iter().filter(|n| n.contains("Deployment")).collect();
        return vec![format!(
            "Houston has no mutation `{mutation}` (its deployment mutations: {near:?}); is --platform right for this Houston?"
        )];
    };
    let args: Vec<&str> = field["args"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["name"].as_str())
        .collect();
    KERBEROS_ARGUMENTS
        .iter()
        .filter(|a| !args.contains(a))
        .map(|a| format!("`{mutation}` has no argument `{a}`: this Houston predates Kerberos database support (Software 0.37.7)"))
        .collect()
}

/// The variables for the deployment mutation: the deployment file as written, with the run's
/// workspace (and cluster, on APC) in place of whatever the file names.
pub fn deployment_variables(
    file_variables: &Value,
    workspace: &str,
    cluster: Option<&str>,
) -> Value {
    let mut v = file_variables.clone();
    v["workspaceUuid"] = json!(workspace);
    if let Some(c) = cluster {
        v["clusterId"] = json!(c);
    }
    v
}

/// A GraphQL client for one Houston.
pub struct Houston {
    url: String,
    http: reqwest::Client,
    token: Option<String>,
}

impl Houston {
    pub fn new(url: &str, http: reqwest::Client) -> Houston {
        Houston {
            url: url.to_string(),
            http,
            token: None,
        }
    }

    /// Astronomer's own functional tests send `Authorization: Bearer <token>`.
    pub fn authenticate(&mut self, token: &str) {
        self.token = Some(token.to_string());
    }

    /// Sends a document; GraphQL errors become an error naming the operation and each message.
    pub async fn send(&self, doc: &Document, variables: Value) -> Result<Value> {
        let mut req = self
            .http
            .post(&self.url)
            .json(&json!({ "query": doc.text, "variables": variables }));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("{}: POST {}", doc.operation, self.url))?;
        let status = resp.status();
        let body: Value = resp.json().await.with_context(|| {
            format!(
                "{}: Houston's answer (HTTP {status}) is not JSON",
                doc.operation
            )
        })?;
        check_answer(doc, status.as_u16(), body)
    }
}

fn check_answer(doc: &Document, status: u16, body: Value) -> Result<Value> {
    if let Some(errors) = body["errors"].as_array().filter(|e| !e.is_empty()) {
        let msgs: Vec<&str> = errors
            .iter()
            .filter_map(|e| e["message"].as_str())
            .collect();
        bail!(
            "Houston refused {} (kind/houston/{}): {}",
            doc.operation,
            doc.file,
            msgs.join("; ")
        );
    }
    if status != 200 {
        bail!("Houston answered {} with HTTP {status}", doc.operation);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn introspection(args: &[&str]) -> Value {
        json!({"data": {"__type": {"fields": [
            {"name": "createUser", "args": [{"name": "email"}]},
            {"name": "createDeployment", "args": args.iter().map(|a| json!({"name": a})).collect::<Vec<_>>()},
        ]}}})
    }

    #[test]
    fn a_houston_with_every_kerberos_argument_lacks_nothing() {
        let mut args = vec!["workspaceUuid", "label"];
        args.extend(KERBEROS_ARGUMENTS);
        assert!(missing_arguments(&introspection(&args), "createDeployment").is_empty());
    }

    #[test]
    fn each_missing_kerberos_argument_is_named() {
        let m = missing_arguments(
            &introspection(&["workspaceUuid", "kerberosEnabled"]),
            "createDeployment",
        );
        assert_eq!(m.len(), 3, "{m:?}");
        assert!(m[0].contains("`metadataConnectionJson`") && m[0].contains("0.37.7"));
    }

    #[test]
    fn a_missing_mutation_points_at_the_platform_flag() {
        let m = missing_arguments(&introspection(&[]), "upsertDeployment");
        assert!(
            m[0].contains("no mutation `upsertDeployment`") && m[0].contains("createDeployment")
        );
    }

    #[test]
    fn the_run_s_workspace_replaces_the_file_s() {
        let v = deployment_variables(
            &json!({"workspaceUuid": "from-file", "kerberosEnabled": true}),
            "ws-1",
            Some("cl-1"),
        );
        assert_eq!(
            v,
            json!({"workspaceUuid": "ws-1", "clusterId": "cl-1", "kerberosEnabled": true})
        );
    }

    #[test]
    fn graphql_errors_name_the_operation_and_the_message() {
        let e = check_answer(
            &CREATE_DEPLOYMENT,
            200,
            json!({"errors": [{"message": "Invalid connection"}]}),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("createDeployment") && e.contains("Invalid connection"),
            "{e}"
        );
    }

    #[test]
    fn every_document_is_valid_against_the_schema_file() {
        let dir = crate::run::workspace_root().join("kind/houston");
        let schema_text = std::fs::read_to_string(dir.join("schema.graphql")).unwrap();
        let schema = apollo_compiler::Schema::parse_and_validate(schema_text, "schema.graphql")
            .expect("kind/houston/schema.graphql is a valid schema");
        for doc in ALL {
            apollo_compiler::ExecutableDocument::parse_and_validate(&schema, doc.text, doc.file)
                .unwrap_or_else(|e| {
                    panic!("kind/houston/{} against the schema: {}", doc.file, e.errors)
                });
        }
        // A document asking for a field the schema does not have is refused.
        let bad = "mutation { createWorkspace(label: \"x\") { id kerberosPrincipal } }";
        assert!(apollo_compiler::ExecutableDocument::parse_and_validate(
            &schema,
            bad,
            "bad.graphql"
        )
        .is_err());
        // Every document file is one of ALL (none is sent unchecked).
        let files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|f| f.ends_with(".graphql") && f != "schema.graphql")
            .collect();
        for f in files {
            assert!(
                ALL.iter().any(|d| d.file == f),
                "{f} is not in houston::ALL"
            );
        }
    }
}
