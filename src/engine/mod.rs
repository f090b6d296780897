//! Executes a [`Plan`](crate::compile::Plan): steps start when what they need has finished,
//! each through its connector, journaled in the [store](crate::store).

mod change;
mod outcome;

pub use change::{Change, ChangeAction};
pub use outcome::{Evidence, StepOutcome, StepStatus, TaskRecord};
