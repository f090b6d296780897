//! Checks on `drp:` of `dsrctl.yaml` beyond its schema: the tenant exists, each agent is
//! listed once, and each agent's key is an Ed25519 public key.

use std::collections::BTreeSet;

use serde_json::Value;

use super::Report;
use crate::load::Code;

/// Every check on `/drp` of the config as written.
pub fn check_drp(r: &mut Report<'_>) {
    let doc = r.doc;
    let Some(drp) = doc.value.get("drp").and_then(Value::as_object) else {
        return;
    };
    let tenants: Vec<&str> = doc
        .value
        .get("tenants")
        .and_then(Value::as_object)
        .map(|t| t.keys().map(String::as_str).collect())
        .unwrap_or_default();
    if let Some(Value::String(tenant)) = drp.get("tenant")
        && !tenants.contains(&tenant.as_str())
    {
        r.error(
            Code::UnknownTenant,
            "/drp/tenant",
            format!("`drp.tenant` names tenant `{tenant}`, which dsrctl.yaml does not define"),
        )
        .suggest(tenant, &tenants, "tenants in dsrctl.yaml");
    }
    let Some(agents) = drp.get("agents").and_then(Value::as_array) else {
        return;
    };
    let mut seen = BTreeSet::new();
    for (i, agent) in agents.iter().enumerate() {
        if let Some(id) = agent.get("id").and_then(Value::as_str)
            && !seen.insert(id)
        {
            r.error(
                Code::DuplicateKey,
                &format!("/drp/agents/{i}/id"),
                format!("DRP agent `{id}` is listed twice"),
            )
            .help("list each agent once, with the key of the service directory");
        }
        if let Some(key) = agent.get("verify_key").and_then(Value::as_str)
            && let Ok(bytes) = <[u8; 32]>::try_from(hex::decode(key).unwrap_or_default())
            && ed25519_dalek::VerifyingKey::from_bytes(&bytes).is_err()
        {
            r.error(
                Code::InvalidValue,
                &format!("/drp/agents/{i}/verify_key"),
                "this `verify_key` is 64 hex digits but not an Ed25519 public key".to_owned(),
            )
            .help("copy the agent's `verify_key` from the DRP service directory");
        }
    }
}
