//! A SQL text with its bound values, and binding them to a `sqlx` query.

use sqlx::query::Query;
use sqlx::{Database, Encode, Type};

/// One bound value. NULL is written into the SQL text instead, so it never needs a type.
#[derive(Debug, Clone, PartialEq)]
pub enum Bind {
    /// Text (also numbers and JSON in PostgreSQL, cast by the statement).
    Text(String),
    /// An integer.
    Int(i64),
    /// A floating point number.
    Float(f64),
    /// A boolean.
    Bool(bool),
}

impl Bind {
    /// The textual form of the value, used to keep it out of error messages.
    pub fn text(&self) -> Option<&str> {
        match self {
            Bind::Text(s) => Some(s),
            _ => None,
        }
    }
}

/// SQL text with placeholders and the values bound to them, in order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Statement {
    /// SQL text in the pool's dialect.
    pub sql: String,
    /// Values for the placeholders.
    pub binds: Vec<Bind>,
}

/// Builds a `sqlx` query for a statement with every value bound.
pub fn query<DB>(stmt: &Statement) -> Query<'static, DB, DB::Arguments>
where
    DB: Database,
    for<'t> String: Encode<'t, DB>,
    String: Type<DB>,
    for<'t> i64: Encode<'t, DB>,
    i64: Type<DB>,
    for<'t> f64: Encode<'t, DB>,
    f64: Type<DB>,
    for<'t> bool: Encode<'t, DB>,
    bool: Type<DB>,
{
    let mut q = sqlx::query::<DB>(sqlx::AssertSqlSafe(stmt.sql.clone()));
    for bind in &stmt.binds {
        q = match bind {
            Bind::Text(s) => q.bind(s.clone()),
            Bind::Int(i) => q.bind(*i),
            Bind::Float(f) => q.bind(*f),
            Bind::Bool(b) => q.bind(*b),
        };
    }
    q
}
