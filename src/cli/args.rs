//! The command line, as clap types. Parsing does no I/O.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use super::args_lifecycle::ListFormat;

/// Fulfil GDPR/CCPA data subject requests from playbooks kept in git.
#[derive(Debug, Parser)]
#[command(
    name = "dsrctl",
    version,
    about,
    propagate_version = true,
    after_help = super::help::exit_codes!()
)]
pub struct Cli {
    /// Run as if started in this directory (the project, holding dsrctl.yaml).
    #[arg(
        short = 'C',
        long = "project",
        global = true,
        default_value = ".",
        env = "DSRCTL_PROJECT"
    )]
    pub project: PathBuf,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Show subject values (emails, ids, data) in output; masked otherwise.
    #[arg(long, global = true)]
    pub show_personal_data: bool,
    /// Colour: auto, always, never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Colour choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Colour on a terminal.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check playbooks, requests and the config (schema and meaning), offline.
    #[command(after_help = super::help::VALIDATE)]
    Validate(ValidateArgs),
    /// Print (or write) a JSON Schema.
    #[command(after_help = super::help::SCHEMA)]
    Schema(SchemaArgs),
    /// Explain a diagnostic code (without one: list every code).
    #[command(after_help = super::help::EXPLAIN)]
    Explain(ExplainArgs),
    /// Dry run: compile a request and preview what it would change (reads only).
    #[command(after_help = super::help::PLAN)]
    Plan(PlanArgs),
    /// Show a saved plan (`plan -o FILE`) as `plan` showed it; nothing contacted.
    #[command(after_help = super::help::SHOW)]
    Show(ShowArgs),
    /// Apply a saved plan: exactly the previewed changes, or refuse if stale.
    #[command(after_help = super::help::APPLY)]
    Apply(ApplyArgs),
    /// Plan and apply a request. One request has one live run: an unfinished run is resumed,
    /// a completed request is shown, not run again (unless `--again --reason`).
    #[command(after_help = super::help::RUN)]
    Run(RunArgs),
    /// Resume an unfinished run (`--replan`: with today's playbooks, like `dsrctl replan`).
    #[command(after_help = super::help::RESUME)]
    Resume(ResumeArgs),
    /// Repair a run: recompile its request with today's playbooks, show what changes for the
    /// steps left to do, and continue after approval. Finished steps stay finished.
    #[command(after_help = super::help::REPLAN)]
    Replan(ReplanArgs),
    /// Give a run up for good, with the reason; the request can then be run afresh.
    #[command(after_help = super::help::ABANDON)]
    Abandon(AbandonArgs),
    /// Show a run and its steps (the newest run without an id).
    #[command(after_help = super::help::STATUS)]
    Status(StatusArgs),
    /// List runs.
    #[command(after_help = super::help::RUNS)]
    Runs(RunsArgs),
    /// Render a run's evidence report, response letter or summary; build its export package.
    #[command(after_help = super::help::REPORT)]
    Report(ReportArgs),
    /// Run the playbooks' offline tests.
    #[command(after_help = super::help::TEST)]
    Test(TestArgs),
    /// Write a starter project.
    #[command(after_help = super::help::INIT)]
    Init(InitArgs),
    /// The catalogue of playbooks for SaaS services: list them, add one to the project.
    #[command(after_help = super::help::CATALOGUE)]
    Catalogue(CatalogueArgs),
    /// Serve the Azure API emulator (Graph, Digital Twins, DPS, IoT Central) for demos and tests.
    #[command(after_help = super::help::EMULATE)]
    Emulate(EmulateArgs),
    /// Run the built-in demo: emulator + example project, a deletion end to end.
    #[command(after_help = super::help::DEMO)]
    Demo(DemoArgs),
    /// A language server on stdin/stdout for editors: validate's findings as you type,
    /// hover docs, completion, go-to-definition.
    #[command(after_help = super::help::LSP)]
    Lsp,
    /// Print shell completions.
    #[command(after_help = super::help::COMPLETIONS)]
    Completions(CompletionsArgs),
    /// Record and move requests through their lifecycle (new, approve, decline, extend).
    #[command(after_help = super::help::REQUEST)]
    Request(super::args_lifecycle::RequestArgs),
    /// List requests with state, deadline and days left, overdue first.
    #[command(after_help = super::help::REQUESTS)]
    Requests(super::args_lifecycle::RequestsArgs),
    /// Manual tasks: list them, record them done or failed.
    #[command(after_help = super::help::TASK)]
    Task(super::args_lifecycle::TaskArgs),
    /// Do everything due once and exit: start approved requests, resume due runs.
    #[command(after_help = super::help::TICK)]
    Tick(super::args_lifecycle::TickArgs),
    /// Tick on a schedule until SIGTERM or Ctrl-C (the current tick finishes first).
    #[command(after_help = super::help::SERVE)]
    Serve(super::args_lifecycle::ServeArgs),
    /// Verify, export or checkpoint the keyed, hash-chained audit log.
    #[command(after_help = super::help::AUDIT)]
    Audit(super::args_lifecycle::AuditArgs),
    /// Remove the personal data of requests closed before a date (identities, collected
    /// records, previews), keeping the evidence: states, counts, digests and the audit log.
    #[command(after_help = super::help::PURGE)]
    Purge(super::args_lifecycle::PurgeArgs),
    /// Datasets: draft one from a SQL connector's live schema (`dataset introspect`).
    #[command(after_help = super::help::DATASET_INTROSPECT)]
    Dataset(super::args_dataset::DatasetArgs),
    /// Compare each SQL connector's live schema with its dataset: tables and columns not
    /// described, personal-looking columns without a category, described ones now gone.
    #[command(after_help = super::help::COVERAGE)]
    Coverage(super::args_dataset::CoverageArgs),
    /// Convert a dataset from another tool's format into a dsrctl dataset playbook.
    #[command(after_help = super::help::IMPORT_FIDES)]
    Import(super::args_dataset::ImportArgs),
    /// Check signed reports, checkpoints and export packages offline; print the public key.
    #[command(after_help = super::help::EVIDENCE)]
    Evidence(super::args_lifecycle::EvidenceArgs),
}

/// Output formats of validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiagFormat {
    /// Human text with source lines.
    Human,
    /// JSON.
    Json,
    /// SARIF 2.1.0 for code scanning.
    Sarif,
    /// GitHub workflow annotations.
    Github,
}

/// `dsrctl validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Files or directories to check (default: the whole project).
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = DiagFormat::Human)]
    pub format: DiagFormat,
    /// Check every file afresh: neither read nor write the validation cache
    /// (`.dsrctl/validate.cache`, which lets unchanged playbooks skip parsing).
    #[arg(long)]
    pub no_cache: bool,
}

/// `dsrctl explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The code, as printed in brackets: `error[unknown-key]` is `unknown-key`.
    pub code: Option<String>,
}

/// Which schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemaWhich {
    /// A playbook.
    Playbook,
    /// A request.
    Request,
    /// The project config.
    Config,
    /// The HTTP API of `dsrctl serve --listen` (OpenAPI 3.1).
    Openapi,
}

/// `dsrctl schema`.
#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// The schema to print.
    #[arg(value_enum, required_unless_present = "write")]
    pub which: Option<SchemaWhich>,
    /// Write every schema into this directory instead (default `schemas`).
    #[arg(long, num_args = 0..=1, default_missing_value = "schemas")]
    pub write: Option<PathBuf>,
}

/// Plan views.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    /// Terminal text.
    Text,
    /// JSON with `format_version`.
    Json,
    /// Markdown for PR comments and job summaries.
    Markdown,
}

/// `dsrctl plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The request file.
    #[arg(required_unless_present = "compare")]
    pub request: Option<PathBuf>,
    /// Compile only: show the steps, contact nothing.
    #[arg(long)]
    pub offline: bool,
    /// Save the plan (with its previewed changes) for `dsrctl apply`.
    #[arg(short = 'o', long = "out")]
    pub out: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
    /// Exit 2 when there are changes pending.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Compare the sample requests' plans against the playbooks at this git ref (offline).
    #[arg(long, value_name = "GIT_REF")]
    pub compare: Option<String>,
    /// Calls to services in flight at once [default: `defaults.parallelism` of dsrctl.yaml,
    /// else 10].
    #[arg(long)]
    pub parallelism: Option<usize>,
}

/// `dsrctl apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A plan saved by `dsrctl plan -o`.
    pub plan: PathBuf,
    /// Approve deletions, recording who approved (needed when not interactive).
    #[arg(long, value_name = "NAME")]
    pub approve: Option<String>,
    /// Exit 2 when changes are pending (waiting steps).
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Calls to services in flight at once [default: `defaults.parallelism` of dsrctl.yaml,
    /// else 10].
    #[arg(long)]
    pub parallelism: Option<usize>,
}

/// `dsrctl run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The request file.
    pub request: PathBuf,
    /// Approve deletions, recording who approved (needed when not interactive).
    #[arg(long, value_name = "NAME")]
    pub approve: Option<String>,
    /// Run a request whose run completed once more (everything is sent again); needs
    /// `--reason`, recorded in the audit log.
    #[arg(long, requires = "reason")]
    pub again: bool,
    /// Why the request runs again.
    #[arg(long, requires = "again")]
    pub reason: Option<String>,
    /// Calls to services in flight at once [default: `defaults.parallelism` of dsrctl.yaml,
    /// else 10].
    #[arg(long)]
    pub parallelism: Option<usize>,
}

/// `dsrctl resume`.
#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// Run id (or a unique prefix).
    #[arg(add = super::complete::runs())]
    pub run: String,
    /// Recompile the request with today's playbooks first (`dsrctl replan`).
    #[arg(long)]
    pub replan: bool,
    /// With `--replan`: approve the new plan, recording who approved.
    #[arg(long, value_name = "NAME", requires = "replan")]
    pub approve: Option<String>,
    /// Calls to services in flight at once [default: `defaults.parallelism` of dsrctl.yaml,
    /// else 10].
    #[arg(long)]
    pub parallelism: Option<usize>,
}

/// `dsrctl replan`.
#[derive(Debug, Args)]
pub struct ReplanArgs {
    /// Run id (or a unique prefix).
    #[arg(add = super::complete::runs())]
    pub run: String,
    /// Approve the new plan, recording who approved (needed when not interactive).
    #[arg(long, value_name = "NAME")]
    pub approve: Option<String>,
    /// Calls to services in flight at once [default: `defaults.parallelism` of dsrctl.yaml,
    /// else 10].
    #[arg(long)]
    pub parallelism: Option<usize>,
}

/// `dsrctl abandon`.
#[derive(Debug, Args)]
pub struct AbandonArgs {
    /// Run id (or a unique prefix).
    #[arg(add = super::complete::runs())]
    pub run: String,
    /// Why the run is given up (recorded in the audit log and on the request).
    #[arg(long)]
    pub reason: String,
    /// Who gives it up [default: the login name].
    #[arg(long, value_name = "NAME")]
    pub by: Option<String>,
}

/// `dsrctl status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Run id (or a unique prefix); the newest run when omitted.
    #[arg(add = super::complete::runs())]
    pub run: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ListFormat::Text)]
    pub format: ListFormat,
    /// Same as `--format json` (kept for scripts written before `--format`).
    #[arg(long, hide = true)]
    pub json: bool,
}

impl StatusArgs {
    /// The format asked for, `--json` included.
    pub fn format(&self) -> ListFormat {
        if self.json {
            ListFormat::Json
        } else {
            self.format
        }
    }
}

/// `dsrctl runs`.
#[derive(Debug, Args)]
pub struct RunsArgs {
    /// Most runs to list.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ListFormat::Text)]
    pub format: ListFormat,
    /// Same as `--format json` (kept for scripts written before `--format`).
    #[arg(long, hide = true)]
    pub json: bool,
}

impl RunsArgs {
    /// The format asked for, `--json` included.
    pub fn format(&self) -> ListFormat {
        if self.json {
            ListFormat::Json
        } else {
            self.format
        }
    }
}

/// Report formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Markdown.
    Md,
    /// HTML.
    Html,
    /// JSON (evidence only).
    Json,
}

/// `dsrctl report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Run id (or a unique prefix).
    #[arg(add = super::complete::runs())]
    pub run: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Md)]
    pub format: ReportFormat,
    /// Template: evidence (default), letter, summary, or a template file name in the
    /// project's template directory.
    #[arg(long, default_value = "evidence")]
    pub template: String,
    /// Write to this file instead of stdout.
    #[arg(short = 'o', long = "out")]
    pub out: Option<PathBuf>,
    /// Build the export package into this directory (access/export requests).
    #[arg(long, value_name = "DIR")]
    pub package: Option<PathBuf>,
    /// Deliver the package to the configured destination.
    #[arg(long)]
    pub deliver: bool,
}

/// `dsrctl test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = TestFormat::Human)]
    pub format: TestFormat,
}

/// Test result formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TestFormat {
    /// Human text.
    Human,
    /// JSON.
    Json,
    /// JUnit XML.
    Junit,
}

/// `dsrctl show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The saved plan.
    pub plan: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
}

/// `dsrctl init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Directory to create the project in.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Write the example project instead (two tenants, the Azure services, a SQLite CRM),
    /// which runs end to end against `dsrctl emulate`.
    #[arg(long)]
    pub example: bool,
    /// With `--example`: where the emulator listens.
    #[arg(long, default_value = "127.0.0.1:8790", requires = "example")]
    pub emulator: String,
}

/// `dsrctl catalogue`.
#[derive(Debug, Args)]
pub struct CatalogueArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: CatalogueCommand,
}

/// `dsrctl catalogue` subcommands.
#[derive(Debug, Subcommand)]
pub enum CatalogueCommand {
    /// The services, with what each DSR kind does there.
    #[command(after_help = super::help::CATALOGUE_LIST)]
    List,
    /// Copy a service's playbook (with its tests) into the project and add its connector
    /// stub to every tenant of dsrctl.yaml; refuses to overwrite.
    #[command(after_help = super::help::CATALOGUE_ADD)]
    Add {
        /// The service, as `catalogue list` names it.
        service: String,
    },
}

/// `dsrctl emulate`.
#[derive(Debug, Args)]
pub struct EmulateArgs {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8790)]
    pub port: u16,
    /// Emulate this SaaS service of the catalogue instead of the Azure APIs (see
    /// `dsrctl catalogue list`).
    #[arg(long, value_parser = saas_services())]
    pub service: Option<String>,
}

/// The names `--service` accepts: every service with an emulator.
#[cfg(feature = "saas-emulators")]
fn saas_services() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(
        crate::emulator::saas::Service::ALL.map(crate::emulator::saas::Service::name),
    )
}

/// Without the `saas-emulators` feature no service has an emulator.
#[cfg(not(feature = "saas-emulators"))]
fn saas_services() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(Vec::<&'static str>::new())
}

/// `dsrctl demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to copy the example project (default: a fresh temporary directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Then record sample requests in every state and serve the operator console (and the
    /// HTTP API) on this address [default: 127.0.0.1:8080] until Ctrl-C; prints the URL and
    /// the API token to sign in with.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:8080")]
    pub serve: Option<std::net::SocketAddr>,
}

/// `dsrctl completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    pub shell: String,
}
