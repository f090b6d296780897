//! Where project files come from: the working tree, or (added by the caller) a git ref.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::cache::Stamp;
use super::yaml::MAX_FILE_BYTES;

/// Read access to a project's files by path relative to the project root (`/` separators).
/// Shared by the threads that load playbooks.
pub trait Source: Sync {
    /// The bytes of one file.
    fn read(&self, rel: &str) -> io::Result<Vec<u8>>;
    /// The size and modification time of a file on disk, when it is one: the validation
    /// cache re-reads a file only when they changed. `None` (always re-read) by default.
    fn stamp(&self, _rel: &str) -> Option<Stamp> {
        None
    }
    /// Every `*.yaml`/`*.yml` file under a directory, recursively, as root-relative paths
    /// with `/` separators, sorted.
    fn list_yaml(&self, rel_dir: &str) -> io::Result<Vec<String>>;
}

/// Files in a directory of the file system.
#[derive(Debug, Clone)]
pub struct FsSource(pub PathBuf);

/// Whether a file name has a YAML extension.
pub fn is_yaml_name(name: &str) -> bool {
    name.ends_with(".yaml") || name.ends_with(".yml")
}

impl FsSource {
    fn full(&self, rel: &str) -> PathBuf {
        if rel.is_empty() || rel == "." {
            self.0.clone()
        } else {
            self.0.join(rel)
        }
    }
}

impl Source for FsSource {
    fn read(&self, rel: &str) -> io::Result<Vec<u8>> {
        // Read at most one byte past the limit: enough to refuse a huge file without
        // loading it.
        let file = std::fs::File::open(self.full(rel))?;
        let mut bytes = Vec::new();
        file.take(MAX_FILE_BYTES as u64 + 1)
            .read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    fn stamp(&self, rel: &str) -> Option<Stamp> {
        Stamp::of(&self.full(rel))
    }

    fn list_yaml(&self, rel_dir: &str) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        let base = rel_dir.trim_end_matches('/');
        let mut pending = vec![(self.full(base), base.to_owned())];
        while let Some((dir, rel)) = pending.pop() {
            for entry in std::fs::read_dir(&dir)? {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') {
                    continue;
                }
                let child_rel = if rel.is_empty() || rel == "." {
                    name.clone()
                } else {
                    format!("{rel}/{name}")
                };
                // Follow symlinks deliberately only for files; directories are walked as
                // found, so a symlink loop cannot make the walk endless.
                let ty = entry.file_type()?;
                if ty.is_dir() {
                    pending.push((entry.path(), child_rel));
                } else if is_yaml_name(&name) && (ty.is_file() || entry.path().is_file()) {
                    out.push(child_rel);
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

/// A path relative to `root` with `/` separators; the path as given when outside `root`.
pub fn relative_to(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let s: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    s.join("/")
}
