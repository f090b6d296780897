use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{EmailAction, HttpAction, HumanDuration, ManualAction, SqlAction, WaitAction};

/// One operation through one connector: a read, a mutation, a manual task or a wait.
///
/// A step has exactly one action: `http`, `sql`, `manual`, `wait` or `email`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Step id, unique within its DSR kind (kebab-case). Later steps refer to its captures
    /// as `{{<id>.<capture>}}`.
    pub id: String,
    /// What the step does, in a sentence; shown in plans and reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Steps of this kind that must finish first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<String>,
    /// Steps of other services that must finish first: `service` (all its steps for the
    /// request) or `service/step-id`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
    /// Run once per element of an earlier step's captured list: `step-id.capture`.
    /// Inside, `{{item}}` is the element.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_each: Option<String>,
    /// Connector for this step when it differs from the playbook's (e.g. a manual task).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector: Option<String>,
    /// An HTTP request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<Box<HttpAction>>,
    /// A SQL operation: structured `select`/`update`/`delete` or raw SQL with bound parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<Box<SqlAction>>,
    /// A task for a human, with instructions and the evidence it wants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manual: Option<Box<ManualAction>>,
    /// Wait a duration after the steps this one needs (e.g. a 30-day purge).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<Box<WaitAction>>,
    /// A message to a processor without an API, through an `email` connector; then a task
    /// for the person who records its answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<Box<EmailAction>>,
    /// Whether the step changes data. Default: derived from the action (HTTP methods other
    /// than GET/HEAD, SQL update/delete/execute, manual tasks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mutates: Option<bool>,
    /// Whether re-sending the mutation after a crash is safe. Default: true for DELETE and
    /// SQL delete, false otherwise (a non-idempotent step is verified before it is re-sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotent: Option<bool>,
    /// Keep only the listed records that match, before anything is captured or collected
    /// (for a service whose API cannot filter: list everything, match here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select: Option<Box<Select>>,
    /// Values taken from the result: name to JSON pointer into the body (`/value/0/id`;
    /// `/*/id` for every row's, `/*/(region,no)` for every row's pair), `header:<Name>` for a
    /// response header, or `""` for the whole result.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub capture: BTreeMap<String, String>,
    /// Statuses meaning "nothing held here" (e.g. `[404]`): not an error. After a delete,
    /// 404 means already erased.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub absent_on: Vec<u16>,
    /// Put the result into the export package under this collection name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collect: Option<String>,
    /// How a mutation shows its "before" in a dry run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<Box<Preview>>,
    /// How the mutation's effect is checked after it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<Box<Verify>>,
    /// Repeat the read until a condition holds (asynchronous operations). The run waits in
    /// the store between polls; no process sleeps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll: Option<Box<Poll>>,
}

impl Step {
    /// Number of actions declared (valid steps have exactly one).
    pub fn action_count(&self) -> usize {
        usize::from(self.http.is_some())
            + usize::from(self.sql.is_some())
            + usize::from(self.manual.is_some())
            + usize::from(self.wait.is_some())
            + usize::from(self.email.is_some())
    }
}

/// Records of a read's result to keep; the others are dropped before captures, counts and
/// the export package see the result (they may be other people's data).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Select {
    /// JSON pointer to the list of records in the result: `""` (default) when the result is
    /// the list, as for a paginated read; `/value` for one page of a collection.
    #[serde(default)]
    pub items: String,
    /// Conditions a kept record meets, all of them: a JSON pointer into the record to the
    /// value (a template) it must equal, compared as text, e.g. `/email: "{{subject.email}}"`.
    #[serde(rename = "where")]
    #[schemars(length(min = 1), extend("propertyNames" = {"pattern": "^/"}))]
    pub filter: BTreeMap<String, String>,
    /// Compare ignoring letter case (email addresses, user principal names).
    #[serde(default)]
    pub ignore_case: bool,
}

/// How a mutation is previewed in a dry run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Preview {
    /// The `for_each` element is the "before" (e.g. a listed relationship).
    Item,
    /// The result of an earlier read step is the "before".
    Step(String),
    /// A dedicated HTTP read returns the "before".
    Http(HttpAction),
    /// A dedicated SQL read returns the "before".
    Sql(SqlAction),
    /// No preview is possible; the reason is shown and the change counts as `unknown`.
    None(String),
}

/// How a mutation's effect is verified after it ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Verify {
    /// An HTTP read to perform.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpAction>,
    /// A SQL read to perform.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<SqlAction>,
    /// Statuses that prove the effect (e.g. `[404]` after a delete).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expect_status: Vec<u16>,
    /// Conditions on the read's body.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expect: Vec<Expect>,
    /// Run the verification this long after the mutation (e.g. `30d` for a purge), as a
    /// deferred step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<HumanDuration>,
}

/// A condition on a JSON document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// JSON pointer into the document (`""` is the whole document).
    pub pointer: String,
    /// The value must equal this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<serde_json::Value>,
    /// The value must be one of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub one_of: Vec<serde_json::Value>,
    /// The value must be absent (true) or present (false); an empty array counts as absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub absent: Option<bool>,
}

/// Repeat a read until a condition holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Poll {
    /// The condition that ends polling successfully.
    pub until: Expect,
    /// Conditions that end polling as a failure (e.g. status `failed`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fail_when: Vec<Expect>,
    /// Time between polls, e.g. `1h`. A `Retry-After` from the service wins when longer.
    pub every: HumanDuration,
    /// Give up after this long, e.g. `30d`.
    pub timeout: HumanDuration,
}

#[cfg(test)]
mod tests {
    use std::mem::size_of;

    use super::*;

    /// A project of 10,000 playbooks holds 50,000 steps: with every action and option
    /// inline a step took 4.5 KiB and `plan --offline` 616 MiB. Each action and the rarely
    /// used options are boxed, so a step costs the room of what it has.
    #[test]
    fn a_step_stays_small() {
        assert!(
            size_of::<Step>() <= 320,
            "Step is {} bytes",
            size_of::<Step>()
        );
        assert!(
            size_of::<HttpAction>() <= 336,
            "HttpAction is {} bytes",
            size_of::<HttpAction>()
        );
        assert!(
            size_of::<SqlAction>() <= 128,
            "SqlAction is {} bytes",
            size_of::<SqlAction>()
        );
    }
}
