//! Project files as they are at a git ref, read through `git` (no checkout).

use std::io;
use std::path::Path;
use std::process::Command;

use crate::load::Source;

/// Reads files at `reference` in the repository holding the project directory.
pub struct GitSource {
    reference: String,
    /// The project directory relative to the repository root (`a/b/`, or empty).
    prefix: String,
    repo_root: std::path::PathBuf,
}

impl GitSource {
    /// A source for the project in `project_dir` at `reference`; fails outside a repository
    /// or for an unknown ref.
    pub fn new(project_dir: &Path, reference: &str) -> io::Result<Self> {
        let prefix = git(project_dir, &["rev-parse", "--show-prefix"])?;
        let root = git(project_dir, &["rev-parse", "--show-toplevel"])?;
        git(
            project_dir,
            &[
                "rev-parse",
                "--verify",
                "--quiet",
                &format!("{reference}^{{commit}}"),
            ],
        )
        .map_err(|_| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("`{reference}` is not a commit in this repository"),
            )
        })?;
        Ok(GitSource {
            reference: reference.to_owned(),
            prefix: prefix.trim().to_owned(),
            repo_root: root.trim().into(),
        })
    }

    /// The repository path of a project-relative path, `..` resolved.
    fn repo_path(&self, rel: &str) -> io::Result<String> {
        let mut parts: Vec<&str> = Vec::new();
        for part in self.prefix.split('/').chain(rel.split('/')) {
            match part {
                "" | "." => {}
                ".." => {
                    parts.pop().ok_or_else(|| {
                        io::Error::new(
                            io::ErrorKind::InvalidInput,
                            format!("`{rel}` leaves the repository"),
                        )
                    })?;
                }
                p => parts.push(p),
            }
        }
        Ok(parts.join("/"))
    }
}

impl Source for GitSource {
    fn read(&self, rel: &str) -> io::Result<Vec<u8>> {
        let path = self.repo_path(rel)?;
        let out = Command::new("git")
            .arg("-C")
            .arg(&self.repo_root)
            .args(["show", &format!("{}:{path}", self.reference)])
            .output()?;
        if !out.status.success() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{path} does not exist at {}", self.reference),
            ));
        }
        Ok(out.stdout)
    }

    fn list_yaml(&self, rel_dir: &str) -> io::Result<Vec<String>> {
        let dir = self.repo_path(rel_dir)?;
        let listing = git(
            &self.repo_root,
            &[
                "ls-tree",
                "-r",
                "--name-only",
                &self.reference,
                "--",
                if dir.is_empty() { "." } else { &dir },
            ],
        )?;
        let base = rel_dir.trim_end_matches('/');
        let mut out: Vec<String> = listing
            .lines()
            .filter(|p| crate::load::is_yaml_name(p))
            .filter_map(|p| {
                p.strip_prefix(&dir)
                    .map(|rest| rest.trim_start_matches('/'))
            })
            .map(|rest| {
                if base.is_empty() || base == "." {
                    rest.to_owned()
                } else {
                    format!("{base}/{rest}")
                }
            })
            .collect();
        out.sort();
        Ok(out)
    }
}

fn git(dir: &Path, args: &[&str]) -> io::Result<String> {
    let out = Command::new("git").arg("-C").arg(dir).args(args).output()?;
    if !out.status.success() {
        return Err(io::Error::other(
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
