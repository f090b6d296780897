//! The Data Rights Protocol 1.0, the side of the Privacy Infrastructure Provider: Authorized
//! Agents configured under `drp.agents` in dsrctl.yaml pair with a signed message
//! (`POST /v1/agent/{agent-id}`), then send signed data rights requests with the bearer
//! token they got (`POST /v1/data-rights-request`), ask where one stands (`GET`) and revoke
//! one (`DELETE`). Each becomes a dsrctl request of the configured tenant, recorded by the
//! same intake as the command line in the agent's name (`drp:AGENT` in the audit log), and
//! waits for approval like any other.

mod callback;
mod error;
mod message;
mod requests;
mod status;
mod token;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use ed25519_dalek::VerifyingKey;
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

pub use callback::{GIVE_UP_AFTER, Notifier, Pass as CallbackPass};
pub use error::{DrpError, DrpErrorBody};
pub use requests::{__path_exercise, __path_revoke, __path_status, exercise, revoke, status};
pub use status::ExerciseStatus;

use self::message::Signed;
use self::token::{TOKEN_KEY_PURPOSE, TokenKey};
use super::ApiState;
use crate::cli::workspace::Workspace;
use crate::model::DrpConfig;
use crate::workflow::DRP_ID_PREFIX;

/// The protocol versions whose messages are read: 1.0 and the 0.9 drafts it did not change.
const VERSIONS: &[&str] = &["1.0", "0.9", "0.9.1", "0.9.2", "0.9.3", "0.9.4"];

/// The rights actions accepted, and the kind of request each becomes. The three kinds of
/// access become one `access` request, whose package holds the specific data (and so its
/// categories); the sale opt-out and opt-in are not kinds dsrctl carries out.
const ACTIONS: &[(&str, &str)] = &[
    ("access", "access"),
    ("access:categories", "access"),
    ("access:specific", "access"),
    ("deletion", "delete"),
];

/// The DRP side of the API, resolved when `serve --listen` starts.
pub struct Drp {
    config: DrpConfig,
    agents: BTreeMap<String, Agent>,
    tokens: TokenKey,
}

struct Agent {
    id: String,
    name: String,
    key: VerifyingKey,
    key_hex: String,
}

impl Drp {
    /// The DRP configuration of the workspace's project, when it has one; bad keys stop
    /// `serve` (`dsrctl validate` names them first).
    pub fn resolve(ws: &Workspace) -> anyhow::Result<Option<Drp>> {
        let Some(config) = ws.project.config.drp.clone() else {
            return Ok(None);
        };
        let mut agents = BTreeMap::new();
        for a in &config.agents {
            let bytes: [u8; 32] = hex::decode(a.verify_key.trim())
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "the verify_key of DRP agent `{}` is not 64 hex digits",
                        a.id
                    )
                })?;
            let key = VerifyingKey::from_bytes(&bytes).map_err(|_| {
                anyhow::anyhow!(
                    "the verify_key of DRP agent `{}` is not an Ed25519 key",
                    a.id
                )
            })?;
            agents.insert(
                a.id.clone(),
                Agent {
                    id: a.id.clone(),
                    name: a.name.clone().unwrap_or_else(|| a.id.clone()),
                    key,
                    key_hex: a.verify_key.trim().to_ascii_lowercase(),
                },
            );
        }
        let data_key = crate::workflow::project_data_key(&ws.project, &ws.state_dir)?;
        Ok(Some(Drp {
            config,
            agents,
            tokens: TokenKey::new(data_key.derive(TOKEN_KEY_PURPOSE)),
        }))
    }

    /// The agent presenting the bearer token of `headers`.
    fn caller(&self, headers: &HeaderMap) -> Result<&Agent, DrpError> {
        let value = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                DrpError::unauthorized(
                    "no bearer token: pair first with a signed `POST /v1/agent/{agent-id}`, \
                     then send `Authorization: Bearer TOKEN`",
                )
            })?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or_else(|| {
                DrpError::unauthorized("the Authorization header must be `Bearer TOKEN`")
            })?
            .trim();
        let refused = || {
            DrpError::forbidden(
                "the bearer token is not one this server issued to a configured agent",
            )
        };
        let agent = TokenKey::agent_of(token)
            .and_then(|id| self.agents.get(id))
            .ok_or_else(refused)?;
        if !self.tokens.check(token, &agent.id, &agent.key_hex) {
            return Err(refused());
        }
        Ok(agent)
    }

    /// The request id of an agent's message: from its `agent-request-id` when it gives one
    /// (so a retry with a fresh signature is still the same request), else from the
    /// signature itself. The agent's id is part of it: only that agent's calls reach it.
    fn request_id(agent: &Agent, signed: &Signed, agent_request_id: Option<&str>) -> String {
        let basis = match agent_request_id {
            Some(a) => format!("agent-request-id\n{a}"),
            None => format!("signature\n{}", signed.digest),
        };
        let digest = hex::encode(Sha256::digest(basis.as_bytes()));
        format!("{DRP_ID_PREFIX}{}-{}", agent.id, &digest[..24])
    }
}

fn drp(state: &ApiState) -> Result<&Drp, DrpError> {
    state.drp.as_ref().ok_or_else(|| {
        DrpError::not_found_endpoint(
            "this server takes no Data Rights Protocol requests (`drp` is not configured in dsrctl.yaml)",
        )
    })
}

/// The discovery document: the business's entry of the service directory (section 3.05.2).
#[derive(Debug, Serialize, ToSchema)]
pub struct Discovery {
    /// The protocol version spoken, `1.0`.
    pub version: String,
    /// The business's id in the service directory.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Where the API is, when configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_base: Option<String>,
    /// The rights actions accepted.
    pub supported_actions: Vec<String>,
}

/// The business's DRP discovery document. DRP 1.0 moved discovery to the service directory;
/// this serves the same entry, for agents and people that still look here.
#[utoipa::path(get, path = "/.well-known/data-rights.json", tag = "drp",
    responses((status = 200, body = Discovery), (status = 404, description = "DRP is not configured", body = DrpErrorBody)))]
pub async fn discovery(State(state): State<Arc<ApiState>>) -> Result<Json<Discovery>, DrpError> {
    let drp = drp(&state)?;
    Ok(Json(Discovery {
        version: "1.0".to_owned(),
        id: drp.config.business_id.clone(),
        name: drp
            .config
            .name
            .clone()
            .unwrap_or_else(|| drp.config.business_id.clone()),
        api_base: drp.config.api_base.clone(),
        supported_actions: ACTIONS.iter().map(|(a, _)| (*a).to_owned()).collect(),
    }))
}

/// A pair-wise token.
#[derive(Debug, Serialize, ToSchema)]
pub struct Pairing {
    /// The agent it was issued to.
    #[serde(rename = "agent-id")]
    pub agent_id: String,
    /// The bearer token for every later call.
    pub token: String,
}

/// Pair-wise key setup (section 2.05): the agent's message, signed with the key of
/// `drp.agents` in dsrctl.yaml, names it and this business; the answer is a bearer token. A
/// message that does not validate gets 403 with no body.
#[utoipa::path(post, path = "/v1/agent/{agent_id}", tag = "drp",
    params(("agent_id" = String, Path, description = "The agent's id in the service directory")),
    request_body(content = String, content_type = "text/plain", description = "base64 of the Ed25519 signature followed by the JSON message {agent-id, business-id, issued-at, expires-at, drp.version}"),
    responses((status = 200, body = Pairing), (status = 400, description = "A path that is not UTF-8", body = DrpErrorBody), (status = 403, description = "Unknown agent, or the message does not validate"),
        (status = 404, description = "DRP is not configured", body = DrpErrorBody)))]
pub async fn pair(
    State(state): State<Arc<ApiState>>,
    Path(agent_id): Path<String>,
    body: Bytes,
) -> Result<Json<Pairing>, DrpError> {
    let drp = drp(&state)?;
    let refuse = |e: DrpError| {
        tracing::warn!(
            "DRP pair-wise setup for `{agent_id}` refused: {}",
            e.message
        );
        DrpError::forbidden(e.message).bare()
    };
    let agent = drp
        .agents
        .get(&agent_id)
        .ok_or_else(|| refuse(DrpError::forbidden("no such agent in dsrctl.yaml")))?;
    let signed = message::open(&body, &agent.key).map_err(&refuse)?;
    signed
        .check_envelope(&agent.id, &drp.config.business_id, chrono::Utc::now())
        .map_err(&refuse)?;
    Ok(Json(Pairing {
        agent_id: agent.id.clone(),
        token: drp.tokens.issue(&agent.id, &agent.key_hex),
    }))
}

/// An empty JSON object.
#[derive(Debug, Serialize, ToSchema)]
pub struct Empty {}

/// Agent information (section 2.06): whether the bearer token is still good for the agent.
#[utoipa::path(get, path = "/v1/agent/{agent_id}", tag = "drp",
    params(("agent_id" = String, Path, description = "The agent's id in the service directory")),
    responses((status = 200, body = Empty), (status = 400, description = "A path that is not UTF-8", body = DrpErrorBody), (status = 401, body = DrpErrorBody),
        (status = 403, description = "The token is not this agent's", body = DrpErrorBody), (status = 404, body = DrpErrorBody)),
    security(("drp_token" = [])))]
pub async fn agent(
    State(state): State<Arc<ApiState>>,
    Path(agent_id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Empty>, DrpError> {
    let agent = drp(&state)?.caller(&headers)?;
    if agent.id != agent_id {
        return Err(DrpError::forbidden(format!(
            "the bearer token is agent `{}`'s, not `{agent_id}`'s",
            agent.id
        )));
    }
    Ok(Json(Empty {}))
}
