//! A small OData `$filter` parser and evaluator (Graph, IoT Central).
//!
//! Supported: `prop eq|ne literal`, `startswith(prop,'x')`, `endswith(prop,'x')`,
//! `and`, `or`, `not`, parentheses. String literals use single quotes; a quote inside
//! is doubled (`'o''brien'`). String comparison ignores case, as Graph does for
//! `mail` and `userPrincipalName`.

use serde_json::{Map, Value};

/// A parsed filter expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Filter {
    Cmp {
        prop: String,
        op: CmpOp,
        value: Value,
    },
    Func {
        name: String,
        prop: String,
        arg: String,
    },
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Num(String),
    Open,
    Close,
    Comma,
}

fn lex(text: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => (toks.push(Tok::Open), i += 1).1,
            ')' => (toks.push(Tok::Close), i += 1).1,
            ',' => (toks.push(Tok::Comma), i += 1).1,
            '\'' => {
                let start = i;
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => {
                            return Err(format!(
                                "There is an unterminated string literal at position {start} in '{text}'."
                            ));
                        }
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            s.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
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
            }
            c if c.is_ascii_digit() || c == '-' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || "-.".contains(chars[i]))
                {
                    i += 1;
                }
                toks.push(Tok::Num(chars[start..i].iter().collect()));
            }
            c if c.is_alphabetic() || c == '_' || c == '$' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || "_/$.".contains(chars[i])) {
                    i += 1;
                }
                toks.push(Tok::Word(chars[start..i].iter().collect()));
            }
            other => {
                return Err(format!(
                    "Syntax error: character '{other}' is not valid at position {i} in '{text}'."
                ));
            }
        }
    }
    Ok(toks)
}

/// Parses a `$filter` value; the error is the message Graph would send.
pub(crate) fn parse(text: &str) -> Result<Filter, String> {
    let toks = lex(text)?;
    let mut p = Parser { toks, pos: 0 };
    let f = p.or()?;
    if p.pos != p.toks.len() {
        return Err(format!("Syntax error at position {} in '{text}'.", p.pos));
    }
    Ok(f)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek_word(&self, w: &str) -> bool {
        matches!(self.toks.get(self.pos), Some(Tok::Word(x)) if x.eq_ignore_ascii_case(w))
    }

    fn expect(&mut self, t: Tok) -> Result<(), String> {
        if self.toks.get(self.pos) == Some(&t) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!(
                "Syntax error: expected {t:?} at token {}.",
                self.pos
            ))
        }
    }

    fn or(&mut self) -> Result<Filter, String> {
        let mut left = self.and()?;
        while self.peek_word("or") {
            self.pos += 1;
            left = Filter::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter, String> {
        let mut left = self.atom()?;
        while self.peek_word("and") {
            self.pos += 1;
            left = Filter::And(Box::new(left), Box::new(self.atom()?));
        }
        Ok(left)
    }

    fn atom(&mut self) -> Result<Filter, String> {
        if self.peek_word("not") {
            self.pos += 1;
            return Ok(Filter::Not(Box::new(self.atom()?)));
        }
        match self.toks.get(self.pos).cloned() {
            Some(Tok::Open) => {
                self.pos += 1;
                let f = self.or()?;
                self.expect(Tok::Close)?;
                Ok(f)
            }
            Some(Tok::Word(w)) if self.toks.get(self.pos + 1) == Some(&Tok::Open) => {
                let name = w.to_ascii_lowercase();
                if name != "startswith" && name != "endswith" {
                    return Err(format!("An unknown function with name '{w}' was found."));
                }
                self.pos += 2;
                let prop = self.word()?;
                self.expect(Tok::Comma)?;
                let arg = match self.toks.get(self.pos) {
                    Some(Tok::Str(s)) => s.clone(),
                    _ => return Err(format!("'{name}' needs a string literal argument.")),
                };
                self.pos += 1;
                self.expect(Tok::Close)?;
                Ok(Filter::Func { name, prop, arg })
            }
            Some(Tok::Word(_)) => {
                let prop = self.word()?;
                let op = match self.word()?.to_ascii_lowercase().as_str() {
                    "eq" => CmpOp::Eq,
                    "ne" => CmpOp::Ne,
                    other => return Err(format!("Unsupported or invalid operator '{other}'.")),
                };
                let value = self.literal()?;
                Ok(Filter::Cmp { prop, op, value })
            }
            _ => Err(format!(
                "Syntax error: expression expected at token {}.",
                self.pos
            )),
        }
    }

    fn word(&mut self) -> Result<String, String> {
        match self.toks.get(self.pos) {
            Some(Tok::Word(w)) => {
                self.pos += 1;
                Ok(w.clone())
            }
            _ => Err(format!(
                "Syntax error: identifier expected at token {}.",
                self.pos
            )),
        }
    }

    fn literal(&mut self) -> Result<Value, String> {
        let v = match self.toks.get(self.pos) {
            Some(Tok::Str(s)) => Value::String(s.clone()),
            Some(Tok::Word(w)) if w == "true" => Value::Bool(true),
            Some(Tok::Word(w)) if w == "false" => Value::Bool(false),
            Some(Tok::Word(w)) if w == "null" => Value::Null,
            Some(Tok::Num(n)) => match n.parse::<i64>() {
                Ok(i) => Value::from(i),
                Err(_) => Value::String(n.clone()),
            },
            _ => {
                return Err(format!(
                    "Syntax error: literal expected at token {}.",
                    self.pos
                ));
            }
        };
        self.pos += 1;
        Ok(v)
    }
}

fn lookup<'a>(obj: &'a Map<String, Value>, prop: &str) -> Option<&'a Value> {
    let mut parts = prop.split('/');
    let first = parts.next()?;
    let mut cur = obj
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(first))
        .map(|(_, v)| v)?;
    for p in parts {
        cur = cur
            .as_object()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(p))?
            .1;
    }
    Some(cur)
}

fn same(a: Option<&Value>, b: &Value) -> bool {
    match (a, b) {
        (Some(Value::String(x)), Value::String(y)) => x.eq_ignore_ascii_case(y),
        (None, Value::Null) => true,
        (Some(x), y) => x == y,
        (None, _) => false,
    }
}

impl Filter {
    /// Whether `obj` satisfies the filter.
    pub(crate) fn matches(&self, obj: &Map<String, Value>) -> bool {
        match self {
            Filter::Cmp { prop, op, value } => {
                let eq = same(lookup(obj, prop), value);
                if *op == CmpOp::Eq { eq } else { !eq }
            }
            Filter::Func { name, prop, arg } => {
                let Some(Value::String(s)) = lookup(obj, prop) else {
                    return false;
                };
                let (s, arg) = (s.to_lowercase(), arg.to_lowercase());
                if name == "startswith" {
                    s.starts_with(&arg)
                } else {
                    s.ends_with(&arg)
                }
            }
            Filter::And(a, b) => a.matches(obj) && b.matches(obj),
            Filter::Or(a, b) => a.matches(obj) || b.matches(obj),
            Filter::Not(a) => !a.matches(obj),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn doubled_quote_is_one_quote() {
        let f = parse("mail eq 'dan.o''brien@contoso.com'").expect("parses");
        assert_eq!(
            f,
            Filter::Cmp {
                prop: "mail".into(),
                op: CmpOp::Eq,
                value: json!("dan.o'brien@contoso.com")
            }
        );
    }

    #[test]
    fn malformed_filters_are_rejected() {
        for bad in [
            "mail eq 'a'b'",
            "mail eq 'open",
            "mail eq",
            "mail like 'x'",
            "(mail eq 'a'",
            "mail eq 'a' zzz",
        ] {
            assert!(parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn evaluates_and_or_and_functions() {
        let o = json!({"mail": "Alice@Contoso.com", "a": {"b": 1}});
        let o = o.as_object().expect("object");
        assert!(parse("mail eq 'alice@contoso.com'").expect("p").matches(o));
        assert!(
            parse("startswith(mail,'alice') and a/b eq 1")
                .expect("p")
                .matches(o)
        );
        assert!(
            parse("not (mail eq 'x') or mail eq 'y'")
                .expect("p")
                .matches(o)
        );
        assert!(!parse("mail ne 'alice@contoso.com'").expect("p").matches(o));
    }
}
