//! IoT Central: users, roles, devices.

use dsrctl::emulator::Api;
use reqwest::Method;
use serde_json::json;

use crate::support::{Env, IOTC, all_pages, ids};

fn api(env: &Env, rest: &str) -> String {
    let sep = if rest.contains('?') { '&' } else { '?' };
    let base = env.emu.api_base("contoso", Api::IotCentral);
    format!("{base}/{rest}{sep}{IOTC}")
}

#[tokio::test]
async fn users_list_crosses_pages_and_has_no_filter() {
    let env = Env::new().await;
    let pages = all_pages(&env, &api(&env, "users"), "/nextLink").await;
    assert_eq!(pages.len(), 2);
    let emails: Vec<&str> = pages
        .iter()
        .flatten()
        .filter_map(|u| u["email"].as_str())
        .collect();
    assert_eq!(
        emails,
        ["alice@contoso.com", "bob@contoso.com", "carol@contoso.com"]
    );
    let r = env
        .get(&api(&env, "users?$filter=email eq 'alice@contoso.com'"))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        ids(
            &all_pages(&env, &api(&env, "roles"), "/nextLink").await,
            "id"
        )
        .len(),
        3
    );
}

#[tokio::test]
async fn user_get_patch_delete() {
    let env = Env::new().await;
    let url = api(&env, "users/user-alice");
    let r = env.get(&url).await;
    assert_eq!(
        r.body,
        json!({"id": "user-alice", "type": "email", "email": "alice@contoso.com",
        "roles": [{"role": "ae2c9854-393b-4f97-8c42-479d70ce626e"}]})
    );
    let r = env
        .call(
            Method::PATCH,
            &url,
            Some(&json!({"email": "alice.m@contoso.com"})),
            &[],
        )
        .await;
    assert_eq!((r.status, r.str("/email")), (200, "alice.m@contoso.com"));
    assert_eq!(env.delete(&url).await.status, 204);
    let r = env.get(&url).await;
    assert_eq!((r.status, r.str("/error/code")), (404, "NotFound"));
    assert!(!r.str("/error/requestId").is_empty() && !r.str("/error/time").is_empty());
}

#[tokio::test]
async fn devices_filter_by_owner_and_delete() {
    let env = Env::new().await;
    let r = env
        .get(&api(&env, "devices?$filter=owner eq 'alice@contoso.com'"))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["value"].as_array().map(Vec::len), Some(1));
    assert_eq!(r.str("/value/0/id"), "thermostat-alice-01");
    let all = all_pages(&env, &api(&env, "devices"), "/nextLink").await;
    assert_eq!(ids(&all, "id").len(), 3);
    assert_eq!(
        env.delete(&api(&env, "devices/thermostat-alice-01"))
            .await
            .status,
        204
    );
    assert_eq!(
        env.get(&api(&env, "devices/thermostat-alice-01"))
            .await
            .status,
        404
    );
    assert_eq!(
        env.get(&api(&env, "devices/lobby-display")).await.status,
        200
    );
}

#[tokio::test]
async fn api_version_is_checked() {
    let env = Env::new().await;
    let r = env.get(&env.url("contoso", "iotc/api/users")).await;
    assert_eq!(
        (r.status, r.str("/error/code")),
        (400, "MissingApiVersionParameter")
    );
    let r = env
        .get(&env.url("contoso", "iotc/api/users?api-version=1.0"))
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn put_creates_a_user() {
    let env = Env::new().await;
    let url = api(&env, "users/user-erin");
    let body = json!({"type": "email", "email": "erin@contoso.com", "roles": [{"role": "ae2c9854-393b-4f97-8c42-479d70ce626e"}]});
    let r = env.call(Method::PUT, &url, Some(&body), &[]).await;
    assert_eq!((r.status, r.str("/id")), (200, "user-erin"));
    assert_eq!(env.get(&url).await.str("/email"), "erin@contoso.com");
}
