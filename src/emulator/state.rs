//! In-memory state of every tenant, the emulator clock and the call log.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::faults::{Fault, RecordedCall};
use super::fixture::{Fixture, Settings, TenantFixture};

/// A JSON object as stored by the emulator.
pub(crate) type Object = Map<String, Value>;

/// Everything the server shares between requests, behind one lock.
pub(crate) struct Shared {
    inner: Mutex<Inner>,
}

/// The locked part of [`Shared`].
pub(crate) struct Inner {
    pub settings: Settings,
    pub tenants: BTreeMap<String, TenantState>,
    pub clock: Clock,
    pub calls: Vec<RecordedCall>,
    pub faults: Vec<Fault>,
    /// Source of unique numbers (etags, operation ids, tokens).
    pub counter: u64,
    /// `http://ADDR`, for links when a request has no `Host` header.
    pub origin: String,
}

impl Shared {
    pub(crate) fn new(fixture: Fixture, origin: String) -> Shared {
        let clock = Clock {
            start: fixture.settings.clock_start.unwrap_or_else(Utc::now),
            offset: chrono::Duration::zero(),
            realtime_since: fixture.settings.realtime_clock.then(Instant::now),
        };
        let mut inner = Inner {
            settings: fixture.settings,
            tenants: BTreeMap::new(),
            clock,
            calls: Vec::new(),
            faults: Vec::new(),
            counter: 0,
            origin,
        };
        for (name, t) in fixture.tenants {
            let state = TenantState::seed(t, &mut inner);
            inner.tenants.insert(name, state);
        }
        Shared {
            inner: Mutex::new(inner),
        }
    }

    /// Locks the state; a panic in another request must not wedge the emulator.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Inner {
    /// The next unique number.
    pub(crate) fn next(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    /// A fresh weak ETag, GUID-shaped like the services'.
    pub(crate) fn etag(&mut self) -> String {
        let n = self.next();
        format!("W/\"{:08x}-0000-4000-8000-{n:012x}\"", n)
    }

    /// Current emulator time.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Applies time-driven changes (purge of deleted Graph users) to every tenant.
    pub(crate) fn tick(&mut self) {
        let now = self.now();
        let keep = chrono::Duration::days(self.settings.purge_after_days as i64);
        for t in self.tenants.values_mut() {
            t.graph.deleted.retain(|_, d| d.deleted_at + keep > now);
        }
    }
}

/// The emulator clock: a start instant moved by `advance_clock` and, optionally,
/// by the wall clock.
pub(crate) struct Clock {
    pub start: DateTime<Utc>,
    pub offset: chrono::Duration,
    pub realtime_since: Option<Instant>,
}

impl Clock {
    fn now(&self) -> DateTime<Utc> {
        let real = self
            .realtime_since
            .and_then(|i| chrono::Duration::from_std(i.elapsed()).ok())
            .unwrap_or_else(chrono::Duration::zero);
        self.start + self.offset + real
    }
}

/// One tenant's state in each API.
#[derive(Default)]
pub(crate) struct TenantState {
    pub graph: GraphState,
    pub twins: TwinsState,
    pub dps: DpsState,
    pub iotc: IotcState,
}

/// Graph users, deleted items and export operations.
#[derive(Default)]
pub(crate) struct GraphState {
    pub users: BTreeMap<String, Object>,
    pub deleted: BTreeMap<String, DeletedUser>,
    pub operations: BTreeMap<String, ExportOperation>,
}

/// A soft-deleted Graph user.
pub(crate) struct DeletedUser {
    pub user: Object,
    pub deleted_at: DateTime<Utc>,
}

/// A personal-data export started by `exportPersonalData`.
#[derive(Serialize)]
pub(crate) struct ExportOperation {
    pub id: String,
    pub user_id: String,
    pub storage_location: String,
    pub submitted: DateTime<Utc>,
}

/// Twins (with their current ETag) and relationships keyed by (source, relationship id).
#[derive(Default)]
pub(crate) struct TwinsState {
    pub twins: BTreeMap<String, Object>,
    pub relationships: BTreeMap<(String, String), Object>,
}

/// DPS enrollments, groups and registration states.
#[derive(Default)]
pub(crate) struct DpsState {
    pub enrollments: BTreeMap<String, Object>,
    pub groups: BTreeMap<String, Object>,
    pub registrations: BTreeMap<String, Object>,
}

/// IoT Central users, roles and devices.
#[derive(Default)]
pub(crate) struct IotcState {
    pub users: BTreeMap<String, Object>,
    pub roles: BTreeMap<String, Object>,
    pub devices: BTreeMap<String, Object>,
}

fn str_of(o: &Object, key: &str) -> String {
    o.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

impl TenantState {
    fn seed(f: TenantFixture, inner: &mut Inner) -> TenantState {
        let mut t = TenantState::default();
        for u in f.graph.users {
            t.graph.users.insert(str_of(&u, "id"), u);
        }
        let now = inner
            .now()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        for given in f.digital_twins.twins {
            // `$dtId`, `$etag` first, as the service orders them.
            let mut twin = Object::new();
            twin.insert("$dtId".into(), json!(str_of(&given, "$dtId")));
            twin.insert("$etag".into(), Value::String(inner.etag()));
            twin.extend(given.into_iter().filter(|(k, _)| k != "$etag"));
            let meta = twin.entry("$metadata").or_insert_with(|| json!({}));
            if let Some(m) = meta.as_object_mut() {
                m.entry("$lastUpdateTime").or_insert_with(|| json!(now));
            }
            t.twins.twins.insert(str_of(&twin, "$dtId"), twin);
        }
        for mut rel in f.digital_twins.relationships {
            rel.insert("$etag".into(), Value::String(inner.etag()));
            let key = (str_of(&rel, "$sourceId"), str_of(&rel, "$relationshipId"));
            t.twins.relationships.insert(key, rel);
        }
        let dps_etag = |inner: &mut Inner, mut o: Object| {
            let n = inner.next();
            o.entry("etag")
                .or_insert_with(|| json!(format!("\"{n:08x}-0000-0000\"")));
            o
        };
        for e in f.dps.enrollments {
            let e = dps_etag(inner, e);
            t.dps.enrollments.insert(str_of(&e, "registrationId"), e);
        }
        for g in f.dps.enrollment_groups {
            let g = dps_etag(inner, g);
            t.dps.groups.insert(str_of(&g, "enrollmentGroupId"), g);
        }
        for r in f.dps.registrations {
            let r = dps_etag(inner, r);
            t.dps.registrations.insert(str_of(&r, "registrationId"), r);
        }
        for u in f.iot_central.users {
            t.iotc.users.insert(str_of(&u, "id"), u);
        }
        for r in f.iot_central.roles {
            t.iotc.roles.insert(str_of(&r, "id"), r);
        }
        for d in f.iot_central.devices {
            t.iotc.devices.insert(str_of(&d, "id"), d);
        }
        t
    }

    /// A JSON dump of the whole tenant for test assertions.
    pub(crate) fn snapshot(&self, now: DateTime<Utc>, export_secs: u64) -> Value {
        let vals = |m: &BTreeMap<String, Object>| m.values().cloned().collect::<Vec<_>>();
        let deleted: Vec<Value> = self
            .graph
            .deleted
            .values()
            .map(super::graph::deleted_view)
            .collect();
        let operations: Vec<Value> = self
            .graph
            .operations
            .values()
            .map(|op| super::data_policy::operation_view(op, now, export_secs))
            .collect();
        json!({
            "graph": {
                "users": vals(&self.graph.users),
                "deletedItems": deleted,
                "dataPolicyOperations": operations,
            },
            "digitalTwins": {
                "twins": vals(&self.twins.twins),
                "relationships": self.twins.relationships.values().cloned().collect::<Vec<_>>(),
            },
            "dps": {
                "enrollments": vals(&self.dps.enrollments),
                "enrollmentGroups": vals(&self.dps.groups),
                "registrations": vals(&self.dps.registrations),
            },
            "iotCentral": {
                "users": vals(&self.iotc.users),
                "roles": vals(&self.iotc.roles),
                "devices": vals(&self.iotc.devices),
            },
        })
    }
}
