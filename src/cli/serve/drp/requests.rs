//! The agent's data rights requests: exercise (section 2.01), status (2.02) and revoke
//! (2.04), each on a request the agent sent and no other.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;

use super::message::{self, Signed};
use super::status::{ExerciseStatus, REVOKED};
use super::{ACTIONS, Agent, DRP_ID_PREFIX, Drp, DrpError, DrpErrorBody, VERSIONS, callback, drp};
use crate::cli::serve::ApiState;
use crate::cli::serve::requests::NewRequest;
use crate::journal::RequestState;
use crate::model::Jurisdiction;
use crate::store::DrpOrigin;
use crate::workflow::is_duplicate;

/// Data Rights Exercise (section 2.01): a signed request of the agent holding the bearer
/// token, recorded as a dsrctl request of the configured tenant. The same message (or the
/// same `agent-request-id`) again is refused with 409 naming the request recorded first.
#[utoipa::path(post, path = "/v1/data-rights-request", tag = "drp",
    request_body(content = String, content_type = "text/plain", description = "base64 of the Ed25519 signature followed by the JSON request: agent-id, business-id, issued-at, expires-at, drp.version, exercise, regime, identity claims (email, phone_number, name, ...)"),
    responses((status = 200, description = "Recorded", body = ExerciseStatus),
        (status = 400, description = "Not a valid signed request, expired, or an unsupported action", body = DrpErrorBody),
        (status = 401, body = DrpErrorBody), (status = 403, description = "Unknown token, bad signature, or another agent or business", body = DrpErrorBody),
        (status = 404, description = "DRP is not configured", body = DrpErrorBody),
        (status = 409, description = "Already received", body = DrpErrorBody)),
    security(("drp_token" = [])))]
pub async fn exercise(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ExerciseStatus>, DrpError> {
    let drp = drp(&state)?;
    let agent = drp.caller(&headers)?;
    let signed = message::open(&body, &agent.key)?;
    signed.check_envelope(&agent.id, &drp.config.business_id, chrono::Utc::now())?;
    let version = signed.required("drp.version")?;
    if !VERSIONS.contains(&version) {
        return Err(DrpError::bad(format!(
            "`drp.version` {version} is not spoken here; send 1.0"
        )));
    }
    let action = signed.required("exercise")?;
    let Some((_, kind)) = ACTIONS.iter().find(|(a, _)| *a == action) else {
        return Err(DrpError::bad(format!(
            "Unsupported rights action `{action}`: this business accepts {}",
            ACTIONS
                .iter()
                .map(|(a, _)| *a)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let jurisdiction = match signed.text("regime")? {
        None => drp.config.default_regime,
        Some("ccpa") => Jurisdiction::Ccpa,
        Some("gdpr") => Jurisdiction::Gdpr,
        Some(other) => {
            return Err(DrpError::bad(format!(
                "regime `{other}` is not one this business answers under (ccpa, gdpr, or none for a voluntary request)"
            )));
        }
    };
    let mut subject = BTreeMap::new();
    for (claim, identity) in [("email", "email"), ("phone_number", "phone")] {
        if let Some(v) = signed.text(claim)?.map(str::trim).filter(|v| !v.is_empty()) {
            subject.insert(identity.to_owned(), serde_json::Value::String(v.to_owned()));
        }
    }
    if subject.is_empty() {
        return Err(DrpError::bad(
            "the request carries no identity claim this business can match: give `email` or `phone_number`",
        ));
    }
    let agent_request_id = signed.text("agent-request-id")?;
    let status_callback = match signed.text("status_callback")? {
        None => None,
        Some(url) => Some(callback::check_url(url, drp.config.allow_http_callbacks)?),
    };
    let id = Drp::request_id(agent, &signed, agent_request_id);
    let origin = DrpOrigin {
        agent: agent.id.clone(),
        agent_request_id: agent_request_id.map(str::to_owned),
        status_callback,
    };
    let new = NewRequest {
        id: Some(id.clone()),
        kind: (*kind).to_owned(),
        tenant: Some(drp.config.tenant.clone()),
        jurisdiction: Some(jurisdiction.as_str().to_owned()),
        received: None,
        subject,
        corrections: None,
        note: Some(note(agent, &signed, action)?),
        name: signed.text("name")?.map(str::to_owned),
        language: None,
    };
    let request = state.parse_request(&new)?;
    let actor = format!("drp:{}", agent.id);
    let wf = state
        .ws
        .workflow_as(&format!("{actor}@{}", state.worker), None);
    match wf
        .receive_from_agent(&request, &actor, origin.clone())
        .await
    {
        Ok(_) => {}
        Err(e) if is_duplicate(&e) => {
            return Err(DrpError::conflict(format!(
                "this request was received before as `{id}` (the same signed message, or the same \
                 agent-request-id); ask GET /v1/data-rights-request/{id} where it stands"
            )));
        }
        Err(e) => return Err(crate::cli::serve::ApiError::from(e).into()),
    }
    answer(&state, &id, &origin).await
}

/// The status of request `id` as it now is, the answer to the agent's call; the agent has it
/// from the answer, so only its later changes are called back.
async fn answer(
    state: &ApiState,
    id: &str,
    origin: &DrpOrigin,
) -> Result<Json<ExerciseStatus>, DrpError> {
    let record = state
        .ws
        .store
        .request(id)
        .await
        .map_err(crate::cli::serve::ApiError::from)?;
    let status = ExerciseStatus::of(&record, Some(origin));
    if origin.status_callback.is_some() {
        callback::answered(state.ws.store.as_ref(), &record, &status).await;
    }
    Ok(Json(status))
}

/// The note the request is recorded with, for the people approving it: who sent it and what
/// the agent attests.
fn note(agent: &Agent, signed: &Signed, action: &str) -> Result<String, DrpError> {
    let mut parts = vec![format!(
        "received through the Data Rights Protocol from agent {} ({}): `{action}`",
        agent.name, agent.id
    )];
    if let Some(r) = signed.text("regime")? {
        parts.push(format!("regime {r}"));
    }
    if let Some(a) = signed.text("agent-request-id")? {
        parts.push(format!("agent-request-id {a}"));
    }
    let verified: Vec<&str> = [
        "email_verified",
        "phone_number_verified",
        "address_verified",
    ]
    .into_iter()
    .filter(|c| signed.claims.get(*c) == Some(&serde_json::Value::Bool(true)))
    .collect();
    parts.push(if verified.is_empty() {
        "the agent verified no claim".to_owned()
    } else {
        format!("the agent verified: {}", verified.join(", "))
    });
    if let Some(serde_json::Value::Array(rs)) = signed.claims.get("relationships") {
        let rs: Vec<&str> = rs.iter().filter_map(serde_json::Value::as_str).collect();
        if !rs.is_empty() {
            parts.push(format!("relationships: {}", rs.join(", ")));
        }
    }
    Ok(parts.join("; "))
}

impl Drp {
    /// The record of `id` when `agent` manages it: another agent's request, or one not
    /// received through DRP, is 403 (section 2.02.1), without saying whether it exists.
    async fn managed(
        &self,
        state: &ApiState,
        agent: &Agent,
        id: &str,
    ) -> Result<(crate::journal::RequestRecord, DrpOrigin), DrpError> {
        let forbidden = || {
            DrpError::forbidden(format!(
                "request `{id}` is not one agent `{}` sent",
                agent.id
            ))
        };
        let own = id
            .strip_prefix(&format!("{DRP_ID_PREFIX}{}-", agent.id))
            .is_some_and(|rest| rest.len() == 24 && rest.bytes().all(|b| b.is_ascii_hexdigit()));
        if !own {
            return Err(forbidden());
        }
        let record = match state.ws.store.request(id).await {
            Ok(r) => r,
            Err(crate::store::StoreError::RequestNotFound(_)) => {
                return Err(DrpError::not_found(id));
            }
            Err(e) => return Err(crate::cli::serve::ApiError::from(e).into()),
        };
        if record.request.tenant != self.config.tenant {
            return Err(forbidden());
        }
        // The agent recorded with the request decides, not its id alone.
        let origin = state
            .ws
            .store
            .drp_origin(id)
            .await
            .map_err(crate::cli::serve::ApiError::from)?
            .filter(|o| o.agent == agent.id)
            .ok_or_else(forbidden)?;
        Ok((record, origin))
    }
}

/// Data Rights Status (section 2.02): where the agent's request stands.
#[utoipa::path(get, path = "/v1/data-rights-request/{request_id}", tag = "drp",
    params(("request_id" = String, Path, description = "The id the exercise answered with")),
    responses((status = 200, body = ExerciseStatus), (status = 400, description = "A path that is not UTF-8", body = DrpErrorBody), (status = 401, body = DrpErrorBody),
        (status = 403, description = "Not a request of this agent", body = DrpErrorBody), (status = 404, body = DrpErrorBody)),
    security(("drp_token" = [])))]
pub async fn status(
    State(state): State<Arc<ApiState>>,
    Path(request_id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<ExerciseStatus>, DrpError> {
    let drp = drp(&state)?;
    let agent = drp.caller(&headers)?;
    let (record, origin) = drp.managed(&state, agent, &request_id).await?;
    Ok(Json(ExerciseStatus::of(&record, Some(&origin))))
}

/// Data Rights Revoke (section 2.04): the agent's signed `{"reason": ...}` cancels a request
/// nobody has started carrying out (it is declined, and reads `revoked`); one being carried
/// out or finished is refused with 409, since what was sent to services cannot be unsent.
#[utoipa::path(delete, path = "/v1/data-rights-request/{request_id}", tag = "drp",
    params(("request_id" = String, Path, description = "The id the exercise answered with")),
    request_body(content = String, content_type = "text/plain", description = "base64 of the Ed25519 signature followed by the JSON {\"reason\": \"...\"}"),
    responses((status = 200, description = "Revoked", body = ExerciseStatus), (status = 400, body = DrpErrorBody),
        (status = 401, body = DrpErrorBody), (status = 403, body = DrpErrorBody), (status = 404, body = DrpErrorBody),
        (status = 409, description = "Already being carried out, finished or declined", body = DrpErrorBody)),
    security(("drp_token" = [])))]
pub async fn revoke(
    State(state): State<Arc<ApiState>>,
    Path(request_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ExerciseStatus>, DrpError> {
    let drp = drp(&state)?;
    let agent = drp.caller(&headers)?;
    let signed = message::open(&body, &agent.key)?;
    // The protocol's revoke message holds the reason alone; an envelope, when the agent
    // sends one, is checked as the exercise's is.
    if ["agent-id", "business-id", "issued-at", "expires-at"]
        .iter()
        .any(|c| signed.claims.contains_key(*c))
    {
        signed.check_envelope(&agent.id, &drp.config.business_id, chrono::Utc::now())?;
    }
    let reason = signed.text("reason")?.map(str::trim).unwrap_or("");
    let (record, origin) = drp.managed(&state, agent, &request_id).await?;
    let status = ExerciseStatus::of(&record, Some(&origin));
    match record.state {
        RequestState::Declined if status.status == "revoked" => return Ok(Json(status)),
        RequestState::Received | RequestState::Approved => {}
        _ => {
            return Err(DrpError::conflict(format!(
                "request `{request_id}` is {} and can no longer be revoked: what it sent to services cannot be unsent",
                status.status
            )));
        }
    }
    let why = if reason.is_empty() {
        format!("{REVOKED} by agent `{}`", agent.id)
    } else {
        format!("{REVOKED} by agent `{}`: {reason}", agent.id)
    };
    let actor = format!("drp:{}", agent.id);
    state
        .ws
        .workflow_as(&format!("{actor}@{}", state.worker), None)
        .decline_request(&request_id, &why, Some(&actor))
        .await
        .map_err(|e| DrpError::from(crate::cli::serve::ApiError::from(e)))?;
    answer(&state, &request_id, &origin).await
}
