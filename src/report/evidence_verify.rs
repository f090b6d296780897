//! `dsrctl evidence verify`: checks signed evidence offline with the public key only: an
//! evidence report (JSON with a `signature` member, or HTML/Markdown ending in a signature
//! line), an audit checkpoint, or an export package directory (its signed manifest, every
//! file's SHA-256, and `SHA256SUMS`).

use std::path::Path;

use crate::journal::{PublicKey, sha256_hex};

use super::package::{MANIFEST_NAME, SUMS_NAME, verify_package};

/// What was checked, one line each; an error names the first thing that does not hold.
pub fn verify_evidence(path: &Path, key: &PublicKey) -> Result<Vec<String>, String> {
    if path.is_dir() {
        return verify_package_dir(path, key);
    }
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let text = String::from_utf8(bytes).map_err(|_| format!("{} is not text", path.display()))?;
    if text.trim_start().starts_with('{') {
        let doc: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| format!("{}: not JSON: {e}", path.display()))?;
        key.verify_json(&doc)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(vec![format!(
            "{}: signature by {} holds",
            path.display(),
            key.to_hex()
        )])
    } else {
        key.verify_text(&text)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(vec![format!(
            "{}: signature by {} holds",
            path.display(),
            key.to_hex()
        )])
    }
}

fn verify_package_dir(dir: &Path, key: &PublicKey) -> Result<Vec<String>, String> {
    let mut checked = Vec::new();
    let manifest_path = dir.join(MANIFEST_NAME);
    let raw = std::fs::read(&manifest_path)
        .map_err(|e| format!("{}: {e} (not an export package?)", manifest_path.display()))?;
    let doc: serde_json::Value = serde_json::from_slice(&raw)
        .map_err(|e| format!("{}: not JSON: {e}", manifest_path.display()))?;
    key.verify_json(&doc)
        .map_err(|e| format!("{MANIFEST_NAME}: {e}"))?;
    checked.push(format!(
        "{MANIFEST_NAME}: signature by {} holds",
        key.to_hex()
    ));
    let manifest = verify_package(dir).map_err(|e| e.to_string())?;
    checked.push(format!(
        "{} file(s): SHA-256 as the manifest lists, none missing or added",
        manifest.files().count()
    ));
    let sums_path = dir.join(SUMS_NAME);
    let sums =
        std::fs::read_to_string(&sums_path).map_err(|e| format!("{}: {e}", sums_path.display()))?;
    let mut listed_manifest = false;
    for line in sums.lines().filter(|l| !l.trim().is_empty()) {
        let (digest, name) = line
            .split_once("  ")
            .ok_or_else(|| format!("{SUMS_NAME}: malformed line `{line}`"))?;
        let want = manifest
            .files()
            .find(|f| f.path == name)
            .map(|f| f.sha256.clone());
        let actual = if name == MANIFEST_NAME {
            listed_manifest = true;
            sha256_hex(&raw)
        } else {
            want.clone()
                .ok_or_else(|| format!("{SUMS_NAME}: `{name}` is not in the manifest"))?
        };
        if !digest.eq_ignore_ascii_case(&actual) {
            return Err(format!(
                "{SUMS_NAME}: `{name}` has SHA-256 {actual}, the file says {digest}"
            ));
        }
    }
    let expected_lines = manifest.files().count() + 1;
    if !listed_manifest || sums.lines().filter(|l| !l.trim().is_empty()).count() != expected_lines {
        return Err(format!(
            "{SUMS_NAME} does not list exactly the manifest's files and {MANIFEST_NAME}"
        ));
    }
    checked.push(format!(
        "{SUMS_NAME}: agrees (also checkable with `sha256sum -c {SUMS_NAME}`)"
    ));
    if manifest.complete {
        checked.push("the manifest says the package is complete".to_owned());
    } else {
        checked.push(format!(
            "the manifest says the package is INCOMPLETE: {}",
            manifest.incomplete_because.join("; ")
        ));
    }
    Ok(checked)
}
