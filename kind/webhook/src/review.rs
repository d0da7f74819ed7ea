//! One AdmissionReview in, one out: parse what the API server sent, decide, answer. Every
//! malformed input gets an answer that says what is wrong; nothing here panics on input.

use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use kube::core::DynamicObject;
use serde_json::Value;

use crate::config::Config;
use crate::inject;

/// The HTTP answer to one review.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    /// One line for the webhook's log (no credentials are ever in a pod spec).
    pub log: String,
}

fn reply(status: u16, resp: AdmissionResponse, log: String) -> Reply {
    let body = serde_json::to_vec(&resp.into_review()).unwrap_or_else(|e| {
        format!("{{\"error\":\"serialising the response: {e}\"}}").into_bytes()
    });
    Reply { status, body, log }
}

/// Answers one AdmissionReview body.
///
/// - not JSON, or not an AdmissionReview with a `request`: HTTP 400 with a Status saying why
///   (the API server then reports "failed calling webhook" and applies the failure policy);
/// - a request for something other than a pod, or a pod that does not parse: denied with the
///   reason (HTTP 200, uid kept), so the caller sees the field at fault;
/// - a pod the selectors do not match, or an operation other than CREATE: allowed unchanged;
/// - a selected pod: allowed with the JSON patch that injects the credentials (empty when the
///   pod already has them).
pub fn review(cfg: &Config, body: &[u8]) -> Reply {
    let parsed: AdmissionReview<DynamicObject> = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => {
            let why = format!("the request body is not an AdmissionReview: {e}");
            return reply(400, AdmissionResponse::invalid(&why), why);
        }
    };
    let req: AdmissionRequest<DynamicObject> = match parsed.try_into() {
        Ok(r) => r,
        Err(_) => {
            let why = "the AdmissionReview has no `request`".to_string();
            return reply(400, AdmissionResponse::invalid(&why), why);
        }
    };
    let resp = AdmissionResponse::from(&req);
    let who = format!(
        "{}/{}",
        req.namespace.as_deref().unwrap_or("-"),
        req.object
            .as_ref()
            .and_then(|o| o.metadata.name.clone().or(o.metadata.generate_name.clone()))
            .unwrap_or_else(|| req.name.clone())
    );
    if req.kind.kind != "Pod" || !req.kind.group.is_empty() {
        let why = format!(
            "this webhook admits pods only, not {}/{} {}; register it for `pods` only",
            req.kind.group, req.kind.version, req.kind.kind
        );
        return reply(200, resp.deny(&why), format!("{who}: denied: {why}"));
    }
    if req.operation != Operation::Create {
        return reply(
            200,
            resp,
            format!("{who}: {:?} allowed unchanged", req.operation),
        );
    }
    let Some(obj) = req.object.as_ref() else {
        let why = "the CREATE request carries no `object`".to_string();
        return reply(200, resp.deny(&why), format!("{who}: denied: {why}"));
    };
    let pod: Value = match serde_json::to_value(obj) {
        Ok(v) => v,
        Err(e) => {
            let why = format!("the pod does not serialise: {e}");
            return reply(200, resp.deny(&why), format!("{who}: denied: {why}"));
        }
    };
    match inject::is_selected(cfg, &pod) {
        Ok(false) => {
            return reply(
                200,
                resp,
                format!("{who}: not selected (labels match no selector), allowed unchanged"),
            )
        }
        Ok(true) => {}
        Err(e) => return reply(200, resp.deny(e.to_string()), format!("{who}: denied: {e}")),
    }
    let mutated = match inject::mutate(cfg, &pod) {
        Ok(m) => m,
        Err(e) => return reply(200, resp.deny(e.to_string()), format!("{who}: denied: {e}")),
    };
    let patch = json_patch::diff(&pod, &mutated);
    let n = patch.0.len();
    match resp.with_patch(patch) {
        Ok(r) => reply(
            200,
            r,
            if n == 0 {
                format!("{who}: selected, already injected, allowed unchanged")
            } else {
                format!("{who}: selected, injected ({n} patch operations)")
            },
        ),
        Err(e) => {
            let why = format!("could not serialise the patch: {e}");
            reply(
                500,
                AdmissionResponse::invalid(&why),
                format!("{who}: error: {why}"),
            )
        }
    }
}
