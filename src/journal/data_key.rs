//! Personal data at rest: the project's data key seals subject identities, collected records
//! and previews (AES-256-GCM) wherever they are stored (state store, spool files, saved
//! plans), one value at a time, so the rest of a record stays readable and queryable.
//!
//! A sealed value is a string `dsrctl-sealed:v1:<base64 of nonce || ciphertext || tag>`,
//! the ciphertext being the value's JSON. An identity is sealed with a keyed index beside
//! it, `...#<hex HMAC-SHA-256 of name and value under a key derived from the data key>`,
//! so a store can find a subject's requests by identity without holding the value.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use serde_json::Value;

use super::hmac_sha256_hex;

/// What starts every sealed value.
pub const SEALED_PREFIX: &str = "dsrctl-sealed:v1:";

const NONCE_LEN: usize = 12;

/// A sealed value could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// A sealed value was read without a data key.
    #[error(
        "the value is sealed with a data key and none is configured (`data_key` in dsrctl.yaml, else .dsrctl/data.key)"
    )]
    NoKey,
    /// Decryption failed: another key, or altered bytes.
    #[error(
        "a sealed value does not open with this project's data key (`data_key` in dsrctl.yaml, else .dsrctl/data.key): it was sealed with another key, or altered; every worker sharing a store needs the same `data_key`"
    )]
    WrongKey,
    /// The value is not in the sealed format.
    #[error("a sealed value is malformed: {0}")]
    Malformed(String),
    /// The key text is not 32 bytes in hex or base64.
    #[error("the data key must be 32 bytes written as 64 hex digits or base64")]
    BadKey,
}

/// The project's key for personal data at rest (AES-256-GCM), and the index key derived
/// from it.
#[derive(Clone, PartialEq, Eq)]
pub struct DataKey {
    key: [u8; 32],
    index: [u8; 32],
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

impl DataKey {
    /// A key from its 32 bytes.
    pub fn from_bytes(key: [u8; 32]) -> Self {
        let index_hex = hmac_sha256_hex(&key, b"dsrctl subject index v1");
        let mut index = [0u8; 32];
        hex::decode_to_slice(index_hex, &mut index).expect("an HMAC-SHA-256 is 32 bytes");
        DataKey { key, index }
    }

    /// Parses a key written as 64 hex digits or base64 of 32 bytes (surrounding whitespace
    /// ignored).
    pub fn parse(text: &str) -> Result<Self, SealError> {
        let text = text.trim();
        let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(text).map_err(|_| SealError::BadKey)?
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|_| SealError::BadKey)?
        };
        let key: [u8; 32] = bytes.try_into().map_err(|_| SealError::BadKey)?;
        Ok(DataKey::from_bytes(key))
    }

    /// A key for `purpose` derived from the data key (an HMAC-SHA-256 of the purpose's
    /// name), so every worker holding the data key holds it too.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        hex::decode_to_slice(hmac_sha256_hex(&self.key, purpose.as_bytes()), &mut out)
            .expect("an HMAC-SHA-256 is 32 bytes");
        out
    }

    /// The keyed index of an identity value: equal for equal `(name, value)`, meaningless
    /// without the key.
    pub fn index_tag(&self, name: &str, value: &str) -> String {
        hmac_sha256_hex(&self.index, format!("{name}\n{value}").as_bytes())
    }

    /// Seals a JSON value (a sealed value is returned as it is).
    pub fn seal(&self, value: &Value) -> Value {
        if is_sealed(value) {
            return value.clone();
        }
        Value::String(self.seal_text(&value.to_string(), None))
    }

    /// Seals an identity value with its keyed index beside it.
    pub fn seal_identity(&self, name: &str, value: &str) -> String {
        if value.starts_with(SEALED_PREFIX) {
            return value.to_owned();
        }
        let json = Value::String(value.to_owned()).to_string();
        self.seal_text(&json, Some(&self.index_tag(name, value)))
    }

    fn seal_text(&self, plain: &str, tag: Option<&str>) -> String {
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&self.key));
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let sealed = cipher
            .encrypt(&nonce, plain.as_bytes())
            .expect("AES-GCM encrypts any message of this size");
        let mut bytes = Vec::with_capacity(NONCE_LEN + sealed.len());
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&sealed);
        let body = base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes);
        match tag {
            Some(tag) => format!("{SEALED_PREFIX}{body}#{tag}"),
            None => format!("{SEALED_PREFIX}{body}"),
        }
    }

    /// Seals bytes (an evidence file): `dsrctl-sealed:v1:` then the nonce, ciphertext and tag.
    pub fn seal_bytes(&self, plain: &[u8]) -> Vec<u8> {
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&self.key));
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let sealed = cipher
            .encrypt(&nonce, plain)
            .expect("AES-GCM encrypts any message of this size");
        let mut out = Vec::with_capacity(SEALED_PREFIX.len() + NONCE_LEN + sealed.len());
        out.extend_from_slice(SEALED_PREFIX.as_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens bytes sealed by [`DataKey::seal_bytes`]; other bytes are returned as they are.
    pub fn open_bytes(&self, bytes: &[u8]) -> Result<Vec<u8>, SealError> {
        let Some(body) = bytes.strip_prefix(SEALED_PREFIX.as_bytes()) else {
            return Ok(bytes.to_vec());
        };
        if body.len() < NONCE_LEN + 16 {
            return Err(SealError::Malformed("too short".into()));
        }
        let (nonce, body) = body.split_at(NONCE_LEN);
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&self.key));
        cipher
            .decrypt(Nonce::from_slice(nonce), body)
            .map_err(|_| SealError::WrongKey)
    }

    /// Opens a sealed string into the JSON value it holds.
    pub fn open_text(&self, sealed: &str) -> Result<Value, SealError> {
        let body = sealed
            .strip_prefix(SEALED_PREFIX)
            .ok_or_else(|| SealError::Malformed("no `dsrctl-sealed:v1:` prefix".into()))?;
        let body = body.split_once('#').map_or(body, |(b, _)| b);
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(body)
            .map_err(|e| SealError::Malformed(e.to_string()))?;
        if bytes.len() < NONCE_LEN + 16 {
            return Err(SealError::Malformed("too short".into()));
        }
        let (nonce, body) = bytes.split_at(NONCE_LEN);
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&self.key));
        let plain = cipher
            .decrypt(Nonce::from_slice(nonce), body)
            .map_err(|_| SealError::WrongKey)?;
        serde_json::from_slice(&plain).map_err(|e| SealError::Malformed(e.to_string()))
    }

    /// Opens a value if it is sealed; any other value is returned as it is.
    pub fn open(&self, value: &Value) -> Result<Value, SealError> {
        match value {
            Value::String(s) if s.starts_with(SEALED_PREFIX) => self.open_text(s),
            other => Ok(other.clone()),
        }
    }

    /// Opens an identity string if it is sealed.
    pub fn open_identity(&self, value: &str) -> Result<String, SealError> {
        if !value.starts_with(SEALED_PREFIX) {
            return Ok(value.to_owned());
        }
        match self.open_text(value)? {
            Value::String(s) => Ok(s),
            other => Ok(other.to_string()),
        }
    }
}

/// Whether a value is a sealed string.
pub fn is_sealed(value: &Value) -> bool {
    matches!(value, Value::String(s) if s.starts_with(SEALED_PREFIX))
}

/// The keyed index beside a sealed identity, if it has one.
pub fn sealed_index_tag(value: &str) -> Option<&str> {
    value
        .strip_prefix(SEALED_PREFIX)
        .and_then(|b| b.split_once('#'))
        .map(|(_, tag)| tag)
}

/// Opens a value when a key is given; without one, a sealed value is an error.
pub fn open_with(key: Option<&DataKey>, value: &Value) -> Result<Value, SealError> {
    match key {
        Some(k) => k.open(value),
        None if is_sealed(value) => Err(SealError::NoKey),
        None => Ok(value.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(b: u8) -> DataKey {
        DataKey::from_bytes([b; 32])
    }

    #[test]
    fn a_sealed_value_opens_with_its_key_only_and_hides_the_value() {
        let v = json!({"name": "Alice Example", "card": "4111111111111111"});
        let sealed = key(1).seal(&v);
        let text = sealed.to_string();
        assert!(!text.contains("Alice") && !text.contains("4111"), "{text}");
        assert_eq!(key(1).open(&sealed).unwrap(), v);
        assert_eq!(key(2).open(&sealed), Err(SealError::WrongKey));
        assert_eq!(open_with(None, &sealed), Err(SealError::NoKey));
    }

    #[test]
    fn an_identity_carries_a_keyed_index_equal_for_equal_values() {
        let k = key(3);
        let a = k.seal_identity("email", "alice@example.com");
        let b = k.seal_identity("email", "alice@example.com");
        assert_ne!(a, b, "random nonces");
        assert_eq!(sealed_index_tag(&a), sealed_index_tag(&b));
        assert_eq!(
            sealed_index_tag(&a),
            Some(k.index_tag("email", "alice@example.com").as_str())
        );
        assert_ne!(
            k.index_tag("email", "alice@example.com"),
            key(4).index_tag("email", "alice@example.com")
        );
        assert_eq!(k.open_identity(&a).unwrap(), "alice@example.com");
    }

    #[test]
    fn an_altered_sealed_value_is_refused() {
        let k = key(5);
        let sealed = k.seal_identity("email", "bob@example.com");
        let mut bytes = sealed.into_bytes();
        let i = SEALED_PREFIX.len() + 20;
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(bytes).unwrap();
        assert!(k.open_identity(&altered).is_err());
    }

    #[test]
    fn sealed_bytes_open_with_their_key_and_clear_bytes_pass() {
        let k = key(6);
        let sealed = k.seal_bytes(b"screenshot of carol@example.com");
        assert!(!sealed.windows(5).any(|w| w == b"carol"));
        assert_eq!(
            k.open_bytes(&sealed).unwrap(),
            b"screenshot of carol@example.com"
        );
        assert_eq!(key(7).open_bytes(&sealed), Err(SealError::WrongKey));
        assert_eq!(k.open_bytes(b"plain").unwrap(), b"plain");
    }

    #[test]
    fn keys_parse_from_hex_and_base64() {
        let hex_key = "11".repeat(32);
        assert_eq!(DataKey::parse(&hex_key).unwrap(), key(0x11));
        let b64 = base64::engine::general_purpose::STANDARD.encode([0x11u8; 32]);
        assert_eq!(DataKey::parse(&b64).unwrap(), key(0x11));
        assert_eq!(DataKey::parse("short"), Err(SealError::BadKey));
    }
}
