//! `dsrctl purge --closed-before DATE`: removes the personal data of closed requests after
//! their retention, keeping the evidence (see `workflow::purge`).

use anyhow::Result;

use super::Outcome;
use super::args::Cli;
use super::args_lifecycle::PurgeArgs;
use super::workspace::Workspace;

/// `dsrctl purge`.
pub async fn purge(cli: &Cli, args: &PurgeArgs, color: bool) -> Result<Outcome> {
    let ws = Workspace::open(&cli.project, color).await?;
    let wf = ws.workflow(None);
    if args.dry_run {
        let due = wf.purgeable(args.closed_before).await?;
        for r in &due {
            outln!(
                "would purge {} ({}, {} on {})",
                r.request.id,
                r.request.kind,
                r.state,
                r.updated_at.date_naive()
            );
        }
        outln!(
            "{} closed request(s) before {} hold personal data",
            due.len(),
            args.closed_before
        );
        return Ok(Outcome::Ok);
    }
    let purged = wf.purge(args.closed_before).await?;
    for p in &purged {
        outln!(
            "purged {}: {} run(s), {} step outcome(s), {} spool file(s) removed",
            p.request,
            p.runs,
            p.outcomes,
            p.spool_files
        );
    }
    outln!(
        "{} request(s) purged; their states, counts, digests and the audit log are kept",
        purged.len()
    );
    ws.store.close().await;
    Ok(Outcome::Ok)
}
