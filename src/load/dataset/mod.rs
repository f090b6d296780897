//! Datasets: a SQL database described once. The checks run on the description; the
//! derivation turns it into the ordinary steps of access, export, restrict and delete,
//! which every later stage (compile, dry run, saved plans, journal, reports) takes as if
//! written by hand.

mod check;
mod derive;
mod graph;

pub(crate) use check::check_dataset;
pub use derive::{Derivation, capture_name, expand, kebab, strategy_for};
pub use graph::{Condition, Edge, Reached, edges, personal, traverse};
