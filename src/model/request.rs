use std::collections::BTreeMap;

use chrono::{Days, Months, NaiveDate};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::DsrKind;

/// One data subject request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// Request id, unique in the project (e.g. `r-2026-0042`).
    pub id: String,
    /// What the subject asked for.
    pub kind: DsrKind,
    /// Tenant whose connectors serve the request; a request never reaches another tenant.
    #[serde(default)]
    pub tenant: String,
    /// The law the request is made under; decides the statutory deadline.
    #[serde(default)]
    pub jurisdiction: Jurisdiction,
    /// Date the request was received (`YYYY-MM-DD`); the deadline counts from it.
    #[serde(default = "today")]
    #[schemars(with = "String", transform = date_without_default)]
    pub received: NaiveDate,
    /// The subject's known identities, e.g. `email`, `object_id`, `device_ids` (a list).
    pub subject: BTreeMap<String, Identity>,
    /// For `rectify`: the corrected values, by field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrections: Option<serde_json::Map<String, serde_json::Value>>,
    /// Free-text note from intake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The subject's name as they gave it, for the letter's salutation (personal data: only
    /// the letter shows it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The language to answer in, e.g. `de` or `en-GB`: the letter uses the template of that
    /// language where one exists (built in: English and German), else English.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

/// A `date` string. The default is today's date, so the schema must not state it (the
/// committed schema would change every day).
fn date_without_default(schema: &mut schemars::Schema) {
    schema.remove("default");
    schema.insert("format".to_owned(), "date".into());
}

fn today() -> NaiveDate {
    chrono::Utc::now().date_naive()
}

/// A subject identity value: one string or several (e.g. device ids).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Identity {
    /// One value.
    One(String),
    /// Several values.
    Many(Vec<String>),
}

impl Identity {
    /// The values, one or many.
    pub fn values(&self) -> Vec<&str> {
        match self {
            Identity::One(v) => vec![v.as_str()],
            Identity::Many(vs) => vs.iter().map(String::as_str).collect(),
        }
    }
    /// As JSON for templates.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Identity::One(v) => serde_json::Value::String(v.clone()),
            Identity::Many(vs) => vs.iter().cloned().map(serde_json::Value::String).collect(),
        }
    }
}

/// The law a request is made under.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Jurisdiction {
    /// EU General Data Protection Regulation: one month, extendable by two further months.
    #[default]
    Gdpr,
    /// California Consumer Privacy Act: 45 days, extendable by 45 days.
    Ccpa,
}

impl Jurisdiction {
    /// The statutory deadline for a request received on `received`, with or without the
    /// extension. A month counts to the same day of the next month, or its last day when
    /// that month is shorter (31 January → 28/29 February).
    pub fn deadline(self, received: NaiveDate, extended: bool) -> NaiveDate {
        match (self, extended) {
            (Jurisdiction::Gdpr, false) => add_months(received, 1),
            (Jurisdiction::Gdpr, true) => add_months(received, 3),
            (Jurisdiction::Ccpa, false) => received + Days::new(45),
            (Jurisdiction::Ccpa, true) => received + Days::new(90),
        }
    }

    /// The name used in files.
    pub fn as_str(self) -> &'static str {
        match self {
            Jurisdiction::Gdpr => "gdpr",
            Jurisdiction::Ccpa => "ccpa",
        }
    }
}

fn add_months(date: NaiveDate, months: u32) -> NaiveDate {
    date.checked_add_months(Months::new(months))
        .expect("date within chrono's range")
}

impl Request {
    /// The statutory deadline.
    pub fn deadline(&self, extended: bool) -> NaiveDate {
        self.jurisdiction.deadline(self.received, extended)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn gdpr_month_clamps_to_month_end() {
        assert_eq!(
            Jurisdiction::Gdpr.deadline(d("2026-01-31"), false),
            d("2026-02-28")
        );
        assert_eq!(
            Jurisdiction::Gdpr.deadline(d("2028-01-31"), false),
            d("2028-02-29")
        );
        assert_eq!(
            Jurisdiction::Gdpr.deadline(d("2026-03-15"), false),
            d("2026-04-15")
        );
        assert_eq!(
            Jurisdiction::Gdpr.deadline(d("2026-11-30"), true),
            d("2027-02-28")
        );
    }

    #[test]
    fn ccpa_counts_days() {
        assert_eq!(
            Jurisdiction::Ccpa.deadline(d("2026-01-01"), false),
            d("2026-02-15")
        );
        assert_eq!(
            Jurisdiction::Ccpa.deadline(d("2028-02-01"), false),
            d("2028-03-17")
        );
        assert_eq!(
            Jurisdiction::Ccpa.deadline(d("2026-01-01"), true),
            d("2026-04-01")
        );
    }
}
