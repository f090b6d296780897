//! The seal of a saved plan: an HMAC-SHA-256 of each part of the file (each field of the
//! request, each service, each step, each previewed change, the rest of the plan) under a
//! key from the project's secrets. `apply` recomputes them and refuses a plan whose parts
//! were edited after `dsrctl plan` wrote it, naming each part that differs.
//!
//! Why a MAC rather than recompiling and comparing: recompiling proves the steps follow from
//! the request in the file, but nothing else anchors that request (the plan may be applied
//! on another machine, where neither the request file nor the dry run's record is), so an
//! edited tenant or request id would recompile into a consistent plan for the wrong tenant.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{SavedPlan, Workflow, WorkflowError};
use crate::journal::hmac_sha256_hex;
use crate::secret::{EnvFileResolver, SecretResolver};

/// The file holding a generated key, in the state directory.
const KEY_FILE: &str = "plan.key";

/// The seal of a saved plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seal {
    /// HMAC-SHA-256 of each part, by part name.
    pub parts: BTreeMap<String, String>,
    /// HMAC-SHA-256 of the list of part names, so that a part removed together with its
    /// entry is seen too.
    pub index: String,
}

impl Seal {
    /// Seals the parts of `saved` (its own seal aside) under `key`.
    pub fn new(key: &[u8], saved: &SavedPlan) -> Seal {
        let parts: BTreeMap<String, String> = parts(saved)
            .into_iter()
            .map(|(name, value)| {
                let mac = mac(key, &name, &value);
                (name, mac)
            })
            .collect();
        let index = index(key, parts.keys());
        Seal { parts, index }
    }

    /// What differs between `saved` and what this seal was made over: one line per part
    /// edited, added or removed. Empty when nothing was edited.
    pub fn check(&self, key: &[u8], saved: &SavedPlan) -> Vec<String> {
        let now = Seal::new(key, saved);
        let index_holds = index(key, self.parts.keys()) == self.index;
        let mut common = self
            .parts
            .iter()
            .filter_map(|(name, mac)| now.parts.get(name).map(|m| m == mac))
            .peekable();
        if !index_holds && common.peek().is_some() && common.all(|same| !same) {
            return vec![
                "it was sealed with another key than this project's (`plan.key` in dsrctl.yaml, else .dsrctl/plan.key), or everything in it was edited"
                    .to_owned(),
            ];
        }
        let names: BTreeSet<&String> = self.parts.keys().chain(now.parts.keys()).collect();
        let mut problems = Vec::new();
        for name in names {
            let change = match (self.parts.get(name), now.parts.get(name)) {
                (Some(a), Some(b)) if a != b => "was edited",
                (None, Some(_)) => "was added",
                (Some(_), None) => "was removed",
                _ => continue,
            };
            problems.push(format!(
                "{} {change} after the plan was written",
                describe(name)
            ));
        }
        if problems.is_empty() && !index_holds {
            problems.push(
                "the seal was edited: its list of parts does not match its own signature"
                    .to_owned(),
            );
        }
        problems
    }
}

/// Every sealed part by name, as the canonical JSON of its value.
fn parts(saved: &SavedPlan) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    out.insert("file format".to_owned(), json(&saved.format_version));
    out.insert("dry run".to_owned(), json(&saved.dry_run));
    let plan = &saved.plan;
    if let Ok(Value::Object(fields)) = serde_json::to_value(&plan.request) {
        for (k, v) in fields {
            out.insert(format!("request.{k}"), v.to_string());
        }
    }
    out.insert("plan.format_version".to_owned(), json(&plan.format_version));
    out.insert("plan.created_at".to_owned(), json(&plan.created_at));
    out.insert("plan.inputs".to_owned(), json(&plan.inputs));
    for s in &plan.services {
        out.insert(format!("service {}", s.service), json(s));
    }
    let order: Vec<&str> = plan.steps.iter().map(|s| s.key.as_str()).collect();
    out.insert("step order".to_owned(), json(&order));
    for s in &plan.steps {
        out.insert(format!("step {}", s.key), json(s));
    }
    for c in &saved.changes {
        out.insert(format!("change {}", c.instance), json(c));
    }
    out
}

/// A value as canonical JSON: through `serde_json::Value`, so that a part read back from a
/// reformatted file gives the same text as when it was written.
fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .map(|v| v.to_string())
        .unwrap_or_default()
}

fn mac(key: &[u8], name: &str, value: &str) -> String {
    hmac_sha256_hex(key, format!("{name}\n{value}").as_bytes())
}

fn index<'a>(key: &[u8], names: impl Iterator<Item = &'a String>) -> String {
    let list: Vec<&str> = names.map(String::as_str).collect();
    hmac_sha256_hex(key, format!("index\n{}", list.join("\n")).as_bytes())
}

/// A part's name as a person reads it.
fn describe(name: &str) -> String {
    if let Some(field) = name.strip_prefix("request.") {
        return format!("the request's `{field}`");
    }
    for (prefix, what) in [
        ("step ", "step"),
        ("service ", "service"),
        ("change ", "the previewed change"),
    ] {
        if let Some(rest) = name.strip_prefix(prefix)
            && name != "step order"
        {
            return format!("{what} `{rest}`");
        }
    }
    match name {
        "plan.inputs" => "the digests of the plan's inputs".to_owned(),
        "plan.created_at" => "the time the plan was made".to_owned(),
        "step order" => "the order of the steps".to_owned(),
        other => format!("the plan's `{other}`"),
    }
}

impl Workflow {
    /// The key sealing saved plans: `plan.key` of dsrctl.yaml, else one made on first use in
    /// the state directory (readable by its owner only).
    pub fn plan_key(&self) -> Result<Vec<u8>, WorkflowError> {
        if let Some(r) = &self.project.config.plan.key {
            return EnvFileResolver::new(&self.project.root)
                .resolve(r)
                .map(String::into_bytes)
                .map_err(|e| WorkflowError::PlanKey(e.to_string()));
        }
        generated_key(&self.state_dir.join(KEY_FILE)).map_err(WorkflowError::PlanKey)
    }
}

/// A key kept in `path`, made there (random, readable by its owner only) when missing. The
/// error names the file, never a key.
pub(super) fn generated_key(path: &Path) -> Result<Vec<u8>, String> {
    let problem = |e: std::io::Error| format!("{}: {e}", path.display());
    if !path.exists() {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(problem)?;
        // Written whole under a temporary name (readable by its owner only), then put in
        // place unless another process was first: nobody reads a half-written key.
        let mut file = tempfile::NamedTempFile::new_in(dir).map_err(problem)?;
        file.write_all(hex::encode(rand::random::<[u8; 32]>()).as_bytes())
            .map_err(problem)?;
        file.as_file().sync_all().map_err(problem)?;
        if let Err(e) = file.persist_noclobber(path)
            && e.error.kind() != std::io::ErrorKind::AlreadyExists
        {
            return Err(problem(e.error));
        }
    }
    let key = std::fs::read_to_string(path).map_err(problem)?;
    let key = key.trim();
    if key.is_empty() {
        return Err(format!(
            "{} is empty; remove it and a new key is made (what the old one sealed or signed is refused)",
            path.display()
        ));
    }
    Ok(key.as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::DryRun;

    fn saved(key: &[u8]) -> SavedPlan {
        let plan = serde_json::from_value(serde_json::json!({
            "format_version": 1, "created_at": "2026-01-01T00:00:00Z",
            "request": {"id": "r-1", "kind": "delete", "tenant": "t1", "received": "2026-01-01",
                        "subject": {"email": "a@b.example"}},
            "inputs": {"dsrctl.yaml": "00"}, "services": [],
            "steps": [
                {"key": "crm/find", "service": "crm", "id": "find", "kind": "delete",
                 "action": {"http": {"method": "GET", "path": "/c"}}, "mutates": false, "idempotent": true},
                {"key": "crm/drop", "service": "crm", "id": "drop", "kind": "delete",
                 "action": {"http": {"method": "DELETE", "path": "/c/1"}}, "mutates": true, "idempotent": true}
            ]
        }))
        .expect("plan");
        let dry = DryRun {
            run_id: "d1".into(),
            plan,
            changes: Vec::new(),
            failures: Vec::new(),
        };
        SavedPlan::new(&dry, key)
    }

    #[test]
    fn an_untouched_plan_passes_and_survives_reformatting() {
        let s = saved(b"k");
        assert!(s.edits(b"k").is_empty());
        let text = serde_json::to_string_pretty(&s).unwrap();
        let back: SavedPlan = serde_json::from_str(&text).unwrap();
        assert!(back.edits(b"k").is_empty());
    }

    #[test]
    fn each_edit_is_named() {
        let mut s = saved(b"k");
        s.plan.request.tenant = "t2".into();
        s.plan.steps[1].id = "other".into();
        s.plan.steps.swap(0, 1);
        assert_eq!(
            s.edits(b"k"),
            [
                "the request's `tenant` was edited after the plan was written",
                "step `crm/drop` was edited after the plan was written",
                "the order of the steps was edited after the plan was written",
            ]
        );
    }

    #[test]
    fn a_removed_step_is_seen_even_with_its_seal_entry_removed() {
        let mut s = saved(b"k");
        s.plan.steps.pop();
        assert_eq!(
            s.edits(b"k"),
            [
                "step `crm/drop` was removed after the plan was written",
                "the order of the steps was edited after the plan was written",
            ]
        );
        let seal = s.seal.as_mut().unwrap();
        seal.parts.remove("step crm/drop");
        let problems = s.edits(b"k");
        assert!(
            problems.iter().any(|p| p.contains("order of the steps")),
            "{problems:?}"
        );
        // Resealing without the key cannot hide it: the index no longer matches.
        let mut t = saved(b"k");
        t.plan.steps.pop();
        let order = json(&vec!["crm/find"]);
        let seal = t.seal.as_mut().unwrap();
        seal.parts.remove("step crm/drop");
        seal.parts
            .insert("step order".into(), mac(b"guess", "step order", &order));
        assert!(!t.edits(b"k").is_empty());
    }

    #[test]
    fn another_key_or_no_seal_is_refused() {
        let s = saved(b"k");
        let problems = s.edits(b"other key");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("another key"), "{problems:?}");
        let mut t = saved(b"k");
        t.seal = None;
        assert_eq!(t.edits(b"k").len(), 1);
        assert!(t.edits(b"k")[0].contains("no seal"));
    }

    #[test]
    fn the_generated_key_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state").join(KEY_FILE);
        let first = generated_key(&path).unwrap();
        assert_eq!(first.len(), 64);
        assert_eq!(generated_key(&path).unwrap(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "readable by its owner only: {mode:o}");
        }
    }
}
