//! Device Provisioning Service: enrollments, groups, registration states.

use serde_json::{Value, json};

use crate::support::{DPS, Env, Resp};

fn dps_url(env: &Env, rest: &str) -> String {
    env.url("contoso", &format!("dps/{rest}?{DPS}"))
}

/// Runs a DPS query to the end; returns each page.
async fn query_all(env: &Env, rest: &str, query: &str, max: &str) -> Vec<Vec<Value>> {
    let mut pages = Vec::new();
    let mut continuation: Option<String> = None;
    loop {
        let mut headers = vec![("x-ms-max-item-count", max)];
        if let Some(c) = &continuation {
            headers.push(("x-ms-continuation", c.as_str()));
        }
        let r: Resp = env
            .post(&dps_url(env, rest), &json!({"query": query}), &headers)
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        pages.push(r.body.as_array().cloned().unwrap_or_default());
        continuation = r.header("x-ms-continuation").map(str::to_string);
        if continuation.is_none() {
            break;
        }
        assert!(pages.len() < 20);
    }
    pages
}

fn field(pages: &[Vec<Value>], name: &str) -> Vec<String> {
    pages
        .iter()
        .flatten()
        .map(|v| v[name].as_str().unwrap_or("").to_string())
        .collect()
}

#[tokio::test]
async fn enrollment_query_pages_with_x_ms_continuation() {
    let env = Env::new().await;
    let pages = query_all(&env, "enrollments/query", "*", "2").await;
    assert_eq!(pages.len(), 2);
    assert_eq!(
        field(&pages, "registrationId"),
        [
            "thermostat-alice-01",
            "thermostat-bob-01",
            "thermostat-carol-01"
        ]
    );
    let pages = query_all(
        &env,
        "enrollments/query",
        "SELECT * FROM enrollments WHERE initialTwin.tags.owner = 'alice@contoso.com'",
        "10",
    )
    .await;
    assert_eq!(field(&pages, "registrationId"), ["thermostat-alice-01"]);
    let pages = query_all(
        &env,
        "enrollmentGroups/query",
        "SELECT * FROM enrollmentGroups",
        "2",
    )
    .await;
    assert_eq!(pages.len(), 2);
    let pages = query_all(&env, "registrations/contoso-badges/query", "*", "2").await;
    assert_eq!(
        field(&pages, "registrationId"),
        ["badge-alice", "badge-bob", "badge-visitor-07"]
    );
}

#[tokio::test]
async fn errors_have_the_dps_shape() {
    let env = Env::new().await;
    let r = env.get(&dps_url(&env, "enrollments/nobody")).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["errorCode"].as_u64(), Some(404001));
    for key in ["trackingId", "message", "timestampUtc"] {
        assert!(r.body[key].is_string(), "{key} in {:?}", r.body);
    }
    assert!(r.header("x-ms-error-code").is_some());
    let r = env
        .get(&env.url("contoso", "dps/enrollments/thermostat-alice-01"))
        .await;
    assert_eq!(r.status, 400, "api-version is required");
    let r = env
        .post(
            &dps_url(&env, "enrollments/query"),
            &json!({"query": "SELECT * FROM devices"}),
            &[],
        )
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn deleting_an_enrollment_removes_its_registration_state() {
    let env = Env::new().await;
    let enrollment = dps_url(&env, "enrollments/thermostat-alice-01");
    let r = env.get(&enrollment).await;
    assert_eq!(r.str("/initialTwin/tags/owner"), "alice@contoso.com");
    let etag = r.str("/etag").to_string();
    assert_eq!(
        env.get(&dps_url(&env, "registrations/thermostat-alice-01"))
            .await
            .status,
        200
    );

    let r = env
        .call(
            reqwest::Method::DELETE,
            &enrollment,
            None,
            &[("if-match", "\"stale\"")],
        )
        .await;
    assert_eq!(r.status, 412);
    let r = env
        .call(
            reqwest::Method::DELETE,
            &enrollment,
            None,
            &[("if-match", &etag)],
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(env.get(&enrollment).await.status, 404);
    assert_eq!(
        env.get(&dps_url(&env, "registrations/thermostat-alice-01"))
            .await
            .status,
        404
    );
    assert_eq!(
        env.get(&dps_url(&env, "registrations/thermostat-bob-01"))
            .await
            .status,
        200
    );
    assert_eq!(
        env.get(&dps_url(&env, "registrations/badge-alice"))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn registration_states_and_groups_can_be_deleted() {
    let env = Env::new().await;
    assert_eq!(
        env.delete(&dps_url(&env, "registrations/badge-alice"))
            .await
            .status,
        204
    );
    assert_eq!(
        env.delete(&dps_url(&env, "registrations/badge-alice"))
            .await
            .status,
        404
    );
    let pages = query_all(&env, "registrations/contoso-badges/query", "*", "5").await;
    assert_eq!(
        field(&pages, "registrationId"),
        ["badge-bob", "badge-visitor-07"]
    );
    assert_eq!(
        env.delete(&dps_url(&env, "enrollmentGroups/contoso-badges"))
            .await
            .status,
        204
    );
    let snap = env.emu.snapshot("contoso");
    let regs: Vec<&str> = snap["dps"]["registrations"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["registrationId"].as_str())
        .collect();
    assert_eq!(
        regs,
        ["thermostat-alice-01", "thermostat-bob-01"],
        "group members go with the group"
    );
}

#[tokio::test]
async fn group_registration_query_needs_a_known_group() {
    let env = Env::new().await;
    let r = env
        .post(
            &dps_url(&env, "registrations/no-such-group/query"),
            &json!({"query": "*"}),
            &[],
        )
        .await;
    assert_eq!(r.status, 404);
    let r = env
        .post(
            &dps_url(&env, "enrollments/query"),
            &json!({"query": "*"}),
            &[("x-ms-continuation", "garbage")],
        )
        .await;
    assert_eq!(r.status, 400);
}
