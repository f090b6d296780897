use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Dataset, DsrKind, Request, Step};

/// One service's playbook: what personal data it holds and how to honour each DSR kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Playbook {
    /// Service name, unique across the project (kebab-case), e.g. `entra-users`.
    pub service: String,
    /// What the service is and why it holds personal data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The service's name for the people whose data it holds, e.g. `Customer accounts`:
    /// letters to data subjects use it instead of `service`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// What GDPR Art. 15(1) requires the answer to an access or export request to say about
    /// the processing in this service: purposes, recipients, retention and source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing: Option<Processing>,
    /// Name of the connector the steps go through, defined per tenant in `dsrctl.yaml`.
    pub connector: String,
    /// The personal data the service holds: categories and where they live.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holds: Vec<DataCategory>,
    /// Identities the steps use (`subject.<name>`): given by the request or discovered by a
    /// playbook listed in `discovers` of another service.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs_identities: Vec<String>,
    /// Identities this playbook discovers for the others: identity name to `step.capture`
    /// (e.g. `object_id: find-user.id`). Discovery runs before any step that needs the identity.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub discovers: BTreeMap<String, String>,
    /// JSON pointers into collected records whose values are about other people or
    /// confidential; they are redacted in the export package and noted in its manifest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redact: Vec<String>,
    /// Notes carried into every report for this service (e.g. "IoT Hub holds more data").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// For each DSR kind: steps, a reuse of other kinds' steps, or `unsupported` with a reason.
    /// With a `dataset`, the kinds written here are kept and the others derived (access,
    /// export, restrict and delete; rectify must be written).
    #[serde(default)]
    pub dsr: DsrSteps,
    /// A SQL database described once: its tables, identity columns, references, data
    /// categories and erasure. The steps of access, export, restrict and delete are derived
    /// from it (see the README's "Datasets").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<Dataset>,
    /// Playbook tests run offline by `dsrctl test` with recorded responses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tests: Vec<PlaybookTest>,
}

/// The processing in a service, as GDPR Art. 15(1)(a)-(d) and (g) ask it to be told to the
/// subject.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Processing {
    /// Why the data is processed, e.g. `customer support`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub purposes: Vec<String>,
    /// Recipients or categories of recipients the data is disclosed to, e.g.
    /// `payment processor (EU)`; empty: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<String>,
    /// How long the data is kept, or the criteria deciding it, e.g. `until the account is
    /// closed, then 30 days`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<String>,
    /// Where the data came from when not from the subject, e.g. `your employer's directory`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// A category of personal data and where in the service it lives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DataCategory {
    /// Category, e.g. `contact.email`, `user.device`, `user.location`.
    pub category: String,
    /// Where it is kept, e.g. a table and column or a resource and property.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Free-text note (retention, replication, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The steps per DSR kind. Every kind must be declared: steps, `same_as`, or `unsupported`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DsrSteps {
    /// Give the subject a copy of their data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<KindSpec>,
    /// Give the subject a portable export package.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<KindSpec>,
    /// Correct the subject's data with the request's `corrections`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rectify: Option<KindSpec>,
    /// Restrict processing (often: `same_as: [export, delete]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restrict: Option<KindSpec>,
    /// Erase the subject's data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete: Option<KindSpec>,
}

impl DsrSteps {
    /// The declaration for one kind.
    pub fn get(&self, kind: DsrKind) -> Option<&KindSpec> {
        match kind {
            DsrKind::Access => self.access.as_ref(),
            DsrKind::Export => self.export.as_ref(),
            DsrKind::Rectify => self.rectify.as_ref(),
            DsrKind::Restrict => self.restrict.as_ref(),
            DsrKind::Delete => self.delete.as_ref(),
        }
    }

    /// The steps a kind declares (none for a reuse or an exemption).
    pub fn steps(&self, kind: DsrKind) -> &[Step] {
        match self.get(kind) {
            Some(KindSpec::Steps(steps)) => steps,
            _ => &[],
        }
    }
}

/// How one DSR kind is honoured by a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum KindSpec {
    /// The steps, run in dependency order.
    Steps(Vec<Step>),
    /// The steps of other kinds, run one kind after the other.
    Reuse(Reuse),
    /// The service cannot honour this kind; the reason appears in every report as an exemption.
    Unsupported(Unsupported),
}

/// Reuse the steps of other kinds, in order (e.g. restrict = export, then delete).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Reuse {
    /// The kinds whose steps run, in this order.
    pub same_as: Vec<DsrKind>,
}

/// A kind the service cannot honour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Unsupported {
    /// Why: shown to the privacy team, the auditor and the data subject.
    #[schemars(length(min = 1))]
    pub unsupported: String,
}

/// An offline test of a playbook: a request, recorded responses, and what must result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaybookTest {
    /// Test name, shown in results.
    pub name: String,
    /// The request to compile (tenant and received date may be omitted).
    pub request: Request,
    /// Recorded responses by step id: status and body returned instead of calling the service.
    #[serde(default)]
    pub responses: BTreeMap<String, RecordedResponse>,
    /// Expected changes of the dry run, as `step-id: action` (`delete`, `update`, `manual`, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub expect_changes: BTreeMap<String, String>,
    /// Expected final outcome per step id (`succeeded`, `absent`, `failed`, `skipped`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub expect_outcomes: BTreeMap<String, String>,
}

/// A recorded response for a playbook test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordedResponse {
    /// HTTP status (or 200 for a successful SQL read).
    #[serde(default = "default_status")]
    pub status: u16,
    /// Response body or rows.
    #[serde(default)]
    pub body: serde_json::Value,
    /// Response headers, e.g. `ETag` or `Location`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

fn default_status() -> u16 {
    200
}
