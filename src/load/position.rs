//! Where every key and value of a YAML document is, by JSON pointer.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::{BuildHasherDefault, Hasher};

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
///
/// Built for every node of every file while most files never need a place, so the pointers
/// share one buffer and are found through their hash: no allocation per node.
#[derive(Debug, Clone, Default)]
pub struct PosMap {
    /// Every pointer, one after the other.
    text: String,
    entries: Vec<Entry>,
    /// Hash of a pointer → the last entry with that hash (the others are chained).
    by_hash: HashMap<u64, u32, BuildHasherDefault<HashIsKey>>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    start: u32,
    end: u32,
    pos: NodePos,
    /// The previous entry with the same hash.
    next: Option<u32>,
}

/// A node recorded in a [`PosMap`], to record its children under.
#[derive(Debug, Clone, Copy)]
pub struct NodeId(u32);

/// One step from a node to its child: a mapping key or a sequence index.
pub enum Step<'a> {
    /// A mapping key, unescaped.
    Key(&'a str),
    /// A sequence index.
    Index(usize),
}

/// The keys are hashes already.
#[derive(Default)]
struct HashIsKey(u64);

impl Hasher for HashIsKey {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// FNV-1a: fast for the short pointers of a playbook.
fn hash(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl PartialEq for PosMap {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

impl Eq for PosMap {}

impl PosMap {
    /// Record the places of a node.
    pub fn insert(&mut self, pointer: String, pos: NodePos) {
        let start = self.text.len();
        self.text.push_str(&pointer);
        self.finish(start, pos);
    }

    /// Record the root node (pointer `""`).
    pub fn insert_root(&mut self, pos: NodePos) -> NodeId {
        let start = self.text.len();
        self.finish(start, pos)
    }

    /// Record a child of a recorded node.
    pub fn insert_child(&mut self, parent: NodeId, step: Step<'_>, pos: NodePos) -> NodeId {
        let p = self.entries[parent.0 as usize];
        let start = self.text.len();
        self.text
            .extend_from_within(p.start as usize..p.end as usize);
        self.text.push('/');
        match step {
            Step::Key(k) => push_token(&mut self.text, k),
            Step::Index(i) => {
                let _ = write!(self.text, "{i}");
            }
        }
        self.finish(start, pos)
    }

    /// The pointer written from `start` to the end of the buffer, with its places: a new
    /// entry, or the one of an earlier node with the same pointer (a duplicate key) updated.
    fn finish(&mut self, start: usize, pos: NodePos) -> NodeId {
        let h = hash(&self.text[start..]);
        if let Some(i) = self.find(h, &self.text[start..]) {
            self.text.truncate(start);
            self.entries[i as usize].pos = pos;
            return NodeId(i);
        }
        let i = self.entries.len() as u32;
        let next = self.by_hash.insert(h, i);
        self.entries.push(Entry {
            start: start as u32,
            end: self.text.len() as u32,
            pos,
            next,
        });
        NodeId(i)
    }

    fn find(&self, h: u64, pointer: &str) -> Option<u32> {
        let mut at = self.by_hash.get(&h).copied();
        while let Some(i) = at {
            let e = &self.entries[i as usize];
            if &self.text[e.start as usize..e.end as usize] == pointer {
                return Some(i);
            }
            at = e.next;
        }
        None
    }

    /// The pointer of a recorded node.
    pub fn pointer(&self, id: NodeId) -> &str {
        let e = &self.entries[id.0 as usize];
        &self.text[e.start as usize..e.end as usize]
    }

    /// The places of exactly this node.
    pub fn get(&self, pointer: &str) -> Option<&NodePos> {
        self.find(hash(pointer), pointer)
            .map(|i| &self.entries[i as usize].pos)
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No nodes at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every pointer with its places.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &NodePos)> {
        self.entries
            .iter()
            .map(|e| (&self.text[e.start as usize..e.end as usize], &e.pos))
    }

    /// Move every entry to the pointer `f` gives for it, or drop it when `f` gives `None`.
    pub fn rekey(&mut self, f: impl Fn(&str) -> Option<String>) {
        let old = std::mem::take(self);
        for (k, v) in old.iter() {
            if let Some(k) = f(k) {
                self.insert(k, *v);
            }
        }
    }

    /// The places of this node or, when it does not exist (a missing key), of the nearest
    /// existing ancestor.
    pub fn nearest(&self, pointer: &str) -> NodePos {
        let mut p = pointer;
        loop {
            if let Some(n) = self.get(p) {
                return *n;
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => {
                    return self.get("").copied().unwrap_or(NodePos {
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

/// Append one reference token, escaped, to a pointer.
pub fn push_token(pointer: &mut String, token: &str) {
    if token.contains(['~', '/']) {
        pointer.push_str(&escape_token(token));
    } else {
        pointer.push_str(token);
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
