//! Plain (unquoted) YAML scalars as the YAML 1.2 core schema reads them: null, booleans,
//! integers (decimal, 0o, 0x), floats; anything else is a string. `.inf` and `.nan` have no
//! JSON form and are refused.

use serde_json::{Number, Value};

/// A plain scalar as the YAML 1.2 core schema reads it.
pub(super) fn plain(text: &str) -> Result<Value, String> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Ok(Value::Null),
        "true" | "True" | "TRUE" => return Ok(Value::Bool(true)),
        "false" | "False" | "FALSE" => return Ok(Value::Bool(false)),
        _ => {}
    }
    let bare = text.trim_start_matches(['-', '+']);
    let lower = bare.to_ascii_lowercase();
    if lower == ".inf" || lower == ".nan" {
        return Err(format!(
            "{text} is not a JSON number; write null or a quoted string"
        ));
    }
    if let Some(n) = integer(text) {
        return Ok(Value::Number(n));
    }
    // Read as JSON reads it: a number is kept exactly or refused (`json::inexact`).
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(crate::contract::json::inexact(text, f64::NAN).unwrap_or_default());
    }
    if is_float(text) {
        if let Some(n) = text.parse::<f64>().ok().and_then(Number::from_f64) {
            if let Some(why) = crate::contract::json::inexact(text, n.as_f64().unwrap_or(0.0)) {
                return Err(why);
            }
            return Ok(Value::Number(n));
        }
    }
    Ok(Value::String(text.to_string()))
}

fn integer(text: &str) -> Option<Number> {
    let radix = |prefix: &str, radix: u32| {
        let digits = text.strip_prefix(prefix)?;
        u64::from_str_radix(digits, radix).ok().map(Number::from)
    };
    if let Some(n) = radix("0o", 8).or_else(|| radix("0x", 16)) {
        return Some(n);
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let signless = text.strip_prefix('+').unwrap_or(text);
    signless
        .parse::<i64>()
        .map(Number::from)
        .ok()
        .or_else(|| signless.parse::<u64>().ok().map(Number::from))
}

/// `[-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?`
fn is_float(text: &str) -> bool {
    let s = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", frac)) => digits(frac),
        Some((int, frac)) => digits(int) && (frac.is_empty() || digits(frac)),
        None => digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['-', '+']).unwrap_or(e)));
    mantissa_ok && exponent_ok
}
