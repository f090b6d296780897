//! The evidence keys from the project's secrets: the audit log's MAC key and the Ed25519 key
//! that signs reports, packages and checkpoints (`evidence` in dsrctl.yaml), else keys made on
//! first use in the state directory, as the plan key is.

use super::seal::generated_key;
use super::{Workflow, WorkflowError};
use crate::journal::SigningKey;
use crate::load::Project;
use crate::model::SecretRef;
use crate::secret::{EnvFileResolver, SecretResolver};

/// The generated audit key's file, in the state directory.
const AUDIT_KEY_FILE: &str = "audit.key";
/// The generated signing key's file, in the state directory.
const SIGNING_KEY_FILE: &str = "signing.key";

/// The audit log's MAC key: `evidence.audit_key`, else one made in `state_dir`.
pub fn audit_key(project: &Project, state_dir: &std::path::Path) -> Result<Vec<u8>, WorkflowError> {
    match &project.config.evidence.audit_key {
        Some(r) => resolve(project, r, "evidence.audit_key").map(String::into_bytes),
        None => generated_key(&state_dir.join(AUDIT_KEY_FILE))
            .map_err(|e| WorkflowError::Key(format!("the audit key: {e}"))),
    }
}

/// Whether the audit key is one made beside the embedded store rather than configured.
pub fn audit_key_is_generated(project: &Project) -> bool {
    project.config.evidence.audit_key.is_none()
}

/// The signing key: `evidence.signing_key`, else one made in `state_dir`.
pub fn signing_key(
    project: &Project,
    state_dir: &std::path::Path,
) -> Result<SigningKey, WorkflowError> {
    let text = match &project.config.evidence.signing_key {
        Some(r) => resolve(project, r, "evidence.signing_key")?,
        None => {
            let bytes = generated_key(&state_dir.join(SIGNING_KEY_FILE))
                .map_err(|e| WorkflowError::Key(format!("the signing key: {e}")))?;
            String::from_utf8_lossy(&bytes).into_owned()
        }
    };
    SigningKey::from_secret(&text)
        .map_err(|e| WorkflowError::Key(format!("the signing key (`evidence.signing_key`): {e}")))
}

fn resolve(project: &Project, r: &SecretRef, what: &str) -> Result<String, WorkflowError> {
    EnvFileResolver::new(&project.root)
        .resolve(r)
        .map_err(|e| WorkflowError::Key(format!("`{what}` in dsrctl.yaml: {e}")))
}

impl Workflow {
    /// The key signing this project's evidence.
    pub fn signing_key(&self) -> Result<SigningKey, WorkflowError> {
        signing_key(&self.project, &self.state_dir)
    }
}
