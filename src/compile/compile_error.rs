/// Why a request could not be compiled into a plan.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// The request names a tenant the config does not define.
    #[error(
        "request `{request}` names tenant `{tenant}`, which dsrctl.yaml does not define; defined tenants: {known}"
    )]
    UnknownTenant {
        /// Request id.
        request: String,
        /// Tenant named.
        tenant: String,
        /// Defined tenants, comma-separated.
        known: String,
    },
    /// A reuse names a kind that is not a list of steps.
    #[error(
        "service `{service}`: `{kind}` reuses `{target}`, which is not a list of steps (a reuse may only name kinds that declare steps)"
    )]
    BadReuse {
        /// Service.
        service: String,
        /// Kind declaring the reuse.
        kind: String,
        /// Kind reused.
        target: String,
    },
    /// A step refers to something that does not exist.
    #[error("service `{service}`, step `{step}`: {message}")]
    BadReference {
        /// Service.
        service: String,
        /// Step id.
        step: String,
        /// What is wrong.
        message: String,
    },
    /// The steps cannot be ordered.
    #[error("the steps cannot be ordered, they wait on each other: {0}")]
    Cycle(String),
}
