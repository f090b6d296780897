//! `dsrctl tick` (everything due, once) and `dsrctl serve` (tick on a schedule until
//! SIGTERM or Ctrl-C; the current tick finishes first).

use std::str::FromStr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Result;
use chrono::Utc;

use super::args::Cli;
use super::args_lifecycle::{ServeArgs, TickArgs, WorkerArgs};
use super::workspace::Workspace;
use super::{Outcome, UsageError};
use crate::engine::Clock;
use crate::workflow::{LimitReport, Scheduler, TickReport};

/// `dsrctl tick`.
pub async fn tick(cli: &Cli, args: &TickArgs, color: bool) -> Result<Outcome> {
    let ws = Workspace::open(&cli.project, color).await?;
    let clock = args.now.map_or_else(Clock::system, Clock::fixed);
    let scheduler = scheduler(&ws, &args.worker).with_clock(clock);
    // A tick takes on at most `--batch` runs; repeat until everything due is done.
    let mut problems = false;
    let started = std::time::Instant::now();
    let mut limits: Option<LimitReport> = None;
    loop {
        // Requests left over from an earlier tick (past `--batch`) waited for a run slot
        // since the command started.
        let report = scheduler
            .tick_queued_since(limits.is_some().then_some(started))
            .await?;
        print_runs(&report);
        if !report.runs.is_empty() {
            match &mut limits {
                Some(l) => l.merge(&report.limits),
                None => limits = Some(report.limits.clone()),
            }
        }
        problems |= !report.problems.is_empty();
        if !report.moved_on() || scheduler.stop_flag().load(Ordering::SeqCst) {
            break;
        }
    }
    if let Some(l) = &limits {
        print_limits(l);
    }
    ws.store.close().await;
    Ok(if !problems {
        Outcome::Ok
    } else {
        Outcome::Problems
    })
}

/// `dsrctl serve`.
pub async fn serve(cli: &Cli, args: &ServeArgs, color: bool) -> Result<Outcome> {
    let timing = Timing::from_args(args)?;
    let ws = std::sync::Arc::new(Workspace::open(&cli.project, color).await?);
    let scheduler = scheduler(&ws, &args.worker);
    let stop = scheduler.stop_flag();
    let (tx, mut shutdown) = tokio::sync::watch::channel(false);
    // The API serves until the signal, then finishes the calls in flight.
    let api = match args.listen {
        Some(addr) => {
            let state = super::serve::ApiState::new(ws.clone(), scheduler.worker())?;
            let tokens = state.token_count();
            let drp = state.drp_configured();
            let (bound, task) = super::serve::start(state, addr, shutdown.clone()).await?;
            outln!("listening on http://{bound}");
            if tokens == 0 && !drp {
                warn_note!(
                    "no API tokens in dsrctl.yaml (`api.tokens`): only /healthz and /metrics answer"
                );
            }
            Some(task)
        }
        None => None,
    };
    tokio::spawn(async move {
        wait_for_signal().await;
        note!("stopping: the current tick finishes, then dsrctl exits");
        stop.store(true, Ordering::SeqCst);
        let _ = tx.send(true);
    });
    note!(
        "worker {} serving ({})",
        scheduler.worker(),
        timing.describe()
    );
    let mut problems = false;
    loop {
        let busy = match scheduler.tick().await {
            Ok(report) => {
                problems |= !report.problems.is_empty();
                print_report(&report);
                report.moved_on()
            }
            // A store hiccup should not end a long-running worker: try again next time.
            Err(e) => {
                warn_note!("tick failed: {e}");
                false
            }
        };
        if *shutdown.borrow() {
            break;
        }
        // A tick that found work may have left more: tick again at once.
        if busy {
            continue;
        }
        let pause = timing.until_next();
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.changed() => break,
        }
    }
    if let Some(task) = api {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn_note!("the HTTP API stopped: {e}"),
            Err(e) => warn_note!("the HTTP API stopped: {e}"),
        }
    }
    ws.store.close().await;
    Ok(if problems {
        Outcome::Problems
    } else {
        Outcome::Ok
    })
}

fn scheduler(ws: &Workspace, args: &WorkerArgs) -> Scheduler {
    let worker = args.worker.clone().unwrap_or_else(|| {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "worker".to_owned());
        format!("{host}-{}", std::process::id())
    });
    Scheduler::new(ws.project.clone(), ws.store.clone(), &ws.state_dir, worker)
        .with_lease_ttl(args.lease)
        .with_concurrency(args.concurrency)
        .with_batch(
            args.batch
                .unwrap_or_else(|| u32::try_from(args.concurrency).unwrap_or(u32::MAX)),
        )
        .with_parallelism(ws.parallelism(args.parallelism))
}

fn print_report(report: &TickReport) {
    print_runs(report);
    if !report.runs.is_empty() {
        print_limits(&report.limits);
    }
}

/// Which limit bound throughput; with `--log-format json`, as fields too.
fn print_limits(limits: &LimitReport) {
    super::progress::note(
        "INFO",
        &limits.describe(),
        serde_json::json!({ "limits": limits }),
    );
}

fn print_runs(report: &TickReport) {
    for r in &report.runs {
        outln!(
            "{} request {} run {}: {}",
            if r.started { "started" } else { "resumed" },
            r.request,
            r.run,
            r.status.as_str()
        );
    }
    for p in &report.problems {
        warn_note!("problem: {p}");
    }
}

/// When ticks happen.
enum Timing {
    Every(Duration),
    Cron(Box<cron::Schedule>, String),
}

impl Timing {
    fn from_args(args: &ServeArgs) -> Result<Timing> {
        match (&args.every, &args.schedule) {
            (Some(every), _) => Ok(Timing::Every((*every).max(Duration::from_millis(100)))),
            (None, Some(expr)) => {
                // Five fields as in crontab; the cron crate wants seconds first.
                let full = if expr.split_whitespace().count() == 5 {
                    format!("0 {expr}")
                } else {
                    expr.clone()
                };
                let schedule = cron::Schedule::from_str(&full).map_err(|e| {
                    UsageError(format!(
                        "`--schedule {expr}` is not a cron schedule ({e}); write it as in crontab, e.g. \"*/5 * * * *\" (UTC)"
                    ))
                })?;
                Ok(Timing::Cron(Box::new(schedule), expr.clone()))
            }
            (None, None) if args.listen.is_some() => Ok(Timing::Every(Duration::from_secs(5))),
            (None, None) => Err(UsageError(
                "say when to tick: --every 5m or --schedule \"*/5 * * * *\"".to_owned(),
            )
            .into()),
        }
    }

    fn until_next(&self) -> Duration {
        match self {
            Timing::Every(d) => *d,
            Timing::Cron(s, _) => s
                .upcoming(Utc)
                .next()
                .and_then(|at| (at - Utc::now()).to_std().ok())
                .unwrap_or(Duration::from_secs(60)),
        }
    }

    fn describe(&self) -> String {
        match self {
            Timing::Every(d) => format!("every {}", humantime::format_duration(*d)),
            Timing::Cron(_, expr) => format!("on schedule `{expr}` (UTC)"),
        }
    }
}

/// SIGTERM (Kubernetes, systemd) or Ctrl-C.
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
