//! YAML text -> `serde_json::Value` under the JSON limits, for `handoff.yaml` / `.yml`. Read
//! from saphyr-parser's events, so every rule is ours: one document, no tags, no duplicate
//! keys, keys that are scalars, the core schema's plain scalars (null, booleans, numbers),
//! size before parsing, nesting depth and string length while parsing, and aliases priced at
//! what they expand to (a "billion laughs" file is refused after at most `max_bytes` of
//! expansion). Every node's position is kept by JSON pointer, so problems found later (schema,
//! semantics) point at the YAML line:column.

use super::json::{self, Limits};
use super::problem::{pointer_segments, push_pointer, Problem};
use saphyr_parser::{Event, Marker, Parser, ScalarStyle, Span};
use serde_json::{Map, Number, Value};
use std::collections::{HashMap, HashSet};

/// Where each node of a YAML document starts (1-based line and column), by JSON pointer.
#[derive(Debug, Default, Clone)]
pub struct Places {
    at: HashMap<String, (usize, usize)>,
    /// Plain scalars the core schema read as something other than a string (`1.0`, `yes`...).
    unquoted: HashSet<String>,
}

impl Places {
    /// Where the node at `pointer` starts, or its nearest ancestor that exists.
    pub fn locate(&self, pointer: &str) -> Option<(usize, usize)> {
        let mut segments = pointer_segments(pointer);
        loop {
            let p = segments
                .iter()
                .fold(String::new(), |p, s| push_pointer(&p, s));
            if let Some(place) = self.at.get(&p) {
                return Some(*place);
            }
            segments.pop()?;
        }
    }

    /// A hint for a problem at `pointer` that wants a string where YAML read a plain scalar
    /// as a number, boolean or null.
    pub fn hint(&self, pointer: &str, message: &str) -> Option<&'static str> {
        (self.unquoted.contains(pointer) && message.contains("string"))
            .then_some("; YAML read the unquoted value as a number, boolean or null: quote it (\"1.0\") to make it a string")
    }
}

/// A finished node: its value, and what repeating it through an alias costs.
#[derive(Clone)]
struct Anchored {
    value: Value,
    cost: usize,
    depth: usize,
}

enum Frame {
    Seq {
        items: Vec<Value>,
        pointer: String,
        anchor: usize,
    },
    Map {
        map: Map<String, Value>,
        pointer: String,
        anchor: usize,
        key: Option<String>,
        seen: HashMap<String, (usize, usize)>,
    },
}

struct Reader<'l> {
    limits: &'l Limits,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Anchored>,
    places: Places,
    expanded: usize,
    documents: usize,
    root: Option<Value>,
}

/// Parses `bytes` as one YAML document, or says what is wrong and where.
pub fn parse(bytes: &[u8], limits: &Limits) -> Result<(Value, Places), Problem> {
    if bytes.len() > limits.max_bytes {
        return Err(json::too_large(bytes.len() as u64, limits));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let (line, column) = json::line_col(&String::from_utf8_lossy(bytes), e.valid_up_to());
        let message = format!(
            "not valid UTF-8 at byte {}; contract files must be UTF-8",
            e.valid_up_to()
        );
        Problem::new("", message).at(line, column)
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = Reader {
        limits,
        stack: Vec::new(),
        anchors: HashMap::new(),
        places: Places::default(),
        expanded: 0,
        documents: 0,
        root: None,
    };
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| {
            let m = e.marker();
            Problem::new("", format!("invalid YAML: {}", e.info())).at(m.line(), m.col() + 1)
        })?;
        reader.event(event, span)?;
    }
    match reader.root {
        Some(root) => Ok((root, reader.places)),
        None => Err(Problem::new("", "file is empty; write one YAML mapping").at(1, 1)),
    }
}

fn place(m: &Marker) -> (usize, usize) {
    (m.line(), m.col() + 1)
}

fn refuse(at: (usize, usize), pointer: &str, message: impl Into<String>) -> Problem {
    Problem::new(pointer, message).at(at.0, at.1)
}

const TAGS: &str =
    "YAML tags (!!str, !custom, ...) are not accepted: write plain values, quoted where needed";

impl Reader<'_> {
    fn event(&mut self, event: Event<'_>, span: Span) -> Result<(), Problem> {
        let at = place(&span.start);
        match event {
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(refuse(
                        at,
                        "",
                        "more than one YAML document (a second `---`); write one document",
                    ));
                }
            }
            Event::Scalar(_, _, _, Some(_))
            | Event::SequenceStart(_, Some(_))
            | Event::MappingStart(_, Some(_)) => return Err(refuse(at, &self.child()?, TAGS)),
            Event::Scalar(text, style, anchor, None) => self.scalar(&text, style, anchor, at)?,
            Event::Alias(id) => self.alias(id, at)?,
            Event::SequenceStart(anchor, None) => {
                let pointer = self.open(at)?;
                self.stack.push(Frame::Seq {
                    items: Vec::new(),
                    pointer,
                    anchor,
                });
            }
            Event::MappingStart(anchor, None) => {
                let pointer = self.open(at)?;
                self.stack.push(Frame::Map {
                    map: Map::new(),
                    pointer,
                    anchor,
                    key: None,
                    seen: HashMap::new(),
                });
            }
            Event::SequenceEnd | Event::MappingEnd => self.close()?,
            _ => {}
        }
        Ok(())
    }

    /// The pointer of the next node, when it is a value (a mapping key is not a node).
    fn child(&self) -> Result<String, Problem> {
        Ok(match self.stack.last() {
            None => String::new(),
            Some(Frame::Seq { items, pointer, .. }) => {
                push_pointer(pointer, &items.len().to_string())
            }
            Some(Frame::Map {
                key: Some(k),
                pointer,
                ..
            }) => push_pointer(pointer, k),
            Some(Frame::Map { pointer, .. }) => pointer.clone(),
        })
    }

    fn expects_key(&self) -> bool {
        matches!(self.stack.last(), Some(Frame::Map { key: None, .. }))
    }

    /// A sequence or mapping starts: checks its place and depth, returns its pointer.
    fn open(&mut self, at: (usize, usize)) -> Result<String, Problem> {
        let pointer = self.child()?;
        if self.expects_key() {
            return Err(refuse(
                at,
                &pointer,
                "a mapping key must be a plain string, not a list or mapping",
            ));
        }
        if self.stack.len() + 1 > self.limits.max_depth {
            let message = format!("nesting is deeper than {} levels", self.limits.max_depth);
            return Err(refuse(at, &pointer, message));
        }
        self.places.at.insert(pointer.clone(), at);
        Ok(pointer)
    }

    fn scalar(
        &mut self,
        text: &str,
        style: ScalarStyle,
        anchor: usize,
        at: (usize, usize),
    ) -> Result<(), Problem> {
        let pointer = self.child()?;
        if text.len() > self.limits.max_string {
            let message = format!(
                "string is {} bytes, over the limit of {} bytes; move long text into an inbox/ artifact",
                text.len(),
                self.limits.max_string
            );
            return Err(refuse(at, &pointer, message));
        }
        if self.expects_key() {
            if anchor != 0 {
                return Err(refuse(
                    at,
                    &pointer,
                    "anchors on mapping keys are not accepted",
                ));
            }
            return self.key(text, at);
        }
        let value = match style {
            ScalarStyle::Plain => plain(text).map_err(|m| refuse(at, &pointer, m))?,
            _ => Value::String(text.to_string()),
        };
        if style == ScalarStyle::Plain && !value.is_string() {
            self.places.unquoted.insert(pointer.clone());
        }
        self.places.at.insert(pointer, at);
        self.finish(value, anchor, 0)
    }

    fn key(&mut self, text: &str, at: (usize, usize)) -> Result<(), Problem> {
        let Some(Frame::Map {
            key, seen, pointer, ..
        }) = self.stack.last_mut()
        else {
            unreachable!("expects_key checked the frame");
        };
        if let Some((line, column)) = seen.get(text) {
            let message = format!("duplicate key \"{text}\" (first at line {line}:{column}); each key may appear once");
            return Err(refuse(at, &push_pointer(pointer, text), message));
        }
        seen.insert(text.to_string(), at);
        *key = Some(text.to_string());
        Ok(())
    }

    fn alias(&mut self, id: usize, at: (usize, usize)) -> Result<(), Problem> {
        let pointer = self.child()?;
        if self.expects_key() {
            return Err(refuse(
                at,
                &pointer,
                "aliases as mapping keys are not accepted",
            ));
        }
        let Some(a) = self.anchors.get(&id).cloned() else {
            return Err(refuse(
                at,
                &pointer,
                "alias to an anchor that is not defined before it",
            ));
        };
        self.expanded += a.cost;
        if self.expanded > self.limits.max_bytes {
            let message = format!(
                "aliases (*name) expand to more than {} bytes; write the content out instead",
                self.limits.max_bytes
            );
            return Err(refuse(at, &pointer, message));
        }
        if self.stack.len() + a.depth > self.limits.max_depth {
            let message = format!(
                "nesting (through this alias) is deeper than {} levels",
                self.limits.max_depth
            );
            return Err(refuse(at, &pointer, message));
        }
        self.places.at.insert(pointer, at);
        self.finish(a.value, 0, a.depth)
    }

    fn close(&mut self) -> Result<(), Problem> {
        let frame = self
            .stack
            .pop()
            .expect("the parser balances starts and ends");
        let (value, anchor) = match frame {
            Frame::Seq { items, anchor, .. } => (Value::Array(items), anchor),
            Frame::Map { map, anchor, .. } => (Value::Object(map), anchor),
        };
        let depth = depth_of(&value);
        self.finish(value, anchor, depth)
    }

    /// A node is complete: remembered if anchored, put in its parent (or made the root).
    fn finish(&mut self, value: Value, anchor: usize, depth: usize) -> Result<(), Problem> {
        if anchor != 0 {
            let cost = cost_of(&value);
            let anchored = Anchored {
                value: value.clone(),
                cost,
                depth,
            };
            self.anchors.insert(anchor, anchored);
        }
        match self.stack.last_mut() {
            None => self.root = Some(value),
            Some(Frame::Seq { items, .. }) => items.push(value),
            Some(Frame::Map { map, key, .. }) => {
                let k = key.take().expect("a value follows its key");
                map.insert(k, value);
            }
        }
        Ok(())
    }
}

/// Container nesting of a value (a scalar is 0).
fn depth_of(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth_of).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth_of).max().unwrap_or(0),
        _ => 0,
    }
}

/// About what a value weighs written out: what repeating it through an alias costs.
fn cost_of(value: &Value) -> usize {
    match value {
        Value::String(s) => s.len() + 2,
        Value::Array(items) => 2 + items.iter().map(|v| cost_of(v) + 1).sum::<usize>(),
        Value::Object(map) => {
            2 + map
                .iter()
                .map(|(k, v)| k.len() + 4 + cost_of(v))
                .sum::<usize>()
        }
        _ => 4,
    }
}

/// A plain scalar as the YAML 1.2 core schema reads it.
fn plain(text: &str) -> Result<Value, String> {
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
    if is_float(text) {
        if let Some(n) = text.parse::<f64>().ok().and_then(Number::from_f64) {
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
        .or_else(|| signless.parse::<f64>().ok().and_then(Number::from_f64))
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

#[cfg(test)]
#[path = "yaml_tests.rs"]
mod tests;
