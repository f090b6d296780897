//! Reads of one instance (captures, counts, spooled records, polling), and the engine's
//! way to every call: through the run's [`Calls`](super::Calls), holding a slot of the
//! engine-wide limit on calls in flight.

use serde_json::Value;

use super::executor::{EngineError, RunCtx, lock};
use super::select::Matcher;
use super::{Engine, capture, spool};
use crate::connectors::{ChangePreview, ConnectorError, Operation, RecordSink, Response};
use crate::journal::{PlannedStep, RunMode, StepOutcome, StepStatus};

impl Engine {
    pub(super) async fn call_read(
        &self,
        ctx: &RunCtx<'_>,
        step: &PlannedStep,
        op: &Operation,
        sink: Option<&mut (dyn RecordSink + '_)>,
    ) -> Result<Response, ConnectorError> {
        let _slot = self.call_slot().await;
        match ctx.unit(step) {
            Some(unit) => ctx.calls.read_in(&unit.id, step, op, sink).await,
            None => ctx.calls.read(step, op, sink).await,
        }
    }

    /// A slot of the engine-wide limit on calls in flight (`--parallelism`). Only calls
    /// hold one: a step waiting for its journal write does not, so a slow disk does not
    /// leave the services idle while commits are grouped.
    pub(super) async fn call_slot(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        if let Ok(slot) = self.parallelism.try_acquire() {
            return Some(slot);
        }
        let waiting = std::time::Instant::now();
        let slot = self.parallelism.acquire().await.ok();
        self.parallelism_waits.add(waiting.elapsed());
        slot
    }

    pub(super) async fn connector_preview(
        &self,
        ctx: &RunCtx<'_>,
        step: &PlannedStep,
        op: &Operation,
    ) -> Result<Option<ChangePreview>, ConnectorError> {
        let _slot = self.call_slot().await;
        ctx.calls.preview(step, op).await
    }

    /// A read: captures, counts, spooled records; polling when the step polls. With a
    /// `select`, records are matched before anything is captured or spooled.
    pub(super) async fn read(
        &self,
        ctx: &RunCtx<'_>,
        step: &PlannedStep,
        instance: &str,
        mut o: StepOutcome,
        op: Operation,
        matcher: Option<&Matcher>,
    ) -> Result<StepOutcome, EngineError> {
        let spool_rel = match (&step.collect, ctx.mode) {
            (Some(c), RunMode::Apply) => {
                let index = instance
                    .rsplit_once('#')
                    .and_then(|(_, i)| i.parse().ok())
                    .unwrap_or(0);
                Some(spool::spool_path(&step.service, c, index))
            }
            _ => None,
        };
        let paginated = matches!(&op, Operation::Http(r) if r.paginate.is_some());
        // Captures a paginated read takes from its records as they pass to the spool.
        let stream_captures = if paginated {
            capture::record_captures(&step.capture)
        } else {
            Some(Vec::new())
        };
        let streams = matcher.is_none()
            && !super::step::body_needed(ctx, &step.key)
            && match &op {
                // A paginated read streams its pages: what later steps or polling need of
                // it must be taken from the records as they pass.
                Operation::Http(_) if paginated => step.poll.is_none() && stream_captures.is_some(),
                // One answer: its body comes back as well, for captures and polling.
                Operation::Http(_) => true,
                _ => step.capture.is_empty(),
            };
        let mut captured = None;
        let result = match &spool_rel {
            // Matched records are written after the read: the others never reach the disk.
            // A read whose whole result later steps need (a preview, a capture of the whole
            // list) is not streamed: the records are written from the body, kept for them.
            Some(rel) if streams => {
                let path = self.run_dir(&ctx.run_id).join(rel);
                let spool_err = |source| EngineError::Spool {
                    path: rel.display().to_string(),
                    source,
                };
                // Records are serialised (and sealed) and written on a thread of their
                // own, a page or two behind the connector.
                let mut sink = spool::PipedSink::new(capture::CapturingSink::new(
                    spool::NdjsonSink::create(&path, self.data_key.clone()).map_err(spool_err)?,
                    stream_captures.unwrap_or_default(),
                ))
                .map_err(spool_err)?;
                let r = self.call_read(ctx, step, &op, Some(&mut sink)).await;
                let written = sink.finish();
                match r {
                    Ok(resp) => {
                        let (file, values) = written.map_err(spool_err)?.into_parts();
                        // Only a complete collection takes the spool file's name; a
                        // failed one is removed with its sink.
                        file.finish().map_err(spool_err)?;
                        captured = paginated.then_some(values);
                        Ok(resp)
                    }
                    Err(e) => Err(e),
                }
            }
            _ => self.call_read(ctx, step, &op, None).await,
        };
        let result = result.map(|mut resp| {
            if let Some(m) = matcher
                && !resp.absent
            {
                m.apply(&mut resp.body);
            }
            resp
        });
        let now = self.clock.now();
        match result {
            Err(e) => {
                o.status = StepStatus::Failed;
                o.attempts = e.attempts();
                o.http_status = e.status();
                o.message = Some(e.to_string());
            }
            Ok(resp) => {
                o.attempts = resp.attempts;
                o.http_status = resp.status;
                // A "nothing held here" answer's body is the service's error (Google's
                // `{"error": ...}` on a 404): it captures nothing, so a `for_each` over
                // the capture runs for no one.
                if !resp.absent {
                    o.captures = capture::take_captures(&step.capture, &resp);
                    if let Some(values) = captured {
                        o.captures.extend(values);
                    }
                }
                let found = capture::count_records(&resp.body).max(resp.records);
                if matches!(op, Operation::Sql(_))
                    && !resp.absent
                    && found > 0
                    && !step.capture.is_empty()
                    && o.captures.is_empty()
                {
                    // Rows found but nothing captured: the steps that need the captures
                    // would see "nothing held" and the subject's data would be missed.
                    o.status = StepStatus::Failed;
                    o.found = found;
                    o.message = Some(format!(
                        "found {found} row(s), but none of its captures ({}) is in them; the steps that need them cannot run",
                        step.capture
                            .iter()
                            .map(|(k, v)| format!("{k}: {v}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                    o.finished_at = Some(self.clock.now());
                    return self.journal(ctx, step, o).await;
                }
                if resp.absent {
                    o.status = StepStatus::Absent;
                    o.message = Some("nothing held here".to_owned());
                } else {
                    o.found = if resp.records > 0 {
                        resp.records
                    } else {
                        capture::count_records(&resp.body)
                    };
                    if let Some(rel) = &spool_rel
                        && resp.records == 0
                        && !resp.body.is_null()
                    {
                        // The connector returned the records instead of streaming them.
                        let path = self.run_dir(&ctx.run_id).join(rel);
                        write_body(&path, &resp.body, self.data_key.clone()).map_err(|source| {
                            EngineError::Spool {
                                path: path.display().to_string(),
                                source,
                            }
                        })?;
                    }
                    if let (Some(rel), Some(files)) = (&spool_rel, &self.run_files) {
                        let path = self.run_dir(&ctx.run_id).join(rel);
                        if path.exists() {
                            files.keep(&ctx.run_id, rel, &path).await.map_err(|e| {
                                EngineError::Spool {
                                    path: rel.display().to_string(),
                                    source: std::io::Error::other(e),
                                }
                            })?;
                        }
                    }
                    o.collected = spool_rel.as_ref().map(|p| p.display().to_string());
                    if let Some(poll) = &step.poll {
                        let started = o.started_at.unwrap_or(now);
                        if let Some(reason) = poll
                            .fail_when
                            .iter()
                            .find_map(|c| capture::check(c, &resp.body).ok().map(|_| c))
                        {
                            o.status = StepStatus::Failed;
                            o.message = Some(format!(
                                "the operation reports failure (`{}`)",
                                reason.pointer
                            ));
                        } else if let Err(seen) = capture::check(&poll.until, &resp.body) {
                            if now - started > poll.timeout.chrono() {
                                o.status = StepStatus::Failed;
                                o.message =
                                    Some(format!("gave up polling after {}: {seen}", poll.timeout));
                            } else {
                                let every = poll.every.get();
                                let retry_after = resp
                                    .headers
                                    .get("retry-after")
                                    .and_then(|v| v.parse::<u64>().ok())
                                    .map(std::time::Duration::from_secs)
                                    .unwrap_or_default();
                                o.status = StepStatus::Waiting;
                                o.due_at = Some(
                                    now + chrono::Duration::from_std(every.max(retry_after))
                                        .unwrap_or_default(),
                                );
                                o.message = Some(format!("polling: {seen}"));
                            }
                        }
                    }
                    if super::step::body_needed(ctx, &step.key) {
                        lock(&ctx.bodies).insert(
                            step.key.clone(),
                            (resp.body, resp.headers.get("etag").cloned()),
                        );
                    }
                }
            }
        }
        o.finished_at = Some(self.clock.now());
        self.journal(ctx, step, o).await
    }
}

fn write_body(
    path: &std::path::Path,
    body: &Value,
    key: Option<crate::journal::DataKey>,
) -> std::io::Result<()> {
    let mut sink = spool::NdjsonSink::create(path, key)?;
    match body {
        Value::Array(items) => {
            for item in items {
                sink.write(item)?;
            }
        }
        other => sink.write(other)?,
    }
    sink.finish()
}
