//! Raw SQL with named parameters (`:email`) rewritten to the dialect's placeholders.
//!
//! The scanner skips string literals, quoted identifiers, comments, PostgreSQL
//! dollar-quoted strings and `::` casts, so a `:` there is left alone.

use std::collections::{BTreeMap, HashMap};

use super::dialect::Dialect;
use super::statement::{Bind, Statement};

/// Raw SQL that cannot be bound safely.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// `:name` has no value in `params`.
    #[error("the SQL uses parameter `:{name}`, which `params` does not define; defined: {defined}")]
    Unknown {
        /// The parameter.
        name: String,
        /// The defined names.
        defined: String,
    },
    /// A positional placeholder (`?`, `$1`) in the SQL text.
    #[error("positional placeholders (`{0}`) are not allowed; use named parameters like `:email`")]
    Positional(String),
    /// A string, identifier or comment is not closed.
    #[error("the SQL has an unterminated {0}")]
    Unterminated(&'static str),
}

/// Rewrites `:name` parameters to placeholders and binds their values as text.
pub fn rewrite(
    sql: &str,
    dialect: Dialect,
    params: &BTreeMap<String, String>,
) -> Result<Statement, ParamError> {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = String::with_capacity(sql.len() + 8);
    let mut binds = Vec::new();
    let mut numbered: HashMap<&str, usize> = HashMap::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            '\'' => {
                i = copy_quoted(
                    &chars,
                    i,
                    '\'',
                    dialect == Dialect::MySql,
                    &mut out,
                    "string literal",
                )?
            }
            '"' => {
                i = copy_quoted(
                    &chars,
                    i,
                    '"',
                    dialect == Dialect::MySql,
                    &mut out,
                    "quoted identifier",
                )?
            }
            '`' => i = copy_quoted(&chars, i, '`', false, &mut out, "quoted identifier")?,
            '-' if next == Some('-') => i = copy_until(&chars, i, "\n", &mut out, true)?,
            '#' if dialect == Dialect::MySql => i = copy_until(&chars, i, "\n", &mut out, true)?,
            '/' if next == Some('*') => i = copy_until(&chars, i + 2, "*/", &mut out, false)?,
            '$' if dialect == Dialect::Postgres => {
                if next.is_some_and(|d| d.is_ascii_digit()) {
                    return Err(ParamError::Positional(format!("${}", next.unwrap_or('1'))));
                }
                i = copy_dollar_quoted(&chars, i, &mut out)?;
            }
            '?' if dialect != Dialect::Postgres => return Err(ParamError::Positional("?".into())),
            ':' if next == Some(':') => {
                out.push_str("::");
                i += 2;
            }
            ':' if next.is_some_and(|n| n.is_ascii_alphabetic() || n == '_') => {
                let start = i + 1;
                let mut end = start;
                while end < chars.len() && (chars[end].is_ascii_alphanumeric() || chars[end] == '_')
                {
                    end += 1;
                }
                let name: String = chars[start..end].iter().collect();
                let Some((key, value)) = params.get_key_value(&name) else {
                    return Err(ParamError::Unknown {
                        name,
                        defined: params
                            .keys()
                            .map(String::as_str)
                            .collect::<Vec<_>>()
                            .join(", "),
                    });
                };
                match (dialect, numbered.get(key.as_str())) {
                    (Dialect::Postgres, Some(&n)) => dialect.placeholder(&mut out, n),
                    _ => {
                        binds.push(Bind::Text(value.clone()));
                        numbered.insert(key.as_str(), binds.len());
                        dialect.placeholder(&mut out, binds.len());
                    }
                }
                i = end;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(Statement { sql: out, binds })
}

/// Copies a quoted run starting at `start` (a doubled quote escapes; with `backslash`, `\x` too).
fn copy_quoted(
    chars: &[char],
    start: usize,
    quote: char,
    backslash: bool,
    out: &mut String,
    what: &'static str,
) -> Result<usize, ParamError> {
    out.push(quote);
    let mut i = start + 1;
    while i < chars.len() {
        let c = chars[i];
        out.push(c);
        if backslash && c == '\\' {
            if let Some(&n) = chars.get(i + 1) {
                out.push(n);
            }
            i += 2;
            continue;
        }
        if c == quote {
            if chars.get(i + 1) == Some(&quote) {
                out.push(quote);
                i += 2;
                continue;
            }
            return Ok(i + 1);
        }
        i += 1;
    }
    Err(ParamError::Unterminated(what))
}

/// Copies from `start` through the terminator (a line comment may end the text instead).
fn copy_until(
    chars: &[char],
    start: usize,
    end: &str,
    out: &mut String,
    eof_ok: bool,
) -> Result<usize, ParamError> {
    let end: Vec<char> = end.chars().collect();
    if !eof_ok {
        out.push_str("/*");
    }
    let mut i = start;
    while i < chars.len() {
        if chars[i..].starts_with(&end) {
            out.extend(end.iter());
            return Ok(i + end.len());
        }
        out.push(chars[i]);
        i += 1;
    }
    if eof_ok {
        Ok(i)
    } else {
        Err(ParamError::Unterminated("comment"))
    }
}

/// Copies `$tag$ ... $tag$` (PostgreSQL), or a lone `$`.
fn copy_dollar_quoted(chars: &[char], start: usize, out: &mut String) -> Result<usize, ParamError> {
    let mut j = start + 1;
    while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_') {
        j += 1;
    }
    if chars.get(j) != Some(&'$') {
        out.push('$');
        return Ok(start + 1);
    }
    let tag: Vec<char> = chars[start..=j].to_vec();
    out.extend(tag.iter());
    let mut i = j + 1;
    while i < chars.len() {
        if chars[i..].starts_with(&tag) {
            out.extend(tag.iter());
            return Ok(i + tag.len());
        }
        out.push(chars[i]);
        i += 1;
    }
    Err(ParamError::Unterminated("dollar-quoted string"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(p: &[(&str, &str)]) -> BTreeMap<String, String> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn rewrites_named_parameters_outside_literals_and_casts() {
        let p = params(&[("email", "a@b"), ("id", "7")]);
        let sql = "SELECT ':email', \"x:y\" FROM t WHERE e = :email AND id = :id::bigint -- :nope\n AND f = :email";
        let st = rewrite(sql, Dialect::Postgres, &p).unwrap();
        assert_eq!(
            st.sql,
            "SELECT ':email', \"x:y\" FROM t WHERE e = $1 AND id = $2::bigint -- :nope\n AND f = $1"
        );
        assert_eq!(
            st.binds,
            vec![Bind::Text("a@b".into()), Bind::Text("7".into())]
        );
        let st = rewrite(
            "DELETE FROM t WHERE a = :email OR b = :email /* :id */",
            Dialect::MySql,
            &p,
        )
        .unwrap();
        assert_eq!(st.sql, "DELETE FROM t WHERE a = ? OR b = ? /* :id */");
        assert_eq!(st.binds.len(), 2);
    }

    #[test]
    fn dollar_quotes_and_backslash_escapes_are_skipped() {
        let p = params(&[("a", "1")]);
        let st = rewrite("SELECT $q$ :a $q$, :a", Dialect::Postgres, &p).unwrap();
        assert_eq!(st.sql, "SELECT $q$ :a $q$, $1");
        let st = rewrite(r"SELECT 'it\'s :a', :a", Dialect::MySql, &p).unwrap();
        assert_eq!(st.sql, r"SELECT 'it\'s :a', ?");
    }

    #[test]
    fn refuses_unknown_and_positional_parameters() {
        let p = params(&[("a", "1")]);
        assert!(matches!(
            rewrite("SELECT :b", Dialect::Sqlite, &p),
            Err(ParamError::Unknown { .. })
        ));
        assert!(matches!(
            rewrite("SELECT ?", Dialect::Sqlite, &p),
            Err(ParamError::Positional(_))
        ));
        assert!(matches!(
            rewrite("SELECT $1", Dialect::Postgres, &p),
            Err(ParamError::Positional(_))
        ));
        assert!(matches!(
            rewrite("SELECT 'x", Dialect::Postgres, &p),
            Err(ParamError::Unterminated(_))
        ));
    }
}
