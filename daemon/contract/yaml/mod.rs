//! YAML text -> `serde_json::Value` under the JSON limits, for `handoff.yaml` / `.yml`. Read
//! from saphyr-parser's events, so every rule is ours: one document, no tags, no duplicate
//! keys, keys that are scalars, the core schema's plain scalars (null, booleans, numbers),
//! size before parsing, nesting depth and string length while parsing, and aliases priced at
//! what they expand to (a "billion laughs" file is refused after at most `max_bytes` of
//! expansion, anchored copies included). Every node's position is kept in a tree shaped like
//! the document, so problems found later (schema, semantics) point at the YAML line:column.

use super::json::{self, Limits};
use super::problem::{push_pointer, Problem};
use saphyr_parser::{Event, Marker, Parser, ScalarStyle, Span};
use serde_json::{Map, Value};
use std::collections::HashMap;

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
        places: Vec<Node>,
        at: (usize, usize),
        anchor: usize,
    },
    Map {
        map: Map<String, Value>,
        places: HashMap<String, Node>,
        at: (usize, usize),
        anchor: usize,
        key: Option<String>,
        seen: HashMap<String, (usize, usize)>,
    },
}

struct Reader<'l> {
    limits: &'l Limits,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Anchored>,
    /// Bytes that anchors and aliases copied: bounded by `max_bytes`.
    expanded: usize,
    documents: usize,
    root: Option<(Value, Node)>,
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
        Some((root, node)) => Ok((root, Places { root: Some(node) })),
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
            | Event::MappingStart(_, Some(_)) => return Err(refuse(at, &self.pointer(), TAGS)),
            Event::Scalar(text, style, anchor, None) => self.scalar(&text, style, anchor, at)?,
            Event::Alias(id) => self.alias(id, at)?,
            Event::SequenceStart(anchor, None) => {
                self.open(at)?;
                self.stack.push(Frame::Seq {
                    items: Vec::new(),
                    places: Vec::new(),
                    at,
                    anchor,
                });
            }
            Event::MappingStart(anchor, None) => {
                self.open(at)?;
                self.stack.push(Frame::Map {
                    map: Map::new(),
                    places: HashMap::new(),
                    at,
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

    /// The pointer of the next node (of the mapping itself while a key is awaited). Made only
    /// for a problem: never per node.
    fn pointer(&self) -> String {
        let mut pointer = String::new();
        for frame in &self.stack {
            match frame {
                Frame::Seq { items, .. } => {
                    pointer = push_pointer(&pointer, &items.len().to_string())
                }
                Frame::Map { key: Some(k), .. } => pointer = push_pointer(&pointer, k),
                Frame::Map { key: None, .. } => break,
            }
        }
        pointer
    }

    fn expects_key(&self) -> bool {
        matches!(self.stack.last(), Some(Frame::Map { key: None, .. }))
    }

    /// A sequence or mapping starts: checks its place and depth.
    fn open(&mut self, at: (usize, usize)) -> Result<(), Problem> {
        if self.expects_key() {
            let message = "a mapping key must be a plain string, not a list or mapping";
            return Err(refuse(at, &self.pointer(), message));
        }
        if self.stack.len() + 1 > self.limits.max_depth {
            let message = format!("nesting is deeper than {} levels", self.limits.max_depth);
            return Err(refuse(at, &self.pointer(), message));
        }
        Ok(())
    }

    fn scalar(
        &mut self,
        text: &str,
        style: ScalarStyle,
        anchor: usize,
        at: (usize, usize),
    ) -> Result<(), Problem> {
        if text.len() > self.limits.max_string {
            let message = format!(
                "string is {} bytes, over the limit of {} bytes; move long text into an inbox/ artifact",
                text.len(),
                self.limits.max_string
            );
            return Err(refuse(at, &self.pointer(), message));
        }
        if self.expects_key() {
            if anchor != 0 {
                let message = "anchors on mapping keys are not accepted";
                return Err(refuse(at, &self.pointer(), message));
            }
            return self.key(text, at);
        }
        let value = match style {
            ScalarStyle::Plain => plain(text).map_err(|m| refuse(at, &self.pointer(), m))?,
            _ => Value::String(text.to_string()),
        };
        let unquoted = style == ScalarStyle::Plain && !value.is_string();
        self.finish(value, leaf(at, unquoted), anchor, 0)
    }

    fn key(&mut self, text: &str, at: (usize, usize)) -> Result<(), Problem> {
        let Some(Frame::Map { key, seen, .. }) = self.stack.last_mut() else {
            unreachable!("expects_key checked the frame");
        };
        if let Some((line, column)) = seen.get(text) {
            let message = format!(
                "duplicate key \"{text}\" (first at line {line}:{column}); each key may appear once"
            );
            let pointer = push_pointer(&self.pointer(), text);
            return Err(refuse(at, &pointer, message));
        }
        seen.insert(text.to_string(), at);
        *key = Some(text.to_string());
        Ok(())
    }

    fn alias(&mut self, id: usize, at: (usize, usize)) -> Result<(), Problem> {
        if self.expects_key() {
            let message = "aliases as mapping keys are not accepted";
            return Err(refuse(at, &self.pointer(), message));
        }
        let Some(a) = self.anchors.get(&id).cloned() else {
            let message = "alias to an anchor that is not defined before it";
            return Err(refuse(at, &self.pointer(), message));
        };
        self.charge(a.cost, at)?;
        if self.stack.len() + a.depth > self.limits.max_depth {
            let message = format!(
                "nesting (through this alias) is deeper than {} levels",
                self.limits.max_depth
            );
            return Err(refuse(at, &self.pointer(), message));
        }
        // Problems inside an alias's copy are placed at the alias.
        self.finish(a.value, leaf(at, false), 0, a.depth)
    }

    /// Counts bytes copied for anchors and aliases against the size limit.
    fn charge(&mut self, cost: usize, at: (usize, usize)) -> Result<(), Problem> {
        self.expanded += cost;
        if self.expanded <= self.limits.max_bytes {
            return Ok(());
        }
        let message = format!(
            "aliases (*name) expand to more than {} bytes; write the content out instead",
            self.limits.max_bytes
        );
        Err(refuse(at, &self.pointer(), message))
    }

    fn close(&mut self) -> Result<(), Problem> {
        let frame = self
            .stack
            .pop()
            .expect("the parser balances starts and ends");
        let (value, node, anchor) = match frame {
            Frame::Seq {
                items,
                places,
                at,
                anchor,
            } => (
                Value::Array(items),
                container(Kids::Seq(places), at),
                anchor,
            ),
            Frame::Map {
                map,
                places,
                at,
                anchor,
                ..
            } => (Value::Object(map), container(Kids::Map(places), at), anchor),
        };
        let depth = depth_of(&value);
        self.finish(value, node, anchor, depth)
    }

    /// A node is complete: remembered if anchored, put in its parent (or made the root).
    fn finish(
        &mut self,
        value: Value,
        node: Node,
        anchor: usize,
        depth: usize,
    ) -> Result<(), Problem> {
        if anchor != 0 {
            // The copy kept for aliases is paid for too: many anchors must not multiply memory.
            let cost = cost_of(&value);
            self.charge(cost, node.at)?;
            let anchored = Anchored {
                value: value.clone(),
                cost,
                depth,
            };
            self.anchors.insert(anchor, anchored);
        }
        match self.stack.last_mut() {
            None => self.root = Some((value, node)),
            Some(Frame::Seq { items, places, .. }) => {
                items.push(value);
                places.push(node);
            }
            Some(Frame::Map {
                map, places, key, ..
            }) => {
                let k = key.take().expect("a value follows its key");
                places.insert(k.clone(), node);
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

mod places;
pub use places::Places;
use places::{container, leaf, Kids, Node};

mod scalars;
use scalars::plain;

#[cfg(test)]
mod tests;
