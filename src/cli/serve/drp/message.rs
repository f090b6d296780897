//! Signed DRP messages (section 3.07): base64 of an Ed25519 signature followed by the JSON
//! it signs ("combined mode"), checked in the order the protocol prescribes: decoding, the
//! signature under the agent's key, the agent and business claims, then `issued-at` and
//! `expires-at` against the clock.

use base64::Engine as _;
use chrono::{DateTime, NaiveDateTime, Utc};
use ed25519_dalek::{Signature, VerifyingKey};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::error::DrpError;

/// How far ahead of this server's clock an agent's `issued-at` may be: clocks are never
/// exactly equal, and the protocol's skew check is about clocks running minutes fast.
pub const CLOCK_SKEW: chrono::TimeDelta = chrono::TimeDelta::seconds(30);

/// The largest signed message read.
pub const MESSAGE_LIMIT: usize = 256 * 1024;

/// A message whose signature verified.
#[derive(Debug)]
pub struct Signed {
    /// The JSON object signed.
    pub claims: Map<String, Value>,
    /// SHA-256 of the signature, hex: names this one message.
    pub digest: String,
}

/// Decodes `body` and checks its signature under `key`.
pub fn open(body: &[u8], key: &VerifyingKey) -> Result<Signed, DrpError> {
    if body.len() > MESSAGE_LIMIT {
        return Err(DrpError::bad(format!(
            "the message is larger than {MESSAGE_LIMIT} bytes"
        )));
    }
    let text: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let raw = base64::engine::general_purpose::STANDARD
        .decode(&text)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(&text))
        .map_err(|_| {
            DrpError::bad(
                "the body is not base64: send the Ed25519 signature followed by the JSON \
                 message, base64-encoded, as text/plain",
            )
        })?;
    if raw.len() <= Signature::BYTE_SIZE {
        return Err(DrpError::bad(
            "the decoded body is too short to hold a 64-byte Ed25519 signature and a message",
        ));
    }
    let (sig, message) = raw.split_at(Signature::BYTE_SIZE);
    let signature = Signature::from_slice(sig)
        .map_err(|_| DrpError::forbidden("the message's signature is not an Ed25519 signature"))?;
    key.verify_strict(message, &signature).map_err(|_| {
        DrpError::forbidden(
            "the message's signature does not verify under the agent's key: it was altered \
             after signing, or signed with another key",
        )
    })?;
    let value: Value = serde_json::from_slice(message)
        .map_err(|e| DrpError::bad(format!("the signed message is not JSON: {e}")))?;
    let Value::Object(claims) = value else {
        return Err(DrpError::bad("the signed message is not a JSON object"));
    };
    Ok(Signed {
        claims,
        digest: hex::encode(Sha256::digest(sig)),
    })
}

impl Signed {
    /// A string claim, when present.
    pub fn text(&self, name: &str) -> Result<Option<&str>, DrpError> {
        match self.claims.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(DrpError::bad(format!("`{name}` must be a string"))),
        }
    }

    /// A string claim the message must carry.
    pub fn required(&self, name: &str) -> Result<&str, DrpError> {
        self.text(name)?
            .ok_or_else(|| DrpError::bad(format!("the signed message has no `{name}`")))
    }

    /// The checks of section 3.07 after the signature: the message names `agent` and
    /// `business`, was issued before `now` (within [`CLOCK_SKEW`]) and has not expired.
    pub fn check_envelope(
        &self,
        agent: &str,
        business: &str,
        now: DateTime<Utc>,
    ) -> Result<(), DrpError> {
        let claimed = self.required("agent-id")?;
        if claimed != agent {
            return Err(DrpError::forbidden(format!(
                "the message is signed for agent `{claimed}`, not `{agent}`, whose key verified it"
            )));
        }
        let addressed = self.required("business-id")?;
        if addressed != business {
            return Err(DrpError::forbidden(format!(
                "the message is addressed to business `{addressed}`; this is `{business}`"
            )));
        }
        let issued = timestamp(self.required("issued-at")?, "issued-at")?;
        let expires = timestamp(self.required("expires-at")?, "expires-at")?;
        if issued > now + CLOCK_SKEW {
            return Err(DrpError::bad(format!(
                "`issued-at` ({}) is in the future by this server's clock ({}); check the agent's clock",
                issued.to_rfc3339(),
                now.to_rfc3339()
            )));
        }
        if now >= expires {
            return Err(DrpError::bad(format!(
                "the message expired at {} (now {}); sign a new one",
                expires.to_rfc3339(),
                now.to_rfc3339()
            )));
        }
        Ok(())
    }
}

/// An ISO 8601 timestamp: RFC 3339 (`2026-12-01T10:00:00Z`, any offset), the basic format
/// (`20261201T100000.403-0700`), or a local time without an offset, taken as UTC.
pub fn timestamp(text: &str, name: &str) -> Result<DateTime<Utc>, DrpError> {
    let t = text.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Ok(d.with_timezone(&Utc));
    }
    for f in [
        "%Y%m%dT%H%M%S%.f%z",
        "%Y%m%dT%H%M%S%z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
    ] {
        if let Ok(d) = DateTime::parse_from_str(t, f) {
            return Ok(d.with_timezone(&Utc));
        }
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y%m%dT%H%M%S%.f"] {
        if let Ok(d) = NaiveDateTime::parse_from_str(t, f) {
            return Ok(d.and_utc());
        }
    }
    Err(DrpError::bad(format!(
        "`{name}` is not an ISO 8601 timestamp: `{text}` (e.g. 2026-12-01T10:00:00Z)"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32])
    }

    fn sign(key: &SigningKey, json: &str) -> String {
        let mut raw = key.sign(json.as_bytes()).to_bytes().to_vec();
        raw.extend_from_slice(json.as_bytes());
        base64::engine::general_purpose::STANDARD.encode(raw)
    }

    fn envelope(issued: &str, expires: &str) -> String {
        format!(
            r#"{{"agent-id":"AA","business-id":"CB","issued-at":"{issued}","expires-at":"{expires}"}}"#
        )
    }

    fn now() -> DateTime<Utc> {
        "2026-12-01T10:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_signed_message_opens_and_its_envelope_checks() {
        let k = key();
        let body = sign(
            &k,
            &envelope("2026-12-01T09:59:00Z", "2026-12-01T10:14:00Z"),
        );
        let m = open(body.as_bytes(), &k.verifying_key()).unwrap();
        m.check_envelope("AA", "CB", now()).unwrap();
        assert_eq!(m.digest.len(), 64);
    }

    #[test]
    fn an_altered_message_or_another_key_is_forbidden() {
        let k = key();
        let mut raw = base64::engine::general_purpose::STANDARD
            .decode(sign(
                &k,
                &envelope("2026-12-01T09:59:00Z", "2026-12-01T10:14:00Z"),
            ))
            .unwrap();
        let last = raw.len() - 2;
        raw[last] ^= 1;
        let altered = base64::engine::general_purpose::STANDARD.encode(raw);
        let e = open(altered.as_bytes(), &k.verifying_key()).unwrap_err();
        assert_eq!(e.status, 403, "{}", e.message);
        let other = SigningKey::from_bytes(&[8u8; 32]);
        let body = sign(&other, "{}");
        assert_eq!(
            open(body.as_bytes(), &k.verifying_key())
                .unwrap_err()
                .status,
            403
        );
    }

    #[test]
    fn expiry_issue_time_agent_and_business_are_checked() {
        let k = key();
        let check = |json: &str, agent: &str, business: &str| {
            let body = sign(&k, json);
            open(body.as_bytes(), &k.verifying_key())
                .unwrap()
                .check_envelope(agent, business, now())
                .unwrap_err()
        };
        let expired = check(
            &envelope("2026-12-01T09:40:00Z", "2026-12-01T09:55:00Z"),
            "AA",
            "CB",
        );
        assert_eq!(expired.status, 400);
        assert!(expired.fatal && expired.message.contains("expired"));
        let future = check(
            &envelope("2026-12-01T10:05:00Z", "2026-12-01T10:20:00Z"),
            "AA",
            "CB",
        );
        assert!(future.message.contains("future"), "{}", future.message);
        let ok = envelope("2026-12-01T09:59:00Z", "2026-12-01T10:14:00Z");
        assert_eq!(check(&ok, "BB", "CB").status, 403);
        assert_eq!(check(&ok, "AA", "OTHER").status, 403);
    }

    #[test]
    fn garbage_is_a_bad_request() {
        let k = key();
        for body in ["not base64!", "c2hvcnQ="] {
            assert_eq!(
                open(body.as_bytes(), &k.verifying_key())
                    .unwrap_err()
                    .status,
                400
            );
        }
        let not_json = sign(&k, "not json");
        assert_eq!(
            open(not_json.as_bytes(), &k.verifying_key())
                .unwrap_err()
                .status,
            400
        );
    }

    #[test]
    fn timestamps_of_the_specs_examples_parse() {
        for t in [
            "2026-12-01T10:00:00Z",
            "2026-12-01T03:00:00-07:00",
            "20261201T030000.000-0700",
            "2026-12-01T10:00:00.000000",
        ] {
            assert_eq!(timestamp(t, "t").unwrap(), now(), "{t}");
        }
        assert!(timestamp("yesterday", "t").is_err());
    }
}
