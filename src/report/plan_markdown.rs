//! The Markdown view of a dry run for pull-request comments and job summaries: the summary
//! outside a `<details>` fold, a warning heading when data will be deleted, and the changes
//! split over several bodies so that each stays below GitHub's comment limit.

use super::plan_view::{
    ChangeView, Failure, PlanViewOptions, Summary, change_views, failure_views, summary_line,
};
use crate::journal::{Change, ChangeAction, Plan};

/// Every Markdown body is shorter than this many characters (GitHub refuses comments of
/// 65,536 and more).
pub const MARKDOWN_LIMIT: usize = 65_000;

/// Failed steps listed in the head (so that it stays well inside one comment).
const FAILURES_SHOWN: usize = 50;

/// Room kept for the part header and the closing fold.
const RESERVE: usize = 400;

/// The Markdown view: one body, or several when the changes do not fit in one, each with
/// fewer than [`MARKDOWN_LIMIT`] characters.
pub fn render_markdown(
    plan: &Plan,
    changes: &[Change],
    failures: &[Failure],
    opts: PlanViewOptions,
) -> Vec<String> {
    let summary = Summary::of(changes);
    let r = &plan.request;
    let mut head = format!(
        "### dsrctl plan for request {} ({}, tenant {})\n\n",
        escape(&r.id),
        r.kind,
        escape(&r.tenant)
    );
    if !failures.is_empty() {
        head.push_str(&format!(
            "#### ❌ Incomplete dry run: {} step(s) could not be previewed\n\n\
             What they would change is unknown; the changes below are only what could be previewed.\n\n\
             | Step | Status | Error |\n|---|---|---|\n",
            failures.len()
        ));
        let shown = failure_views(plan, failures, opts);
        for f in shown.iter().take(FAILURES_SHOWN) {
            head.push_str(&format!(
                "| {} | {} | {} |\n",
                escape(&f.step),
                f.status,
                escape(&truncate(&f.message, 300))
            ));
        }
        if shown.len() > FAILURES_SHOWN {
            head.push_str(&format!(
                "\n… and {} more; `dsrctl plan` lists them all.\n",
                shown.len() - FAILURES_SHOWN
            ));
        }
        head.push('\n');
    }
    if summary.delete > 0 {
        head.push_str(&format!(
            "#### ⚠️ Warning: this plan deletes data ({} deletion{})\n\n",
            summary.delete,
            if summary.delete == 1 { "" } else { "s" }
        ));
    }
    head.push_str(&format!("**{}**\n\n", summary_line(changes, failures)));
    if summary.total() > 0 {
        head.push_str("| Service | Delete | Update | Create | Send | Manual | Unknown |\n");
        head.push_str("|---|---:|---:|---:|---:|---:|---:|\n");
        for (service, s) in per_service(changes) {
            head.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} |\n",
                escape(&service),
                s.delete,
                s.update,
                s.create,
                s.send,
                s.manual,
                s.unknown
            ));
        }
        head.push('\n');
    }
    if opts.show_personal_data {
        head.push_str("> [!CAUTION]\n> This view shows personal data. Do not post it where others can read it.\n\n");
    }
    let views = change_views(plan, changes, opts);
    if views.is_empty() {
        return vec![head];
    }
    let budget = MARKDOWN_LIMIT - RESERVE;
    let mut chunks: Vec<String> = Vec::new();
    let mut current: Option<&str> = None;
    for v in &views {
        let mut chunk = String::new();
        if current != Some(v.service.as_str()) {
            chunk.push_str(&format!("#### {}\n\n", escape(&v.service)));
            current = Some(&v.service);
        }
        chunk.push_str(&change_markdown(
            v,
            budget.saturating_sub(head.len() + chunk.len()),
        ));
        chunks.push(chunk);
    }
    // Greedy packing; the first body also holds the head.
    let mut bodies: Vec<String> = vec![String::new()];
    let mut room = budget - head.len().min(budget);
    for chunk in chunks {
        let last = bodies.len() - 1;
        if chunk.len() > room && !bodies[last].is_empty() {
            bodies.push(String::new());
            room = budget;
        }
        room = room.saturating_sub(chunk.len());
        let last = bodies.len() - 1;
        bodies[last].push_str(&chunk);
    }
    let n = bodies.len();
    bodies
        .into_iter()
        .enumerate()
        .map(|(i, body)| {
            let (prefix, label) = if i == 0 {
                (head.clone(), format!("Changes ({})", summary.total()))
            } else {
                (
                    format!(
                        "### dsrctl plan for request {} (part {} of {n})\n\n",
                        escape(&r.id),
                        i + 1
                    ),
                    format!("Changes, continued (part {} of {n})", i + 1),
                )
            };
            let label = if i == 0 && n > 1 {
                format!("{label}, part 1 of {n}")
            } else {
                label
            };
            format!("{prefix}<details><summary>{label}</summary>\n\n{body}</details>\n")
        })
        .collect()
}

fn per_service(changes: &[Change]) -> Vec<(String, Summary)> {
    let mut out: Vec<(String, Vec<Change>)> = Vec::new();
    for c in changes {
        match out.iter_mut().find(|(s, _)| *s == c.service) {
            Some((_, list)) => list.push(c.clone()),
            None => out.push((c.service.clone(), vec![c.clone()])),
        }
    }
    out.into_iter()
        .map(|(s, list)| (s, Summary::of(&list)))
        .collect()
}

/// One change: a list item with the action, target and step, then the body in a `diff`
/// block (dropped with a note when longer than `max`).
fn change_markdown(v: &ChangeView, max: usize) -> String {
    let action = v.action();
    let mut out = format!(
        "- **{}** {} ({})",
        action.as_str(),
        code(&v.target),
        code(&v.instance)
    );
    if let Some(n) = v.count {
        out.push_str(&format!(", {n} affected"));
    }
    out.push('\n');
    if let Some(reason) = &v.reason {
        let label = if action == ChangeAction::Manual {
            "Instructions"
        } else {
            "Reason"
        };
        out.push_str(&format!("  {label}: {}\n", escape(reason)));
    }
    let lines = v.body_lines();
    if !lines.is_empty() {
        let body: String = lines
            .iter()
            .map(|(mark, l)| format!("  {mark} {l}\n"))
            .collect();
        let fence = "`".repeat(longest_backtick_run(&body).max(2) + 1);
        let block = format!("\n  {fence}diff\n{body}  {fence}\n");
        if out.len() + block.len() + 1 < max {
            out.push_str(&block);
        } else {
            out.push_str(&format!(
                "  _Before/after too large to show here ({} characters); see `dsrctl plan --format json`._\n",
                body.len()
            ));
        }
    }
    out.push('\n');
    out
}

fn longest_backtick_run(s: &str) -> usize {
    let (mut best, mut run) = (0, 0);
    for c in s.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}

/// An inline code span that holds any text.
fn code(s: &str) -> String {
    let s = s.replace(['\n', '\r'], " ");
    let fence = "`".repeat(longest_backtick_run(&s) + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{s}{pad}{fence}")
}

/// Escapes Markdown and HTML in plain text.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '|' | '[' | ']' | '#' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\n' | '\r' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}

/// At most `max` characters of `s`, with an ellipsis when cut.
fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}
