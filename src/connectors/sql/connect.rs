//! Pool construction from a connection URL, and the retry settings.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

use super::dialect::Dialect;
use super::pool::Pools;
use crate::connectors::ConnectorError;
use crate::model::RetryPolicy;

/// Retry settings for dropped connections.
#[derive(Debug, Clone)]
pub struct Retry {
    /// Most attempts, the first included.
    pub attempts: u32,
    /// First backoff, doubled each time.
    pub backoff: Duration,
    /// No retry that would pass this much total time.
    pub max_elapsed: Duration,
}

impl Retry {
    /// The policy's settings (its durations were parsed when the config was loaded).
    pub fn from_policy(p: &RetryPolicy) -> Self {
        Retry {
            attempts: p.attempts.max(1),
            backoff: p.backoff.get(),
            max_elapsed: p.max_elapsed.get(),
        }
    }
}

/// A lazily connecting pool for `url`. Relative SQLite paths resolve against `base_dir`.
pub fn pool(
    dialect: Dialect,
    url: &str,
    base_dir: &Path,
    size: u32,
    timeout: Duration,
    create_if_missing: bool,
) -> Result<Pools, ConnectorError> {
    // The URL may carry a password: never quote it in errors.
    let bad = |e: sqlx::Error| {
        ConnectorError::Config(format!("the connection URL is not valid: {}", kind_of(&e)))
    };
    Ok(match dialect {
        Dialect::Postgres => {
            let mut opts = PgConnectOptions::from_str(url).map_err(bad)?;
            if !url.contains("statement-cache-capacity") {
                // A derived erasure sends a few hundred distinct statements per subject, the
                // same for every subject: kept prepared, each is one round trip, not two
                // (sqlx keeps 100 by default, which such a plan cycles through, missing each).
                opts = opts.statement_cache_capacity(PG_STATEMENT_CACHE);
            }
            Pools::Pg(
                PgPoolOptions::new()
                    .max_connections(size)
                    .acquire_timeout(timeout)
                    // A dead connection fails its statement, which is retried on a new one:
                    // no ping round trip before every statement.
                    .test_before_acquire(false)
                    .connect_lazy_with(opts),
            )
        }
        Dialect::MySql => {
            let url = match url.strip_prefix("mariadb:") {
                Some(rest) => format!("mysql:{rest}"),
                None => url.to_owned(),
            };
            let opts = MySqlConnectOptions::from_str(&url).map_err(bad)?;
            Pools::My(
                MySqlPoolOptions::new()
                    .max_connections(size)
                    .acquire_timeout(timeout)
                    // A dead connection fails its statement, which is retried on a new one:
                    // no ping round trip before every statement.
                    .test_before_acquire(false)
                    .connect_lazy_with(opts),
            )
        }
        Dialect::Sqlite => {
            let rest = url
                .strip_prefix("sqlite://")
                .or_else(|| url.strip_prefix("sqlite:"))
                .unwrap_or(url);
            let path = rest.split('?').next().unwrap_or_default();
            let memory = path.is_empty() || path == ":memory:";
            let mut opts = SqliteConnectOptions::from_str(url).map_err(bad)?;
            if !memory {
                let p = Path::new(path);
                opts = opts.filename(if p.is_absolute() {
                    p.to_path_buf()
                } else {
                    base_dir.join(p)
                });
            }
            if create_if_missing {
                opts = opts.create_if_missing(true);
            }
            opts = opts.busy_timeout(timeout);
            Pools::Lite(
                SqlitePoolOptions::new()
                    .max_connections(if memory { 1 } else { size })
                    .acquire_timeout(timeout)
                    // A dead connection fails its statement, which is retried on a new one:
                    // no ping round trip before every statement.
                    .test_before_acquire(false)
                    .connect_lazy_with(opts),
            )
        }
    })
}

/// Prepared statements kept per PostgreSQL connection (unless the URL says
/// `statement-cache-capacity`).
pub const PG_STATEMENT_CACHE: usize = 1000;

fn kind_of(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Configuration(c) => {
            // Parse errors name the part, not the URL.
            let s = c.to_string();
            if s.contains('@') {
                "unparsable URL".to_owned()
            } else {
                s
            }
        }
        _ => "unparsable URL".to_owned(),
    }
}
