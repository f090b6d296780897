//! PostgreSQL NUMERIC in its binary wire form, rendered as an exact decimal string.

/// Renders a binary NUMERIC (`ndigits, weight, sign, dscale, digits[base 10000]`).
pub fn pg_numeric_to_string(buf: &[u8]) -> Result<String, String> {
    let word = |i: usize| -> Result<i16, String> {
        buf.get(i * 2..i * 2 + 2)
            .map(|b| i16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "truncated NUMERIC value".to_owned())
    };
    let ndigits = usize::try_from(word(0)?).map_err(|_| "bad NUMERIC digit count".to_owned())?;
    let weight = i32::from(word(1)?);
    let sign = word(2)? as u16;
    let dscale = usize::try_from(word(3)?).map_err(|_| "bad NUMERIC scale".to_owned())?;
    match sign {
        0xC000 => return Ok("NaN".into()),
        0xD000 => return Ok("Infinity".into()),
        0xF000 => return Ok("-Infinity".into()),
        _ => {}
    }
    let digits: Vec<i16> = (0..ndigits)
        .map(|i| word(4 + i))
        .collect::<Result<_, _>>()?;
    let mut out = String::new();
    if sign == 0x4000 {
        out.push('-');
    }
    // Integer part: groups 0..=weight.
    if weight < 0 {
        out.push('0');
    } else {
        for g in 0..=weight {
            let d = usize::try_from(g)
                .ok()
                .and_then(|g| digits.get(g))
                .copied()
                .unwrap_or(0);
            if g == 0 {
                out.push_str(&d.to_string());
            } else {
                out.push_str(&format!("{d:04}"));
            }
        }
    }
    if dscale > 0 {
        out.push('.');
        let mut frac = String::new();
        let mut g = weight + 1;
        while frac.len() < dscale {
            let d = if g < 0 {
                0
            } else {
                usize::try_from(g)
                    .ok()
                    .and_then(|g| digits.get(g))
                    .copied()
                    .unwrap_or(0)
            };
            frac.push_str(&format!("{d:04}"));
            g += 1;
        }
        frac.truncate(dscale);
        out.push_str(&frac);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(ndigits: i16, weight: i16, sign: u16, dscale: i16, digits: &[i16]) -> Vec<u8> {
        let mut v = Vec::new();
        for w in [ndigits, weight, sign as i16, dscale].iter().chain(digits) {
            v.extend_from_slice(&w.to_be_bytes());
        }
        v
    }

    #[test]
    fn renders_exact_decimals() {
        // 12345.678 = [1, 2345, 6780], weight 1, dscale 3
        assert_eq!(
            pg_numeric_to_string(&enc(3, 1, 0, 3, &[1, 2345, 6780])).unwrap(),
            "12345.678"
        );
        // -0.0012 = [12], weight -1, dscale 4
        assert_eq!(
            pg_numeric_to_string(&enc(1, -1, 0x4000, 4, &[12])).unwrap(),
            "-0.0012"
        );
        // 10000 = [1], weight 1, dscale 0
        assert_eq!(
            pg_numeric_to_string(&enc(1, 1, 0, 0, &[1])).unwrap(),
            "10000"
        );
        // 0.00 : ndigits 0, dscale 2
        assert_eq!(pg_numeric_to_string(&enc(0, 0, 0, 2, &[])).unwrap(), "0.00");
        assert!(pg_numeric_to_string(&[0, 1]).is_err());
    }
}
