//! The OpenAPI 3.1 document of the API, generated from the handlers and their types; committed
//! as `schemas/openapi.json` (`dsrctl schema --write`) with a drift test.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::drp::{Discovery, DrpErrorBody, Empty, ExerciseStatus, Pairing};
use super::error::ErrorBody;
use super::metrics::Health;
use super::requests::{ImportView, NewRequest, RejectedRow, RepeatedRow};
use super::views::{
    EvidenceView, ReasonBody, RequestList, RequestView, RequiredReason, RunDetail, RunList,
    RunSummary, StepView, TaskList, TaskRecorded, TaskView,
};
use super::{drp, metrics, reports, requests, tasks};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "dsrctl API",
        description = "Intake, the request lifecycle, manual tasks, evidence reports and export packages of a dsrctl project (`dsrctl serve --listen ADDR`). Every call but /healthz and /metrics takes an API token from dsrctl.yaml: `Authorization: Bearer TOKEN`, scoped to tenants and roles.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
        version = "1"
    ),
    paths(
        requests::create, requests::import, requests::list, requests::read, requests::runs, requests::approve,
        requests::decline, requests::extend, requests::run, reports::report, reports::package,
        tasks::list, tasks::done, tasks::fail, metrics::healthz, metrics::metrics,
        drp::discovery, drp::pair, drp::agent, drp::exercise, drp::status, drp::revoke
    ),
    components(schemas(
        NewRequest, RequestView, RequestList, RunSummary, RunList, RunDetail, StepView, TaskView,
        TaskList, TaskRecorded, EvidenceView, ReasonBody, RequiredReason, ErrorBody, Health, ImportView,
        RepeatedRow, RejectedRow, Discovery, DrpErrorBody, Empty, ExerciseStatus, Pairing
    )),
    modifiers(&Bearer),
    tags(
        (name = "requests", description = "Intake and the request lifecycle"),
        (name = "runs", description = "Runs, evidence reports and export packages"),
        (name = "tasks", description = "Manual tasks"),
        (name = "operations", description = "Health and metrics"),
        (name = "drp", description = "The Data Rights Protocol 1.0 for Authorized Agents: signed requests (Ed25519) with a pair-wise bearer token, configured under `drp` in dsrctl.yaml")
    )
)]
struct ApiDoc;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        components.add_security_scheme(
            "drp_token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The OpenAPI document, pretty JSON with a final newline.
pub fn openapi_json() -> String {
    let mut text = ApiDoc::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serialises");
    text.push('\n');
    text
}
