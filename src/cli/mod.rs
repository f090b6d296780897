//! The command layer: parses arguments, resolves the project, calls the stages, and
//! decides the exit code in one place ([`exit_code`]).

/// `print!` that does not panic when standard output is closed (`dsrctl runs | head`).
macro_rules! out {
    ($($t:tt)*) => { $crate::cli::write_out(format_args!($($t)*), false) };
}

/// `println!` that does not panic when standard output is closed.
macro_rules! outln {
    () => { $crate::cli::write_out(format_args!(""), true) };
    ($($t:tt)*) => { $crate::cli::write_out(format_args!($($t)*), true) };
}

/// `eprintln!` in the log format (`--log-format json` makes it a JSON log line).
macro_rules! note {
    ($($t:tt)*) => { $crate::cli::progress::note("INFO", &format!($($t)*), serde_json::Value::Null) };
}

/// [`note!`] at level WARN.
macro_rules! warn_note {
    ($($t:tt)*) => { $crate::cli::progress::note("WARN", &format!($($t)*), serde_json::Value::Null) };
}

mod args;
mod args_dataset;
mod args_lifecycle;
mod catalogue;
mod cmd_audit;
mod cmd_dataset;
mod cmd_evidence;
mod cmd_explain;
mod cmd_plan;
mod cmd_purge;
mod cmd_repair;
mod cmd_report;
mod cmd_request;
mod cmd_run;
mod cmd_status;
mod cmd_task;
mod cmd_test;
mod cmd_tick;
mod cmd_validate;
mod compare;
mod complete;
mod demo;
mod example;
mod git_source;
mod help;
mod init;
mod plan_offline;
mod progress;
pub mod serve;
mod table;
mod workspace;
mod yaml_out;

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

pub use args::Cli;
use args::{ColorChoice, Command};
use clap::Parser;

/// What a command ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done; nothing pending.
    Ok,
    /// Done, and there are changes pending (`--detailed-exitcode`).
    ChangesPending,
    /// A check found problems (already printed).
    Problems,
}

/// A mistake in how a command was called (a flag, an argument or its value) that only shows
/// once parsing is done, e.g. a malformed `--subject`. Exits like clap's own errors.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The exit codes, as `--help` and the README show them. [`exit_code`] decides them.
pub const EXIT_CODES: &str = help::exit_codes!();

/// The exit code for a command's result: 0 ok, 1 problems found or a failure, 2 changes
/// pending, 64 a usage error (see [`EXIT_CODES`]).
pub fn exit_code(result: &anyhow::Result<Outcome>) -> ExitCode {
    match result {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::ChangesPending) => ExitCode::from(2),
        Err(e) if e.is::<UsageError>() => ExitCode::from(64),
        Ok(Outcome::Problems) | Err(_) => ExitCode::from(1),
    }
}

/// The exit for a command line clap refused (or `--help`, `--version`, which succeed).
fn parse_failed(e: &clap::Error) -> ExitCode {
    let _ = e.print();
    if e.use_stderr() {
        exit_code(&Err(UsageError(e.kind().to_string()).into()))
    } else {
        ExitCode::SUCCESS
    }
}

/// Runs the command line.
pub fn main() -> ExitCode {
    complete::answer_if_asked();
    let mut cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return parse_failed(&e),
    };
    progress::init_logging(cli.log_format);
    // Like `git -C`: run as if started in the project directory, so request paths and
    // relative paths in the config resolve from there.
    if cli.project != std::path::Path::new(".") {
        if let Err(e) = std::env::set_current_dir(&cli.project) {
            progress::note(
                "ERROR",
                &format!(
                    "error: cannot enter the project directory {}: {e}",
                    cli.project.display()
                ),
                serde_json::Value::Null,
            );
            return ExitCode::from(1);
        }
        cli.project = std::path::PathBuf::from(".");
    }
    let mut result = dispatch(cli);
    if let Err(e) = &result {
        let message = if progress::json_logs() {
            error_chain(e)
        } else {
            format!("error: {}", error_chain(e))
        };
        progress::note("ERROR", &message, serde_json::Value::Null);
    } else if OUTPUT_LOST.load(Ordering::Relaxed) {
        // Already reported by `write_out`; the command's output is incomplete.
        result = Err(anyhow::anyhow!("standard output could not be written"));
    }
    exit_code(&result)
}

/// An error and its causes, `: `-separated, each cause left out when the text so far
/// already holds it (an error whose message interpolates its source would otherwise name
/// the cause twice).
pub(crate) fn error_chain(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if text.is_empty() {
            text = part;
        } else if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
    }
    text
}

/// Standard output has failed: nothing more is written to it.
static OUTPUT_FAILED: AtomicBool = AtomicBool::new(false);
/// It failed for another reason than its reader going away: the command fails too.
static OUTPUT_LOST: AtomicBool = AtomicBool::new(false);

/// Writes to standard output. When the reader has gone (a closed pipe), the rest of the
/// output is dropped and the command still finishes its work (a run is not cut short by
/// `| head`); any other failure to write is reported once on standard error and makes the
/// command exit 1 once its work is done.
pub(crate) fn write_out(args: std::fmt::Arguments<'_>, newline: bool) {
    use std::io::Write;
    if OUTPUT_FAILED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    let written = out.write_fmt(args).and_then(|()| {
        if newline {
            out.write_all(b"\n")
        } else {
            Ok(())
        }
    });
    if let Err(e) = written {
        OUTPUT_FAILED.store(true, Ordering::Relaxed);
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            OUTPUT_LOST.store(true, Ordering::Relaxed);
            eprintln!("error: writing to standard output: {e}");
        }
    }
}

/// Whether to colour stdout.
pub(crate) fn use_color(choice: ColorChoice) -> bool {
    use std::io::IsTerminal;
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<Outcome> {
    let color = use_color(cli.color);
    match &cli.command {
        Command::Validate(a) => cmd_validate::validate(&cli.project, a),
        Command::Import(a) => cmd_dataset::import(a),
        Command::Schema(a) => cmd_validate::schema(a),
        Command::Explain(a) => cmd_explain::explain(a),
        Command::Lsp => crate::lsp::serve().map(|()| Outcome::Ok),
        Command::Evidence(a) => cmd_evidence::evidence(&cli.project, a, color),
        Command::Completions(a) => {
            out!("{}", complete::registration(&a.shell)?);
            Ok(Outcome::Ok)
        }
        _ => runtime()?.block_on(dispatch_async(&cli, color)),
    }
}

async fn dispatch_async(cli: &Cli, color: bool) -> anyhow::Result<Outcome> {
    match &cli.command {
        Command::Plan(a) => cmd_plan::plan(cli, a, color).await,
        Command::Show(a) => cmd_plan::show(cli, a, color).await,
        Command::Apply(a) => cmd_plan::apply(cli, a, color).await,
        Command::Run(a) => cmd_run::run(cli, a, color).await,
        Command::Resume(a) => cmd_run::resume(cli, a, color).await,
        Command::Replan(a) => cmd_repair::replan(cli, a, color).await,
        Command::Abandon(a) => cmd_repair::abandon(cli, a, color).await,
        Command::Status(a) => cmd_status::status(cli, a, color).await,
        Command::Runs(a) => cmd_status::runs(cli, a, color).await,
        Command::Report(a) => cmd_report::report(cli, a, color).await,
        Command::Test(a) => cmd_plan::test(cli, a, color).await,
        Command::Init(a) => init::init(a).await,
        Command::Emulate(a) => demo::emulate(a).await,
        Command::Catalogue(a) => catalogue::run(cli, a).await,
        Command::Demo(a) => demo::demo(cli, a, color).await,
        Command::Request(a) => cmd_request::request(cli, a, color).await,
        Command::Requests(a) => cmd_request::requests(cli, a, color).await,
        Command::Task(a) => cmd_task::task(cli, a, color).await,
        Command::Tick(a) => cmd_tick::tick(cli, a, color).await,
        Command::Serve(a) => cmd_tick::serve(cli, a, color).await,
        Command::Audit(a) => cmd_audit::audit(cli, a, color).await,
        Command::Purge(a) => cmd_purge::purge(cli, a, color).await,
        Command::Dataset(a) => cmd_dataset::dataset(cli, a).await,
        Command::Coverage(a) => cmd_dataset::coverage(cli, a).await,
        Command::Validate(_)
        | Command::Schema(_)
        | Command::Explain(_)
        | Command::Lsp
        | Command::Import(_)
        | Command::Evidence(_)
        | Command::Completions(_) => {
            unreachable!("handled synchronously")
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

#[cfg(test)]
mod tests {
    use super::error_chain;

    #[derive(Debug, thiserror::Error)]
    #[error("outer: {0}")]
    struct Repeats(#[source] std::io::Error);

    #[test]
    fn a_cause_the_message_holds_is_not_repeated() {
        let e = anyhow::Error::new(Repeats(std::io::Error::other("disk gone")));
        assert_eq!(error_chain(&e), "outer: disk gone");
        let e = anyhow::Error::new(std::io::Error::other("disk gone")).context("saving the run");
        assert_eq!(error_chain(&e), "saving the run: disk gone");
    }
}
