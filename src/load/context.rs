//! Words that say where in a document a finding is ("in step `drop-twin`"), and the
//! nearest valid name for a misspelt one.

use serde_json::Value;

use super::position::unescape_token;

/// The step a pointer is inside: (`/dsr/<kind>/<index>`, kind, step id if known).
fn step_of(root: &Value, tokens: &[String]) -> Option<(String, String, Option<String>)> {
    if tokens.len() >= 3 && tokens[0] == "dsr" && tokens[2].parse::<usize>().is_ok() {
        let step_ptr = format!("/dsr/{}/{}", tokens[1], tokens[2]);
        let id = root
            .pointer(&step_ptr)
            .and_then(|s| s.get("id"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        return Some((step_ptr, tokens[1].clone(), id));
    }
    None
}

fn tokens_of(pointer: &str) -> Vec<String> {
    pointer.split('/').skip(1).map(unescape_token).collect()
}

fn step_words(kind: &str, index: &str, id: Option<&str>) -> String {
    match id {
        Some(id) => format!("step `{id}` ({kind})"),
        None => format!(
            "step #{} of `dsr.{kind}`",
            index.parse::<usize>().unwrap_or(0) + 1
        ),
    }
}

/// ` in step `id` (kind)` / ` in `dsr.delete`` / `` for the node at `pointer`.
pub fn describe(root: &Value, pointer: &str) -> String {
    let tokens = tokens_of(pointer);
    if let Some((_, kind, id)) = step_of(root, &tokens) {
        return format!(" in {}", step_words(&kind, &tokens[2], id.as_deref()));
    }
    if tokens.is_empty() {
        return String::new();
    }
    format!(" in `{}`", tokens.join("."))
}

/// A node's name and where it is: (`` `http.method` ``, ` in step `twin` (export)`) inside a
/// step, (`` `dsr.delete` ``, ``) elsewhere, (`the document`, ``) for the root.
pub fn name_and_context(root: &Value, pointer: &str) -> (String, String) {
    let tokens = tokens_of(pointer);
    if let Some((_, kind, id)) = step_of(root, &tokens) {
        let step = step_words(&kind, &tokens[2], id.as_deref());
        if tokens.len() == 3 {
            return (step, String::new());
        }
        return (
            format!("`{}`", tokens[3..].join(".")),
            format!(" in {step}"),
        );
    }
    if tokens.is_empty() {
        return ("the document".to_owned(), String::new());
    }
    (format!("`{}`", tokens.join(".")), String::new())
}

/// Valid names close to `name`, best first (Jaro-Winkler, plus a prefix/substring bonus).
pub fn nearest_names<'a>(name: &str, valid: &[&'a str]) -> Vec<&'a str> {
    let mut scored: Vec<(f64, &str)> = valid
        .iter()
        .map(|v| {
            let mut score = strsim::jaro_winkler(name, v);
            let lev = strsim::damerau_levenshtein(name, v);
            if lev <= 2 {
                score += 0.2;
            }
            (score, *v)
        })
        .filter(|(s, _)| *s >= 0.75)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.into_iter().map(|(_, v)| v).collect()
}
