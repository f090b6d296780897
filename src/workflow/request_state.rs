//! How a recorded request's lifecycle state follows its run.

use serde_json::json;

use crate::journal::{RequestState, RunStatus};
use crate::store::{Store, StoreError};

/// The request state that follows a run ending in `status`.
pub fn request_state_after(status: RunStatus) -> RequestState {
    match status {
        RunStatus::Completed => RequestState::Completed,
        // An abandoned run leaves its request unfulfilled: a person runs it afresh.
        RunStatus::Failed | RunStatus::Abandoned => RequestState::Failed,
        RunStatus::Running => RequestState::Running,
        RunStatus::Waiting | RunStatus::Interrupted => RequestState::Waiting,
    }
}

/// Moves a request to `state` when it is recorded and not there yet (and the lifecycle
/// allows it), with an audit entry naming the run and the worker. Runs of requests that are
/// not recorded (`dsrctl run FILE`) have nothing to update.
pub async fn sync_request_state(
    store: &dyn Store,
    id: &str,
    state: RequestState,
    run: &str,
    worker: &str,
) -> Result<(), StoreError> {
    sync_with_reason(store, id, state, None, run, worker).await
}

/// [`sync_request_state`] with the reason the state is given (a failure, an abandoned run).
pub(super) async fn sync_with_reason(
    store: &dyn Store,
    id: &str,
    state: RequestState,
    reason: Option<String>,
    run: &str,
    worker: &str,
) -> Result<(), StoreError> {
    let current = match store.request(id).await {
        Ok(r) => r.state,
        Err(StoreError::RequestNotFound(_)) => return Ok(()),
        Err(e) => return Err(e),
    };
    if (current == state && reason.is_none()) || !current.can_become(state) {
        return Ok(());
    }
    store.set_request_state(id, state, reason.clone()).await?;
    let mut detail = json!({"run": run, "worker": worker});
    if let Some(r) = reason {
        detail["reason"] = json!(r);
    }
    store
        .append_audit(&format!("request.{}", state.as_str()), id, detail, None)
        .await
        .map(|_| ())
}
