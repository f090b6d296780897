//! Scrubs known secrets (configured ones and fetched tokens) from text that may reach an
//! error message, such as a body excerpt that echoes a request header.

use std::sync::RwLock;

/// Scrubs known secrets from text.
#[derive(Default)]
pub(super) struct Redactor {
    secrets: RwLock<Vec<String>>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Redactor(..)")
    }
}

impl Redactor {
    /// Remembers a secret to scrub.
    pub(super) fn add(&self, secret: &str) {
        if secret.is_empty() {
            return;
        }
        if let Ok(mut s) = self.secrets.write() {
            // Tokens are refreshed over a long run; keep the recent ones only.
            if s.len() > 16 {
                s.remove(0);
            }
            s.push(secret.to_owned());
        }
    }

    /// `text` with every known secret replaced by `***`.
    pub(super) fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        if let Ok(s) = self.secrets.read() {
            for secret in s.iter() {
                if out.contains(secret.as_str()) {
                    out = out.replace(secret.as_str(), "***");
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_secret_is_replaced() {
        let r = Redactor::default();
        r.add("abc123");
        r.add("");
        r.add("zz");
        assert_eq!(
            r.redact("token abc123 and zz, not a"),
            "token *** and ***, not a"
        );
        assert!(!format!("{r:?}").contains("abc123"));
    }
}
