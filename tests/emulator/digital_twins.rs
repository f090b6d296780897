//! Azure Digital Twins: twins, ETags, relationships, query.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{ADT, Env, Resp, all_pages, ids};

fn twin_url(env: &Env, rest: &str) -> String {
    let sep = if rest.contains('?') { '&' } else { '?' };
    env.url("contoso", &format!("adt/{rest}{sep}{ADT}"))
}

async fn patch(env: &Env, id: &str, ops: &Value, extra: &[(&str, &str)]) -> Resp {
    let mut headers = vec![("content-type", "application/json-patch+json")];
    headers.extend_from_slice(extra);
    let url = twin_url(env, &format!("digitaltwins/{id}"));
    let body = serde_json::to_vec(ops).expect("json");
    let mut rb = env
        .client()
        .request(Method::PATCH, &url)
        .bearer_auth("t")
        .body(body);
    for (k, v) in headers {
        rb = rb.header(k, v);
    }
    let resp = rb.send().await.expect("answered");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.json::<Value>().await.unwrap_or(Value::Null);
    Resp {
        status,
        headers,
        body,
    }
}

#[tokio::test]
async fn api_version_is_required_and_checked() {
    let env = Env::new().await;
    let r = env
        .get(&env.url("contoso", "adt/digitaltwins/person-alice"))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.str("/error/code"), "MissingApiVersionParameter");
    assert_eq!(
        r.header("x-ms-error-code"),
        Some("MissingApiVersionParameter")
    );
    let r = env
        .get(&env.url(
            "contoso",
            "adt/digitaltwins/person-alice?api-version=2020-10-31",
        ))
        .await;
    assert_eq!(
        (r.status, r.str("/error/code")),
        (400, "InvalidApiVersionParameter")
    );
}

#[tokio::test]
async fn get_twin_with_etag_and_404() {
    let env = Env::new().await;
    let r = env.get(&twin_url(&env, "digitaltwins/person-alice")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.str("/$dtId"), "person-alice");
    assert_eq!(r.str("/$metadata/$model"), "dtmi:contoso:Person;1");
    assert_eq!(r.header("etag"), Some(r.str("/$etag")));
    let r = env.get(&twin_url(&env, "digitaltwins/nobody")).await;
    assert_eq!(
        (r.status, r.str("/error/code")),
        (404, "DigitalTwinNotFound")
    );
    assert_eq!(r.header("x-ms-error-code"), Some("DigitalTwinNotFound"));
}

#[tokio::test]
async fn json_patch_honours_if_match() {
    let env = Env::new().await;
    let etag = env
        .get(&twin_url(&env, "digitaltwins/person-alice"))
        .await
        .str("/$etag")
        .to_string();
    let ops = json!([{"op": "replace", "path": "/displayName", "value": "Alice M."},
                     {"op": "remove", "path": "/badgeId"}]);
    let r = patch(&env, "person-alice", &ops, &[("if-match", "W/\"stale\"")]).await;
    assert_eq!(
        (r.status, r.str("/error/code")),
        (412, "PreconditionFailed")
    );
    let r = patch(&env, "person-alice", &ops, &[("if-match", &etag)]).await;
    assert_eq!(r.status, 204);
    let new_etag = r.header("etag").expect("new etag").to_string();
    assert_ne!(new_etag, etag);
    let twin = env.get(&twin_url(&env, "digitaltwins/person-alice")).await;
    assert_eq!(twin.str("/displayName"), "Alice M.");
    assert!(twin.body.get("badgeId").is_none());
    // The old ETag no longer matches; a bad op is JsonPatchInvalid; plain JSON is refused.
    assert_eq!(
        patch(&env, "person-alice", &ops, &[("if-match", &etag)])
            .await
            .status,
        412
    );
    let bad = json!([{"op": "replace", "path": "/missing", "value": 1}]);
    let r = patch(&env, "person-alice", &bad, &[]).await;
    assert_eq!((r.status, r.str("/error/code")), (400, "JsonPatchInvalid"));
    let r = env
        .call(
            Method::PATCH,
            &twin_url(&env, "digitaltwins/person-alice"),
            Some(&ops),
            &[],
        )
        .await;
    assert_eq!(r.status, 415);
}

#[tokio::test]
async fn twin_with_relationships_cannot_be_deleted_until_both_directions_are_gone() {
    let env = Env::new().await;
    let twin = twin_url(&env, "digitaltwins/person-alice");
    let r = env.delete(&twin).await;
    assert_eq!(
        (r.status, r.str("/error/code")),
        (400, "RelationshipsNotDeleted")
    );
    assert_eq!(r.header("x-ms-error-code"), Some("RelationshipsNotDeleted"));

    let outgoing = all_pages(
        &env,
        &twin_url(&env, "digitaltwins/person-alice/relationships"),
        "/nextLink",
    )
    .await;
    assert_eq!(outgoing.len(), 2, "three relationships cross a page of two");
    assert_eq!(ids(&outgoing, "$relationshipId").len(), 3);
    for rel in outgoing.iter().flatten() {
        assert_eq!(rel["$sourceId"], "person-alice");
        let url = twin_url(
            &env,
            &format!(
                "digitaltwins/person-alice/relationships/{}",
                rel["$relationshipId"].as_str().unwrap_or("")
            ),
        );
        assert_eq!(env.delete(&url).await.status, 204);
    }
    // Outgoing gone, incoming still there: still refused.
    assert_eq!(
        env.delete(&twin).await.str("/error/code"),
        "RelationshipsNotDeleted"
    );

    let incoming = all_pages(
        &env,
        &twin_url(&env, "digitaltwins/person-alice/incomingrelationships"),
        "/nextLink",
    )
    .await;
    assert_eq!(incoming.len(), 2);
    let sources = ids(&incoming, "$sourceId");
    assert_eq!(sources, ["person-bob", "room-101", "team-facilities"]);
    for rel in incoming.iter().flatten() {
        let link = rel["$relationshipLink"].as_str().unwrap_or("");
        assert!(link.starts_with("/digitaltwins/"), "{link}");
        let url = twin_url(&env, link.trim_start_matches('/'));
        assert_eq!(env.delete(&url).await.status, 204);
        assert_eq!(
            env.delete(&url).await.str("/error/code"),
            "RelationshipNotFound"
        );
    }
    assert_eq!(env.delete(&twin).await.status, 204);
    assert_eq!(env.get(&twin).await.status, 404);

    let snap = env.emu.snapshot("contoso");
    let twins: Vec<&str> = snap["digitalTwins"]["twins"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["$dtId"].as_str())
        .collect();
    assert!(!twins.contains(&"person-alice") && twins.contains(&"person-bob"));
    let rels = snap["digitalTwins"]["relationships"]
        .as_array()
        .map(Vec::len);
    assert_eq!(rels, Some(2), "relationships not touching Alice survive");
}

#[tokio::test]
async fn delete_twin_and_relationship_honour_if_match() {
    let env = Env::new().await;
    let url = twin_url(
        &env,
        "digitaltwins/floor-1/relationships/floor-1-contains-room-101",
    );
    let rel = env.get(&url).await;
    let etag = rel.header("etag").expect("etag").to_string();
    let r = env
        .call(Method::DELETE, &url, None, &[("if-match", "W/\"nope\"")])
        .await;
    assert_eq!(r.status, 412);
    let r = env
        .call(Method::DELETE, &url, None, &[("if-match", &etag)])
        .await;
    assert_eq!(r.status, 204);
    let r = env
        .call(
            Method::DELETE,
            &twin_url(&env, "digitaltwins/floor-1"),
            None,
            &[("if-match", "W/\"nope\"")],
        )
        .await;
    assert_eq!(r.status, 412);
    let r = env
        .call(
            Method::DELETE,
            &twin_url(&env, "digitaltwins/floor-1"),
            None,
            &[("if-match", "*")],
        )
        .await;
    assert_eq!(r.status, 204);
}

async fn query_all(env: &Env, query: &str) -> (Vec<Vec<Value>>, Vec<Resp>) {
    let url = twin_url(env, "query");
    let mut body = json!({"query": query});
    let mut pages = Vec::new();
    let mut resps = Vec::new();
    loop {
        let r = env.post(&url, &body, &[]).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        pages.push(r.body["value"].as_array().cloned().unwrap_or_default());
        let token = r.body["continuationToken"].as_str().map(str::to_string);
        resps.push(r);
        match token {
            Some(t) => body = json!({"continuationToken": t}),
            None => break,
        }
        assert!(pages.len() < 20);
    }
    (pages, resps)
}

#[tokio::test]
async fn query_pages_with_continuation_tokens() {
    let env = Env::new().await;
    let (pages, _) = query_all(&env, "SELECT * FROM DIGITALTWINS").await;
    assert_eq!(pages.len(), 3);
    assert_eq!(ids(&pages, "$dtId").len(), 6);
    let (pages, _) = query_all(&env, "SELECT * FROM DIGITALTWINS T WHERE T.email = 'alice@contoso.com' OR T.ownerEmail = 'alice@contoso.com'").await;
    assert_eq!(
        ids(&pages, "$dtId"),
        ["person-alice", "thermostat-alice-01"]
    );
    let (pages, _) = query_all(&env, "SELECT * FROM DIGITALTWINS WHERE $dtId = 'room-101'").await;
    assert_eq!(ids(&pages, "$dtId"), ["room-101"]);
    let (pages, _) = query_all(
        &env,
        "SELECT * FROM digitaltwins WHERE email = 'nobody@x.com'",
    )
    .await;
    assert_eq!(pages, vec![Vec::<Value>::new()]);
}

#[tokio::test]
async fn unsupported_or_malformed_query_is_sql_query_error() {
    let env = Env::new().await;
    for q in [
        "SELECT name FROM DIGITALTWINS",
        "SELECT * FROM DIGITALTWINS WHERE email = 'open",
        "SELECT * FROM RELATIONSHIPS",
    ] {
        let r = env
            .post(&twin_url(&env, "query"), &json!({"query": q}), &[])
            .await;
        assert_eq!(
            (r.status, r.str("/error/code")),
            (400, "SqlQueryError"),
            "{q}"
        );
    }
}

#[tokio::test]
async fn page_size_header_and_relationship_name_filter() {
    let env = Env::new().await;
    let r = env
        .post(
            &twin_url(&env, "query"),
            &json!({"query": "SELECT * FROM DIGITALTWINS"}),
            &[("max-items-per-page", "1")],
        )
        .await;
    assert_eq!(r.body["value"].as_array().map(Vec::len), Some(1));
    let url = twin_url(
        &env,
        "digitaltwins/person-alice/relationships?relationshipName=owns",
    );
    let pages = all_pages(&env, &url, "/nextLink").await;
    assert_eq!(ids(&pages, "$targetId"), ["thermostat-alice-01"]);
    let r = env
        .get(&twin_url(&env, "digitaltwins/nobody/incomingrelationships"))
        .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn ids_with_reserved_characters_round_trip_through_links() {
    let fixture = dsrctl::emulator::Fixture::from_json(
        r#"{"tenants": {"t": {"digital_twins": {
            "twins": [{"$dtId": "desk 4/b", "$metadata": {"$model": "dtmi:x:Desk;1"}},
                      {"$dtId": "o'hara", "$metadata": {"$model": "dtmi:x:Person;1"}}],
            "relationships": [{"$relationshipId": "uses #1", "$sourceId": "o'hara",
                               "$relationshipName": "uses", "$targetId": "desk 4/b"}]}}}}"#,
    )
    .expect("fixture");
    let env = Env::with(fixture).await;
    let url = env.url(
        "t",
        &format!("adt/digitaltwins/desk%204%2Fb/incomingrelationships?{ADT}"),
    );
    let r = env.get(&url).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let link = r.str("/value/0/$relationshipLink").to_string();
    assert_eq!(link, "/digitaltwins/o%27hara/relationships/uses%20%231");
    let del = env.url("t", &format!("adt{link}?{ADT}"));
    assert_eq!(env.delete(&del).await.status, 204);
    let r = env
        .delete(&env.url("t", &format!("adt/digitaltwins/desk%204%2Fb?{ADT}")))
        .await;
    assert_eq!(r.status, 204);
}
