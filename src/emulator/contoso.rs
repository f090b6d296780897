//! The built-in demo fixture: tenants `contoso` and `fabrikam`.
//!
//! `contoso` holds the data subject Alice Martin (alice@contoso.com) in every API, plus
//! people who must survive her deletion (Bob, Carol, Dan O'Brien, whose address has a
//! quote). `fabrikam` holds Frank and a guest account with Alice's email, to prove that a
//! request in one tenant never touches the other.

use serde_json::{Value, json};

use super::fixture::Fixture;

/// The demo fixture (a flat table of data).
pub(crate) fn fixture() -> Fixture {
    let value = json!({
        "settings": {},
        "tenants": {
            "contoso": contoso(),
            "fabrikam": fabrikam(),
        }
    });
    serde_json::from_value(value).unwrap_or_default()
}

const ADMIN: &str = "ca310b8d-2f4a-44e0-a36e-957c202cd8d4";
const BUILDER: &str = "344138e9-8de4-4497-8c54-5237e96d6aaf";
const OPERATOR: &str = "ae2c9854-393b-4f97-8c42-479d70ce626e";

fn roles() -> Value {
    json!([
        {"id": ADMIN, "displayName": "App Administrator"},
        {"id": BUILDER, "displayName": "App Builder"},
        {"id": OPERATOR, "displayName": "App Operator"}
    ])
}

fn graph_user(id: &str, upn: &str, mail: &str, name: (&str, &str), job: &str) -> Value {
    json!({
        "id": id,
        "userPrincipalName": upn,
        "mail": mail,
        "displayName": format!("{} {}", name.0, name.1),
        "givenName": name.0,
        "surname": name.1,
        "jobTitle": job,
        "businessPhones": [],
        "mobilePhone": null,
        "officeLocation": null,
        "preferredLanguage": "en-US",
        "department": "Facilities",
        "accountEnabled": true
    })
}

fn twin(id: &str, model: &str, props: Value) -> Value {
    let mut t = json!({"$dtId": id, "$metadata": {"$model": model}});
    if let (Some(t), Some(p)) = (t.as_object_mut(), props.as_object()) {
        t.extend(p.clone());
    }
    t
}

fn rel(id: &str, src: &str, name: &str, target: &str) -> Value {
    json!({"$relationshipId": id, "$sourceId": src, "$relationshipName": name, "$targetId": target})
}

fn enrollment(id: &str, owner: &str, owner_name: &str) -> Value {
    json!({
        "registrationId": id,
        "deviceId": id,
        "attestation": {"type": "symmetricKey", "symmetricKey": {"primaryKey": null, "secondaryKey": null}},
        "capabilities": {"iotEdge": false},
        "iotHubHostName": "contoso-hub.azure-devices.net",
        "initialTwin": {"tags": {"owner": owner, "ownerName": owner_name}, "properties": {"desired": {}}},
        "optionalDeviceInformation": {"contact": owner},
        "provisioningStatus": "enabled",
        "allocationPolicy": "hashed",
        "createdDateTimeUtc": "2025-03-01T09:00:00Z",
        "lastUpdatedDateTimeUtc": "2025-03-01T09:00:00Z"
    })
}

fn group(id: &str) -> Value {
    json!({
        "enrollmentGroupId": id,
        "attestation": {"type": "symmetricKey", "symmetricKey": {"primaryKey": null, "secondaryKey": null}},
        "provisioningStatus": "enabled",
        "allocationPolicy": "hashed",
        "initialTwin": {"tags": {"fleet": id}, "properties": {"desired": {}}},
        "createdDateTimeUtc": "2025-02-01T09:00:00Z",
        "lastUpdatedDateTimeUtc": "2025-02-01T09:00:00Z"
    })
}

fn registration(id: &str, group: Option<&str>, payload: Value) -> Value {
    let mut r = json!({
        "registrationId": id,
        "deviceId": id,
        "assignedHub": "contoso-hub.azure-devices.net",
        "status": "assigned",
        "substatus": "initialAssignment",
        "createdDateTimeUtc": "2025-03-02T10:00:00Z",
        "lastUpdatedDateTimeUtc": "2025-03-02T10:00:00Z",
        "payload": payload
    });
    if let (Some(g), Some(o)) = (group, r.as_object_mut()) {
        o.insert("enrollmentGroupId".into(), json!(g));
    }
    r
}

fn iotc_user(id: &str, email: &str, role: &str) -> Value {
    json!({"id": id, "type": "email", "email": email, "roles": [{"role": role}]})
}

fn device(id: &str, name: &str, owner: Option<&str>) -> Value {
    json!({
        "id": id, "etag": format!("\"{id}-1\""), "displayName": name,
        "template": "dtmi:contoso:Thermostat;1", "simulated": false, "provisioned": true,
        "enabled": true, "owner": owner
    })
}

fn contoso() -> Value {
    const PERSON: &str = "dtmi:contoso:Person;1";
    json!({
        "graph": {"users": [
            graph_user("user-alice", "alice@contoso.com", "alice@contoso.com", ("Alice", "Martin"), "Facilities engineer"),
            graph_user("user-bob", "bob@contoso.com", "bob@contoso.com", ("Bob", "Okafor"), "Facilities manager"),
            graph_user("user-carol", "carol@contoso.com", "carol@contoso.com", ("Carol", "Nguyen"), "Security officer"),
            graph_user("user-dan", "dan.obrien@contoso.com", "dan.o'brien@contoso.com", ("Dan", "O'Brien"), "Technician")
        ]},
        "digital_twins": {
            "twins": [
                twin("person-alice", PERSON, json!({"email": "alice@contoso.com", "displayName": "Alice Martin", "badgeId": "B-1001"})),
                twin("person-bob", PERSON, json!({"email": "bob@contoso.com", "displayName": "Bob Okafor", "badgeId": "B-1002"})),
                twin("thermostat-alice-01", "dtmi:contoso:Thermostat;1", json!({"ownerEmail": "alice@contoso.com", "setpoint": 21.5})),
                twin("room-101", "dtmi:contoso:Room;1", json!({"name": "Room 101"})),
                twin("team-facilities", "dtmi:contoso:Team;1", json!({"name": "Facilities"})),
                twin("floor-1", "dtmi:contoso:Floor;1", json!({"name": "Floor 1"}))
            ],
            "relationships": [
                rel("alice-owns-thermostat", "person-alice", "owns", "thermostat-alice-01"),
                rel("alice-located-in-room-101", "person-alice", "locatedIn", "room-101"),
                rel("alice-member-of-facilities", "person-alice", "memberOf", "team-facilities"),
                rel("room-101-occupied-by-alice", "room-101", "occupiedBy", "person-alice"),
                rel("bob-manages-alice", "person-bob", "manages", "person-alice"),
                rel("facilities-has-member-alice", "team-facilities", "hasMember", "person-alice"),
                rel("facilities-has-member-bob", "team-facilities", "hasMember", "person-bob"),
                rel("floor-1-contains-room-101", "floor-1", "contains", "room-101")
            ]
        },
        "dps": {
            "enrollments": [
                enrollment("thermostat-alice-01", "alice@contoso.com", "Alice Martin"),
                enrollment("thermostat-bob-01", "bob@contoso.com", "Bob Okafor"),
                enrollment("thermostat-carol-01", "carol@contoso.com", "Carol Nguyen")
            ],
            "enrollment_groups": [group("contoso-badges"), group("contoso-cameras"), group("contoso-sensors")],
            "registrations": [
                registration("thermostat-alice-01", None, json!({"ownerEmail": "alice@contoso.com"})),
                registration("thermostat-bob-01", None, json!({"ownerEmail": "bob@contoso.com"})),
                registration("badge-alice", Some("contoso-badges"), json!({"holderEmail": "alice@contoso.com"})),
                registration("badge-bob", Some("contoso-badges"), json!({"holderEmail": "bob@contoso.com"})),
                registration("badge-visitor-07", Some("contoso-badges"), json!({}))
            ]
        },
        "iot_central": {
            "users": [
                iotc_user("user-alice", "alice@contoso.com", OPERATOR),
                iotc_user("user-bob", "bob@contoso.com", ADMIN),
                iotc_user("user-carol", "carol@contoso.com", BUILDER),
                {"id": "sp-automation", "type": "servicePrincipal", "tenantId": "contoso-tenant",
                 "objectId": "sp-automation-object", "roles": [{"role": OPERATOR}]}
            ],
            "roles": roles(),
            "devices": [
                device("thermostat-alice-01", "Alice's thermostat", Some("alice@contoso.com")),
                device("thermostat-bob-01", "Bob's thermostat", Some("bob@contoso.com")),
                device("lobby-display", "Lobby display", None)
            ]
        }
    })
}

fn fabrikam() -> Value {
    json!({
        "graph": {"users": [
            graph_user("user-frank", "frank@fabrikam.com", "frank@fabrikam.com", ("Frank", "Weber"), "Plant manager"),
            graph_user("user-alice-guest", "alice_contoso.com#EXT#@fabrikam.onmicrosoft.com",
                "alice@contoso.com", ("Alice", "Martin"), "Guest")
        ]},
        "digital_twins": {
            "twins": [
                twin("person-frank", "dtmi:fabrikam:Person;1", json!({"email": "frank@fabrikam.com"})),
                twin("person-alice", "dtmi:fabrikam:Person;1", json!({"email": "alice@contoso.com"})),
                twin("room-b2", "dtmi:fabrikam:Room;1", json!({"name": "B2"}))
            ],
            "relationships": [rel("room-b2-occupied-by-frank", "room-b2", "occupiedBy", "person-frank")]
        },
        "dps": {
            "enrollments": [enrollment("sensor-frank-01", "frank@fabrikam.com", "Frank Weber")],
            "registrations": [registration("sensor-frank-01", None, json!({"ownerEmail": "frank@fabrikam.com"}))]
        },
        "iot_central": {
            "users": [
                iotc_user("user-frank", "frank@fabrikam.com", ADMIN),
                iotc_user("user-alice", "alice@contoso.com", OPERATOR)
            ],
            "roles": roles(),
            "devices": [device("sensor-frank-01", "Frank's sensor", Some("frank@fabrikam.com"))]
        }
    })
}
