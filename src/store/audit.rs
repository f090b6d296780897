//! The hash-chained audit log: each entry stores `sha256(prev_hash || canonical JSON of the
//! entry)`, so changing, removing or reordering an entry breaks the chain.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::journal::sha256_hex;

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
    pub(crate) fn chained(
        prev: (u64, &str),
        at: DateTime<Utc>,
        kind: &str,
        subject: &str,
        detail: Value,
        actor: Option<&str>,
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
        entry.hash = entry.expected_hash();
        entry
    }

    /// The hash this entry should carry given its content and `prev_hash`.
    pub fn expected_hash(&self) -> String {
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
        sha256_hex(&input)
    }
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

/// Checks a whole audit log, oldest first: sequence numbers, links and hashes. Detects a
/// changed entry (its hash), a removed or reordered one (the sequence and the link to the
/// previous hash).
pub fn verify_chain(entries: &[AuditEntry]) -> Result<(), AuditBreak> {
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
        if entry.expected_hash() != entry.hash {
            return Err(broken(
                "content does not match its hash (the entry was changed)".to_owned(),
            ));
        }
        prev_hash = &entry.hash;
    }
    Ok(())
}

/// [`verify_chain`], then checks that the log ends where the store's head row says the newest
/// entry is (`head`: its sequence number and hash), which catches the newest entries removed.
pub fn verify_chain_to(entries: &[AuditEntry], head: (u64, &str)) -> Result<(), AuditBreak> {
    verify_chain(entries)?;
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

/// JSON with object keys sorted and no whitespace, so equal values hash equally whatever
/// order their keys were stored in.
pub(crate) fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
            ));
        }
        out
    }

    #[test]
    fn canonical_json_sorts_keys() {
        let v: Value = serde_json::from_str(r#"{"b":{"y":1,"x":2},"a":[1,"é"]}"#).unwrap();
        assert_eq!(canonical_json(&v), r#"{"a":[1,"é"],"b":{"x":2,"y":1}}"#);
    }

    #[test]
    fn verify_detects_change_removal_and_reorder() {
        let entries = chain(4);
        assert_eq!(verify_chain(&entries), Ok(()));

        let mut changed = entries.clone();
        changed[2].detail = json!({"b": 2});
        assert_eq!(verify_chain(&changed).unwrap_err().index, 2);

        let mut removed = entries.clone();
        removed.remove(1);
        assert_eq!(verify_chain(&removed).unwrap_err().index, 1);

        let mut reordered = entries.clone();
        reordered.swap(1, 2);
        assert_eq!(verify_chain(&reordered).unwrap_err().index, 1);
    }

    #[test]
    fn verify_to_head_detects_the_newest_entries_removed() {
        let entries = chain(3);
        let head = (3, entries[2].hash.as_str());
        assert_eq!(verify_chain_to(&entries, head), Ok(()));
        assert_eq!(verify_chain_to(&entries[..2], head).unwrap_err().index, 2);
        assert_eq!(verify_chain_to(&[], head).unwrap_err().index, 0);
        assert_eq!(verify_chain_to(&[], (0, GENESIS_HASH)), Ok(()));
        let changed_head = (3, entries[1].hash.as_str());
        assert!(verify_chain_to(&entries, changed_head).is_err());
    }
}
