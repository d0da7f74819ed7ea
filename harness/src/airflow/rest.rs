//! Airflow's REST API as the scenarios use it: a token (Airflow 3) or basic auth (Airflow 2),
//! request validation, triggering the probe DAG and following its run.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};

use super::{Airflow, Version};
use crate::secret::Secret;
use harness_config::render::airflow::encode as url_part;

impl Airflow {
    async fn api(&self) -> Result<Api> {
        let http = crate::http::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        let auth = match self.version {
            Version::Airflow3 => {
                let resp = http
                    .post(format!("{}/auth/token", self.base_url))
                    .json(&json!({"username": self.admin_user, "password": self.admin_password.expose()}))
                    .send()
                    .await
                    .context("requesting an API token from Airflow's api-server")?;
                let status = resp.status();
                let body: Value = resp.json().await.unwrap_or(Value::Null);
                let token = body.get("access_token").and_then(Value::as_str).with_context(|| {
                    format!("Airflow's api-server gave no token for the admin user (HTTP {status}): check the SimpleAuthManager users and passwords file")
                })?;
                ApiAuth::Bearer(token.to_string())
            }
            Version::Airflow2 => {
                ApiAuth::Basic(self.admin_user.clone(), self.admin_password.clone())
            }
        };
        let prefix = match self.version {
            Version::Airflow3 => "/api/v2",
            Version::Airflow2 => "/api/v1",
        };
        Ok(Api {
            http,
            base: format!("{}{prefix}", self.base_url),
            auth,
        })
    }

    /// Asks the REST API for the DAG list with a `limit` that is not a number and with a valid
    /// one. Airflow 3's api-server starts with FastAPI's validators compiled on first use
    /// (airflow/config/harness_apiserver.py); this proves they still reject bad input and accept
    /// good input. Returns the two answers' status codes.
    pub async fn check_request_validation(&self) -> Result<(u16, u16)> {
        let api = self.api().await?;
        let (bad, body) = api.get("/dags?limit=not-a-number").await?;
        let expected = match self.version {
            Version::Airflow3 => 422,
            Version::Airflow2 => 400,
        };
        ensure!(
            bad == expected && body.to_string().contains("limit"),
            "Airflow's REST API answered a non-numeric `limit` with HTTP {bad} ({body}), not a {expected} validation error naming `limit`; if E2E_AIRFLOW_FAST_API=0 fixes it, airflow/config/harness_apiserver.py no longer fits this FastAPI"
        );
        let (good, body) = api.get("/dags?limit=1").await?;
        ensure!(
            good == 200 && body.get("total_entries").is_some(),
            "Airflow's REST API answered a valid DAG list request with HTTP {good}: {body}"
        );
        Ok((bad, good))
    }

    /// Waits until the DAG is parsed, triggers a run and returns its id.
    pub async fn trigger_dag(&mut self, dag_id: &str, limit: Duration) -> Result<String> {
        let api = self.api().await?;
        let deadline = Instant::now() + limit;
        loop {
            // A busy api-server may miss one poll (its execution API blocks it for seconds on two
            // loaded cores); only the deadline ends the wait.
            let (status, body) = api
                .get(&format!("/dags/{dag_id}"))
                .await
                .unwrap_or((0, Value::Null));
            if status == 200 {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "the DAG `{dag_id}` did not appear in Airflow within {limit:?} (HTTP {status}: {body}); is it in airflow/dags/ and does it parse? See {}",
                    self.dir.join("logs").display()
                );
            }
            self.check_alive()?;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let body = match self.version {
            Version::Airflow3 => json!({"logical_date": null, "conf": {}}),
            Version::Airflow2 => json!({"conf": {}}),
        };
        let (status, resp) = api.post(&format!("/dags/{dag_id}/dagRuns"), &body).await?;
        let id = resp.get("dag_run_id").and_then(Value::as_str);
        match id {
            Some(id) if status < 300 => Ok(id.to_string()),
            _ => bail!("triggering `{dag_id}` failed (HTTP {status}): {resp}"),
        }
    }

    /// Follows a DAG run to a final state; returns the run's JSON when it succeeded.
    pub async fn wait_dag_run(
        &mut self,
        dag_id: &str,
        run_id: &str,
        limit: Duration,
    ) -> Result<Value> {
        let api = self.api().await?;
        let deadline = Instant::now() + limit;
        let path = format!("/dags/{dag_id}/dagRuns/{}", url_part(run_id));
        loop {
            let (status, body) = api.get(&path).await.unwrap_or((0, Value::Null));
            let state = body.get("state").and_then(Value::as_str).unwrap_or("");
            match state {
                "success" => return Ok(body),
                "failed" => bail!(
                    "the run {run_id} of `{dag_id}` failed{}; task logs are under {} and the worker's log is {}",
                    self.executor_failure()
                        .map(|why| format!(": {why}"))
                        .unwrap_or_default(),
                    self.dir.join("logs").display(),
                    self.component_log("celery-worker").display()
                ),
                _ => {}
            }
            if let Some(f) = self.finding() {
                bail!("the run {run_id} of `{dag_id}` cannot finish: {f}");
            }
            self.check_alive()?;
            if Instant::now() > deadline {
                bail!(
                    "the run {run_id} of `{dag_id}` did not finish within {limit:?} (HTTP {status}, state `{state}`); the worker's log is {}",
                    self.component_log("celery-worker").display()
                );
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// The task instances of a run (state, hostname, executor...).
    pub async fn task_instances(&self, dag_id: &str, run_id: &str) -> Result<Value> {
        let api = self.api().await?;
        let (_, body) = api
            .get(&format!(
                "/dags/{dag_id}/dagRuns/{}/taskInstances",
                url_part(run_id)
            ))
            .await?;
        Ok(body)
    }
}

enum ApiAuth {
    Bearer(String),
    Basic(String, Secret),
}

struct Api {
    http: reqwest::Client,
    base: String,
    auth: ApiAuth,
}

impl Api {
    fn with_auth(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.auth {
            ApiAuth::Bearer(t) => rb.bearer_auth(t),
            ApiAuth::Basic(u, p) => rb.basic_auth(u, Some(p.expose())),
        }
    }

    async fn get(&self, path: &str) -> Result<(u16, Value)> {
        let resp = self
            .with_auth(self.http.get(format!("{}{path}", self.base)))
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await.unwrap_or(Value::Null)))
    }

    async fn post(&self, path: &str, body: &Value) -> Result<(u16, Value)> {
        let resp = self
            .with_auth(self.http.post(format!("{}{path}", self.base)))
            .json(body)
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await.unwrap_or(Value::Null)))
    }
}
