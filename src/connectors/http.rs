//! HTTP connector (see issue: HTTP execution).
