//! The live schema of a database: tables, columns with their types, primary keys and
//! foreign keys, read from the catalogue (`information_schema`/`pg_catalog`, SQLite's
//! pragmas) through ordinary read-only queries.

use std::collections::BTreeMap;

use serde_json::Value;

use super::SqlClient;
use super::dialect::Dialect;
use crate::connectors::{Connector, ConnectorError, Operation};
use crate::model::SqlAction;

/// A database's schema as it is now.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveSchema {
    /// Tables by name (`schema.table` when a schema was asked for).
    pub tables: BTreeMap<String, LiveTable>,
    /// Foreign keys, one per column pair.
    pub foreign_keys: Vec<LiveForeignKey>,
}

/// One table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveTable {
    /// Columns in their order.
    pub columns: Vec<LiveColumn>,
    /// Primary key columns in key order.
    pub key: Vec<String>,
}

/// One column.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveColumn {
    /// Name.
    pub name: String,
    /// Type as the database names it (`character varying`, `varchar`, `TEXT`).
    pub ty: String,
    /// Whether it takes NULL.
    pub nullable: bool,
}

/// One column pair of a foreign key.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveForeignKey {
    /// The constraint's name (pairs of one composite key share it).
    pub constraint: String,
    /// The referencing table and column.
    pub from_table: String,
    pub from_column: String,
    /// The referenced table and column.
    pub to_table: String,
    pub to_column: String,
}

impl LiveForeignKey {
    /// Whether the constraint has several column pairs.
    pub fn is_composite(&self, all: &[LiveForeignKey]) -> bool {
        all.iter()
            .filter(|f| f.constraint == self.constraint && f.from_table == self.from_table)
            .count()
            > 1
    }
}

impl SqlClient {
    /// Reads the live schema: of `schema` (PostgreSQL schema, MySQL/MariaDB database; table
    /// names then carry it), else of the connection's current schema or database.
    pub async fn introspect(&self, schema: Option<&str>) -> Result<LiveSchema, ConnectorError> {
        let mut out = LiveSchema::default();
        let name = |t: &str| match schema {
            Some(s) => format!("{s}.{t}"),
            None => t.to_owned(),
        };
        match self.dialect() {
            Dialect::Sqlite => {
                let tables = self
                    .catalogue(
                        "SELECT name FROM sqlite_master WHERE type = 'table' \
                         AND name NOT LIKE 'sqlite_%' ORDER BY name",
                        &[],
                    )
                    .await?;
                for t in tables.iter().map(|r| text(r, "name")) {
                    let cols = self
                        .catalogue(
                            "SELECT name, type, \"notnull\" AS nn, pk FROM pragma_table_info(:t) ORDER BY cid",
                            &[("t", &t)],
                        )
                        .await?;
                    let mut table = LiveTable::default();
                    let mut key: Vec<(i64, String)> = Vec::new();
                    for c in &cols {
                        let col = text(c, "name");
                        let pk = c.get("pk").and_then(Value::as_i64).unwrap_or(0);
                        if pk > 0 {
                            key.push((pk, col.clone()));
                        }
                        table.columns.push(LiveColumn {
                            name: col,
                            ty: text(c, "type"),
                            nullable: c.get("nn").and_then(Value::as_i64).unwrap_or(0) == 0
                                && pk == 0,
                        });
                    }
                    key.sort();
                    table.key = key.into_iter().map(|(_, c)| c).collect();
                    let fks = self
                        .catalogue(
                            "SELECT id, \"table\" AS parent, \"from\" AS col, \"to\" AS ref \
                             FROM pragma_foreign_key_list(:t) ORDER BY id, seq",
                            &[("t", &t)],
                        )
                        .await?;
                    for f in &fks {
                        let parent = text(f, "parent");
                        let to = match f.get("ref") {
                            Some(Value::String(s)) => s.clone(),
                            // `REFERENCES parent` without a column: its primary key.
                            _ => "id".to_owned(),
                        };
                        out.foreign_keys.push(LiveForeignKey {
                            constraint: format!("{t}#{}", f.get("id").cloned().unwrap_or_default()),
                            from_table: t.clone(),
                            from_column: text(f, "col"),
                            to_table: parent,
                            to_column: to,
                        });
                    }
                    out.tables.insert(t, table);
                }
            }
            Dialect::Postgres => {
                let (filter, params): (&str, Vec<(&str, &str)>) = match schema {
                    Some(s) => ("= :schema", vec![("schema", s)]),
                    None => ("= current_schema()", vec![]),
                };
                let cols = self
                    .catalogue(
                        &format!(
                            "SELECT CAST(c.table_name AS text) AS t, CAST(c.column_name AS text) AS c, \
                             CAST(c.data_type AS text) AS ty, CAST(c.is_nullable AS text) AS n \
                             FROM information_schema.columns c JOIN information_schema.tables t \
                             ON t.table_schema = c.table_schema AND t.table_name = c.table_name \
                             WHERE c.table_schema {filter} AND t.table_type = 'BASE TABLE' \
                             ORDER BY c.table_name, c.ordinal_position"
                        ),
                        &params,
                    )
                    .await?;
                add_columns(&mut out, &cols, &name);
                let keys = self
                    .catalogue(
                        &format!(
                            "SELECT CAST(cl.relname AS text) AS t, CAST(a.attname AS text) AS c \
                             FROM pg_catalog.pg_constraint con \
                             JOIN pg_catalog.pg_class cl ON cl.oid = con.conrelid \
                             JOIN pg_catalog.pg_namespace n ON n.oid = cl.relnamespace \
                             JOIN LATERAL unnest(con.conkey) WITH ORDINALITY AS k(col, i) ON true \
                             JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.col \
                             WHERE con.contype = 'p' AND n.nspname {filter} ORDER BY cl.relname, k.i"
                        ),
                        &params,
                    )
                    .await?;
                add_keys(&mut out, &keys, &name);
                let fks = self
                    .catalogue(
                        &format!(
                            "SELECT CAST(con.conname AS text) AS k, CAST(cl.relname AS text) AS t, \
                             CAST(a.attname AS text) AS c, CAST(fcl.relname AS text) AS pt, \
                             CAST(fa.attname AS text) AS pc \
                             FROM pg_catalog.pg_constraint con \
                             JOIN pg_catalog.pg_class cl ON cl.oid = con.conrelid \
                             JOIN pg_catalog.pg_namespace n ON n.oid = cl.relnamespace \
                             JOIN pg_catalog.pg_class fcl ON fcl.oid = con.confrelid \
                             JOIN LATERAL unnest(con.conkey, con.confkey) WITH ORDINALITY AS k(col, fcol, i) ON true \
                             JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.col \
                             JOIN pg_catalog.pg_attribute fa ON fa.attrelid = con.confrelid AND fa.attnum = k.fcol \
                             WHERE con.contype = 'f' AND n.nspname {filter} ORDER BY cl.relname, con.conname, k.i"
                        ),
                        &params,
                    )
                    .await?;
                add_foreign_keys(&mut out, &fks, &name);
            }
            Dialect::MySql => {
                let (filter, params): (&str, Vec<(&str, &str)>) = match schema {
                    Some(s) => ("= :schema", vec![("schema", s)]),
                    None => ("= DATABASE()", vec![]),
                };
                let cols = self
                    .catalogue(
                        &format!(
                            "SELECT CAST(c.TABLE_NAME AS CHAR) AS t, CAST(c.COLUMN_NAME AS CHAR) AS c, \
                             CAST(c.DATA_TYPE AS CHAR) AS ty, CAST(c.IS_NULLABLE AS CHAR) AS n \
                             FROM information_schema.COLUMNS c JOIN information_schema.TABLES t \
                             ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME \
                             WHERE c.TABLE_SCHEMA {filter} AND t.TABLE_TYPE = 'BASE TABLE' \
                             ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION"
                        ),
                        &params,
                    )
                    .await?;
                add_columns(&mut out, &cols, &name);
                let keys = self
                    .catalogue(
                        &format!(
                            "SELECT CAST(TABLE_NAME AS CHAR) AS t, CAST(COLUMN_NAME AS CHAR) AS c \
                             FROM information_schema.KEY_COLUMN_USAGE \
                             WHERE TABLE_SCHEMA {filter} AND CONSTRAINT_NAME = 'PRIMARY' \
                             ORDER BY TABLE_NAME, ORDINAL_POSITION"
                        ),
                        &params,
                    )
                    .await?;
                add_keys(&mut out, &keys, &name);
                let fks = self
                    .catalogue(
                        &format!(
                            "SELECT CAST(CONSTRAINT_NAME AS CHAR) AS k, CAST(TABLE_NAME AS CHAR) AS t, \
                             CAST(COLUMN_NAME AS CHAR) AS c, CAST(REFERENCED_TABLE_NAME AS CHAR) AS pt, \
                             CAST(REFERENCED_COLUMN_NAME AS CHAR) AS pc \
                             FROM information_schema.KEY_COLUMN_USAGE \
                             WHERE TABLE_SCHEMA {filter} AND REFERENCED_TABLE_NAME IS NOT NULL \
                             ORDER BY TABLE_NAME, CONSTRAINT_NAME, ORDINAL_POSITION"
                        ),
                        &params,
                    )
                    .await?;
                add_foreign_keys(&mut out, &fks, &name);
            }
        }
        Ok(out)
    }

    async fn catalogue(
        &self,
        sql: &str,
        params: &[(&str, &str)],
    ) -> Result<Vec<Value>, ConnectorError> {
        let action: SqlAction = serde_json::from_value(serde_json::json!({
            "query": sql,
            "params": params.iter().map(|(k, v)| (k.to_string(), Value::String(v.to_string()))).collect::<serde_json::Map<_, _>>(),
        }))
        .map_err(|e| ConnectorError::Refused(e.to_string()))?;
        let resp = self.read(&Operation::Sql(action), None).await?;
        Ok(match resp.body {
            Value::Array(rows) => rows,
            _ => Vec::new(),
        })
    }
}

fn text(row: &Value, key: &str) -> String {
    match row.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn add_columns(out: &mut LiveSchema, rows: &[Value], name: &dyn Fn(&str) -> String) {
    for r in rows {
        out.tables
            .entry(name(&text(r, "t")))
            .or_default()
            .columns
            .push(LiveColumn {
                name: text(r, "c"),
                ty: text(r, "ty"),
                nullable: text(r, "n") != "NO",
            });
    }
}

fn add_keys(out: &mut LiveSchema, rows: &[Value], name: &dyn Fn(&str) -> String) {
    for r in rows {
        if let Some(t) = out.tables.get_mut(&name(&text(r, "t"))) {
            t.key.push(text(r, "c"));
        }
    }
}

fn add_foreign_keys(out: &mut LiveSchema, rows: &[Value], name: &dyn Fn(&str) -> String) {
    for r in rows {
        out.foreign_keys.push(LiveForeignKey {
            constraint: text(r, "k"),
            from_table: name(&text(r, "t")),
            from_column: text(r, "c"),
            to_table: name(&text(r, "pt")),
            to_column: text(r, "pc"),
        });
    }
}
