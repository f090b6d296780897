//! `dsrctl`: fulfil GDPR/CCPA data subject requests from playbooks kept in git.
//!
//! The stages, each one module, data flowing left to right:
//! [`load`] (YAML with spans, schema and semantic checks) → [`compile`] (request +
//! playbooks + config → [`journal::Plan`]) → [`engine`] (runs the plan through
//! [`connectors`], journaled in [`store`]) → [`report`] (evidence, letters, export package).
//! The run record's types live in [`journal`], below all of them; the sequence plan →
//! approve → apply → schedule lives in [`workflow`], above them, used by every command.

// Actions and operations are built once per step; boxing variants would buy nothing.
#![allow(clippy::large_enum_variant)]

pub mod cli;
pub mod compile;
pub mod connectors;
pub mod deliver;
pub mod emulator;
pub mod engine;
pub mod journal;
pub mod load;
pub mod lsp;
pub mod model;
pub mod report;
pub mod secret;
pub mod store;
pub mod workflow;
