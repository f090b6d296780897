//! The Exercise Status of section 3.03, from a request's record: how dsrctl's lifecycle reads
//! in the protocol's states and reasons (section 3.02).

use serde::Serialize;
use utoipa::ToSchema;

use crate::journal::{RequestRecord, RequestState};
use crate::report::Scrubber;
use crate::store::DrpOrigin;

/// How a revocation's decline reason starts; the status reads it back as `revoked`.
pub const REVOKED: &str = "revoked through the Data Rights Protocol";

/// The `denied` reasons of section 3.02. A decline whose reason starts with one of them
/// (`no_match: no account has this email`) is denied with it; any other with `other`.
const DENIED_REASONS: &[&str] = &[
    "suspected_fraud",
    "insuf_verification",
    "no_match",
    "claim_not_covered",
    "outside_jurisdiction",
    "too_many_requests",
];

/// Where a data rights request stands (section 3.03).
#[derive(Debug, Serialize, ToSchema)]
pub struct ExerciseStatus {
    /// The request's id, as dsrctl records it.
    pub request_id: String,
    /// The `agent-request-id` the agent sent with it, when it sent one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_request_id: Option<String>,
    /// `open`, `in_progress`, `fulfilled`, `revoked` or `denied`.
    pub status: String,
    /// For `denied`: `suspected_fraud`, `insuf_verification`, `no_match`,
    /// `claim_not_covered`, `outside_jurisdiction`, `too_many_requests` or `other`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When the request was recorded (RFC 3339).
    pub received_at: String,
    /// The date the business answers by: the statutory deadline, extension included.
    pub expected_by: String,
    /// What a person said about it: the decline or extension reason, subject values masked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processing_details: Option<String>,
}

impl ExerciseStatus {
    /// The status of `record`, received through the protocol from `origin`.
    pub fn of(record: &RequestRecord, origin: Option<&DrpOrigin>) -> Self {
        let scrubber = Scrubber::for_request(&record.request);
        let scrub = |t: &str| scrubber.scrub(t);
        let said = record.reason.as_deref().map(scrub);
        let (status, reason, details) = match record.state {
            RequestState::Received => ("open", None, None),
            RequestState::Approved | RequestState::Running | RequestState::Waiting => {
                ("in_progress", None, None)
            }
            // A failed run is resumed after its cause is fixed: still in progress for the
            // agent, without the failure's detail, which is the operators' business.
            RequestState::Failed => ("in_progress", None, None),
            RequestState::Completed => ("fulfilled", None, None),
            RequestState::Declined => {
                let text = said.unwrap_or_default();
                if text.starts_with(REVOKED) {
                    ("revoked", None, Some(text))
                } else {
                    let code = DENIED_REASONS
                        .iter()
                        .find(|c| {
                            text.strip_prefix(**c)
                                .is_some_and(|rest| rest.is_empty() || rest.starts_with(':'))
                        })
                        .copied()
                        .unwrap_or("other");
                    ("denied", Some(code), Some(text))
                }
            }
        };
        let details = details.or_else(|| {
            record
                .extension_reason
                .as_deref()
                .map(|r| format!("extended: {}", scrub(r)))
        });
        ExerciseStatus {
            request_id: record.request.id.clone(),
            agent_request_id: origin.and_then(|o| o.agent_request_id.clone()),
            status: status.to_owned(),
            reason: reason.map(str::to_owned),
            received_at: record
                .created_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            expected_by: record.deadline.to_string(),
            processing_details: details.filter(|d| !d.is_empty()),
        }
    }
}

impl ExerciseStatus {
    /// Whether the request is in a final state (section 3.02): nothing about it changes
    /// any more.
    pub fn is_final(&self) -> bool {
        matches!(self.status.as_str(), "fulfilled" | "revoked" | "denied")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Request;

    fn record(state: RequestState, reason: Option<&str>) -> RequestRecord {
        let request: Request = serde_json::from_str(
            r#"{"id": "drp-AA-1", "kind": "delete", "tenant": "t1", "jurisdiction": "ccpa",
                "received": "2026-12-01", "subject": {"email": "jane@example.com"}}"#,
        )
        .unwrap();
        RequestRecord {
            state,
            reason: reason.map(str::to_owned),
            received: request.received,
            deadline: request.deadline(false),
            extended: false,
            extension_reason: None,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
            request,
        }
    }

    #[test]
    fn states_map_to_the_protocols() {
        let s = |st, r| {
            let x = ExerciseStatus::of(&record(st, r), None);
            (x.status, x.reason)
        };
        use RequestState::*;
        assert_eq!(s(Received, None), ("open".into(), None));
        for st in [Approved, Running, Waiting, Failed] {
            assert_eq!(s(st, None).0, "in_progress");
        }
        assert_eq!(s(Completed, None).0, "fulfilled");
        assert_eq!(
            s(Declined, Some("no_match: no account has this email")),
            ("denied".into(), Some("no_match".into()))
        );
        assert_eq!(
            s(Declined, Some("no_matching account")),
            ("denied".into(), Some("other".into()))
        );
        assert_eq!(
            s(
                Declined,
                Some(&format!("{REVOKED} by agent `AA`: changed my mind"))
            ),
            ("revoked".into(), None)
        );
    }

    #[test]
    fn details_mask_the_subjects_values() {
        let x = ExerciseStatus::of(
            &record(
                RequestState::Declined,
                Some("no_match: jane@example.com is unknown"),
            ),
            None,
        );
        let details = x.processing_details.unwrap();
        assert!(!details.contains("jane@example.com"), "{details}");
        assert_eq!(x.expected_by, "2027-01-15");
    }
}
