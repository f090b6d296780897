//! SQL dialects: identifier quoting and placeholders.

use std::fmt::Write as _;

/// The database family a pool talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// PostgreSQL: `"ident"`, `$1`.
    Postgres,
    /// MySQL and MariaDB: `` `ident` ``, `?`.
    MySql,
    /// SQLite: `"ident"`, `?`.
    Sqlite,
}

/// An identifier the connector refuses to put into SQL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid SQL identifier {shown:?}: {reason}")]
pub struct IdentError {
    /// The identifier, cut short.
    pub shown: String,
    /// Why it is refused.
    pub reason: &'static str,
}

impl Dialect {
    /// The dialect for a connection URL, by scheme.
    pub fn from_url(url: &str) -> Option<Dialect> {
        let scheme = url.split(':').next()?.to_ascii_lowercase();
        match scheme.as_str() {
            "postgres" | "postgresql" => Some(Dialect::Postgres),
            "mysql" | "mariadb" => Some(Dialect::MySql),
            "sqlite" => Some(Dialect::Sqlite),
            _ => None,
        }
    }

    /// Writes the placeholder for the `n`-th (1-based) bound value.
    pub fn placeholder(self, out: &mut String, n: usize) {
        match self {
            Dialect::Postgres => {
                let _ = write!(out, "${n}");
            }
            Dialect::MySql | Dialect::Sqlite => out.push('?'),
        }
    }

    /// Quotes a possibly qualified identifier (`schema.table` or `column`).
    pub fn quote(self, ident: &str) -> Result<String, IdentError> {
        let mut out = String::with_capacity(ident.len() + 4);
        for (i, part) in ident.split('.').enumerate() {
            if i > 1 {
                return Err(refuse(ident, "at most one `.` (schema.table) is allowed"));
            }
            if i > 0 {
                out.push('.');
            }
            self.quote_part(&mut out, ident, part)?;
        }
        Ok(out)
    }

    fn quote_part(self, out: &mut String, whole: &str, part: &str) -> Result<(), IdentError> {
        if part.is_empty() {
            return Err(refuse(whole, "empty name"));
        }
        if part.chars().count() > 63 {
            return Err(refuse(whole, "longer than 63 characters"));
        }
        if part
            .chars()
            .any(|c| c == '"' || c == '`' || c == '\'' || c == '\\' || c.is_control())
        {
            return Err(refuse(
                whole,
                "quotes, backslashes and control characters are not allowed",
            ));
        }
        let q = match self {
            Dialect::MySql => '`',
            Dialect::Postgres | Dialect::Sqlite => '"',
        };
        out.push(q);
        out.push_str(part);
        out.push(q);
        Ok(())
    }
}

fn refuse(ident: &str, reason: &'static str) -> IdentError {
    IdentError {
        shown: ident.chars().take(80).collect(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_per_dialect() {
        assert_eq!(Dialect::Postgres.quote("a.b").unwrap(), "\"a\".\"b\"");
        assert_eq!(Dialect::MySql.quote("orders").unwrap(), "`orders`");
        assert_eq!(
            Dialect::Sqlite.quote("Order Items").unwrap(),
            "\"Order Items\""
        );
    }

    #[test]
    fn refuses_hostile_identifiers() {
        for bad in ["", "a.", "a.b.c", "x\"; DROP", "x`y", "a\0b", "it's"] {
            assert!(Dialect::Postgres.quote(bad).is_err(), "{bad:?}");
            assert!(Dialect::MySql.quote(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn scheme_picks_dialect() {
        assert_eq!(
            Dialect::from_url("postgresql://h/db"),
            Some(Dialect::Postgres)
        );
        assert_eq!(Dialect::from_url("mariadb://h/db"), Some(Dialect::MySql));
        assert_eq!(Dialect::from_url("sqlite:data.db"), Some(Dialect::Sqlite));
        assert_eq!(Dialect::from_url("oracle://x"), None);
    }
}
