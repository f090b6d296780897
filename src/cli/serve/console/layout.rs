//! The frame of every console page, and small pieces the pages share.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, html};

use super::Session;

/// The navigation's entries: (path, label).
const NAV: &[(&str, &str)] = &[
    ("/console", "Queue"),
    ("/console/tasks", "My tasks"),
    ("/console/audit", "Audit log"),
];

/// A whole page: `current` is the navigation entry it belongs to.
pub fn page(session: Option<&Session>, title: &str, current: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · dsrctl console" }
                link rel="stylesheet" href="/console/assets/console.css";
                script src="/console/assets/console.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    span.brand { "dsrctl console" }
                    @if let Some(s) = session {
                        nav aria-label="Main" {
                            ul {
                                @for (href, label) in NAV {
                                    li {
                                        @if *href == current {
                                            a href=(href) aria-current="page" { (label) }
                                        } @else {
                                            a href=(href) { (label) }
                                        }
                                    }
                                }
                            }
                        }
                        form.signout method="post" action="/console/logout" {
                            (csrf_field(s))
                            span { "Signed in as " strong { (s.caller.name) } }
                            " "
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main #main tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// The hidden field carrying the session's CSRF token; first in every form.
pub fn csrf_field(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

/// A page saying what went wrong, with its status.
pub fn error_page(
    session: Option<&Session>,
    status: StatusCode,
    title: &str,
    message: &str,
) -> Response {
    let body = html! {
        p.notice.error role="alert" { (message) }
        p { a href="/console" { "Back to the queue" } }
    };
    (status, page(session, title, "", body)).into_response()
}

/// A moment in UTC: machine-readable, shown in UTC without JavaScript and in the browser's
/// time zone with it.
pub fn time(at: DateTime<Utc>) -> Markup {
    html! {
        time datetime=(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)) data-local {
            (at.format("%Y-%m-%d %H:%M UTC"))
        }
    }
}

/// A moment to the second, for timelines and the audit log.
pub fn time_precise(at: DateTime<Utc>) -> Markup {
    html! {
        time datetime=(at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)) data-local="seconds" {
            (at.format("%Y-%m-%d %H:%M:%S UTC"))
        }
    }
}

/// An audit entry's details as `key: value` pairs, subject values scrubbed.
pub fn detail_text(detail: &serde_json::Value, scrubber: &crate::report::Scrubber) -> String {
    let text = match detail {
        serde_json::Value::Null => String::new(),
        serde_json::Value::Object(m) => m
            .iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => format!("{k}: {s}"),
                other => format!("{k}: {other}"),
            })
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    };
    scrubber.scrub(&text)
}

/// An optional moment, or a dash.
pub fn maybe_time(at: Option<DateTime<Utc>>) -> Markup {
    match at {
        Some(t) => time(t),
        None => html! { "—" },
    }
}

/// Days left to a deadline, in words and colour (colour is never the only sign).
pub fn days_left(days: Option<i64>) -> Markup {
    match days {
        None => html! { span.days.ended { "ended" } },
        Some(d) if d < 0 => html! { span.days.overdue { (-d) " " (plural(-d, "day")) " overdue" } },
        Some(0) => html! { span.days.overdue { "due today" } },
        Some(d) if d <= 7 => html! { span.days.soon { (d) " " (plural(d, "day")) " left" } },
        Some(d) => html! { span.days.ok { (d) " days left" } },
    }
}

/// A state as a labelled badge.
pub fn state_badge(state: &str) -> Markup {
    html! { span class={ "state state-" (state) } { (state) } }
}

fn plural(n: i64, word: &str) -> String {
    if n == 1 {
        word.to_owned()
    } else {
        format!("{word}s")
    }
}

/// A table that scrolls sideways on a narrow screen, reachable by keyboard.
pub fn scroll_table(label: &str, table: Markup) -> Markup {
    html! {
        div.table-wrap role="region" aria-label=(label) tabindex="0" { (table) }
    }
}

/// What is escaped in a URL path segment: all but unreserved characters.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A value as one URL path segment.
pub fn seg(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, SEGMENT).to_string()
}
