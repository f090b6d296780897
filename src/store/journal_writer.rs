//! Group commit for the journal: one writer task receives outcomes over a channel and
//! commits whatever is queued in one transaction, then acknowledges each caller. Many
//! concurrent `record` calls thus share one durable commit (one fsync) instead of paying
//! one each.

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};

use super::StoreError;
use super::util::JournalRow;

/// Most rows committed in one transaction.
const MAX_BATCH: usize = 256;

type Ack = oneshot::Sender<Result<(), StoreError>>;

/// Where batches go: one transaction per call, durable when it returns `Ok`.
#[async_trait]
pub(crate) trait BatchSink: Send + 'static {
    /// Commits `rows` (in order; a later row for the same instance replaces an earlier one).
    async fn commit(&mut self, rows: &[JournalRow]) -> Result<(), StoreError>;
}

enum Msg {
    Row(JournalRow, Ack),
    Close(oneshot::Sender<()>),
}

/// Handle to the writer task; dropping it lets the task drain the queue and end.
pub(crate) struct JournalWriter {
    tx: mpsc::Sender<Msg>,
}

impl JournalWriter {
    /// Starts the writer task on the current runtime.
    pub(crate) fn start(sink: impl BatchSink) -> JournalWriter {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(run(sink, rx));
        JournalWriter { tx }
    }

    /// Queues a row and waits until it is committed.
    pub(crate) async fn write(&self, row: JournalRow) -> Result<(), StoreError> {
        let (ack, done) = oneshot::channel();
        self.tx
            .send(Msg::Row(row, ack))
            .await
            .map_err(|_| stopped())?;
        done.await.map_err(|_| stopped())?
    }

    /// Commits every row queued before it, then stops the task; later writes fail.
    pub(crate) async fn close(&self) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Msg::Close(ack)).await.is_ok() {
            let _ = done.await;
        }
    }
}

fn stopped() -> StoreError {
    StoreError::Database("the state store is closed".into())
}

async fn run(mut sink: impl BatchSink, mut rx: mpsc::Receiver<Msg>) {
    let mut batch: Vec<(JournalRow, Ack)> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        let mut close = None;
        match first {
            Msg::Row(row, ack) => batch.push((row, ack)),
            Msg::Close(ack) => close = Some(ack),
        }
        // Let callers that are ready to send do so before the batch is cut, so the batch
        // holds every concurrent record rather than whichever arrived first.
        tokio::task::yield_now().await;
        while close.is_none() && batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(Msg::Row(row, ack)) => batch.push((row, ack)),
                Ok(Msg::Close(ack)) => close = Some(ack),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            commit_batch(&mut sink, &mut batch).await;
        }
        if let Some(ack) = close {
            let _ = ack.send(());
            return;
        }
    }
}

async fn commit_batch(sink: &mut impl BatchSink, batch: &mut Vec<(JournalRow, Ack)>) {
    let (rows, acks): (Vec<JournalRow>, Vec<Ack>) = batch.drain(..).unzip();
    match sink.commit(&rows).await {
        Ok(()) => {
            for ack in acks {
                let _ = ack.send(Ok(()));
            }
        }
        Err(e) if rows.len() == 1 => {
            if let Some(ack) = acks.into_iter().next() {
                let _ = ack.send(Err(e));
            }
        }
        Err(_) => {
            // One bad row (e.g. an unknown run) must not fail its neighbours: retry each
            // alone so every caller gets its own answer.
            for (row, ack) in rows.into_iter().zip(acks) {
                let result = sink.commit(std::slice::from_ref(&row)).await;
                let _ = ack.send(result);
            }
        }
    }
}
