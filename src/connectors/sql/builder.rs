//! Builds the statements of structured operations: quoted identifiers, bound values.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::Value;

use super::dialect::{Dialect, IdentError};
use super::statement::{Bind, Statement};
use crate::model::{SqlMatch, SqlThrough, SqlValue};

/// What the database says about one column: its type, longest text, whether it takes NULL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Type name: `schema.type` as quoted on PostgreSQL (e.g. `pg_catalog.varchar`), the
    /// `DATA_TYPE` on MySQL/MariaDB (`varchar`), the declared type on SQLite (`VARCHAR(40)`).
    pub ty: String,
    /// Longest text in characters (`varchar(n)`, `char(n)`), when limited.
    pub max_len: Option<u64>,
    /// Whether the column takes NULL.
    pub nullable: bool,
}

impl Column {
    /// A column known only by its type (nullable, no length limit).
    pub fn of_type(ty: &str) -> Column {
        Column {
            ty: ty.to_owned(),
            max_len: None,
            nullable: true,
        }
    }

    /// The type's own name, without schema and length (`varchar`, `citext`, `bigint`).
    pub fn base_type(&self) -> String {
        let t = self.ty.rsplit('.').next().unwrap_or(&self.ty);
        let t = t.split('(').next().unwrap_or(t).trim().trim_matches('"');
        t.to_ascii_lowercase()
    }

    /// Whether the column holds text, so that collations decide how values compare.
    pub fn is_text(&self) -> bool {
        let t = self.base_type();
        matches!(
            t.as_str(),
            "text"
                | "varchar"
                | "bpchar"
                | "char"
                | "character"
                | "character varying"
                | "citext"
                | "name"
                | "tinytext"
                | "mediumtext"
                | "longtext"
                | "enum"
                | "set"
                | "nvarchar"
                | "nchar"
                | "clob"
                | "string"
                | ""
        ) || t.contains("char")
            || t.contains("text")
            || t.contains("clob")
    }
}

/// Columns per table, so that every bound value is cast to the type of the column it meets on
/// PostgreSQL (`id = CAST($1 AS bigint)` accepts `"42"` rendered by a template), text
/// predicates compare exactly, and masks are checked against the column before anything runs.
#[derive(Debug, Clone, Default)]
pub struct ColumnTypes {
    tables: HashMap<String, Arc<HashMap<String, Column>>>,
}

impl ColumnTypes {
    /// Records the columns of one table.
    pub fn insert(&mut self, table: &str, columns: Arc<HashMap<String, Column>>) {
        self.tables.insert(table.to_owned(), columns);
    }
    /// Whether the table's types are known.
    pub fn has(&self, table: &str) -> bool {
        self.tables.contains_key(table)
    }
    /// One column, when known.
    pub fn column(&self, table: &str, column: &str) -> Option<&Column> {
        self.tables.get(table)?.get(column)
    }
    fn get(&self, table: &str, column: &str) -> Option<&str> {
        self.column(table, column).map(|c| c.ty.as_str())
    }
    /// Whether text comparisons on the column need the exact form: a text column, or one
    /// whose type is not known (the safe side).
    fn text_like(&self, table: &str, column: &str) -> bool {
        self.column(table, column).is_none_or(Column::is_text)
    }
}

/// An operation that cannot become SQL.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BuildError {
    /// A table or column name is not acceptable.
    #[error(transparent)]
    Ident(#[from] IdentError),
    /// The operation is malformed.
    #[error("{0}")]
    Invalid(String),
}

/// The columns of a composite key predicate, written `(a, b)`: `None` for a plain column.
pub fn tuple_columns(key: &str) -> Option<Vec<String>> {
    let inner = key.strip_prefix('(')?.strip_suffix(')')?;
    let cols: Vec<String> = inner.split(',').map(|c| c.trim().to_owned()).collect();
    (cols.len() >= 2 && cols.iter().all(|c| !c.is_empty())).then_some(cols)
}

/// What a select returns.
#[derive(Debug, Clone, Copy)]
pub enum Projection<'a> {
    /// `*` (or the given columns when not empty).
    Columns(&'a [String]),
    /// `COUNT(*) AS n`.
    Count,
}

/// The rows an operation addresses: a table, predicates, an optional foreign-key hop.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// Table, optionally `schema.table`.
    pub table: &'a str,
    /// Equality / IN predicates, ANDed.
    pub filter: &'a BTreeMap<String, SqlValue>,
    /// Rows reached through a parent table.
    pub through: Option<&'a SqlThrough>,
    /// Alternatives, ORed; the target's rows meet at least one group (when any).
    pub any: &'a [BTreeMap<String, SqlValue>],
    /// Exclusions: rows meeting any of these groups are left out.
    pub unless: &'a [BTreeMap<String, SqlValue>],
}

impl Target<'_> {
    /// Mutations must say which rows: an empty predicate would address the whole table.
    pub fn require_predicate(&self) -> Result<(), BuildError> {
        if self.filter.is_empty() && self.through.is_none() && self.any.is_empty() {
            return Err(BuildError::Invalid(format!(
                "a mutation of `{}` needs at least one `where` predicate or `through`",
                self.table
            )));
        }
        Ok(())
    }
}

/// Writes SQL text and collects bound values.
pub struct Builder<'a> {
    dialect: Dialect,
    types: &'a ColumnTypes,
    matching: SqlMatch,
    sql: String,
    binds: Vec<Bind>,
}

impl<'a> Builder<'a> {
    /// A builder for one statement.
    pub fn new(dialect: Dialect, types: &'a ColumnTypes) -> Self {
        Builder {
            dialect,
            types,
            matching: SqlMatch::Exact,
            sql: String::with_capacity(128),
            binds: Vec::new(),
        }
    }

    /// Compares text predicates as `matching` says (default: exact).
    pub fn matching(mut self, matching: SqlMatch) -> Self {
        self.matching = matching;
        self
    }

    /// The finished statement.
    pub fn finish(self) -> Statement {
        Statement {
            sql: self.sql,
            binds: self.binds,
        }
    }

    fn push(&mut self, s: &str) {
        self.sql.push_str(s);
    }

    fn ident(&mut self, id: &str) -> Result<(), BuildError> {
        let q = self.dialect.quote(id)?;
        self.sql.push_str(&q);
        Ok(())
    }

    /// Writes a bound value meeting `table.column` (NULL is written literally).
    fn value(&mut self, table: &str, column: &str, v: &Value) -> Result<(), BuildError> {
        if v.is_null() {
            self.push("NULL");
            return Ok(());
        }
        let cast = match self.dialect {
            Dialect::Postgres => self.types.get(table, column).map(str::to_owned),
            _ => None,
        };
        let bind = match (&cast, v) {
            (Some(_), Value::String(s)) => Bind::Text(s.clone()),
            (Some(_), Value::Bool(b)) => Bind::Text(b.to_string()),
            (Some(_), Value::Number(n)) => Bind::Text(n.to_string()),
            (_, Value::String(s)) => Bind::Text(s.clone()),
            (None, Value::Bool(b)) => Bind::Bool(*b),
            (None, Value::Number(n)) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => Bind::Int(i),
                (None, Some(f)) if n.is_f64() => Bind::Float(f),
                _ => Bind::Text(n.to_string()),
            },
            (_, other) => Bind::Text(other.to_string()),
        };
        self.binds.push(bind);
        let n = self.binds.len();
        match cast {
            Some(ty) => {
                self.push("CAST(");
                self.dialect.placeholder(&mut self.sql, n);
                self.push(" AS ");
                self.push(&ty);
                self.push(")");
            }
            None => self.dialect.placeholder(&mut self.sql, n),
        }
        Ok(())
    }

    /// Writes `col = v`, `col IS NULL`, `col IN (..)` or a false predicate for an empty list.
    /// Text values compare exactly (or case-insensitively when the step says so): see
    /// [`Builder::text_side`].
    fn predicate(&mut self, table: &str, column: &str, v: &SqlValue) -> Result<(), BuildError> {
        if let Some(columns) = tuple_columns(column) {
            return self.tuple_predicate(table, &columns, v);
        }
        let quoted = self.dialect.quote(column)?;
        match v {
            SqlValue::One(Value::Null) => {
                self.push(&quoted);
                self.push(" IS NULL");
            }
            // An untagged `SqlValue` parses every list as `One(Array)`: a list is a list.
            SqlValue::Any(list) | SqlValue::One(Value::Array(list)) => {
                let values: Vec<&Value> = list.iter().filter(|v| !v.is_null()).collect();
                let has_null = values.len() < list.len();
                if values.is_empty() && !has_null {
                    // Nothing listed: nothing matches (SQL has no empty IN list).
                    self.push("1 = 0");
                    return Ok(());
                }
                let text = self.text_compare(table, column, &values);
                self.push("(");
                if !values.is_empty() {
                    if text && self.matching == SqlMatch::Exact {
                        // The column's own comparison first (it can use an index), then the
                        // exact one: a collation never matches less than the bytes do.
                        self.in_list(table, column, &quoted, &values, false)?;
                        self.push(" AND ");
                    }
                    self.in_list(table, column, &quoted, &values, text)?;
                    if has_null {
                        self.push(" OR ");
                    }
                }
                if has_null {
                    self.push(&quoted);
                    self.push(" IS NULL");
                }
                self.push(")");
            }
            SqlValue::One(v) => {
                let text = self.text_compare(table, column, &[v]);
                if text {
                    self.push("(");
                    if self.matching == SqlMatch::Exact {
                        self.push(&quoted);
                        self.push(" = ");
                        self.value(table, column, v)?;
                        self.push(" AND ");
                    }
                    self.text_side(&quoted);
                    self.push(" = ");
                    self.text_value(v);
                    self.push(")");
                } else {
                    self.push(&quoted);
                    self.push(" = ");
                    self.value(table, column, v)?;
                }
            }
        }
        Ok(())
    }

    /// A composite foreign key met as one: `(a, b) IN ((?, ?), ...)` (SQLite: `IN (VALUES
    /// ...)`, the row values it accepts), so values of two different rows never combine. A
    /// `null` in the list also accepts a row whose key has a NULL part (a foreign key with a
    /// NULL part references nothing). Text parts also compare exactly, as a single column does.
    fn tuple_predicate(
        &mut self,
        table: &str,
        columns: &[String],
        v: &SqlValue,
    ) -> Result<(), BuildError> {
        let list: Vec<&Value> = match v {
            SqlValue::Any(list) | SqlValue::One(Value::Array(list)) => list.iter().collect(),
            SqlValue::One(one) => vec![one],
        };
        let has_null = list.iter().any(|v| v.is_null());
        let mut tuples: Vec<&Vec<Value>> = Vec::new();
        for item in list.iter().filter(|v| !v.is_null()) {
            match item {
                Value::Array(parts) if parts.len() == columns.len() => {
                    // A key with a NULL part is no key: it matches nothing.
                    if parts.iter().all(|p| !p.is_null()) && !tuples.contains(&parts) {
                        tuples.push(parts);
                    }
                }
                other => {
                    return Err(BuildError::Invalid(format!(
                        "`({})` on `{table}` takes lists of {} values, not {other}",
                        columns.join(", "),
                        columns.len()
                    )));
                }
            }
        }
        if tuples.is_empty() && !has_null {
            self.push("1 = 0");
            return Ok(());
        }
        self.push("(");
        if !tuples.is_empty() {
            self.push("(");
            self.push("(");
            self.ident_list(columns)?;
            self.push(") IN (");
            if self.dialect == Dialect::Sqlite {
                self.push("VALUES ");
            }
            for (i, t) in tuples.iter().enumerate() {
                if i > 0 {
                    self.push(", ");
                }
                self.push("(");
                for (j, (c, v)) in columns.iter().zip(t.iter()).enumerate() {
                    if j > 0 {
                        self.push(", ");
                    }
                    self.value(table, c, v)?;
                }
                self.push(")");
            }
            self.push(")");
            for (j, c) in columns.iter().enumerate() {
                let values: Vec<&Value> = tuples.iter().map(|t| &t[j]).collect();
                if self.matching == SqlMatch::Exact && self.text_compare(table, c, &values) {
                    let quoted = self.dialect.quote(c)?;
                    self.push(" AND ");
                    self.in_list(table, c, &quoted, &values, true)?;
                }
            }
            self.push(")");
            if has_null {
                self.push(" OR ");
            }
        }
        if has_null {
            for (j, c) in columns.iter().enumerate() {
                if j > 0 {
                    self.push(" OR ");
                }
                self.ident(c)?;
                self.push(" IS NULL");
            }
        }
        self.push(")");
        Ok(())
    }

    /// Whether these values meet the column as text (so a collation could widen the match).
    fn text_compare(&self, table: &str, column: &str, values: &[&Value]) -> bool {
        values.iter().any(|v| v.is_string()) && self.types.text_like(table, column)
    }

    fn in_list(
        &mut self,
        table: &str,
        column: &str,
        quoted: &str,
        values: &[&Value],
        text: bool,
    ) -> Result<(), BuildError> {
        if text {
            self.text_side(quoted);
        } else {
            self.push(quoted);
        }
        self.push(" IN (");
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            if text {
                self.text_value(v);
            } else {
                self.value(table, column, v)?;
            }
        }
        self.push(")");
        Ok(())
    }

    /// The column as compared exactly: as bytes (MySQL/MariaDB: every collation there pads
    /// trailing spaces, `utf8mb4_bin` included), in the `C` collation (PostgreSQL: `citext` and
    /// nondeterministic ICU collations), or `COLLATE BINARY` (SQLite: `NOCASE`, `RTRIM`).
    /// Lower-cased first when the step asked for `match: case_insensitive`.
    fn text_side(&mut self, quoted: &str) {
        let ci = self.matching == SqlMatch::CaseInsensitive;
        let s = match (self.dialect, ci) {
            (Dialect::Postgres, false) => format!("CAST({quoted} AS text) COLLATE \"C\""),
            (Dialect::Postgres, true) => format!("lower(CAST({quoted} AS text)) COLLATE \"C\""),
            (Dialect::MySql, false) => format!("CAST(CONVERT({quoted} USING utf8mb4) AS BINARY)"),
            (Dialect::MySql, true) => {
                format!("CAST(CONVERT(LOWER({quoted}) USING utf8mb4) AS BINARY)")
            }
            (Dialect::Sqlite, false) => format!("{quoted} COLLATE BINARY"),
            (Dialect::Sqlite, true) => format!("lower({quoted}) COLLATE BINARY"),
        };
        self.push(&s);
    }

    /// A value on the other side of [`Builder::text_side`], bound as text.
    fn text_value(&mut self, v: &Value) {
        let text = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        self.binds.push(Bind::Text(text));
        let n = self.binds.len();
        let ci = self.matching == SqlMatch::CaseInsensitive;
        let mut ph = String::new();
        self.dialect.placeholder(&mut ph, n);
        let s = match (self.dialect, ci) {
            (Dialect::Postgres, false) => format!("CAST({ph} AS text)"),
            (Dialect::Postgres, true) => format!("lower(CAST({ph} AS text))"),
            (Dialect::MySql, false) => format!("CAST({ph} AS BINARY)"),
            (Dialect::MySql, true) => format!("CAST(LOWER({ph}) AS BINARY)"),
            (Dialect::Sqlite, false) => ph,
            (Dialect::Sqlite, true) => format!("lower({ph})"),
        };
        self.push(&s);
    }

    fn conjunction(
        &mut self,
        table: &str,
        filter: &BTreeMap<String, SqlValue>,
        first: &mut bool,
    ) -> Result<(), BuildError> {
        for (column, v) in filter {
            self.push(if *first { " WHERE " } else { " AND " });
            *first = false;
            self.predicate(table, column, v)?;
        }
        Ok(())
    }

    /// Writes the `WHERE` clause of a target (nothing when it has no predicate).
    pub fn where_clause(&mut self, t: &Target<'_>) -> Result<(), BuildError> {
        let mut first = true;
        self.conjunction(t.table, t.filter, &mut first)?;
        if let Some(th) = t.through {
            if th.filter.is_empty() {
                return Err(BuildError::Invalid(format!(
                    "`through` parent `{}` needs at least one `where` predicate",
                    th.table
                )));
            }
            self.push(if first { " WHERE " } else { " AND " });
            self.ident(&th.column)?;
            self.push(" IN (SELECT ");
            self.ident(&th.references)?;
            self.push(" FROM ");
            self.ident(&th.table)?;
            let mut inner_first = true;
            self.conjunction(&th.table, &th.filter, &mut inner_first)?;
            self.push(")");
            first = false;
        }
        if !t.any.is_empty() {
            self.push(if first { " WHERE (" } else { " AND (" });
            first = false;
            self.groups(t.table, t.any, "any")?;
            self.push(")");
        }
        if !t.unless.is_empty() {
            // `CASE` rather than `NOT (...)`: a predicate on a NULL column is unknown, and
            // a row it cannot be said to meet is not excluded.
            self.push(if first { " WHERE " } else { " AND " });
            self.push("(CASE WHEN ");
            self.groups(t.table, t.unless, "unless")?;
            self.push(" THEN 0 ELSE 1 END) = 1");
        }
        Ok(())
    }

    /// `(a AND b) OR (c) OR ...`: each group's predicates ANDed, the groups ORed.
    fn groups(
        &mut self,
        table: &str,
        groups: &[BTreeMap<String, SqlValue>],
        what: &str,
    ) -> Result<(), BuildError> {
        for (i, group) in groups.iter().enumerate() {
            if group.is_empty() {
                return Err(BuildError::Invalid(format!(
                    "a group of `{what}` on `{table}` has no predicate"
                )));
            }
            if i > 0 {
                self.push(" OR ");
            }
            self.push("(");
            for (j, (column, v)) in group.iter().enumerate() {
                if j > 0 {
                    self.push(" AND ");
                }
                self.predicate(table, column, v)?;
            }
            self.push(")");
        }
        Ok(())
    }

    /// `SELECT ... FROM t WHERE ... [ORDER BY ...] [FOR UPDATE]`.
    pub fn select(
        &mut self,
        t: &Target<'_>,
        projection: Projection<'_>,
        order_by: &[String],
        lock: bool,
    ) -> Result<(), BuildError> {
        self.push("SELECT ");
        match projection {
            Projection::Count => self.push("COUNT(*) AS n"),
            Projection::Columns([]) => self.push("*"),
            Projection::Columns(cols) => self.ident_list(cols)?,
        }
        self.push(" FROM ");
        self.ident(t.table)?;
        self.where_clause(t)?;
        if !order_by.is_empty() {
            self.push(" ORDER BY ");
            self.ident_list(order_by)?;
        }
        if lock && self.dialect != Dialect::Sqlite {
            self.push(" FOR UPDATE");
        }
        Ok(())
    }

    fn ident_list(&mut self, cols: &[String]) -> Result<(), BuildError> {
        for (i, c) in cols.iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.ident(c)?;
        }
        Ok(())
    }

    /// Appends `LIMIT n` (after a select without lock).
    pub fn limit(&mut self, n: u64) {
        self.push(&format!(" LIMIT {n}"));
    }

    /// `SELECT tag AS i, COUNT(*) AS n FROM t WHERE ...`, its text predicates compared as
    /// `matching` says: one count of several in one statement (see [`Builder::union_all`]).
    pub fn tagged_count(
        &mut self,
        t: &Target<'_>,
        tag: usize,
        matching: SqlMatch,
    ) -> Result<(), BuildError> {
        self.matching = matching;
        self.push(&format!("SELECT {tag} AS i, COUNT(*) AS n FROM "));
        self.ident(t.table)?;
        self.where_clause(t)
    }

    /// Appends ` UNION ALL ` between two selects of one statement.
    pub fn union_all(&mut self) {
        self.push(" UNION ALL ");
    }

    /// `DELETE FROM t WHERE ...`.
    pub fn delete(&mut self, t: &Target<'_>) -> Result<(), BuildError> {
        t.require_predicate()?;
        self.push("DELETE FROM ");
        self.ident(t.table)?;
        self.where_clause(t)
    }

    /// `UPDATE t SET c = v, ... WHERE ...`.
    pub fn update(&mut self, t: &Target<'_>, set: &[(String, Value)]) -> Result<(), BuildError> {
        t.require_predicate()?;
        self.update_head(t.table, set)?;
        self.where_clause(t)
    }

    /// `UPDATE t SET c = v, ... WHERE k1 = .. AND k2 = ..` (one row by key).
    pub fn update_by_key(
        &mut self,
        table: &str,
        set: &[(String, Value)],
        key: &[(String, Value)],
    ) -> Result<(), BuildError> {
        if key.is_empty() {
            return Err(BuildError::Invalid("an update by key needs a key".into()));
        }
        self.update_head(table, set)?;
        for (i, (col, v)) in key.iter().enumerate() {
            self.push(if i == 0 { " WHERE " } else { " AND " });
            self.predicate(table, col, &SqlValue::One(v.clone()))?;
        }
        Ok(())
    }

    fn update_head(&mut self, table: &str, set: &[(String, Value)]) -> Result<(), BuildError> {
        if set.is_empty() {
            return Err(BuildError::Invalid(
                "an update needs at least one column in `set`".into(),
            ));
        }
        self.push("UPDATE ");
        self.ident(table)?;
        self.push(" SET ");
        for (i, (col, v)) in set.iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.ident(col)?;
            self.push(" = ");
            self.value(table, col, v)?;
        }
        Ok(())
    }

    /// `SELECT * FROM t WHERE (k1 = .. AND k2 = ..) OR (...)`: rows by their keys.
    pub fn select_by_keys(
        &mut self,
        table: &str,
        key: &[String],
        rows: &[Vec<Value>],
    ) -> Result<(), BuildError> {
        self.push("SELECT * FROM ");
        self.ident(table)?;
        self.push(" WHERE ");
        if rows.is_empty() {
            self.push("1 = 0");
        }
        for (r, values) in rows.iter().enumerate() {
            if r > 0 {
                self.push(" OR ");
            }
            self.push("(");
            for (i, (col, v)) in key.iter().zip(values).enumerate() {
                if i > 0 {
                    self.push(" AND ");
                }
                self.predicate(table, col, &SqlValue::One(v.clone()))?;
            }
            self.push(")");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn filter(pairs: &[(&str, SqlValue)]) -> BTreeMap<String, SqlValue> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn postgres_casts_to_column_types_and_binds_values() {
        let mut types = ColumnTypes::default();
        types.insert(
            "s.orders",
            Arc::new([("id".to_owned(), Column::of_type("bigint"))].into()),
        );
        types.insert(
            "s.customers",
            Arc::new([("email".to_owned(), Column::of_type("text"))].into()),
        );
        let th = SqlThrough {
            table: "s.customers".into(),
            column: "customer_id".into(),
            references: "id".into(),
            filter: filter(&[("email", SqlValue::One(json!("' OR 1=1 --")))]),
        };
        let f = filter(&[("id", SqlValue::Any(vec![json!("1"), json!(2)]))]);
        let t = Target {
            table: "s.orders",
            filter: &f,
            through: Some(&th),
            any: &[],
            unless: &[],
        };
        let mut b = Builder::new(Dialect::Postgres, &types);
        b.delete(&t).unwrap();
        let st = b.finish();
        assert_eq!(
            st.sql,
            "DELETE FROM \"s\".\"orders\" WHERE (\"id\" IN (CAST($1 AS bigint), CAST($2 AS bigint))) \
             AND \"customer_id\" IN (SELECT \"id\" FROM \"s\".\"customers\" WHERE (\"email\" = CAST($3 AS text) \
             AND CAST(\"email\" AS text) COLLATE \"C\" = CAST($4 AS text)))"
        );
        assert_eq!(st.binds[2], Bind::Text("' OR 1=1 --".into()));
        assert_eq!(
            st.binds[3], st.binds[2],
            "the exact comparison binds the same value"
        );
    }

    #[test]
    fn tagged_counts_share_one_statement_and_number_its_placeholders_on() {
        let mut types = ColumnTypes::default();
        types.insert(
            "a",
            Arc::new([("id".to_owned(), Column::of_type("bigint"))].into()),
        );
        types.insert(
            "b",
            Arc::new([("email".to_owned(), Column::of_type("text"))].into()),
        );
        let fa = filter(&[("id", SqlValue::Any(vec![json!(1), json!(2)]))]);
        let fb = filter(&[("email", SqlValue::One(json!("x@example.com")))]);
        let target = |table, f| Target {
            table,
            filter: f,
            through: None,
            any: &[],
            unless: &[],
        };
        let mut b = Builder::new(Dialect::Postgres, &types);
        b.tagged_count(&target("a", &fa), 0, SqlMatch::Exact)
            .unwrap();
        b.union_all();
        b.tagged_count(&target("b", &fb), 1, SqlMatch::CaseInsensitive)
            .unwrap();
        let st = b.finish();
        assert_eq!(
            st.sql,
            "SELECT 0 AS i, COUNT(*) AS n FROM \"a\" WHERE (\"id\" IN (CAST($1 AS bigint), CAST($2 AS bigint))) \
             UNION ALL SELECT 1 AS i, COUNT(*) AS n FROM \"b\" WHERE (lower(CAST(\"email\" AS text)) COLLATE \"C\" = lower(CAST($3 AS text)))"
        );
        assert_eq!(st.binds.len(), 3);
        assert_eq!(st.binds[2], Bind::Text("x@example.com".into()));
    }

    #[test]
    fn empty_list_matches_nothing_and_null_is_is_null() {
        let types = ColumnTypes::default();
        let f = filter(&[
            ("a", SqlValue::Any(vec![])),
            ("b", SqlValue::One(Value::Null)),
        ]);
        let t = Target {
            table: "t",
            filter: &f,
            through: None,
            any: &[],
            unless: &[],
        };
        let mut b = Builder::new(Dialect::MySql, &types);
        b.select(&t, Projection::Columns(&[]), &[], true).unwrap();
        assert_eq!(
            b.finish().sql,
            "SELECT * FROM `t` WHERE 1 = 0 AND `b` IS NULL FOR UPDATE"
        );
    }

    #[test]
    fn text_compares_exactly_unless_the_step_says_otherwise() {
        let types = ColumnTypes::default();
        let f = filter(&[("email", SqlValue::One(json!("A@X.COM")))]);
        let t = Target {
            table: "t",
            filter: &f,
            through: None,
            any: &[],
            unless: &[],
        };
        let sql = |d: Dialect, m: SqlMatch| {
            let mut b = Builder::new(d, &types).matching(m);
            b.delete(&t).unwrap();
            b.finish().sql
        };
        assert_eq!(
            sql(Dialect::MySql, SqlMatch::Exact),
            "DELETE FROM `t` WHERE (`email` = ? AND CAST(CONVERT(`email` USING utf8mb4) AS BINARY) = CAST(? AS BINARY))"
        );
        assert_eq!(
            sql(Dialect::Sqlite, SqlMatch::Exact),
            "DELETE FROM \"t\" WHERE (\"email\" = ? AND \"email\" COLLATE BINARY = ?)"
        );
        assert_eq!(
            sql(Dialect::Sqlite, SqlMatch::CaseInsensitive),
            "DELETE FROM \"t\" WHERE (lower(\"email\") COLLATE BINARY = lower(?))"
        );
    }

    /// A composite foreign key followed column by column matched `(1, 20)` for the keys
    /// `(1, 10)` and `(2, 20)`: another subject's row. As row values it matches only the pairs.
    #[test]
    fn composite_keys_are_matched_as_pairs() {
        let mut types = ColumnTypes::default();
        types.insert(
            "t",
            Arc::new(
                [
                    ("region".to_owned(), Column::of_type("int4")),
                    ("no".to_owned(), Column::of_type("int4")),
                ]
                .into(),
            ),
        );
        let pairs = SqlValue::Any(vec![json!([1, 10]), json!([2, 20])]);
        let sql = |d: Dialect, v: &SqlValue| {
            let f = filter(&[("(region, no)", v.clone())]);
            let t = Target {
                table: "t",
                filter: &f,
                through: None,
                any: &[],
                unless: &[],
            };
            let mut b = Builder::new(d, &types);
            b.delete(&t).map(|()| b.finish())
        };
        let pg = sql(Dialect::Postgres, &pairs).unwrap();
        assert_eq!(
            pg.sql,
            "DELETE FROM \"t\" WHERE (((\"region\", \"no\") IN ((CAST($1 AS int4), CAST($2 AS int4)), \
             (CAST($3 AS int4), CAST($4 AS int4)))))"
        );
        assert_eq!(pg.binds.len(), 4, "every value bound");
        assert_eq!(
            sql(Dialect::Sqlite, &pairs).unwrap().sql,
            "DELETE FROM \"t\" WHERE (((\"region\", \"no\") IN (VALUES (?, ?), (?, ?))))"
        );
        assert_eq!(
            sql(
                Dialect::MySql,
                &SqlValue::Any(vec![json!([1, 10]), Value::Null])
            )
            .unwrap()
            .sql,
            "DELETE FROM `t` WHERE (((`region`, `no`) IN ((?, ?))) OR `region` IS NULL OR `no` IS NULL)"
        );
        assert_eq!(
            sql(Dialect::MySql, &SqlValue::Any(vec![])).unwrap().sql,
            "DELETE FROM `t` WHERE 1 = 0"
        );
        assert!(
            sql(Dialect::MySql, &SqlValue::Any(vec![json!([1])])).is_err(),
            "a pair of the wrong length is refused"
        );
    }

    #[test]
    fn mutations_need_a_predicate() {
        let types = ColumnTypes::default();
        let f = BTreeMap::new();
        let t = Target {
            table: "t",
            filter: &f,
            through: None,
            any: &[],
            unless: &[],
        };
        assert!(Builder::new(Dialect::Sqlite, &types).delete(&t).is_err());
    }
}
