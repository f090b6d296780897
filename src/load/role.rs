//! What a project file is: the config, a playbook or a request, by the directory it is in
//! (the config's `playbooks:` and `requests:`) and, outside those, by its content.

use serde_json::Value;

use super::CONFIG_FILE;
use crate::model::ProjectConfig;

/// A file's role in the project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `dsrctl.yaml`.
    Config,
    /// A playbook.
    Playbook,
    /// A request.
    Request,
}

/// Where the project keeps playbooks and requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Playbook directories (or files), relative to the root.
    pub playbooks: Vec<String>,
    /// The requests directory, relative to the root.
    pub requests: String,
}

impl Layout {
    /// The layout a config declares (its defaults when there is none).
    pub fn of(config: Option<&ProjectConfig>, written: Option<&Value>) -> Layout {
        if let Some(c) = config {
            return Layout {
                playbooks: c.playbooks.iter().map(|d| clean(d)).collect(),
                requests: clean(&c.requests),
            };
        }
        let playbooks = written
            .and_then(|v| v.get("playbooks"))
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(clean).collect());
        let requests = written
            .and_then(|v| v.get("requests"))
            .and_then(Value::as_str)
            .map(clean);
        Layout {
            playbooks: playbooks.unwrap_or_else(|| vec!["policies".to_owned()]),
            requests: requests.unwrap_or_else(|| "requests".to_owned()),
        }
    }

    /// The role the directory gives a file, if it is in one of the project's directories.
    pub fn by_folder(&self, rel: &str) -> Option<Role> {
        if rel == CONFIG_FILE {
            return Some(Role::Config);
        }
        if self.playbooks.iter().any(|d| within(rel, d)) {
            return Some(Role::Playbook);
        }
        within(rel, &self.requests).then_some(Role::Request)
    }

    /// The playbook directory a file is in.
    pub fn playbook_dir(&self, rel: &str) -> Option<&str> {
        self.playbooks
            .iter()
            .find(|d| within(rel, d))
            .map(String::as_str)
    }
}

fn clean(dir: &str) -> String {
    let d = dir.trim_start_matches("./").trim_end_matches('/');
    if d.is_empty() {
        ".".to_owned()
    } else {
        d.to_owned()
    }
}

/// Whether `rel` is the directory (or file) `dir` or inside it.
fn within(rel: &str, dir: &str) -> bool {
    dir == "." || rel == dir || rel.strip_prefix(dir).is_some_and(|r| r.starts_with('/'))
}

/// The role a document's top-level keys show: `service`/`dsr` a playbook, `subject` a
/// request, `tenants` a config; `None` when they show none.
pub fn by_content(value: &Value) -> Option<Role> {
    let m = value.as_object()?;
    if m.contains_key("service") || m.contains_key("dsr") {
        Some(Role::Playbook)
    } else if m.contains_key("subject") {
        Some(Role::Request)
    } else if m.contains_key("tenants") {
        Some(Role::Config)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_decide_first() {
        let layout = Layout {
            playbooks: vec!["policies".into(), "../shared/pack".into()],
            requests: "requests".into(),
        };
        assert_eq!(layout.by_folder("dsrctl.yaml"), Some(Role::Config));
        assert_eq!(layout.by_folder("policies/a/b.yaml"), Some(Role::Playbook));
        assert_eq!(
            layout.by_folder("../shared/pack/x.yaml"),
            Some(Role::Playbook)
        );
        assert_eq!(layout.by_folder("requests/r.yaml"), Some(Role::Request));
        assert_eq!(layout.by_folder("policies-old/x.yaml"), None);
        assert_eq!(layout.by_folder("inbox/r.yaml"), None);
    }

    #[test]
    fn content_decides_elsewhere() {
        let v = |s: &str| serde_json::from_str::<Value>(s).expect("json");
        assert_eq!(by_content(&v(r#"{"service":"x"}"#)), Some(Role::Playbook));
        assert_eq!(
            by_content(&v(r#"{"id":"r","subject":{}}"#)),
            Some(Role::Request)
        );
        assert_eq!(by_content(&v(r#"{"tenants":{}}"#)), Some(Role::Config));
        assert_eq!(by_content(&v(r#"{"x":1}"#)), None);
        assert_eq!(by_content(&v("[1]")), None);
    }
}
