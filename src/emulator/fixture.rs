//! The emulator's seed data: tenants, their objects in each API, and behaviour settings.
//!
//! A fixture is plain JSON (or YAML with the same shape). Objects are kept as JSON
//! values so that a fixture can carry any property the real services return.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Why a fixture cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    /// The text is not valid JSON/YAML for the fixture shape.
    #[error("fixture does not parse: {0}")]
    Parse(String),
    /// The file cannot be read.
    #[error("cannot read fixture {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The data is inconsistent (duplicate id, dangling reference, missing field).
    #[error("fixture is inconsistent: {0}")]
    Invalid(String),
}

/// Seed data for one emulator process: settings plus one state per tenant.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    /// Behaviour shared by all tenants.
    #[serde(default)]
    pub settings: Settings,
    /// Tenant name (the first path segment of every URL) to its data.
    #[serde(default)]
    pub tenants: BTreeMap<String, TenantFixture>,
}

/// Behaviour knobs of the emulator.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Items per page for every paginated list and query (small so tests cross pages).
    pub page_size: usize,
    /// Emulator clock at start; `None` means the wall clock at start.
    pub clock_start: Option<DateTime<Utc>>,
    /// When true the emulator clock also follows the wall clock; when false it only
    /// moves through `Emulator::advance_clock` (deterministic tests).
    pub realtime_clock: bool,
    /// Seconds of emulator clock a Graph personal-data export takes to complete (0: at once).
    pub export_duration_secs: u64,
    /// `Retry-After` seconds sent with the export's 202.
    pub export_retry_after_secs: u64,
    /// Days a soft-deleted Graph user stays in deleted items before it is purged.
    pub purge_after_days: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            page_size: 2,
            clock_start: None,
            realtime_clock: false,
            export_duration_secs: 0,
            export_retry_after_secs: 1,
            purge_after_days: 30,
        }
    }
}

/// One tenant's data in each emulated API.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TenantFixture {
    /// Microsoft Graph (Entra ID users).
    pub graph: GraphFixture,
    /// Azure Digital Twins.
    pub digital_twins: TwinsFixture,
    /// Device Provisioning Service.
    pub dps: DpsFixture,
    /// IoT Central.
    pub iot_central: IotCentralFixture,
}

/// Graph users; each needs `id` and `userPrincipalName`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GraphFixture {
    /// Active users.
    pub users: Vec<Map<String, Value>>,
}

/// Twins (each with `$dtId` and `$metadata.$model`) and relationships (each with
/// `$relationshipId`, `$sourceId`, `$targetId`, `$relationshipName`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TwinsFixture {
    /// Digital twins.
    pub twins: Vec<Map<String, Value>>,
    /// Relationships between twins.
    pub relationships: Vec<Map<String, Value>>,
}

/// DPS enrollments (`registrationId`), groups (`enrollmentGroupId`) and registration
/// states (`registrationId`, and `enrollmentGroupId` for group members).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DpsFixture {
    /// Individual enrollments.
    pub enrollments: Vec<Map<String, Value>>,
    /// Enrollment groups.
    pub enrollment_groups: Vec<Map<String, Value>>,
    /// Device registration states.
    pub registrations: Vec<Map<String, Value>>,
}

/// IoT Central users, roles and devices (each with `id`). A device's `owner` property
/// (the emulator's stand-in for a cloud property) holds the email of the person it
/// belongs to and can be filtered on with `$filter=owner eq '...'`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IotCentralFixture {
    /// Users (`type` `email`, `servicePrincipal` or `adGroup`).
    pub users: Vec<Map<String, Value>>,
    /// Roles (`id`, `displayName`).
    pub roles: Vec<Map<String, Value>>,
    /// Devices.
    pub devices: Vec<Map<String, Value>>,
}

impl Fixture {
    /// Built-in demo data: tenants `contoso` and `fabrikam` (see `contoso.rs`).
    pub fn contoso() -> Fixture {
        super::contoso::fixture()
    }

    /// Parses and checks a JSON fixture.
    pub fn from_json(text: &str) -> Result<Fixture, FixtureError> {
        let fixture: Fixture =
            serde_json::from_str(text).map_err(|e| FixtureError::Parse(e.to_string()))?;
        fixture.check()?;
        Ok(fixture)
    }

    /// Reads a fixture file: YAML when it ends in `.yaml`/`.yml`, JSON otherwise.
    pub fn load(path: &std::path::Path) -> Result<Fixture, FixtureError> {
        let text = std::fs::read_to_string(path).map_err(|source| FixtureError::Io {
            path: path.display().to_string(),
            source,
        })?;
        match path.extension().and_then(|e| e.to_str()) {
            Some("yaml" | "yml") => Fixture::from_yaml(&text),
            _ => Fixture::from_json(&text),
        }
    }

    /// Parses and checks a YAML fixture (same shape as JSON).
    pub fn from_yaml(text: &str) -> Result<Fixture, FixtureError> {
        let value = super::yaml::to_json(text).map_err(FixtureError::Parse)?;
        let fixture: Fixture =
            serde_json::from_value(value).map_err(|e| FixtureError::Parse(e.to_string()))?;
        fixture.check()?;
        Ok(fixture)
    }

    /// The fixture as pretty JSON (e.g. to start a custom fixture from the demo one).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Checks ids are present and unique and references resolve; all problems at once.
    pub fn check(&self) -> Result<(), FixtureError> {
        let mut problems = Vec::new();
        if self.settings.page_size == 0 {
            problems.push("settings.page_size must be at least 1".to_string());
        }
        for (name, t) in &self.tenants {
            if name.is_empty() || name.contains('/') {
                problems.push(format!("tenant name `{name}` must be one path segment"));
            }
            let mut ids = |what: &str, items: &[Map<String, Value>], key: &str| {
                let mut seen = BTreeSet::new();
                for (i, item) in items.iter().enumerate() {
                    match item.get(key).and_then(Value::as_str) {
                        None => problems.push(format!("{name}: {what}[{i}] has no string `{key}`")),
                        Some(id) if !seen.insert(id.to_string()) => {
                            problems.push(format!("{name}: {what} `{id}` appears twice"))
                        }
                        Some(_) => {}
                    }
                }
                seen
            };
            ids("graph.users", &t.graph.users, "id");
            ids("graph.users", &t.graph.users, "userPrincipalName");
            let twins = ids("digital_twins.twins", &t.digital_twins.twins, "$dtId");
            ids("dps.enrollments", &t.dps.enrollments, "registrationId");
            ids(
                "dps.enrollment_groups",
                &t.dps.enrollment_groups,
                "enrollmentGroupId",
            );
            ids("dps.registrations", &t.dps.registrations, "registrationId");
            ids("iot_central.users", &t.iot_central.users, "id");
            ids("iot_central.roles", &t.iot_central.roles, "id");
            ids("iot_central.devices", &t.iot_central.devices, "id");
            let mut rel_keys = BTreeSet::new();
            for rel in &t.digital_twins.relationships {
                let src = rel.get("$sourceId").and_then(Value::as_str).unwrap_or("");
                match rel.get("$relationshipId").and_then(Value::as_str) {
                    None => {
                        problems.push(format!("{name}: a relationship has no `$relationshipId`"))
                    }
                    // Relationship ids are unique per source twin, as in the service.
                    Some(id) if !rel_keys.insert((src, id)) => problems.push(format!(
                        "{name}: relationship `{id}` of `{src}` appears twice"
                    )),
                    Some(_) => {}
                }
                for end in ["$sourceId", "$targetId"] {
                    let id = rel.get(end).and_then(Value::as_str).unwrap_or("");
                    if !twins.contains(id) {
                        problems.push(format!("{name}: relationship {end} `{id}` is not a twin"));
                    }
                }
                if rel
                    .get("$relationshipName")
                    .and_then(Value::as_str)
                    .is_none()
                {
                    problems.push(format!("{name}: a relationship has no `$relationshipName`"));
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(FixtureError::Invalid(problems.join("; ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_fixture_is_consistent_and_round_trips() {
        let f = Fixture::contoso();
        assert_eq!(
            f.tenants.keys().collect::<Vec<_>>(),
            ["contoso", "fabrikam"]
        );
        f.check().expect("consistent");
        let again = Fixture::from_json(&f.to_json()).expect("round trip");
        assert_eq!(again.tenants["contoso"].graph.users.len(), 4);
    }

    #[test]
    fn yaml_fixture_and_problems_collected() {
        let f = Fixture::from_yaml(
            "settings: {page_size: 5}\ntenants:\n  t1:\n    graph:\n      users:\n        - {id: u1, userPrincipalName: a@x.com}\n",
        )
        .expect("yaml parses");
        assert_eq!(f.settings.page_size, 5);
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("demo.json");
        std::fs::write(&path, Fixture::contoso().to_json()).expect("write");
        assert_eq!(Fixture::load(&path).expect("loads").tenants.len(), 2);
        assert!(matches!(
            Fixture::load(&dir.path().join("none.yaml")),
            Err(FixtureError::Io { .. })
        ));
        let err = Fixture::from_json(
            r#"{"tenants": {"t": {"graph": {"users": [{"id": "u"}, {"id": "u", "userPrincipalName": "x"}]},
                "digital_twins": {"relationships": [{"$relationshipId": "r", "$sourceId": "a", "$targetId": "b", "$relationshipName": "n"}]}}}}"#,
        )
        .expect_err("inconsistent");
        let msg = err.to_string();
        assert!(
            msg.contains("appears twice") && msg.contains("is not a twin"),
            "{msg}"
        );
    }
}
