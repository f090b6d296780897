//! `dsrctl plan`, `dsrctl apply` and `dsrctl test`.
use anyhow::Result;

use super::Outcome;
use super::args::{ApplyArgs, Cli, PlanArgs, TestArgs};

/// Dry run.
pub async fn plan(_cli: &Cli, _args: &PlanArgs, _color: bool) -> Result<Outcome> {
    anyhow::bail!("plan: not wired yet")
}
/// Apply.
pub async fn apply(_cli: &Cli, _args: &ApplyArgs, _color: bool) -> Result<Outcome> {
    anyhow::bail!("apply: not wired yet")
}
/// Tests.
pub async fn test(_cli: &Cli, _args: &TestArgs, _color: bool) -> Result<Outcome> {
    anyhow::bail!("test: not wired yet")
}
