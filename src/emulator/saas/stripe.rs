//! Stripe (API reference: <https://docs.stripe.com/api>).
//!
//! Reproduced: the secret key as `Bearer` or as the Basic user name (401 with Stripe's
//! error object otherwise); form-encoded request bodies, with `metadata[key]` and
//! `address[field]` nesting and "Received unknown parameter" for others; list objects
//! (`object: list`, `data`, `has_more`, `url`) paged with `limit` (1 to 100, default 10)
//! and `starting_after`; the `email` filter of `GET /v1/customers`, which is exact and
//! case-sensitive; several customers with one email; `DELETE /v1/customers/{id}`
//! answering the deleted stub, after which `GET` answers the stub with `deleted: true`
//! and a second `DELETE` answers 404 `resource_missing`; charges kept after their
//! customer is deleted; `Idempotency-Key` on POST (the same key with the same parameters
//! replays the first answer with `Idempotent-Replayed: true`, other parameters are an
//! `idempotency_error`); 429 with `code: rate_limit` and no `Retry-After`.
//!
//! Not reproduced: API versions, expansion (`expand[]`), `ending_before`, the Search API,
//! any object other than customers and charges, test clocks, webhooks, and Stripe's
//! actual rate limits (set one with [`super::SaasEmulator::throttle`]).

use std::collections::BTreeMap;

use axum::http::Method;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::{Api, Req, json as json_resp, set_header};

/// The secret key the emulator accepts.
pub const SECRET_KEY: &str = "sk_test_emulator";

/// Stripe's state.
pub struct Stripe {
    customers: Vec<Value>,
    charges: Vec<Value>,
    /// Idempotency keys: the parameters sent and the answer given.
    idempotency: BTreeMap<String, (String, u16, Value)>,
}

/// An answer: status and JSON body.
type Answer = (u16, Value);

fn error(
    status: u16,
    kind: &str,
    code: Option<&str>,
    message: &str,
    param: Option<&str>,
) -> Answer {
    let mut e = Map::new();
    if let Some(code) = code {
        e.insert("code".into(), json!(code));
        e.insert(
            "doc_url".into(),
            json!(format!(
                "https://stripe.com/docs/error-codes/{}",
                code.replace('_', "-")
            )),
        );
    }
    e.insert("message".into(), json!(message));
    if let Some(param) = param {
        e.insert("param".into(), json!(param));
    }
    e.insert("type".into(), json!(kind));
    (status, json!({ "error": e }))
}

fn respond((status, body): Answer) -> Response {
    let mut resp = json_resp(status, &body);
    set_header(&mut resp, "request-id", "req_emulator");
    resp
}

fn missing(what: &str, id: &str) -> Answer {
    error(
        404,
        "invalid_request_error",
        Some("resource_missing"),
        &format!("No such {what}: '{id}'"),
        Some("id"),
    )
}

fn customer(id: &str, email: &str, name: &str, phone: &str, city: &str, created: i64) -> Value {
    json!({
        "id": id, "object": "customer", "address": {"city": city, "country": "GB", "line1": null,
            "line2": null, "postal_code": null, "state": null},
        "balance": 0, "created": created, "currency": "gbp", "default_source": null,
        "delinquent": false, "description": null, "email": email, "invoice_prefix": id[4..12].to_uppercase(),
        "livemode": false, "metadata": {}, "name": name, "phone": phone,
        "preferred_locales": ["en-GB"], "shipping": null, "tax_exempt": "none"
    })
}

fn charge(id: &str, customer: &str, amount: i64, description: &str, created: i64) -> Value {
    json!({
        "id": id, "object": "charge", "amount": amount, "amount_captured": amount,
        "amount_refunded": 0, "captured": true, "created": created, "currency": "gbp",
        "customer": customer, "description": description, "livemode": false, "paid": true,
        "status": "succeeded", "receipt_email": null,
        "payment_method_details": {"type": "card", "card": {"brand": "visa", "last4": "4242",
            "exp_month": 8, "exp_year": 2031, "country": "GB"}},
        "billing_details": {"email": null, "name": null, "phone": null}
    })
}

impl Stripe {
    /// Alice has two customers (one per checkout she used) with three charges; Bob one
    /// customer with one charge.
    pub fn seeded() -> Stripe {
        Stripe {
            customers: vec![
                customer(
                    "cus_Q1aliceAAAA01",
                    "alice@example.com",
                    "Alice Archer",
                    "+447700900001",
                    "London",
                    1_700_000_000,
                ),
                customer(
                    "cus_Q1bobBBBBB01",
                    "bob@example.com",
                    "Bob Baker",
                    "+447700900002",
                    "Leeds",
                    1_700_000_100,
                ),
                customer(
                    "cus_Q1aliceAAAA02",
                    "alice@example.com",
                    "Alice Archer",
                    "+447700900001",
                    "London",
                    1_700_000_200,
                ),
            ],
            charges: vec![
                charge(
                    "ch_3alice000000001",
                    "cus_Q1aliceAAAA01",
                    1999,
                    "Annual plan",
                    1_700_000_300,
                ),
                charge(
                    "ch_3bob0000000001",
                    "cus_Q1bobBBBBB01",
                    499,
                    "Monthly plan",
                    1_700_000_400,
                ),
                charge(
                    "ch_3alice000000002",
                    "cus_Q1aliceAAAA01",
                    2499,
                    "Annual plan renewal",
                    1_700_000_500,
                ),
                charge(
                    "ch_3alice000000003",
                    "cus_Q1aliceAAAA02",
                    999,
                    "Gift card",
                    1_700_000_600,
                ),
            ],
            idempotency: BTreeMap::new(),
        }
    }

    fn list(&self, req: &Req, url: &str, items: Vec<&Value>) -> Answer {
        let limit = match req.param("limit").map(str::parse::<usize>) {
            None => 10,
            Some(Ok(n)) if (1..=100).contains(&n) => n,
            Some(_) => {
                return error(
                    400,
                    "invalid_request_error",
                    Some("parameter_invalid_integer"),
                    "Invalid integer: limit must be between 1 and 100",
                    Some("limit"),
                );
            }
        };
        // Newest first, as Stripe lists.
        let mut items = items;
        items.sort_by(|a, b| b["created"].as_i64().cmp(&a["created"].as_i64()));
        let start = match req.param("starting_after") {
            None => 0,
            Some(after) => match items.iter().position(|i| i["id"] == after) {
                Some(p) => p + 1,
                None => {
                    return error(
                        400,
                        "invalid_request_error",
                        Some("resource_missing"),
                        &format!("No such object: '{after}'"),
                        Some("starting_after"),
                    );
                }
            },
        };
        let page: Vec<Value> = items
            .iter()
            .skip(start)
            .take(limit)
            .map(|v| (*v).clone())
            .collect();
        let has_more = start + page.len() < items.len();
        (
            200,
            json!({"object": "list", "data": page, "has_more": has_more, "url": url}),
        )
    }

    fn update(&mut self, id: &str, form: &[(String, String)]) -> Answer {
        let Some(c) = self
            .customers
            .iter_mut()
            .find(|c| c["id"] == id && c.get("deleted").is_none())
        else {
            return missing("customer", id);
        };
        for (k, v) in form {
            let nested = |prefix: &str| {
                k.strip_prefix(prefix)
                    .and_then(|r| r.strip_suffix(']'))
                    .map(str::to_owned)
            };
            if let Some(key) = nested("metadata[") {
                c["metadata"][key] = json!(v);
            } else if let Some(field) = nested("address[") {
                c["address"][field] = json!(v);
            } else if matches!(k.as_str(), "name" | "email" | "phone" | "description") {
                c[k.as_str()] = if v.is_empty() { Value::Null } else { json!(v) };
            } else {
                return error(
                    400,
                    "invalid_request_error",
                    Some("parameter_unknown"),
                    &format!("Received unknown parameter: {k}"),
                    Some(k),
                );
            }
        }
        (200, c.clone())
    }
}

impl Api for Stripe {
    fn authenticate(&self, req: &Req) -> Option<Response> {
        match req.credential() {
            Some(key) if key == SECRET_KEY => None,
            Some(key) => Some(respond(error(
                401,
                "invalid_request_error",
                None,
                &format!("Invalid API Key provided: {}", mask_key(&key)),
                None,
            ))),
            None => Some(respond(error(
                401,
                "invalid_request_error",
                None,
                "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
                None,
            ))),
        }
    }

    fn handle(&mut self, req: &Req) -> Response {
        let form = req.form();
        if req.method == Method::POST
            && let Some(key) = req.header("idempotency-key").map(str::to_owned)
        {
            let params = format!(
                "{} {}",
                req.path().join("/"),
                String::from_utf8_lossy(&req.body)
            );
            if let Some((sent, status, body)) = self.idempotency.get(&key) {
                if *sent != params {
                    return respond(error(
                        400,
                        "idempotency_error",
                        None,
                        &format!(
                            "Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{key}' if you meant to execute a different request."
                        ),
                        None,
                    ));
                }
                let mut resp = respond((*status, body.clone()));
                set_header(&mut resp, "idempotent-replayed", "true");
                return resp;
            }
            let (status, body) = self.route(req, &form);
            self.idempotency.insert(key, (params, status, body.clone()));
            return respond((status, body));
        }
        respond(self.route(req, &form))
    }

    fn throttled(&self, _retry_after: u64) -> Response {
        respond(error(
            429,
            "invalid_request_error",
            Some("rate_limit"),
            "Too many requests hit the API too quickly. We recommend an exponential backoff of your requests.",
            None,
        ))
    }

    fn snapshot(&self) -> Value {
        json!({"customers": self.customers, "charges": self.charges})
    }
}

impl Stripe {
    fn route(&mut self, req: &Req, form: &[(String, String)]) -> Answer {
        let path = req.path();
        match (req.method.clone(), path.as_slice()) {
            (Method::GET, ["customers"]) => {
                let email = req.param("email");
                let items = self
                    .customers
                    .iter()
                    .filter(|c| c.get("deleted").is_none())
                    .filter(|c| email.is_none_or(|e| c["email"] == e))
                    .collect();
                self.list(req, "/v1/customers", items)
            }
            (Method::GET, ["customers", id]) => {
                match self.customers.iter().find(|c| c["id"] == *id) {
                    Some(c) => (200, c.clone()),
                    None => missing("customer", id),
                }
            }
            (Method::POST, ["customers", id]) => self.update(id, form),
            (Method::DELETE, ["customers", id]) => {
                match self
                    .customers
                    .iter_mut()
                    .find(|c| c["id"] == *id && c.get("deleted").is_none())
                {
                    Some(c) => {
                        *c = json!({"id": id, "object": "customer", "deleted": true});
                        (200, c.clone())
                    }
                    None => missing("customer", id),
                }
            }
            (Method::GET, ["charges"]) => {
                let customer = req.param("customer");
                let items = self
                    .charges
                    .iter()
                    .filter(|c| customer.is_none_or(|id| c["customer"] == id))
                    .collect();
                self.list(req, "/v1/charges", items)
            }
            (Method::GET, ["charges", id]) => match self.charges.iter().find(|c| c["id"] == *id) {
                Some(c) => (200, c.clone()),
                None => missing("charge", id),
            },
            _ => error(
                404,
                "invalid_request_error",
                None,
                &format!(
                    "Unrecognized request URL ({} /v1/{}).",
                    req.method,
                    path.join("/")
                ),
                None,
            ),
        }
    }
}

fn mask_key(key: &str) -> String {
    let tail: String = key
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("sk_****{tail}")
}
