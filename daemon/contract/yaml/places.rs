//! Where each node of a YAML document starts, kept for the problems found after parsing.

use super::super::problem::pointer_segments;
use std::collections::HashMap;

/// Where each node of a YAML document starts (1-based line and column), as a tree shaped like
/// the document: a pointer is looked up segment by segment, so no node stores its pointer
/// (a deep document with long keys would otherwise cost its depth in key bytes per node).
#[derive(Debug, Default, Clone)]
pub struct Places {
    pub(super) root: Option<Node>,
}

#[derive(Debug, Clone)]
pub(super) struct Node {
    pub(super) at: (usize, usize),
    /// A plain scalar the core schema read as something other than a string (`1.0`, `true`).
    pub(super) unquoted: bool,
    pub(super) kids: Kids,
}

#[derive(Debug, Clone)]
pub(super) enum Kids {
    None,
    Seq(Vec<Node>),
    Map(HashMap<String, Node>),
}

impl Places {
    /// The deepest node on the way to `pointer`, and whether it is the node itself.
    fn walk(&self, pointer: &str) -> Option<(&Node, bool)> {
        let mut node = self.root.as_ref()?;
        for segment in pointer_segments(pointer) {
            let next = match &node.kids {
                Kids::Seq(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
                Kids::Map(map) => map.get(&segment),
                Kids::None => None,
            };
            match next {
                Some(n) => node = n,
                None => return Some((node, false)),
            }
        }
        Some((node, true))
    }

    /// Where the node at `pointer` starts, or its nearest ancestor that exists.
    pub fn locate(&self, pointer: &str) -> Option<(usize, usize)> {
        self.walk(pointer).map(|(n, _)| n.at)
    }

    /// A hint for a problem at `pointer` that wants a string where YAML read a plain scalar
    /// as a number, boolean or null.
    pub fn hint(&self, pointer: &str, message: &str) -> Option<&'static str> {
        let unquoted = matches!(self.walk(pointer), Some((n, true)) if n.unquoted);
        (unquoted && message.contains("string"))
            .then_some("; YAML read the unquoted value as a number, boolean or null: quote it (\"1.0\") to make it a string")
    }
}

pub(super) fn leaf(at: (usize, usize), unquoted: bool) -> Node {
    Node {
        at,
        unquoted,
        kids: Kids::None,
    }
}

pub(super) fn container(kids: Kids, at: (usize, usize)) -> Node {
    Node {
        at,
        unquoted: false,
        kids,
    }
}
