//! Compile a request with the project's playbooks and config into a [`Plan`].

mod compile_error;
mod compiler;
mod plan;
mod template;

pub use compile_error::CompileError;
pub use compiler::{compile, connector_config, steps_of};
pub use plan::{
    BoundConnector, CaptureRef, Disposition, IdentitySource, PLAN_FORMAT_VERSION, Plan,
    PlannedAction, PlannedStep, ServicePlan, http_templates, sql_templates,
};
pub use template::{Renderer, TemplateError, encode_segment, odata_literal};
