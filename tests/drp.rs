//! The Data Rights Protocol 1.0 endpoints of `dsrctl serve --listen`, through real HTTP with
//! the worker running: an Authorized Agent pairs with a signed message, sends signed requests
//! built like the protocol's examples, follows one through approval, the run and its manual
//! task to `fulfilled`, and revokes another. Bad signatures, unknown agents and tokens,
//! expired, malformed and replayed messages are refused with the protocol's error body.

mod support;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use chrono::Utc;
use dsrctl::load::load_project;
use ed25519_dalek::{Signer, SigningKey};
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::items::{ItemServer, two_tenants, with_a_manual_step};
use support::serve::Serve;

const OPS: &str = "ops-secret-0123456789abcdef";
const OTHER: &str = "t2-secret-0123456789abcdef";
const BUSINESS: &str = "CONTOSO";

fn agent_key() -> SigningKey {
    SigningKey::from_bytes(&[11u8; 32])
}

fn second_agent_key() -> SigningKey {
    SigningKey::from_bytes(&[12u8; 32])
}

/// A project of two tenants whose business answers DRP for `t1`, accepting the agents
/// `PERMISSION_SLIP` and `OTHER_AGENT`.
fn project(dir: &Path, base_url: &str) {
    project_with(dir, base_url, "");
}

/// [`project`] with more settings under `drp:` (each line indented by two spaces).
fn project_with(dir: &Path, base_url: &str, drp_extra: &str) {
    let (config, t2) = two_tenants(dir, base_url, &with_a_manual_step(""));
    let key = hex::encode(agent_key().verifying_key().to_bytes());
    let key2 = hex::encode(second_agent_key().verifying_key().to_bytes());
    std::fs::write(
        dir.join("dsrctl.yaml"),
        format!(
            "{config}{t2}\napi:\n  tokens:\n    \
             - {{ name: ops, secret: {{ env: TEST_OPS_TOKEN }}, tenants: [t1], roles: [operator, approver, auditor] }}\n    \
             - {{ name: other, secret: {{ env: TEST_OTHER_TOKEN }}, tenants: [t2], roles: [intake, operator, approver, auditor] }}\n\
             drp:\n  business_id: {BUSINESS}\n  name: Contoso\n  tenant: t1\n  agents:\n    \
             - {{ id: PERMISSION_SLIP, name: Permission Slip, verify_key: \"{key}\" }}\n    \
             - {{ id: OTHER_AGENT, verify_key: \"{key2}\" }}\n{drp_extra}"
        ),
    )
    .unwrap();
    load_project(dir).unwrap_or_else(|d| panic!("{}", d.render_human(false)));
}

/// The protocol's signing: the Ed25519 signature, then the JSON, base64-encoded.
fn sign(key: &SigningKey, message: &Value) -> String {
    let json = serde_json::to_vec(message).unwrap();
    sign_bytes(key, &json)
}

fn sign_bytes(key: &SigningKey, bytes: &[u8]) -> String {
    let mut raw = key.sign(bytes).to_bytes().to_vec();
    raw.extend_from_slice(bytes);
    base64::engine::general_purpose::STANDARD.encode(raw)
}

/// The envelope of a message from `agent`, issued a minute ago, valid for 15 minutes.
fn envelope(agent: &str) -> Value {
    let now = Utc::now();
    json!({
        "agent-id": agent,
        "business-id": BUSINESS,
        "issued-at": (now - chrono::TimeDelta::minutes(1)).to_rfc3339(),
        "expires-at": (now + chrono::TimeDelta::minutes(15)).to_rfc3339(),
        "drp.version": "1.0",
    })
}

/// A deletion request as in the protocol's example (section 2.01), for `email`.
fn exercise(agent: &str, email: &str) -> Value {
    let mut m = envelope(agent);
    let extra = json!({
        "exercise": "deletion",
        "regime": "ccpa",
        "relationships": ["customer", "marketing"],
        "status_callback": "https://dsr-agent.example.com/update_status",
        "name": "Alice Example",
        "email": email,
        "email_verified": true,
    });
    m.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    m
}

struct Drp {
    base: String,
    http: reqwest::Client,
}

impl Drp {
    /// `serve --listen` in project `dir` as `worker`, and an agent's client of it.
    async fn serve(dir: &Path, worker: &str) -> (Serve, Drp) {
        let serve = Serve::start(
            dir,
            worker,
            &[("TEST_OPS_TOKEN", OPS), ("TEST_OTHER_TOKEN", OTHER)],
        )
        .await;
        let drp = Drp {
            base: serve.base.clone(),
            http: reqwest::Client::new(),
        };
        (serve, drp)
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<String>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.header("content-type", "text/plain").body(b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn post(&self, path: &str, token: Option<&str>, body: String) -> (StatusCode, Value) {
        self.send(reqwest::Method::POST, path, token, Some(body))
            .await
    }

    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.send(reqwest::Method::GET, path, Some(token), None)
            .await
    }

    async fn pair(&self, agent: &str, key: &SigningKey) -> String {
        let (status, body) = self
            .post(
                &format!("/v1/agent/{agent}"),
                None,
                sign(key, &envelope(agent)),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["agent-id"], agent);
        body["token"].as_str().unwrap().to_owned()
    }

    /// Approves request `id` through the business's API and waits for its run's manual
    /// task; the run's id.
    async fn approve_until_task(&self, id: &str) -> String {
        let (status, approved) = self
            .send(
                reqwest::Method::POST,
                &format!("/v1/requests/{id}/approve"),
                Some(OPS),
                Some("{}".into()),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{approved}");
        let tasks = self
            .until("/v1/tasks", OPS, |b| {
                b["tasks"].as_array().is_some_and(|t| !t.is_empty())
            })
            .await;
        tasks["tasks"][0]["run"].as_str().unwrap().to_owned()
    }

    /// Polls `path` until `ready` holds, for at most 30 s.
    async fn until(&self, path: &str, token: &str, ready: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let (status, body) = self.get(path, token).await;
            if status == StatusCode::OK && ready(&body) {
                return body;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{path} never got there: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The project's audit log as `dsrctl audit export` prints it, and its entries.
fn audit(dir: &Path) -> (String, Vec<Value>) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dsrctl"))
        .arg("-C")
        .arg(dir)
        .args(["audit", "export"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let entries = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect();
    (text, entries)
}

/// An error answer in the protocol's shape (section 3.06).
fn assert_error(status: StatusCode, body: &Value, want: StatusCode, says: &str) {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["code"], want.as_u16().to_string(), "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains(says), "`{says}` not in {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_pairs_sends_follows_and_revokes_requests() {
    let server = ItemServer::start_background(Duration::ZERO);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    project(dir, &server.url());
    let (_serve, drp) = Drp::serve(dir, "w-drp").await;

    // Discovery names the business and what it accepts.
    let (status, found) = drp
        .send(
            reqwest::Method::GET,
            "/.well-known/data-rights.json",
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(found["id"], BUSINESS);
    assert_eq!(found["version"], "1.0");
    assert!(
        found["supported_actions"]
            .as_array()
            .unwrap()
            .contains(&json!("deletion"))
    );

    // Pairing: an unknown agent, a message signed with another key, or one naming another
    // agent get 403 with no body.
    let key = agent_key();
    for (agent, signer, message) in [
        ("NOBODY", &key, envelope("NOBODY")),
        (
            "PERMISSION_SLIP",
            &second_agent_key(),
            envelope("PERMISSION_SLIP"),
        ),
        ("PERMISSION_SLIP", &key, envelope("OTHER_AGENT")),
    ] {
        let (status, body) = drp
            .post(&format!("/v1/agent/{agent}"), None, sign(signer, &message))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{agent}: {body}");
        assert_eq!(body, json!(""), "no body: {body}");
    }
    let token = drp.pair("PERMISSION_SLIP", &key).await;
    let (status, info) = drp.get("/v1/agent/PERMISSION_SLIP", &token).await;
    assert_eq!((status, info), (StatusCode::OK, json!({})));
    let (status, body) = drp.get("/v1/agent/OTHER_AGENT", &token).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "PERMISSION_SLIP");
    let other_token = drp.pair("OTHER_AGENT", &second_agent_key()).await;

    // A request as in the protocol's example: recorded, waiting for approval.
    let alice = sign(&key, &exercise("PERMISSION_SLIP", "alice@example.com"));
    let (status, created) = drp
        .post("/v1/data-rights-request", Some(&token), alice.clone())
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["status"], "open", "{created}");
    let id = created["request_id"].as_str().unwrap().to_owned();
    assert!(created["received_at"].is_string() && created["expected_by"].is_string());

    // Replayed: refused, naming the request it made.
    let (status, body) = drp
        .post("/v1/data-rights-request", Some(&token), alice.clone())
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, &id);

    // Refused, each with the protocol's error body.
    let mut tampered = base64::engine::general_purpose::STANDARD
        .decode(&alice)
        .unwrap();
    let n = tampered.len();
    tampered[n - 3] ^= 0x20;
    let tampered = base64::engine::general_purpose::STANDARD.encode(tampered);
    let mut expired = exercise("PERMISSION_SLIP", "bob@example.com");
    expired["issued-at"] = json!((Utc::now() - chrono::TimeDelta::minutes(30)).to_rfc3339());
    expired["expires-at"] = json!((Utc::now() - chrono::TimeDelta::minutes(15)).to_rfc3339());
    let mut elsewhere = exercise("PERMISSION_SLIP", "bob@example.com");
    elsewhere["business-id"] = json!("SOMEONE_ELSE");
    let mut opt_out = exercise("PERMISSION_SLIP", "bob@example.com");
    opt_out["exercise"] = json!("sale:opt_out");
    let mut nobody = exercise("PERMISSION_SLIP", "bob@example.com");
    nobody.as_object_mut().unwrap().remove("email");
    let bob = sign(&key, &exercise("PERMISSION_SLIP", "bob@example.com"));
    let last = if token.ends_with('0') { "1" } else { "0" };
    let forged = format!("{}{last}", &token[..token.len() - 1]);
    for (what, token, body, want, says) in [
        (
            "bad signature",
            Some(token.as_str()),
            tampered,
            StatusCode::FORBIDDEN,
            "signature",
        ),
        (
            "another agent's key",
            Some(token.as_str()),
            sign(
                &second_agent_key(),
                &exercise("PERMISSION_SLIP", "bob@example.com"),
            ),
            StatusCode::FORBIDDEN,
            "signature",
        ),
        (
            "another agent's token",
            Some(other_token.as_str()),
            bob.clone(),
            StatusCode::FORBIDDEN,
            "signature",
        ),
        (
            "unknown token",
            Some("NOBODY.00.00"),
            bob.clone(),
            StatusCode::FORBIDDEN,
            "token",
        ),
        (
            "forged token",
            Some(forged.as_str()),
            bob.clone(),
            StatusCode::FORBIDDEN,
            "token",
        ),
        (
            "no token",
            None,
            bob.clone(),
            StatusCode::UNAUTHORIZED,
            "bearer",
        ),
        (
            "expired",
            Some(token.as_str()),
            sign(&key, &expired),
            StatusCode::BAD_REQUEST,
            "expired",
        ),
        (
            "another business",
            Some(token.as_str()),
            sign(&key, &elsewhere),
            StatusCode::FORBIDDEN,
            "SOMEONE_ELSE",
        ),
        (
            "malformed JSON",
            Some(token.as_str()),
            sign_bytes(&key, b"{\"agent-id\": "),
            StatusCode::BAD_REQUEST,
            "JSON",
        ),
        (
            "not base64",
            Some(token.as_str()),
            "{\"exercise\": \"deletion\"}".to_owned(),
            StatusCode::BAD_REQUEST,
            "base64",
        ),
        (
            "unsupported action",
            Some(token.as_str()),
            sign(&key, &opt_out),
            StatusCode::BAD_REQUEST,
            "sale:opt_out",
        ),
        (
            "no identity",
            Some(token.as_str()),
            sign(&key, &nobody),
            StatusCode::BAD_REQUEST,
            "email",
        ),
    ] {
        let (status, answer) = drp.post("/v1/data-rights-request", token, body).await;
        assert_error(status, &answer, want, says);
        if want != StatusCode::UNAUTHORIZED {
            assert_eq!(answer["fatal"], true, "{what}: {answer}");
        }
    }

    // The request is the agent's alone; the business's own API sees it in tenant t1 only.
    let path = format!("/v1/data-rights-request/{id}");
    let (status, body) = drp.get(&path, &other_token).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, &id);
    let (status, _) = drp.get(&format!("/v1/requests/{id}"), OTHER).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, mine) = drp.get(&format!("/v1/requests/{id}"), OPS).await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    assert_eq!(
        (mine["tenant"].as_str(), mine["kind"].as_str()),
        (Some("t1"), Some("delete"))
    );
    assert_eq!(mine["jurisdiction"], "ccpa");

    // Nobody else makes a request with an agent's kind of id.
    let (status, refused) = drp
        .send(
            reqwest::Method::POST,
            "/v1/requests",
            Some(OPS),
            Some(json!({"id": format!("{id}0"), "kind": "access", "subject": {"email": "eve@example.com"}}).to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");

    // Approved by the business: in progress while the run waits for its manual task.
    let run = drp.approve_until_task(&id).await;
    // The worker lets go of the run once it waits for the person.
    drp.until(&format!("/v1/requests/{id}"), OPS, |b| {
        b["state"] == "waiting" && b["run"]["status"] == "waiting"
    })
    .await;
    let (_, now) = drp.get(&path, &token).await;
    assert_eq!(now["status"], "in_progress", "{now}");

    // Revoking it now is refused: what was sent cannot be unsent.
    let revoke = sign(&key, &json!({"reason": "i don't want my account deleted"}));
    let (status, body) = drp
        .send(
            reqwest::Method::DELETE,
            &path,
            Some(&token),
            Some(revoke.clone()),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::CONFLICT,
        "can no longer be revoked",
    );

    // The task done, the run finishes: fulfilled.
    let (status, done) = drp
        .send(
            reqwest::Method::POST,
            &format!("/v1/runs/{run}/tasks/alerts/done"),
            Some(OPS),
            Some(String::new()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    drp.until(&path, &token, |b| b["status"] == "fulfilled")
        .await;

    // A second request, revoked before anyone started it; revoking again says the same.
    let (status, carol) = drp
        .post(
            "/v1/data-rights-request",
            Some(&token),
            sign(&key, &exercise("PERMISSION_SLIP", "carol@example.com")),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{carol}");
    let carol_path = format!(
        "/v1/data-rights-request/{}",
        carol["request_id"].as_str().unwrap()
    );
    let (status, body) = drp
        .send(
            reqwest::Method::DELETE,
            &carol_path,
            Some(&other_token),
            Some(sign(&second_agent_key(), &json!({"reason": "x"}))),
        )
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "OTHER_AGENT");
    for _ in 0..2 {
        let (status, revoked) = drp
            .send(
                reqwest::Method::DELETE,
                &carol_path,
                Some(&token),
                Some(revoke.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{revoked}");
        assert_eq!(revoked["status"], "revoked", "{revoked}");
    }
    let (_, declined) = drp
        .get(
            &format!("/v1/requests/{}", carol["request_id"].as_str().unwrap()),
            OPS,
        )
        .await;
    assert_eq!(declined["state"], "declined", "{declined}");

    // The audit log names the agent for what it did.
    let (text, entries) = audit(dir);
    let by_agent: Vec<Value> = entries
        .into_iter()
        .filter(|e| e.to_string().contains("drp:PERMISSION_SLIP"))
        .collect();
    assert!(
        by_agent
            .iter()
            .any(|e| e.to_string().contains("request.received") && e.to_string().contains(&id)),
        "{text}"
    );
    assert!(
        by_agent
            .iter()
            .any(|e| e.to_string().contains("request.declined")),
        "{text}"
    );
}

/// The agent's status callback endpoint: records each POST and answers 500 to the first
/// `fail_first`, then 200.
#[derive(Clone, Default)]
struct Callbacks {
    got: Arc<Mutex<Vec<(u16, Value)>>>,
    fail_first: Arc<std::sync::atomic::AtomicUsize>,
}

impl Callbacks {
    async fn start(fail_first: usize) -> (Callbacks, String) {
        let me = Callbacks::default();
        me.fail_first
            .store(fail_first, std::sync::atomic::Ordering::SeqCst);
        let state = me.clone();
        let app = axum::Router::new().route(
            "/update_status",
            axum::routing::post(
                move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                    let state = state.clone();
                    async move {
                        assert_eq!(headers["content-type"], "application/json");
                        let left = state.fail_first.load(std::sync::atomic::Ordering::SeqCst);
                        let code = if left > 0 {
                            state
                                .fail_first
                                .store(left - 1, std::sync::atomic::Ordering::SeqCst);
                            500
                        } else {
                            200
                        };
                        let value: Value = serde_json::from_slice(&body).unwrap();
                        state.got.lock().unwrap().push((code, value));
                        axum::http::StatusCode::from_u16(code).unwrap()
                    }
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/update_status", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (me, url)
    }

    fn got(&self) -> Vec<(u16, Value)> {
        self.got.lock().unwrap().clone()
    }

    /// Waits (at most 30 s) until a status `status` of `id` was answered 200.
    async fn until_delivered(&self, id: &str, status: &str) {
        let start = Instant::now();
        while !self
            .got()
            .iter()
            .any(|(code, b)| *code == 200 && b["request_id"] == id && b["status"] == status)
        {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "`{status}` of {id} never delivered: {:?}",
                self.got()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_changes_are_called_back_until_the_agent_has_the_latest() {
    let server = ItemServer::start_background(Duration::ZERO);
    let (callbacks, callback_url) = Callbacks::start(2).await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    project_with(dir, &server.url(), "  allow_http_callbacks: true\n");
    let (_serve, drp) = Drp::serve(dir, "w-callback").await;
    let key = agent_key();
    let token = drp.pair("PERMISSION_SLIP", &key).await;

    // A callback URL the protocol cannot be trusted with is refused up front.
    let mut bad = exercise("PERMISSION_SLIP", "bob@example.com");
    bad["status_callback"] = json!("ftp://agent.example/update_status");
    let (status, body) = drp
        .post("/v1/data-rights-request", Some(&token), sign(&key, &bad))
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "https");

    let mut message = exercise("PERMISSION_SLIP", "alice@example.com");
    message["status_callback"] = json!(callback_url);
    message["agent-request-id"] = json!("ar-alice-1");
    let (status, created) = drp
        .post(
            "/v1/data-rights-request",
            Some(&token),
            sign(&key, &message),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["status"], "open");
    assert_eq!(created["agent_request_id"], "ar-alice-1", "{created}");
    let id = created["request_id"].as_str().unwrap().to_owned();
    let path = format!("/v1/data-rights-request/{id}");
    let (_, read) = drp.get(&path, &token).await;
    assert_eq!(read["agent_request_id"], "ar-alice-1", "{read}");

    // Approved and carried out up to its manual task: the agent hears `in_progress`, after
    // its endpoint failed twice.
    let run = drp.approve_until_task(&id).await;
    callbacks.until_delivered(&id, "in_progress").await;
    let (status, done) = drp
        .send(
            reqwest::Method::POST,
            &format!("/v1/runs/{run}/tasks/alerts/done"),
            Some(OPS),
            Some(String::new()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    callbacks.until_delivered(&id, "fulfilled").await;
    // A final status delivered: nothing more is sent.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let got = callbacks.got();
    let codes: Vec<u16> = got.iter().map(|(c, _)| *c).collect();
    let delivered: Vec<&str> = got
        .iter()
        .filter(|(c, _)| *c == 200)
        .map(|(_, b)| b["status"].as_str().unwrap())
        .collect();
    assert_eq!(&codes[..2], [500, 500], "{got:?}");
    assert_eq!(delivered, ["in_progress", "fulfilled"], "{got:?}");
    for (_, body) in &got {
        assert_eq!(body["request_id"], id.as_str(), "{body}");
        assert_eq!(body["agent_request_id"], "ar-alice-1", "{body}");
        assert!(body["expected_by"].is_string(), "{body}");
    }

    // A request revoked: the agent has `revoked` from the answer; nothing is called back.
    let mut carol = exercise("PERMISSION_SLIP", "carol@example.com");
    carol["status_callback"] = json!(callback_url);
    let (status, created) = drp
        .post("/v1/data-rights-request", Some(&token), sign(&key, &carol))
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let carol_id = created["request_id"].as_str().unwrap().to_owned();
    let (status, revoked) = drp
        .send(
            reqwest::Method::DELETE,
            &format!("/v1/data-rights-request/{carol_id}"),
            Some(&token),
            Some(sign(&key, &json!({"reason": "changed my mind"}))),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    assert_eq!(revoked["status"], "revoked");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !callbacks
            .got()
            .iter()
            .any(|(_, b)| b["request_id"] == carol_id.as_str()),
        "{:?}",
        callbacks.got()
    );

    // Each delivered status is in the audit log, in the worker's name.
    let (text, entries) = audit(dir);
    let sent: Vec<Value> = entries
        .into_iter()
        .filter(|e| e.to_string().contains("drp.status_sent"))
        .collect();
    assert_eq!(sent.len(), 2, "{text}");
    assert!(
        sent.iter()
            .all(|e| e.to_string().contains("drp-callback@w-callback")),
        "{sent:?}"
    );
}
