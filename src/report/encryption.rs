//! Optional encryption of a zipped export package with AES-256-GCM.
//!
//! Format of an encrypted package: the 12-byte random nonce, followed by the AES-256-GCM
//! ciphertext of the whole zip file with its 16-byte authentication tag appended
//! (`nonce || ciphertext || tag`), no associated data. To decrypt with OpenSSL-style tools:
//! split off the first 12 bytes as the IV and the last 16 bytes as the tag. The key is 32
//! bytes, given as 64 hex digits or standard base64.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;

use super::package::PackageError;

/// Length of the nonce that starts an encrypted package.
pub const NONCE_LEN: usize = 12;

/// A 256-bit package key.
#[derive(Clone, PartialEq, Eq)]
pub struct PackageKey([u8; 32]);

impl std::fmt::Debug for PackageKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PackageKey(..)")
    }
}

impl PackageKey {
    /// A key from raw bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        PackageKey(bytes)
    }

    /// Parses a key given as 64 hex digits or base64 of 32 bytes (surrounding whitespace
    /// ignored).
    pub fn parse(text: &str) -> Result<Self, PackageError> {
        let text = text.trim();
        let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(text).map_err(|_| PackageError::BadKey)?
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|_| PackageError::BadKey)?
        };
        let arr: [u8; 32] = bytes.try_into().map_err(|_| PackageError::BadKey)?;
        Ok(PackageKey(arr))
    }

    /// Encrypts bytes: `nonce || ciphertext || tag`.
    pub fn encrypt(&self, plain: &[u8]) -> Result<Vec<u8>, PackageError> {
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&self.0));
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let sealed = cipher
            .encrypt(&nonce, plain)
            .map_err(|_| PackageError::Crypto("encryption failed".into()))?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Decrypts `nonce || ciphertext || tag`; fails on a wrong key or altered bytes.
    pub fn decrypt(&self, sealed: &[u8]) -> Result<Vec<u8>, PackageError> {
        if sealed.len() < NONCE_LEN + 16 {
            return Err(PackageError::Crypto(
                "the file is too short to be an encrypted package".into(),
            ));
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&self.0));
        cipher
            .decrypt(Nonce::from_slice(nonce), body)
            .map_err(|_| PackageError::Crypto("wrong key, or the package was altered".into()))
    }
}
