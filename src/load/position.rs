//! Where every key and value of a YAML document is, by JSON pointer.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// A place in a file: 1-based line and column (characters), and a width for the caret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Pos {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
    /// Width in characters on that line (1 when the node spans several lines).
    pub len: usize,
}

/// The places of one node: its key (for a mapping entry) and its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NodePos {
    /// The key of a mapping entry; `None` for sequence items and the root.
    pub key: Option<Pos>,
    /// The value.
    pub value: Pos,
}

/// JSON pointer (RFC 6901, `""` is the root) to the node's places.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PosMap {
    map: HashMap<String, NodePos>,
}

impl PosMap {
    /// Record the places of a node.
    pub fn insert(&mut self, pointer: String, pos: NodePos) {
        self.map.insert(pointer, pos);
    }

    /// The places of exactly this node.
    pub fn get(&self, pointer: &str) -> Option<&NodePos> {
        self.map.get(pointer)
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// No nodes at all.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Every pointer with its places.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &NodePos)> {
        self.map.iter()
    }

    /// Move every entry to the pointer `f` gives for it, or drop it when `f` gives `None`.
    pub fn rekey(&mut self, f: impl Fn(&str) -> Option<String>) {
        self.map = std::mem::take(&mut self.map)
            .into_iter()
            .filter_map(|(k, v)| f(&k).map(|k| (k, v)))
            .collect();
    }

    /// The places of this node or, when it does not exist (a missing key), of the nearest
    /// existing ancestor.
    pub fn nearest(&self, pointer: &str) -> NodePos {
        let mut p = pointer;
        loop {
            if let Some(n) = self.map.get(p) {
                return *n;
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => {
                    return self.map.get("").copied().unwrap_or(NodePos {
                        key: None,
                        value: Pos {
                            line: 1,
                            col: 1,
                            len: 1,
                        },
                    });
                }
            }
        }
    }

    /// Where a finding about this node points: the key when there is one, else the value.
    pub fn key_or_value(&self, pointer: &str) -> Pos {
        let n = self.nearest(pointer);
        n.key.unwrap_or(n.value)
    }

    /// Where a finding about this node's value points.
    pub fn value(&self, pointer: &str) -> Pos {
        self.nearest(pointer).value
    }
}

/// Escape one reference token of a JSON pointer (`~` → `~0`, `/` → `~1`).
pub fn escape_token(token: &str) -> String {
    if token.contains(['~', '/']) {
        token.replace('~', "~0").replace('/', "~1")
    } else {
        token.to_owned()
    }
}

/// Unescape one reference token of a JSON pointer.
pub fn unescape_token(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// The last token of a pointer, unescaped (`/dsr/delete/0/neeeds` → `neeeds`).
pub fn last_token(pointer: &str) -> String {
    pointer
        .rsplit_once('/')
        .map(|(_, t)| unescape_token(t))
        .unwrap_or_default()
}
