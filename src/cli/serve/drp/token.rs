//! Pair-wise bearer tokens (section 2.05): issued to an agent whose signed setup message
//! verified, presented on every later call. A token carries the agent's id and a random
//! nonce under an HMAC keyed from the project's data key and bound to the agent's public
//! key: any worker holding the data key checks it without a table of tokens, and changing an
//! agent's key in dsrctl.yaml (or removing the agent) retires every token it was given.

use crate::journal::hmac_sha256_hex;

/// What the token key is derived for.
pub const TOKEN_KEY_PURPOSE: &str = "dsrctl drp pair-wise token v1";

/// Mints and checks tokens.
pub struct TokenKey([u8; 32]);

impl TokenKey {
    /// The key of the tokens.
    pub fn new(key: [u8; 32]) -> Self {
        TokenKey(key)
    }

    fn mac(&self, agent: &str, verify_key: &str, nonce: &str) -> String {
        hmac_sha256_hex(
            &self.0,
            format!("{agent}\n{}\n{nonce}", verify_key.to_ascii_lowercase()).as_bytes(),
        )
    }

    /// A new token for `agent`, whose public key is `verify_key` (hex).
    pub fn issue(&self, agent: &str, verify_key: &str) -> String {
        let nonce = rand::random::<[u8; 16]>();
        let nonce = hex::encode(nonce);
        let mac = self.mac(agent, verify_key, &nonce);
        format!("{agent}.{nonce}.{mac}")
    }

    /// The agent a token was issued to (unchecked): its first part.
    pub fn agent_of(token: &str) -> Option<&str> {
        token.split('.').next().filter(|a| !a.is_empty())
    }

    /// Whether `token` was issued by this key to `agent` with `verify_key`.
    pub fn check(&self, token: &str, agent: &str, verify_key: &str) -> bool {
        let mut parts = token.split('.');
        let (Some(a), Some(nonce), Some(mac), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        // Compared as digests of the hex, so the comparison's time says nothing of the MAC.
        use sha2::{Digest, Sha256};
        a == agent
            && Sha256::digest(self.mac(agent, verify_key, nonce).as_bytes())
                == Sha256::digest(mac.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_checks_for_its_agent_and_key_only() {
        let key = TokenKey::new([1; 32]);
        let t = key.issue("AA", "ab12");
        assert_eq!(TokenKey::agent_of(&t), Some("AA"));
        assert!(key.check(&t, "AA", "AB12"));
        assert!(!key.check(&t, "BB", "ab12"));
        assert!(
            !key.check(&t, "AA", "cd34"),
            "a rotated agent key retires the token"
        );
        assert!(!TokenKey::new([2; 32]).check(&t, "AA", "ab12"));
        let last = if t.ends_with('0') { "1" } else { "0" };
        let forged = format!("{}{last}", &t[..t.len() - 1]);
        assert!(!key.check(&forged, "AA", "ab12"));
        assert!(!key.check("AA", "AA", "ab12"));
    }
}
