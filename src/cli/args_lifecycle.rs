//! Arguments of the lifecycle commands: requests, tasks, tick/serve and the audit log.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

/// Listing formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    /// A table.
    Text,
    /// JSON.
    Json,
}

/// `dsrctl request`.
#[derive(Debug, Args)]
pub struct RequestArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: RequestAction,
}

/// Request subcommands.
#[derive(Debug, Subcommand)]
pub enum RequestAction {
    /// Record a new request. Delete and restrict requests wait in `received` for
    /// `dsrctl request approve`; access, export and rectify requests are approved on intake
    /// (they only read, or apply the subject's own correction). `dsrctl tick` starts
    /// approved requests.
    #[command(after_help = super::help::REQUEST_NEW)]
    New(RequestNewArgs),
    /// Approve a received request, recording who approved it.
    #[command(after_help = super::help::REQUEST_APPROVE)]
    Approve(RequestApproveArgs),
    /// Decline a request, with the reason.
    #[command(after_help = super::help::REQUEST_DECLINE)]
    Decline(RequestReasonArgs),
    /// Extend the deadline once (GDPR: by two months; CCPA: by 45 days), with the reason.
    #[command(after_help = super::help::REQUEST_EXTEND)]
    Extend(RequestReasonArgs),
    /// Record many requests from a CSV or JSON Lines file in one transaction. Rows that are
    /// not valid are listed with their line numbers and recorded nothing (the others are
    /// recorded); rows already imported are skipped, so importing a file again is safe.
    #[command(after_help = super::help::REQUEST_IMPORT)]
    Import(RequestImportArgs),
}

/// The format of an import file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImportFormatArg {
    /// Comma-separated values with a header row naming the columns.
    Csv,
    /// One JSON request object per line.
    Jsonl,
}

/// `dsrctl request import`.
#[derive(Debug, Args)]
pub struct RequestImportArgs {
    /// The file: CSV with a header (`id,kind,tenant,email,...`: the request's fields, every
    /// other column an identity of the subject) or JSON Lines.
    pub file: PathBuf,
    /// The file's format (default: from its extension, `.jsonl`/`.ndjson` or else CSV).
    #[arg(long, value_enum)]
    pub format: Option<ImportFormatArg>,
    /// The tenant of rows without a `tenant`.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Who imports (recorded in the audit log).
    #[arg(long, value_name = "NAME")]
    pub by: Option<String>,
}

/// The kinds of request, as typed on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KindArg {
    /// Access.
    Access,
    /// Export.
    Export,
    /// Rectify.
    Rectify,
    /// Restrict.
    Restrict,
    /// Delete.
    Delete,
}

/// Jurisdictions, as typed on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum JurisdictionArg {
    /// GDPR: one month, extendable by two.
    Gdpr,
    /// CCPA: 45 days, extendable by 45.
    Ccpa,
}

/// `dsrctl request new`.
#[derive(Debug, Args)]
pub struct RequestNewArgs {
    /// A request file (validated like `dsrctl validate`) instead of the options below.
    #[arg(long, conflicts_with_all = ["kind", "tenant", "email", "subject", "id", "received", "jurisdiction"])]
    pub file: Option<PathBuf>,
    /// What the subject asks for.
    #[arg(long, value_enum, required_unless_present = "file")]
    pub kind: Option<KindArg>,
    /// The tenant whose services hold the data.
    #[arg(long, required_unless_present = "file")]
    pub tenant: Option<String>,
    /// The subject's email.
    #[arg(long)]
    pub email: Option<String>,
    /// Further identities as `name=value` (repeatable; repeat a name for several values).
    #[arg(long, value_name = "NAME=VALUE")]
    pub subject: Vec<String>,
    /// Request id (default: `r-` and the date and time).
    #[arg(long)]
    pub id: Option<String>,
    /// The law the request is made under.
    #[arg(long, value_enum, default_value_t = JurisdictionArg::Gdpr)]
    pub jurisdiction: JurisdictionArg,
    /// Date received, `YYYY-MM-DD` (default: today).
    #[arg(long)]
    pub received: Option<chrono::NaiveDate>,
    /// Free-text note.
    #[arg(long)]
    pub note: Option<String>,
}

/// `dsrctl request approve`.
#[derive(Debug, Args)]
pub struct RequestApproveArgs {
    /// Request id.
    #[arg(add = super::complete::requests())]
    pub id: String,
    /// Who approves.
    #[arg(long, value_name = "NAME")]
    pub by: String,
}

/// `dsrctl request decline` / `extend`.
#[derive(Debug, Args)]
pub struct RequestReasonArgs {
    /// Request id.
    #[arg(add = super::complete::requests())]
    pub id: String,
    /// Why.
    #[arg(long)]
    pub reason: String,
    /// Who decides (recorded in the audit log).
    #[arg(long, value_name = "NAME")]
    pub by: Option<String>,
}

/// `dsrctl requests`.
#[derive(Debug, Args)]
pub struct RequestsArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = ListFormat::Text)]
    pub format: ListFormat,
    /// Days left are counted from this date (default: today).
    #[arg(long)]
    pub today: Option<chrono::NaiveDate>,
    /// Only the requests of the subject with this identity, e.g. `email=jane@example.com`
    /// (found through the keyed index beside the sealed identities).
    #[arg(long, value_name = "NAME=VALUE")]
    pub subject: Option<String>,
}

/// `dsrctl purge`.
#[derive(Debug, Args)]
pub struct PurgeArgs {
    /// Purge requests closed (completed, declined or failed) before this date, `YYYY-MM-DD`.
    #[arg(long, value_name = "DATE")]
    pub closed_before: chrono::NaiveDate,
    /// Only list what would be purged.
    #[arg(long)]
    pub dry_run: bool,
}

/// `dsrctl task`.
#[derive(Debug, Args)]
pub struct TaskArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: TaskAction,
}

/// Task subcommands.
#[derive(Debug, Subcommand)]
pub enum TaskAction {
    /// List manual tasks waiting for a person, in every run.
    #[command(after_help = super::help::TASK_LIST)]
    List(TaskListArgs),
    /// Record a manual task (or a step left `running` by a crash) as done, then continue
    /// the run.
    #[command(after_help = super::help::TASK_DONE)]
    Done(TaskDoneArgs),
    /// Record a manual task as failed, with a note.
    #[command(after_help = super::help::TASK_FAIL)]
    Fail(TaskDoneArgs),
}

/// `dsrctl task list`.
#[derive(Debug, Args)]
pub struct TaskListArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = ListFormat::Text)]
    pub format: ListFormat,
}

/// `dsrctl task done` / `fail`.
#[derive(Debug, Args)]
pub struct TaskDoneArgs {
    /// Run id (or a unique prefix).
    #[arg(add = super::complete::runs())]
    pub run: String,
    /// The step: its key (`service/step`), its id, or an instance key (`service/step#2`).
    #[arg(add = super::complete::open_steps())]
    pub step: String,
    /// Who did it.
    #[arg(long, value_name = "NAME")]
    pub by: String,
    /// Evidence files, stored with their SHA-256 (repeatable).
    #[arg(long, value_name = "FILE")]
    pub evidence: Vec<PathBuf>,
    /// A note.
    #[arg(long)]
    pub note: Option<String>,
    /// Only record; do not continue the run now (the next `dsrctl tick` does).
    #[arg(long)]
    pub no_continue: bool,
}

/// `dsrctl tick`.
#[derive(Debug, Args)]
pub struct TickArgs {
    /// Worker options.
    #[command(flatten)]
    pub worker: WorkerArgs,
    /// Act as if it were this time (RFC 3339): what is due is decided by it.
    #[arg(long)]
    pub now: Option<chrono::DateTime<chrono::Utc>>,
}

/// Options shared by `tick` and `serve`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// This worker's name, unique among workers sharing the state store (default: host and
    /// process id).
    #[arg(long)]
    pub worker: Option<String>,
    /// How long a run's lease lasts unless renewed (a dead worker's runs are taken over
    /// after it).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub lease: std::time::Duration,
    /// Runs executed at once by this worker. The limits nest: each run makes at most
    /// `--parallelism` calls at once, and every call, from whichever run, also takes a
    /// place under its connector's own cap (`concurrency:` of the connector in dsrctl.yaml,
    /// else `defaults.connector_concurrency`, 4) and waits for its `rate_limit`. Neither
    /// option raises a connector's cap: with many requests to one service, that cap is
    /// usually what binds. After each tick a `limits:` line says which limit bound.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Most requests started plus runs resumed per tick (default: the concurrency, so other
    /// workers sharing the store find the rest).
    #[arg(long)]
    pub batch: Option<u32>,
    /// Connector calls in flight at once within a run [default: `defaults.parallelism` of
    /// dsrctl.yaml, else 10]. Each call also waits for a place under its connector's own
    /// cap (`concurrency:` of the connector), shared by all runs, which this does not raise.
    #[arg(long)]
    pub parallelism: Option<usize>,
}

/// `dsrctl serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Worker options.
    #[command(flatten)]
    pub worker: WorkerArgs,
    /// Tick this often, e.g. `5m`, `30s`.
    #[arg(long, value_parser = parse_duration, conflicts_with = "schedule")]
    pub every: Option<std::time::Duration>,
    /// Tick on a cron schedule (5 fields, UTC), e.g. `*/5 * * * *`.
    #[arg(long)]
    pub schedule: Option<String>,
    /// Also serve the HTTP API on this address, e.g. `127.0.0.1:8080` (port 0: any free
    /// port, printed on start); callers present an API token from dsrctl.yaml (`api.tokens`).
    /// Without `--every` or `--schedule`, ticks every 5s.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
    /// On SIGTERM, how long the runs in flight may take to journal their current steps and
    /// be handed over to another worker before `serve` exits anyway (exit 1).
    #[arg(long, value_parser = parse_duration, default_value = "25s")]
    pub drain_timeout: std::time::Duration,
    /// Serve HTTPS with this certificate chain (PEM), instead of `api.tls` in dsrctl.yaml.
    #[arg(long, value_name = "FILE", requires_all = ["tls_key", "listen"])]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The private key (PEM) of `--tls-cert`.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
}

/// `dsrctl audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: AuditAction,
}

/// Audit subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditAction {
    /// Check the keyed chain, and every run's journal against it; with `--against`, that the
    /// log still holds a signed checkpoint's head. Exit 1 naming what is broken.
    #[command(after_help = super::help::AUDIT_VERIFY)]
    Verify(AuditVerifyArgs),
    /// Print the audit log.
    #[command(after_help = super::help::AUDIT_EXPORT)]
    Export(AuditExportArgs),
    /// Write the log's head, signed with the evidence key, to a file kept elsewhere (with
    /// the auditor, in another repository, in object storage).
    #[command(after_help = super::help::AUDIT_CHECKPOINT)]
    Checkpoint(AuditCheckpointArgs),
}

/// `dsrctl audit verify`.
#[derive(Debug, Args)]
pub struct AuditVerifyArgs {
    /// A checkpoint written by `dsrctl audit checkpoint`: the log must still hold its head,
    /// unchanged, which catches a history rewound or rewritten since.
    #[arg(long, value_name = "CHECKPOINT")]
    pub against: Option<std::path::PathBuf>,
    /// The public key the checkpoint is checked with (64 hex digits, or a file holding
    /// them); the project's own by default.
    #[arg(long, value_name = "KEY")]
    pub public_key: Option<String>,
}

/// `dsrctl audit checkpoint`.
#[derive(Debug, Args)]
pub struct AuditCheckpointArgs {
    /// Where to write the signed checkpoint (JSON).
    #[arg(short, long, value_name = "FILE")]
    pub output: std::path::PathBuf,
}

/// Audit export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuditFormat {
    /// One JSON array.
    Json,
    /// One JSON object per line.
    Jsonl,
}

/// `dsrctl audit export`.
#[derive(Debug, Args)]
pub struct AuditExportArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = AuditFormat::Jsonl)]
    pub format: AuditFormat,
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    crate::model::HumanDuration::parse(text).map(|d| d.get())
}

/// `dsrctl evidence`.
#[derive(Debug, Args)]
pub struct EvidenceArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: EvidenceAction,
}

/// Evidence subcommands.
#[derive(Debug, Subcommand)]
pub enum EvidenceAction {
    /// Check a signed evidence report (JSON, HTML, Markdown), audit checkpoint or export
    /// package directory offline; exit 1 naming what does not hold.
    #[command(after_help = super::help::EVIDENCE_VERIFY)]
    Verify(EvidenceVerifyArgs),
    /// Print the public key that checks this project's signatures (give it to auditors).
    #[command(after_help = super::help::EVIDENCE_PUBLIC_KEY)]
    PublicKey,
}

/// `dsrctl evidence verify`.
#[derive(Debug, Args)]
pub struct EvidenceVerifyArgs {
    /// A report or checkpoint file, or an export package directory.
    #[arg(value_name = "FILE|DIR")]
    pub path: std::path::PathBuf,
    /// The signer's public key: 64 hex digits, or a file holding them (what
    /// `dsrctl evidence public-key` prints); the project's own by default.
    #[arg(long, value_name = "KEY")]
    pub public_key: Option<String>,
}
