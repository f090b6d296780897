//! What a replan changes: a run's plan against the plan its request compiles to today,
//! step by step (matched by key), with where each step stands in the run's journal.

use crate::journal::{Plan, StepOutcome, StepStatus};
use crate::report::step_changes;

/// How one step differs between a run's plan and its new plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepChange {
    /// Only in the new plan.
    Added,
    /// Only in the old plan.
    Removed,
    /// In both, with these fields different, each as `field: old → new`
    /// ([`step_changes`](crate::report::step_changes)).
    Changed(Vec<String>),
    /// In both, the same.
    Same,
}

/// One step of a replan, with where it stands in the run.
#[derive(Debug, Clone)]
pub struct StepDiff {
    /// Step key (steps are matched by key).
    pub key: String,
    /// How it differs.
    pub change: StepChange,
    /// Its journaled step-level outcome, if it has one.
    pub status: Option<StepStatus>,
    /// Instances (of a `for_each` step) whose outcome is kept because they finished.
    pub finished_instances: usize,
    /// Instances whose mutation may have reached the service unanswered: before anything is
    /// sent again, their verification or a person settles them, whatever the new plan says.
    pub in_doubt: usize,
}

impl StepDiff {
    /// Whether the step finished: its outcome is kept whatever the new plan says.
    pub fn done(&self) -> bool {
        self.status.is_some_and(|s| s.is_settled())
    }
}

/// The difference between a run's plan and the plan its request compiles to today.
#[derive(Debug, Clone, Default)]
pub struct PlanDiff {
    /// Every step of either plan: the new plan's order, then removed steps.
    pub steps: Vec<StepDiff>,
    /// Input files (config, playbooks) added, removed or changed since the run's plan.
    pub inputs: Vec<String>,
}

impl PlanDiff {
    /// Compares `old` (with the run's journal) and `new`.
    pub fn between(old: &Plan, new: &Plan, journal: &[StepOutcome]) -> PlanDiff {
        let status = |key: &str| {
            journal
                .iter()
                .find(|o| o.instance == key && o.step == key)
                .map(|o| o.status)
        };
        let finished = |key: &str| {
            journal
                .iter()
                .filter(|o| o.step == key && o.instance != key && o.status.is_settled())
                .count()
        };
        let in_doubt = |key: &str| {
            journal
                .iter()
                .filter(|o| o.step == key && o.in_doubt())
                .count()
        };
        let mut steps: Vec<StepDiff> = new
            .steps
            .iter()
            .map(|s| StepDiff {
                key: s.key.clone(),
                change: match old.step(&s.key) {
                    None => StepChange::Added,
                    Some(before) => match step_changes(before, s) {
                        f if f.is_empty() => StepChange::Same,
                        f => StepChange::Changed(f),
                    },
                },
                status: status(&s.key),
                finished_instances: finished(&s.key),
                in_doubt: in_doubt(&s.key),
            })
            .collect();
        for s in old.steps.iter().filter(|s| new.step(&s.key).is_none()) {
            steps.push(StepDiff {
                key: s.key.clone(),
                change: StepChange::Removed,
                status: status(&s.key),
                finished_instances: finished(&s.key),
                in_doubt: in_doubt(&s.key),
            });
        }
        let mut inputs = Vec::new();
        for (path, digest) in &new.inputs {
            match old.inputs.get(path) {
                None => inputs.push(format!("{path} (added)")),
                Some(d) if d != digest => inputs.push(format!("{path} (changed)")),
                Some(_) => {}
            }
        }
        for path in old.inputs.keys().filter(|p| !new.inputs.contains_key(*p)) {
            inputs.push(format!("{path} (removed)"));
        }
        PlanDiff { steps, inputs }
    }

    /// Whether anything left to do differs: a step added, removed or changed that has not
    /// finished. (A finished step stays done whatever changed in it.)
    pub fn changes_what_is_left(&self) -> bool {
        self.steps
            .iter()
            .any(|s| s.change != StepChange::Same && !s.done())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn step(key: &str, path: &str, for_each: bool) -> Value {
        let mut s = json!({"key": key, "service": "crm", "id": key, "kind": "delete",
                           "action": {"http": {"method": "DELETE", "path": path}},
                           "mutates": true, "idempotent": true});
        if for_each {
            s["for_each"] = json!({"step": "crm/find", "capture": "ids"});
        }
        s
    }

    fn plan(steps: Vec<Value>, playbook: &str) -> Plan {
        serde_json::from_value(json!({
            "format_version": 1, "created_at": "2026-01-01T00:00:00Z",
            "request": {"id": "r", "kind": "delete", "tenant": "t", "received": "2026-01-01",
                        "subject": {"email": "a@b.example"}},
            "inputs": {"policies/crm.yaml": playbook}, "services": [], "steps": steps
        }))
        .expect("plan")
    }

    fn outcome(instance: &str, step: &str, status: StepStatus) -> StepOutcome {
        StepOutcome::new(instance, step, status)
    }

    fn by_key<'a>(d: &'a PlanDiff, key: &str) -> &'a StepDiff {
        d.steps.iter().find(|s| s.key == key).expect(key)
    }

    #[test]
    fn steps_are_matched_by_key_and_a_finished_step_stays_done() {
        let old = plan(
            vec![
                step("crm/a", "/a", false),
                step("crm/b", "/b", true),
                step("crm/gone", "/g", false),
            ],
            "1",
        );
        let new = plan(
            vec![
                step("crm/a", "/a2", false),
                step("crm/b", "/b2", true),
                step("crm/new", "/n", false),
            ],
            "2",
        );
        let journal = [
            outcome("crm/a", "crm/a", StepStatus::Succeeded),
            outcome("crm/b", "crm/b", StepStatus::Failed),
            outcome("crm/b#0", "crm/b", StepStatus::Succeeded),
            outcome("crm/b#1", "crm/b", StepStatus::Failed),
            outcome("crm/gone", "crm/gone", StepStatus::Succeeded),
        ];
        let d = PlanDiff::between(&old, &new, &journal);
        let a = by_key(&d, "crm/a");
        assert_eq!(
            a.change,
            StepChange::Changed(vec!["action.http.path: `/a` → `/a2`".into()])
        );
        assert!(a.done(), "succeeded: kept whatever changed");
        let b = by_key(&d, "crm/b");
        assert!(!b.done());
        assert_eq!(
            b.finished_instances, 1,
            "the instance that succeeded is kept"
        );
        assert_eq!(by_key(&d, "crm/new").change, StepChange::Added);
        let gone = by_key(&d, "crm/gone");
        assert_eq!(
            (gone.change.clone(), gone.done()),
            (StepChange::Removed, true)
        );
        assert_eq!(d.inputs, ["policies/crm.yaml (changed)"]);
        assert!(d.changes_what_is_left());
    }

    #[test]
    fn a_change_only_to_finished_steps_leaves_nothing_to_approve() {
        let old = plan(
            vec![step("crm/a", "/a", false), step("crm/b", "/b", false)],
            "1",
        );
        let new = plan(
            vec![step("crm/a", "/a2", false), step("crm/b", "/b", false)],
            "2",
        );
        let journal = [
            outcome("crm/a", "crm/a", StepStatus::Succeeded),
            outcome("crm/b", "crm/b", StepStatus::Failed),
        ];
        let d = PlanDiff::between(&old, &new, &journal);
        assert_eq!(by_key(&d, "crm/b").change, StepChange::Same);
        assert!(!d.changes_what_is_left());
    }
}
