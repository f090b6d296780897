//! Reports, evidence and the export package, made from the plan and the journaled
//! outcomes only: nothing here calls a service.
//!
//! - [`RunView`]: the view model of one run ([`RunView::build`]); serialised, it is the
//!   JSON evidence report.
//! - [`render`]: evidence report, response letter and CI summary from handlebars templates
//!   (embedded, overridable from the project's template directory).
//! - [`package`]: the export package for the subject (files, manifest, zip, encryption).
//! - [`plan_view`]: the dry run's changes as terminal text, JSON and Markdown.

mod checkpoint;
mod encryption;
mod evidence_verify;
mod journal_check;
mod manifest;
mod mask;
pub mod package;
mod plan_markdown;
pub mod plan_view;
mod record_view;
mod redact;
mod render;
mod run_view;
mod step_changes;

pub use checkpoint::{CHECKPOINT_FORMAT, Checkpoint};
pub use evidence_verify::verify_evidence;
pub use journal_check::{JournalMismatch, journal_mismatches};
pub use mask::{Scrubber, mask_json, mask_string};
pub use record_view::{ApprovalView, AuditView, ExtensionView, ReportContext};
pub use render::{Format, ReportError, ReportKind, builtin_template, render, render_named};
pub use run_view::{
    EvidenceView, IdentityCount, InputDigest, REPORT_FORMAT_VERSION, RequestView, RunView,
    ServiceView, StepView, TaskView, Totals, VerificationView, action_summary, manual_connector,
};
pub use step_changes::step_changes;
