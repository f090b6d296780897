//! Checks on the steps of one DSR kind: ids, actions, references, cycles, previews.

use std::collections::{BTreeMap, BTreeSet};

use super::Report;
use super::graph::{Needs, closure, cycles};
use super::templates::{StepScope, check_step_templates};
use crate::load::{Code, Severity};
use crate::model::{Playbook, Preview, RESERVED_NAMES, Step};

/// The steps of one kind, with what the checks derive from them.
pub(crate) struct KindSteps<'a> {
    /// `/dsr/<kind>`.
    pub base: String,
    /// The steps, in file order.
    pub steps: &'a [Step],
    /// Id → index of its first definition.
    pub index: BTreeMap<&'a str, usize>,
    /// The `needs` graph (known ids only).
    pub needs: Needs<'a>,
    /// Steps whose `needs` (or `for_each`) name a step that is not defined.
    broken_needs: BTreeSet<&'a str>,
}

impl<'a> KindSteps<'a> {
    pub fn new(kind: &str, steps: &'a [Step]) -> KindSteps<'a> {
        let mut index = BTreeMap::new();
        for (i, s) in steps.iter().enumerate() {
            index.entry(s.id.as_str()).or_insert(i);
        }
        let needs = steps
            .iter()
            .map(|s| {
                // `for_each: step.capture` needs that step, as the compiler makes it.
                let for_each = s
                    .for_each
                    .as_deref()
                    .and_then(|f| f.split_once('.'))
                    .map(|(id, _)| id);
                let mut known: Vec<&str> = s
                    .needs
                    .iter()
                    .map(String::as_str)
                    .filter(|n| index.contains_key(n))
                    .collect();
                if let Some(id) = for_each
                    && index.contains_key(id)
                    && !known.contains(&id)
                {
                    known.push(id);
                }
                (s.id.as_str(), known)
            })
            .collect();
        let broken_needs = steps
            .iter()
            .filter(|s| {
                let for_each = s.for_each.as_deref().and_then(|f| f.split_once('.'));
                s.needs.iter().any(|n| !index.contains_key(n.as_str()))
                    || for_each.is_some_and(|(id, _)| !index.contains_key(id))
            })
            .map(|s| s.id.as_str())
            .collect();
        KindSteps {
            base: format!("/dsr/{kind}"),
            steps,
            index,
            needs,
            broken_needs,
        }
    }

    fn ids(&self) -> Vec<&str> {
        self.steps.iter().map(|s| s.id.as_str()).collect()
    }

    /// The step with this id.
    pub fn step(&self, id: &str) -> Option<&'a Step> {
        self.index.get(id).map(|i| &self.steps[*i])
    }

    /// Whether a step of this kind has an id that failed the schema: a reference to an
    /// unknown step may mean that one.
    pub fn id_broken(&self, r: &Report<'_>) -> bool {
        (0..self.steps.len()).any(|i| r.broken(&format!("{}/{i}/id", self.base)))
    }

    /// Whether the `capture` of the step with this id failed the schema.
    pub fn capture_broken(&self, r: &Report<'_>, id: &str) -> bool {
        self.index
            .get(id)
            .is_some_and(|i| r.broken(&format!("{}/{i}/capture", self.base)))
    }

    /// Whether what a step needs is known: neither it nor a step it needs names an
    /// undefined step in `needs`. When not, "does not need" findings about it would follow
    /// from the misspelt need (already reported) and are left out.
    pub fn needs_known(&self, id: &str) -> bool {
        !self.broken_needs.contains(id)
            && closure(&self.needs, id)
                .iter()
                .all(|n| !self.broken_needs.contains(n))
    }
}

/// Whether a step changes data, as declared or derived from its action.
pub fn mutates(step: &Step) -> bool {
    step.mutates.unwrap_or_else(|| {
        step.http.as_ref().is_some_and(|h| !h.method.is_read())
            || step.sql.as_ref().is_some_and(|s| s.mutates())
            || step.manual.is_some()
            || step.email.is_some()
    })
}

/// Whether the action shows its own "before" (structured SQL update/delete, manual tasks,
/// messages).
fn previews_itself(step: &Step) -> bool {
    step.manual.is_some()
        || step.email.is_some()
        || step
            .sql
            .as_ref()
            .is_some_and(|s| s.update.is_some() || s.delete.is_some())
}

/// Every check on one kind's steps.
pub fn check_steps(playbook: &Playbook, kind: &KindSteps<'_>, r: &mut Report<'_>) {
    let ids = kind.ids();
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    for (i, step) in kind.steps.iter().enumerate() {
        let ptr = format!("{}/{i}", kind.base);
        let id = step.id.as_str();
        if !seen.insert(id) {
            let first = kind.index.get(id).copied().unwrap_or(0);
            let first_line = r
                .doc
                .positions
                .value(&format!("{}/{first}/id", kind.base))
                .line;
            r.error(
                Code::DuplicateStepId,
                &format!("{ptr}/id"),
                format!("step id `{id}` is used twice in `dsr.{}`", kind_name(kind)),
            )
            .help(format!(
                "first defined at line {first_line}; step ids are unique per kind"
            ));
        }
        if RESERVED_NAMES.contains(&id) {
            r.error(
                Code::ReservedStepId,
                &format!("{ptr}/id"),
                format!("`{id}` is a reserved name and cannot be a step id"),
            )
            .help(format!("reserved names: {}", RESERVED_NAMES.join(", ")));
        }
        check_action(step, &ptr, r);
        check_refs(step, &ptr, kind, &ids, r);
        check_preview_needed(step, &ptr, r);
        check_step_templates(
            playbook,
            &StepScope {
                kind,
                step,
                pointer: &ptr,
            },
            r,
        );
    }
    for cycle in cycles(&kind.needs) {
        let first = cycle[0];
        let i = kind.index.get(first).copied().unwrap_or(0);
        r.push(
            Severity::Error,
            Code::DependencyCycle,
            &format!("{}/{i}/needs", kind.base),
            true,
            format!(
                "steps depend on each other in a cycle: {}",
                cycle.join(" -> ")
            ),
        )
        .help("remove one of these `needs` so the steps can run in order");
    }
}

fn kind_name<'a>(kind: &'a KindSteps<'_>) -> &'a str {
    kind.base.rsplit('/').next().unwrap_or("")
}

fn check_action(step: &Step, ptr: &str, r: &mut Report<'_>) {
    match step.action_count() {
        1 => {}
        0 => {
            r.push(
                Severity::Error,
                Code::MissingAction,
                ptr,
                false,
                format!("step `{}` has no action", step.id),
            )
            .help("add exactly one of `http`, `sql`, `manual`, `wait` or `email`");
        }
        n => {
            r.push(
                Severity::Error,
                Code::MultipleActions,
                ptr,
                false,
                format!("step `{}` has {n} actions; a step has exactly one", step.id),
            )
            .help("split it into several steps linked by `needs`");
        }
    }
    if let Some(sql) = &step.sql
        && sql.operation_count() != 1
    {
        r.push(
            Severity::Error,
            Code::SqlOperationCount,
            &format!("{ptr}/sql"),
            true,
            format!(
                "`sql` of step `{}` has {} operations; it needs exactly one",
                step.id,
                sql.operation_count()
            ),
        )
        .help("use one of `select`, `update`, `delete`, `query` or `execute`");
    }
}

fn check_refs(step: &Step, ptr: &str, kind: &KindSteps<'_>, ids: &[&str], r: &mut Report<'_>) {
    for (j, need) in step.needs.iter().enumerate() {
        if !kind.index.contains_key(need.as_str()) && !kind.id_broken(r) {
            r.error(
                Code::UnknownStep,
                &format!("{ptr}/needs/{j}"),
                format!(
                    "step `{}` needs `{need}`, which is not defined in `dsr.{}`",
                    step.id,
                    kind_name(kind)
                ),
            )
            .suggest(need, ids, "defined steps");
        }
    }
    let needed = closure(&kind.needs, &step.id);
    if let Some(fe) = &step.for_each {
        let p = format!("{ptr}/for_each");
        check_capture_ref(step, fe, &p, "for_each", kind, &needed, ids, r);
    }
    if let Some(Preview::Step(target)) = step.preview.as_deref() {
        let p = format!("{ptr}/preview/step");
        match kind.step(target) {
            None if kind.id_broken(r) => {}
            None => {
                r.error(
                    Code::UnknownStep,
                    &p,
                    format!(
                        "preview of step `{}` names `{target}`, which is not defined",
                        step.id
                    ),
                )
                .suggest(target, ids, "defined steps");
            }
            Some(_) if !needed.contains(target.as_str()) && kind.needs_known(&step.id) => {
                r.error(
                    Code::PreviewNotNeeded,
                    &p,
                    format!(
                        "step `{}` previews with `{target}` but does not need it, so it may run first",
                        step.id
                    ),
                )
                .help(format!("add `{target}` to `needs`"));
            }
            Some(_) => {}
        }
    }
}

/// A `step.capture` reference (for `for_each`): the step exists, is needed, has the capture.
#[allow(clippy::too_many_arguments)]
fn check_capture_ref(
    step: &Step,
    reference: &str,
    p: &str,
    what: &str,
    kind: &KindSteps<'_>,
    needed: &BTreeSet<&str>,
    ids: &[&str],
    r: &mut Report<'_>,
) {
    let Some((target, capture)) = reference.split_once('.') else {
        r.error(
            Code::InvalidReference,
            p,
            format!("`{what}: {reference}` must be `step-id.capture`"),
        )
        .help("name a step this one needs and one of its captures, e.g. `list-items.items`");
        return;
    };
    let Some(t) = kind.step(target) else {
        if kind.id_broken(r) {
            return;
        }
        r.error(
            Code::UnknownStep,
            p,
            format!(
                "`{what}` of step `{}` names step `{target}`, which is not defined",
                step.id
            ),
        )
        .suggest(target, ids, "defined steps");
        return;
    };
    if !needed.contains(target) && kind.needs_known(&step.id) {
        r.error(
            Code::StepNotNeeded,
            p,
            format!(
                "step `{}` uses `{reference}` but does not need `{target}`, so it may run first",
                step.id
            ),
        )
        .help(format!("add `{target}` to `needs`"));
    }
    if !t.capture.contains_key(capture) && !kind.capture_broken(r, target) {
        let caps: Vec<&str> = t.capture.keys().map(String::as_str).collect();
        r.error(
            Code::UnknownCapture,
            p,
            format!("step `{target}` has no capture `{capture}`"),
        )
        .suggest(capture, &caps, "its captures");
    }
}

fn check_preview_needed(step: &Step, ptr: &str, r: &mut Report<'_>) {
    if matches!(step.preview.as_deref(), Some(Preview::Item))
        && step.for_each.is_none()
        && !r.broken(&format!("{ptr}/for_each"))
    {
        r.error(
            Code::PreviewItemWithoutForEach,
            &format!("{ptr}/preview"),
            format!(
                "step `{}` previews with `item` but has no `for_each`",
                step.id
            ),
        )
        .help("`preview: item` works only inside `for_each`; use `preview: {step: ...}`");
    }
    if !mutates(step) || step.preview.is_some() || previews_itself(step) {
        return;
    }
    let raw = step.sql.as_ref().is_some_and(|s| s.execute.is_some());
    let what = if raw {
        "raw SQL `execute`"
    } else {
        "a mutation"
    };
    r.push(
        Severity::Error,
        Code::MissingPreview,
        ptr,
        false,
        format!("step `{}` is {what} without a `preview`", step.id),
    )
    .help(
        "say how a dry run shows the \"before\": `preview: {step: <read step>}`, `preview: item` \
         inside `for_each`, `preview: {http: ...}`/`{sql: ...}`, or `preview: {none: <reason>}`",
    );
}
