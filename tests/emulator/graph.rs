//! Microsoft Graph users, deleted items and personal-data export.

use std::time::Duration;

use dsrctl::emulator::Fixture;
use reqwest::Method;
use serde_json::json;

use crate::support::{Env, all_pages, ids};

const DAY: Duration = Duration::from_secs(24 * 3600);

#[tokio::test]
async fn get_user_by_id_or_upn_with_select() {
    let env = Env::new().await;
    let r = env
        .get(&env.url("contoso", "graph/v1.0/users/user-alice"))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.str("/mail"), "alice@contoso.com");
    // Default property set: `department` is only returned when selected.
    assert!(r.body.get("department").is_none());
    let r = env
        .get(&env.url(
            "contoso",
            "graph/v1.0/users/ALICE%40contoso.com?$select=id,department",
        ))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        json!({"id": "user-alice", "department": "Facilities"})
    );
}

#[tokio::test]
async fn missing_user_is_404_with_graph_error_shape() {
    let env = Env::new().await;
    let r = env
        .get(&env.url("contoso", "graph/v1.0/users/nobody"))
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.str("/error/code"), "Request_ResourceNotFound");
    assert!(!r.str("/error/innerError/request-id").is_empty());
    assert!(!r.str("/error/innerError/date").is_empty());
}

#[tokio::test]
async fn filter_literal_with_doubled_quote_finds_the_user() {
    let env = Env::new().await;
    let url = env.url(
        "contoso",
        "graph/v1.0/users?$filter=mail%20eq%20'dan.o''brien@contoso.com'",
    );
    let r = env.get(&url).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        ids(
            &[r.body["value"].as_array().cloned().unwrap_or_default()],
            "id"
        ),
        ["user-dan"]
    );
    // Case-insensitive like Graph, and no match is an empty collection.
    let r = env
        .get(&env.url(
            "contoso",
            "graph/v1.0/users?$filter=mail eq 'ALICE@contoso.com'",
        ))
        .await;
    assert_eq!(r.body["value"][0]["id"], "user-alice");
    let r = env
        .get(&env.url("contoso", "graph/v1.0/users?$filter=mail eq 'x@y.z'"))
        .await;
    assert_eq!(r.body["value"], json!([]));
}

#[tokio::test]
async fn malformed_filters_are_400() {
    let env = Env::new().await;
    // A single quote left undoubled ends the literal early; an open literal never ends.
    for filter in [
        "mail eq 'dan.o'brien@contoso.com'",
        "mail eq 'open",
        "mail eq",
        "mail lt 'x'",
    ] {
        let url = env.url(
            "contoso",
            &format!("graph/v1.0/users?$filter={}", filter.replace(' ', "%20")),
        );
        let r = env.get(&url).await;
        assert_eq!(r.status, 400, "{filter}");
        assert_eq!(r.str("/error/code"), "BadRequest");
    }
}

#[tokio::test]
async fn user_list_crosses_pages_with_next_link() {
    let env = Env::new().await;
    let pages = all_pages(
        &env,
        &env.url("contoso", "graph/v1.0/users"),
        "/@odata.nextLink",
    )
    .await;
    assert_eq!(pages.len(), 2);
    assert_eq!(
        ids(&pages, "id"),
        ["user-alice", "user-bob", "user-carol", "user-dan"]
    );
    let pages = all_pages(
        &env,
        &env.url("contoso", "graph/v1.0/users?$top=1&$select=id"),
        "/@odata.nextLink",
    )
    .await;
    assert_eq!(pages.len(), 4);
    assert_eq!(pages[3][0], json!({"id": "user-dan"}));
    let r = env
        .get(&env.url("contoso", "graph/v1.0/users?$top=1000"))
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn patch_updates_the_user() {
    let env = Env::new().await;
    let url = env.url("contoso", "graph/v1.0/users/user-alice");
    let r = env
        .call(
            Method::PATCH,
            &url,
            Some(&json!({"jobTitle": "Lead engineer"})),
            &[],
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(env.get(&url).await.str("/jobTitle"), "Lead engineer");
    let r = env
        .call(Method::PATCH, &url, Some(&json!({"id": "x"})), &[])
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn soft_delete_then_permanent_delete() {
    let env = Env::new().await;
    let user = env.url("contoso", "graph/v1.0/users/user-alice");
    assert_eq!(env.delete(&user).await.status, 204);
    assert_eq!(env.get(&user).await.status, 404);
    assert_eq!(env.delete(&user).await.status, 404);

    let r = env
        .get(&env.url("contoso", "graph/v1.0/directory/deletedItems"))
        .await;
    assert_eq!(r.status, 400, "the type cast is required");
    let r = env
        .get(&env.url(
            "contoso",
            "graph/v1.0/directory/deletedItems/microsoft.graph.user",
        ))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["value"][0]["id"], "user-alice");
    assert!(!r.str("/value/0/deletedDateTime").is_empty());

    let deleted = env.url("contoso", "graph/v1.0/directory/deletedItems/user-alice");
    let r = env.get(&deleted).await;
    assert_eq!(
        (r.status, r.str("/@odata.type")),
        (200, "#microsoft.graph.user")
    );
    assert_eq!(env.delete(&deleted).await.status, 204);
    assert_eq!(env.get(&deleted).await.status, 404);
    let snap = env.emu.snapshot("contoso");
    assert_eq!(snap["graph"]["deletedItems"], json!([]));
    assert_eq!(snap["graph"]["users"].as_array().map(Vec::len), Some(3));
}

#[tokio::test]
async fn restore_brings_the_user_back() {
    let env = Env::new().await;
    env.delete(&env.url("contoso", "graph/v1.0/users/user-bob"))
        .await;
    let r = env
        .post(
            &env.url(
                "contoso",
                "graph/v1.0/directory/deletedItems/user-bob/restore",
            ),
            &json!({}),
            &[],
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        env.get(&env.url("contoso", "graph/v1.0/users/user-bob"))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn deleted_users_are_purged_after_thirty_days() {
    let env = Env::new().await;
    env.delete(&env.url("contoso", "graph/v1.0/users/user-alice"))
        .await;
    let deleted = env.url("contoso", "graph/v1.0/directory/deletedItems/user-alice");
    env.emu.advance_clock(29 * DAY);
    assert_eq!(env.get(&deleted).await.status, 200);
    env.emu.advance_clock(DAY + Duration::from_secs(1));
    assert_eq!(env.get(&deleted).await.status, 404);
    assert_eq!(
        env.emu.snapshot("contoso")["graph"]["deletedItems"],
        json!([])
    );
}

#[tokio::test]
async fn export_completes_at_once_by_default() {
    let env = Env::new().await;
    let body = json!({"storageLocation": "https://store.example/exports?sig=x"});
    let r = env
        .post(
            &env.url("contoso", "graph/v1.0/users/user-alice/exportPersonalData"),
            &body,
            &[],
        )
        .await;
    assert_eq!(r.status, 202);
    assert_eq!(r.header("retry-after"), Some("1"));
    let location = r.header("location").expect("Location").to_string();
    assert!(
        location.starts_with(&env.url("contoso", "graph/v1.0/dataPolicyOperations/")),
        "{location}"
    );
    let r = env.get(&location).await;
    assert_eq!(r.str("/status"), "complete");
    assert_eq!(
        r.str("/storageLocation"),
        "https://store.example/exports?sig=x"
    );
    assert_eq!(r.str("/userId"), "user-alice");

    let r = env
        .post(
            &env.url("contoso", "graph/v1.0/users/user-alice/exportPersonalData"),
            &json!({}),
            &[],
        )
        .await;
    assert_eq!(r.status, 400);
    let r = env
        .post(
            &env.url("contoso", "graph/v1.0/users/nobody/exportPersonalData"),
            &body,
            &[],
        )
        .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn export_progresses_with_the_clock() {
    let mut fixture = Fixture::contoso();
    fixture.settings.export_duration_secs = 7 * 24 * 3600;
    let env = Env::with(fixture).await;
    let body = json!({"storageLocation": "https://store.example/c"});
    let r = env
        .post(
            &env.url("contoso", "graph/v1.0/users/user-alice/exportPersonalData"),
            &body,
            &[],
        )
        .await;
    let location = r.header("location").expect("Location").to_string();
    assert_eq!(env.get(&location).await.str("/status"), "notStarted");
    env.emu.advance_clock(DAY);
    let r = env.get(&location).await;
    assert_eq!(r.str("/status"), "running");
    assert_eq!(r.body["completedDateTime"], json!(null));
    env.emu.advance_clock(6 * DAY);
    let r = env.get(&location).await;
    assert_eq!(r.str("/status"), "complete");
    assert!(!r.str("/completedDateTime").is_empty());
}

#[tokio::test]
async fn next_link_keeps_the_filter() {
    let env = Env::new().await;
    let filter = "startswith(mail,'alice') or startswith(mail,'bob') or startswith(mail,'dan.o''')";
    let url = env.url(
        "contoso",
        &format!("graph/v1.0/users?$filter={filter}&$select=id"),
    );
    let pages = all_pages(&env, &url, "/@odata.nextLink").await;
    assert_eq!(pages.len(), 2);
    assert_eq!(ids(&pages, "id"), ["user-alice", "user-bob", "user-dan"]);
}

#[tokio::test]
async fn deleted_items_list_pages_and_filters() {
    let env = Env::new().await;
    for id in ["user-alice", "user-bob", "user-carol"] {
        env.delete(&env.url("contoso", &format!("graph/v1.0/users/{id}")))
            .await;
    }
    let url = env.url(
        "contoso",
        "graph/v1.0/directory/deletedItems/microsoft.graph.user",
    );
    let pages = all_pages(&env, &url, "/@odata.nextLink").await;
    assert_eq!(ids(&pages, "id"), ["user-alice", "user-bob", "user-carol"]);
    let r = env
        .get(&format!("{url}?$filter=mail eq 'bob@contoso.com'"))
        .await;
    assert_eq!(
        ids(
            &[r.body["value"].as_array().cloned().unwrap_or_default()],
            "id"
        ),
        ["user-bob"]
    );
}
