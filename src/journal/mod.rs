//! The run record's vocabulary, below every layer that writes or reads it: the plan a run
//! executes, its mode and status, each step's outcome (found, changed, verified), the
//! changes a dry run previews, manual tasks and evidence, the request's lifecycle state,
//! the one digest helper, the data key that seals personal data at rest, and the signatures
//! evidence carries.
//!
//! The store persists these types, the engine produces them and reports render them; none
//! of those layers defines them, so the store imports nothing above itself.

mod change;
mod data_key;
mod digest;
mod outcome;
mod plan;
mod request;
mod run;
mod sealing;
mod signature;

pub use change::{Change, ChangeAction};
pub use data_key::{DataKey, SEALED_PREFIX, SealError, is_sealed, open_with, sealed_index_tag};
pub use digest::{canonical_json, hmac_sha256_hex, sha256_hex};
pub use outcome::{Doubt, Evidence, StepOutcome, StepStatus, TaskRecord, Verification};
pub use plan::{
    BoundConnector, CaptureRef, Disposition, IdentitySource, PLAN_FORMAT_VERSION, Plan,
    PlannedAction, PlannedStep, ServicePlan, http_templates, sql_templates,
};
pub use request::{RequestRecord, RequestState};
pub use run::{RunMode, RunRecord, RunStatus};
pub use sealing::{
    open_change, open_outcome, open_plan, open_request, seal_change, seal_outcome, seal_plan,
    seal_request,
};
pub use signature::{PublicKey, SignatureError, SigningKey};
