//! Words that say where in a document a finding is ("in step `drop-twin`"), and the
//! nearest valid name for a misspelt one.

use serde_json::Value;

use super::position::unescape_token;

/// ` in step `id`` / ` in `dsr.delete`` / `` for the node at `pointer`.
pub fn describe(root: &Value, pointer: &str) -> String {
    let tokens: Vec<String> = pointer.split('/').skip(1).map(unescape_token).collect();
    // A step: /dsr/<kind>/<index>/...
    if tokens.len() >= 3 && tokens[0] == "dsr" && tokens[2].parse::<usize>().is_ok() {
        let step = root
            .pointer(&format!("/dsr/{}/{}", tokens[1], tokens[2]))
            .and_then(|s| s.get("id"))
            .and_then(Value::as_str);
        return match step {
            Some(id) => format!(" in step `{id}` ({})", tokens[1]),
            None => format!(" in step #{} of `dsr.{}`", tokens[2], tokens[1]),
        };
    }
    if tokens.is_empty() {
        return String::new();
    }
    format!(" in `{}`", tokens.join("."))
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
