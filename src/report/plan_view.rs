//! Views of a dry run's changes: terminal text, JSON and Markdown (PR comments, job
//! summaries). Subject values are masked in every view unless `show_personal_data`: every
//! string leaf of `before`/`after` becomes `<string, N chars>`, and free text (targets,
//! reasons) is scrubbed of the request's identity values.

use owo_colors::OwoColorize;
use serde::Serialize;
use serde_json::Value;
use similar::{ChangeTag, TextDiff};

use super::mask::{Scrubber, mask_json_against, sensitivity};
use crate::journal::{Change, ChangeAction, Plan, StepOutcome};

pub use super::plan_markdown::{MARKDOWN_LIMIT, render_markdown};

/// Version of the plan view's JSON form.
pub const PLAN_VIEW_FORMAT_VERSION: u32 = 1;

/// How the views are made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanViewOptions {
    /// Show subject values instead of masks.
    pub show_personal_data: bool,
    /// Colour the terminal text (ANSI).
    pub color: bool,
}

/// Counts of changes by action.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Deletions.
    pub delete: usize,
    /// Updates.
    pub update: usize,
    /// Creations.
    pub create: usize,
    /// Sends.
    pub send: usize,
    /// Manual tasks.
    pub manual: usize,
    /// Changes that cannot be previewed.
    pub unknown: usize,
    /// Distinct services with changes.
    pub services: usize,
}

impl Summary {
    /// Counts the changes.
    pub fn of(changes: &[Change]) -> Summary {
        let mut s = Summary::default();
        let mut services: Vec<&str> = Vec::new();
        for c in changes {
            match c.action {
                ChangeAction::Delete => s.delete += 1,
                ChangeAction::Update => s.update += 1,
                ChangeAction::Create => s.create += 1,
                ChangeAction::Send => s.send += 1,
                ChangeAction::Manual => s.manual += 1,
                ChangeAction::Unknown => s.unknown += 1,
            }
            if !services.contains(&c.service.as_str()) {
                services.push(&c.service);
            }
        }
        s.services = services.len();
        s
    }

    /// Total number of changes.
    pub fn total(&self) -> usize {
        self.delete + self.update + self.create + self.send + self.manual + self.unknown
    }

    /// `Plan: 4 to delete, 1 to update, 2 manual, 0 unknown across 5 services` (creations and
    /// sends are listed after updates when there are any).
    pub fn line(&self) -> String {
        let mut parts = vec![
            format!("{} to delete", self.delete),
            format!("{} to update", self.update),
        ];
        if self.create > 0 {
            parts.push(format!("{} to create", self.create));
        }
        if self.send > 0 {
            parts.push(format!("{} to send", self.send));
        }
        parts.push(format!("{} manual", self.manual));
        parts.push(format!("{} unknown", self.unknown));
        let noun = if self.services == 1 {
            "service"
        } else {
            "services"
        };
        format!("Plan: {} across {} {noun}", parts.join(", "), self.services)
    }
}

/// A step the dry run could not preview (it failed, or a step it needs did): what it would
/// change is unknown, so a view listing failures is never "no changes".
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    /// Planned step key.
    pub step: String,
    /// `failed` or `blocked`.
    pub status: String,
    /// Why (subject values scrubbed in views unless personal data is shown).
    pub message: String,
}

impl Failure {
    /// The failure a step-level outcome records.
    pub fn of(outcome: &StepOutcome) -> Failure {
        Failure {
            step: outcome.step.clone(),
            status: outcome.status.as_str().to_owned(),
            message: outcome
                .message
                .clone()
                .unwrap_or_else(|| outcome.status.as_str().to_owned()),
        }
    }

    fn scrubbed(&self, scrub: &Scrubber, opts: PlanViewOptions) -> Failure {
        Failure {
            message: if opts.show_personal_data {
                self.message.clone()
            } else {
                scrub.scrub(&self.message)
            },
            ..self.clone()
        }
    }
}

/// The failures as views show them.
pub fn failure_views(plan: &Plan, failures: &[Failure], opts: PlanViewOptions) -> Vec<Failure> {
    let scrub = Scrubber::for_request(&plan.request);
    failures.iter().map(|f| f.scrubbed(&scrub, opts)).collect()
}

/// The summary line, marked incomplete when steps failed.
pub fn summary_line(changes: &[Change], failures: &[Failure]) -> String {
    let line = Summary::of(changes).line();
    match failures.len() {
        0 => line,
        1 => format!("{line}; INCOMPLETE: 1 step could not be previewed"),
        n => format!("{line}; INCOMPLETE: {n} steps could not be previewed"),
    }
}

/// One change as the views show it: masked and scrubbed per the options.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangeView {
    /// Planned step key.
    pub step: String,
    /// Instance key.
    pub instance: String,
    /// Service.
    pub service: String,
    /// What is addressed.
    pub target: String,
    /// Actions (one today; a list so that replace-like changes can be added).
    pub actions: Vec<ChangeAction>,
    /// Before (masked unless personal data is shown).
    pub before: Option<Value>,
    /// After (masked unless personal data is shown).
    pub after: Option<Value>,
    /// Rows or resources affected, if known.
    pub count: Option<u64>,
    /// Why unknown, or the manual instructions.
    pub reason: Option<String>,
    /// Mirror of `before` and `after` with `true` at personal (masked) leaves.
    pub sensitive: Sensitive,
}

/// Which leaves of `before` and `after` are personal.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sensitive {
    /// Mirror of `before`.
    pub before: Option<Value>,
    /// Mirror of `after`.
    pub after: Option<Value>,
}

impl ChangeView {
    /// Prepares a change for display.
    pub fn new(change: &Change, scrub: &Scrubber, opts: PlanViewOptions) -> ChangeView {
        let (before, after, sens_before, sens_after) = if opts.show_personal_data {
            (
                change.before.clone(),
                change.after.clone(),
                change.before.as_ref().map(sensitivity),
                change.after.as_ref().map(sensitivity),
            )
        } else {
            let b = change
                .before
                .as_ref()
                .map(|b| mask_json_against(b, change.after.as_ref(), "old value"));
            let a = change
                .after
                .as_ref()
                .map(|a| mask_json_against(a, change.before.as_ref(), "new value"));
            let (before, sb) = b.unzip();
            let (after, sa) = a.unzip();
            (before, after, sb, sa)
        };
        let text = |s: &str| {
            if opts.show_personal_data {
                s.to_owned()
            } else {
                scrub.scrub(s)
            }
        };
        ChangeView {
            step: change.step.clone(),
            instance: change.instance.clone(),
            service: change.service.clone(),
            target: text(&change.target),
            actions: vec![change.action],
            before,
            after,
            count: change.count,
            reason: change.reason.as_deref().map(text),
            sensitive: Sensitive {
                before: sens_before,
                after: sens_after,
            },
        }
    }

    /// The first action.
    pub fn action(&self) -> ChangeAction {
        self.actions
            .first()
            .copied()
            .unwrap_or(ChangeAction::Unknown)
    }

    /// Lines of the before/after body with a `-`, `+` or ` ` marker: a line diff of the
    /// pretty JSON for updates, the removed value for deletions, the new one for creations.
    pub fn body_lines(&self) -> Vec<(char, String)> {
        let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default();
        match (&self.before, &self.after) {
            (Some(b), Some(a)) => {
                let (b, a) = (pretty(b), pretty(a));
                TextDiff::from_lines(&b, &a)
                    .iter_all_changes()
                    .map(|c| {
                        let mark = match c.tag() {
                            ChangeTag::Delete => '-',
                            ChangeTag::Insert => '+',
                            ChangeTag::Equal => ' ',
                        };
                        (mark, c.to_string_lossy().trim_end_matches('\n').to_owned())
                    })
                    .collect()
            }
            (Some(b), None) => {
                let mark = if self.action() == ChangeAction::Delete {
                    '-'
                } else {
                    ' '
                };
                pretty(b).lines().map(|l| (mark, l.to_owned())).collect()
            }
            (None, Some(a)) => pretty(a).lines().map(|l| ('+', l.to_owned())).collect(),
            (None, None) => Vec::new(),
        }
    }
}

/// Prepares every change, in plan service order (services without a playbook entry last).
pub fn change_views(plan: &Plan, changes: &[Change], opts: PlanViewOptions) -> Vec<ChangeView> {
    let scrub = Scrubber::for_request(&plan.request);
    let rank = |service: &str| {
        plan.services
            .iter()
            .position(|s| s.service == service)
            .unwrap_or(usize::MAX)
    };
    let mut views: Vec<(usize, usize, ChangeView)> = changes
        .iter()
        .enumerate()
        .map(|(i, c)| (rank(&c.service), i, ChangeView::new(c, &scrub, opts)))
        .collect();
    views.sort_by_key(|(r, i, _)| (*r, *i));
    views.into_iter().map(|(_, _, v)| v).collect()
}

/// The JSON view.
#[derive(Debug, Clone, Serialize)]
pub struct PlanJson {
    /// Version of this format.
    pub format_version: u32,
    /// Request id.
    pub request_id: String,
    /// DSR kind.
    pub kind: String,
    /// Tenant.
    pub tenant: String,
    /// Whether values are shown unmasked.
    pub personal_data_shown: bool,
    /// Whether every step could be previewed. When `false`, `changes` holds only what could
    /// be, and `errors` the steps that could not: never read it as "no changes".
    pub complete: bool,
    /// The steps that could not be previewed.
    pub errors: Vec<Failure>,
    /// Counts.
    pub summary: Summary,
    /// The summary line.
    pub summary_line: String,
    /// The changes.
    pub changes: Vec<ChangeView>,
}

/// The JSON view as pretty text.
pub fn render_json(
    plan: &Plan,
    changes: &[Change],
    failures: &[Failure],
    opts: PlanViewOptions,
) -> String {
    let view = PlanJson {
        format_version: PLAN_VIEW_FORMAT_VERSION,
        request_id: plan.request.id.clone(),
        kind: plan.request.kind.to_string(),
        tenant: plan.request.tenant.clone(),
        personal_data_shown: opts.show_personal_data,
        complete: failures.is_empty(),
        errors: failure_views(plan, failures, opts),
        summary: Summary::of(changes),
        summary_line: summary_line(changes, failures),
        changes: change_views(plan, changes, opts),
    };
    let mut s = serde_json::to_string_pretty(&view).unwrap_or_default();
    s.push('\n');
    s
}

/// The symbol of an action in text views.
pub fn symbol(action: ChangeAction) -> char {
    match action {
        ChangeAction::Delete => '-',
        ChangeAction::Update => '~',
        ChangeAction::Create => '+',
        ChangeAction::Send => '>',
        ChangeAction::Manual => '!',
        ChangeAction::Unknown => '?',
    }
}

fn paint(text: &str, action_or_mark: Option<ChangeAction>, mark: char, color: bool) -> String {
    if !color {
        return text.to_owned();
    }
    match (action_or_mark, mark) {
        (Some(ChangeAction::Delete), _) | (None, '-') => text.red().to_string(),
        (Some(ChangeAction::Update), _) => text.yellow().to_string(),
        (Some(ChangeAction::Create), _) | (None, '+') => text.green().to_string(),
        (Some(ChangeAction::Send), _) => text.cyan().to_string(),
        (Some(ChangeAction::Manual), _) => text.magenta().to_string(),
        (Some(ChangeAction::Unknown), _) => text.bold().to_string(),
        _ => text.to_owned(),
    }
}

/// The terminal text view, ending with the summary line. Failures come first: an
/// incomplete dry run is never shown as "no changes".
pub fn render_text(
    plan: &Plan,
    changes: &[Change],
    failures: &[Failure],
    opts: PlanViewOptions,
) -> String {
    let r = &plan.request;
    let mut out = format!(
        "Plan for request {} ({}, tenant {})\n",
        r.id, r.kind, r.tenant
    );
    let views = change_views(plan, changes, opts);
    if !failures.is_empty() {
        let head = format!(
            "INCOMPLETE: {} step(s) could not be previewed, so what they would change is unknown:",
            failures.len()
        );
        out.push('\n');
        out.push_str(&paint(&head, Some(ChangeAction::Delete), ' ', opts.color));
        out.push('\n');
        for f in failure_views(plan, failures, opts) {
            out.push_str(&format!("  x {} ({}): {}\n", f.step, f.status, f.message));
        }
    } else if views.is_empty() {
        out.push_str("\nNo changes: nothing would be changed.\n");
    }
    let mut current: Option<&str> = None;
    for v in &views {
        if current != Some(v.service.as_str()) {
            out.push('\n');
            out.push_str(&paint(&v.service, None, ' ', false));
            out.push('\n');
            current = Some(&v.service);
        }
        let action = v.action();
        let head = format!("{} {:<7}", symbol(action), action.as_str());
        out.push_str("  ");
        out.push_str(&paint(&head, Some(action), ' ', opts.color));
        out.push(' ');
        out.push_str(&v.target);
        out.push_str(&format!("  ({})", v.instance));
        if let Some(n) = v.count {
            out.push_str(&format!(", {n} affected"));
        }
        out.push('\n');
        if let Some(reason) = &v.reason {
            let label = if action == ChangeAction::Manual {
                "instructions"
            } else {
                "reason"
            };
            out.push_str(&format!("      {label}: {reason}\n"));
        }
        for (mark, line) in v.body_lines() {
            let text = format!("    {mark} {line}");
            out.push_str(&paint(&text, None, mark, opts.color));
            out.push('\n');
        }
    }
    out.push('\n');
    out.push_str(&summary_line(changes, failures));
    out.push('\n');
    out
}
