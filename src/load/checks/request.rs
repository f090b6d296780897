//! Checks on a request beyond its schema.

use super::Report;
use crate::load::{Code, Severity};
use crate::model::{DsrKind, Request};

/// Every check on one request.
pub fn check_request_findings(req: &Request, r: &mut Report<'_>) {
    if req.subject.is_empty() || req.subject.values().all(|i| i.values().is_empty()) {
        r.error(
            Code::EmptySubject,
            "/subject",
            "the request names no subject identity".to_owned(),
        )
        .help("add at least one identity, e.g. `subject: { email: jane@example.com }`");
    }
    for (name, identity) in &req.subject {
        if identity.values().iter().any(|v| v.trim().is_empty()) {
            r.error(
                Code::EmptyValue,
                &format!("/subject/{}", crate::load::position::escape_token(name)),
                format!("identity `{name}` is empty"),
            )
            .help("remove it or give its value");
        }
    }
    match (req.kind, &req.corrections) {
        (DsrKind::Rectify, None) => {
            r.push(
                Severity::Error,
                Code::MissingCorrections,
                "/kind",
                false,
                "a rectify request needs `corrections`".to_owned(),
            )
            .help("add `corrections:` with the corrected values by field");
        }
        (DsrKind::Rectify, Some(_)) | (_, None) => {}
        (kind, Some(_)) => {
            r.push(
                Severity::Warning,
                Code::UnusedCorrections,
                "/corrections",
                true,
                format!("`corrections` is ignored for a `{kind}` request"),
            )
            .help("corrections apply only to `rectify` requests");
        }
    }
}
