//! Huffman decoding of HPACK string literals (RFC 7541 §5.2, code in Appendix B).
//!
//! The code is canonical: the codes of one bit length are consecutive integers. So a symbol is
//! found by checking, per length, whether the next `len` bits fall in that length's range, and one
//! 256-entry table answers the common case (codes of at most 8 bits: letters, digits, most
//! punctuation) with a single lookup. All tables are built at compile time.

use super::decoder::DecodeError;

/// (code, bit length) for bytes 0..=255, then EOS (256): RFC 7541 Appendix B.
#[rustfmt::skip]
pub(super) const CODES: [(u32, u8); 257] = [
    (0x1ff8, 13), (0x7fffd8, 23), (0xfffffe2, 28), (0xfffffe3, 28), (0xfffffe4, 28), (0xfffffe5, 28),
    (0xfffffe6, 28), (0xfffffe7, 28), (0xfffffe8, 28), (0xffffea, 24), (0x3ffffffc, 30), (0xfffffe9, 28),
    (0xfffffea, 28), (0x3ffffffd, 30), (0xfffffeb, 28), (0xfffffec, 28), (0xfffffed, 28), (0xfffffee, 28),
    (0xfffffef, 28), (0xffffff0, 28), (0xffffff1, 28), (0xffffff2, 28), (0x3ffffffe, 30), (0xffffff3, 28),
    (0xffffff4, 28), (0xffffff5, 28), (0xffffff6, 28), (0xffffff7, 28), (0xffffff8, 28), (0xffffff9, 28),
    (0xffffffa, 28), (0xffffffb, 28), (0x14, 6), (0x3f8, 10), (0x3f9, 10), (0xffa, 12), (0x1ff9, 13),
    (0x15, 6), (0xf8, 8), (0x7fa, 11), (0x3fa, 10), (0x3fb, 10), (0xf9, 8), (0x7fb, 11), (0xfa, 8), (0x16, 6),
    (0x17, 6), (0x18, 6), (0x0, 5), (0x1, 5), (0x2, 5), (0x19, 6), (0x1a, 6), (0x1b, 6), (0x1c, 6), (0x1d, 6),
    (0x1e, 6), (0x1f, 6), (0x5c, 7), (0xfb, 8), (0x7ffc, 15), (0x20, 6), (0xffb, 12), (0x3fc, 10),
    (0x1ffa, 13), (0x21, 6), (0x5d, 7), (0x5e, 7), (0x5f, 7), (0x60, 7), (0x61, 7), (0x62, 7), (0x63, 7),
    (0x64, 7), (0x65, 7), (0x66, 7), (0x67, 7), (0x68, 7), (0x69, 7), (0x6a, 7), (0x6b, 7), (0x6c, 7),
    (0x6d, 7), (0x6e, 7), (0x6f, 7), (0x70, 7), (0x71, 7), (0x72, 7), (0xfc, 8), (0x73, 7), (0xfd, 8),
    (0x1ffb, 13), (0x7fff0, 19), (0x1ffc, 13), (0x3ffc, 14), (0x22, 6), (0x7ffd, 15), (0x3, 5), (0x23, 6),
    (0x4, 5), (0x24, 6), (0x5, 5), (0x25, 6), (0x26, 6), (0x27, 6), (0x6, 5), (0x74, 7), (0x75, 7), (0x28, 6),
    (0x29, 6), (0x2a, 6), (0x7, 5), (0x2b, 6), (0x76, 7), (0x2c, 6), (0x8, 5), (0x9, 5), (0x2d, 6), (0x77, 7),
    (0x78, 7), (0x79, 7), (0x7a, 7), (0x7b, 7), (0x7ffe, 15), (0x7fc, 11), (0x3ffd, 14), (0x1ffd, 13),
    (0xffffffc, 28), (0xfffe6, 20), (0x3fffd2, 22), (0xfffe7, 20), (0xfffe8, 20), (0x3fffd3, 22),
    (0x3fffd4, 22), (0x3fffd5, 22), (0x7fffd9, 23), (0x3fffd6, 22), (0x7fffda, 23), (0x7fffdb, 23),
    (0x7fffdc, 23), (0x7fffdd, 23), (0x7fffde, 23), (0xffffeb, 24), (0x7fffdf, 23), (0xffffec, 24),
    (0xffffed, 24), (0x3fffd7, 22), (0x7fffe0, 23), (0xffffee, 24), (0x7fffe1, 23), (0x7fffe2, 23),
    (0x7fffe3, 23), (0x7fffe4, 23), (0x1fffdc, 21), (0x3fffd8, 22), (0x7fffe5, 23), (0x3fffd9, 22),
    (0x7fffe6, 23), (0x7fffe7, 23), (0xffffef, 24), (0x3fffda, 22), (0x1fffdd, 21), (0xfffe9, 20),
    (0x3fffdb, 22), (0x3fffdc, 22), (0x7fffe8, 23), (0x7fffe9, 23), (0x1fffde, 21), (0x7fffea, 23),
    (0x3fffdd, 22), (0x3fffde, 22), (0xfffff0, 24), (0x1fffdf, 21), (0x3fffdf, 22), (0x7fffeb, 23),
    (0x7fffec, 23), (0x1fffe0, 21), (0x1fffe1, 21), (0x3fffe0, 22), (0x1fffe2, 21), (0x7fffed, 23),
    (0x3fffe1, 22), (0x7fffee, 23), (0x7fffef, 23), (0xfffea, 20), (0x3fffe2, 22), (0x3fffe3, 22),
    (0x3fffe4, 22), (0x7ffff0, 23), (0x3fffe5, 22), (0x3fffe6, 22), (0x7ffff1, 23), (0x3ffffe0, 26),
    (0x3ffffe1, 26), (0xfffeb, 20), (0x7fff1, 19), (0x3fffe7, 22), (0x7ffff2, 23), (0x3fffe8, 22),
    (0x1ffffec, 25), (0x3ffffe2, 26), (0x3ffffe3, 26), (0x3ffffe4, 26), (0x7ffffde, 27), (0x7ffffdf, 27),
    (0x3ffffe5, 26), (0xfffff1, 24), (0x1ffffed, 25), (0x7fff2, 19), (0x1fffe3, 21), (0x3ffffe6, 26),
    (0x7ffffe0, 27), (0x7ffffe1, 27), (0x3ffffe7, 26), (0x7ffffe2, 27), (0xfffff2, 24), (0x1fffe4, 21),
    (0x1fffe5, 21), (0x3ffffe8, 26), (0x3ffffe9, 26), (0xffffffd, 28), (0x7ffffe3, 27), (0x7ffffe4, 27),
    (0x7ffffe5, 27), (0xfffec, 20), (0xfffff3, 24), (0xfffed, 20), (0x1fffe6, 21), (0x3fffe9, 22),
    (0x1fffe7, 21), (0x1fffe8, 21), (0x7ffff3, 23), (0x3fffea, 22), (0x3fffeb, 22), (0x1ffffee, 25),
    (0x1ffffef, 25), (0xfffff4, 24), (0xfffff5, 24), (0x3ffffea, 26), (0x7ffff4, 23), (0x3ffffeb, 26),
    (0x7ffffe6, 27), (0x3ffffec, 26), (0x3ffffed, 26), (0x7ffffe7, 27), (0x7ffffe8, 27), (0x7ffffe9, 27),
    (0x7ffffea, 27), (0x7ffffeb, 27), (0xffffffe, 28), (0x7ffffec, 27), (0x7ffffed, 27), (0x7ffffee, 27),
    (0x7ffffef, 27), (0x7fffff0, 27), (0x3ffffee, 26), (0x3fffffff, 30),
];

const EOS: u16 = 256;
const MAX_LEN: usize = 30;
/// Bits looked up at once by the fast table.
const FAST_BITS: u32 = 8;
/// A fast-table entry: bit length << 9 | symbol; 0 when the code is longer than FAST_BITS.
const FAST_LEN_SHIFT: u16 = 9;

struct Tables {
    /// Smallest code of each length, and how many codes have that length.
    first: [u32; MAX_LEN + 1],
    count: [u32; MAX_LEN + 1],
    /// Where the symbols of each length start in `symbols`.
    offset: [u16; MAX_LEN + 1],
    /// Symbols ordered by (length, code).
    symbols: [u16; 257],
    fast: [u16; 1 << FAST_BITS],
}

/// Builds the decoding tables; a code table that is not canonical fails the build here rather
/// than decoding wrongly at run time.
const fn build() -> Tables {
    let mut t = Tables {
        first: [u32::MAX; MAX_LEN + 1],
        count: [0; MAX_LEN + 1],
        offset: [0; MAX_LEN + 1],
        symbols: [u16::MAX; 257],
        fast: [0; 1 << FAST_BITS],
    };
    let mut s = 0;
    while s < CODES.len() {
        let (code, len) = CODES[s];
        let len = len as usize;
        t.count[len] += 1;
        if code < t.first[len] {
            t.first[len] = code;
        }
        s += 1;
    }
    let mut len = 1;
    let mut next = 0u16;
    while len <= MAX_LEN {
        t.offset[len] = next;
        next += t.count[len] as u16;
        len += 1;
    }
    s = 0;
    while s < CODES.len() {
        let (code, len) = CODES[s];
        let len = len as usize;
        let rank = code - t.first[len];
        assert!(rank < t.count[len], "codes of one length are not consecutive");
        let slot = t.offset[len] as usize + rank as usize;
        assert!(t.symbols[slot] == u16::MAX, "two symbols share a code");
        t.symbols[slot] = s as u16;
        if len as u32 <= FAST_BITS {
            let spare = FAST_BITS - len as u32;
            let base = (code << spare) as usize;
            let mut j = 0;
            while j < 1 << spare {
                t.fast[base + j] = (len as u16) << FAST_LEN_SHIFT | s as u16;
                j += 1;
            }
        }
        s += 1;
    }
    t
}

static TABLES: Tables = build();

/// The symbol whose code starts the left-aligned 32-bit `window`, and its length. Forced inline:
/// it runs once per symbol, and a call costs about as much as the fast-table lookup itself.
#[inline(always)]
fn lookup(window: u32) -> (u16, u32) {
    let fast = TABLES.fast[(window >> (32 - FAST_BITS)) as usize];
    if fast != 0 {
        return (fast & ((1 << FAST_LEN_SHIFT) - 1), u32::from(fast >> FAST_LEN_SHIFT));
    }
    let mut len = FAST_BITS as usize + 1;
    while len <= MAX_LEN {
        let rank = (window >> (32 - len)).wrapping_sub(TABLES.first[len]);
        if rank < TABLES.count[len] {
            return (TABLES.symbols[TABLES.offset[len] as usize + rank as usize], len as u32);
        }
        len += 1;
    }
    // The code is complete (every bit string starts with some code), so this is unreachable;
    // EOS is the answer that makes the caller reject the string if it ever were reached.
    (EOS, MAX_LEN as u32)
}

/// Appends the decoding of `src` to `dst`. Errors: EOS inside the string, padding longer than
/// 7 bits, padding that is not a prefix of EOS (all ones) — RFC 7541 §5.2.
pub(super) fn decode(src: &[u8], dst: &mut Vec<u8>) -> Result<(), DecodeError> {
    // Codes are at least 5 bits long, so the output is at most 8/5 of the input.
    dst.reserve(src.len() * 8 / 5 + 1);
    // The low `nbits` bits of `acc` are unread input; higher bits are stale and get shifted out.
    let mut acc: u64 = 0;
    let mut nbits: u32 = 0;
    let mut rest = src;
    loop {
        while nbits <= 56 {
            let Some((&byte, tail)) = rest.split_first() else { break };
            acc = acc << 8 | u64::from(byte);
            nbits += 8;
            rest = tail;
        }
        // With 32 bits buffered, no code can run past the input: the loop needs no end checks.
        while nbits >= 32 {
            let (symbol, len) = lookup((acc >> (nbits - 32)) as u32);
            if symbol == EOS {
                return Err(DecodeError::HuffmanEos);
            }
            dst.push(symbol as u8);
            nbits -= len;
        }
        if rest.is_empty() {
            return decode_tail(acc, nbits, dst);
        }
    }
}

/// The last bits of a string, fewer than 32: codes, then at most 7 bits of EOS prefix.
fn decode_tail(acc: u64, mut nbits: u32, dst: &mut Vec<u8>) -> Result<(), DecodeError> {
    while nbits > 0 {
        // Zero-filled past the end of input: a code longer than what is left marks the padding.
        let (symbol, len) = lookup((acc << (32 - nbits)) as u32);
        if len > nbits {
            let ones = (1u64 << nbits) - 1;
            if nbits > 7 {
                return Err(DecodeError::HuffmanPaddingTooLong);
            }
            if acc & ones != ones {
                return Err(DecodeError::HuffmanPaddingNotEos);
            }
            return Ok(());
        }
        if symbol == EOS {
            return Err(DecodeError::HuffmanEos);
        }
        dst.push(symbol as u8);
        nbits -= len;
    }
    Ok(())
}

#[cfg(test)]
pub(super) fn encode(src: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut acc, mut nbits) = (0u64, 0u32);
    for &b in src {
        let (code, len) = CODES[b as usize];
        acc = acc << len | u64::from(code);
        nbits += u32::from(len);
        while nbits >= 8 {
            nbits -= 8;
            out.push((acc >> nbits) as u8);
        }
    }
    if nbits > 0 {
        out.push((acc << (8 - nbits)) as u8 | (0xff >> nbits));
    }
    out
}
