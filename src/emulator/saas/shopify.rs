//! Shopify Admin GraphQL API (reference: <https://shopify.dev/docs/api/admin-graphql>).
//!
//! Not a GraphQL server: it answers the operations the catalogue's playbook sends,
//! recognised by their root field, with variables read as the API reads them.
//!
//! Reproduced: the `X-Shopify-Access-Token` header (401 `{"errors": "[API] Invalid API key
//! or access token ..."}` otherwise); `POST /graphql.json` with `query` and `variables`;
//! `customers(first:, query:)` with the search syntax's `email:` term (case-insensitive, a
//! trailing `*` as prefix match) returning `nodes`; `customer(id:)` (`null` when there is
//! none) with its `orders(first:)`; `customerUpdate(input:)` with `userErrors`;
//! `customerRequestDataErasure(customerId:)` answering the `customerId` (or a
//! `DOES_NOT_EXIST` user error) and erasing the customer ten days later on the emulator
//! clock (the help centre's delay), orders anonymised; errors in a 200 for a query without
//! a known root field or with a missing variable; every answer's `extensions.cost` with a
//! leaky bucket's `throttleStatus`, and, throttled, a 200 with the `THROTTLED` error whose
//! cost says how long to wait.
//!
//! Not reproduced: the GraphQL language itself (fields are not selected: every field of a
//! node comes back), the REST Admin API, webhooks (`customers/redact`), query costs
//! computed from the query, other objects.

use std::time::Duration;

use axum::http::Method;
use axum::response::Response;
use serde_json::{Value, json};

use super::{Api, Req, json as json_resp};

/// The Admin API access token the emulator accepts.
pub const ACCESS_TOKEN: &str = "shpat_emulator";

/// Days between an erasure request and the erasure.
pub const ERASURE_DAYS: u64 = 10;

/// Shopify's state.
pub struct Shopify {
    customers: Vec<Value>,
    orders: Vec<Value>,
    /// Erasure requests: customer id and the emulator time (seconds) they were made.
    erasures: Vec<(String, u64)>,
    /// Emulator clock, in seconds since it started.
    clock: u64,
}

fn customer(n: u64, email: &str, first: &str, last: &str, city: &str) -> Value {
    json!({
        "id": format!("gid://shopify/Customer/{n}"), "email": email, "firstName": first,
        "lastName": last, "phone": null, "createdAt": "2024-02-02T10:00:00Z",
        "defaultAddress": {"address1": "1 Example Street", "city": city, "country": "United Kingdom"},
        "tags": ["newsletter"], "note": null
    })
}

fn order(n: u64, customer: u64, total: &str) -> Value {
    json!({
        "id": format!("gid://shopify/Order/{n}"), "name": format!("#{n}"),
        "createdAt": "2024-03-03T10:00:00Z", "customerId": format!("gid://shopify/Customer/{customer}"),
        "email": null, "totalPriceSet": {"shopMoney": {"amount": total, "currencyCode": "GBP"}}
    })
}

fn cost() -> Value {
    json!({"requestedQueryCost": 12, "actualQueryCost": 12,
        "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": 1988, "restoreRate": 100.0}})
}

fn data(d: Value) -> Response {
    json_resp(200, &json!({"data": d, "extensions": {"cost": cost()}}))
}

fn gql_error(message: &str) -> Response {
    json_resp(
        200,
        &json!({"errors": [{"message": message, "locations": [{"line": 1, "column": 1}]}],
            "extensions": {"cost": cost()}}),
    )
}

/// The root field of the first selection of an operation.
fn root_field(query: &str) -> Option<&str> {
    let open = query.find('{')?;
    let rest = query[open + 1..].trim_start();
    let end = rest
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    Some(&rest[..end]).filter(|f| !f.is_empty())
}

/// The value of `name:` inside the root field's arguments when written as a literal.
fn literal_arg(query: &str, name: &str) -> Option<u64> {
    let at = query.find(&format!("{name}:"))?;
    let rest = query[at + name.len() + 1..].trim_start();
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

impl Shopify {
    /// Alice with two orders, Bob with one.
    pub fn seeded() -> Shopify {
        Shopify {
            customers: vec![
                customer(7001, "alice@example.com", "Alice", "Archer", "London"),
                customer(7002, "bob@example.com", "Bob", "Baker", "Leeds"),
            ],
            orders: vec![
                order(1001, 7001, "19.99"),
                order(1002, 7002, "5.00"),
                order(1003, 7001, "42.50"),
            ],
            erasures: Vec::new(),
            clock: 0,
        }
    }

    fn erase_due(&mut self) {
        let due: Vec<String> = self
            .erasures
            .iter()
            .filter(|(_, at)| self.clock >= at + ERASURE_DAYS * 86_400)
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            self.customers.retain(|c| c["id"] != id.as_str());
            for o in &mut self.orders {
                if o["customerId"] == id.as_str() {
                    o["customerId"] = Value::Null;
                }
            }
            self.erasures.retain(|(e, _)| *e != id);
        }
    }

    fn search(&self, q: &str) -> Vec<Value> {
        self.customers
            .iter()
            .filter(|c| {
                q.split_whitespace().all(|term| {
                    let Some(v) = term.strip_prefix("email:") else {
                        return false;
                    };
                    let v = v.trim_matches('"').to_lowercase();
                    let email = c["email"].as_str().unwrap_or_default().to_lowercase();
                    match v.strip_suffix('*') {
                        Some(prefix) => email.starts_with(prefix),
                        None => email == v,
                    }
                })
            })
            .cloned()
            .collect()
    }

    fn with_orders(&self, c: &Value, first: usize) -> Value {
        let mut c = c.clone();
        let nodes: Vec<Value> = self
            .orders
            .iter()
            .filter(|o| o["customerId"] == c["id"])
            .take(first)
            .cloned()
            .collect();
        c["orders"] = json!({"nodes": nodes});
        c
    }
}

impl Api for Shopify {
    fn authenticate(&self, req: &Req) -> Option<Response> {
        (req.header("x-shopify-access-token") != Some(ACCESS_TOKEN)).then(|| {
            json_resp(
                401,
                &json!({"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}),
            )
        })
    }

    fn handle(&mut self, req: &Req) -> Response {
        self.erase_due();
        if req.method != Method::POST || req.path() != ["graphql.json"] {
            return json_resp(404, &json!({"errors": "Not Found"}));
        }
        let Some(body) = req.json() else {
            return json_resp(
                400,
                &json!({"errors": {"query": "Required parameter missing or invalid"}}),
            );
        };
        let query = body["query"].as_str().unwrap_or_default();
        let vars = &body["variables"];
        let var = |name: &str| vars.get(name).filter(|v| !v.is_null());
        match root_field(query) {
            Some("customers") => {
                let first = literal_arg(query, "first").unwrap_or(50) as usize;
                let Some(q) = var("q").or_else(|| var("query")).and_then(Value::as_str) else {
                    return gql_error("Variable $q of type String! was provided invalid value");
                };
                let nodes: Vec<Value> = self.search(q).into_iter().take(first).collect();
                data(json!({"customers": {"nodes": nodes}}))
            }
            Some("customer") => {
                let Some(id) = var("id").and_then(Value::as_str) else {
                    return gql_error("Variable $id of type ID! was provided invalid value");
                };
                let first = literal_arg(query, "first").unwrap_or(50) as usize;
                let found = self.customers.iter().find(|c| c["id"] == id);
                data(json!({"customer": found.map(|c| self.with_orders(c, first))}))
            }
            Some("customerUpdate") => {
                let Some(input) = var("input").and_then(Value::as_object).cloned() else {
                    return gql_error(
                        "Variable $input of type CustomerInput! was provided invalid value",
                    );
                };
                let id = input
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let Some(c) = self.customers.iter_mut().find(|c| c["id"] == id.as_str()) else {
                    return data(json!({"customerUpdate": {"customer": null,
                        "userErrors": [{"field": ["id"], "message": "Customer does not exist"}]}}));
                };
                for (k, v) in &input {
                    if matches!(
                        k.as_str(),
                        "firstName" | "lastName" | "email" | "phone" | "note"
                    ) {
                        c[k.as_str()] = v.clone();
                    }
                }
                let c = c.clone();
                data(json!({"customerUpdate": {"customer": c, "userErrors": []}}))
            }
            Some("customerRequestDataErasure") => {
                let Some(id) = var("customerId")
                    .or_else(|| var("id"))
                    .and_then(Value::as_str)
                else {
                    return gql_error(
                        "Variable $customerId of type ID! was provided invalid value",
                    );
                };
                if !self.customers.iter().any(|c| c["id"] == id) {
                    return data(json!({"customerRequestDataErasure": {"customerId": null,
                        "userErrors": [{"field": ["customerId"], "message": "Customer does not exist", "code": "DOES_NOT_EXIST"}]}}));
                }
                if !self.erasures.iter().any(|(e, _)| e == id) {
                    self.erasures.push((id.to_owned(), self.clock));
                }
                data(json!({"customerRequestDataErasure": {"customerId": id, "userErrors": []}}))
            }
            _ => gql_error("Field is not defined on QueryRoot"),
        }
    }

    fn throttled(&self, retry_after: u64) -> Response {
        // The bucket holds less than the query costs: the wait is the shortfall over the
        // restore rate.
        let rate = 50.0;
        json_resp(
            200,
            &json!({"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED",
                    "documentation": "https://shopify.dev/api/usage/rate-limits"}}],
                "extensions": {"cost": {"requestedQueryCost": 12, "actualQueryCost": null,
                    "throttleStatus": {"maximumAvailable": 1000.0,
                        "currentlyAvailable": 12.0 - rate * retry_after as f64,
                        "restoreRate": rate}}}}),
        )
    }

    fn snapshot(&self) -> Value {
        json!({"customers": self.customers, "orders": self.orders,
            "erasures": self.erasures.iter().map(|(id, at)| json!({"customerId": id, "at": at})).collect::<Vec<_>>()})
    }

    fn advance(&mut self, by: Duration) {
        self.clock += by.as_secs();
        self.erase_due();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_fields_and_literal_arguments() {
        assert_eq!(
            root_field(
                "query find($q: String!) { customers(first: 5, query: $q) { nodes { id } } }"
            ),
            Some("customers")
        );
        assert_eq!(
            root_field(
                "mutation erase($id: ID!) {customerRequestDataErasure(customerId: $id) { customerId } }"
            ),
            Some("customerRequestDataErasure")
        );
        assert_eq!(
            literal_arg("{ customers(first: 5) { nodes { id } } }", "first"),
            Some(5)
        );
    }
}
