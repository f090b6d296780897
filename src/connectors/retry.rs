//! Retries with exponential backoff and full jitter, honouring a server's `Retry-After`,
//! and the rule for which failures may be retried at all.
//!
//! Generic over the operation, so every connector shares one policy: an attempt says whether
//! it succeeded, failed for good, or may be retried (optionally not before a given delay).
//! Whether a failure may be retried depends on what may have happened at the service
//! ([`Reach`]): a call that never reached it, or that it answered with "try later", is
//! retried whatever its method; a call it may have acted on is retried only when sending it
//! twice does no more than once ([`may_resend`]).

use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

use crate::connectors::{ConnectorError, Reach};
use crate::model::RetryPolicy;

/// What one attempt came to.
#[derive(Debug)]
pub enum Attempt<T, E> {
    /// Success (or an answer that retrying cannot change).
    Done(T),
    /// A transient failure; `retry_after` is the server's requested pause, if any.
    Retry {
        /// The failure, returned if no attempt is left.
        error: E,
        /// Wait at least this long before the next attempt.
        retry_after: Option<Duration>,
    },
    /// A failure that retrying cannot fix.
    Fail(E),
}

/// The result of a retried operation and how many attempts it took, the first included.
#[derive(Debug)]
pub struct Retried<T, E> {
    /// The last attempt's result.
    pub result: Result<T, E>,
    /// Attempts made.
    pub attempts: u32,
}

/// A parsed [`RetryPolicy`].
#[derive(Debug, Clone)]
pub struct Retrier {
    attempts: u32,
    backoff: Duration,
    max_elapsed: Duration,
    on_status: Vec<u16>,
}

impl Retrier {
    /// The policy's settings (its durations were parsed when the config was loaded).
    pub fn from_policy(policy: &RetryPolicy) -> Self {
        Retrier {
            attempts: policy.attempts.max(1),
            backoff: policy.backoff.get(),
            max_elapsed: policy.max_elapsed.get(),
            on_status: policy.on_status.clone(),
        }
    }

    /// Whether an answer with this status is retried.
    pub fn retries_status(&self, status: u16) -> bool {
        self.on_status.contains(&status)
    }

    /// Most attempts, the first included.
    pub fn max_attempts(&self) -> u32 {
        self.attempts
    }

    /// The pause after `failed` attempts have failed, `elapsed` since the first began, or
    /// `None` to give up: no attempt left, or waiting would pass `max_elapsed`. The pause is
    /// drawn uniformly from zero to `backoff * 2^(failed-1)` (full jitter) and is never
    /// shorter than the server's `retry_after`.
    pub fn delay(
        &self,
        failed: u32,
        elapsed: Duration,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        if failed >= self.attempts {
            return None;
        }
        let factor = 1u32
            .checked_shl(failed.saturating_sub(1))
            .unwrap_or(u32::MAX);
        let cap = self
            .backoff
            .checked_mul(factor)
            .unwrap_or(self.max_elapsed)
            .min(self.max_elapsed);
        let cap_ms = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX);
        let jitter = Duration::from_millis(rand::random_range(0..=cap_ms));
        let wait = retry_after.map_or(jitter, |ra| ra.max(jitter));
        if elapsed.saturating_add(wait) > self.max_elapsed {
            return None;
        }
        Some(wait)
    }

    /// Runs `op` (given the attempt number, from 1) until it is done, fails for good, or the
    /// policy gives up. The last error is returned as is; the caller adds the attempt count.
    pub async fn run<T, E, F, Fut>(&self, mut op: F) -> Retried<T, E>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Attempt<T, E>>,
    {
        let start = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            match op(attempt).await {
                Attempt::Done(v) => {
                    return Retried {
                        result: Ok(v),
                        attempts: attempt,
                    };
                }
                Attempt::Fail(e) => {
                    return Retried {
                        result: Err(e),
                        attempts: attempt,
                    };
                }
                Attempt::Retry { error, retry_after } => {
                    match self.delay(attempt, start.elapsed(), retry_after) {
                        Some(wait) => {
                            tracing::debug!(attempt, wait_ms = wait.as_millis() as u64, "retrying");
                            tokio::time::sleep(wait).await;
                        }
                        None => {
                            return Retried {
                                result: Err(error),
                                attempts: attempt,
                            };
                        }
                    }
                }
            }
        }
    }
}

/// Whether a call that failed this way may be sent again: always when nothing reached the
/// service or it answered that it did not act; when it may have acted, only if the call is
/// idempotent.
pub fn may_resend(reach: Reach, idempotent: bool) -> bool {
    reach != Reach::MaybeProcessed || idempotent
}

/// What an error status says about whether the service acted. 429, and 503 with
/// `Retry-After`, are the documented "try later": not processed. Any other 4xx is a refusal.
/// Any other 5xx may come after the service acted (a gateway that gave up waiting for it,
/// a crash halfway through), so it is maybe processed.
pub fn status_reach(status: u16, retry_after: bool) -> Reach {
    match status {
        429 => Reach::NotProcessed,
        503 if retry_after => Reach::NotProcessed,
        500.. => Reach::MaybeProcessed,
        _ => Reach::NotProcessed,
    }
}

/// Parses a `Retry-After` value: delay seconds or an HTTP date (a date in the past is zero).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let now = chrono::DateTime::<chrono::Utc>::from(now);
    Some(
        (date.with_timezone(&chrono::Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

/// Sets the attempt count on an error that carries one.
pub fn with_attempts(err: ConnectorError, n: u32) -> ConnectorError {
    match err {
        ConnectorError::Status {
            status,
            excerpt,
            reach,
            ..
        } => ConnectorError::Status {
            status,
            excerpt,
            attempts: n,
            reach,
        },
        ConnectorError::Transport { message, reach, .. } => ConnectorError::Transport {
            message,
            attempts: n,
            reach,
        },
        ConnectorError::Timeout { after, reach, .. } => ConnectorError::Timeout {
            after,
            attempts: n,
            reach,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retrier(attempts: u32, backoff: &str, max_elapsed: &str) -> Retrier {
        Retrier::from_policy(&RetryPolicy {
            attempts,
            backoff: backoff.parse().expect("a duration"),
            max_elapsed: max_elapsed.parse().expect("a duration"),
            on_status: vec![503],
        })
    }

    #[test]
    fn delay_is_bounded_by_exponential_cap() {
        let r = retrier(10, "100ms", "1h");
        for _ in 0..200 {
            assert!(r.delay(1, Duration::ZERO, None).expect("retry") <= Duration::from_millis(100));
            assert!(r.delay(4, Duration::ZERO, None).expect("retry") <= Duration::from_millis(800));
        }
    }

    #[test]
    fn gives_up_after_attempts_or_past_max_elapsed() {
        let r = retrier(3, "100ms", "10s");
        assert!(r.delay(3, Duration::ZERO, None).is_none());
        assert!(
            r.delay(1, Duration::from_secs(9), Some(Duration::from_secs(2)))
                .is_none()
        );
        let d = r
            .delay(1, Duration::ZERO, Some(Duration::from_secs(2)))
            .expect("retry");
        assert!(d >= Duration::from_secs(2));
    }

    #[test]
    fn retry_after_in_seconds_and_http_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777); // 1994-11-06 08:49:37Z
        assert_eq!(parse_retry_after(" 2 ", now), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn only_idempotent_calls_are_resent_after_the_service_may_have_acted() {
        assert!(may_resend(Reach::NotSent, false));
        assert!(may_resend(Reach::NotProcessed, false));
        assert!(!may_resend(Reach::MaybeProcessed, false));
        assert!(may_resend(Reach::MaybeProcessed, true));
    }

    #[test]
    fn try_later_answers_are_not_processed_other_5xx_may_be() {
        assert_eq!(status_reach(429, false), Reach::NotProcessed);
        assert_eq!(status_reach(503, true), Reach::NotProcessed);
        assert_eq!(status_reach(503, false), Reach::MaybeProcessed);
        assert_eq!(status_reach(502, true), Reach::MaybeProcessed);
        assert_eq!(status_reach(504, false), Reach::MaybeProcessed);
        assert_eq!(status_reach(500, false), Reach::MaybeProcessed);
        assert_eq!(status_reach(409, false), Reach::NotProcessed);
        assert_eq!(status_reach(400, false), Reach::NotProcessed);
    }

    #[tokio::test]
    async fn run_counts_attempts_until_done() {
        let r = retrier(5, "1ms", "10s");
        let out: Retried<u32, &str> = r
            .run(|n| async move {
                if n < 3 {
                    Attempt::Retry {
                        error: "busy",
                        retry_after: None,
                    }
                } else {
                    Attempt::Done(n)
                }
            })
            .await;
        assert_eq!(out.result, Ok(3));
        assert_eq!(out.attempts, 3);
        let out: Retried<u32, &str> = r
            .run(|_| async {
                Attempt::Retry {
                    error: "busy",
                    retry_after: None,
                }
            })
            .await;
        assert_eq!(out.result, Err("busy"));
        assert_eq!(out.attempts, 5);
    }
}
