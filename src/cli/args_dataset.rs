//! Arguments of the dataset commands: `dataset introspect`, `coverage`, `import fides`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::args::DiagFormat;

/// `dsrctl dataset`.
#[derive(Debug, Args)]
pub struct DatasetArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: DatasetCommand,
}

/// `dsrctl dataset ...`.
#[derive(Debug, Subcommand)]
pub enum DatasetCommand {
    /// Read a SQL connector's live schema (tables, columns, types, keys, foreign keys) and
    /// write a draft dataset playbook, with guessed categories marked for review.
    #[command(after_help = super::help::DATASET_INTROSPECT)]
    Introspect(IntrospectArgs),
}

/// `dsrctl dataset introspect`.
#[derive(Debug, Args)]
pub struct IntrospectArgs {
    /// The SQL connector, as dsrctl.yaml names it.
    #[arg(long)]
    pub connector: String,
    /// The tenant whose connector it is (default: the only tenant).
    #[arg(long)]
    pub tenant: Option<String>,
    /// The PostgreSQL schema or MySQL/MariaDB database to read (default: the connection's);
    /// table names then carry it (`schema.table`).
    #[arg(long)]
    pub schema: Option<String>,
    /// The service name in the draft (default: the connector's name).
    #[arg(long)]
    pub service: Option<String>,
    /// Write the draft here instead of standard output.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

/// `dsrctl coverage`.
#[derive(Debug, Args)]
pub struct CoverageArgs {
    /// Check only this tenant's connectors (default: every tenant's).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = DiagFormat::Human)]
    pub format: DiagFormat,
}

/// `dsrctl import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// What to import.
    #[command(subcommand)]
    pub command: ImportCommand,
}

/// `dsrctl import ...`.
#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Convert a dataset in the Fides format (fides_key, collections, fields,
    /// `fides_meta.identity`, `references`, data categories) into a dsrctl dataset playbook,
    /// reporting what could not be carried over.
    #[command(after_help = super::help::IMPORT_FIDES)]
    Fides(FidesArgs),
}

/// `dsrctl import fides`.
#[derive(Debug, Args)]
pub struct FidesArgs {
    /// The Fides dataset file (YAML).
    pub file: PathBuf,
    /// The connector the playbook goes through (default: the dataset's `fides_key`).
    #[arg(long)]
    pub connector: Option<String>,
    /// Write the playbook here instead of standard output.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}
