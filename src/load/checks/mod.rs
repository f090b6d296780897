//! Semantic checks across the config and all playbooks. Every problem is collected.

use super::yaml::Document;
use super::{Diagnostics, LoadedPlaybook};
use crate::model::ProjectConfig;

/// Run every semantic check. `docs[i]` is the parsed document of `playbooks[i]`.
pub fn check_all(
    _config: Option<&ProjectConfig>,
    _config_doc: Option<&Document>,
    _playbooks: &[LoadedPlaybook],
    _docs: &[Document],
) -> Diagnostics {
    Diagnostics::default()
}

/// Checks on a request beyond its schema.
pub fn check_request(_request: &crate::model::Request, _doc: &Document) -> Diagnostics {
    Diagnostics::default()
}
