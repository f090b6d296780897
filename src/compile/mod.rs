//! Compile a request with the project's playbooks and config into a [`Plan`].

mod compile_error;
mod compiler;
mod template;

pub use compile_error::CompileError;
pub use compiler::{compile, connector_config, steps_of};
pub use template::{Renderer, TemplateError, encode_segment, odata_literal, soql_string};
