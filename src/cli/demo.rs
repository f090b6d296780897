//! `dsrctl emulate` and `dsrctl demo`.
use anyhow::Result;

use super::Outcome;
use super::args::{Cli, DemoArgs, EmulateArgs};

/// Emulator.
pub async fn emulate(_args: &EmulateArgs) -> Result<Outcome> {
    anyhow::bail!("emulate: not wired yet")
}
/// Demo.
pub async fn demo(_cli: &Cli, _args: &DemoArgs, _color: bool) -> Result<Outcome> {
    anyhow::bail!("demo: not wired yet")
}
