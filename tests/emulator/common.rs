//! Tenants, credentials, fault injection and the call log.

use dsrctl::emulator::{Api, Fault};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{ADT, Env};

#[tokio::test]
async fn unknown_tenant_is_404() {
    let env = Env::new().await;
    let r = env.get(&env.url("initech", "graph/v1.0/users")).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.str("/error/code"), "TenantNotFound");
    let r = env.get(&env.url("contoso", "nosuchapi/users")).await;
    assert_eq!(r.status, 404);
    assert_eq!(env.emu.snapshot("initech"), Value::Null);
}

#[tokio::test]
async fn tenants_are_isolated() {
    let env = Env::new().await;
    // Both tenants have someone with alice@contoso.com; deleting in contoso leaves fabrikam alone.
    let find = |t: &str| {
        env.url(
            t,
            "graph/v1.0/users?$filter=mail eq 'alice@contoso.com'&$select=id",
        )
    };
    assert_eq!(
        env.get(&find("fabrikam")).await.str("/value/0/id"),
        "user-alice-guest"
    );
    assert_eq!(
        env.delete(&env.url("contoso", "graph/v1.0/users/user-alice"))
            .await
            .status,
        204
    );
    assert_eq!(env.get(&find("contoso")).await.body["value"], json!([]));
    assert_eq!(
        env.get(&find("fabrikam")).await.str("/value/0/id"),
        "user-alice-guest"
    );
    // Same twin id in both tenants.
    let twin = |t: &str| env.url(t, &format!("adt/digitaltwins/person-alice?{ADT}"));
    assert_eq!(
        env.get(&twin("contoso")).await.str("/$metadata/$model"),
        "dtmi:contoso:Person;1"
    );
    assert_eq!(env.delete(&twin("fabrikam")).await.status, 204);
    assert_eq!(env.get(&twin("contoso")).await.status, 200);
    let calls = env.emu.calls();
    assert!(
        calls
            .iter()
            .filter(|c| c.tenant == "fabrikam")
            .all(|c| !c.path.contains("user-alice"))
    );
}

#[tokio::test]
async fn bearer_token_is_required_and_tokens_are_per_tenant() {
    let env = Env::new().await;
    let url = env.url("contoso", "graph/v1.0/users/user-alice");
    let r = env.client().get(&url).send().await.expect("answered");
    assert_eq!(r.status().as_u16(), 401);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
    let r = env
        .client()
        .get(&url)
        .header("authorization", "Bearer ")
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status().as_u16(), 401);

    let token = |tenant: &str| {
        let url = env.url(tenant, "oauth2/v2.0/token");
        let client = env.client().clone();
        async move {
            let r = client
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body("grant_type=client_credentials&client_id=app&client_secret=s3cret&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default")
                .send()
                .await
                .expect("answered");
            assert_eq!(r.status().as_u16(), 200);
            let body: Value = r.json().await.expect("json");
            assert_eq!(
                (body["expires_in"].as_u64(), body["token_type"].as_str()),
                (Some(3600), Some("Bearer"))
            );
            body["access_token"].as_str().unwrap_or("").to_string()
        }
    };
    let contoso = token("contoso").await;
    let fabrikam = token("fabrikam").await;
    let r = env
        .client()
        .get(&url)
        .bearer_auth(&contoso)
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status().as_u16(), 200);
    let r = env
        .client()
        .get(&url)
        .bearer_auth(&fabrikam)
        .send()
        .await
        .expect("answered");
    assert_eq!(
        r.status().as_u16(),
        401,
        "a fabrikam token does not open contoso"
    );

    let r = env
        .client()
        .post(env.url("contoso", "oauth2/token"))
        .body("grant_type=password")
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status().as_u16(), 400);
    let calls = env.emu.calls();
    assert!(!calls[0].authorized && calls.iter().any(|c| c.authorized));
}

#[tokio::test]
async fn throttling_fault_applies_n_times_with_retry_after() {
    let env = Env::new().await;
    env.emu
        .set_fault(Fault::new(Some(Api::Graph), 429, 2).retry_after(7));
    let url = env.url("contoso", "graph/v1.0/users/user-alice");
    for _ in 0..2 {
        let r = env.get(&url).await;
        assert_eq!((r.status, r.header("retry-after")), (429, Some("7")));
        assert_eq!(r.str("/error/code"), "TooManyRequests");
    }
    assert_eq!(env.get(&url).await.status, 200);
    let faulted: Vec<bool> = env.emu.calls().iter().map(|c| c.faulted).collect();
    assert_eq!(faulted, [true, true, false]);
}

#[tokio::test]
async fn unavailable_fault_matches_method_and_path_only() {
    let env = Env::new().await;
    env.emu.set_fault(
        Fault::new(Some(Api::DigitalTwins), 503, 1)
            .method(Method::DELETE)
            .path_contains("/relationships/"),
    );
    let rel = env.url(
        "contoso",
        &format!("adt/digitaltwins/floor-1/relationships/floor-1-contains-room-101?{ADT}"),
    );
    assert_eq!(
        env.get(&rel).await.status,
        200,
        "GET does not match the fault"
    );
    let r = env.delete(&rel).await;
    assert_eq!(
        (r.status, r.str("/error/code")),
        (503, "ServiceUnavailable")
    );
    assert_eq!(r.header("retry-after"), None);
    assert_eq!(env.delete(&rel).await.status, 204, "the fault is used up");
    env.emu.set_fault(Fault::new(None, 429, 5));
    env.emu.clear_faults();
    assert_eq!(env.get(&rel).await.status, 404);
}

#[tokio::test]
async fn call_log_tells_reads_from_mutations() {
    let env = Env::new().await;
    env.get(&env.url("contoso", "graph/v1.0/users")).await;
    env.post(
        &env.url("contoso", &format!("adt/query?{ADT}")),
        &json!({"query": "SELECT * FROM DIGITALTWINS"}),
        &[],
    )
    .await;
    env.post(
        &env.url("contoso", "dps/enrollments/query?api-version=2021-10-01"),
        &json!({"query": "*"}),
        &[],
    )
    .await;
    assert!(
        env.emu.calls().iter().all(|c| !c.is_mutation()),
        "{:?}",
        env.emu.calls()
    );
    env.delete(&env.url("contoso", "graph/v1.0/users/user-bob"))
        .await;
    let calls = env.emu.calls();
    let last = calls.last().expect("a call");
    assert!(last.is_mutation());
    assert_eq!(
        (last.tenant.as_str(), last.api, last.status),
        ("contoso", Some(Api::Graph), 204)
    );
    assert_eq!(calls[0].query, "");
    env.emu.clear_calls();
    assert!(env.emu.calls().is_empty());
}

#[tokio::test]
async fn shutdown_stops_the_server() {
    let env = Env::new().await;
    let url = env.url("contoso", "graph/v1.0/users");
    assert_eq!(env.get(&url).await.status, 200);
    let crate::support::Env { emu, .. } = env;
    emu.shutdown().await;
    let fresh = reqwest::Client::new();
    assert!(fresh.get(&url).send().await.is_err());
}

#[tokio::test]
async fn faults_use_each_api_error_shape() {
    let env = Env::new().await;
    env.emu.set_fault(Fault::new(None, 429, 3).retry_after(2));
    let r = env
        .post(
            &env.url("contoso", &format!("adt/query?{ADT}")),
            &json!({"query": "SELECT * FROM DIGITALTWINS"}),
            &[],
        )
        .await;
    assert_eq!((r.status, r.str("/error/code")), (429, "QuotaReachedError"));
    let r = env
        .get(&env.url("contoso", "dps/enrollments/x?api-version=2021-10-01"))
        .await;
    assert_eq!(
        (r.status, r.body["errorCode"].as_u64()),
        (429, Some(429001))
    );
    let r = env
        .get(&env.url("contoso", "iotc/api/users?api-version=2022-07-31"))
        .await;
    assert_eq!(
        (r.status, r.str("/error/code"), r.header("retry-after")),
        (429, "TooManyRequests", Some("2"))
    );
}

#[tokio::test]
async fn yaml_fixture_serves_its_tenant_and_bodies_are_recorded() {
    let fixture = dsrctl::emulator::Fixture::from_yaml(
        "tenants:\n  acme:\n    iot_central:\n      users:\n        - {id: u1, type: email, email: \"o'hara@acme.test\", roles: []}\n",
    )
    .expect("fixture");
    let env = Env::with(fixture).await;
    let url = env.url("acme", "iotc/api/users/u1?api-version=2022-07-31");
    assert_eq!(env.get(&url).await.str("/email"), "o'hara@acme.test");
    env.call(
        Method::PATCH,
        &url,
        Some(&json!({"email": "x@acme.test"})),
        &[],
    )
    .await;
    let calls = env.emu.calls();
    assert_eq!(
        calls.last().map(|c| c.body.as_str()),
        Some(r#"{"email":"x@acme.test"}"#)
    );
    assert_eq!(
        env.emu.snapshot("acme")["iotCentral"]["users"][0]["email"],
        "x@acme.test"
    );
}
