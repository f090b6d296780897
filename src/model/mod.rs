//! The documented types users write: playbooks, requests and the project config.
//!
//! Every field carries a doc comment; `dsrctl schema` turns these types into the
//! JSON Schemas under `schemas/`, so the comments are what editors show.

mod action;
mod config;
mod dataset;
mod drp;
mod duration;
mod kind;
mod playbook;
mod request;
mod step;

pub use action::{
    EmailAction, EmailAttachment, HttpAction, HttpMethod, ManualAction, MaskStrategy, Paginate,
    SetValue, SqlAction, SqlDelete, SqlMatch, SqlSelect, SqlThrough, SqlUpdate, SqlValue,
    WaitAction,
};
pub use config::{
    ApiConfig, ApiRole, ApiTls, ApiToken, Auth, ConnectorConfig, Controller, Defaults, Destination,
    EmailConnector, EmailTls, EvidenceKeys, HttpConnector, ManualConnector, PlanPolicy,
    ProjectConfig, RateLimit, RetryPolicy, SecretRef, SqlCommit, SqlConnector, Tenant, UrlSource,
};
pub use dataset::{
    ColumnEntry, DEFAULT_DATASET_MAX_ROWS, Dataset, DatasetColumn, DatasetTable, ErasureMode,
    KeepRows, Reference, ReferenceEntry, SharedRows, TableErasure, split_column_ref,
};
pub use drp::{DrpAgent, DrpConfig};
pub use duration::{DURATION_PATTERN, HumanDuration};
pub use kind::DsrKind;
pub use playbook::{
    DataCategory, DsrSteps, KindSpec, Playbook, PlaybookTest, Processing, RecordedResponse, Reuse,
    Unsupported,
};
pub use request::{Identity, Jurisdiction, Request};
pub use step::{Expect, Poll, Preview, Select, Step, Verify};

/// Names a template may not use as a step id, because they are top-level template variables.
pub const RESERVED_NAMES: &[&str] = &["subject", "request", "item", "connector", "steps", "now"];
