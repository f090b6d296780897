//! `dsrctl audit verify|export|checkpoint`: the keyed, hash-chained audit log, the journal
//! checked against it, and signed checkpoints of its head.

use anyhow::{Context, Result};

use super::Outcome;
use super::args::Cli;
use super::args_lifecycle::{AuditAction, AuditArgs, AuditFormat, AuditVerifyArgs};
use super::workspace::Workspace;
use crate::journal::RunMode;
use crate::report::{Checkpoint, journal_mismatches};
use crate::store::verify_chain_to;

/// Most runs whose journals `audit verify` checks.
const RUNS_CHECKED: u32 = 100_000;

/// `dsrctl audit ...`.
pub async fn audit(cli: &Cli, args: &AuditArgs, color: bool) -> Result<Outcome> {
    let ws = Workspace::open(&cli.project, color).await?;
    let entries = ws.store.audit_entries().await?;
    match &args.action {
        AuditAction::Verify(a) => verify(&ws, &entries, a).await,
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
        AuditAction::Checkpoint(a) => {
            let key = crate::workflow::signing_key(&ws.project, &ws.state_dir)?;
            let (seq, hash) = ws.store.audit_head().await?;
            let audit_key = crate::workflow::audit_key(&ws.project, &ws.state_dir)?;
            if let Err(broken) = verify_chain_to(&entries, (seq, &hash), Some(&audit_key)) {
                anyhow::bail!(
                    "not signing a broken log: {broken}; `dsrctl audit verify` says more"
                );
            }
            let doc = Checkpoint::signed((seq, &hash), chrono::Utc::now(), &key);
            std::fs::write(&a.output, serde_json::to_string_pretty(&doc)? + "\n")
                .with_context(|| format!("writing {}", a.output.display()))?;
            outln!(
                "wrote {}: audit head entry {seq} ({hash}), signed with key {}",
                a.output.display(),
                key.public_key().to_hex()
            );
            outln!(
                "keep it away from the state store; later `dsrctl audit verify --against {}` proves the log still holds this head",
                a.output.display()
            );
            Ok(Outcome::Ok)
        }
    }
}

async fn verify(
    ws: &Workspace,
    entries: &[crate::store::AuditEntry],
    args: &AuditVerifyArgs,
) -> Result<Outcome> {
    let key = crate::workflow::audit_key(&ws.project, &ws.state_dir)?;
    let (seq, hash) = ws.store.audit_head().await?;
    let mut problems = Vec::new();
    if let Err(broken) = verify_chain_to(entries, (seq, &hash), Some(&key)) {
        let seq = entries.get(broken.index).map(|e| e.seq);
        problems.push(format!(
            "audit log BROKEN at index {}{}: {}",
            broken.index,
            seq.map(|s| format!(" (seq {s})")).unwrap_or_default(),
            broken.reason
        ));
    }
    let mut runs_checked = 0;
    for run in ws.store.runs(RUNS_CHECKED).await? {
        if run.mode != RunMode::Apply {
            continue;
        }
        runs_checked += 1;
        let outcomes = ws.store.outcomes(&run.id).await?;
        for m in journal_mismatches(&run.id, &outcomes, entries) {
            problems.push(format!(
                "journal of run {} does not match the audit log: {m}",
                run.id
            ));
        }
    }
    if let Some(path) = &args.against {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let doc: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        let public = match &args.public_key {
            Some(k) => super::cmd_evidence::public_key_arg(k)?,
            None => crate::workflow::signing_key(&ws.project, &ws.state_dir)?.public_key(),
        };
        match Checkpoint::open(&doc, &public).and_then(|cp| cp.held_by(entries).map(|()| cp)) {
            Ok(cp) => outln!(
                "checkpoint {} holds: entry {} is in the log unchanged",
                path.display(),
                cp.seq
            ),
            Err(e) => problems.push(format!("checkpoint {}: {e}", path.display())),
        }
    }
    if crate::workflow::audit_key_is_generated(&ws.project) {
        eprintln!(
            "warning: the audit key was made in .dsrctl/audit.key, beside the embedded store; set `evidence.audit_key` in dsrctl.yaml to a secret kept elsewhere"
        );
    }
    if problems.is_empty() {
        outln!(
            "audit log intact: {} entries, head {}; {runs_checked} run journal(s) match it",
            entries.len(),
            entries.last().map_or("(none)", |e| e.hash.as_str())
        );
        Ok(Outcome::Ok)
    } else {
        for p in &problems {
            outln!("{p}");
        }
        Ok(Outcome::Problems)
    }
}
