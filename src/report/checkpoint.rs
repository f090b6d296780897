//! A signed checkpoint of the audit log's head (`dsrctl audit checkpoint`), kept away from the
//! store: `audit verify --against` then proves the log still holds that head unchanged, which
//! catches what the chain alone cannot, the newest entries removed and the head rewound, or
//! the whole history rewritten by someone holding the audit key.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::journal::{PublicKey, SigningKey};
use crate::store::AuditEntry;

/// The `format` of a checkpoint file.
pub const CHECKPOINT_FORMAT: &str = "dsrctl-audit-checkpoint/1";

/// A signed head of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// [`CHECKPOINT_FORMAT`].
    pub format: String,
    /// Sequence number of the newest entry (0: the log was empty).
    pub seq: u64,
    /// Its hash (MAC).
    pub hash: String,
    /// When the checkpoint was made.
    pub made_at: DateTime<Utc>,
}

impl Checkpoint {
    /// The checkpoint of a log whose newest entry is `head`, signed: the JSON to write.
    pub fn signed(head: (u64, &str), now: DateTime<Utc>, key: &SigningKey) -> serde_json::Value {
        let cp = Checkpoint {
            format: CHECKPOINT_FORMAT.to_owned(),
            seq: head.0,
            hash: head.1.to_owned(),
            made_at: now,
        };
        key.sign_json(&serde_json::to_value(cp).unwrap_or_default())
    }

    /// Reads a checkpoint file's JSON, checking its signature with `public`.
    pub fn open(doc: &serde_json::Value, public: &PublicKey) -> Result<Checkpoint, String> {
        public
            .verify_json(doc)
            .map_err(|e| format!("the checkpoint's signature: {e}"))?;
        let cp: Checkpoint =
            serde_json::from_value(doc.clone()).map_err(|e| format!("not a checkpoint: {e}"))?;
        if cp.format != CHECKPOINT_FORMAT {
            return Err(format!(
                "checkpoint format `{}`, expected `{CHECKPOINT_FORMAT}`",
                cp.format
            ));
        }
        Ok(cp)
    }

    /// Whether the log (oldest first, its chain already checked) still holds this head.
    pub fn held_by(&self, entries: &[AuditEntry]) -> Result<(), String> {
        if self.seq == 0 {
            return Ok(());
        }
        let newest = entries.last().map_or(0, |e| e.seq);
        match entries.iter().find(|e| e.seq == self.seq) {
            None => Err(format!(
                "the checkpoint of {} records entry {} but the log ends at entry {newest}: history was rewound (entries removed from the end)",
                self.made_at.format("%Y-%m-%d %H:%M:%S UTC"),
                self.seq
            )),
            Some(e) if e.hash != self.hash => Err(format!(
                "entry {} is not the one the checkpoint of {} signed (its hash differs): history was rewritten",
                self.seq,
                self.made_at.format("%Y-%m-%d %H:%M:%S UTC")
            )),
            Some(_) => Ok(()),
        }
    }
}
