//! Shell completion that knows the project: the shell asks `dsrctl` itself (clap's dynamic
//! completion), and the arguments that name a run, a request or a manual step are completed
//! from the project's state store. `dsrctl completions SHELL` prints the registration.

use std::ffi::OsStr;
use std::path::PathBuf;

use clap_complete::engine::{ArgValueCompleter, CompletionCandidate};

use super::workspace::Workspace;
use crate::journal::StepStatus;

/// The environment variable that makes `dsrctl` answer a completion request.
pub const VAR: &str = "COMPLETE";

/// Answers a completion request when the shell made one (then exits), else returns.
pub fn answer_if_asked() {
    clap_complete::CompleteEnv::with_factory(|| {
        <super::args::Cli as clap::CommandFactory>::command()
    })
    .var(VAR)
    .complete();
}

/// Prints the registration script for `shell`, the same as `COMPLETE=SHELL dsrctl`.
pub fn registration(shell: &str) -> anyhow::Result<String> {
    let shells = clap_complete::env::Shells::builtins();
    let Some(completer) = shells.completer(shell) else {
        anyhow::bail!(
            "no completion for {shell}; known: {}",
            shells.names().collect::<Vec<_>>().join(", ")
        );
    };
    let mut script = Vec::new();
    completer.write_registration(VAR, "dsrctl", "dsrctl", "dsrctl", &mut script)?;
    Ok(String::from_utf8_lossy(&script).into_owned())
}

/// Completes run ids (newest first), with the request and status as help.
pub fn runs() -> ArgValueCompleter {
    ArgValueCompleter::new(|current: &OsStr| {
        from_state(current, |ws| async move {
            let runs = ws.store.runs(200).await?;
            Ok(runs
                .into_iter()
                .map(|r| {
                    let help = format!("{} {}", r.request_id, r.status.as_str());
                    (r.id, help)
                })
                .collect())
        })
    })
}

/// Completes request ids, with the kind and state as help.
pub fn requests() -> ArgValueCompleter {
    ArgValueCompleter::new(|current: &OsStr| {
        from_state(current, |ws| async move {
            let requests = ws.store.requests().await?;
            Ok(requests
                .into_iter()
                .map(|r| {
                    let help = format!("{} {}", r.request.kind.as_str(), r.state.as_str());
                    (r.request.id, help)
                })
                .collect())
        })
    })
}

/// Completes the steps a person may settle: manual steps waiting, in unfinished runs.
pub fn open_steps() -> ArgValueCompleter {
    ArgValueCompleter::new(|current: &OsStr| {
        from_state(current, |ws| async move {
            let mut steps = Vec::new();
            for run in ws.store.runs(200).await? {
                if run.status.has_ended() {
                    continue;
                }
                for o in ws.store.outcomes(&run.id).await? {
                    let manual = run
                        .plan
                        .steps
                        .iter()
                        .any(|s| s.key == o.step && s.action.waits_for_person());
                    if (manual && o.status == StepStatus::Waiting) || o.awaits_person() {
                        steps.push((o.instance, format!("run {}", short(&run.id))));
                    }
                }
            }
            Ok(steps)
        })
    })
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// Candidates read from the project's state (the `-C` directory is not known yet while the
/// shell completes, so `DSRCTL_PROJECT` or the current directory); none when there is no
/// project or no state.
fn from_state<F, Fut>(current: &OsStr, read: F) -> Vec<CompletionCandidate>
where
    F: FnOnce(Workspace) -> Fut,
    Fut: Future<Output = anyhow::Result<Vec<(String, String)>>>,
{
    let current = current.to_string_lossy();
    let dir = std::env::var_os("DSRCTL_PROJECT").map_or_else(|| PathBuf::from("."), PathBuf::from);
    if !dir.join("dsrctl.yaml").is_file() {
        return Vec::new();
    }
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return Vec::new();
    };
    let found = rt.block_on(async {
        let ws = Workspace::open_quiet(&dir).await?;
        let store = ws.store.clone();
        let found = read(ws).await;
        store.close().await;
        found
    });
    let mut seen = std::collections::BTreeSet::new();
    found
        .unwrap_or_default()
        .into_iter()
        .filter(|(value, _)| value.starts_with(current.as_ref()) && seen.insert(value.clone()))
        .map(|(value, help)| CompletionCandidate::new(value).help(Some(help.into())))
        .collect()
}
