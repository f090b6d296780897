//! YAML text to a `serde_json::Value` plus a [`PosMap`], from saphyr's event stream.
//!
//! Built on the event parser rather than a loaded tree because a loader silently merges
//! duplicate keys and expands aliases (an alias bomb grows exponentially). Here duplicate
//! keys, anchors, aliases, tabs in indentation, non-UTF-8 bytes, empty, huge and deeply
//! nested documents are findings; nothing panics and the work is linear in the input.
//! Scalars resolve by the YAML 1.2 core schema: `on`/`yes` stay strings.

use std::borrow::Cow;

use saphyr_parser::{Event, Parser, ScalarStyle, Span, Tag};
use serde_json::{Map, Number, Value};

use super::position::{NodeId, NodePos, Pos, PosMap, Step, escape_token};
use super::{Code, Diagnostic, Diagnostics};

/// Largest file accepted, in bytes.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;
/// Deepest nesting of mappings and sequences accepted.
pub const MAX_DEPTH: usize = 64;
/// Tab findings reported per file before giving up on that file.
const MAX_TAB_FINDINGS: usize = 5;

/// A parsed YAML document with the places of its nodes.
#[derive(Debug, Clone)]
pub struct Document {
    /// File, relative to the project root.
    pub file: String,
    /// The source text (for snippets in findings).
    pub text: String,
    /// The document as JSON.
    pub value: Value,
    /// JSON pointer to source places.
    pub positions: PosMap,
}

/// Parse one YAML file. Returns the document when it could be built (possibly with
/// findings such as duplicate keys, which keep the last value), and the findings.
pub fn parse_yaml(file: &str, bytes: &[u8]) -> (Option<Document>, Diagnostics) {
    let mut diags = Diagnostics::default();
    if bytes.len() > MAX_FILE_BYTES {
        diags.push(
            Diagnostic::error(
                Code::FileTooLarge,
                file,
                0,
                0,
                format!("file is larger than the limit of {MAX_FILE_BYTES} bytes"),
            )
            .with_help("split the playbook into one file per service"),
        );
        return (None, diags);
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let offset = e.valid_up_to();
            let before = String::from_utf8_lossy(&bytes[..offset]);
            let line = before.matches('\n').count() + 1;
            let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            diags.push(
                Diagnostic::error(
                    Code::InvalidUtf8,
                    file,
                    line,
                    col,
                    format!("file is not valid UTF-8: invalid byte at offset {offset}"),
                )
                .with_help("save the file as UTF-8"),
            );
            return (None, diags);
        }
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if check_tabs(file, text, &mut diags) {
        return (None, diags);
    }
    let mut builder = Builder {
        file,
        diags: &mut diags,
        stack: Vec::new(),
        root: None,
        positions: PosMap::default(),
    };
    let ok = builder.run(text);
    let root = builder.root.take();
    let positions = std::mem::take(&mut builder.positions);
    if !ok {
        return (None, diags);
    }
    match root {
        None | Some(Value::Null) => {
            diags.push(
                Diagnostic::error(Code::EmptyFile, file, 0, 0, "file is empty")
                    .with_help("a playbook starts with `service:`; delete the file if unused"),
            );
            (None, diags)
        }
        Some(value) => {
            let doc = Document {
                file: file.to_owned(),
                text: text.to_owned(),
                value,
                positions,
            };
            (Some(doc), diags)
        }
    }
}

/// Report tabs used for indentation; true when any was found.
fn check_tabs(file: &str, text: &str, diags: &mut Diagnostics) -> bool {
    let mut found = 0;
    for (i, line) in text.lines().enumerate() {
        // Spaces and tabs are one byte each: the indent's bytes are its characters.
        let width = line
            .bytes()
            .take_while(|b| *b == b' ' || *b == b'\t')
            .count();
        if width == line.len() {
            continue; // blank line
        }
        if let Some(col) = line.as_bytes()[..width].iter().position(|b| *b == b'\t') {
            diags.push(
                Diagnostic::error(
                    Code::TabIndentation,
                    file,
                    i + 1,
                    col + 1,
                    "tab used for indentation",
                )
                .with_help("YAML indents with spaces only; replace the tab with spaces"),
            );
            found += 1;
            if found >= MAX_TAB_FINDINGS {
                break;
            }
        }
    }
    found > 0
}

enum Frame {
    Map {
        obj: Map<String, Value>,
        id: NodeId,
        key: Option<(String, Pos)>,
        /// Keys defined more than once, with their first place (the position map has the
        /// place of the last).
        repeated: Vec<(String, Pos)>,
    },
    Seq {
        arr: Vec<Value>,
        id: NodeId,
    },
}

struct Builder<'a> {
    file: &'a str,
    diags: &'a mut Diagnostics,
    stack: Vec<Frame>,
    root: Option<Value>,
    positions: PosMap,
}

fn pos_of(span: &Span) -> Pos {
    let len = if span.start.line() == span.end.line() {
        span.end.col().saturating_sub(span.start.col()).max(1)
    } else {
        1
    };
    Pos {
        line: span.start.line(),
        col: span.start.col() + 1,
        len,
    }
}

impl Builder<'_> {
    fn error(&mut self, code: Code, pos: Pos, message: impl Into<String>) -> Diagnostic {
        Diagnostic::error(code, self.file, pos.line, pos.col, message).with_len(pos.len)
    }

    /// Consume the event stream; false when the document could not be built.
    fn run(&mut self, text: &str) -> bool {
        let mut parser = Parser::new_from_str(text);
        let mut documents = 0;
        while let Some(event) = parser.next_event() {
            let (event, span) = match event {
                Ok(e) => e,
                Err(e) => {
                    let m = e.marker();
                    let pos = Pos {
                        line: m.line().max(1),
                        col: m.col() + 1,
                        len: 1,
                    };
                    let d =
                        self.error(Code::YamlSyntax, pos, format!("invalid YAML: {}", e.info()));
                    self.diags.push(d);
                    return false;
                }
            };
            let pos = pos_of(&span);
            match event {
                Event::DocumentStart(_) => {
                    documents += 1;
                    if documents > 1 {
                        let d = self
                            .error(
                                Code::MultipleDocuments,
                                pos,
                                "file holds more than one document",
                            )
                            .with_help("keep one playbook per file; remove the `---` separator");
                        self.diags.push(d);
                        return false;
                    }
                }
                Event::Alias(_) => {
                    let d = self
                        .error(Code::YamlAlias, pos, "aliases are not supported")
                        .with_help("write the value out in full; anchors (`&`) and aliases (`*`) are not allowed");
                    self.diags.push(d);
                    return false;
                }
                Event::Scalar(v, style, anchor, tag) => {
                    if !self.check_anchor(anchor, pos) {
                        return false;
                    }
                    if !self.scalar(v, style, tag.as_deref(), pos) {
                        return false;
                    }
                }
                Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                    if !self.check_anchor(anchor, pos) {
                        return false;
                    }
                    if self.stack.len() >= MAX_DEPTH {
                        let d = self
                            .error(
                                Code::NestingTooDeep,
                                pos,
                                format!("nesting deeper than {MAX_DEPTH} levels"),
                            )
                            .with_help("flatten the document");
                        self.diags.push(d);
                        return false;
                    }
                    let Some(id) = self.record(pos) else {
                        return false;
                    };
                    let is_map = matches!(event, Event::MappingStart(..));
                    self.stack.push(if is_map {
                        Frame::Map {
                            obj: Map::new(),
                            id,
                            key: None,
                            repeated: Vec::new(),
                        }
                    } else {
                        Frame::Seq {
                            arr: Vec::new(),
                            id,
                        }
                    });
                }
                Event::SequenceEnd | Event::MappingEnd => {
                    let value = match self.stack.pop() {
                        Some(Frame::Map { obj, .. }) => Value::Object(obj),
                        Some(Frame::Seq { arr, .. }) => Value::Array(arr),
                        None => {
                            let d = self.error(Code::YamlSyntax, pos, "unbalanced YAML structure");
                            self.diags.push(d);
                            return false;
                        }
                    };
                    self.attach(value);
                }
                Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
            }
        }
        true
    }

    fn check_anchor(&mut self, anchor: usize, pos: Pos) -> bool {
        if anchor == 0 {
            return true;
        }
        let d = self
            .error(
                Code::YamlAnchor,
                pos,
                "anchors and aliases are not supported",
            )
            .with_help(
                "write the value out in full; anchors (`&`) and aliases (`*`) are not allowed",
            );
        self.diags.push(d);
        false
    }

    /// The position of the pending key when the top frame is a mapping.
    fn current_key_pos(&self) -> Option<Pos> {
        match self.stack.last() {
            Some(Frame::Map {
                key: Some((_, p)), ..
            }) => Some(*p),
            _ => None,
        }
    }

    /// Record the places of the node about to start (at `pos`, under the pending key if
    /// any); `None` (after a finding) for a complex key.
    fn record(&mut self, pos: Pos) -> Option<NodeId> {
        let key = self.current_key_pos();
        let value = NodePos { key, value: pos };
        match self.stack.last() {
            None => Some(self.positions.insert_root(value)),
            Some(Frame::Seq { arr, id }) => Some(self.positions.insert_child(
                *id,
                Step::Index(arr.len()),
                value,
            )),
            Some(Frame::Map {
                key: Some((k, _)),
                id,
                ..
            }) => Some(self.positions.insert_child(*id, Step::Key(k), value)),
            Some(Frame::Map { key: None, .. }) => {
                let d = self
                    .error(Code::ComplexKey, pos, "a mapping key must be a plain value")
                    .with_help("use a string as the key");
                self.diags.push(d);
                None
            }
        }
    }

    fn scalar(&mut self, v: Cow<'_, str>, style: ScalarStyle, tag: Option<&Tag>, pos: Pos) -> bool {
        // A scalar where a key is expected is the key: its raw text, so `on`, `1` and
        // `true` stay strings.
        if let Some(Frame::Map {
            obj,
            id,
            key: key @ None,
            repeated,
        }) = self.stack.last_mut()
        {
            let first = if obj.contains_key(&*v) {
                match repeated.iter().find(|(k, _)| *k == *v) {
                    Some((_, p)) => Some(*p),
                    None => {
                        let at = format!("{}/{}", self.positions.pointer(*id), escape_token(&v));
                        let first = self.positions.get(&at).and_then(|n| n.key);
                        if let Some(p) = first {
                            repeated.push((v.to_string(), p));
                        }
                        first
                    }
                }
            } else {
                None
            };
            if let Some(first) = first {
                let d = Diagnostic::error(
                    Code::DuplicateKey,
                    self.file,
                    pos.line,
                    pos.col,
                    format!("duplicate key `{v}`"),
                )
                .with_len(pos.len)
                .with_key(&*v)
                .with_label("defined again here")
                .with_help(format!(
                    "first defined at line {}, column {}; keep one of them",
                    first.line, first.col
                ));
                self.diags.push(d);
            }
            *key = Some((v.into_owned(), pos));
            return true;
        }
        // A string takes the scalar's text as it is, without copying it.
        let value = match resolve_scalar(&v, style, tag) {
            Ok(Some(value)) => value,
            Ok(None) => Value::String(v.into_owned()),
            Err(msg) => {
                let d = self.error(Code::UnsupportedValue, pos, msg);
                self.diags.push(d);
                Value::String(v.into_owned())
            }
        };
        if self.record(pos).is_none() {
            return false;
        }
        self.attach(value);
        true
    }

    /// Put a finished value into its parent (or make it the root).
    fn attach(&mut self, value: Value) {
        match self.stack.last_mut() {
            None => self.root = Some(value),
            Some(Frame::Seq { arr, .. }) => arr.push(value),
            Some(Frame::Map { obj, key, .. }) => {
                if let Some((k, _)) = key.take() {
                    obj.insert(k, value);
                }
            }
        }
    }
}

/// Resolve a scalar by the YAML 1.2 core schema; `None` when it is the string `v`.
fn resolve_scalar(v: &str, style: ScalarStyle, tag: Option<&Tag>) -> Result<Option<Value>, String> {
    if style != ScalarStyle::Plain {
        return Ok(None);
    }
    if let Some(tag) = tag {
        if !tag.is_yaml_core_schema() {
            return Err(format!("tag `{tag}` is not supported"));
        }
        return match tag.suffix.as_str() {
            "str" => Ok(None),
            "null" | "bool" | "int" | "float" => match typed_plain(v)? {
                None => Err(format!("`{v}` is not a valid !!{}", tag.suffix)),
                other => Ok(other),
            },
            other => Err(format!("tag `!!{other}` is not supported")),
        };
    }
    typed_plain(v)
}

/// A plain scalar as null, a boolean or a number; `None` when it is a string.
fn typed_plain(v: &str) -> Result<Option<Value>, String> {
    match v {
        "" | "~" | "null" | "Null" | "NULL" => return Ok(Some(Value::Null)),
        "true" | "True" | "TRUE" => return Ok(Some(Value::Bool(true))),
        "false" | "False" | "FALSE" => return Ok(Some(Value::Bool(false))),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" | "-.inf" | "-.Inf" | "-.INF"
        | ".nan" | ".NaN" | ".NAN" => {
            return Err(format!(
                "`{v}` (infinity or NaN) cannot be represented; quote it if you meant text"
            ));
        }
        _ => {}
    }
    if let Some(hex) = v.strip_prefix("0x") {
        if !hex.is_empty()
            && hex.bytes().all(|b| b.is_ascii_hexdigit())
            && let Ok(n) = u64::from_str_radix(hex, 16)
        {
            return Ok(Some(Value::Number(n.into())));
        }
        return Ok(None);
    }
    if let Some(oct) = v.strip_prefix("0o") {
        if !oct.is_empty()
            && oct.bytes().all(|b| (b'0'..=b'7').contains(&b))
            && let Ok(n) = u64::from_str_radix(oct, 8)
        {
            return Ok(Some(Value::Number(n.into())));
        }
        return Ok(None);
    }
    if is_core_int(v) {
        if let Ok(n) = v.parse::<i64>() {
            return Ok(Some(Value::Number(n.into())));
        }
        if let Ok(n) = v.trim_start_matches('+').parse::<u64>() {
            return Ok(Some(Value::Number(n.into())));
        }
    }
    if is_core_float(v)
        && let Some(n) = v.parse::<f64>().ok().and_then(Number::from_f64)
    {
        return Ok(Some(Value::Number(n)));
    }
    Ok(None)
}

/// `[-+]?[0-9]+`
fn is_core_int(v: &str) -> bool {
    let digits = v.strip_prefix(['-', '+']).unwrap_or(v);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`
fn is_core_float(v: &str) -> bool {
    let s = v.strip_prefix(['-', '+']).unwrap_or(v);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some((int, frac)) => {
            (!int.is_empty() || !frac.is_empty())
                && int.bytes().all(|b| b.is_ascii_digit())
                && frac.bytes().all(|b| b.is_ascii_digit())
                && !(int.is_empty() && frac.is_empty())
        }
        None => !mantissa.is_empty() && mantissa.bytes().all(|b| b.is_ascii_digit()),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let d = e.strip_prefix(['-', '+']).unwrap_or(e);
        !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())
    });
    mantissa_ok && exponent_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_schema_numbers() {
        assert!(is_core_int("-12") && is_core_int("+3") && !is_core_int("1_000"));
        assert!(is_core_float(".5") && is_core_float("5.") && is_core_float("1e3"));
        assert!(!is_core_float(".") && !is_core_float("e3") && !is_core_float("1e"));
        assert_eq!(typed_plain("0x1f"), Ok(Some(Value::Number(31.into()))));
        assert_eq!(typed_plain("0xzz"), Ok(None));
        assert_eq!(typed_plain("yes"), Ok(None));
    }

    /// The position map keeps one entry per pointer; a key written three times is
    /// reported twice, each time with the place of its first definition.
    #[test]
    fn a_repeated_key_points_back_to_its_first_place() {
        let (doc, d) = parse_yaml("p.yaml", b"a: 1\nb: 2\na: 3\na: [4]\n");
        let helps: Vec<_> = d.iter().map(|d| (d.line, d.help.clone())).collect();
        let first = Some("first defined at line 1, column 1; keep one of them".to_owned());
        assert_eq!(helps, vec![(3, first.clone()), (4, first)]);
        let doc = doc.expect("doc");
        assert_eq!(doc.positions.len(), 4);
        let a = doc.positions.get("/a").expect("pos");
        assert_eq!((a.value.line, a.key.map(|k| k.line)), (4, Some(4)));
        assert_eq!(doc.positions.get("/a/0").map(|p| p.value.col), Some(5));
    }

    #[test]
    fn escaped_keys_are_found() {
        let (doc, d) = parse_yaml("p.yaml", b"\"x/y~z\": { b: 1 }\n");
        assert!(d.is_empty());
        let doc = doc.expect("doc");
        let p = doc.positions.get("/x~1y~0z/b").expect("pos");
        assert_eq!((p.value.line, p.value.col), (1, 15));
        let pointers: Vec<&str> = doc.positions.iter().map(|(k, _)| k).collect();
        assert_eq!(pointers, ["", "/x~1y~0z", "/x~1y~0z/b"]);
    }

    #[test]
    fn positions_are_one_based_characters() {
        let (doc, d) = parse_yaml("p.yaml", "é: x\nkey: [a, bé, c]\n".as_bytes());
        assert!(d.is_empty());
        let doc = doc.expect("doc");
        let p = doc.positions.get("/key/2").expect("pos");
        assert_eq!((p.value.line, p.value.col), (2, 14));
        let k = doc.positions.get("/key").and_then(|n| n.key).expect("key");
        assert_eq!((k.line, k.col, k.len), (2, 1, 3));
    }
}
