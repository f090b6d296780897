//! API tokens: defined in `dsrctl.yaml` with their secret by reference, resolved once when
//! `serve --listen` starts; each scoped to tenants and roles. A caller presents one as
//! `Authorization: Bearer SECRET`.

use std::collections::BTreeSet;
use std::sync::Arc;

use anyhow::{Result, bail};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};

use super::ApiState;
use super::error::ApiError;
use crate::load::Project;
use crate::model::ApiRole;
use crate::secret::{EnvFileResolver, SecretResolver};

/// A fingerprint of a token's secret digest: names the secret without revealing it.
fn fingerprint(digest: &[u8; 32]) -> String {
    hex::encode(&Sha256::digest(digest)[..8])
}

/// Shortest secret accepted for a token.
const MIN_SECRET_LEN: usize = 16;

/// The tokens that may call the API.
#[derive(Debug, Default)]
pub struct Tokens(Vec<Token>);

#[derive(Debug)]
struct Token {
    caller: Caller,
    /// SHA-256 of the secret: compared as digests, so the comparison's time says nothing
    /// about the secret.
    digest: [u8; 32],
}

/// Who is calling: a token's name, tenants and roles.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token's name.
    pub name: String,
    tenants: BTreeSet<String>,
    roles: BTreeSet<ApiRole>,
}

impl Tokens {
    /// Resolves the secrets of the project's API tokens. A token naming an undefined tenant,
    /// a missing or short secret, or two tokens with one name or one secret stop `serve`.
    pub fn resolve(project: &Project) -> Result<Tokens> {
        let Some(api) = &project.config.api else {
            return Ok(Tokens::default());
        };
        let resolver = EnvFileResolver::new(&project.root);
        let mut tokens: Vec<Token> = Vec::new();
        for t in &api.tokens {
            for tenant in &t.tenants {
                if !project.config.tenants.contains_key(tenant) {
                    bail!(
                        "API token `{}` names tenant `{tenant}`, which dsrctl.yaml does not define",
                        t.name
                    );
                }
            }
            if t.roles.is_empty() || t.tenants.is_empty() {
                bail!(
                    "API token `{}` needs at least one tenant and one role (intake, operator, approver, auditor)",
                    t.name
                );
            }
            let secret = resolver
                .resolve(&t.secret)
                .map_err(|e| anyhow::anyhow!("the secret of API token `{}`: {e}", t.name))?;
            if secret.chars().count() < MIN_SECRET_LEN {
                bail!(
                    "the secret of API token `{}` is shorter than {MIN_SECRET_LEN} characters; make one with `openssl rand -hex 32`",
                    t.name
                );
            }
            let digest: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
            if let Some(other) = tokens
                .iter()
                .find(|o| o.caller.name == t.name || o.digest == digest)
            {
                bail!(
                    "API tokens `{}` and `{}` share a name or a secret; give each its own",
                    other.caller.name,
                    t.name
                );
            }
            tokens.push(Token {
                caller: Caller {
                    name: t.name.clone(),
                    tenants: t.tenants.iter().cloned().collect(),
                    roles: t.roles.iter().copied().collect(),
                },
                digest,
            });
        }
        Ok(Tokens(tokens))
    }

    /// How many tokens there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no token may call the API.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// What a console session records of the token it acts for: its name and a
    /// fingerprint of its secret, so a changed secret ends the sessions made with the old.
    pub fn session_ref(&self, caller: &Caller) -> Option<String> {
        self.0
            .iter()
            .find(|t| t.caller.name == caller.name)
            .map(|t| format!("{}:{}", t.caller.name, fingerprint(&t.digest)))
    }

    /// The caller of a session's [`Tokens::session_ref`], while that token still exists
    /// with the same secret.
    pub fn caller_of_session(&self, session_ref: &str) -> Option<Caller> {
        let (name, print) = session_ref.rsplit_once(':')?;
        self.0
            .iter()
            .find(|t| t.caller.name == name && fingerprint(&t.digest) == print)
            .map(|t| t.caller.clone())
    }

    /// The caller presenting `authorization` (the header's value).
    fn caller(&self, authorization: Option<&str>) -> Result<Caller, ApiError> {
        let Some(value) = authorization else {
            return Err(ApiError::unauthorized(
                "no API token: send `Authorization: Bearer TOKEN` (tokens are defined under `api.tokens` in dsrctl.yaml)",
            ));
        };
        let secret = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or_else(|| {
                ApiError::unauthorized("the Authorization header must be `Bearer TOKEN`")
            })?
            .trim();
        let digest: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        self.0
            .iter()
            .find(|t| t.digest == digest)
            .map(|t| t.caller.clone())
            .ok_or_else(|| ApiError::unauthorized("the API token is not valid"))
    }
}

impl Caller {
    /// The actor the audit log names: `api:NAME`.
    pub fn actor(&self) -> String {
        format!("api:{}", self.name)
    }

    /// Refuses the call unless the token has one of `roles`.
    pub fn require(&self, roles: &[ApiRole]) -> Result<(), ApiError> {
        if roles.iter().any(|r| self.roles.contains(r)) {
            return Ok(());
        }
        Err(ApiError::forbidden(format!(
            "API token `{}` may not do this; it takes the role {}",
            self.name,
            roles
                .iter()
                .map(|r| format!("`{}`", r.as_str()))
                .collect::<Vec<_>>()
                .join(" or ")
        )))
    }

    /// Whether the token may see and touch the requests of `tenant`.
    pub fn sees(&self, tenant: &str) -> bool {
        self.tenants.contains(tenant)
    }

    /// The token's one tenant, when it has exactly one.
    pub fn only_tenant(&self) -> Option<&str> {
        match self.tenants.len() {
            1 => self.tenants.iter().next().map(String::as_str),
            _ => None,
        }
    }
}

impl FromRequestParts<Arc<ApiState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ApiState>,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .map(|v| v.to_str().unwrap_or(""));
        state.tokens.caller(header)
    }
}
