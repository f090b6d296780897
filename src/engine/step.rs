//! Executing one planned step: its context, its `for_each` fan-out, and each instance.

use std::collections::BTreeMap;

use futures::StreamExt;
use serde_json::{Map, Value, json};

use super::executor::{EngineError, RunCtx, lock};
use super::mutation::Instance;
use super::select::Matcher;
use super::{Engine, capture, operation};
use crate::journal::{PlannedAction, PlannedStep, RunMode, StepOutcome, StepStatus};
use crate::model::Preview;

impl Engine {
    /// Runs a step (all its instances) and journals its step-level outcome.
    pub(super) async fn run_step(
        &self,
        ctx: &RunCtx<'_>,
        step: &PlannedStep,
    ) -> Result<StepOutcome, EngineError> {
        let base = match self.context(ctx, step) {
            Ok(base) => base,
            Err(reason) => {
                let mut o = StepOutcome::new(&step.key, &step.key, StepStatus::Skipped);
                o.message = Some(reason);
                o.finished_at = Some(self.clock.now());
                return self.journal(ctx, step, o).await;
            }
        };
        let Some(source) = &step.for_each else {
            return self.run_instance(ctx, step, &step.key, base, None).await;
        };

        let source_status = lock(&ctx.outcomes).get(&source.step).map(|o| o.status);
        let items: Vec<Value> = match base
            .get(scope_name(step, &source.step))
            .and_then(|c| c.get(&source.capture))
        {
            Some(Value::Array(items)) => items.clone(),
            Some(Value::Null) | None => Vec::new(),
            Some(single) => vec![single.clone()],
        };
        if ctx.mode == RunMode::DryRun && source_status == Some(StepStatus::Previewed) {
            let mut o = StepOutcome::new(&step.key, &step.key, StepStatus::Previewed);
            let mut change = self
                .preview_change(ctx, step, &step.key, None, None, &base)
                .await;
            change.action = crate::journal::ChangeAction::Unknown;
            change.reason = Some(format!(
                "runs once per element of `{}`, which comes from a mutation a dry run does not send",
                source.step
            ));
            o.change = Some(change);
            return self.journal(ctx, step, o).await;
        }

        let started = self.clock.now();
        let total = items.len();
        let stop = self.stop.clone();
        let results: Vec<Result<StepOutcome, EngineError>> =
            futures::stream::iter(items.into_iter().enumerate())
                // Ctrl-C: elements not yet started stay unstarted (the run resumes them).
                .take_while(|_| std::future::ready(!stop.load(std::sync::atomic::Ordering::SeqCst)))
                .map(|(i, item)| {
                    let mut tctx = base.clone();
                    if let Value::Object(m) = &mut tctx {
                        m.insert("item".to_owned(), item.clone());
                    }
                    let instance = format!("{}#{i}", step.key);
                    async move {
                        self.run_instance(ctx, step, &instance, tctx, Some(item))
                            .await
                    }
                })
                .buffered(8)
                .collect()
                .await;
        let mut parts = Vec::with_capacity(results.len());
        for r in results {
            parts.push(r?);
        }
        if parts.len() < total {
            // Interrupted part-way: the step has not ended, so nothing is journaled for it.
            return Ok(StepOutcome::new(&step.key, &step.key, StepStatus::Pending));
        }
        let mut o = StepOutcome::new(&step.key, &step.key, aggregate(&parts));
        o.started_at = Some(started);
        o.finished_at = Some(self.clock.now());
        o.attempts = parts.iter().map(|p| p.attempts).sum();
        o.found = parts.iter().map(|p| p.found).sum();
        o.affected = parts
            .iter()
            .map(|p| p.affected)
            .sum::<Option<u64>>()
            .or(Some(0));
        o.sent = parts.iter().any(|p| p.sent);
        let mut captures: BTreeMap<String, Value> = BTreeMap::new();
        for name in step.capture.keys() {
            // One list of every instance's values: an instance that captured a list (the
            // records it found) contributes its elements, so a later `for_each` sees records.
            let mut values: Vec<Value> = Vec::new();
            for v in parts.iter().filter_map(|p| p.captures.get(name)) {
                match v {
                    Value::Array(items) => values.extend(items.iter().cloned()),
                    other => values.push(other.clone()),
                }
            }
            captures.insert(name.clone(), Value::Array(values));
        }
        o.captures = captures;
        o.message = Some(format!("{} instance(s)", parts.len()));
        if let Some(failed) = parts.iter().find(|p| p.status == StepStatus::Failed) {
            o.message = Some(format!(
                "{} of {} instance(s) failed; first: {}",
                parts
                    .iter()
                    .filter(|p| p.status == StepStatus::Failed)
                    .count(),
                parts.len(),
                failed.message.clone().unwrap_or_default()
            ));
        }
        o.due_at = parts.iter().filter_map(|p| p.due_at).min();
        self.journal(ctx, step, o).await
    }

    /// The template context: subject (with discovered identities), request, captures of the
    /// steps in scope. Fails when a discovered identity has no value.
    fn context(&self, ctx: &RunCtx<'_>, step: &PlannedStep) -> Result<Value, String> {
        let req = &ctx.plan.request;
        let mut subject: Map<String, Value> = req
            .subject
            .iter()
            .map(|(k, v)| (k.clone(), v.to_json()))
            .collect();
        let outcomes = lock(&ctx.outcomes);
        for (identity, src) in &step.identities {
            let value = outcomes
                .get(&src.step)
                .and_then(|o| o.captures.get(&src.capture))
                .filter(|v| !capture::is_nothing(v));
            match value {
                Some(v) => {
                    subject.insert(identity.clone(), v.clone());
                }
                None => {
                    return Err(format!(
                        "nothing held: the identity `{identity}` was not discovered (`{}` found nothing)",
                        src.step
                    ));
                }
            }
        }
        let mut root = Map::new();
        root.insert("subject".to_owned(), Value::Object(subject));
        root.insert(
            "request".to_owned(),
            json!({
                "id": req.id, "kind": req.kind, "tenant": req.tenant,
                "jurisdiction": req.jurisdiction,
                "corrections": req.corrections.clone().map(Value::Object).unwrap_or(Value::Null),
            }),
        );
        for (local, key) in &step.scope {
            if let Some(o) = outcomes.get(key) {
                root.insert(
                    local.clone(),
                    Value::Object(o.captures.clone().into_iter().collect()),
                );
            }
        }
        Ok(Value::Object(root))
    }

    /// Runs one instance and journals its outcome. A final outcome in the journal is kept.
    async fn run_instance(
        &self,
        ctx: &RunCtx<'_>,
        step: &PlannedStep,
        instance: &str,
        tctx: Value,
        item: Option<Value>,
    ) -> Result<StepOutcome, EngineError> {
        let prior = lock(&ctx.outcomes).get(instance).cloned();
        if let Some(p) = &prior
            && self.keeps(step, p)
        {
            return Ok(p.clone());
        }
        if let Some(obs) = &self.observer {
            obs.started(step, instance);
        }
        let now = self.clock.now();
        let mut o = StepOutcome::new(instance, &step.key, StepStatus::Succeeded);
        o.started_at = Some(prior.as_ref().and_then(|p| p.started_at).unwrap_or(now));

        match &step.action {
            PlannedAction::Wait(w) => {
                if ctx.mode == RunMode::DryRun {
                    o.status = StepStatus::Previewed;
                    o.message = Some(format!("would wait {}", w.duration));
                } else {
                    let due = prior
                        .as_ref()
                        .and_then(|p| p.due_at)
                        .unwrap_or_else(|| now + w.duration.chrono());
                    if now < due {
                        o.status = StepStatus::Waiting;
                        o.due_at = Some(due);
                        o.message = Some(
                            w.reason
                                .clone()
                                .unwrap_or_else(|| format!("waiting {}", w.duration)),
                        );
                    }
                }
            }
            PlannedAction::Manual(m) => {
                let instructions = match self.renderer.render(&m.instructions, &tctx) {
                    Ok(text) => text,
                    Err(e) => return self.fail_or_skip(ctx, step, o, e).await,
                };
                if ctx.mode == RunMode::DryRun {
                    o.status = StepStatus::Previewed;
                    o.change = Some(
                        self.preview_change(ctx, step, instance, None, item.as_ref(), &tctx)
                            .await,
                    );
                } else {
                    o.status = StepStatus::Waiting;
                    o.message = Some(instructions);
                    o.due_at = prior.as_ref().and_then(|p| p.due_at).or_else(|| {
                        m.due_in_days
                            .map(|d| now + chrono::Duration::days(i64::from(d)))
                    });
                }
            }
            // A message that was sent is never sent again: it waits for its answer, or
            // keeps what a person recorded about it.
            PlannedAction::Email(_) if prior.as_ref().is_some_and(|p| p.sent) => {
                let mut kept = prior.clone().unwrap_or(o);
                if kept.status == StepStatus::Running {
                    kept.status = StepStatus::Waiting;
                }
                return self.journal(ctx, step, kept).await;
            }
            PlannedAction::Http(_) | PlannedAction::Sql(_) | PlannedAction::Email(_) => {
                let op = match operation::render(&self.renderer, step, &tctx) {
                    Some(Ok(op)) => op,
                    Some(Err(e)) => return self.fail_or_skip(ctx, step, o, e).await,
                    None => unreachable!("connector actions render"),
                };
                if step.mutates {
                    let inst = Instance {
                        key: instance,
                        item,
                        tctx,
                        prior,
                    };
                    return self.mutation(ctx, step, &inst, o, op).await;
                }
                let matcher = match step.select.as_ref() {
                    None => None,
                    Some(s) => match Matcher::render(&self.renderer, s, &tctx) {
                        Ok(m) => Some(m),
                        Err(e) => return self.fail_or_skip(ctx, step, o, e).await,
                    },
                };
                return self
                    .read(ctx, step, instance, o, op, matcher.as_ref())
                    .await;
            }
        }
        o.finished_at = Some(self.clock.now());
        self.journal(ctx, step, o).await
    }

    /// A template that cannot render: a missing value from a step that found nothing is
    /// "nothing held" (skipped); anything else fails the step.
    async fn fail_or_skip(
        &self,
        ctx: &RunCtx<'_>,
        step: &PlannedStep,
        mut o: StepOutcome,
        e: crate::compile::TemplateError,
    ) -> Result<StepOutcome, EngineError> {
        let root = e
            .missing
            .as_deref()
            .and_then(|p| p.split('.').next())
            .unwrap_or("");
        let from_step = step.scope.contains_key(root);
        o.finished_at = Some(self.clock.now());
        if from_step {
            let source = &step.scope[root];
            let previewed = lock(&ctx.outcomes)
                .get(source)
                .is_some_and(|s| s.status == StepStatus::Previewed);
            o.status = if previewed {
                StepStatus::Previewed
            } else {
                StepStatus::Skipped
            };
            o.message = Some(if previewed {
                format!("depends on `{source}`, which a dry run does not send")
            } else {
                format!(
                    "nothing held: `{}` has no value (`{source}` found nothing)",
                    e.missing.unwrap_or_default()
                )
            });
            if previewed && step.mutates {
                let mut change = self
                    .preview_change(ctx, step, &o.instance, None, None, &Value::Null)
                    .await;
                change.action = crate::journal::ChangeAction::Unknown;
                change.reason = o.message.clone();
                o.change = Some(change);
            }
        } else {
            o.status = StepStatus::Failed;
            o.message = Some(e.to_string());
        }
        self.journal(ctx, step, o).await
    }
}

fn scope_name<'a>(step: &'a PlannedStep, key: &str) -> &'a str {
    step.scope
        .iter()
        .find(|(_, k)| *k == key)
        .map(|(l, _)| l.as_str())
        .unwrap_or("")
}

fn aggregate(parts: &[StepOutcome]) -> StepStatus {
    let any = |s: StepStatus| parts.iter().any(|p| p.status == s);
    if any(StepStatus::Failed) {
        StepStatus::Failed
    } else if any(StepStatus::Waiting) || any(StepStatus::Running) {
        StepStatus::Waiting
    } else if any(StepStatus::Previewed) {
        StepStatus::Previewed
    } else if !parts.is_empty() && parts.iter().all(|p| p.status == StepStatus::Absent) {
        StepStatus::Absent
    } else {
        StepStatus::Succeeded
    }
}

/// Whether another step previews from this step's result (so its body is kept in memory).
pub(super) fn body_needed(ctx: &RunCtx<'_>, key: &str) -> bool {
    ctx.plan.steps.iter().any(|s| {
        matches!(s.preview.as_deref(), Some(Preview::Step(id)) if s.scope.get(id).map(String::as_str) == Some(key))
    })
}
