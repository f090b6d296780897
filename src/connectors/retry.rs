//! Retries with backoff.
