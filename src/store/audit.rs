//! The keyed, hash-chained audit log: each entry stores `HMAC-SHA-256(key, prev_hash ||
//! canonical JSON of the entry)` under the project's audit key, which is never stored with the
//! log. Changing, removing or reordering an entry breaks the chain, and nobody without the key
//! can recompute it. Removing the newest entries and rewinding the head leaves a whole chain:
//! a signed checkpoint kept elsewhere (`dsrctl audit checkpoint`) catches that.

use std::sync::{Arc, RwLock};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::journal::{StepOutcome, canonical_json, hmac_sha256_hex, sha256_hex};

/// The key a store MACs the audit entries it appends with, set once the project's secrets are
/// read ([`super::Store::set_audit_key`]). Without one (tests of the store itself) entries
/// carry a plain SHA-256, which [`verify_chain`] under a key refuses. When the key could not be
/// read, appends fail with why, so nothing is recorded unkeyed by mistake.
#[derive(Debug, Clone, Default)]
pub struct AuditKey(Arc<RwLock<KeyState>>);

#[derive(Debug, Clone, Default)]
enum KeyState {
    #[default]
    Unset,
    Key(Arc<[u8]>),
    Unavailable(String),
}

impl AuditKey {
    /// Uses `key` for the entries appended from now on; `Err`: the key could not be read, and
    /// appends fail with this reason.
    pub fn set(&self, key: Result<&[u8], &str>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = match key {
            Ok(k) => KeyState::Key(Arc::from(k)),
            Err(why) => KeyState::Unavailable(why.to_owned()),
        };
    }

    /// The key, if one was set; an error when it could not be read.
    pub fn get(&self) -> Result<Option<Arc<[u8]>>, super::StoreError> {
        match &*self.0.read().unwrap_or_else(|e| e.into_inner()) {
            KeyState::Unset => Ok(None),
            KeyState::Key(k) => Ok(Some(k.clone())),
            KeyState::Unavailable(why) => Err(super::StoreError::AuditKey(why.clone())),
        }
    }
}

/// The `prev_hash` of the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audit log entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position in the log, from 1.
    pub seq: u64,
    /// When it was appended (millisecond precision).
    pub at: DateTime<Utc>,
    /// What happened, e.g. `request.approved`, `task.done`, `step.mutated`.
    pub kind: String,
    /// The run or request it concerns.
    pub subject: String,
    /// Who did it, when a person did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Details.
    pub detail: Value,
    /// Hash of the previous entry ([`GENESIS_HASH`] for the first).
    pub prev_hash: String,
    /// Hash of this entry.
    pub hash: String,
}

impl AuditEntry {
    /// Builds the entry following `prev` (seq, prev hash), computing its hash.
    pub fn chained(
        prev: (u64, &str),
        at: DateTime<Utc>,
        kind: &str,
        subject: &str,
        detail: Value,
        actor: Option<&str>,
        key: Option<&[u8]>,
    ) -> AuditEntry {
        let mut entry = AuditEntry {
            seq: prev.0 + 1,
            at: truncate_to_millis(at),
            kind: kind.to_owned(),
            subject: subject.to_owned(),
            actor: actor.map(str::to_owned),
            detail,
            prev_hash: prev.1.to_owned(),
            hash: String::new(),
        };
        entry.hash = entry.expected_hash(key);
        entry
    }

    /// The hash this entry should carry given its content and `prev_hash`: an HMAC under
    /// `key`, or (no key) a plain SHA-256.
    pub fn expected_hash(&self, key: Option<&[u8]>) -> String {
        let body = serde_json::json!({
            "seq": self.seq,
            "at": self.at.to_rfc3339_opts(SecondsFormat::Millis, true),
            "kind": self.kind,
            "subject": self.subject,
            "actor": self.actor,
            "detail": self.detail,
        });
        let mut input = self.prev_hash.as_bytes().to_vec();
        input.extend_from_slice(canonical_json(&body).as_bytes());
        match key {
            Some(key) => hmac_sha256_hex(key, &input),
            None => sha256_hex(&input),
        }
    }
}

/// The audit entry kind that keeps a step outcome's digest.
pub const STEP_OUTCOME: &str = "step.outcome";

/// Journals an outcome of an apply run and, when it is one the log keeps
/// ([`StepOutcome::is_audited`]), appends a [`STEP_OUTCOME`] entry with its status and digest,
/// so a journal edited afterwards (a failed step made `succeeded`) no longer matches the log.
pub async fn record_audited(
    store: &dyn super::Store,
    run: &str,
    outcome: &StepOutcome,
) -> Result<(), super::StoreError> {
    store.record(run, outcome).await?;
    if outcome.is_audited() {
        store
            .append_audit(
                STEP_OUTCOME,
                run,
                serde_json::json!({
                    "instance": outcome.instance,
                    "status": outcome.status.as_str(),
                    "digest": outcome.digest(),
                }),
                None,
            )
            .await?;
    }
    Ok(())
}

/// Where and why an audit chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit log broken at entry {index}: {reason}")]
pub struct AuditBreak {
    /// Index (from 0) of the first entry that does not fit the chain.
    pub index: usize,
    /// What does not fit.
    pub reason: String,
}

/// Checks a whole audit log, oldest first: sequence numbers, links and MACs under `key`.
/// Detects a changed entry (its MAC, even with the chain recomputed without the key), a
/// removed or reordered one (the sequence and the link to the previous hash).
pub fn verify_chain(entries: &[AuditEntry], key: Option<&[u8]>) -> Result<(), AuditBreak> {
    let mut prev_hash = GENESIS_HASH;
    for (index, entry) in entries.iter().enumerate() {
        let broken = |reason: String| AuditBreak { index, reason };
        if entry.seq != index as u64 + 1 {
            return Err(broken(format!(
                "sequence number {} where {} was expected (an entry was removed or reordered)",
                entry.seq,
                index + 1
            )));
        }
        if entry.prev_hash != prev_hash {
            return Err(broken(
                "does not link to the previous entry's hash (an entry was removed or reordered)"
                    .to_owned(),
            ));
        }
        if entry.expected_hash(key) != entry.hash {
            return Err(broken(
                "content does not match its MAC under the audit key (the entry was changed, or the chain was recomputed without the key)".to_owned(),
            ));
        }
        prev_hash = &entry.hash;
    }
    Ok(())
}

/// [`verify_chain`], then checks that the log ends where the store's head row says the newest
/// entry is (`head`: its sequence number and hash), which catches the newest entries removed.
pub fn verify_chain_to(
    entries: &[AuditEntry],
    head: (u64, &str),
    key: Option<&[u8]>,
) -> Result<(), AuditBreak> {
    verify_chain(entries, key)?;
    let (last_seq, last_hash) = entries
        .last()
        .map_or((0, GENESIS_HASH), |e| (e.seq, e.hash.as_str()));
    if (last_seq, last_hash) != head {
        return Err(AuditBreak {
            index: entries.len(),
            reason: format!(
                "the log ends at entry {last_seq}, but the store's head records entry {} with another hash (entries were removed from the end, or the head was changed)",
                head.0
            ),
        });
    }
    Ok(())
}

fn truncate_to_millis(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KEY: &[u8] = b"audit-key";

    fn chain(n: u64) -> Vec<AuditEntry> {
        let mut out: Vec<AuditEntry> = Vec::new();
        for i in 0..n {
            let prev = out
                .last()
                .map(|e| (e.seq, e.hash.clone()))
                .unwrap_or((0, GENESIS_HASH.to_owned()));
            out.push(AuditEntry::chained(
                (prev.0, &prev.1),
                Utc::now(),
                "request.approved",
                &format!("r-{i}"),
                json!({"b": 1, "a": [i, "x"]}),
                Some("dpo"),
                Some(KEY),
            ));
        }
        out
    }

    #[test]
    fn a_chain_recomputed_without_the_key_is_refused() {
        let mut entries = chain(3);
        entries[1].detail = json!({"b": 2});
        // Recompute the whole chain, as someone without the key would.
        for i in 0..entries.len() {
            entries[i].prev_hash = match i {
                0 => GENESIS_HASH.to_owned(),
                _ => entries[i - 1].hash.clone(),
            };
            entries[i].hash = entries[i].expected_hash(None);
        }
        assert_eq!(verify_chain(&entries, None), Ok(()));
        assert_eq!(verify_chain(&entries, Some(KEY)).unwrap_err().index, 0);
        assert!(verify_chain(&chain(2), Some(b"another key")).is_err());
    }

    #[test]
    fn verify_detects_change_removal_and_reorder() {
        let entries = chain(4);
        assert_eq!(verify_chain(&entries, Some(KEY)), Ok(()));

        let mut changed = entries.clone();
        changed[2].detail = json!({"b": 2});
        assert_eq!(verify_chain(&changed, Some(KEY)).unwrap_err().index, 2);

        let mut removed = entries.clone();
        removed.remove(1);
        assert_eq!(verify_chain(&removed, Some(KEY)).unwrap_err().index, 1);

        let mut reordered = entries.clone();
        reordered.swap(1, 2);
        assert_eq!(verify_chain(&reordered, Some(KEY)).unwrap_err().index, 1);
    }

    #[test]
    fn verify_to_head_detects_the_newest_entries_removed() {
        let entries = chain(3);
        let head = (3, entries[2].hash.as_str());
        assert_eq!(verify_chain_to(&entries, head, Some(KEY)), Ok(()));
        assert_eq!(
            verify_chain_to(&entries[..2], head, Some(KEY))
                .unwrap_err()
                .index,
            2
        );
        assert_eq!(verify_chain_to(&[], head, Some(KEY)).unwrap_err().index, 0);
        assert_eq!(verify_chain_to(&[], (0, GENESIS_HASH), Some(KEY)), Ok(()));
        let changed_head = (3, entries[1].hash.as_str());
        assert!(verify_chain_to(&entries, changed_head, Some(KEY)).is_err());
    }
}
