//! Secrets by reference: resolved from the environment or from files when a connector, a
//! destination or a key is needed, never read from playbooks. Errors name the variable or
//! file, never the value. The one way every layer reads a secret.

use std::path::PathBuf;

use crate::model::SecretRef;

/// A secret that could not be read; the message names where it was looked for, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SecretError(String);

impl SecretError {
    /// An error with this message (which must name where the secret was looked for, and
    /// never hold a value).
    pub fn new(message: impl Into<String>) -> Self {
        SecretError(message.into())
    }
}

/// Turns a [`SecretRef`] into the secret's value.
pub trait SecretResolver: Send + Sync {
    /// The secret's value. The error names where it was looked for, never a value.
    fn resolve(&self, r: &SecretRef) -> Result<String, SecretError>;
}

/// Resolves environment variables, and files relative to `base_dir` (the directory of
/// `dsrctl.yaml`). Trailing newlines of a file are trimmed.
#[derive(Debug, Clone)]
pub struct EnvFileResolver {
    /// Directory that relative secret file paths start from.
    pub base_dir: PathBuf,
}

impl EnvFileResolver {
    /// A resolver for files relative to `base_dir`.
    pub fn new(base_dir: impl Into<PathBuf>) -> Self {
        EnvFileResolver {
            base_dir: base_dir.into(),
        }
    }
}

impl SecretResolver for EnvFileResolver {
    fn resolve(&self, r: &SecretRef) -> Result<String, SecretError> {
        let value = match r {
            SecretRef::Env(name) => match std::env::var(name) {
                Ok(v) => v,
                Err(std::env::VarError::NotPresent) => {
                    return Err(SecretError(format!(
                        "the secret environment variable `{name}` is not set; export it before running"
                    )));
                }
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(SecretError(format!(
                        "the secret environment variable `{name}` is not valid UTF-8"
                    )));
                }
            },
            SecretRef::File(path) => {
                let full = self.base_dir.join(path);
                match std::fs::read(&full) {
                    Ok(bytes) => String::from_utf8(bytes).map_err(|_| {
                        SecretError(format!(
                            "the secret file `{}` is not valid UTF-8",
                            full.display()
                        ))
                    })?,
                    // The io error's own text names only the failure (not found, denied).
                    Err(e) => {
                        return Err(SecretError(format!(
                            "cannot read the secret file `{}`: {}",
                            full.display(),
                            e.kind()
                        )));
                    }
                }
            }
        };
        let trimmed = value.trim_end_matches(['\n', '\r']);
        if trimmed.is_empty() {
            return Err(SecretError(format!("the secret {} is empty", describe(r))));
        }
        Ok(trimmed.to_owned())
    }
}

/// Where a secret comes from, for messages (never its value).
pub fn describe(r: &SecretRef) -> String {
    match r {
        SecretRef::Env(name) => format!("environment variable `{name}`"),
        SecretRef::File(path) => format!("file `{path}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_secret_has_trailing_newline_trimmed() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("tok"), "s3cr3t-value\r\n").expect("write");
        let r = EnvFileResolver::new(dir.path());
        let v = r.resolve(&SecretRef::File("tok".into())).expect("resolves");
        assert_eq!(v, "s3cr3t-value");
    }

    #[test]
    fn missing_secrets_are_named_in_the_error() {
        let r = EnvFileResolver::new("/nonexistent-dir");
        let e = r
            .resolve(&SecretRef::Env("DSRCTL_TEST_SECRET_NEVER_SET_1".into()))
            .expect_err("unset");
        assert!(e.to_string().contains("DSRCTL_TEST_SECRET_NEVER_SET_1"));
        let e = r
            .resolve(&SecretRef::File("nope.txt".into()))
            .expect_err("missing");
        assert!(e.to_string().contains("nope.txt"), "{e}");
    }
}
