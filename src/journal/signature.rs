//! Ed25519 signatures over evidence (reports, package manifests, audit checkpoints), checkable
//! offline by anyone holding the public key. A signed JSON document carries its signature in a
//! `signature` member, over the canonical JSON of everything else; a signed text document
//! (HTML, Markdown) ends with one comment line, over the exact bytes before it.

use base64::Engine as _;
use ed25519_dalek::Signer as _;
use serde_json::{Value, json};

use super::canonical_json;

/// The algorithm named in signatures.
pub const ALGORITHM: &str = "ed25519";

/// How the signature line of a text document starts.
const TEXT_MARK: &str = "<!-- dsrctl-signature ";

/// Why a signature or key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SignatureError(String);

impl SignatureError {
    fn new(message: impl Into<String>) -> Self {
        SignatureError(message.into())
    }
}

/// A signing key: the Ed25519 seed, kept in the project's secrets as 64 hex digits.
pub struct SigningKey(ed25519_dalek::SigningKey);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey(public {})", self.public_key().to_hex())
    }
}

impl SigningKey {
    /// A key from its secret text (64 hex digits).
    pub fn from_secret(text: &str) -> Result<SigningKey, SignatureError> {
        let seed: [u8; 32] = hex::decode(text.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                SignatureError::new(
                    "a signing key must be 64 hex digits (an Ed25519 seed); `dsrctl init` makes one",
                )
            })?;
        Ok(SigningKey(ed25519_dalek::SigningKey::from_bytes(&seed)))
    }

    /// A new random key's secret text.
    pub fn generate_secret() -> String {
        hex::encode(rand::random::<[u8; 32]>())
    }

    /// The public key that checks this key's signatures.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// The signature of `bytes`, base64.
    pub fn sign(&self, bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0.sign(bytes).to_bytes())
    }

    /// `doc` with a `signature` member over the canonical JSON of the rest (an existing
    /// `signature` is replaced).
    pub fn sign_json(&self, doc: &Value) -> Value {
        let mut doc = doc.clone();
        if let Value::Object(map) = &mut doc {
            map.remove("signature");
        }
        let value = self.sign(canonical_json(&doc).as_bytes());
        if let Value::Object(map) = &mut doc {
            map.insert(
                "signature".to_owned(),
                json!({
                    "algorithm": ALGORITHM,
                    "public_key": self.public_key().to_hex(),
                    "value": value,
                }),
            );
        }
        doc
    }

    /// `text` followed by its signature line.
    pub fn sign_text(&self, text: &str) -> String {
        let mut body = text.to_owned();
        if !body.ends_with('\n') {
            body.push('\n');
        }
        let sig = self.sign(body.as_bytes());
        format!(
            "{body}{TEXT_MARK}{ALGORITHM} public_key={} value={sig} -->\n",
            self.public_key().to_hex()
        )
    }
}

/// A public key, written as 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey(ed25519_dalek::VerifyingKey);

impl PublicKey {
    /// A key from its 64 hex digits.
    pub fn from_hex(text: &str) -> Result<PublicKey, SignatureError> {
        let bytes: [u8; 32] = hex::decode(text.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| SignatureError::new("a public key must be 64 hex digits"))?;
        ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map(PublicKey)
            .map_err(|_| SignatureError::new("not an Ed25519 public key"))
    }

    /// Its 64 hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0.to_bytes())
    }

    /// Checks a base64 signature of `bytes`.
    pub fn verify(&self, bytes: &[u8], signature_b64: &str) -> Result<(), SignatureError> {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(signature_b64.trim())
            .map_err(|_| SignatureError::new("the signature is not base64"))?;
        let sig = ed25519_dalek::Signature::from_slice(&raw)
            .map_err(|_| SignatureError::new("the signature is not an Ed25519 signature"))?;
        self.0
            .verify_strict(bytes, &sig)
            .map_err(|_| SignatureError::new("the signature does not match the content: it was altered after signing, or signed with another key"))
    }

    /// Checks a JSON document signed by [`SigningKey::sign_json`] with this key.
    pub fn verify_json(&self, doc: &Value) -> Result<(), SignatureError> {
        let sig = doc
            .get("signature")
            .ok_or_else(|| SignatureError::new("the document carries no `signature`"))?;
        self.check_named_key(sig.get("public_key").and_then(Value::as_str))?;
        let value = sig
            .get("value")
            .and_then(Value::as_str)
            .ok_or_else(|| SignatureError::new("the signature has no `value`"))?;
        let mut rest = doc.clone();
        if let Value::Object(map) = &mut rest {
            map.remove("signature");
        }
        self.verify(canonical_json(&rest).as_bytes(), value)
    }

    /// Checks a text document signed by [`SigningKey::sign_text`] with this key; returns the
    /// text without its signature line.
    pub fn verify_text<'a>(&self, text: &'a str) -> Result<&'a str, SignatureError> {
        let trimmed = text.strip_suffix('\n').unwrap_or(text);
        let start = trimmed.rfind(TEXT_MARK).ok_or_else(|| {
            SignatureError::new(
                "the document carries no signature line (`<!-- dsrctl-signature ... -->`)",
            )
        })?;
        let (body, line) = text.split_at(start);
        let fields = line
            .trim_end()
            .strip_prefix(TEXT_MARK)
            .and_then(|l| l.strip_suffix("-->"))
            .ok_or_else(|| SignatureError::new("the signature line is malformed"))?;
        let mut parts = fields.split_whitespace();
        if parts.next() != Some(ALGORITHM) {
            return Err(SignatureError::new(
                "the signature is not an ed25519 signature",
            ));
        }
        let mut key = None;
        let mut value = None;
        for part in parts {
            if let Some(k) = part.strip_prefix("public_key=") {
                key = Some(k);
            } else if let Some(v) = part.strip_prefix("value=") {
                value = Some(v);
            }
        }
        self.check_named_key(key)?;
        let value = value.ok_or_else(|| SignatureError::new("the signature line has no value"))?;
        self.verify(body.as_bytes(), value)?;
        Ok(body)
    }

    /// A signature naming another key than this one was made by another signer.
    fn check_named_key(&self, named: Option<&str>) -> Result<(), SignatureError> {
        match named {
            Some(k) if !k.eq_ignore_ascii_case(&self.to_hex()) => {
                Err(SignatureError::new(format!(
                    "signed with key {k}, not with the key given ({})",
                    self.to_hex()
                )))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        SigningKey::from_secret(&"11".repeat(32)).expect("key")
    }

    #[test]
    fn rfc_8032_test_1_public_key() {
        let k = SigningKey::from_secret(
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        )
        .expect("key");
        assert_eq!(
            k.public_key().to_hex(),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        assert_eq!(
            hex::encode(
                base64::engine::general_purpose::STANDARD
                    .decode(k.sign(b""))
                    .expect("b64")
            ),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
    }

    #[test]
    fn signed_json_verifies_and_an_edit_is_refused() {
        let doc = key().sign_json(&json!({"run": "r1", "steps": [1, 2]}));
        let public = key().public_key();
        assert_eq!(public.verify_json(&doc), Ok(()));
        let mut edited = doc.clone();
        edited["steps"][1] = json!(3);
        assert!(public.verify_json(&edited).is_err());
        let other = SigningKey::from_secret(&"22".repeat(32)).expect("key");
        assert!(other.public_key().verify_json(&doc).is_err());
    }

    #[test]
    fn signed_text_verifies_and_one_byte_changed_is_refused() {
        let signed = key().sign_text("<html>ok</html>");
        let public = key().public_key();
        assert_eq!(public.verify_text(&signed), Ok("<html>ok</html>\n"));
        let edited = signed.replacen("ok", "ko", 1);
        assert!(public.verify_text(&edited).is_err());
        assert!(public.verify_text("<html>ok</html>\n").is_err());
    }
}
