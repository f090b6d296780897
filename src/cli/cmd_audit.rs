//! `dsrctl audit verify|export`: the hash-chained audit log.

use anyhow::Result;

use super::Outcome;
use super::args::Cli;
use super::args_lifecycle::{AuditAction, AuditArgs, AuditFormat};
use super::workspace::Workspace;
use crate::store::verify_chain_to;

/// `dsrctl audit ...`.
pub async fn audit(cli: &Cli, args: &AuditArgs, color: bool) -> Result<Outcome> {
    let ws = Workspace::open(&cli.project, color).await?;
    let entries = ws.store.audit_entries().await?;
    match &args.action {
        AuditAction::Verify => {
            let (seq, hash) = ws.store.audit_head().await?;
            match verify_chain_to(&entries, (seq, &hash)) {
                Ok(()) => {
                    outln!(
                        "audit log intact: {} entries, head {}",
                        entries.len(),
                        entries.last().map_or("(none)", |e| e.hash.as_str())
                    );
                    Ok(Outcome::Ok)
                }
                Err(broken) => {
                    let seq = entries.get(broken.index).map(|e| e.seq);
                    outln!(
                        "audit log BROKEN at index {}{}: {}",
                        broken.index,
                        seq.map(|s| format!(" (seq {s})")).unwrap_or_default(),
                        broken.reason
                    );
                    Ok(Outcome::Problems)
                }
            }
        }
        AuditAction::Export(a) => {
            match a.format {
                AuditFormat::Json => outln!("{}", serde_json::to_string_pretty(&entries)?),
                AuditFormat::Jsonl => {
                    for e in &entries {
                        outln!("{}", serde_json::to_string(e)?);
                    }
                }
            }
            Ok(Outcome::Ok)
        }
    }
}
