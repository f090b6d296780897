//! What a mutation would do: the dry run's record of a change.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a mutation would do: the dry run's record, shown in every plan view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// Planned step key.
    pub step: String,
    /// Instance key (`#n` for a `for_each` element).
    pub instance: String,
    /// Service.
    pub service: String,
    /// What is addressed, e.g. `DELETE /digitaltwins/{…}` or `DELETE FROM customers`.
    pub target: String,
    /// The action.
    pub action: ChangeAction,
    /// The data before (from the preview read), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    /// The data after (updates), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
    /// Rows or resources affected, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// Why the change is `unknown`, or instructions for `manual`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// ETag of the previewed target, sent as `If-Match` on apply when the service supports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// SHA-256 of `before`, compared on apply to refuse a target changed since the plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

/// The kind of change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeAction {
    /// Data will be erased.
    Delete,
    /// Data will be changed.
    Update,
    /// Something will be created (e.g. an export operation).
    Create,
    /// Something will be sent (e.g. an asynchronous request).
    Send,
    /// A person will do it.
    Manual,
    /// The effect cannot be previewed; `reason` says why.
    Unknown,
}

impl ChangeAction {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeAction::Delete => "delete",
            ChangeAction::Update => "update",
            ChangeAction::Create => "create",
            ChangeAction::Send => "send",
            ChangeAction::Manual => "manual",
            ChangeAction::Unknown => "unknown",
        }
    }
}
