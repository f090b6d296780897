//! How a step's call is carried out, chosen when the engine is built: [`Live`] through the
//! tenant's connectors, or [`Replay`] from recorded responses (`dsrctl test`, which calls no
//! service). A dry run puts whichever it is behind [`ReadOnly`], which lets no mutation out.
//!
//! The engine's logic (what to send, when to verify, what a failure means) is the same for
//! each: only where the answer comes from differs.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;

use crate::connectors::{
    ChangePreview, Connector, ConnectorError, Operation, Reach, RecordSink, Response,
};
use crate::journal::{PlannedStep, Verification};

/// Carries out a step's calls.
#[async_trait]
pub trait Calls: Send + Sync {
    /// A step's read (or a preview read).
    async fn read(
        &self,
        step: &PlannedStep,
        op: &Operation,
        sink: Option<&mut (dyn RecordSink + '_)>,
    ) -> Result<Response, ConnectorError>;

    /// A step's mutation.
    async fn mutate(&self, step: &PlannedStep, op: &Operation) -> Result<Response, ConnectorError>;

    /// What the mutation would change, when the connector derives it itself. Reads only.
    async fn preview(
        &self,
        step: &PlannedStep,
        op: &Operation,
    ) -> Result<Option<ChangePreview>, ConnectorError>;

    /// The connector's check, from reads only, that a mutation can succeed (see
    /// [`Connector::preflight`]). Nothing to check unless a live connector says otherwise.
    async fn preflight(&self, _step: &PlannedStep, _op: &Operation) -> Result<(), ConnectorError> {
        Ok(())
    }

    /// Whether the step's connector keeps mutations in units of work that commit together
    /// (see [`Connector::mutate_in`]). None does unless a live connector says so.
    fn holds_units(&self, _step: &PlannedStep) -> bool {
        false
    }

    /// A step's mutation inside the unit of work `unit` of its connector.
    async fn mutate_in(
        &self,
        _unit: &str,
        step: &PlannedStep,
        _op: &Operation,
    ) -> Result<Response, ConnectorError> {
        Err(ConnectorError::Refused(format!(
            "step `{}`: its connector keeps no units of work",
            step.id
        )))
    }

    /// A step's read inside the unit of work `unit` of its connector.
    async fn read_in(
        &self,
        _unit: &str,
        step: &PlannedStep,
        op: &Operation,
        sink: Option<&mut (dyn RecordSink + '_)>,
    ) -> Result<Response, ConnectorError> {
        self.read(step, op, sink).await
    }

    /// Commits the unit of work `unit` of the step's connector.
    async fn commit(&self, _unit: &str, _step: &PlannedStep) -> Result<(), ConnectorError> {
        Ok(())
    }

    /// Discards the unit of work `unit` of the step's connector.
    async fn rollback(&self, _unit: &str, _step: &PlannedStep) {}

    /// The connector's own check of a mutation's effect (`None`: it has none). Reads only.
    async fn check(
        &self,
        step: &PlannedStep,
        op: &Operation,
    ) -> Result<Option<Verification>, ConnectorError>;

    /// [`Calls::check`] of several mutations of one connector (a unit's, once it committed),
    /// in their order; a connector that can checks them in fewer calls than one each.
    async fn check_many(
        &self,
        checks: &[(&PlannedStep, &Operation)],
    ) -> Vec<Result<Option<Verification>, ConnectorError>> {
        let mut out = Vec::with_capacity(checks.len());
        for (step, op) in checks {
            out.push(self.check(step, op).await);
        }
        out
    }

    /// Whether [`Calls::check`] can check this mutation (answered without a call).
    fn checks(&self, step: &PlannedStep, op: &Operation) -> bool;

    /// The read of a step's declared `verify`, or `None` when it is not made.
    async fn verify_read(
        &self,
        step: &PlannedStep,
        read: &Operation,
    ) -> Option<Result<Response, ConnectorError>>;
}

/// Calls through the connectors of the request's tenant.
pub struct Live {
    connectors: HashMap<String, Arc<dyn Connector>>,
}

impl Live {
    /// Calls through these connectors (already bound to the request's tenant).
    pub fn new(connectors: HashMap<String, Arc<dyn Connector>>) -> Self {
        Live { connectors }
    }

    fn connector(&self, step: &PlannedStep) -> Result<&Arc<dyn Connector>, ConnectorError> {
        let name = step.connector.as_deref().unwrap_or("");
        self.connectors.get(name).ok_or_else(|| {
            ConnectorError::Config(format!(
                "connector `{name}` is not configured for this request's tenant"
            ))
        })
    }
}

#[async_trait]
impl Calls for Live {
    async fn read(
        &self,
        step: &PlannedStep,
        op: &Operation,
        sink: Option<&mut (dyn RecordSink + '_)>,
    ) -> Result<Response, ConnectorError> {
        self.connector(step)?.read(op, sink).await
    }

    async fn mutate(&self, step: &PlannedStep, op: &Operation) -> Result<Response, ConnectorError> {
        self.connector(step)?.mutate(op).await
    }

    async fn preview(
        &self,
        step: &PlannedStep,
        op: &Operation,
    ) -> Result<Option<ChangePreview>, ConnectorError> {
        self.connector(step)?.preview(op).await
    }

    async fn preflight(&self, step: &PlannedStep, op: &Operation) -> Result<(), ConnectorError> {
        self.connector(step)?.preflight(op).await
    }

    fn holds_units(&self, step: &PlannedStep) -> bool {
        self.connector(step).is_ok_and(|c| c.holds_units())
    }

    async fn mutate_in(
        &self,
        unit: &str,
        step: &PlannedStep,
        op: &Operation,
    ) -> Result<Response, ConnectorError> {
        self.connector(step)?.mutate_in(unit, op).await
    }

    async fn read_in(
        &self,
        unit: &str,
        step: &PlannedStep,
        op: &Operation,
        sink: Option<&mut (dyn RecordSink + '_)>,
    ) -> Result<Response, ConnectorError> {
        self.connector(step)?.read_in(unit, op, sink).await
    }

    async fn commit(&self, unit: &str, step: &PlannedStep) -> Result<(), ConnectorError> {
        self.connector(step)?.commit(unit).await
    }

    async fn rollback(&self, unit: &str, step: &PlannedStep) {
        if let Ok(c) = self.connector(step) {
            c.rollback(unit).await;
        }
    }

    async fn check(
        &self,
        step: &PlannedStep,
        op: &Operation,
    ) -> Result<Option<Verification>, ConnectorError> {
        match self.connector(step) {
            Ok(c) => c.verify(op).await,
            Err(_) => Ok(None),
        }
    }

    async fn check_many(
        &self,
        checks: &[(&PlannedStep, &Operation)],
    ) -> Vec<Result<Option<Verification>, ConnectorError>> {
        let one_connector = checks
            .windows(2)
            .all(|w| w[0].0.connector == w[1].0.connector);
        match checks.first().map(|(step, _)| self.connector(step)) {
            Some(Ok(c)) if one_connector => {
                let ops: Vec<&Operation> = checks.iter().map(|(_, op)| *op).collect();
                c.verify_many(&ops).await
            }
            _ => {
                let mut out = Vec::with_capacity(checks.len());
                for (step, op) in checks {
                    out.push(self.check(step, op).await);
                }
                out
            }
        }
    }

    fn checks(&self, step: &PlannedStep, op: &Operation) -> bool {
        self.connector(step).is_ok_and(|c| c.verifies(op))
    }

    async fn verify_read(
        &self,
        step: &PlannedStep,
        read: &Operation,
    ) -> Option<Result<Response, ConnectorError>> {
        Some(self.read(step, read, None).await)
    }
}

/// Answers from responses recorded by step id (a playbook's tests): no service is called.
/// A step's verification read is answered by the response recorded as `STEP.verify`, and
/// not made when none is recorded.
pub struct Replay {
    recordings: HashMap<String, Response>,
}

impl Replay {
    /// Replays these responses, by step id (`STEP.verify` for a verification read).
    pub fn new(recordings: HashMap<String, Response>) -> Self {
        Replay { recordings }
    }

    fn answer(&self, step: &PlannedStep) -> Result<Response, ConnectorError> {
        let Some(r) = self.recordings.get(&step.id) else {
            return Err(ConnectorError::Refused(format!(
                "the test records no response for step `{}`",
                step.id
            )));
        };
        let status = r.status.unwrap_or(200);
        if step.absent_on.contains(&status) {
            Ok(Response {
                absent: true,
                attempts: 1,
                ..r.clone()
            })
        } else if status >= 400 {
            Err(ConnectorError::Status {
                status,
                excerpt: r.body.to_string(),
                attempts: 1,
                reach: Reach::NotProcessed,
            })
        } else {
            Ok(Response {
                attempts: 1,
                ..r.clone()
            })
        }
    }
}

#[async_trait]
impl Calls for Replay {
    async fn read(
        &self,
        step: &PlannedStep,
        _op: &Operation,
        _sink: Option<&mut (dyn RecordSink + '_)>,
    ) -> Result<Response, ConnectorError> {
        self.answer(step)
    }

    async fn mutate(
        &self,
        step: &PlannedStep,
        _op: &Operation,
    ) -> Result<Response, ConnectorError> {
        self.answer(step)
    }

    async fn preview(
        &self,
        _step: &PlannedStep,
        _op: &Operation,
    ) -> Result<Option<ChangePreview>, ConnectorError> {
        Ok(None)
    }

    async fn check(
        &self,
        _step: &PlannedStep,
        _op: &Operation,
    ) -> Result<Option<Verification>, ConnectorError> {
        Ok(None)
    }

    fn checks(&self, _step: &PlannedStep, _op: &Operation) -> bool {
        false
    }

    async fn verify_read(
        &self,
        step: &PlannedStep,
        _read: &Operation,
    ) -> Option<Result<Response, ConnectorError>> {
        self.recordings
            .get(&format!("{}.verify", step.id))
            .map(|r| Ok(r.clone()))
    }
}

/// A dry run's guard: reads pass through, a mutation is refused before it leaves the
/// process (the engine previews mutations instead; this makes sure nothing else sends one).
pub struct ReadOnly<'a>(pub &'a dyn Calls);

#[async_trait]
impl Calls for ReadOnly<'_> {
    async fn read(
        &self,
        step: &PlannedStep,
        op: &Operation,
        sink: Option<&mut (dyn RecordSink + '_)>,
    ) -> Result<Response, ConnectorError> {
        self.0.read(step, op, sink).await
    }

    async fn mutate(
        &self,
        step: &PlannedStep,
        _op: &Operation,
    ) -> Result<Response, ConnectorError> {
        Err(ConnectorError::Refused(format!(
            "a dry run sends no mutation (step `{}`)",
            step.id
        )))
    }

    async fn preview(
        &self,
        step: &PlannedStep,
        op: &Operation,
    ) -> Result<Option<ChangePreview>, ConnectorError> {
        self.0.preview(step, op).await
    }

    async fn check(
        &self,
        step: &PlannedStep,
        op: &Operation,
    ) -> Result<Option<Verification>, ConnectorError> {
        self.0.check(step, op).await
    }

    async fn check_many(
        &self,
        checks: &[(&PlannedStep, &Operation)],
    ) -> Vec<Result<Option<Verification>, ConnectorError>> {
        self.0.check_many(checks).await
    }

    fn checks(&self, step: &PlannedStep, op: &Operation) -> bool {
        self.0.checks(step, op)
    }

    async fn verify_read(
        &self,
        step: &PlannedStep,
        read: &Operation,
    ) -> Option<Result<Response, ConnectorError>> {
        self.0.verify_read(step, read).await
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn step() -> PlannedStep {
        serde_json::from_value(json!({
            "key": "svc/drop", "service": "svc", "id": "drop", "kind": "delete",
            "connector": "api", "action": {"http": {"method": "DELETE", "path": "/x"}},
            "mutates": true, "idempotent": true, "absent_on": [404],
        }))
        .expect("a planned step")
    }

    fn replay() -> Replay {
        let answer = Response {
            status: Some(204),
            ..Response::default()
        };
        Replay::new(HashMap::from([("drop".to_owned(), answer)]))
    }

    fn op() -> Operation {
        Operation::Http(
            serde_json::from_value(json!({
                "method": "DELETE", "path": "/x", "query": [], "headers": [], "json": null,
                "json_patch": null, "if_match": null, "paginate": null, "absent_on": [404],
            }))
            .expect("a request"),
        )
    }

    #[tokio::test]
    async fn the_dry_run_guard_lets_reads_through_and_no_mutation() {
        let inner = replay();
        let guard = ReadOnly(&inner);
        let read = guard.read(&step(), &op(), None).await.expect("read");
        assert_eq!(read.status, Some(204));
        let err = guard.mutate(&step(), &op()).await.expect_err("refused");
        assert!(
            err.to_string().contains("a dry run sends no mutation"),
            "{err}"
        );
        assert_eq!(err.reach(), Reach::NotSent);
        assert!(inner.mutate(&step(), &op()).await.is_ok(), "replay answers");
    }

    #[tokio::test]
    async fn replay_answers_absent_errors_and_unrecorded_steps() {
        let mut recordings = HashMap::new();
        recordings.insert(
            "drop".to_owned(),
            Response {
                status: Some(404),
                ..Response::default()
            },
        );
        let r = Replay::new(recordings);
        assert!(r.mutate(&step(), &op()).await.expect("absent").absent);
        assert!(
            r.verify_read(&step(), &op()).await.is_none(),
            "no `drop.verify` recorded"
        );
        let mut other = step();
        other.id = "other".into();
        let err = r.read(&other, &op(), None).await.expect_err("unrecorded");
        assert!(
            err.to_string()
                .contains("records no response for step `other`")
        );
    }
}
