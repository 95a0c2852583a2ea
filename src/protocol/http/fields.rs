//! A header block that borrows the wire bytes (DESIGN.md §6): the frozen head as it arrived plus a
//! compact index of its fields (where each name and value sits, and which of the fields the proxy
//! itself reads it is), filled in by the parser in the pass that tokenizes the head.
//!
//! An `http::HeaderMap` costs two allocations per head, a hash per name and an allocation per
//! non-standard name; most heads are forwarded with at most a field or two removed or added, so
//! the map is built only when something asks for one (a hook that reads or edits the whole block,
//! an HTTP/2 peer). Removing a field marks it skipped; adding one writes it to a small side buffer.
//! An unmodified block is written out as range copies of the bytes it came in.
//!
//! Order is kept: fields go out (and into a map) in the order they arrived, edits in place, new
//! fields last.

use std::ops::Range;
use std::sync::OnceLock;

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{self, HeaderName, HeaderValue};
use http::HeaderMap;

use super::names::{FieldKey, IntoFieldName, Known, MapKey};

/// Where a name or value sits: in the wire bytes, or (high bit set) in the side buffer of added
/// values. `u32` positions: a head is bounded far below 2 GiB by the parser's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: u32,
    len: u32,
}

const PATCH: u32 = 1 << 31;

impl Span {
    fn wire(r: Range<usize>) -> Span {
        Span { start: r.start as u32, len: (r.end - r.start) as u32 }
    }
}

/// One field of the index.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    name: Span,
    value: Span,
    known: Known,
    /// Removed: neither written out nor seen.
    skip: bool,
    /// The wire holds exactly `name: value\r\n` for it, so it can be copied out as it came (with
    /// its neighbours, when they are too).
    canonical: bool,
}

impl Field {
    /// A field whose name and value sit at these ranges of `head`.
    pub fn new(head: &[u8], name: Range<usize>, value: Range<usize>, known: Known) -> Field {
        let canonical = value.start == name.end + 2
            && head.get(name.end..value.start) == Some(b": ")
            && head.get(value.end..value.end + 2) == Some(b"\r\n");
        Field { name: Span::wire(name), value: Span::wire(value), known, skip: false, canonical }
    }

    /// Where its line ends on the wire (after CRLF), if it is canonical.
    fn line_end(&self) -> u32 {
        self.value.start + self.value.len + 2
    }
}

/// The borrowed form.
#[derive(Debug)]
struct Wire {
    bytes: Bytes,
    fields: Vec<Field>,
    /// Names and values added or replaced after parsing (lowercase names).
    patch: Vec<u8>,
    /// Which [`Known`] fields are present among the live ones (kept exact on every edit).
    present: u16,
    /// Which of them occur more than once (exact as well).
    multi: u16,
    /// Which [`Known`] fields the intake validated as they are (see [`Headers::mark_checked`]);
    /// an edit of one clears its bit.
    checked: u16,
    /// Where each present [`Known`] field first occurs, so that a lookup of one that occurs once
    /// (nearly all of them) goes straight to it instead of testing every field of the head, twice
    /// (to find it, then to rule out another).
    first: [u16; Known::COUNT],
    /// Fields left (not skipped).
    live: u32,
    /// A map built for a reader that wants one; dropped on every edit. Boxed: most blocks never
    /// need one, and every head is moved a few times on its way through.
    map: OnceLock<Box<HeaderMap>>,
}

impl Clone for Wire {
    fn clone(&self) -> Self {
        // The cached map is not copied: the clone may never need one.
        Wire {
            bytes: self.bytes.clone(),
            fields: self.fields.clone(),
            patch: self.patch.clone(),
            present: self.present,
            multi: self.multi,
            checked: self.checked,
            first: self.first,
            live: self.live,
            map: OnceLock::new(),
        }
    }
}

#[derive(Debug, Clone)]
enum Repr {
    Wire(Wire),
    Map(HeaderMap),
}

/// A header block: borrowed wire bytes with a field index, or an owned `HeaderMap` once something
/// edited it through the map or it came from HTTP/2. `Deref<Target = HeaderMap>` builds (and keeps)
/// a map for readers that want one; `DerefMut` turns the block into a map for good. The proxy's own
/// reads and edits ([`Headers::values`], [`Headers::remove`], [`Headers::insert`], ...) use the index.
#[derive(Debug, Clone)]
pub struct Headers {
    repr: Repr,
}

impl Default for Headers {
    fn default() -> Self {
        Headers { repr: Repr::Map(HeaderMap::new()) }
    }
}

impl From<HeaderMap> for Headers {
    fn from(map: HeaderMap) -> Self {
        Headers { repr: Repr::Map(map) }
    }
}

/// Values of one name, in order.
pub struct Values<'a, 'n>(ValuesOf<'a, 'n>);

enum ValuesOf<'a, 'n> {
    Wire { wire: &'a Wire, fields: std::slice::Iter<'a, Field>, known: Known, name: &'n [u8] },
    Map(header::ValueIter<'a, HeaderValue>),
}

impl<'a> Iterator for Values<'a, '_> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        match &mut self.0 {
            ValuesOf::Wire { wire, fields, known, name } => {
                let wire: &'a Wire = wire;
                fields.find(|f| wire.matches(f, *known, name)).map(|f| wire.slice(f.value))
            }
            ValuesOf::Map(it) => it.next().map(HeaderValue::as_bytes),
        }
    }
}

impl Wire {
    fn slice(&self, s: Span) -> &[u8] {
        let (start, len) = ((s.start & !PATCH) as usize, s.len as usize);
        if s.start & PATCH != 0 {
            &self.patch[start..start + len]
        } else {
            &self.bytes[start..start + len]
        }
    }

    fn matches(&self, f: &Field, known: Known, name: &[u8]) -> bool {
        !f.skip
            && f.known == known
            && (known != Known::Other || self.slice(f.name).eq_ignore_ascii_case(name))
    }

    /// Records that field `i`, a live `known` one, is there (fields are noted in order).
    fn note(&mut self, known: Known, i: usize) {
        let bit = known.bit();
        if self.present & bit != 0 {
            self.multi |= bit;
        } else {
            self.present |= bit;
            // Past u16, "more than one" makes lookups scan from the start, which is always right.
            match u16::try_from(i) {
                Ok(i) => self.first[known as usize] = i,
                Err(_) => self.multi |= bit,
            }
        }
    }

    /// Notes every live field again, after an edit that may have removed any of them.
    fn renote(&mut self) {
        (self.present, self.multi, self.checked) = (0, 0, 0);
        for i in 0..self.fields.len() {
            let f = self.fields[i];
            if !f.skip {
                self.note(f.known, i);
            }
        }
    }

    /// The positions of the fields a lookup of `known` (and its name, for `Other`) has to test.
    fn candidates(&self, known: Known) -> Range<usize> {
        let bit = known.bit();
        if known == Known::Other {
            0..self.fields.len()
        } else if self.present & bit == 0 {
            0..0
        } else {
            let first = usize::from(self.first[known as usize]);
            first..if self.multi & bit == 0 { first + 1 } else { self.fields.len() }
        }
    }

    fn push_patch(&mut self, bytes: &[u8]) -> Span {
        let start = self.patch.len() as u32 | PATCH;
        self.patch.extend_from_slice(bytes);
        Span { start, len: bytes.len() as u32 }
    }

    /// The live fields `keep` accepts (by class and value), as a map.
    fn to_map(&self, keep: impl Fn(Known, &[u8]) -> bool) -> HeaderMap {
        let mut map = HeaderMap::with_capacity(self.live as usize);
        for f in self.fields.iter().filter(|f| !f.skip && keep(f.known, self.slice(f.value))) {
            // Both were checked as tokens and field values by the parser (or came from a checked
            // HeaderName/HeaderValue), so neither conversion fails; a field that did would be
            // dropped rather than invented.
            let name = match f.known {
                Known::Other => HeaderName::from_bytes(self.slice(f.name)).ok(),
                k => Some(HeaderName::from_static(k.as_str())),
            };
            let value = if f.value.start & PATCH == 0 {
                let r = f.value.start as usize..(f.value.start + f.value.len) as usize;
                HeaderValue::from_maybe_shared(self.bytes.slice(r)).ok()
            } else {
                HeaderValue::from_bytes(self.slice(f.value)).ok()
            };
            if let (Some(n), Some(v)) = (name, value) {
                map.append(n, v);
            }
        }
        map
    }
}

fn keep_all(_: Known, _: &[u8]) -> bool {
    true
}

impl Headers {
    /// An empty block.
    pub fn new() -> Self {
        Self::default()
    }

    /// A block over `bytes` (the whole head) with the parser's field index.
    pub fn from_wire(bytes: Bytes, fields: Vec<Field>) -> Self {
        let live = fields.len() as u32;
        let (present, multi, checked, first) = (0, 0, 0, [0; Known::COUNT]);
        let patch = Vec::new();
        let mut w = Wire { bytes, fields, patch, present, multi, checked, first, live, map: OnceLock::new() };
        w.renote();
        Headers { repr: Repr::Wire(w) }
    }

    /// Whether the block is still the borrowed form (no map was made authoritative).
    pub fn is_borrowed(&self) -> bool {
        matches!(self.repr, Repr::Wire(_))
    }

    /// Number of fields (a name with two lines counts twice, as in `HeaderMap::len`).
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Wire(w) => w.live as usize,
            Repr::Map(m) => m.len(),
        }
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a field the proxy reads is present: a bit test on the borrowed form. Inlined: it
    /// is asked some forty times per proxied request, and as a call it cost more than the test.
    #[inline]
    pub fn has_known(&self, k: Known) -> bool {
        match &self.repr {
            Repr::Wire(w) => w.present & k.bit() != 0,
            Repr::Map(m) => k.header_name().is_some_and(|n| m.contains_key(n)),
        }
    }

    /// Records that the intake validated the `k` field(s) as they are now, so that a later check
    /// of the same rule can be skipped while nobody edited them ([`Headers::is_checked`]). Only
    /// the borrowed form keeps the mark: an edit through the map cannot be seen.
    pub fn mark_checked(&mut self, k: Known) {
        if let Repr::Wire(w) = &mut self.repr {
            w.checked |= k.bit();
        }
    }

    /// Whether the `k` field(s) are as they were when marked with [`Headers::mark_checked`].
    #[inline]
    pub fn is_checked(&self, k: Known) -> bool {
        matches!(&self.repr, Repr::Wire(w) if w.checked & k.bit() != 0)
    }

    /// The values of every field named `name`, in order.
    #[inline]
    pub fn values<'a, 'n, K: FieldKey + ?Sized>(&'a self, name: &'n K) -> Values<'a, 'n> {
        let (known, key) = name.key();
        match &self.repr {
            Repr::Wire(w) => {
                let fields = w.fields[w.candidates(known)].iter();
                Values(ValuesOf::Wire { wire: w, fields, known, name: key.as_bytes() })
            }
            Repr::Map(m) => Values(ValuesOf::Map(match name.map_key() {
                MapKey::Name(n) => m.get_all(n).into_iter(),
                MapKey::Str(s) => m.get_all(s).into_iter(),
            })),
        }
    }

    /// The value of `k` when exactly one field carries it, the case the proxy's list readers take
    /// without splitting and re-searching (`None` when it is absent or repeated). Inlined: on the
    /// borrowed form it is a bit test and a slice.
    #[inline]
    pub fn single(&self, k: Known) -> Option<&[u8]> {
        match &self.repr {
            Repr::Wire(w) => {
                let bit = k.bit();
                (k != Known::Other && w.present & bit != 0 && w.multi & bit == 0)
                    .then(|| w.slice(w.fields[usize::from(w.first[k as usize])].value))
            }
            Repr::Map(m) => {
                let mut values = m.get_all(k.header_name()?).iter();
                match (values.next(), values.next()) {
                    (Some(v), None) => Some(v.as_bytes()),
                    _ => None,
                }
            }
        }
    }

    /// The first value of `name`.
    pub fn value<'a, K: FieldKey + ?Sized>(&'a self, name: &K) -> Option<&'a [u8]> {
        self.values(name).next()
    }

    /// Removes every field named `name`; whether there was one.
    pub fn remove<K: FieldKey>(&mut self, name: K) -> bool {
        let (known, key) = name.key();
        match &mut self.repr {
            Repr::Wire(w) => {
                let key = key.as_bytes();
                let mut removed = 0u32;
                for i in w.candidates(known) {
                    if w.matches(&w.fields[i], known, key) {
                        w.fields[i].skip = true;
                        removed += 1;
                    }
                }
                if removed > 0 {
                    w.live -= removed;
                    w.present &= !known.bit();
                    w.multi &= !known.bit();
                    w.checked &= !known.bit();
                    w.map = OnceLock::new();
                }
                removed > 0
            }
            Repr::Map(m) => match name.map_key() {
                MapKey::Name(n) => m.remove(n).is_some(),
                MapKey::Str(s) => m.remove(s).is_some(),
            },
        }
    }

    /// Sets `name` to the one value `value`: the first field of that name takes it in place, the
    /// others go; without one it is added last.
    pub fn insert(&mut self, name: impl IntoFieldName, value: HeaderValue) {
        let name = name.into_field_name();
        match &mut self.repr {
            Repr::Wire(w) => {
                let known = Known::of(&name);
                let key = name.as_str().as_bytes();
                let mut first = None;
                let mut removed = 0u32;
                for i in w.candidates(known) {
                    if w.matches(&w.fields[i], known, key) {
                        if first.is_none() {
                            first = Some(i);
                        } else {
                            w.fields[i].skip = true;
                            removed += 1;
                        }
                    }
                }
                w.live -= removed;
                w.checked &= !known.bit();
                w.map = OnceLock::new();
                match first {
                    Some(i) => {
                        w.fields[i].value = w.push_patch(value.as_bytes());
                        w.fields[i].canonical = false;
                        // Field `i` stays the first and is now the only one (for `Other` the
                        // bits say nothing).
                        if known != Known::Other {
                            w.multi &= !known.bit();
                        }
                    }
                    None => push_field(w, &name, known, &value),
                }
            }
            Repr::Map(m) => {
                m.insert(name, value);
            }
        }
    }

    /// Makes room for `fields` more fields with `bytes` bytes of names and values in all, so that
    /// adding them grows the index and the side buffer once rather than field by field.
    pub fn reserve(&mut self, fields: usize, bytes: usize) {
        if let Repr::Wire(w) = &mut self.repr {
            w.fields.reserve(fields);
            w.patch.reserve(bytes);
        }
    }

    /// Adds a field after the others.
    pub fn append(&mut self, name: impl IntoFieldName, value: HeaderValue) {
        let name = name.into_field_name();
        match &mut self.repr {
            Repr::Wire(w) => {
                w.map = OnceLock::new();
                push_field(w, &name, Known::of(&name), &value);
            }
            Repr::Map(m) => {
                m.append(name, value);
            }
        }
    }

    /// Keeps only the fields whose (lowercase) names `keep` accepts.
    pub fn retain_names(&mut self, mut keep: impl FnMut(&[u8]) -> bool) {
        match &mut self.repr {
            Repr::Wire(w) => {
                let mut name = Vec::new();
                let mut removed = 0u32;
                for i in 0..w.fields.len() {
                    let f = w.fields[i];
                    if f.skip {
                        continue;
                    }
                    name.clear();
                    name.extend(w.slice(f.name).iter().map(u8::to_ascii_lowercase));
                    if !keep(&name) {
                        w.fields[i].skip = true;
                        removed += 1;
                    }
                }
                if removed > 0 {
                    w.live -= removed;
                    w.renote();
                    w.map = OnceLock::new();
                }
            }
            Repr::Map(m) => {
                // Rebuilt rather than removed from: removal moves the last name into the gap, and
                // the other fields should go on in the order they came.
                let old = std::mem::take(m);
                m.reserve(old.len());
                let mut current: Option<HeaderName> = None;
                for (name, value) in old {
                    // `None`: another value of the name before.
                    if let Some(name) = name {
                        current = keep(name.as_str().as_bytes()).then_some(name);
                    }
                    if let Some(name) = &current {
                        m.append(name.clone(), value);
                    }
                }
            }
        }
    }

    /// Whether any field name satisfies `pred` (names lowercase on the map form, as they came on
    /// the borrowed one).
    pub fn any_name(&self, mut pred: impl FnMut(&[u8]) -> bool) -> bool {
        match &self.repr {
            Repr::Wire(w) => w.fields.iter().any(|f| !f.skip && pred(w.slice(f.name))),
            Repr::Map(m) => m.keys().any(|n| pred(n.as_str().as_bytes())),
        }
    }

    /// Calls `f(class, name, value)` for every field, in order (names lowercase on the map form,
    /// as they came on the borrowed one): for an encoder that writes each field itself (HPACK).
    pub fn for_each(&self, mut f: impl FnMut(Known, &[u8], &[u8])) {
        match &self.repr {
            Repr::Wire(w) => {
                for fd in w.fields.iter().filter(|fd| !fd.skip) {
                    f(fd.known, w.slice(fd.name), w.slice(fd.value));
                }
            }
            Repr::Map(m) => {
                for (n, v) in m {
                    f(Known::of(n), n.as_str().as_bytes(), v.as_bytes());
                }
            }
        }
    }

    /// Bytes the fields take on the wire as `name: value\r\n` lines.
    pub fn encoded_len(&self) -> usize {
        match &self.repr {
            Repr::Wire(w) => {
                w.fields.iter().filter(|f| !f.skip).map(|f| (f.name.len + f.value.len) as usize + 4).sum()
            }
            Repr::Map(m) => m.iter().map(|(n, v)| n.as_str().len() + v.len() + 4).sum(),
        }
    }

    /// Writes every field as `name: value\r\n`, in order. A borrowed block keeps the names' case
    /// as it came (field names are case-insensitive; HTTP/1 peers see what the client sent), and
    /// consecutive lines that came in exactly that form go out as one copy of the wire bytes.
    pub fn encode(&self, out: &mut BytesMut) {
        match &self.repr {
            Repr::Wire(w) => {
                let mut run: Option<(u32, u32)> = None;
                for f in w.fields.iter().filter(|f| !f.skip) {
                    if f.canonical {
                        match &mut run {
                            Some((_, end)) if *end == f.name.start => *end = f.line_end(),
                            _ => {
                                if let Some((a, b)) = run {
                                    out.put_slice(&w.bytes[a as usize..b as usize]);
                                }
                                run = Some((f.name.start, f.line_end()));
                            }
                        }
                        continue;
                    }
                    if let Some((a, b)) = run.take() {
                        out.put_slice(&w.bytes[a as usize..b as usize]);
                    }
                    out.put_slice(w.slice(f.name));
                    out.put_slice(b": ");
                    out.put_slice(w.slice(f.value));
                    out.put_slice(b"\r\n");
                }
                if let Some((a, b)) = run {
                    out.put_slice(&w.bytes[a as usize..b as usize]);
                }
            }
            Repr::Map(m) => {
                for (name, value) in m {
                    out.put_slice(name.as_str().as_bytes());
                    out.put_slice(b": ");
                    out.put_slice(value.as_bytes());
                    out.put_slice(b"\r\n");
                }
            }
        }
    }

    /// The block as a map (built now if it is the borrowed form).
    pub fn map(&self) -> &HeaderMap {
        match &self.repr {
            Repr::Wire(w) => w.map.get_or_init(|| Box::new(w.to_map(keep_all))),
            Repr::Map(m) => m,
        }
    }

    /// A copy of the block as a map holding only the fields `keep` accepts (by class and value),
    /// for an HTTP/2 peer: built from the borrowed form with the fields it must not get left out,
    /// rather than built whole (or cloned) and then searched and shrunk name by name.
    pub fn to_map_keeping(&self, keep: impl Fn(Known, &[u8]) -> bool) -> HeaderMap {
        match &self.repr {
            Repr::Wire(w) => w.to_map(keep),
            Repr::Map(m) if m.iter().all(|(n, v)| keep(Known::of(n), v.as_bytes())) => m.clone(),
            Repr::Map(m) => {
                let mut map = HeaderMap::with_capacity(m.len());
                for (n, v) in m.iter().filter(|(n, v)| keep(Known::of(n), v.as_bytes())) {
                    map.append(n.clone(), v.clone());
                }
                map
            }
        }
    }

    /// The block as a map to edit: from now on the map is the block.
    pub fn map_mut(&mut self) -> &mut HeaderMap {
        if let Repr::Wire(w) = &mut self.repr {
            let map = w.map.take().map_or_else(|| w.to_map(keep_all), |m| *m);
            self.repr = Repr::Map(map);
        }
        match &mut self.repr {
            Repr::Map(m) => m,
            Repr::Wire(_) => unreachable!("just replaced"),
        }
    }
}

/// The borrowed form built field by field from a head that arrived as a map (HTTP/2): each field
/// is written as the `name: value\r\n` line an HTTP/1 peer gets, so the block goes upstream as one
/// copy and the proxy's own lookups are bit tests and byte compares instead of hashes.
pub struct WireBuilder {
    bytes: BytesMut,
    fields: Vec<Field>,
}

impl WireBuilder {
    /// Room for `fields` fields taking `bytes` bytes as lines (both hints).
    pub fn with_capacity(bytes: usize, fields: usize) -> Self {
        WireBuilder { bytes: BytesMut::with_capacity(bytes), fields: Vec::with_capacity(fields) }
    }

    /// Adds a field after the others (`value` must be a valid field value, as a `HeaderValue`'s is).
    pub fn push(&mut self, name: &HeaderName, value: &[u8]) {
        self.push_bytes(name.as_str().as_bytes(), Known::of(name), value);
    }

    /// [`Self::push`] for a name already checked to be a valid lowercase field name, of class
    /// `known`: an HTTP/2 request's fields come as bytes, and a `HeaderName` would be a parse and,
    /// for a name outside the standard set, an allocation per field.
    pub fn push_bytes(&mut self, name: &[u8], known: Known, value: &[u8]) {
        let at = self.bytes.len() as u32;
        self.bytes.put_slice(name);
        self.bytes.put_slice(b": ");
        self.bytes.put_slice(value);
        self.bytes.put_slice(b"\r\n");
        let (n, v) = (name.len() as u32, value.len() as u32);
        self.fields.push(Field {
            name: Span { start: at, len: n },
            value: Span { start: at + n + 2, len: v },
            known,
            skip: false,
            canonical: true,
        });
    }

    /// Fields pushed so far.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether no field was pushed.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The value of the `i`th field pushed.
    pub fn value_at(&self, i: usize) -> &[u8] {
        let v = self.fields[i].value;
        &self.bytes[v.start as usize..(v.start + v.len) as usize]
    }

    /// The block.
    pub fn finish(self) -> Headers {
        Headers::from_wire(self.bytes.freeze(), self.fields)
    }
}

fn push_field(w: &mut Wire, name: &HeaderName, known: Known, value: &HeaderValue) {
    let name_span = w.push_patch(name.as_str().as_bytes());
    let value_span = w.push_patch(value.as_bytes());
    w.fields.push(Field { name: name_span, value: value_span, known, skip: false, canonical: false });
    w.note(known, w.fields.len() - 1);
    w.checked &= !known.bit();
    w.live += 1;
}

impl std::ops::Deref for Headers {
    type Target = HeaderMap;

    fn deref(&self) -> &HeaderMap {
        self.map()
    }
}

impl std::ops::DerefMut for Headers {
    fn deref_mut(&mut self) -> &mut HeaderMap {
        self.map_mut()
    }
}

/// Iterates like the map (names lowercase, grouped by name), as code written for a `HeaderMap` expects.
impl<'a> IntoIterator for &'a Headers {
    type Item = (&'a HeaderName, &'a HeaderValue);
    type IntoIter = header::Iter<'a, HeaderValue>;

    fn into_iter(self) -> Self::IntoIter {
        self.map().iter()
    }
}

/// Two blocks are equal when they hold the same fields (compared as maps: names in any case, order
/// within a name kept).
impl PartialEq for Headers {
    fn eq(&self, other: &Headers) -> bool {
        self.map() == other.map()
    }
}

impl PartialEq<HeaderMap> for Headers {
    fn eq(&self, other: &HeaderMap) -> bool {
        self.map() == other
    }
}

/// Every comma-separated element of every line of `name`, OWS-trimmed; empty ones included.
pub fn list_elements<'h, 'n, K: FieldKey + ?Sized>(
    headers: &'h Headers,
    name: &'n K,
) -> impl Iterator<Item = &'h [u8]> + use<'h, 'n, K> {
    headers.values(name).flat_map(|v| v.split(|&b| b == b',')).map(|s| s.trim_ascii())
}

/// Whether any line of the comma-separated list field `name` holds `token` (case-insensitive;
/// parameters such as `;q=1` are not stripped).
pub fn has_token<K: FieldKey + ?Sized>(headers: &Headers, name: &K, token: &str) -> bool {
    // One line of one element (`Connection: keep-alive`) is compared whole: splitting it costs
    // more than the answer.
    if let Some(line) = headers.single(name.key().0).filter(|v| !v.contains(&b',')) {
        return line.trim_ascii().eq_ignore_ascii_case(token.as_bytes());
    }
    list_elements(headers, name).any(|t| t.eq_ignore_ascii_case(token.as_bytes()))
}

/// A borrowed block over `name: value` lines, as the parser would index them (for tests).
#[cfg(test)]
pub(crate) fn wire(fields: &[(&str, &str)]) -> Headers {
    let mut bytes = BytesMut::new();
    let mut index = Vec::new();
    for (n, v) in fields {
        let at = bytes.len();
        bytes.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
        let name = at..at + n.len();
        let value = at + n.len() + 2..at + n.len() + 2 + v.len();
        index.push(Field::new(&bytes, name, value, Known::classify(n.as_bytes())));
    }
    Headers::from_wire(bytes.freeze(), index)
}

#[cfg(test)]
#[path = "fields_tests.rs"]
mod tests;
