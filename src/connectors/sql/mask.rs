//! Masking strategies computed in Rust from a row's old value.

use rand::distr::{Alphanumeric, SampleString};
use serde_json::Value;

use crate::journal::{hmac_sha256_hex, sha256_hex};
use crate::model::{MaskStrategy, SetValue};

/// Length of a `random` mask.
pub const RANDOM_LEN: usize = 16;

/// A `set` entry that needs no old value can become one `UPDATE ... WHERE <predicate>`.
pub fn is_per_row(v: &SetValue) -> bool {
    matches!(
        v,
        SetValue::Mask {
            mask: MaskStrategy::Random | MaskStrategy::Hash | MaskStrategy::Hmac,
            ..
        }
    )
}

/// Whether the new value depends on the old one.
pub fn needs_old_value(v: &SetValue) -> bool {
    matches!(
        v,
        SetValue::Mask {
            mask: MaskStrategy::Hash | MaskStrategy::Hmac,
            ..
        }
    )
}

/// The value a `set` entry writes when it needs no row: literals, `null`, `fixed`.
pub fn constant(v: &SetValue) -> Option<Value> {
    match v {
        SetValue::Value(v) => Some(v.clone()),
        SetValue::Mask {
            mask: MaskStrategy::Null,
            ..
        } => Some(Value::Null),
        SetValue::Mask {
            mask: MaskStrategy::Fixed,
            value,
            ..
        } => Some(value.clone().map_or(Value::Null, Value::String)),
        SetValue::Mask { .. } => None,
    }
}

/// The longest text a mask writes, when it writes text (`None`: a constant or NULL).
pub fn written_len(v: &SetValue) -> Option<usize> {
    let SetValue::Mask { mask, length, .. } = v else {
        return None;
    };
    let full = match mask {
        MaskStrategy::Random => RANDOM_LEN,
        MaskStrategy::Hash | MaskStrategy::Hmac => 64,
        MaskStrategy::Null | MaskStrategy::Fixed => return None,
    };
    Some(length.map_or(full, |n| full.min(n as usize)))
}

/// How the new value appears in a preview: constants as themselves, the rest as a marker.
pub fn preview(v: &SetValue) -> Value {
    constant(v).unwrap_or_else(|| match v {
        SetValue::Mask { mask, .. } => Value::String(
            match mask {
                MaskStrategy::Random => "<random>",
                MaskStrategy::Hash => "<hash>",
                _ => "<hmac>",
            }
            .to_owned(),
        ),
        SetValue::Value(v) => v.clone(),
    })
}

/// The new value for one row. NULL stays NULL under `hash`/`hmac` (nothing to mask).
pub fn apply(v: &SetValue, old: &Value, key: Option<&[u8]>) -> Result<Value, String> {
    if let Some(c) = constant(v) {
        return Ok(c);
    }
    let SetValue::Mask { mask, length, .. } = v else {
        return Ok(Value::Null);
    };
    let cut = |mut s: String| {
        if let Some(n) = length {
            s.truncate(*n as usize);
        }
        Value::String(s)
    };
    let text = match old {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    };
    Ok(match mask {
        MaskStrategy::Random => cut(Alphanumeric.sample_string(&mut rand::rng(), RANDOM_LEN)),
        MaskStrategy::Hash => text.map_or(Value::Null, |t| cut(sha256_hex(t.as_bytes()))),
        MaskStrategy::Hmac => {
            let key = key.ok_or("the `hmac` mask needs the connector's `hmac_key`")?;
            text.map_or(Value::Null, |t| cut(hmac_sha256_hex(key, t.as_bytes())))
        }
        MaskStrategy::Null | MaskStrategy::Fixed => Value::Null,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_apply_per_row() {
        let hash = SetValue::Mask {
            mask: MaskStrategy::Hash,
            value: None,
            length: None,
        };
        assert_eq!(
            apply(&hash, &Value::from("abc"), None).unwrap(),
            Value::from("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        assert_eq!(apply(&hash, &Value::Null, None).unwrap(), Value::Null);
        let hmac = SetValue::Mask {
            mask: MaskStrategy::Hmac,
            value: None,
            length: None,
        };
        assert!(apply(&hmac, &Value::from("a"), None).is_err());
        let random = SetValue::Mask {
            mask: MaskStrategy::Random,
            value: None,
            length: Some(8),
        };
        let a = apply(&random, &Value::Null, None).unwrap();
        assert_ne!(a, apply(&random, &Value::Null, None).unwrap());
        assert_eq!(a.as_str().map(str::len), Some(8), "cut to `length`");
    }
}
