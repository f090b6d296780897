//! A small SQL-like query parser shared by Digital Twins (`/query`) and DPS
//! (`/enrollments/query`): `SELECT * FROM <collection> [alias] [WHERE cond]`.
//!
//! `cond` is comparisons `prop = literal` / `prop != literal` joined by `AND`/`OR`,
//! `NOT`, parentheses and `IS_OF_MODEL('dtmi:...')`. Properties are dotted paths
//! (`$dtId`, `$metadata.$model`, `initialTwin.tags.owner`), optionally prefixed by the
//! alias. Strings are single- or double-quoted; a backslash escapes the next character.

use serde_json::{Map, Value};

/// A parsed query.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Query {
    /// Collection after `FROM`, as written.
    pub from: String,
    alias: Option<String>,
    cond: Option<Cond>,
}

#[derive(Debug, Clone, PartialEq)]
enum Cond {
    Eq(Vec<String>, Value, bool),
    IsOfModel(String),
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
    Not(Box<Cond>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Num(f64),
    Sym(&'static str),
}

fn lex(text: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' || c == '"' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(format!("Unterminated string literal in '{text}'")),
                    Some('\\') => {
                        s.extend(chars.get(i + 1));
                        i += 2;
                    }
                    Some(&q) if q == c => {
                        i += 1;
                        break;
                    }
                    Some(&ch) => {
                        s.push(ch);
                        i += 1;
                    }
                }
            }
            toks.push(Tok::Str(s));
        } else if c.is_ascii_digit() || c == '-' {
            let start = i;
            i += 1;
            while chars
                .get(i)
                .is_some_and(|d| d.is_ascii_digit() || *d == '.')
            {
                i += 1;
            }
            let n: String = chars[start..i].iter().collect();
            toks.push(Tok::Num(
                n.parse().map_err(|_| format!("Invalid number '{n}'"))?,
            ));
        } else if c.is_alphabetic() || c == '_' || c == '$' {
            let start = i;
            while chars
                .get(i)
                .is_some_and(|d| d.is_alphanumeric() || "_$.".contains(*d))
            {
                i += 1;
            }
            toks.push(Tok::Word(chars[start..i].iter().collect()));
        } else {
            let two: String = chars[i..chars.len().min(i + 2)].iter().collect();
            let sym = match (two.as_str(), c) {
                ("!=", _) => "!=",
                ("<>", _) => "!=",
                (_, '=') => "=",
                (_, '*') => "*",
                (_, '(') => "(",
                (_, ')') => ")",
                (_, ',') => ",",
                _ => return Err(format!("Unexpected character '{c}' in '{text}'")),
            };
            i += if sym == "!=" { 2 } else { 1 };
            toks.push(Tok::Sym(sym));
        }
    }
    Ok(toks)
}

/// Parses a query; the error message explains what is not supported.
pub(crate) fn parse(text: &str) -> Result<Query, String> {
    let mut p = P {
        toks: lex(text)?,
        pos: 0,
    };
    p.keyword("SELECT")?;
    p.sym("*")?;
    p.keyword("FROM")?;
    let from = p.word()?;
    let alias = match p.peek() {
        Some(Tok::Word(w)) if !w.eq_ignore_ascii_case("WHERE") => {
            let a = w.clone();
            p.pos += 1;
            Some(a)
        }
        _ => None,
    };
    let mut cond = None;
    if p.pos < p.toks.len() {
        p.keyword("WHERE")?;
        cond = Some(p.or()?);
    }
    if p.pos != p.toks.len() {
        return Err(format!(
            "Unexpected text after the query at token {}",
            p.pos
        ));
    }
    Ok(Query { from, alias, cond })
}

struct P {
    toks: Vec<Tok>,
    pos: usize,
}

impl P {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn is_keyword(&self, k: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(k))
    }
    fn keyword(&mut self, k: &str) -> Result<(), String> {
        if self.is_keyword(k) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!("Expected {k} at token {}", self.pos))
        }
    }
    fn sym(&mut self, s: &str) -> Result<(), String> {
        if matches!(self.peek(), Some(Tok::Sym(x)) if *x == s) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!(
                "Expected '{s}' at token {} (only SELECT * is supported)",
                self.pos
            ))
        }
    }
    fn word(&mut self) -> Result<String, String> {
        match self.peek() {
            Some(Tok::Word(w)) => {
                let w = w.clone();
                self.pos += 1;
                Ok(w)
            }
            _ => Err(format!("Expected a name at token {}", self.pos)),
        }
    }
    fn or(&mut self) -> Result<Cond, String> {
        let mut left = self.and()?;
        while self.is_keyword("OR") {
            self.pos += 1;
            left = Cond::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }
    fn and(&mut self) -> Result<Cond, String> {
        let mut left = self.atom()?;
        while self.is_keyword("AND") {
            self.pos += 1;
            left = Cond::And(Box::new(left), Box::new(self.atom()?));
        }
        Ok(left)
    }
    fn atom(&mut self) -> Result<Cond, String> {
        if self.is_keyword("NOT") {
            self.pos += 1;
            return Ok(Cond::Not(Box::new(self.atom()?)));
        }
        if matches!(self.peek(), Some(Tok::Sym("("))) {
            self.pos += 1;
            let c = self.or()?;
            self.sym(")")?;
            return Ok(c);
        }
        if self.is_keyword("IS_OF_MODEL") {
            self.pos += 1;
            self.sym("(")?;
            if matches!(self.peek(), Some(Tok::Word(_))) {
                self.pos += 1;
                self.sym(",")?;
            }
            let Some(Tok::Str(model)) = self.peek().cloned() else {
                return Err("IS_OF_MODEL needs a model id string".into());
            };
            self.pos += 1;
            self.sym(")")?;
            return Ok(Cond::IsOfModel(model));
        }
        let prop: Vec<String> = self.word()?.split('.').map(str::to_string).collect();
        let negate = match self.peek() {
            Some(Tok::Sym("=")) => false,
            Some(Tok::Sym("!=")) => true,
            _ => return Err(format!("Expected = or != at token {}", self.pos)),
        };
        self.pos += 1;
        let value = match self.peek() {
            Some(Tok::Str(s)) => Value::String(s.clone()),
            Some(Tok::Num(n)) => {
                serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number)
            }
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("true") => Value::Bool(true),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("false") => Value::Bool(false),
            _ => return Err(format!("Expected a literal at token {}", self.pos)),
        };
        self.pos += 1;
        Ok(Cond::Eq(prop, value, negate))
    }
}

impl Query {
    /// Whether `obj` is selected by the `WHERE` clause.
    pub(crate) fn matches(&self, obj: &Map<String, Value>) -> bool {
        self.cond.as_ref().is_none_or(|c| self.eval(c, obj))
    }

    fn eval(&self, c: &Cond, obj: &Map<String, Value>) -> bool {
        match c {
            Cond::Eq(path, value, negate) => {
                let mut parts = path.as_slice();
                if let (Some(a), Some((first, rest))) = (&self.alias, parts.split_first())
                    && first == a
                    && !rest.is_empty()
                {
                    parts = rest;
                }
                let found = lookup(obj, parts);
                let eq = match (found, value) {
                    (Some(Value::Number(a)), Value::Number(b)) => a.as_f64() == b.as_f64(),
                    (Some(a), b) => a == b,
                    (None, _) => false,
                };
                eq != *negate
            }
            Cond::IsOfModel(m) => {
                lookup(obj, &["$metadata".into(), "$model".into()]).and_then(Value::as_str)
                    == Some(m)
            }
            Cond::And(a, b) => self.eval(a, obj) && self.eval(b, obj),
            Cond::Or(a, b) => self.eval(a, obj) || self.eval(b, obj),
            Cond::Not(a) => !self.eval(a, obj),
        }
    }
}

fn lookup<'a>(obj: &'a Map<String, Value>, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let mut cur = obj.get(first)?;
    for p in rest {
        cur = cur.as_object()?.get(p)?;
    }
    Some(cur)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_where_clauses() {
        let q =
            parse("SELECT * FROM DIGITALTWINS T WHERE T.email = 'a\\'b@x.com' OR $dtId = \"x\"")
                .expect("parses");
        assert_eq!(q.from, "DIGITALTWINS");
        let twin = json!({"$dtId": "y", "email": "a'b@x.com"});
        assert!(q.matches(twin.as_object().expect("object")));
        let q =
            parse("select * from enrollments where initialTwin.tags.owner != 'bob'").expect("p");
        let e = json!({"initialTwin": {"tags": {"owner": "alice"}}});
        assert!(q.matches(e.as_object().expect("object")));
    }

    #[test]
    fn rejects_unsupported_queries() {
        for bad in [
            "SELECT name FROM DIGITALTWINS",
            "SELECT * FROM DIGITALTWINS WHERE a > 1",
            "SELECT * FROM DIGITALTWINS WHERE a = 'open",
            "DELETE FROM DIGITALTWINS",
            "SELECT * FROM DIGITALTWINS WHERE a = 'x' extra",
        ] {
            assert!(parse(bad).is_err(), "{bad} should be rejected");
        }
    }
}
