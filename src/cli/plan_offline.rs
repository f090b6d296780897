//! `dsrctl plan --offline`: the compiled steps, no service contacted.

use std::fmt::Write;

use anyhow::Result;

use super::args::PlanFormat;
use super::cmd_plan::masked;
use crate::journal::{Disposition, Plan, PlannedAction};

/// Renders a compiled plan (subject values masked unless `show`), masking it in place.
pub fn render(plan: Plan, format: PlanFormat, show: bool) -> Result<String> {
    let plan = masked(plan, show);
    Ok(match format {
        PlanFormat::Json => serde_json::to_string_pretty(&plan)? + "\n",
        PlanFormat::Text => text(&plan, false),
        PlanFormat::Markdown => text(&plan, true),
    })
}

fn text(plan: &Plan, markdown: bool) -> String {
    let r = &plan.request;
    let mut out = String::new();
    let (h, code) = if markdown { ("### ", "`") } else { ("", "") };
    let _ = writeln!(
        out,
        "{h}Plan for request {} ({}, tenant {}, {}, due {})\n",
        r.id,
        r.kind,
        r.tenant,
        r.jurisdiction.as_str(),
        r.deadline(false)
    );
    for s in &plan.services {
        let line = match &s.disposition {
            Disposition::Run { kinds } => format!(
                "runs {} via connector {}",
                kinds
                    .iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(" then "),
                s.connector.as_ref().map_or("-", |c| c.name.as_str())
            ),
            Disposition::Exempt { reason } => format!("exempt: {reason}"),
            Disposition::Skipped { reason } => format!("skipped: {reason}"),
        };
        let _ = writeln!(
            out,
            "{}{code}{}{code}: {line}",
            if markdown { "- " } else { "" },
            s.service
        );
    }
    let _ = writeln!(out, "\n{h}Steps, in order\n");
    for (i, s) in plan.steps.iter().enumerate() {
        let kind = match (&s.action, s.mutates) {
            (PlannedAction::Manual(_), _) => "manual",
            (PlannedAction::Wait(_), _) => "wait",
            (PlannedAction::Email(_), _) => "sends email",
            (_, true) => "mutates",
            (_, false) => "reads",
        };
        let needs = if s.needs.is_empty() {
            String::new()
        } else {
            format!("  (after {})", s.needs.join(", "))
        };
        let each = s
            .for_each
            .as_ref()
            .map(|f| format!(" for each of {}.{}", f.step, f.capture))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{:>3}. {code}{}{code} [{kind}] {}{each}{needs}",
            i + 1,
            s.key,
            crate::report::action_summary(&s.action)
        );
    }
    let _ = writeln!(
        out,
        "\n{} step(s) across {} service(s); nothing was contacted.",
        plan.steps.len(),
        plan.services.len()
    );
    out
}
