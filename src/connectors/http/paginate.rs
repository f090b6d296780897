//! Listings over several pages: a next link in the body or in the `Link` header, a
//! continuation token sent back in the JSON body, a continuation header sent back as a
//! request header, a cursor (from the body or the page's last item) or an offset sent back
//! as a query parameter. Every page is retried on its own; the items of all pages become
//! one list, or, given a sink, go to it page by page and are not kept.

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
fn take_items(body: &mut Value, pg: &Paginate, page: u32) -> Result<Vec<Value>, ConnectorError> {
    let pointer = pg.items.as_str();
    let found = if pointer.is_empty() {
        Some(body)
    } else {
        body.pointer_mut(pointer)
    };
    match found.map(Value::take) {
        Some(Value::Array(items)) => Ok(items),
        Some(Value::Object(keyed)) if pg.keyed => Ok(keyed.into_iter().map(|(_, v)| v).collect()),
        Some(Value::Null) => Ok(Vec::new()),
        None if pg.missing_is_empty => Ok(Vec::new()),
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
            let page_items = take_items(&mut resp.body, pg, pages)?;
            match sink.as_mut() {
                // Streamed: each page goes to the sink before the next is asked for, and
                // nothing of it is kept, so memory stays flat in the number of records.
                Some(sink) => {
                    records += page_items.len() as u64;
                    sink.write_page(page_items).map_err(sink_error)?;
                }
                None => items.extend(page_items),
            }
            last_status = resp.status;
            last_headers = resp.headers;
        }
        Ok(Response {
            status: last_status,
            // Streamed pages are in the sink, not in the body.
            body: if sink.is_some() {
                Value::Null
            } else {
                Value::Array(items)
            },
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
        if let Some(pointer) = &pg.has_more {
            match resp.body.pointer(pointer) {
                Some(Value::Bool(false)) | None | Some(Value::Null) => return Ok(None),
                Some(Value::Bool(true)) => {}
                Some(_) => {
                    return Err(invalid(format!(
                        "the `has_more` at `{pointer}` is not a boolean"
                    )));
                }
            }
        }
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
        if pg.link_header
            && let Some(link) = resp.headers.get("link").and_then(|l| next_link_header(l))
        {
            let mut next = current.clone();
            next.url = self.target.link(&link, &self.query)?;
            return Ok(Some(next));
        }
        if let Some(param) = &pg.cursor_param {
            let cursor = match (&pg.cursor, &pg.cursor_item) {
                (Some(pointer), _) => string_at(&resp.body, pointer, "cursor")?.map(str::to_owned),
                (None, Some(pointer)) => page_items(&resp.body, &pg.items)
                    .last()
                    .and_then(|item| item.pointer(pointer))
                    .map(|v| match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .filter(|s| !s.is_empty()),
                (None, None) => {
                    return Err(ConnectorError::Refused(
                        "`paginate.cursor_param` needs `cursor` or `cursor_item`".into(),
                    ));
                }
            };
            return match cursor {
                Some(cursor) => Ok(Some(with_query(current, param, &cursor))),
                None if pg.has_more.is_some() => Err(invalid(format!(
                    "the page says more follow but has no cursor for `{param}`"
                ))),
                None => Ok(None),
            };
        }
        if let Some(param) = &pg.offset_param {
            let got = page_items(&resp.body, &pg.items).len();
            let full = pg.page_size.is_none_or(|size| got >= size as usize);
            if got == 0 || !full {
                return Ok(None);
            }
            let offset: usize = current
                .url
                .query_pairs()
                .find(|(k, _)| k == param.as_str())
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            return Ok(Some(with_query(
                current,
                param,
                &(offset + got).to_string(),
            )));
        }
        Ok(None)
    }
}

/// The items of a page, without taking them (empty when there is no list).
fn page_items<'a>(body: &'a Value, pointer: &str) -> &'a [Value] {
    let found = if pointer.is_empty() {
        Some(body)
    } else {
        body.pointer(pointer)
    };
    found.and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

/// `current` with the query parameter `name` set to `value` (replacing it if present).
fn with_query(current: &Prepared, name: &str, value: &str) -> Prepared {
    let mut next = current.clone();
    let kept: Vec<(String, String)> = current
        .url
        .query_pairs()
        .filter(|(k, _)| k != name)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    next.url
        .query_pairs_mut()
        .clear()
        .extend_pairs(kept)
        .append_pair(name, value);
    next
}

/// The target of the `rel="next"` link in an RFC 8288 `Link` header value, if any.
pub(super) fn next_link_header(value: &str) -> Option<String> {
    // Links are separated by commas outside `<...>`; URLs may hold commas.
    let mut rest = value;
    while let Some(start) = rest.find('<') {
        let end = start + rest[start..].find('>')?;
        let target = &rest[start + 1..end];
        let after = &rest[end + 1..];
        let params_end = after.find('<').unwrap_or(after.len());
        let params = &after[..params_end];
        let is_next = params.split(';').any(|p| {
            let p = p.trim().trim_end_matches(',').trim();
            let Some((k, v)) = p.split_once('=') else {
                return false;
            };
            k.trim().eq_ignore_ascii_case("rel")
                && v.trim()
                    .trim_matches('"')
                    .split_ascii_whitespace()
                    .any(|r| r.eq_ignore_ascii_case("next"))
        });
        if is_next {
            return Some(target.to_owned());
        }
        rest = &after[params_end..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::next_link_header;

    #[test]
    fn link_header_next_is_found_among_others() {
        assert_eq!(
            next_link_header(
                r#"<https://x.myshopify.com/admin/api/2024-01/customers.json?page_info=abc&limit=2>; rel="previous", <https://x.myshopify.com/admin/api/2024-01/customers.json?page_info=d,ef&limit=2>; rel="next""#
            )
            .as_deref(),
            Some("https://x.myshopify.com/admin/api/2024-01/customers.json?page_info=d,ef&limit=2")
        );
        assert_eq!(
            next_link_header(r#"<https://o.okta.com/api/v1/users?after=00u1>; rel="next" , <https://o.okta.com/api/v1/users>; rel="self""#).as_deref(),
            Some("https://o.okta.com/api/v1/users?after=00u1")
        );
        assert_eq!(next_link_header(r#"<https://a/b>; rel="self""#), None);
        assert_eq!(next_link_header("garbage"), None);
    }
}
