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
    let scheduler = scheduler(&ws, &args.worker).with_clock(clock.clone());
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
    if ws.project.config.drp.is_some() {
        let notifier = super::serve::Notifier::new(scheduler.worker())?;
        let pass = notifier.run_due(ws.store.as_ref(), clock.now()).await?;
        print_callbacks(&pass);
        problems |= pass.given_up > 0;
    }
    ws.store.close().await;
    Ok(if !problems {
        Outcome::Ok
    } else {
        Outcome::Problems
    })
}

/// How often `serve` looks for DRP status callbacks to make.
const CALLBACK_PERIOD: Duration = Duration::from_secs(1);

/// How long the API's calls in flight may take to end once the worker has drained.
const API_GRACE: Duration = Duration::from_secs(5);

/// `dsrctl serve`.
pub async fn serve(cli: &Cli, args: &ServeArgs, color: bool) -> Result<Outcome> {
    let timing = Timing::from_args(args)?;
    let ws = std::sync::Arc::new(Workspace::open(&cli.project, color).await?);
    let steps = std::sync::Arc::new(super::serve::StepMetrics::default());
    let scheduler = scheduler(&ws, &args.worker).with_observer(steps.clone());
    let stop = scheduler.stop_flag();
    // `signal`: SIGTERM came, the worker drains; `api_stop`: the drain is over, the API ends.
    let (signal_tx, mut signal) = tokio::sync::watch::channel(false);
    let (api_tx, api_stop) = tokio::sync::watch::channel(false);
    // The API serves until the worker has drained, then finishes the calls in flight;
    // meanwhile it answers 503 and /healthz says `draining`.
    let api = match args.listen {
        Some(addr) => {
            let state = super::serve::ApiState::new(ws.clone(), scheduler.worker())?
                .with_steps(steps)
                .with_draining(stop.clone());
            let tokens = state.token_count();
            let drp = state.drp_configured();
            let tls = match super::serve::TlsFiles::choose(
                &ws.project,
                args.tls_cert.as_deref(),
                args.tls_key.as_deref(),
            ) {
                Some(files) => Some(files.load(&ws.project).await?),
                None => None,
            };
            let scheme = if tls.is_some() { "https" } else { "http" };
            let (bound, task) = super::serve::start(state, addr, tls, api_stop).await?;
            outln!("listening on {scheme}://{bound}");
            if tokens == 0 && !drp {
                warn_note!(
                    "no API tokens in dsrctl.yaml (`api.tokens`): only /healthz and /metrics answer"
                );
            }
            Some(task)
        }
        None => None,
    };
    // Status callbacks to DRP agents, every second, until the drain starts.
    let callbacks = match &ws.project.config.drp {
        None => None,
        Some(_) => {
            let notifier = super::serve::Notifier::new(scheduler.worker())?;
            let ws = ws.clone();
            let mut stop = signal.clone();
            Some(tokio::spawn(async move {
                loop {
                    match notifier.run_due(ws.store.as_ref(), Utc::now()).await {
                        Ok(pass) => print_callbacks(&pass),
                        Err(e) => warn_note!("DRP status callbacks: {e}"),
                    }
                    tokio::select! {
                        () = tokio::time::sleep(CALLBACK_PERIOD) => {}
                        _ = stop.wait_for(|s| *s) => break,
                    }
                }
            }))
        }
    };
    let flag = stop.clone();
    let drain = args.drain_timeout;
    tokio::spawn(async move {
        wait_for_signal().await;
        note!(
            "draining: no new leases or API requests; runs in flight stop after their current steps and are handed over (at most {})",
            humantime::format_duration(drain)
        );
        flag.store(true, Ordering::SeqCst);
        let _ = signal_tx.send(true);
    });
    note!(
        "worker {} serving ({})",
        scheduler.worker(),
        timing.describe()
    );
    let mut problems = false;
    let mut forced = false;
    // Resolves `drain` after the signal: the bound on finishing the steps in flight.
    let mut drain_over = signal.clone();
    let drain_deadline = async move {
        let _ = drain_over.wait_for(|s| *s).await;
        tokio::time::sleep(drain).await;
    };
    tokio::pin!(drain_deadline);
    loop {
        let tick = tokio::select! {
            tick = scheduler.tick() => tick,
            () = &mut drain_deadline => {
                // The steps still in flight are dropped as in a crash: their journal says
                // `running`, and their leases lapse for another worker to settle them.
                forced = true;
                break;
            }
        };
        let busy = match tick {
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
        if *signal.borrow() {
            break;
        }
        // A tick that found work may have left more: tick again at once.
        if busy {
            continue;
        }
        let pause = timing.until_next();
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = signal.changed() => break,
        }
    }
    let _ = api_tx.send(true);
    if let Some(task) = callbacks {
        // The callbacks in flight end within their timeout.
        let _ = task.await;
    }
    if let Some(task) = api {
        // A client keeping a slow call open cannot hold the process past the bound.
        match tokio::time::timeout(API_GRACE, task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => warn_note!("the HTTP API stopped: {e}"),
            Ok(Err(e)) => warn_note!("the HTTP API stopped: {e}"),
            Err(_) => warn_note!(
                "the HTTP API's calls in flight did not end within {}; they are cut off",
                humantime::format_duration(API_GRACE)
            ),
        }
    }
    ws.store.close().await;
    if forced {
        warn_note!(
            "the drain took longer than --drain-timeout {}: steps still in flight were cut off; their runs' leases lapse and another worker settles them",
            humantime::format_duration(drain)
        );
        return Ok(Outcome::Problems);
    }
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

/// The DRP status callbacks a pass made or gave up, when there were any.
fn print_callbacks(pass: &super::serve::CallbackPass) {
    if pass.sent > 0 {
        note!("DRP status callbacks: {} delivered", pass.sent);
    }
    if pass.failed > 0 {
        warn_note!(
            "DRP status callbacks: {} failed, tried again later",
            pass.failed
        );
    }
    if pass.given_up > 0 {
        warn_note!(
            "DRP status callbacks: {} given up after {} failures (see `drp.status_undelivered` in the audit log)",
            pass.given_up,
            super::serve::CALLBACK_GIVE_UP_AFTER
        );
    }
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
