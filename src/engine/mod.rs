//! Executes a [`Plan`](crate::journal::Plan): steps start when what they need has finished,
//! each through its connector, journaled in the [store](crate::store).
//!
//! Where a step is executed: [`Engine::execute`] (the run loop, `executor.rs`) →
//! `step.rs` (context, `for_each`) → `read.rs` (reads), `mutation.rs` (mutations sent once),
//! `verify.rs` (checking their effect) and `preview.rs` (dry-run changes); `unit.rs` commits a
//! service's SQL mutations together. Every call goes
//! through [`Calls`] (`calls.rs`): live connectors or replayed answers, behind a read-only
//! guard in a dry run.

mod calls;
mod capture;
mod clock;
mod executor;
mod mutation;
mod operation;
mod preview;
mod read;
mod select;
mod spool;
mod step;
mod unit;
mod verify;

pub use calls::{Calls, Live, Replay};
pub use capture::{check, count_records, take_captures};
pub use clock::Clock;
pub use executor::{ApplyFilter, Engine, EngineError, Observer, RunResult};
pub use spool::{RunFiles, spool_path};
