//! Template strings in a step: they compile, their variables resolve, and variables in an
//! HTTP path go through the `seg` encoding helper.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::rc::Rc;

use handlebars::template::{Parameter, Template, TemplateElement};
use serde_json::Value;

use super::Report;
use super::graph::closure;
use super::steps::KindSteps;
use crate::load::Code;
use crate::load::position::{Pos, push_token};
use crate::model::{Playbook, Step};

/// Keys whose values are never templates (ids, references, JSON pointers, durations).
const NOT_TEMPLATES: &[&str] = &[
    "id",
    "description",
    "needs",
    "after",
    "for_each",
    "connector",
    "capture",
    "collect",
    "paginate",
    "pointer",
    "every",
    "timeout",
    "duration",
    "absent_on",
    "mutates",
    "idempotent",
    "table",
    "columns",
    "order_by",
    "key",
    "column",
    "references",
    "mask",
];

/// Roots every template may use besides identities, captures and `item`.
const ALWAYS_VALID: &[&str] = &["request", "connector", "now", "steps", "this"];

/// Where a step's templates are checked.
pub(crate) struct StepScope<'a, 'b> {
    pub kind: &'a KindSteps<'b>,
    pub step: &'a Step,
    pub pointer: &'a str,
}

/// One variable used by a template.
struct Var {
    raw: String,
    /// A direct argument of the `seg` helper.
    in_seg: bool,
}

/// Check every template string of a step.
pub fn check_step_templates(playbook: &Playbook, scope: &StepScope<'_, '_>, r: &mut Report<'_>) {
    let Some(value) = r.doc.value.pointer(scope.pointer) else {
        return;
    };
    let needed = closure(&scope.kind.needs, &scope.step.id);
    let mut strings = Vec::new();
    collect_strings(value, &mut scope.pointer.to_owned(), &mut strings);
    for (ptr, text) in strings {
        let parsed = parsed(&text);
        let (vars, one_path) = match parsed.as_ref() {
            Ok(p) => (&p.vars, p.one_path),
            Err(e) => {
                r.error(
                    Code::TemplateSyntax,
                    &ptr,
                    format!("template does not compile: {e}"),
                )
                .help("templates are handlebars: `{{subject.email}}`, `{{seg item.id}}`");
                continue;
            }
        };
        let in_verify = ptr[scope.pointer.len()..].starts_with("/verify")
            || ptr[scope.pointer.len()..].starts_with("/poll");
        for v in vars {
            check_var(playbook, scope, &needed, in_verify, &ptr, v, r);
        }
        if ptr.ends_with("/http/path") {
            check_path_encoding(one_path, vars, &ptr, r);
        }
    }
}

/// What the checks need of a template: its variables, and whether it is one path
/// expression as a whole (`{{x.y}}`).
struct Parsed {
    vars: Vec<Var>,
    one_path: bool,
}

/// Distinct templates kept per thread; past this many the memo starts afresh.
const MAX_MEMO: usize = 4096;

thread_local! {
    /// Template text → what parsing it gave: the same template (`{{seg subject.email}}`)
    /// recurs in thousands of playbooks and is parsed once.
    static MEMO: RefCell<HashMap<String, Rc<Result<Parsed, String>>>> =
        RefCell::new(HashMap::new());
}

/// The parsed template, from the memo when it was seen before.
fn parsed(text: &str) -> Rc<Result<Parsed, String>> {
    if let Some(p) = MEMO.with(|m| m.borrow().get(text).cloned()) {
        return p;
    }
    let result = Template::compile(text)
        .map(|t| {
            let mut vars = Vec::new();
            collect_vars(&t, &mut vars);
            let one_path = matches!(t.elements.as_slice(), [TemplateElement::Expression(h)]
                if h.params.is_empty() && matches!(h.name, Parameter::Path(_)));
            Parsed { vars, one_path }
        })
        .map_err(|e| e.to_string());
    let result = Rc::new(result);
    MEMO.with(|m| {
        let mut m = m.borrow_mut();
        if m.len() >= MAX_MEMO {
            m.clear();
        }
        m.insert(text.to_owned(), Rc::clone(&result));
    });
    result
}

/// The template strings under `v` (at `ptr`) with their pointers; `ptr` grows and shrinks
/// back as the walk goes down and up, so only a template's own pointer is allocated.
fn collect_strings(v: &Value, ptr: &mut String, out: &mut Vec<(String, String)>) {
    let len = ptr.len();
    match v {
        Value::String(s) if s.contains("{{") => out.push((ptr.clone(), s.clone())),
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                let _ = write!(ptr, "/{i}");
                collect_strings(x, ptr, out);
                ptr.truncate(len);
            }
        }
        Value::Object(m) => {
            for (k, x) in m {
                if !NOT_TEMPLATES.contains(&k.as_str()) {
                    ptr.push('/');
                    push_token(ptr, k);
                    collect_strings(x, ptr, out);
                    ptr.truncate(len);
                }
            }
        }
        _ => {}
    }
}

fn collect_vars(t: &Template, out: &mut Vec<Var>) {
    for e in &t.elements {
        collect_element(e, out);
    }
}

fn collect_element(e: &TemplateElement, out: &mut Vec<Var>) {
    match e {
        TemplateElement::Expression(h) | TemplateElement::HtmlExpression(h) => {
            collect_helper(&h.name, &h.params, h.hash.values(), out);
        }
        TemplateElement::HelperBlock(h) => {
            collect_helper(&h.name, &h.params, h.hash.values(), out);
            // Blocks that change the context (`each`, `with`) make inner paths relative:
            // only `if`/`unless` keep the step's context.
            if matches!(h.name.as_name(), Some("if" | "unless")) {
                for inner in h.template.iter().chain(h.inverse.iter()) {
                    collect_vars(inner, out);
                }
            }
        }
        _ => {}
    }
}

fn collect_helper<'a>(
    name: &Parameter,
    params: &'a [Parameter],
    hash: impl Iterator<Item = &'a Parameter>,
    out: &mut Vec<Var>,
) {
    let helper = name.as_name().unwrap_or_default();
    if params.is_empty() && matches!(name, Parameter::Path(_) | Parameter::Name(_)) {
        // `{{x.y}}`: a variable, not a helper call.
        out.push(Var {
            raw: helper.to_owned(),
            in_seg: false,
        });
    }
    for p in params.iter().chain(hash) {
        collect_param(p, helper == "seg", out);
    }
}

fn collect_param(p: &Parameter, in_seg: bool, out: &mut Vec<Var>) {
    match p {
        Parameter::Path(path) => out.push(Var {
            raw: Parameter::Path(path.clone())
                .as_name()
                .unwrap_or_default()
                .to_owned(),
            in_seg,
        }),
        Parameter::Subexpression(s) => {
            // Whatever a subexpression given to `seg` derives (`seg (md5 (lower x))`) is
            // still encoded as one segment.
            let start = out.len();
            collect_element(&s.element, out);
            if in_seg {
                for v in &mut out[start..] {
                    v.in_seg = true;
                }
            }
        }
        _ => {}
    }
}

/// `subject.email` → (`subject`, Some(`email`)).
fn split_var(raw: &str) -> (&str, Option<&str>) {
    let raw = raw.trim_start_matches("this.");
    let end = raw.find(['.', '/', '[']).unwrap_or(raw.len());
    let root = &raw[..end];
    let rest = raw[end..].trim_start_matches(['.', '/', '[']);
    let second_end = rest.find(['.', '/', '[', ']']).unwrap_or(rest.len());
    let second = &rest[..second_end];
    (root, (!second.is_empty()).then_some(second))
}

/// Where in the source a variable is: its column inside the string when it can be found.
fn var_pos(r: &Report<'_>, ptr: &str, raw: &str) -> Pos {
    let p = r.doc.positions.value(ptr);
    let line = r
        .doc
        .text
        .lines()
        .nth(p.line.saturating_sub(1))
        .unwrap_or("");
    let start: usize = line
        .char_indices()
        .nth(p.col.saturating_sub(1))
        .map_or(line.len(), |(b, _)| b);
    match line[start..].find(raw) {
        Some(off) => Pos {
            line: p.line,
            col: p.col + line[start..start + off].chars().count(),
            len: raw.chars().count().max(1),
        },
        None => p,
    }
}

fn check_var(
    playbook: &Playbook,
    scope: &StepScope<'_, '_>,
    needed: &BTreeSet<&str>,
    in_verify: bool,
    ptr: &str,
    v: &Var,
    r: &mut Report<'_>,
) {
    use crate::load::Severity::Error;
    let (root, second) = split_var(&v.raw);
    if root.is_empty() || root.starts_with('@') || ALWAYS_VALID.contains(&root) {
        return;
    }
    // Found in the source only for a finding: most variables have none.
    let pos = |r: &Report<'_>| var_pos(r, ptr, &v.raw);
    let step_id = &scope.step.id;
    match root {
        "subject" => {
            if let Some(identity) = second
                && !playbook.needs_identities.iter().any(|i| i == identity)
                && !r.broken("/needs_identities")
            {
                let at = pos(r);
                r.push_at(
                    Error,
                    Code::UndeclaredIdentity,
                    at,
                    format!(
                        "template uses `subject.{identity}`, but `{identity}` is not in `needs_identities`"
                    ),
                )
                .help(format!("add `{identity}` to `needs_identities` of the playbook"));
            }
        }
        "item" => {
            if scope.step.for_each.is_none() && !r.broken(&format!("{}/for_each", scope.pointer)) {
                let at = pos(r);
                r.push_at(
                    Error,
                    Code::ItemOutsideForEach,
                    at,
                    format!("step `{step_id}` uses `item` but has no `for_each`"),
                )
                .help("`item` is the element of a `for_each` list; add `for_each: step.capture`");
            }
        }
        _ => {
            let own = in_verify && root == step_id;
            match scope.kind.step(root) {
                Some(target) => {
                    if !own && !needed.contains(root) && scope.kind.needs_known(step_id) {
                        let at = pos(r);
                        r.push_at(
                            Error,
                            Code::StepNotNeeded,
                            at,
                            format!(
                                "template uses `{}` but step `{step_id}` does not need `{root}`",
                                v.raw
                            ),
                        )
                        .help(format!("add `{root}` to `needs`"));
                    }
                    if let Some(cap) = second
                        && !target.capture.contains_key(cap)
                        && !scope.kind.capture_broken(r, root)
                    {
                        let caps: Vec<&str> = target.capture.keys().map(String::as_str).collect();
                        let at = pos(r);
                        r.push_at(
                            Error,
                            Code::UnknownCapture,
                            at,
                            format!("step `{root}` has no capture `{cap}`"),
                        )
                        .suggest(cap, &caps, "its captures");
                    }
                }
                None if scope.kind.id_broken(r) => {}
                None => {
                    let mut valid: Vec<&str> = vec!["subject", "request", "item", "connector"];
                    valid.extend(needed.iter().copied());
                    let at = pos(r);
                    r.push_at(
                        Error,
                        Code::UnknownVariable,
                        at,
                        format!("template variable `{}` does not resolve", v.raw),
                    )
                    .suggest(root, &valid, "valid roots");
                }
            }
        }
    }
}

/// In `http.path` every variable is wrapped in `{{seg ...}}` so a value cannot change what
/// is addressed. A path that is one capture as a whole (a URL the service returned, e.g.
/// from `Location`) is allowed: the connector confines it to its own origin.
fn check_path_encoding(one_path: bool, vars: &[Var], ptr: &str, r: &mut Report<'_>) {
    let whole_capture = one_path
        && vars
            .first()
            .is_some_and(|v| split_var(&v.raw).1.is_some() && !v.raw.starts_with("subject"));
    if whole_capture {
        return;
    }
    for v in vars.iter().filter(|v| !v.in_seg) {
        let pos = var_pos(r, ptr, &v.raw);
        r.push_at(
            crate::load::Severity::Error,
            Code::UnencodedPathVariable,
            pos,
            format!("`{}` enters the URL path without encoding", v.raw),
        )
        .help(format!(
            "use `{{{{seg {}}}}}` so the value is encoded as one path segment",
            v.raw
        ));
    }
}
