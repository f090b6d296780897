//! `dsrctl report`.
use anyhow::Result;

use super::Outcome;
use super::args::{Cli, ReportArgs};

/// Report.
pub async fn report(_cli: &Cli, _args: &ReportArgs, _color: bool) -> Result<Outcome> {
    anyhow::bail!("report: not wired yet")
}
