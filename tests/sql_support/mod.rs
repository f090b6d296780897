//! A database per test: a PostgreSQL schema, a MariaDB database or a SQLite file in a tempdir,
//! with the same customers/orders tables and rows on each.

#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use dsrctl::connectors::sql::SqlClient;
use dsrctl::connectors::{Connector, ConnectorError, Operation, Response};
use dsrctl::model::{SqlAction, SqlConnector};
use serde_json::{Value, json};
use sqlx::{MySqlPool, PgPool};

/// The backend a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Pg,
    My,
    Lite,
}

pub enum Admin {
    Pg(PgPool),
    My(MySqlPool),
    Lite,
}

pub struct Db {
    pub kind: Kind,
    pub client: Arc<SqlClient>,
    pub url: String,
    pub ns: String,
    pub admin: Admin,
    pub dir: tempfile::TempDir,
}

pub const HMAC_KEY: &str = "test-key-not-secret";

fn pg_url() -> String {
    std::env::var("DSRCTL_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn my_url() -> String {
    std::env::var("DSRCTL_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into())
}

fn unique(test: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mut s = format!(
        "dsrctl_{}_{}_{}_{}",
        test,
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        nanos % 100_000
    );
    s.truncate(60);
    s
}

pub fn config(url: &str) -> SqlConnector {
    serde_json::from_value(json!({
        "url": url,
        "concurrency": 4,
        "timeout": "20s",
        "create_if_missing": true,
        "retry": { "attempts": 4, "backoff": "50ms", "max_elapsed": "30s" }
    }))
    .expect("config")
}

pub fn op(v: Value) -> Operation {
    let a: SqlAction = serde_json::from_value(v).expect("valid SqlAction");
    Operation::Sql(a)
}

impl Db {
    pub async fn new(kind: Kind, test: &str) -> Db {
        let ns = unique(test);
        let dir = tempfile::tempdir().expect("tempdir");
        let (url, admin) = match kind {
            Kind::Pg => {
                let base = pg_url();
                let admin = PgPool::connect(&base).await.expect("PostgreSQL reachable");
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{ns}\"")))
                    .execute(&admin)
                    .await
                    .expect("create schema");
                (base, Admin::Pg(admin))
            }
            Kind::My => {
                let base = my_url();
                let admin = MySqlPool::connect(&base).await.expect("MariaDB reachable");
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE `{ns}`")))
                    .execute(&admin)
                    .await
                    .expect("create database");
                let cut = base.rfind('/').expect("database in URL");
                (format!("{}/{ns}", &base[..cut]), Admin::My(admin))
            }
            Kind::Lite => ("sqlite:test.db".to_owned(), Admin::Lite),
        };
        let client =
            SqlClient::connect("db", &url, &config(&url), dir.path(), Some(HMAC_KEY.into()))
                .expect("connect");
        let db = Db {
            kind,
            client: Arc::new(client),
            url,
            ns,
            admin,
            dir,
        };
        for sql in db.seed() {
            db.exec(&sql).await;
        }
        db
    }

    /// A client on the same database with other settings.
    pub fn other_client(&self, hmac: Option<&str>) -> SqlClient {
        SqlClient::connect(
            "db2",
            &self.url,
            &config(&self.url),
            self.dir.path(),
            hmac.map(str::to_owned),
        )
        .expect("connect")
    }

    pub fn base_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The name of a table as operations state it (schema-qualified on PostgreSQL).
    pub fn t(&self, name: &str) -> String {
        match self.kind {
            Kind::Pg => format!("{}.{name}", self.ns),
            _ => name.to_owned(),
        }
    }

    pub async fn exec(&self, sql: &str) {
        self.client
            .mutate(&op(json!({ "execute": sql })))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    pub async fn read(&self, v: Value) -> Result<Vec<Value>, ConnectorError> {
        let r: Response = self.client.read(&op(v), None).await?;
        match r.body {
            Value::Array(rows) => Ok(rows),
            other => panic!("rows expected, got {other}"),
        }
    }

    pub async fn count(&self, table: &str) -> u64 {
        let rows = self
            .read(json!({ "query": format!("SELECT COUNT(*) AS n FROM {}", self.q(table)) }))
            .await
            .expect("count");
        rows[0]["n"].as_u64().expect("count is a number")
    }

    /// A quoted table name for raw SQL.
    pub fn q(&self, name: &str) -> String {
        match self.kind {
            Kind::Pg => format!("\"{}\".\"{name}\"", self.ns),
            Kind::My => format!("`{name}`"),
            Kind::Lite => format!("\"{name}\""),
        }
    }

    /// Creates `tables` (name, columns; `{name}` in the columns is that table, quoted), in
    /// order, then inserts `rows` (name, `VALUES` list).
    pub async fn create(&self, tables: &[(&str, &str)], rows: &[(&str, &str)]) {
        let tail = if self.kind == Kind::My {
            " ENGINE = InnoDB"
        } else {
            ""
        };
        for (name, cols) in tables {
            let mut cols = (*cols).to_owned();
            for (other, _) in tables {
                cols = cols.replace(&format!("{{{other}}}"), &self.q(other));
            }
            self.exec(&format!("CREATE TABLE {} ({cols}){tail}", self.q(name)))
                .await;
        }
        for (name, values) in rows {
            self.exec(&format!("INSERT INTO {} VALUES {values}", self.q(name)))
                .await;
        }
    }

    pub async fn drop(self) {
        self.client.close().await;
        match &self.admin {
            Admin::Pg(p) => {
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP SCHEMA \"{}\" CASCADE",
                    self.ns
                )))
                .execute(p)
                .await;
            }
            Admin::My(p) => {
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE `{}`", self.ns)))
                    .execute(p)
                    .await;
            }
            Admin::Lite => {}
        }
    }

    fn seed(&self) -> Vec<String> {
        let (c, o) = (self.q("customers"), self.q("orders"));
        let (ddl_c, ddl_o, bytes) = match self.kind {
            Kind::Pg => (
                "id BIGINT PRIMARY KEY, email VARCHAR(200), name TEXT, city TEXT, balance NUMERIC(12,2), \
                 score DOUBLE PRECISION, active BOOLEAN, born DATE, created TIMESTAMPTZ, avatar BYTEA, \
                 prefs JSONB, ext_id UUID",
                format!(
                    "id BIGINT PRIMARY KEY, customer_id BIGINT NOT NULL REFERENCES {c}(id), item TEXT, amount NUMERIC(10,2)"
                ),
                "'\\x0102'",
            ),
            Kind::My => (
                "id BIGINT PRIMARY KEY, email VARCHAR(200), name TEXT, city TEXT, balance DECIMAL(12,2), \
                 score DOUBLE, active BOOLEAN, born DATE, created DATETIME, avatar BLOB, prefs JSON, \
                 ext_id CHAR(36)",
                format!(
                    "id BIGINT PRIMARY KEY, customer_id BIGINT NOT NULL, item TEXT, amount DECIMAL(10,2), \
                         FOREIGN KEY (customer_id) REFERENCES {c}(id)"
                ),
                "X'0102'",
            ),
            Kind::Lite => (
                "id INTEGER PRIMARY KEY, email TEXT, name TEXT, city TEXT, balance NUMERIC, score REAL, \
                 active BOOLEAN, born DATE, created DATETIME, avatar BLOB, prefs JSON, ext_id TEXT",
                format!(
                    "id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES {c}(id), item TEXT, amount NUMERIC"
                ),
                "X'0102'",
            ),
        };
        let created = if self.kind == Kind::Pg {
            "'2024-05-06 07:08:09+00'"
        } else {
            "'2024-05-06 07:08:09'"
        };
        vec![
            format!("CREATE TABLE {c} ({ddl_c})"),
            format!("CREATE TABLE {o} ({ddl_o})"),
            format!(
                "INSERT INTO {c} (id, email, name, city, balance, score, active, born, created, avatar, prefs, ext_id) VALUES \
                 (1, 'ada@example.com', 'Ada', 'London', 12.50, 1.5, TRUE, '1990-01-02', {created}, {bytes}, '{{\"lang\":\"en\"}}', '8f14e45f-ceea-467f-a0e6-f5c3b1e3c3a1'), \
                 (2, 'bob@example.com', 'Bob', 'Paris', 0.10, -2.25, FALSE, '1985-12-31', {created}, NULL, NULL, NULL), \
                 (3, 'cy@example.com', 'Cy', 'Rome', 100, 0, TRUE, NULL, NULL, NULL, NULL, NULL)"
            ),
            format!(
                "INSERT INTO {o} (id, customer_id, item, amount) VALUES \
                 (10, 1, 'book', 9.99), (11, 1, 'pen', 1.50), (12, 1, 'ink', 3.00), \
                 (20, 2, 'lamp', 20.00), (30, 3, 'desk', 150.00), (31, 3, 'chair', 80.00)"
            ),
        ]
    }
}

/// Runs each named test body on PostgreSQL, MariaDB and SQLite.
#[macro_export]
macro_rules! on_all_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                use super::*;
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() { super::$name(Kind::Pg).await }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn mariadb() { super::$name(Kind::My).await }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() { super::$name(Kind::Lite).await }
            }
        )*
    };
}
