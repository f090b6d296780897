//! The validation cache's file: a header naming the format and the context the findings
//! were made in, then records, each one file's entry or its removal. A run appends the
//! records of the files it checked anew instead of writing every entry again; a later
//! record of a path replaces an earlier one.
//!
//! Binary, so that reading 10,000 entries is a few milliseconds: integers are LEB128,
//! strings length-prefixed. Each record is length-prefixed and carries a checksum of its
//! bytes seeded with the header's context, so a record cut short (a run stopped while
//! appending), damaged, or appended by a run of another context (after another run
//! rewrote the file) makes the whole file unusable: it is then ignored and rebuilt.

use std::collections::HashMap;
use std::sync::Arc;

use super::cache::{Entry, Outcome, Stamp};
use super::diagnostic::{Diagnostic, Severity};
use super::index::{KindIndex, Named, Place, PlaybookIndex, StepIndex};
use super::position::Pos;
use super::{Code, Diagnostics};
use crate::model::DsrKind;

/// The file's first bytes.
const MAGIC: &[u8; 8] = b"dsrctlVC";

/// Bumped when the layout changes (1 was a JSON document).
pub(super) const FORMAT: u32 = 2;

/// What a cache file holds.
pub(super) struct Decoded {
    pub context: String,
    pub entries: HashMap<String, Entry>,
    /// Records read (more than `entries` when paths were recorded again or removed).
    pub records: usize,
}

/// The header of a file for `context`.
pub(super) fn header(context: &str) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(64));
    w.0.extend_from_slice(MAGIC);
    w.uint(u128::from(FORMAT));
    w.str(context);
    w.0
}

/// Append the record of `rel` to `out`: its entry, or its removal when `entry` is `None`.
pub(super) fn record(out: &mut Vec<u8>, context: &str, rel: &str, entry: Option<&Entry>) {
    let mut w = Writer(Vec::with_capacity(512));
    w.str(rel);
    match entry {
        None => w.u8(0),
        Some(e) => {
            w.u8(1);
            put_entry(&mut w, e);
        }
    }
    out.extend_from_slice(&(w.0.len() as u32).to_le_bytes());
    out.extend_from_slice(&checksum(context, &w.0).to_le_bytes());
    out.extend_from_slice(&w.0);
}

/// Read a whole file; `None` when any of it is not what this build writes.
pub(super) fn decode(bytes: &[u8]) -> Option<Decoded> {
    let rest = bytes.strip_prefix(MAGIC)?;
    let mut r = Reader(rest);
    if r.uint()? != u128::from(FORMAT) {
        return None;
    }
    let context = r.str()?.to_owned();
    let mut rest = r.0;
    // An entry takes a few hundred bytes: room for them all without growing the map.
    let mut entries = HashMap::with_capacity(rest.len() / 256);
    let mut records = 0;
    while !rest.is_empty() {
        let (len, tail) = rest.split_first_chunk::<4>()?;
        let (sum, tail) = tail.split_first_chunk::<8>()?;
        let len = u32::from_le_bytes(*len) as usize;
        if tail.len() < len {
            return None;
        }
        let (payload, tail) = tail.split_at(len);
        if checksum(&context, payload) != u64::from_le_bytes(*sum) {
            return None;
        }
        let mut r = Reader(payload);
        let rel = r.str()?.to_owned();
        match r.u8()? {
            0 => {
                entries.remove(&rel);
            }
            1 => {
                let e = get_entry(&mut r, &rel)?;
                entries.insert(rel, e);
            }
            _ => return None,
        }
        if !r.0.is_empty() {
            return None;
        }
        records += 1;
        rest = tail;
    }
    Some(Decoded {
        context,
        entries,
        records,
    })
}

/// A checksum of `bytes` seeded with `context` (not cryptographic: it catches damage and
/// records of another context, not tampering).
fn checksum(context: &str, bytes: &[u8]) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut mix = |chunk: &[u8]| {
        let mut words = chunk.chunks_exact(8);
        for w in &mut words {
            let w = u64::from_le_bytes(w.try_into().unwrap_or_default());
            h = (h ^ w).wrapping_mul(PRIME).rotate_left(29);
        }
        for b in words.remainder() {
            h = (h ^ u64::from(*b)).wrapping_mul(PRIME);
        }
        h = (h ^ chunk.len() as u64).wrapping_mul(PRIME);
    };
    mix(context.as_bytes());
    mix(bytes);
    h ^ (h >> 31)
}

fn put_entry(w: &mut Writer, e: &Entry) {
    match e.stamp {
        None => w.u8(0),
        Some(s) => {
            w.u8(1);
            w.uint(u128::from(s.len));
            w.uint(s.mtime_ns);
        }
    }
    let o = &e.outcome;
    w.str(&o.sha256);
    w.uint(o.diags.0.len() as u128);
    for d in o.diags.iter() {
        put_diag(w, d);
    }
    match &o.index {
        None => w.u8(0),
        Some(i) => {
            w.u8(1);
            put_index(w, i);
        }
    }
}

fn get_entry(r: &mut Reader<'_>, rel: &str) -> Option<Entry> {
    let stamp = match r.u8()? {
        0 => None,
        1 => Some(Stamp {
            len: r.usize()? as u64,
            mtime_ns: r.uint()?,
        }),
        _ => return None,
    };
    let sha256 = r.str()?.to_owned();
    let n = r.usize()?;
    let mut diags = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        diags.push(get_diag(r, rel)?);
    }
    let index = match r.u8()? {
        0 => None,
        1 => Some(Arc::new(get_index(r, rel)?)),
        _ => return None,
    };
    Some(Entry {
        stamp,
        outcome: Arc::new(Outcome {
            sha256,
            diags: Diagnostics(diags),
            index,
        }),
    })
}

/// A finding (its file is the entry's).
fn put_diag(w: &mut Writer, d: &Diagnostic) {
    w.str(d.code.as_str());
    w.u8(u8::from(d.severity == Severity::Error));
    w.str(&d.message);
    w.uint(d.line as u128);
    w.uint(d.col as u128);
    w.uint(d.len as u128);
    for s in [&d.key, &d.help, &d.label, &d.source_line] {
        w.opt_str(s.as_deref());
    }
}

/// A finding; `None` also for a code this build does not know.
fn get_diag(r: &mut Reader<'_>, file: &str) -> Option<Diagnostic> {
    let code: Code = r.str()?.parse().ok()?;
    let severity = match r.u8()? {
        1 => Severity::Error,
        0 => Severity::Warning,
        _ => return None,
    };
    let message = r.str()?.to_owned();
    let (line, col, len) = (r.usize()?, r.usize()?, r.usize()?);
    let mut d = Diagnostic::new(severity, code, file, line, col, message);
    d.len = len;
    d.key = r.opt_str()?;
    d.help = r.opt_str()?;
    d.label = r.opt_str()?;
    d.source_line = r.opt_str()?;
    Some(d)
}

/// An index (its path is the entry's).
fn put_index(w: &mut Writer, i: &PlaybookIndex) {
    w.str(&i.service);
    put_place(w, i.service_at.as_ref());
    w.str(&i.connector);
    put_named(w, &i.needs_identities);
    w.uint(i.discovers.len() as u128);
    for (k, v) in &i.discovers {
        w.str(k);
        w.str(v);
    }
    w.uint(i.kinds.len() as u128);
    for k in &i.kinds {
        match k {
            KindIndex::None => w.u8(0),
            KindIndex::Unsupported => w.u8(1),
            KindIndex::Reuse(kinds) => {
                w.u8(2);
                w.uint(kinds.len() as u128);
                for k in kinds {
                    w.u8(kind_number(*k));
                }
            }
            KindIndex::Steps(steps) => {
                w.u8(3);
                w.uint(steps.len() as u128);
                for s in steps {
                    w.str(&s.id);
                    w.uint(s.needs.len() as u128);
                    for n in &s.needs {
                        w.str(n);
                    }
                    put_named(w, &s.after);
                }
            }
        }
    }
}

fn get_index(r: &mut Reader<'_>, path: &str) -> Option<PlaybookIndex> {
    let service = r.str()?.to_owned();
    let service_at = get_place(r)?;
    let connector = r.str()?.to_owned();
    let needs_identities = get_named(r)?;
    let mut discovers = Vec::new();
    for _ in 0..r.usize()? {
        discovers.push((r.str()?.to_owned(), r.str()?.to_owned()));
    }
    let mut kinds = Vec::with_capacity(DsrKind::ALL.len());
    for _ in 0..r.usize()? {
        kinds.push(match r.u8()? {
            0 => KindIndex::None,
            1 => KindIndex::Unsupported,
            2 => {
                let mut reuse = Vec::new();
                for _ in 0..r.usize()? {
                    reuse.push(*DsrKind::ALL.get(usize::from(r.u8()?))?);
                }
                KindIndex::Reuse(reuse)
            }
            3 => {
                let n = r.usize()?;
                let mut steps = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    let id = r.str()?.to_owned();
                    let mut needs = Vec::new();
                    for _ in 0..r.usize()? {
                        needs.push(r.str()?.to_owned());
                    }
                    let after = get_named(r)?;
                    steps.push(StepIndex { id, needs, after });
                }
                KindIndex::Steps(steps)
            }
            _ => return None,
        });
    }
    Some(PlaybookIndex {
        path: path.to_owned(),
        service,
        service_at,
        connector,
        needs_identities,
        discovers,
        kinds,
    })
}

fn kind_number(kind: DsrKind) -> u8 {
    DsrKind::ALL
        .iter()
        .position(|k| *k == kind)
        .map_or(u8::MAX, |i| i as u8)
}

fn put_named(w: &mut Writer, named: &[Named]) {
    w.uint(named.len() as u128);
    for (name, at) in named {
        w.str(name);
        put_place(w, at.as_ref());
    }
}

fn get_named(r: &mut Reader<'_>) -> Option<Vec<Named>> {
    let n = r.usize()?;
    let mut out = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        out.push((r.str()?.to_owned(), get_place(r)?));
    }
    Some(out)
}

fn put_place(w: &mut Writer, place: Option<&Place>) {
    match place {
        None => w.u8(0),
        Some(p) => {
            w.u8(1);
            w.uint(p.pos.line as u128);
            w.uint(p.pos.col as u128);
            w.uint(p.pos.len as u128);
            w.str(&p.source);
        }
    }
}

/// A place, or its absence (`Some(None)`); `None` when the bytes are not one.
fn get_place(r: &mut Reader<'_>) -> Option<Option<Place>> {
    Some(match r.u8()? {
        0 => None,
        1 => Some(Place {
            pos: Pos {
                line: r.usize()?,
                col: r.usize()?,
                len: r.usize()?,
            },
            source: r.str()?.to_owned(),
        }),
        _ => return None,
    })
}

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, b: u8) {
        self.0.push(b);
    }

    /// LEB128.
    fn uint(&mut self, mut n: u128) {
        loop {
            let low = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                self.0.push(low);
                return;
            }
            self.0.push(low | 0x80);
        }
    }

    fn str(&mut self, s: &str) {
        self.uint(s.len() as u128);
        self.0.extend_from_slice(s.as_bytes());
    }

    fn opt_str(&mut self, s: Option<&str>) {
        match s {
            None => self.u8(0),
            Some(s) => {
                self.u8(1);
                self.str(s);
            }
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn u8(&mut self) -> Option<u8> {
        let (b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(*b)
    }

    fn uint(&mut self) -> Option<u128> {
        let mut n: u128 = 0;
        for shift in (0..128).step_by(7) {
            let b = self.u8()?;
            n |= u128::from(b & 0x7f).checked_shl(shift)?;
            if b & 0x80 == 0 {
                return Some(n);
            }
        }
        None
    }

    fn usize(&mut self) -> Option<usize> {
        usize::try_from(self.uint()?).ok()
    }

    fn str(&mut self) -> Option<&'a str> {
        let n = self.usize()?;
        if self.0.len() < n {
            return None;
        }
        let (s, rest) = self.0.split_at(n);
        self.0 = rest;
        std::str::from_utf8(s).ok()
    }

    fn opt_str(&mut self) -> Option<Option<String>> {
        Some(match self.u8()? {
            0 => None,
            1 => Some(self.str()?.to_owned()),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(line: usize, source: &str) -> Option<Place> {
        Some(Place {
            pos: Pos {
                line,
                col: 3,
                len: 5,
            },
            source: source.to_owned(),
        })
    }

    /// An entry with a finding and an index of every shape.
    fn entry(rel: &str, code: Code) -> Entry {
        let mut d = Diagnostic::error(code, rel, 4, 2, "a finding").with_len(7);
        d.key = Some("connectr".into());
        d.label = Some("did you mean `connector`?".into());
        d.source_line = Some("connectr: api".into());
        let index = PlaybookIndex {
            path: rel.to_owned(),
            service: "alpha".into(),
            service_at: place(1, "service: alpha"),
            connector: "api".into(),
            needs_identities: vec![("email".into(), place(3, "needs_identities: [email]"))],
            discovers: vec![("account".into(), "find.id".into())],
            kinds: vec![
                KindIndex::Reuse(vec![DsrKind::Export, DsrKind::Delete]),
                KindIndex::None,
                KindIndex::Unsupported,
                KindIndex::None,
                KindIndex::Steps(vec![StepIndex {
                    id: "drop".into(),
                    needs: vec!["list".into()],
                    after: vec![("beta/drop".into(), None)],
                }]),
            ],
        };
        Entry {
            stamp: Some(Stamp {
                len: 321,
                mtime_ns: 1_764_500_000_123_456_789,
            }),
            outcome: Arc::new(Outcome {
                sha256: "ab".repeat(32),
                diags: Diagnostics(vec![d]),
                index: Some(Arc::new(index)),
            }),
        }
    }

    fn file(context: &str, records: &[(&str, Option<&Entry>)]) -> Vec<u8> {
        let mut out = header(context);
        for (rel, e) in records {
            record(&mut out, context, rel, *e);
        }
        out
    }

    fn same(a: &Entry, b: &Entry) -> bool {
        a.stamp == b.stamp && a.outcome == b.outcome
    }

    #[test]
    fn entries_read_back_as_written() {
        let a = entry("p/a.yaml", Code::UnknownKey);
        let mut b = entry("p/b.yaml", Code::UnknownKey);
        b.stamp = None;
        let d = decode(&file(
            "ctx",
            &[("p/a.yaml", Some(&a)), ("p/b.yaml", Some(&b))],
        ))
        .expect("decodes");
        assert_eq!((d.context.as_str(), d.records), ("ctx", 2));
        assert!(same(&d.entries["p/a.yaml"], &a));
        assert!(same(&d.entries["p/b.yaml"], &b));
    }

    #[test]
    fn a_later_record_replaces_or_removes_an_entry() {
        let a = entry("a.yaml", Code::UnknownKey);
        let mut a2 = a.clone();
        a2.stamp = None;
        let b = entry("b.yaml", Code::UnknownKey);
        let bytes = file(
            "ctx",
            &[
                ("a.yaml", Some(&a)),
                ("b.yaml", Some(&b)),
                ("a.yaml", Some(&a2)),
                ("b.yaml", None),
            ],
        );
        let d = decode(&bytes).expect("decodes");
        assert_eq!(d.records, 4);
        assert_eq!(d.entries.len(), 1);
        assert!(same(&d.entries["a.yaml"], &a2));
    }

    /// Cut anywhere inside a record, or damaged anywhere: not used at all.
    #[test]
    fn a_cut_or_damaged_file_is_not_used() {
        let a = entry("a.yaml", Code::UnknownKey);
        let head = header("ctx").len();
        let bytes = file("ctx", &[("a.yaml", Some(&a))]);
        for cut in head + 1..bytes.len() {
            assert!(decode(&bytes[..cut]).is_none(), "cut at {cut}");
        }
        for at in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x10;
            assert!(decode(&damaged).is_none(), "byte {at} damaged");
        }
    }

    /// A run of another context appending to a file another run has just written: its
    /// records do not pass for this context's.
    #[test]
    fn a_record_of_another_context_is_not_used() {
        let a = entry("a.yaml", Code::UnknownKey);
        let mut bytes = file("ctx", &[]);
        record(&mut bytes, "other", "a.yaml", Some(&a));
        assert!(decode(&bytes).is_none());
    }

    /// A finding whose code this build does not know (written by another build).
    #[test]
    fn an_unknown_code_makes_the_file_unusable() {
        let a = entry("a.yaml", Code::UnknownKey);
        let mut rec = Vec::new();
        record(&mut rec, "ctx", "a.yaml", Some(&a));
        let payload = &mut rec[12..];
        let at = payload
            .windows(11)
            .position(|w| w == b"unknown-key")
            .expect("the code is written");
        payload[at..at + 11].copy_from_slice(b"unknown-kez");
        let sum = checksum("ctx", payload);
        rec[4..12].copy_from_slice(&sum.to_le_bytes());
        let mut bytes = header("ctx");
        bytes.extend_from_slice(&rec);
        assert!(decode(&bytes).is_none());
        // The same bytes with the code intact are used.
        let mut good = header("ctx");
        record(&mut good, "ctx", "a.yaml", Some(&a));
        assert!(decode(&good).is_some());
    }
}
