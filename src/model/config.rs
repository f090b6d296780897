use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{HumanDuration, SetValue};

/// The project config, `dsrctl.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    /// Directories (or files) holding playbooks, relative to this file.
    #[serde(default = "default_playbooks")]
    pub playbooks: Vec<String>,
    /// Tenants and their connectors. A request names its tenant and only reaches its connectors.
    pub tenants: BTreeMap<String, Tenant>,
    /// State store: a SQLite path (default `.dsrctl/state.db`) or a `postgres://` URL shared
    /// by several workers. A URL with a password must come from the environment:
    /// `{ env: DSRCTL_STATE_URL }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<UrlSource>,
    /// Execution defaults for every connector.
    #[serde(default)]
    pub defaults: Defaults,
    /// Saved-plan policy.
    #[serde(default)]
    pub plan: PlanPolicy,
    /// The key sealing personal data at rest (subject identities and collected records in
    /// the state store, spool files and saved plans; AES-256-GCM): 32 bytes as 64 hex digits
    /// or base64, `{ env: NAME }` or `{ file: path }`. Without it a key is made on first use
    /// in `.dsrctl/data.key`; set it when several workers share a PostgreSQL store or plans
    /// are applied on another machine, and keep it out of git and backups of the store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_key: Option<SecretRef>,
    /// Directory with report templates overriding the built-in ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub templates: Option<String>,
    /// Where export packages are delivered, unless a tenant says otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<Destination>,
    /// Object storage shared by every worker (a directory, an Azure Blob container or an
    /// S3 bucket): each collected record file is kept there as soon as it is written
    /// (`runs/<run>/...`, sealed with the data key) and each export package built
    /// (`packages/<request>/<run>/...`), so any worker can build a run's package. Set it
    /// with a PostgreSQL store shared by workers on different machines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<Destination>,
    /// Directory with sample requests for `plan --compare` and `dsrctl test`.
    #[serde(default = "default_requests")]
    pub requests: String,
    /// The keys evidence is made checkable with: the audit log's MAC key and the key that
    /// signs reports, export packages and audit checkpoints.
    #[serde(default)]
    pub evidence: EvidenceKeys,
    /// The controller answering data subjects (the letter's sender), unless a tenant names
    /// its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<Controller>,
    /// How erasure masks a column of each data category in a dataset table whose erasure is
    /// `mask`: category (or a prefix of it: `user.contact` covers `user.contact.email`) to a
    /// masking strategy (`{ mask: hash }`, `{ mask: null }`) or a literal value. The longest
    /// matching category wins; a column's own `erasure` overrides it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub erasure: BTreeMap<String, SetValue>,
    /// The HTTP API of `dsrctl serve --listen`: the tokens that may call it, each scoped to
    /// tenants and roles. Without it the API answers only `/healthz` and `/metrics`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<ApiConfig>,
    /// The Data Rights Protocol (DRP 1.0) endpoints of the HTTP API: the covered business
    /// this project answers for and the Authorized Agents whose signed requests it accepts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drp: Option<super::DrpConfig>,
}

/// Who may call the HTTP API, and its limits.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// The API tokens. A caller sends one as `Authorization: Bearer SECRET`.
    #[serde(default)]
    pub tokens: Vec<ApiToken>,
    /// The largest evidence file a manual task may be completed with, in bytes (default
    /// 25 MiB); a larger upload is refused with 413 before it is stored.
    #[serde(default = "default_max_upload_bytes")]
    pub max_upload_bytes: u64,
    /// Serve the API (and the console) over HTTPS with this certificate and key; plain HTTP
    /// is then refused on that port. `serve --tls-cert/--tls-key` override it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ApiTls>,
}

/// The certificate and private key `serve --listen` answers HTTPS with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiTls {
    /// The certificate chain in PEM, leaf first: a file, relative to the project.
    pub certificate: String,
    /// The private key in PEM (PKCS#8, PKCS#1 or SEC1), by reference like every secret:
    /// `{ file: keys/tls.key }` or `{ env: NAME }` holding the PEM text.
    pub key: SecretRef,
}

fn default_max_upload_bytes() -> u64 {
    25 * 1024 * 1024
}

/// One API token: its name (recorded in the audit log for everything done with it), its
/// secret by reference, and what it may do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiToken {
    /// The token's name, e.g. `web-form`; the audit log names it as `api:NAME`.
    pub name: String,
    /// The secret the caller presents (`{ env: NAME }` or `{ file: path }`, at least 16
    /// characters, e.g. from `openssl rand -hex 32`).
    pub secret: SecretRef,
    /// The tenants whose requests it may see and touch; another tenant's requests do not
    /// exist for it.
    pub tenants: Vec<String>,
    /// What it may do.
    pub roles: Vec<ApiRole>,
}

/// What an API token may do.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ApiRole {
    /// Record requests (one, or an import), and read requests and runs.
    Intake,
    /// Read requests and runs, list and complete manual tasks, extend deadlines, download
    /// evidence reports and export packages.
    Operator,
    /// Approve and decline requests, extend deadlines, read requests, runs and evidence
    /// reports.
    Approver,
    /// Read requests, runs and evidence reports.
    Auditor,
}

impl ApiRole {
    /// The name used in `dsrctl.yaml`.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiRole::Intake => "intake",
            ApiRole::Operator => "operator",
            ApiRole::Approver => "approver",
            ApiRole::Auditor => "auditor",
        }
    }
}

/// The keys of the evidence, as secret references (`{ env: NAME }` or `{ file: path }`).
/// Keep them out of the state store and out of git: whoever holds the audit key can rewrite
/// the audit log undetected, and whoever holds the signing key can sign anything.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EvidenceKeys {
    /// The key audit entries are MACed with (HMAC-SHA-256), any text. Without it one is made
    /// on first use in `.dsrctl/audit.key`, beside the embedded store: set it so that whoever
    /// can change the store cannot re-key the log, and share it between workers of a
    /// PostgreSQL store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_key: Option<SecretRef>,
    /// The Ed25519 key (64 hex digits, its seed) that signs evidence reports, package
    /// manifests and audit checkpoints; `dsrctl evidence public-key` prints the public key
    /// auditors check them with. Without it one is made on first use in
    /// `.dsrctl/signing.key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_key: Option<SecretRef>,
}

/// Who answers the data subject: the letter's sender.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Controller {
    /// The controller's name, e.g. `Acme Ltd`.
    pub name: String,
    /// How the subject reaches the privacy team or data protection officer, e.g. an email
    /// address.
    pub contact: String,
    /// Postal address, one line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Who signs the letter, e.g. `Dana Fischer, Data Protection Officer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signatory: Option<String>,
}

fn default_playbooks() -> Vec<String> {
    vec!["policies".to_owned()]
}

fn default_requests() -> String {
    "requests".to_owned()
}

/// One tenant: its connectors and export destination.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tenant {
    /// Display name, e.g. the organisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Connectors by name; playbooks refer to these names.
    pub connectors: BTreeMap<String, ConnectorConfig>,
    /// Export destination for this tenant's packages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<Destination>,
    /// The controller for this tenant's requests, when not the project's `controller`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<Controller>,
}

/// A configured way to reach a system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum ConnectorConfig {
    /// An HTTP/REST API.
    Http(HttpConnector),
    /// A SQL database (PostgreSQL, MySQL/MariaDB, SQLite).
    Sql(SqlConnector),
    /// Tasks for humans.
    Manual(ManualConnector),
    /// Messages by email (SMTP) to processors without an API.
    Email(EmailConnector),
}

impl ConnectorConfig {
    /// The kind's name.
    pub fn kind_name(&self) -> &'static str {
        match self {
            ConnectorConfig::Http(_) => "http",
            ConnectorConfig::Sql(_) => "sql",
            ConnectorConfig::Manual(_) => "manual",
            ConnectorConfig::Email(_) => "email",
        }
    }
}

/// An HTTP/REST connector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpConnector {
    /// Base URL, e.g. `https://graph.microsoft.com/v1.0`.
    pub base_url: String,
    /// Authentication; secrets by reference only.
    #[serde(default)]
    pub auth: Auth,
    /// Query parameters added to every call, e.g. `api-version: 2023-10-31`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query: BTreeMap<String, String>,
    /// Headers added to every call (no secrets).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Most calls in flight at once through this connector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    /// Request rate limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// Timeout of one call, e.g. `30s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
    /// Retry policy, overriding the project default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
}

/// How an HTTP connector authenticates. Secrets come from the environment or files.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Auth {
    /// No authentication.
    #[default]
    None,
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// The token.
        token: SecretRef,
    },
    /// OAuth2 client credentials: a token is fetched, cached until expiry and refreshed once
    /// when the service answers 401.
    Oauth2 {
        /// Token endpoint URL.
        token_url: String,
        /// Client id (not secret).
        client_id: String,
        /// Client secret.
        client_secret: SecretRef,
        /// Scope, e.g. `https://graph.microsoft.com/.default`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scope: Option<String>,
    },
    /// An API key in a header.
    ApiKey {
        /// Header name, e.g. `Authorization` or `x-api-key`.
        header: String,
        /// The key.
        value: SecretRef,
    },
    /// HTTP basic auth.
    Basic {
        /// User name (not secret).
        username: String,
        /// Password.
        password: SecretRef,
    },
}

/// A secret, by reference: never a literal in a file kept in git.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum SecretRef {
    /// Name of an environment variable holding the secret.
    Env(String),
    /// Path of a file holding the secret (trailing newline trimmed), relative to `dsrctl.yaml`.
    File(String),
}

/// A URL given literally (without a password) or by reference to a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum UrlSource {
    /// A literal URL or path; must not contain a password.
    Literal(String),
    /// A URL taken from a secret (when it carries credentials).
    Secret(SecretRef),
}

/// A SQL database connector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlConnector {
    /// Connection URL: `postgres://`, `mysql://`, `mariadb://` or `sqlite:` (TLS as the URL asks).
    pub url: UrlSource,
    /// Most connections in the pool (default 4; at least 2 with `commit: service`, where a
    /// service's open transaction holds one and at most all but one are held so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    /// Statement timeout, e.g. `30s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
    /// Key for the `hmac` masking strategy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hmac_key: Option<SecretRef>,
    /// Create the SQLite database file when missing (demo projects).
    #[serde(default)]
    pub create_if_missing: bool,
    /// Retry policy for dropped connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
    /// When a service's SQL changes commit: `service` (default), all of a service's SQL
    /// mutations on this connector in one transaction, so a failure in any of them leaves the
    /// service as it was; `step`, each step in its own transaction (for erasures too large to
    /// hold in one), journaled step by step, so a failure leaves the earlier steps committed.
    #[serde(default, skip_serializing_if = "SqlCommit::is_default")]
    pub commit: SqlCommit,
}

/// When a service's SQL changes commit (see [`SqlConnector::commit`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SqlCommit {
    /// All of a service's SQL mutations on the connector commit together.
    #[default]
    Service,
    /// Each step commits on its own.
    Step,
}

impl SqlCommit {
    fn is_default(&self) -> bool {
        *self == SqlCommit::Service
    }
}

/// Tasks for humans.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ManualConnector {
    /// Default assignee (team or role).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    /// Values the instructions may use as `{{connector.<name>}}`, e.g. an app URL.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vars: BTreeMap<String, String>,
}

/// An SMTP relay that sends the messages of `email` steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailConnector {
    /// The relay's host name, e.g. `smtp.example.com`.
    pub host: String,
    /// The relay's port (default: 587 with `starttls`, 465 with `tls`, 25 with `none`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<u16>,
    /// How the connection is protected: `starttls` (default: the relay must offer STARTTLS,
    /// else nothing is sent), `tls` (TLS from the first byte) or `none` (only to a relay on
    /// this machine, as the message names the data subject).
    #[serde(default)]
    pub tls: EmailTls,
    /// A PEM file of the certificate authority that signed the relay's certificate, when it
    /// is not a public one (relative to `dsrctl.yaml`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// The user name for SMTP AUTH (not secret); with `password`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The password for SMTP AUTH.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretRef>,
    /// The sender, e.g. `Privacy team <privacy@example.com>`.
    pub from: String,
    /// Timeout of one send, e.g. `60s` (default 60 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
    /// Sending again a message the relay deferred (a 4xx reply, e.g. `451 try again later`)
    /// or that could not be handed over (no connection, TLS): at most `attempts`, with
    /// `backoff` doubled each time, within `max_elapsed` (defaults: 5, 200ms, 2m).
    /// `on_status` is not used. A message the relay may have taken (its answer never came)
    /// is never sent again, and one it refused for good (5xx) neither.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
}

/// How an email connector protects its connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EmailTls {
    /// Plain connection upgraded by STARTTLS, which the relay must offer.
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS, port 465).
    Tls,
    /// No encryption: only to a relay on this machine (`localhost`, `127.0.0.1`, `::1`).
    None,
}

impl EmailConnector {
    /// Whether the relay is on this machine (where an unencrypted connection is allowed).
    pub fn host_is_loopback(&self) -> bool {
        self.host.eq_ignore_ascii_case("localhost")
            || self
                .host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// The port, or the default of the TLS mode.
    pub fn port_or_default(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            EmailTls::Starttls => 587,
            EmailTls::Tls => 465,
            EmailTls::None => 25,
        })
    }
}

/// Requests per second allowed through a connector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Sustained requests per second.
    pub per_second: u32,
    /// Burst size (default: `per_second`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
}

/// Retries with exponential backoff and jitter; `Retry-After` is honoured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Most attempts, the first included.
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// First backoff, e.g. `200ms`; doubled each time, with jitter.
    #[serde(default = "default_backoff")]
    pub backoff: HumanDuration,
    /// Give up when retrying would pass this much total time, e.g. `2m`.
    #[serde(default = "default_max_elapsed")]
    pub max_elapsed: HumanDuration,
    /// Statuses that are retried (connection errors always are).
    #[serde(default = "default_retry_on")]
    pub on_status: Vec<u16>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: default_attempts(),
            backoff: default_backoff(),
            max_elapsed: default_max_elapsed(),
            on_status: default_retry_on(),
        }
    }
}

fn default_attempts() -> u32 {
    5
}
fn default_backoff() -> HumanDuration {
    HumanDuration::parse("200ms").expect("a valid default")
}
fn default_max_elapsed() -> HumanDuration {
    HumanDuration::parse("2m").expect("a valid default")
}
fn default_retry_on() -> Vec<u16> {
    vec![429, 502, 503, 504]
}

/// Execution defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// Connector calls in flight at once across all services.
    #[serde(default = "default_parallelism")]
    pub parallelism: u32,
    /// Most calls in flight per connector.
    #[serde(default = "default_connector_concurrency")]
    pub connector_concurrency: u32,
    /// Timeout of one call, e.g. `30s`.
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    /// Retry policy.
    #[serde(default)]
    pub retry: RetryPolicy,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            parallelism: default_parallelism(),
            connector_concurrency: default_connector_concurrency(),
            timeout: default_timeout(),
            retry: RetryPolicy::default(),
        }
    }
}

fn default_parallelism() -> u32 {
    10
}
fn default_connector_concurrency() -> u32 {
    4
}
fn default_timeout() -> HumanDuration {
    HumanDuration::parse("30s").expect("a valid default")
}

/// Rules for saved plans.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanPolicy {
    /// A saved plan older than this is refused by `apply`, e.g. `24h`.
    #[serde(default = "default_max_age")]
    pub max_age: HumanDuration,
    /// The key sealing saved plans (an HMAC-SHA-256 over each part, checked by `apply`):
    /// `{ env: NAME }` or `{ file: path }`. Without it a key is made on first use in
    /// `.dsrctl/plan.key`; set it when plans are made and applied on different machines, and
    /// keep it from those who may edit plan files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<SecretRef>,
}

impl ProjectConfig {
    /// Who does a manual step: the step's own `assignee`, else that of the manual connector
    /// the step goes through in the request's tenant.
    pub fn manual_assignee(
        &self,
        tenant: &str,
        connector: Option<&str>,
        step_assignee: Option<&str>,
    ) -> Option<String> {
        if let Some(a) = step_assignee {
            return Some(a.to_owned());
        }
        match self.tenants.get(tenant)?.connectors.get(connector?)? {
            ConnectorConfig::Manual(m) => m.assignee.clone(),
            _ => None,
        }
    }

    /// The controller answering a request of `tenant`: the tenant's, else the project's.
    pub fn controller_for(&self, tenant: &str) -> Option<&Controller> {
        self.tenants
            .get(tenant)
            .and_then(|t| t.controller.as_ref())
            .or(self.controller.as_ref())
    }
}

impl Default for PlanPolicy {
    fn default() -> Self {
        PlanPolicy {
            max_age: default_max_age(),
            key: None,
        }
    }
}

fn default_max_age() -> HumanDuration {
    HumanDuration::parse("24h").expect("a valid default")
}

/// Where an export package goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Destination {
    /// A local directory.
    Directory {
        /// Path, relative to `dsrctl.yaml`.
        path: String,
        /// Deliver a directory package as one zip file, `<path>/<request id>.zip`, instead
        /// of a directory (a package that is already a file is copied as it is).
        #[serde(default)]
        zip: bool,
    },
    /// An Azure Blob Storage container.
    AzureBlob {
        /// Blob endpoint, e.g. `https://acct.blob.core.windows.net` or Azurite's
        /// `http://127.0.0.1:10000/devstoreaccount1`.
        endpoint: String,
        /// Storage account name.
        account: String,
        /// Container name.
        container: String,
        /// Account key.
        key: SecretRef,
    },
    /// An S3 bucket.
    S3 {
        /// Bucket name.
        bucket: String,
        /// Region.
        region: String,
        /// Endpoint for S3-compatible stores.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        endpoint: Option<String>,
        /// Access key id.
        access_key_id: SecretRef,
        /// Secret access key.
        secret_access_key: SecretRef,
    },
}
