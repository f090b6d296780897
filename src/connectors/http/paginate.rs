//! Listings over several pages: a next link in the body, a continuation token sent back in
//! the JSON body, or a continuation header sent back as a request header. Every page is
//! retried on its own; the items of all pages become one list.

use std::collections::BTreeMap;

use reqwest::header::{HeaderName, HeaderValue};
use serde_json::Value;

use super::exchange::Prepared;
use super::{HttpClient, sink_error};
use crate::connectors::{ConnectorError, HttpRequest, RecordSink, Response};
use crate::model::Paginate;

/// Body field that carries a continuation token when `token_field` is not given.
const DEFAULT_TOKEN_FIELD: &str = "continuationToken";

fn invalid(message: String) -> ConnectorError {
    ConnectorError::InvalidResponse {
        message,
        excerpt: String::new(),
        reach: crate::connectors::Reach::MaybeProcessed,
    }
}

/// A string at `pointer` in `body`, if present and not empty.
fn string_at<'a>(
    body: &'a Value,
    pointer: &str,
    what: &str,
) -> Result<Option<&'a str>, ConnectorError> {
    match body.pointer(pointer) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(format!(
            "the {what} at `{pointer}` is not a string"
        ))),
    }
}

/// Takes the list at `pointer` out of a page (`""`: the page is the list).
fn take_items(body: &mut Value, pointer: &str, page: u32) -> Result<Vec<Value>, ConnectorError> {
    let found = if pointer.is_empty() {
        Some(body)
    } else {
        body.pointer_mut(pointer)
    };
    match found.map(Value::take) {
        Some(Value::Array(items)) => Ok(items),
        Some(Value::Null) => Ok(Vec::new()),
        Some(_) => Err(invalid(format!(
            "page {page} has no list at `{pointer}` (something else is there); check `paginate.items`"
        ))),
        None => Err(invalid(format!(
            "page {page} has no list at `{pointer}`; check `paginate.items`"
        ))),
    }
}

impl HttpClient {
    pub(super) async fn paginate(
        &self,
        req: &HttpRequest,
        pg: &Paginate,
        first: Prepared,
        mut sink: Option<&mut (dyn RecordSink + '_)>,
    ) -> Result<Response, ConnectorError> {
        let mut next = Some(first);
        let mut items = Vec::new();
        let (mut pages, mut attempts, mut records) = (0u32, 0u32, 0u64);
        let mut last_status = None;
        let mut last_headers = BTreeMap::new();
        while let Some(page) = next.take() {
            if pages >= pg.max_pages.max(1) {
                return Err(invalid(format!(
                    "the listing goes on past `paginate.max_pages` ({}) pages; raise it if the service really holds that many",
                    pg.max_pages
                )));
            }
            pages += 1;
            let (raw, n) = self.call(&page).await?;
            attempts += n;
            let status = raw.status;
            let mut resp = self.interpret(raw, &req.absent_on, n)?;
            if resp.absent {
                if pages == 1 {
                    return Ok(resp);
                }
                return Err(invalid(format!(
                    "page {pages} of the listing answered {status}, as if the listing had vanished"
                )));
            }
            next = self.next_page(req, pg, &page, &resp)?;
            for item in take_items(&mut resp.body, &pg.items, pages)? {
                if let Some(sink) = sink.as_mut() {
                    sink.write(&item).map_err(sink_error)?;
                    records += 1;
                }
                items.push(item);
            }
            last_status = resp.status;
            last_headers = resp.headers;
        }
        Ok(Response {
            status: last_status,
            body: Value::Array(items),
            headers: last_headers,
            absent: false,
            affected: None,
            records,
            attempts,
        })
    }

    /// The request for the page after `current`, or `None` when the listing is complete.
    fn next_page(
        &self,
        req: &HttpRequest,
        pg: &Paginate,
        current: &Prepared,
        resp: &Response,
    ) -> Result<Option<Prepared>, ConnectorError> {
        if let Some(pointer) = &pg.next_link
            && let Some(link) = string_at(&resp.body, pointer, "next-page link")?
        {
            let mut next = current.clone();
            next.url = self.target.link(link, &self.query)?;
            return Ok(Some(next));
        }
        if let Some(pointer) = &pg.continuation_token
            && let Some(token) = string_at(&resp.body, pointer, "continuation token")?
        {
            let field = pg.token_field.as_deref().unwrap_or(DEFAULT_TOKEN_FIELD);
            let mut body = req
                .json
                .clone()
                .unwrap_or_else(|| Value::Object(Default::default()));
            let Some(object) = body.as_object_mut() else {
                return Err(ConnectorError::Refused(
                    "a continuation token goes into the JSON body, but the body is not an object"
                        .into(),
                ));
            };
            object.insert(field.to_owned(), Value::String(token.to_owned()));
            let mut next = current.clone();
            next.body = Some((body.to_string().into_bytes(), "application/json"));
            return Ok(Some(next));
        }
        if let Some(name) = &pg.continuation_header
            && let Some(value) = resp.headers.get(&name.to_ascii_lowercase())
            && !value.is_empty()
        {
            let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                ConnectorError::Refused(format!("`{name}` is not a valid header name"))
            })?;
            let value = HeaderValue::from_str(value).map_err(|_| {
                invalid(format!(
                    "the `{name}` continuation is not a valid header value"
                ))
            })?;
            let mut next = current.clone();
            next.headers.insert(header, value);
            return Ok(Some(next));
        }
        Ok(None)
    }
}
