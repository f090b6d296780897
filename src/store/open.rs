//! Opening the state store named in config: a PostgreSQL URL or a SQLite path.

use std::path::Path;
use std::sync::Arc;

use super::{PostgresStore, SqliteStore, Store, StoreError};

/// Where the embedded store lives, relative to the project directory.
pub const DEFAULT_SQLITE_PATH: &str = ".dsrctl/state.db";

/// Opens the state store `url_or_path` names and migrates its schema: `postgres://` or
/// `postgresql://` is a PostgreSQL server (a `schema=NAME` query parameter selects, and
/// creates, a schema); anything else is a SQLite file, written as a path or `sqlite:PATH`
/// and relative to `base_dir`. An empty string is [`DEFAULT_SQLITE_PATH`].
pub async fn open(url_or_path: &str, base_dir: &Path) -> Result<Arc<dyn Store>, StoreError> {
    let location = url_or_path.trim();
    if location.starts_with("postgres://") || location.starts_with("postgresql://") {
        return Ok(Arc::new(PostgresStore::connect(location).await?));
    }
    let path = if location.is_empty() {
        DEFAULT_SQLITE_PATH
    } else {
        location
            .strip_prefix("sqlite://")
            .or_else(|| location.strip_prefix("sqlite:"))
            .unwrap_or(location)
    };
    if path.is_empty() || path.contains("://") {
        return Err(StoreError::Location(
            url_or_path.to_owned(),
            "expected a postgres:// URL or a SQLite file path".to_owned(),
        ));
    }
    let path = Path::new(path);
    let full = if path.is_absolute() {
        path.to_path_buf()
    } else {
        base_dir.join(path)
    };
    Ok(Arc::new(SqliteStore::open(&full).await?))
}
