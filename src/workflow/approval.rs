//! The one approval rule: which plans wait for a person before anything is sent, and how an
//! approval is recorded. Intake, `run`, `apply`, `replan` and the scheduler all ask it.

use serde_json::json;

use super::{Workflow, WorkflowError};
use crate::journal::{Plan, PlannedAction};
use crate::model::{DsrKind, HttpMethod};

/// The reason intake records when the rule approves a request by itself. The scheduler
/// reads it back: a request approved this way whose plan has since come to need a person
/// is not started until one approves it (`dsrctl request approve`).
pub const AUTO_APPROVAL: &str = "approved on intake: its plan erases and restricts nothing";

/// Why `plan` needs a person's approval before it is applied, or `None` when the rule
/// approves it by itself.
///
/// Requests that erase or restrict data (kinds `delete` and `restrict`) always need one; so
/// does any plan with a step that erases (an HTTP `DELETE`, an SQL `delete`, or raw SQL,
/// whose effect is not known). Access, export and rectify plans that erase nothing only
/// read, or apply the subject's own correction.
pub fn approval_needed(plan: &Plan) -> Option<String> {
    let kind = plan.request.kind;
    if matches!(kind, DsrKind::Delete | DsrKind::Restrict) {
        return Some(format!(
            "a {kind} request erases or restricts data in {} service(s)",
            services(plan)
        ));
    }
    let erasing: Vec<&str> = plan
        .steps
        .iter()
        .filter(|s| erases(&s.action))
        .map(|s| s.key.as_str())
        .collect();
    (!erasing.is_empty()).then(|| {
        format!(
            "this {kind} plan erases data ({})",
            erasing
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

/// Whether an action erases data (or may: raw SQL).
fn erases(action: &PlannedAction) -> bool {
    match action {
        PlannedAction::Http(h) => h.method == HttpMethod::Delete,
        PlannedAction::Sql(q) => q.delete.is_some() || q.execute.is_some(),
        PlannedAction::Manual(_) | PlannedAction::Wait(_) | PlannedAction::Email(_) => false,
    }
}

fn services(plan: &Plan) -> usize {
    let mut s: Vec<&str> = plan.steps.iter().map(|s| s.service.as_str()).collect();
    s.sort_unstable();
    s.dedup();
    s.len()
}

impl Workflow {
    /// Applies the rule to `plan`: when it needs a person, `approver` must name one, and the
    /// approval is appended to the audit log (kind `approved`, the request as subject).
    /// Returns who approved, or `None` when the rule needs nobody.
    pub async fn approve(
        &self,
        plan: &Plan,
        approver: Option<&str>,
    ) -> Result<Option<String>, WorkflowError> {
        let Some(why) = approval_needed(plan) else {
            return Ok(None);
        };
        let Some(name) = approver.filter(|n| !n.trim().is_empty()) else {
            return Err(WorkflowError::NotApproved { why });
        };
        self.store
            .append_audit(
                "approved",
                &plan.request.id,
                json!({"kind": plan.request.kind, "why": why, "holder": self.holder}),
                Some(name),
            )
            .await?;
        Ok(Some(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(kind: &str, steps: &str) -> Plan {
        let doc = format!(
            r#"{{"format_version": 1, "created_at": "2026-01-01T00:00:00Z",
                "request": {{"id": "r", "kind": "{kind}", "tenant": "t", "received": "2026-01-01",
                             "subject": {{"email": "a@b.example"}}}},
                "inputs": {{}}, "services": [], "steps": [{steps}]}}"#
        );
        serde_json::from_str(&doc).expect("plan")
    }

    fn step(method: &str) -> String {
        format!(
            r#"{{"key": "crm/s", "service": "crm", "id": "s", "kind": "export",
                 "action": {{"http": {{"method": "{method}", "path": "/x"}}}},
                 "mutates": {}, "idempotent": true}}"#,
            method != "GET"
        )
    }

    #[test]
    fn delete_and_restrict_always_need_a_person() {
        assert!(approval_needed(&plan("delete", "")).is_some());
        assert!(approval_needed(&plan("restrict", "")).is_some());
    }

    #[test]
    fn other_kinds_need_one_only_when_their_plan_erases() {
        assert_eq!(approval_needed(&plan("export", &step("GET"))), None);
        assert_eq!(approval_needed(&plan("rectify", &step("PATCH"))), None);
        let why = approval_needed(&plan("export", &step("DELETE"))).expect("erases");
        assert!(why.contains("`crm/s`"), "{why}");
    }
}
