//! The connector actions a step can perform. Adding an action means a new type here and
//! a connector that runs it; the compiler sees actions only through `compile::ActionSpec`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::HumanDuration;

/// An HTTP request. Template variables enter the path only through `{{seg ...}}`, which
/// encodes one path segment; query values are form-encoded for you.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpAction {
    /// Request method.
    pub method: HttpMethod,
    /// Path relative to the connector's base URL, e.g. `/users/{{seg subject.object_id}}`.
    /// An absolute URL returned by the service (e.g. a `Location` header) is allowed only on
    /// the connector's own origin.
    pub path: String,
    /// Query parameters; values are templates and are form-encoded.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query: BTreeMap<String, String>,
    /// Extra headers; values are templates. Never put secrets here: auth comes from config.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// JSON body; every string in it is a template. A string that is exactly
    /// `{{json x}}` becomes the JSON value of `x`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<serde_json::Value>,
    /// JSON Patch body (`application/json-patch+json`), templated like `json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_patch: Option<serde_json::Value>,
    /// Form body (`application/x-www-form-urlencoded`), as Stripe's API takes it: an object
    /// of field to value, templated like `json` (so `"{{json request.corrections}}"` is a
    /// whole object). Nested objects and lists are sent in bracket notation
    /// (`metadata[reason]=...`, `items[0][price]=...`); `null` is sent empty (Stripe's
    /// "unset").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form: Option<serde_json::Value>,
    /// A GraphQL request, sent as the JSON body `{"query", "variables"}`. An answer with a
    /// non-empty top-level `errors` list is a failure even with status 200.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graphql: Option<Box<GraphQl>>,
    /// Send `If-Match` with this value (template), e.g. the ETag of the previewed read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub if_match: Option<String>,
    /// Follow pages and return all items as one list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paginate: Option<Box<Paginate>>,
}

/// A GraphQL operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GraphQl {
    /// The query or mutation text, sent as it is (not a template: values go in
    /// `variables`, so a subject value never becomes GraphQL syntax).
    pub query: String,
    /// Variables; every string in them is a template, as in `json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variables: Option<serde_json::Value>,
}

/// HTTP methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    /// Read.
    Get,
    /// Read headers only.
    Head,
    /// Create or run an operation.
    Post,
    /// Replace.
    Put,
    /// Partial update.
    Patch,
    /// Delete.
    Delete,
}

impl HttpMethod {
    /// Whether the method reads only.
    pub fn is_read(self) -> bool {
        matches!(self, HttpMethod::Get | HttpMethod::Head)
    }
    /// The method's name.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Head => "HEAD",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Delete => "DELETE",
        }
    }
}

/// How a listing continues over pages. Items of every page are concatenated into one list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Paginate {
    /// JSON pointer to the items in each page: `/value` (default) or `""` for a bare array.
    #[serde(default = "default_items")]
    pub items: String,
    /// JSON pointer to an absolute next-page URL in the body (`/@odata.nextLink`, `/nextLink`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_link: Option<String>,
    /// JSON pointer to a continuation token in the body; the token is sent back in the
    /// JSON body field named by `token_field` (Digital Twins query).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continuation_token: Option<String>,
    /// Body field that carries the continuation token on the next request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_field: Option<String>,
    /// Response header carrying a continuation, sent back in the same request header
    /// (DPS: `x-ms-continuation`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continuation_header: Option<String>,
    /// Follow the `rel="next"` URL of the RFC 8288 `Link` response header (Shopify REST,
    /// Okta, GitHub), on the connector's own origin only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub link_header: bool,
    /// Query parameter that carries the cursor of the next page (`starting_after` for
    /// Stripe, `after` for HubSpot, `cursor` for Slack, `page[after]` for Zendesk). The
    /// cursor is taken from `cursor` or `cursor_item`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor_param: Option<String>,
    /// JSON pointer to the next page's cursor in the body (`/paging/next/after`,
    /// `/response_metadata/next_cursor`, `/meta/after_cursor`). Absent or empty ends the
    /// listing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// JSON pointer into the last item of a page whose value is the next cursor (Stripe:
    /// `/id`, sent as `starting_after`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor_item: Option<String>,
    /// JSON pointer to a boolean saying whether more pages follow (`/has_more`,
    /// `/meta/has_more`); `false` ends the listing whatever else the page holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_more: Option<String>,
    /// Offset paging: the query parameter that carries the index of the first item of the
    /// next page (`offset` for Mailchimp). Each page advances it by the number of items
    /// received; a page with fewer than `page_size` items (or none) ends the listing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset_param: Option<String>,
    /// Items per page asked for with offset paging (the playbook also sends it, e.g. as
    /// `count`); a shorter page is the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_size: Option<u32>,
    /// The list at `items` is an object whose values are the records, keyed by what was
    /// looked up (SendGrid's `search/emails` answers `{"result": {"EMAIL": {...}}}`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keyed: bool,
    /// A page without anything at `items` has no records (Google APIs leave an empty list
    /// out of the answer); otherwise that is an error naming `paginate.items`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub missing_is_empty: bool,
    /// Stop after this many pages (a guard against a service that never ends a listing).
    #[serde(default = "default_max_pages")]
    pub max_pages: u32,
}

fn default_items() -> String {
    "/value".to_owned()
}

fn default_max_pages() -> u32 {
    1000
}

/// A SQL operation. Exactly one of `select`, `update`, `delete`, `query`, `execute`.
/// Values are always bound parameters; identifiers are quoted for the dialect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlAction {
    /// Read rows matching a predicate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select: Option<Box<SqlSelect>>,
    /// Set columns of matching rows to values or masks. Previews itself as a select.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<Box<SqlUpdate>>,
    /// Delete matching rows. Previews itself as a select.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete: Option<Box<SqlDelete>>,
    /// Raw read-only SQL with named parameters (`:email`), bound from `params`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Raw mutating SQL with named parameters; needs a `preview` query (or `preview: {none: ...}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execute: Option<String>,
    /// Named parameters for `query`/`execute`: name to template.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
    /// Most rows the step may change; more rolls the transaction back and fails the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rows: Option<u64>,
    /// How text values in `where` meet stored values. `exact` (the default): equal bytes,
    /// case and trailing spaces included, whatever the column's collation.
    /// `case_insensitive`: letter case is ignored (said explicitly, shown in the plan).
    #[serde(default, rename = "match", skip_serializing_if = "SqlMatch::is_exact")]
    pub matching: SqlMatch,
    /// The rendered preview read of a raw `execute`, re-read in the mutation's transaction
    /// to check the rows it changes (set by the engine, never written in a playbook).
    #[serde(skip)]
    #[schemars(skip)]
    pub guard: Option<Box<SqlAction>>,
}

/// How a SQL step's text predicates compare with stored values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SqlMatch {
    /// Equal bytes: letter case, accents and trailing spaces count, whatever the collation.
    #[default]
    Exact,
    /// Equal once both sides are lower-cased (otherwise exact).
    CaseInsensitive,
}

impl SqlMatch {
    /// Whether this is the default, exact matching.
    pub fn is_exact(&self) -> bool {
        *self == SqlMatch::Exact
    }
}

impl SqlAction {
    /// Whether the operation changes data.
    pub fn mutates(&self) -> bool {
        self.update.is_some() || self.delete.is_some() || self.execute.is_some()
    }
    /// Number of operations declared (valid actions have exactly one).
    pub fn operation_count(&self) -> usize {
        usize::from(self.select.is_some())
            + usize::from(self.update.is_some())
            + usize::from(self.delete.is_some())
            + usize::from(self.query.is_some())
            + usize::from(self.execute.is_some())
    }
}

/// Rows of `table` matching `where` (and, with `through`, reached by a foreign key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlSelect {
    /// Table name (optionally `schema.table`).
    pub table: String,
    /// Columns to return; all when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<String>,
    /// Column equality (`col: value`) or membership (`col: [a, b]`) predicates, ANDed;
    /// `(a, b): [[1, 10], [2, 20]]` for pairs of columns (a composite key).
    #[serde(default, rename = "where", skip_serializing_if = "BTreeMap::is_empty")]
    pub filter: BTreeMap<String, SqlValue>,
    /// Reach the rows through a parent table by foreign key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub through: Option<SqlThrough>,
    /// Alternatives, ORed (and ANDed with `where`): a row meets at least one of these
    /// groups of predicates, e.g. `[{ email: .. }, { alt_email: .. }]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub any: Vec<BTreeMap<String, SqlValue>>,
    /// Exclusions: a row meeting any of these groups of predicates is left out (e.g. rows
    /// shared with another subject).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unless: Vec<BTreeMap<String, SqlValue>>,
    /// Order the rows by these columns (stable exports).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub order_by: Vec<String>,
}

/// Set columns of matching rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlUpdate {
    /// Table name.
    pub table: String,
    /// Column to new value or masking strategy.
    pub set: BTreeMap<String, SetValue>,
    /// Predicates, as in `select`. At least one predicate or `through` is required.
    #[serde(default, rename = "where", skip_serializing_if = "BTreeMap::is_empty")]
    pub filter: BTreeMap<String, SqlValue>,
    /// Reach the rows through a parent table by foreign key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub through: Option<SqlThrough>,
    /// Alternatives, ORed (and ANDed with `where`): a row meets at least one of these
    /// groups of predicates, e.g. `[{ email: .. }, { alt_email: .. }]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub any: Vec<BTreeMap<String, SqlValue>>,
    /// Exclusions: a row meeting any of these groups of predicates is left out (e.g. rows
    /// shared with another subject).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unless: Vec<BTreeMap<String, SqlValue>>,
    /// Primary key column(s) used to read back the rows for preview and verification
    /// (default `id`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key: Vec<String>,
}

/// Delete matching rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlDelete {
    /// Table name.
    pub table: String,
    /// Predicates, as in `select`. At least one predicate or `through` is required.
    #[serde(default, rename = "where", skip_serializing_if = "BTreeMap::is_empty")]
    pub filter: BTreeMap<String, SqlValue>,
    /// Reach the rows through a parent table by foreign key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub through: Option<SqlThrough>,
    /// Alternatives, ORed (and ANDed with `where`): a row meets at least one of these
    /// groups of predicates, e.g. `[{ email: .. }, { alt_email: .. }]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub any: Vec<BTreeMap<String, SqlValue>>,
    /// Exclusions: a row meeting any of these groups of predicates is left out (e.g. rows
    /// shared with another subject).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unless: Vec<BTreeMap<String, SqlValue>>,
}

/// `table.column IN (SELECT parent.key FROM parent WHERE ...)`: rows reached by foreign key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlThrough {
    /// Parent table, e.g. `customers`.
    pub table: String,
    /// Foreign key column in this table, e.g. `customer_id`.
    pub column: String,
    /// Referenced key column in the parent table, e.g. `id`.
    #[serde(default = "default_key")]
    pub references: String,
    /// Predicates on the parent table.
    #[serde(rename = "where")]
    pub filter: BTreeMap<String, SqlValue>,
}

fn default_key() -> String {
    "id".to_owned()
}

/// A predicate value: a template string, a number, a boolean, null, or a list (IN).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum SqlValue {
    /// One value; strings are templates.
    One(serde_json::Value),
    /// Any of these values.
    Any(Vec<serde_json::Value>),
}

/// A new column value: a literal or template, or a masking strategy.
///
/// A mapping with a `mask` key is always a masking strategy: `mask: null` (YAML null) is the
/// `null` strategy, and an unknown strategy is an error, never a literal JSON value.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum SetValue {
    /// Replace with a masking strategy.
    Mask {
        /// The strategy.
        mask: MaskStrategy,
        /// The replacement for `fixed`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<String>,
        /// For `hash`, `hmac` and `random`: keep only the first `length` characters, so the
        /// mask fits a short column (e.g. `length: 40` for a `varchar(40)`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        length: Option<u32>,
    },
    /// A literal value; strings are templates (e.g. `{{request.corrections.city}}`).
    Value(serde_json::Value),
}

impl JsonSchema for SetValue {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "SetValue".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let strategy = generator.subschema_for::<MaskStrategy>();
        schemars::json_schema!({
            "description": "A new column value: a literal or template, or a masking strategy. A mapping with a `mask` key is always a masking strategy (`mask: null` is the `null` strategy).",
            "anyOf": [
                {
                    "type": "object",
                    "description": "Replace with a masking strategy.",
                    "properties": {
                        "mask": {
                            "description": "The strategy (YAML `null` means the `null` strategy).",
                            "anyOf": [strategy, { "type": "null" }]
                        },
                        "value": { "type": "string", "description": "The replacement for `fixed`." },
                        "length": {
                            "type": "integer",
                            "minimum": 1,
                            "description": "For `hash`, `hmac` and `random`: keep only the first `length` characters, so the mask fits a short column (e.g. `length: 40` for a `varchar(40)`)."
                        }
                    },
                    "required": ["mask"],
                    "additionalProperties": false
                },
                {
                    "description": "A literal value; strings are templates (e.g. `{{request.corrections.city}}`).",
                    "not": { "type": "object", "required": ["mask"] }
                }
            ]
        })
    }
}

impl<'de> Deserialize<'de> for SetValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let v = serde_json::Value::deserialize(d)?;
        let serde_json::Value::Object(map) = &v else {
            return Ok(SetValue::Value(v));
        };
        let Some(mask) = map.get("mask") else {
            return Ok(SetValue::Value(v));
        };
        if let Some(extra) = map
            .keys()
            .find(|k| !["mask", "value", "length"].contains(&k.as_str()))
        {
            return Err(D::Error::custom(format!(
                "unknown field `{extra}` next to `mask`, expected `value` or `length`"
            )));
        }
        let mask = match mask {
            // `mask: null` in YAML: the `null` strategy, never the text `{"mask":null}`.
            serde_json::Value::Null => MaskStrategy::Null,
            other => MaskStrategy::deserialize(other).map_err(|_| {
                D::Error::custom(format!(
                    "`mask: {other}` is not a masking strategy; expected one of `null`, `fixed`, `random`, `hash`, `hmac`"
                ))
            })?,
        };
        let value = match map.get("value") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(other) => Some(other.to_string()),
        };
        let length = match map.get("length") {
            None | Some(serde_json::Value::Null) => None,
            Some(n) => Some(
                n.as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .filter(|n| *n > 0)
                    .ok_or_else(|| {
                        D::Error::custom(format!("`length: {n}` must be a positive integer"))
                    })?,
            ),
        };
        Ok(SetValue::Mask {
            mask,
            value,
            length,
        })
    }
}

/// How a column is masked instead of deleting the row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MaskStrategy {
    /// Set to NULL.
    Null,
    /// Set to the fixed `value`.
    Fixed,
    /// Set to a random string.
    Random,
    /// Set to the SHA-256 of the old value (hex).
    Hash,
    /// Set to the HMAC-SHA-256 of the old value with the connector's `hmac_key`.
    Hmac,
}

/// A task for a human. The run waits until `dsrctl task done` records who did it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ManualAction {
    /// What to do (template), e.g. "Remove {{subject.email}} from every alert".
    pub instructions: String,
    /// The evidence the person must attach, e.g. `screenshot of the alert list`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<String>,
    /// Who should do it (a team or role), shown in `dsrctl task list`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    /// Days after the task opens by which it should be done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_in_days: Option<u32>,
}

/// A message to a processor without an API (its privacy address), sent once through an
/// `email` connector; the step then waits for a person to record the processor's answer
/// (`dsrctl task done|fail`), due within `answer_within`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailAction {
    /// Recipients (templates), e.g. `privacy@vendor.example`.
    #[schemars(length(min = 1))]
    pub to: Vec<String>,
    /// Subject (template). The request id is added in brackets when the subject does not
    /// hold it, so the answer can be matched to the request.
    pub subject: String,
    /// Plain-text body (template), e.g. what to erase and for whom.
    pub body: String,
    /// Files attached to the message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attach: Vec<EmailAttachment>,
    /// How long the processor has to answer, e.g. `30d` (the contract's term); the task for
    /// the person who records the answer is due then.
    pub answer_within: HumanDuration,
}

/// A file attached to a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EmailAttachment {
    /// `identities.csv`: the subject's identities, one `identity,value` row each, so the
    /// processor can find every record of the person.
    Identities,
}

/// Wait before the steps that need this one continue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitAction {
    /// How long, e.g. `30d` (the recycle-bin period before a purge is checked).
    pub duration: HumanDuration,
    /// Why, shown in reports (`deferred until ...: <reason>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}
