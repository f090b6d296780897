//! A small erasure API on the [`TestServer`] that records every effect it has, and for each
//! call can act and then fail the way a network fails: lose the answer, reset, hang past the
//! client's timeout, answer garbage or a body cut short; or not act and say "try later".
//!
//! - `POST /erasures` with `{"subject": S}` files an erasure request (an effect; not
//!   idempotent: each call files one more) and answers 201.
//! - `GET /erasures/{S}` answers 200 when an erasure of `S` was filed, else 404.
//! - `DELETE /items/{id}` deletes an item (an effect; idempotent: 204, then 404).
//! - `GET /items/{id}` answers 404 once the item is deleted, else 200.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use super::{Call, Fault, Reply, TestServer};

/// What happens to one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mishap {
    /// Acts and answers normally.
    None,
    /// Acts, then closes the connection without answering.
    LoseAnswer,
    /// Acts, then resets the connection.
    Reset,
    /// Acts, then answers only after [`HANG`], past any client timeout in these tests.
    Hang,
    /// Acts, then answers 200 with a body that is not JSON.
    Garbage,
    /// Acts, then answers 200 with a body cut short of its `Content-Length`.
    Truncated,
    /// Does not act; resets the connection (the request was lost on the way).
    ResetUnacted,
    /// Does not act; answers 429 with `Retry-After: 1`.
    TooMany,
    /// Does not act; answers 503 with `Retry-After: 1`.
    Unavailable,
}

impl Mishap {
    fn acts(self) -> bool {
        !matches!(
            self,
            Mishap::ResetUnacted | Mishap::TooMany | Mishap::Unavailable
        )
    }
}

/// How long a hanging call waits before it answers.
pub const HANG: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Plan {
    queue: VecDeque<Mishap>,
    then: Option<Mishap>,
}

#[derive(Default)]
struct State {
    /// Subjects with a filed erasure, once per filing.
    filed: Vec<String>,
    /// Deletions per item path (every DELETE that acted).
    deletes: HashMap<String, u32>,
    /// Effects per route (`POST /erasures`).
    effects: HashMap<String, usize>,
    plans: HashMap<String, Plan>,
}

/// The running API.
pub struct FaultyApi {
    pub server: TestServer,
    state: Arc<Mutex<State>>,
}

/// `POST /erasures/x` → `POST /erasures`.
fn route(call: &Call) -> String {
    let first = call
        .path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or("");
    format!("{} /{first}", call.method)
}

impl FaultyApi {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let server = TestServer::start(move |call, _| answer(&shared, call)).await;
        FaultyApi { server, state }
    }

    pub fn url(&self) -> &str {
        &self.server.url
    }

    /// The next calls of `route` (`"POST /erasures"`) meet these mishaps, in order; later
    /// ones are answered normally (or as [`FaultyApi::always`] says).
    pub fn next(&self, route: &str, mishaps: impl IntoIterator<Item = Mishap>) {
        let mut s = self.state.lock().unwrap();
        s.plans
            .entry(route.to_owned())
            .or_default()
            .queue
            .extend(mishaps);
    }

    /// Every call of `route` meets `mishap` once the queued ones are used up.
    pub fn always(&self, route: &str, mishap: Mishap) {
        let mut s = self.state.lock().unwrap();
        s.plans.entry(route.to_owned()).or_default().then = Some(mishap);
    }

    /// Calls of `route` are answered normally again.
    pub fn heal(&self, route: &str) {
        self.state.lock().unwrap().plans.remove(route);
    }

    /// How often the service acted on calls of `route`.
    pub fn effects(&self, route: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .effects
            .get(route)
            .copied()
            .unwrap_or(0)
    }

    /// How many calls of `route` reached the service.
    pub fn calls(&self, route: &str) -> usize {
        self.server
            .calls()
            .iter()
            .filter(|c| self::route(c) == route)
            .count()
    }

    /// Erasures filed for `subject`.
    pub fn filed(&self, subject: &str) -> usize {
        let s = self.state.lock().unwrap();
        s.filed.iter().filter(|f| *f == subject).count()
    }

    /// DELETE effects per item path.
    pub fn deletes(&self) -> HashMap<String, u32> {
        self.state.lock().unwrap().deletes.clone()
    }
}

fn answer(state: &Mutex<State>, call: &Call) -> Reply {
    let mut s = state.lock().unwrap();
    let route = route(call);
    let mishap = match s.plans.get_mut(&route) {
        Some(plan) => plan.queue.pop_front().or(plan.then).unwrap_or(Mishap::None),
        None => Mishap::None,
    };
    let reply = match mishap {
        Mishap::ResetUnacted => return Reply::json(500, json!({})).broken(Fault::Reset),
        Mishap::TooMany => {
            return Reply::json(429, json!({"error": "slow down"})).header("Retry-After", "1");
        }
        Mishap::Unavailable => {
            return Reply::json(503, json!({"error": "maintenance"})).header("Retry-After", "1");
        }
        _ => act(&mut s, call, &route),
    };
    if mishap.acts() {
        *s.effects.entry(route).or_default() += usize::from(reply.status < 300);
    }
    match mishap {
        Mishap::LoseAnswer => reply.broken(Fault::LoseAnswer),
        Mishap::Reset => reply.broken(Fault::Reset),
        Mishap::Hang => reply.after(HANG),
        Mishap::Garbage => Reply::raw(200, "application/json", "<html>upstream error</html>"),
        Mishap::Truncated => reply.broken(Fault::Truncate),
        _ => reply,
    }
}

/// What the service does with a call (the effect), and its normal answer.
fn act(s: &mut State, call: &Call, route: &str) -> Reply {
    let rest = call
        .path
        .trim_start_matches('/')
        .split_once('/')
        .map(|(_, r)| r.to_owned())
        .unwrap_or_default();
    let rest = percent_encoding::percent_decode_str(&rest)
        .decode_utf8_lossy()
        .into_owned();
    match route {
        "POST /erasures" => {
            let subject = call.json()["subject"].as_str().unwrap_or("").to_owned();
            s.filed.push(subject.clone());
            let id = s.filed.len();
            Reply::json(201, json!({"id": format!("e-{id}"), "subject": subject}))
        }
        "GET /erasures" => {
            let n = s.filed.iter().filter(|f| **f == rest).count();
            if n > 0 {
                Reply::json(200, json!({"subject": rest, "filed": n}))
            } else {
                Reply::json(404, json!({"error": "no erasure filed"}))
            }
        }
        "DELETE /items" => {
            let n = s.deletes.entry(call.path.clone()).or_default();
            *n += 1;
            if *n == 1 {
                Reply::raw(204, "application/json", "")
            } else {
                Reply::json(404, json!({"error": "not found"}))
            }
        }
        "GET /items" => {
            if s.deletes.contains_key(&call.path) {
                Reply::json(404, json!({"error": "not found"}))
            } else {
                Reply::json(200, json!({"id": rest}))
            }
        }
        _ => Reply::json(404, json!({"error": "no such route"})),
    }
}

/// The route of filing an erasure.
pub const FILE: &str = "POST /erasures";

/// A project's `dsrctl.yaml`: tenant `t1`, connector `api` on `url`, a 300 ms timeout and
/// five attempts.
pub fn config(url: &str) -> String {
    format!(
        "tenants:\n  t1:\n    connectors:\n      api:\n        kind: http\n        base_url: {url}\n        timeout: 300ms\n        retry: {{ attempts: 5, backoff: 10ms }}\n"
    )
}

/// A playbook (service `vendor`, connector `api`) whose delete files an erasure with a POST that is not idempotent, checked by
/// a `verify` read when `verify` is set.
pub fn playbook(verify: bool) -> String {
    let check = if verify {
        "\n      verify:\n        http: { method: GET, path: \"/erasures/{{seg subject.email}}\" }\n        expect_status: [200]"
    } else {
        ""
    };
    super::items::playbook(
        "vendor",
        "",
        &format!(
            r#"    - id: file-erasure
      http: {{ method: POST, path: /erasures, json: {{ subject: "{{{{subject.email}}}}" }} }}
      idempotent: false
      preview: {{ none: "files a request; nothing to read before" }}{check}
"#
        ),
    )
}
