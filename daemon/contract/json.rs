//! JSON text -> `serde_json::Value` under limits. Size is checked before parsing; nesting depth,
//! string length and duplicate keys while parsing, so a 1 GiB or 100,000-deep file is refused
//! after reading at most the limit, and a deep one after its 33rd bracket. `locate` maps a JSON
//! pointer back to line:column for problems found after parsing (schema, semantics).

use super::problem::{pointer_segments, push_pointer, Problem};
use jsonc_parser::ast;
use jsonc_parser::common::Ranged;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::cell::{Cell, RefCell};
use std::fmt;

/// Parse limits; SPEC section 3 gives the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_bytes: usize,
    pub max_depth: usize,
    pub max_string: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 1024 * 1024,
            max_depth: 32,
            max_string: 64 * 1024,
        }
    }
}

/// Parses `bytes` as one JSON document, or says what is wrong and where.
pub fn parse(bytes: &[u8], limits: &Limits) -> Result<Value, Problem> {
    if bytes.len() > limits.max_bytes {
        return Err(too_large(bytes.len() as u64, limits));
    }
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        return Err(Problem::new(
            "",
            "file starts with a UTF-8 byte order mark (BOM); write plain UTF-8 JSON without one",
        )
        .at(1, 1));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let (line, column) = line_col(&String::from_utf8_lossy(bytes), e.valid_up_to());
        Problem::new(
            "",
            format!(
                "not valid UTF-8 at byte {}; contract files must be UTF-8",
                e.valid_up_to()
            ),
        )
        .at(line, column)
    })?;
    if text.trim().is_empty() {
        return Err(Problem::new("", "file is empty; write one JSON object").at(1, 1));
    }
    let ctx = Ctx {
        limits,
        problem: RefCell::new(None),
        numbers: Cell::new(0),
        floats: RefCell::new(Vec::new()),
    };
    let mut de = serde_json::Deserializer::from_str(text);
    let root = Node {
        ctx: &ctx,
        depth: 0,
        pointer: String::new(),
    };
    let result = root.deserialize(&mut de).and_then(|v| de.end().map(|_| v));
    let floats = ctx.floats.take();
    if let (Ok(_), false) = (&result, floats.is_empty()) {
        inexact_in(text, &floats)?;
    }
    result.map_err(|e| {
        // serde_json counts the column in bytes up to and including the offending one; report
        // it in characters like every other position, and look at that byte for a hint.
        let line_start = line_start(text, e.line());
        let end = (line_start + e.column()).min(text.len());
        let column = String::from_utf8_lossy(&text.as_bytes()[line_start..end])
            .chars()
            .count();
        let at = line_start + e.column().saturating_sub(1);
        let (pointer, message) = ctx.problem.take().unwrap_or_else(|| {
            (
                String::new(),
                syntax_message(&e, text.get(at..).unwrap_or_default()),
            )
        });
        Problem::new(pointer, message).at(e.line(), column.max(1))
    })
}

/// Byte offset where 1-based `line` starts.
fn line_start(text: &str, line: usize) -> usize {
    text.split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum()
}

/// The problem for a file over the size limit (also used before reading, from its metadata).
pub fn too_large(size: u64, limits: &Limits) -> Problem {
    Problem::new(
        "",
        format!(
            "file is {size} bytes, over the limit of {} bytes; move bulky content into inbox/ artifacts",
            limits.max_bytes
        ),
    )
}

/// serde_json's words, plus what the text at the error (`rest`) usually means: its own
/// messages for JSON5-isms ("key must be a string" for a comment) mislead.
fn syntax_message(e: &serde_json::Error, rest: &str) -> String {
    let raw = e.to_string();
    let bare = raw.split(" at line ").next().unwrap_or(&raw).to_string();
    if e.classify() == serde_json::error::Category::Eof {
        return format!(
            "{bare}: the JSON is truncated (write the file whole, e.g. temp file + rename)"
        );
    }
    let hint = if rest.starts_with("//") || rest.starts_with("/*") {
        "; JSON has no comments"
    } else if rest.starts_with("NaN") || rest.starts_with("Infinity") {
        "; NaN and Infinity are not JSON numbers, write null or a string"
    } else if rest.starts_with('\'') {
        "; JSON strings and keys take double quotes, not single quotes"
    } else {
        ""
    };
    format!("invalid JSON: {bare}{hint}")
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (line, column)
}

/// Where the value at `pointer` starts in `text`, or the nearest existing ancestor when the
/// pointer names something absent (a missing required field points at its object).
pub fn locate(text: &str, pointer: &str) -> Option<(usize, usize)> {
    locate_all(text, &[pointer]).pop().flatten()
}

/// `locate` for many pointers with one parse: a file may have many problems, and parsing it
/// again for each one costs its size every time.
pub fn locate_all(text: &str, pointers: &[&str]) -> Vec<Option<(usize, usize)>> {
    let options = jsonc_parser::ParseOptions {
        allow_comments: false,
        allow_loose_object_property_names: false,
        allow_trailing_commas: false,
    };
    let parsed = jsonc_parser::parse_to_ast(text, &Default::default(), &options).ok();
    let Some(root) = parsed.as_ref().and_then(|p| p.value.as_ref()) else {
        return vec![None; pointers.len()];
    };
    let offsets: Vec<usize> = pointers.iter().map(|p| find(root, p).start()).collect();
    line_cols(text, &offsets).into_iter().map(Some).collect()
}

/// `line_col` of many offsets in one pass over `text` (a 1 MiB one-line file would otherwise
/// be counted through once per offset).
fn line_cols(text: &str, offsets: &[usize]) -> Vec<(usize, usize)> {
    let mut order: Vec<usize> = (0..offsets.len()).collect();
    order.sort_by_key(|&i| offsets[i]);
    let mut out = vec![(1, 1); offsets.len()];
    let (mut line, mut column) = (1, 1);
    let mut chars = text.char_indices().peekable();
    for i in order {
        while let Some((_, c)) = chars.next_if(|(at, _)| *at < offsets[i]) {
            if c == '\n' {
                (line, column) = (line + 1, 1);
            } else {
                column += 1;
            }
        }
        out[i] = (line, column);
    }
    out
}

/// The node at `pointer`, or its nearest existing ancestor.
fn find<'a>(root: &'a ast::Value<'a>, pointer: &str) -> &'a ast::Value<'a> {
    let mut node = root;
    for segment in pointer_segments(pointer) {
        let child = match node {
            ast::Value::Object(o) => o
                .properties
                .iter()
                .find(|p| p.name.as_str() == segment)
                .map(|p| &p.value),
            ast::Value::Array(a) => segment
                .parse::<usize>()
                .ok()
                .and_then(|i| a.elements.get(i)),
            _ => None,
        };
        match child {
            Some(c) => node = c,
            None => break,
        }
    }
    node
}

struct Ctx<'l> {
    limits: &'l Limits,
    /// The precise problem (pointer, message) behind a custom serde error; serde_json adds the
    /// line and column itself.
    problem: RefCell<Option<(String, String)>>,
    /// Numbers read so far, and of those, the ones read as f64 (ordinal, pointer, value): the
    /// ones whose text may say more than the value kept (`inexact_in`).
    numbers: Cell<usize>,
    floats: RefCell<Vec<(usize, String, f64)>>,
}

struct Node<'c> {
    ctx: &'c Ctx<'c>,
    depth: usize,
    pointer: String,
}

impl Node<'_> {
    fn fail<E: de::Error>(&self, pointer: &str, message: String) -> E {
        let error = E::custom(&message);
        *self.ctx.problem.borrow_mut() = Some((pointer.to_string(), message));
        error
    }

    fn child(&self, segment: &str) -> Self {
        Node {
            ctx: self.ctx,
            depth: self.depth + 1,
            pointer: push_pointer(&self.pointer, segment),
        }
    }

    fn enter<E: de::Error>(&self) -> Result<(), E> {
        let max = self.ctx.limits.max_depth;
        if self.depth + 1 > max {
            return Err(self.fail(
                &self.pointer,
                format!("nesting deeper than {max} levels; flatten the structure"),
            ));
        }
        Ok(())
    }

    fn check_len<E: de::Error>(&self, pointer: &str, s: &str, what: &str) -> Result<(), E> {
        let max = self.ctx.limits.max_string;
        if s.len() > max {
            return Err(self.fail(
                pointer,
                format!(
                    "{what} is {} bytes, over the limit of {max} bytes; put long text in an inbox/ artifact",
                    s.len()
                ),
            ));
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        self.ctx.numbers.set(self.ctx.numbers.get() + 1);
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        self.ctx.numbers.set(self.ctx.numbers.get() + 1);
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        let ordinal = self.ctx.numbers.get();
        self.ctx.numbers.set(ordinal + 1);
        (self.ctx.floats.borrow_mut()).push((ordinal, self.pointer.clone(), v));
        Ok(Value::from(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.check_len(&self.pointer, v, "string")?;
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.check_len(&self.pointer, &v, "string")?;
        Ok(Value::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.enter()?;
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(self.child(&items.len().to_string()))? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.enter()?;
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let max = self.ctx.limits.max_string;
            if key.len() > max {
                // Point at the object: a pointer naming the key would echo all of it.
                let start: String = key.chars().take(40).collect();
                let message = format!(
                    "key \"{start}…\" is {} bytes, over the limit of {max} bytes; use short keys",
                    key.len()
                );
                return Err(self.fail(&self.pointer, message));
            }
            let pointer = push_pointer(&self.pointer, &key);
            if object.contains_key(&key) {
                return Err(self.fail(
                    &pointer,
                    format!("duplicate key \"{key}\"; each key may appear once"),
                ));
            }
            let value = map.next_value_seed(self.child(&key))?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// Canonical JSON: object keys sorted, no insignificant whitespace. Sorting is explicit so the
/// idempotency key does not depend on serde_json's `preserve_order` feature.
pub fn canonical(value: &Value) -> Vec<u8> {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                Value::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), sorted(&m[k])))
                        .collect(),
                )
            }
            Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_vec(&sorted(value)).expect("a Value always serializes")
}

/// The first number of `text` kept as less than it says: `floats` are the numbers read as f64
/// (by their ordinal among all numbers, in text order, with their pointer). A number is kept
/// as the JSON it canonicalizes to, so two that differ past what an f64 holds (integers of
/// 2^64 and more, or 20 significant digits) would give two files one digest, and a
/// decision pinned to one would answer the other.
fn inexact_in(text: &str, floats: &[(usize, String, f64)]) -> Result<(), Problem> {
    let mut wanted = floats.iter().peekable();
    for (ordinal, (offset, token)) in number_tokens(text).enumerate() {
        let Some((_, pointer, value)) = wanted.next_if(|(o, _, _)| *o == ordinal) else {
            continue;
        };
        if let Some(message) = inexact(token, *value) {
            let (line, column) = line_col(text, offset);
            return Err(Problem::new(pointer.clone(), message).at(line, column));
        }
        if wanted.peek().is_none() {
            break;
        }
    }
    Ok(())
}

/// The numbers of JSON `text` (already parsed whole), in order, with their byte offsets.
fn number_tokens(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let bytes = text.as_bytes();
    let mut at = 0;
    std::iter::from_fn(move || {
        while at < bytes.len() {
            match bytes[at] {
                b'"' => {
                    at += 1;
                    while at < bytes.len() && bytes[at] != b'"' {
                        at += if bytes[at] == b'\\' { 2 } else { 1 };
                    }
                    at += 1;
                }
                b'-' | b'0'..=b'9' => {
                    let start = at;
                    while at < bytes.len()
                        && matches!(bytes[at], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                    {
                        at += 1;
                    }
                    return Some((start, &text[start..at]));
                }
                _ => at += 1,
            }
        }
        None
    })
}

/// Why the number written `token`, which was not read as a 64-bit integer, is not kept
/// exactly as `value`, if it is not: an integer out of the 64-bit range (even one an f64
/// holds, since it is then kept as `1e20`, which other readers write as an integer), or a
/// decimal other than the one `value` is written as again.
pub fn inexact(token: &str, value: f64) -> Option<String> {
    let written = decimal(token);
    if !token.contains(['.', 'e', 'E']) {
        // "-0" is read as a float too, and kept as what it says.
        if written.is_some_and(|(_, digits, _)| digits.is_empty()) {
            return None;
        }
        return Some(format!(
            "integer {token} is outside the range baton keeps exactly (-2^63 to 2^64-1): write \
             it as a string"
        ));
    }
    let kept = serde_json::to_string(&value).ok()?;
    if written.is_some() && written == decimal(&kept) {
        return None;
    }
    Some(format!(
        "number {token} has more precision than a 64-bit float keeps (it would be read as \
         {kept}): write at most 17 significant digits, or a string"
    ))
}

/// The exact value of a decimal number `[-+]digits[.digits][e[-+]digits]` as (negative,
/// significant digits without leading or trailing zeros, power of ten of the last one).
fn decimal(text: &str) -> Option<(bool, String, i64)> {
    let negative = text.starts_with('-');
    let text = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], text[i + 1..].parse::<i64>().ok()?),
        None => (text, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{int}{frac}");
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let significant = digits.trim_start_matches('0');
    let trimmed = significant.trim_end_matches('0');
    let zeros = (significant.len() - trimmed.len()) as i64;
    let power = exponent
        .checked_sub(frac.len() as i64)?
        .checked_add(zeros)?;
    match trimmed.is_empty() {
        true => Some((negative, String::new(), 0)),
        false => Some((negative, trimmed.to_string(), power)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Value, Problem> {
        parse(text.as_bytes(), &Limits::default())
    }

    #[test]
    fn numbers_are_kept_exactly_or_refused_where_they_are() {
        for kept in [
            "0.5",
            "0.1",
            "1e20",
            "1.5e-7",
            "-0",
            "-0.0",
            "100.0",
            "0.30000000000000004",
            "18446744073709551615",
            "-9223372036854775808",
            "1E+2",
            "2.50",
        ] {
            assert!(read(&format!("{{\"a\": [1, {kept}]}}")).is_ok(), "{kept}");
        }
        for (refused, word) in [
            ("100000000000000000000", "integer"),
            ("18446744073709551616", "integer"),
            ("-9223372036854775809", "integer"),
            ("100000000000000008191", "integer"),
            ("0.1000000000000000000001", "precision"),
            ("3.14159265358979323846", "precision"),
        ] {
            let text = format!("{{\"s\": \"1.0 \\\" 2\", \"a\": [1, 0.5,\n  {refused}]}}");
            let p = read(&text).expect_err(refused);
            assert_eq!(p.pointer, "/a/2", "{refused}");
            assert!(p.message.contains(word), "{refused}: {}", p.message);
            assert_eq!((p.line, p.column), (Some(2), Some(3)), "{refused}");
        }
    }
}
