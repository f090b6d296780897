//! The [`Connector`] interface of [`SqlClient`]: reads (collected or streamed), mutations in
//! one transaction, previews and verifications.

use std::time::Instant;

use async_trait::async_trait;
use serde_json::Value;

use super::{SqlClient, action, jitter, op_key};
use crate::connectors::{
    ChangePreview, Connector, ConnectorError, Operation, Reach, RecordSink, Response,
};
use crate::journal::Verification;
use crate::model::SqlCommit;

#[async_trait]
impl Connector for SqlClient {
    async fn read(
        &self,
        op: &Operation,
        sink: Option<&mut (dyn RecordSink + '_)>,
    ) -> Result<Response, ConnectorError> {
        let a = action(op)?;
        if a.mutates() {
            return Err(ConnectorError::Refused(
                "read called with a mutating SQL operation".into(),
            ));
        }
        let st = self.read_statement(a).await?;
        let Some(sink) = sink else {
            let (rows, attempts) = self
                .retrying(|| self.pools.fetch_all(&st, self.timeout))
                .await?;
            let body = Value::Array(rows.into_iter().map(Value::Object).collect());
            return Ok(Response {
                body,
                attempts,
                ..Response::default()
            });
        };
        // Streaming: a retry is safe only while nothing reached the sink.
        let start = Instant::now();
        let mut delay = self.retry.backoff;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut written = 0;
            match self
                .pools
                .stream(&st, self.timeout, &mut *sink, &mut written)
                .await
            {
                Ok(n) => {
                    return Ok(Response {
                        body: Value::Null,
                        records: n,
                        attempts: attempt,
                        ..Response::default()
                    });
                }
                Err(e) if written == 0 && self.may_retry(&e, attempt, start, delay) => {
                    tokio::time::sleep(jitter(delay)).await;
                    delay = delay.saturating_mul(2);
                }
                Err(e) => return Err(e.into_connector(attempt)),
            }
        }
    }

    async fn mutate(&self, op: &Operation) -> Result<Response, ConnectorError> {
        let a = action(op)?;
        let m = self.mutation(a).await?;
        let (applied, attempts) = self
            .retrying(|| self.pools.mutate(&m, a.max_rows, self.timeout))
            .await?;
        if a.update.is_some()
            && let Ok(mut w) = self.written.lock()
        {
            w.insert(op_key(a), applied.written);
        }
        Ok(Response {
            body: serde_json::json!({ "affected": applied.affected }),
            affected: Some(applied.affected),
            attempts,
            ..Response::default()
        })
    }

    fn holds_units(&self) -> bool {
        self.commit == SqlCommit::Service
    }

    async fn mutate_in(&self, unit: &str, op: &Operation) -> Result<Response, ConnectorError> {
        let a = action(op)?;
        let m = self.mutation(a).await?;
        let slot = {
            let mut units = self.units.lock().unwrap_or_else(|e| e.into_inner());
            units.entry(unit.to_owned()).or_default().clone()
        };
        let mut guard = slot.lock().await;
        let u = &mut *guard;
        let tx = match &mut u.tx {
            Some(tx) => tx,
            None => {
                if u.slot.is_none() {
                    let slot = self.unit_slots.clone().acquire_owned().await;
                    u.slot =
                        Some(slot.map_err(|_| ConnectorError::Config("connector closed".into()))?);
                }
                // Nothing is sent before the transaction is open: opening it may be retried.
                let (tx, _) = self.retrying(|| self.pools.begin(self.timeout)).await?;
                u.tx.insert(tx)
            }
        };
        // Nothing in an uncommitted transaction has taken effect, whatever the failure.
        let applied = tx
            .apply(&m, a.max_rows, self.timeout)
            .await
            .map_err(|e| e.into_connector(1).with_reach(Reach::NotProcessed))?;
        if a.update.is_some() {
            u.written.push((op_key(a), applied.written));
        }
        Ok(Response {
            body: serde_json::json!({ "affected": applied.affected }),
            affected: Some(applied.affected),
            attempts: 1,
            ..Response::default()
        })
    }

    async fn read_in(
        &self,
        unit: &str,
        op: &Operation,
        sink: Option<&mut (dyn RecordSink + '_)>,
    ) -> Result<Response, ConnectorError> {
        let slot = self
            .units
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(unit)
            .cloned();
        let Some(slot) = slot else {
            return self.read(op, sink).await;
        };
        let a = action(op)?;
        if a.mutates() {
            return Err(ConnectorError::Refused(
                "read called with a mutating SQL operation".into(),
            ));
        }
        let st = self.read_statement(a).await?;
        let mut u = slot.lock().await;
        let Some(tx) = u.tx.as_mut() else {
            drop(u);
            return self.read(op, sink).await;
        };
        // A failed read leaves the transaction to be rolled back: nothing is retried in it.
        let failed =
            |e: super::failure::Failure| e.into_connector(1).with_reach(Reach::NotProcessed);
        match sink {
            None => {
                let rows = tx.fetch_all(&st, self.timeout).await.map_err(failed)?;
                Ok(Response {
                    body: Value::Array(rows.into_iter().map(Value::Object).collect()),
                    attempts: 1,
                    ..Response::default()
                })
            }
            Some(sink) => {
                let n = tx.stream(&st, self.timeout, sink).await.map_err(failed)?;
                Ok(Response {
                    body: Value::Null,
                    records: n,
                    attempts: 1,
                    ..Response::default()
                })
            }
        }
    }

    async fn commit(&self, unit: &str) -> Result<(), ConnectorError> {
        let Some(slot) = self.take_unit(unit) else {
            return Ok(());
        };
        let mut u = slot.lock().await;
        let Some(tx) = u.tx.take() else {
            return Ok(());
        };
        tx.commit(self.timeout)
            .await
            .map_err(|e| e.into_connector(1))?;
        if let Ok(mut w) = self.written.lock() {
            w.extend(u.written.drain(..));
        }
        Ok(())
    }

    async fn rollback(&self, unit: &str) {
        if let Some(slot) = self.take_unit(unit)
            && let Some(tx) = slot.lock().await.tx.take()
        {
            tx.rollback(self.timeout).await;
        }
    }

    async fn preview(&self, op: &Operation) -> Result<Option<ChangePreview>, ConnectorError> {
        self.preview_change(action(op)?).await
    }

    async fn preflight(&self, op: &Operation) -> Result<(), ConnectorError> {
        let Some(u) = &action(op)?.update else {
            return Ok(());
        };
        let types = self.column_types(&[u.table.as_str()]).await?;
        let problems = super::update::column_problems(u, &types, self.dialect);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConnectorError::Refused(problems.join("; ")))
        }
    }

    async fn verify(&self, op: &Operation) -> Result<Option<Verification>, ConnectorError> {
        self.verify_op(op, &[]).await
    }

    async fn verify_many(
        &self,
        ops: &[&Operation],
    ) -> Vec<Result<Option<Verification>, ConnectorError>> {
        let deletes: Vec<(usize, &crate::model::SqlAction)> = ops
            .iter()
            .enumerate()
            .filter_map(|(i, op)| action(op).ok().map(|a| (i, a)))
            .filter(|(_, a)| a.delete.is_some())
            .collect();
        let mut checked = if deletes.len() > 1 {
            self.verify_deletes(&deletes).await
        } else {
            Default::default()
        };
        // Tables the transaction deleted from: an updated row found gone there was deleted
        // after its update by the same commit.
        let deleted: Vec<&str> = deletes
            .iter()
            .filter_map(|(_, a)| a.delete.as_ref().map(|d| d.table.as_str()))
            .collect();
        let mut out = Vec::with_capacity(ops.len());
        for (i, op) in ops.iter().enumerate() {
            out.push(match checked.remove(&i) {
                Some(v) => Ok(Some(v)),
                None => self.verify_op(op, &deleted).await,
            });
        }
        out
    }

    fn verifies(&self, op: &Operation) -> bool {
        action(op).is_ok_and(|a| a.delete.is_some() || a.update.is_some())
    }
}
