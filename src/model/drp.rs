//! The Data Rights Protocol (DRP 1.0) side of the API: this project as a Privacy
//! Infrastructure Provider answering the Authorized Agents configured here.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Jurisdiction;

/// The Data Rights Protocol (DRP 1.0) endpoints of `dsrctl serve --listen`
/// (`/v1/data-rights-request`, `/v1/agent/{agent-id}`, `/.well-known/data-rights.json`):
/// the covered business this project answers for and the Authorized Agents it accepts
/// signed requests from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DrpConfig {
    /// This covered business's id in the DRP service directory (the `business-id` every
    /// agent's signed message must carry), e.g. `CONTOSO`.
    #[schemars(length(min = 1))]
    pub business_id: String,
    /// The business's name, for the discovery document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The tenant whose services hold the business's data: requests received through DRP
    /// are recorded for it, and reach only its connectors.
    pub tenant: String,
    /// The law a request without a `regime` (a voluntary one) is handled under (default
    /// `ccpa`, the regime DRP 1.0 encodes).
    #[serde(default = "default_regime")]
    pub default_regime: Jurisdiction,
    /// The URL agents reach the API at, for the discovery document (e.g.
    /// `https://privacy.example.com`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_base: Option<String>,
    /// The Authorized Agents whose signed requests are accepted, as the service directory
    /// lists them.
    pub agents: Vec<DrpAgent>,
    /// Accept `http://` status callback URLs as well as `https://` (default false: an
    /// agent's status updates, sent to the URL its request names, go over TLS only). For
    /// trying the protocol out against a local agent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_http_callbacks: bool,
}

fn default_regime() -> Jurisdiction {
    Jurisdiction::Ccpa
}

/// One Authorized Agent: its directory id and its Ed25519 public key. The audit log names
/// what it does as `drp:ID`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DrpAgent {
    /// The agent's id in the DRP service directory (`agent-id` of its messages): capital
    /// letters, digits and `_`, e.g. `CR_PERMISSION_SLIP`.
    #[schemars(regex(pattern = r"^[A-Z0-9_]+$"))]
    pub id: String,
    /// A name people recognise, e.g. `Permission Slip`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The agent's Ed25519 public verifying key from the service directory, 64 hex digits
    /// (public, so written in the file).
    #[schemars(regex(pattern = r"^[0-9A-Fa-f]{64}$"))]
    pub verify_key: String,
}
