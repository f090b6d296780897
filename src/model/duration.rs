//! A duration as a person writes it (`30s`, `5m`, `1h 30m`, `30d`), parsed once when the file
//! is loaded: a value that is not a duration is a positioned error at load, never a zero
//! wait at run time.

use std::fmt;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The schema's pattern for a duration: numbers each followed by one of the parser's units.
/// Editors flag a wrong value as it is typed, and `validate` reports it at the value; the
/// parse at load then only refuses what no pattern can see (a number too large).
pub const DURATION_PATTERN: &str = concat!(
    r"^\s*([0-9]+\s*(nanos|nsec|ns|usec|us|µs|millis|msec|ms|seconds|second|secs|sec|s|",
    r"minutes|minute|mins|min|m|hours|hour|hrs|hr|h|days|day|d|weeks|week|wks|wk|w|",
    r"months|month|M|years|year|yrs|yr|y)\s*)+$"
);

/// A parsed duration that remembers how it was written (plans and reports show the text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HumanDuration {
    text: String,
    value: Duration,
}

impl HumanDuration {
    /// Parses `30s`, `5m`, `1h 30m`, `30d`, `200ms`; the message says what is valid.
    pub fn parse(text: &str) -> Result<HumanDuration, String> {
        let trimmed = text.trim();
        humantime::parse_duration(trimmed)
            .map(|value| HumanDuration {
                text: trimmed.to_owned(),
                value,
            })
            .map_err(|e| {
                format!("`{text}` is not a duration ({e}); write a number and a unit, e.g. 30s, 5m, 1h, 30d")
            })
    }

    /// The duration.
    pub fn get(&self) -> Duration {
        self.value
    }

    /// The duration for date arithmetic (saturating: no duration a file can state overflows).
    pub fn chrono(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.value).unwrap_or(chrono::Duration::MAX)
    }

    /// As written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for HumanDuration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        HumanDuration::parse(s)
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        HumanDuration::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for HumanDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A duration: a number and a unit, e.g. `30s`, `5m`, `1h 30m`, `30d` (units: ms, s, m, h, d, w).",
            "pattern": DURATION_PATTERN,
            "examples": ["30s", "5m", "1h", "30d"]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_keeps_the_text() {
        let d = HumanDuration::parse("1h 30m").unwrap();
        assert_eq!(d.get(), Duration::from_secs(5400));
        assert_eq!(d.to_string(), "1h 30m");
        assert_eq!(
            serde_json::to_value(&d).unwrap(),
            serde_json::json!("1h 30m")
        );
    }

    #[test]
    fn refuses_what_is_not_a_duration() {
        let err = HumanDuration::parse("a month or so").unwrap_err();
        assert!(err.contains("`a month or so` is not a duration"), "{err}");
        assert!(serde_json::from_value::<HumanDuration>(serde_json::json!("whenever")).is_err());
    }
}
