//! Data Rights Status Callbacks (section 2.03): when an agent's request names a
//! `status_callback`, every change of its Exercise Status is POSTed there, until the agent
//! has answered 2xx for the latest one. The callbacks due are claimed in the store, so any
//! number of `serve` processes share the work without sending one twice at once; a failed
//! callback is tried again with a growing pause, and given up (in the audit log) after
//! [`GIVE_UP_AFTER`] failures in a row. Each delivered status is in the audit log too.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::error::DrpError;
use super::status::ExerciseStatus;
use crate::journal::RequestRecord;
use crate::store::{DrpCallback, DrpSettled, Store, StoreError};

/// How long a claimed callback is held from other workers: longer than an attempt can take.
const HOLD: Duration = Duration::from_secs(60);

/// The longest a callback may take before it counts as failed.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Callbacks claimed per pass.
const BATCH: u32 = 50;

/// Callbacks in flight at once.
const IN_FLIGHT: usize = 8;

/// Failures in a row after which a status is no longer sent (about 19 hours of trying).
pub const GIVE_UP_AFTER: u32 = 30;

/// The pause after the first failure; it doubles with each, up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_secs(2);

/// The longest pause between two attempts.
const MAX_PAUSE: Duration = Duration::from_secs(3600);

/// The callback URL of an agent's request, checked when the request arrives: an absolute
/// `https` URL (or `http` where `drp.allow_http_callbacks` says so), without credentials.
pub fn check_url(url: &str, allow_http: bool) -> Result<String, DrpError> {
    let parsed = reqwest::Url::parse(url.trim()).map_err(|e| {
        DrpError::bad(format!(
            "`status_callback` is not an absolute URL ({e}): give the https URL status updates are sent to"
        ))
    })?;
    match parsed.scheme() {
        "https" => {}
        "http" if allow_http => {}
        other => {
            return Err(DrpError::bad(format!(
                "`status_callback` must be an https URL, not {other}: status updates carry the request's state and go over TLS only"
            )));
        }
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(DrpError::bad("`status_callback` names no host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(DrpError::bad(
            "`status_callback` must not hold credentials: the agent authenticates this business by the callback's URL",
        ));
    }
    Ok(parsed.to_string())
}

/// SHA-256 of the status as sent: tells whether the agent already has it.
fn digest(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

fn body(status: &ExerciseStatus) -> Vec<u8> {
    serde_json::to_vec(status).unwrap_or_default()
}

/// Records that the agent has `status` (the exercise's answer), so only later changes are
/// called back. A failure is only logged: at worst the agent hears this status twice.
pub async fn answered(store: &dyn Store, record: &RequestRecord, status: &ExerciseStatus) {
    let now = Utc::now();
    let settled = DrpSettled {
        sent: Some(digest(&body(status))),
        seen: record.updated_at,
        attempts: 0,
        next: (!status.is_final()).then_some(now),
    };
    if let Err(e) = store
        .settle_drp_callback(&record.request.id, &settled, now)
        .await
    {
        tracing::warn!(
            "recording the status answered for {}: {e}",
            record.request.id
        );
    }
}

/// The pause after `failures` failed attempts in a row.
fn pause(failures: u32) -> Duration {
    let doubled = FIRST_PAUSE.saturating_mul(1u32 << failures.saturating_sub(1).min(20));
    doubled.min(MAX_PAUSE)
}

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pass {
    /// Statuses delivered (answered 2xx).
    pub sent: usize,
    /// Attempts that failed and will be tried again.
    pub failed: usize,
    /// Statuses given up on.
    pub given_up: usize,
}

/// Makes the status callbacks that are due.
pub struct Notifier {
    http: reqwest::Client,
    worker: String,
}

impl Notifier {
    /// A notifier acting as `worker` (named in the audit log).
    pub fn new(worker: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            // The agent's URL is the one it signed; a redirect elsewhere is not followed.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("dsrctl/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Notifier {
            http,
            worker: worker.to_owned(),
        })
    }

    /// Claims the callbacks due at `now` and makes them; repeats while a full batch was due.
    pub async fn run_due(&self, store: &dyn Store, now: DateTime<Utc>) -> Result<Pass, StoreError> {
        use futures::StreamExt as _;
        let mut pass = Pass::default();
        loop {
            let due = store.claim_drp_callbacks(now, HOLD, BATCH).await?;
            let full = due.len() == BATCH as usize;
            let results: Vec<Result<Outcome, StoreError>> = futures::stream::iter(due)
                .map(|c| self.one(store, c, now))
                .buffer_unordered(IN_FLIGHT)
                .collect()
                .await;
            for r in results {
                match r? {
                    Outcome::Sent => pass.sent += 1,
                    Outcome::Failed => pass.failed += 1,
                    Outcome::GivenUp => pass.given_up += 1,
                    Outcome::Unchanged => {}
                }
            }
            if !full {
                return Ok(pass);
            }
        }
    }

    async fn one(
        &self,
        store: &dyn Store,
        due: DrpCallback,
        now: DateTime<Utc>,
    ) -> Result<Outcome, StoreError> {
        let id = due.request_id.as_str();
        let Some(url) = due.origin.status_callback.as_deref() else {
            return Ok(Outcome::Unchanged);
        };
        let record = store.request(id).await?;
        let status = ExerciseStatus::of(&record, Some(&due.origin));
        let body = body(&status);
        let digest = digest(&body);
        // After a final status the agent has, nothing is sent again.
        let next_after_success = (!status.is_final()).then_some(now);
        if due.sent.as_deref() == Some(digest.as_str()) {
            let settled = DrpSettled {
                sent: due.sent.clone(),
                seen: record.updated_at,
                attempts: 0,
                next: next_after_success,
            };
            store.settle_drp_callback(id, &settled, now).await?;
            return Ok(Outcome::Unchanged);
        }
        let answer = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await;
        // The body of the agent's answer is not read (section 2.03.1).
        let failure = match answer {
            Ok(r) if r.status().is_success() => None,
            Ok(r) => Some(format!("the agent answered {}", r.status())),
            Err(e) => Some(transport_error(e)),
        };
        let actor = format!("drp-callback@{}", self.worker);
        match failure {
            None => {
                let settled = DrpSettled {
                    sent: Some(digest),
                    seen: record.updated_at,
                    attempts: 0,
                    next: next_after_success,
                };
                store.settle_drp_callback(id, &settled, now).await?;
                store
                    .append_audit(
                        "drp.status_sent",
                        id,
                        json!({"agent": due.origin.agent, "status": status.status,
                               "reason": status.reason}),
                        Some(&actor),
                    )
                    .await?;
                Ok(Outcome::Sent)
            }
            Some(why) => {
                let attempts = due.attempts.saturating_add(1);
                let given_up = attempts >= GIVE_UP_AFTER;
                let settled = DrpSettled {
                    sent: due.sent.clone(),
                    // Due again when the pause is over, changed or not.
                    seen: DateTime::UNIX_EPOCH,
                    attempts,
                    next: (!given_up).then(|| {
                        now + chrono::TimeDelta::from_std(pause(attempts))
                            .unwrap_or(chrono::TimeDelta::MAX)
                    }),
                };
                store.settle_drp_callback(id, &settled, now).await?;
                if given_up {
                    tracing::warn!(
                        "status callback of {id} to agent {} given up after {attempts} failures: {why}",
                        due.origin.agent
                    );
                    store
                        .append_audit(
                            "drp.status_undelivered",
                            id,
                            json!({"agent": due.origin.agent, "status": status.status,
                                   "attempts": attempts, "error": why}),
                            Some(&actor),
                        )
                        .await?;
                    Ok(Outcome::GivenUp)
                } else {
                    tracing::info!(
                        "status callback of {id} to agent {} failed (attempt {attempts}), tried again in {}: {why}",
                        due.origin.agent,
                        humantime::format_duration(pause(attempts))
                    );
                    Ok(Outcome::Failed)
                }
            }
        }
    }
}

/// A failed call, without the URL (it may carry the agent's secret path).
fn transport_error(e: reqwest::Error) -> String {
    if e.is_timeout() {
        return format!("no answer within {}", humantime::format_duration(TIMEOUT));
    }
    crate::connectors::http::without_url(e)
}

enum Outcome {
    Sent,
    Unchanged,
    Failed,
    GivenUp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_urls_are_https_without_credentials() {
        assert_eq!(
            check_url("https://agent.example/update_status", false).unwrap(),
            "https://agent.example/update_status"
        );
        for (url, says) in [
            ("http://agent.example/s", "https"),
            ("ftp://agent.example/s", "https"),
            ("/update_status", "absolute"),
            ("https://user:pw@agent.example/s", "credentials"),
        ] {
            let e = check_url(url, false).unwrap_err();
            assert!(e.message.contains(says), "{url}: {}", e.message);
        }
        assert!(check_url("http://127.0.0.1:9/s", true).is_ok());
        assert!(check_url("file:///etc/passwd", true).is_err());
    }

    #[test]
    fn the_pause_doubles_up_to_an_hour() {
        assert_eq!(pause(1), Duration::from_secs(2));
        assert_eq!(pause(2), Duration::from_secs(4));
        assert_eq!(pause(5), Duration::from_secs(32));
        assert_eq!(pause(GIVE_UP_AFTER), MAX_PAUSE);
        let total: Duration = (1..GIVE_UP_AFTER).map(pause).sum();
        assert!(total > Duration::from_secs(18 * 3600), "{total:?}");
    }
}
