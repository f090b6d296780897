//! SQL connector.
