//! Compile a request with the project's playbooks and config into a [`Plan`].

mod plan;

pub use plan::{
    BoundConnector, CaptureRef, Disposition, IdentitySource, PLAN_FORMAT_VERSION, Plan,
    PlannedAction, PlannedStep, ServicePlan, http_templates, sql_templates,
};
