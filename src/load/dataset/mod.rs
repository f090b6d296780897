//! Datasets: a SQL database described once. The checks run on the description; the
//! derivation turns it into the ordinary steps of access, export, restrict and delete,
//! which every later stage (compile, dry run, saved plans, journal, reports) takes as if
//! written by hand. `coverage` compares a dataset with the live schema, `draft` writes one
//! from it.

mod check;
mod coverage;
mod derive;
mod draft;
mod graph;
mod guess;
mod live;
mod shrink;

pub(crate) use check::check_dataset;
pub use coverage::coverage;
pub use derive::{Derivation, capture_name, expand, kebab, strategy_for};
pub use draft::draft_playbook;
pub use graph::{Condition, Edge, Reached, edges, personal, traverse};
pub use guess::{guess_category, guess_identity};
pub use live::{LiveReference, LiveTableView, LiveView};
pub use shrink::erasure_shrinks;
