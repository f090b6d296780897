//! Where a request stands in its lifecycle, and a request as the store keeps it.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::model::Request;

/// A request's lifecycle state: received → approved | declined → running → waiting →
/// completed | failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestState {
    /// Recorded at intake, not yet approved.
    Received,
    /// Approved; a worker starts its run when it is due.
    Approved,
    /// Declined, with a reason.
    Declined,
    /// Its run is executing.
    Running,
    /// Waiting for a manual task or a deferred step.
    Waiting,
    /// Fulfilled.
    Completed,
    /// Its run failed; resumable after fixing the cause.
    Failed,
}

impl RequestState {
    /// Every state.
    pub const ALL: [RequestState; 7] = [
        RequestState::Received,
        RequestState::Approved,
        RequestState::Declined,
        RequestState::Running,
        RequestState::Waiting,
        RequestState::Completed,
        RequestState::Failed,
    ];

    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestState::Received => "received",
            RequestState::Approved => "approved",
            RequestState::Declined => "declined",
            RequestState::Running => "running",
            RequestState::Waiting => "waiting",
            RequestState::Completed => "completed",
            RequestState::Failed => "failed",
        }
    }

    /// The state with this name.
    pub fn parse(name: &str) -> Option<RequestState> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Whether the lifecycle allows moving from `self` to `next`. Staying in the same state
    /// is allowed (it only replaces the reason).
    pub fn can_become(self, next: RequestState) -> bool {
        use RequestState::*;
        self == next
            || matches!(
                (self, next),
                (Received, Approved | Declined)
                    | (Approved, Running | Declined)
                    | (Running, Waiting | Completed | Failed)
                    | (Waiting, Running | Completed | Failed)
                    | (Failed, Running)
            )
    }

    /// The states from which `next` may be reached (itself included).
    pub fn predecessors(next: RequestState) -> Vec<RequestState> {
        Self::ALL
            .into_iter()
            .filter(|s| s.can_become(next))
            .collect()
    }

    /// Whether the state needs a reason.
    pub fn needs_reason(self) -> bool {
        matches!(self, RequestState::Declined)
    }

    /// Whether the request has ended for good.
    pub fn is_final(self) -> bool {
        matches!(self, RequestState::Declined | RequestState::Completed)
    }
}

impl fmt::Display for RequestState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request as stored, with its lifecycle state and deadline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// The request as received.
    pub request: Request,
    /// Where it stands.
    pub state: RequestState,
    /// Why it is in this state (a decline, a failure), if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When it was received.
    pub received: NaiveDate,
    /// The statutory deadline, extension included.
    pub deadline: NaiveDate,
    /// Whether the deadline was extended.
    pub extended: bool,
    /// Why the deadline was extended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension_reason: Option<String>,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl RequestRecord {
    /// Days from `today` to the deadline: negative when overdue.
    pub fn days_left(&self, today: NaiveDate) -> i64 {
        (self.deadline - today).num_days()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_allows_only_forward_moves_and_resume() {
        use RequestState::*;
        assert!(Received.can_become(Approved));
        assert!(Received.can_become(Declined));
        assert!(!Received.can_become(Running));
        assert!(Waiting.can_become(Running));
        assert!(Failed.can_become(Running));
        assert!(!Completed.can_become(Running));
        assert!(!Declined.can_become(Approved));
        assert_eq!(
            predecessors_names(Running),
            ["approved", "running", "waiting", "failed"]
        );
    }

    fn predecessors_names(s: RequestState) -> Vec<&'static str> {
        RequestState::predecessors(s)
            .into_iter()
            .map(RequestState::as_str)
            .collect()
    }

    #[test]
    fn names_round_trip() {
        for s in RequestState::ALL {
            assert_eq!(RequestState::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }
}
