//! Header block decoding (RFC 7541 §6) with the dynamic table (§4).

use std::collections::VecDeque;
use std::fmt;

use super::huffman;
use super::table::STATIC;

/// Why a header block could not be decoded. Every cause is a connection-level COMPRESSION_ERROR
/// (RFC 9113 §4.3): the dynamic table can no longer be trusted to match the peer's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The block ends inside an integer.
    IntegerTruncated,
    /// An integer above 2^32 - 1, or one spending more than 5 continuation bytes.
    IntegerOverflow,
    /// Index 0 (RFC 7541 §6.1: "MUST be treated as a decoding error").
    IndexZero,
    /// An index past the static and dynamic tables.
    IndexOutOfRange,
    /// A dynamic table size update above the SETTINGS_HEADER_TABLE_SIZE we announced (§6.3).
    TableSizeTooLarge,
    /// A dynamic table size update after the first field of the block (§4.2).
    TableSizeUpdateLate,
    /// A string literal longer than what is left of the block.
    StringPastEnd,
    /// Huffman padding longer than 7 bits (§5.2).
    HuffmanPaddingTooLong,
    /// Huffman padding that is not the most significant bits of EOS (§5.2).
    HuffmanPaddingNotEos,
    /// The EOS symbol inside a Huffman string (§5.2).
    HuffmanEos,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DecodeError::IntegerTruncated => "hpack: block ends inside an integer",
            DecodeError::IntegerOverflow => "hpack: integer too large",
            DecodeError::IndexZero => "hpack: index 0",
            DecodeError::IndexOutOfRange => "hpack: index past the static and dynamic tables",
            DecodeError::TableSizeTooLarge => "hpack: dynamic table size update above the announced limit",
            DecodeError::TableSizeUpdateLate => "hpack: dynamic table size update after a field",
            DecodeError::StringPastEnd => "hpack: string literal past the end of the block",
            DecodeError::HuffmanPaddingTooLong => "hpack: huffman padding longer than 7 bits",
            DecodeError::HuffmanPaddingNotEos => "hpack: huffman padding is not a prefix of EOS",
            DecodeError::HuffmanEos => "hpack: EOS symbol inside a huffman string",
        })
    }
}

impl std::error::Error for DecodeError {}

/// RFC 7541 §4.1: an entry's size counts 32 bytes of overhead on top of name and value.
const ENTRY_OVERHEAD: usize = 32;

/// Continuation bytes carry 7 bits each; 5 of them cover any value up to 2^32 - 1, so a sixth can
/// only be padding or an attack.
const MAX_CONTINUATION_BYTES: usize = 5;

/// One dynamic table entry: name and value in one allocation.
struct Entry {
    data: Box<[u8]>,
    name_len: usize,
}

impl Entry {
    fn name(&self) -> &[u8] {
        &self.data[..self.name_len]
    }

    fn value(&self) -> &[u8] {
        &self.data[self.name_len..]
    }

    fn size(&self) -> usize {
        self.data.len() + ENTRY_OVERHEAD
    }
}

/// Where a decoded string lives until the field is emitted: kept as offsets because the scratch
/// buffer may still grow (and move) while the value after the name is decoded.
#[derive(Clone, Copy)]
enum Str {
    Block(usize, usize),
    Scratch(usize, usize),
}

/// A field's name: a table index (checked) or a literal.
#[derive(Clone, Copy)]
enum Name {
    Indexed(usize),
    Literal(Str),
}

/// HPACK decoder for one connection's request header blocks.
pub struct Decoder {
    /// Newest entry first, so dynamic index 62 is `entries[0]`.
    entries: VecDeque<Entry>,
    /// Sum of `Entry::size` over `entries`.
    size: usize,
    /// Current maximum, changed by size updates.
    max_size: usize,
    /// The limit we announced; size updates above it are errors.
    max_allowed: usize,
    /// Huffman output, reused across fields and blocks to avoid an allocation per string.
    scratch: Vec<u8>,
}

/// Sizes only: table entries are request headers, which may hold credentials.
impl fmt::Debug for Decoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decoder")
            .field("entries", &self.entries.len())
            .field("size", &self.size)
            .field("max_size", &self.max_size)
            .field("max_allowed", &self.max_allowed)
            .finish()
    }
}

impl Decoder {
    /// `max_table_size`: the SETTINGS_HEADER_TABLE_SIZE we announce (the largest dynamic table
    /// size update the peer may ask for). Starts with that size.
    pub fn new(max_table_size: usize) -> Self {
        Decoder {
            entries: VecDeque::new(),
            size: 0,
            max_size: max_table_size,
            max_allowed: max_table_size,
            scratch: Vec::new(),
        }
    }

    /// Decodes one complete header block (HEADERS + CONTINUATION payloads already joined),
    /// calling `emit(name, value)` for each field in order. The slices are only valid during the
    /// call. `emit` returning Err(()) stops emitting, but the rest of the block is still decoded so
    /// that the dynamic table stays in step with the peer's; the result is then Ok(false).
    /// Ok(true) means every field was emitted.
    pub fn decode<F>(&mut self, block: &[u8], mut emit: F) -> Result<bool, DecodeError>
    where
        F: FnMut(&[u8], &[u8]) -> Result<(), ()>,
    {
        let mut cur = Cursor { buf: block, pos: 0 };
        let mut emitting = true;
        let mut field_seen = false;
        while let Some(&first) = block.get(cur.pos) {
            if first & 0x80 != 0 {
                let (name, value) = self.get(cur.int(7)?)?;
                emitting = emitting && emit(name, value).is_ok();
            } else if first & 0xe0 == 0x20 {
                if field_seen {
                    return Err(DecodeError::TableSizeUpdateLate);
                }
                let size = cur.int(5)?;
                if size > self.max_allowed {
                    return Err(DecodeError::TableSizeTooLarge);
                }
                self.max_size = size;
                self.evict_to(size);
                // Not a field: RFC 7541 §4.2 lets several updates open a block.
                continue;
            } else {
                // 01xxxxxx: incremental indexing, 6-bit name index; 0000xxxx (without indexing)
                // and 0001xxxx (never indexed) share a 4-bit name index. For a receiver that
                // does not re-encode, never-indexed needs no other treatment.
                let index = first & 0x40 != 0;
                let (name, value) = self.literal(&mut cur, if index { 6 } else { 4 })?;
                if index {
                    let name = self.name(block, name);
                    let value = self.str(block, value);
                    let mut data = Vec::with_capacity(name.len() + value.len());
                    data.extend_from_slice(name);
                    data.extend_from_slice(value);
                    let entry = Entry { data: data.into_boxed_slice(), name_len: name.len() };
                    emitting = emitting && emit(entry.name(), entry.value()).is_ok();
                    self.insert(entry);
                } else {
                    emitting = emitting && emit(self.name(block, name), self.str(block, value)).is_ok();
                }
            }
            field_seen = true;
        }
        Ok(emitting)
    }

    /// Reads a literal field's name (index or string) and value, leaving both where they are.
    fn literal(&mut self, cur: &mut Cursor<'_>, prefix: u8) -> Result<(Name, Str), DecodeError> {
        self.scratch.clear();
        let name = match cur.int(prefix)? {
            0 => Name::Literal(cur.string(&mut self.scratch)?),
            i => {
                self.get(i)?;
                Name::Indexed(i)
            }
        };
        Ok((name, cur.string(&mut self.scratch)?))
    }

    fn name<'a>(&'a self, block: &'a [u8], name: Name) -> &'a [u8] {
        match name {
            // Checked by `literal`, and nothing has changed the table since.
            Name::Indexed(i) => self.get(i).map_or(&[][..], |(n, _)| n),
            Name::Literal(s) => self.str(block, s),
        }
    }

    fn str<'a>(&'a self, block: &'a [u8], s: Str) -> &'a [u8] {
        match s {
            Str::Block(start, end) => &block[start..end],
            Str::Scratch(start, end) => &self.scratch[start..end],
        }
    }

    /// The field at a wire index: static table first, then dynamic (RFC 7541 §2.3.3).
    fn get(&self, index: usize) -> Result<(&[u8], &[u8]), DecodeError> {
        match index {
            0 => Err(DecodeError::IndexZero),
            i if i <= STATIC.len() => Ok(STATIC[i - 1]),
            i => {
                let entry = self.entries.get(i - STATIC.len() - 1).ok_or(DecodeError::IndexOutOfRange)?;
                Ok((entry.name(), entry.value()))
            }
        }
    }

    /// RFC 7541 §4.4: evict until the entry fits; an entry larger than the whole table empties it
    /// and is not added (not an error).
    fn insert(&mut self, entry: Entry) {
        let size = entry.size();
        if size > self.max_size {
            self.entries.clear();
            self.size = 0;
            return;
        }
        self.evict_to(self.max_size - size);
        self.size += size;
        self.entries.push_front(entry);
    }

    fn evict_to(&mut self, limit: usize) {
        while self.size > limit {
            match self.entries.pop_back() {
                Some(old) => self.size -= old.size(),
                None => break,
            }
        }
    }

    /// The dynamic table, newest first: for tests that follow RFC 7541 Appendix C.
    #[cfg(test)]
    pub(super) fn dynamic_entries(&self) -> Vec<(&[u8], &[u8])> {
        self.entries.iter().map(|e| (e.name(), e.value())).collect()
    }

    /// The dynamic table's size as RFC 7541 §4.1 counts it.
    #[cfg(test)]
    pub(super) fn dynamic_size(&self) -> usize {
        self.size
    }
}

/// Reading position in a header block.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn byte(&mut self) -> Result<u8, DecodeError> {
        let b = *self.buf.get(self.pos).ok_or(DecodeError::IntegerTruncated)?;
        self.pos += 1;
        Ok(b)
    }

    /// An integer with an N-bit prefix (RFC 7541 §5.1); the bits above the prefix are ignored.
    fn int(&mut self, prefix: u8) -> Result<usize, DecodeError> {
        let mask = (1u8 << prefix) - 1;
        let first = self.byte()? & mask;
        if first < mask {
            return Ok(usize::from(first));
        }
        let mut value = u64::from(mask);
        for i in 0..MAX_CONTINUATION_BYTES {
            let b = self.byte()?;
            value += u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return u32::try_from(value).map(|v| v as usize).map_err(|_| DecodeError::IntegerOverflow);
            }
        }
        Err(DecodeError::IntegerOverflow)
    }

    /// A string literal (RFC 7541 §5.2): raw bytes stay in the block, Huffman output goes to the
    /// end of `scratch`.
    fn string(&mut self, scratch: &mut Vec<u8>) -> Result<Str, DecodeError> {
        let huffman = self.buf.get(self.pos).is_some_and(|b| b & 0x80 != 0);
        let len = self.int(7)?;
        let start = self.pos;
        let end =
            start.checked_add(len).filter(|&e| e <= self.buf.len()).ok_or(DecodeError::StringPastEnd)?;
        self.pos = end;
        if !huffman {
            return Ok(Str::Block(start, end));
        }
        let from = scratch.len();
        huffman::decode(&self.buf[start..end], scratch)?;
        Ok(Str::Scratch(from, scratch.len()))
    }
}
