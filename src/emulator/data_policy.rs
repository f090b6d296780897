//! Graph personal-data export: `exportPersonalData` and `dataPolicyOperations`.

use axum::response::Response;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::graph::fmt;
use super::request::{ApiRequest, empty, set_header};
use super::state::{ExportOperation, GraphState};

/// `POST /users/{id}/exportPersonalData`: 202 with `Location` of the new operation.
pub(crate) fn export(
    req: &ApiRequest,
    g: &mut GraphState,
    user_id: String,
    n: u64,
    retry_after: u64,
) -> Response {
    let location = req
        .json()
        .and_then(|b| {
            b.get("storageLocation")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .filter(|s| !s.trim().is_empty());
    let Some(storage_location) = location else {
        return req.error(
            400,
            "BadRequest",
            "The request body must contain a non-empty 'storageLocation'.",
        );
    };
    let op_id = format!("export-{n:06}");
    let url = format!("{}/dataPolicyOperations/{op_id}", req.base);
    g.operations.insert(
        op_id.clone(),
        ExportOperation {
            id: op_id,
            user_id,
            storage_location,
            submitted: req.now,
        },
    );
    let mut resp = empty(202);
    set_header(&mut resp, "location", &url);
    set_header(&mut resp, "retry-after", &retry_after.to_string());
    resp
}

/// An export operation's status at `now`: notStarted when no time has passed,
/// running while less than `duration_secs` have, complete afterwards.
pub(crate) fn operation_view(
    op: &ExportOperation,
    now: DateTime<Utc>,
    duration_secs: u64,
) -> Value {
    let elapsed = (now - op.submitted).num_milliseconds().max(0) as f64 / 1000.0;
    let duration = duration_secs as f64;
    let (status, progress, completed) = if duration_secs == 0 || elapsed >= duration {
        let done = op.submitted + chrono::Duration::seconds(duration_secs as i64);
        ("complete", 100.0, Some(fmt(done)))
    } else if elapsed == 0.0 {
        ("notStarted", 0.0, None)
    } else {
        ("running", (elapsed / duration * 100.0).floor(), None)
    };
    json!({
        "id": op.id,
        "status": status,
        "progress": progress,
        "submittedDateTime": fmt(op.submitted),
        "completedDateTime": completed,
        "storageLocation": op.storage_location,
        "userId": op.user_id,
    })
}
