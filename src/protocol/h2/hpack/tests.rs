//! RFC 7541 Appendix C vectors, decoding errors, and encoder → decoder round trips.

use bytes::BytesMut;

use super::huffman;
use super::{DecodeError, Decoder, Encoder};

fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits.chunks(2).map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap()).collect()
}

type Fields = Vec<(Vec<u8>, Vec<u8>)>;
type Pairs<'a> = &'a [(&'a str, &'a str)];
/// A header block in hex, its fields, then the dynamic table (newest first) and its size.
type Step<'a> = (&'a str, Pairs<'a>, Pairs<'a>, usize);

fn decode(dec: &mut Decoder, block: &[u8]) -> Result<Fields, DecodeError> {
    let mut out = Vec::new();
    let complete = dec.decode(block, |n, v| {
        out.push((n.to_vec(), v.to_vec()));
        Ok(())
    })?;
    assert!(complete);
    Ok(out)
}

fn owned(fields: &[(&str, &str)]) -> Fields {
    fields.iter().map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec())).collect()
}

/// Decodes each block in turn with one decoder, checking the fields and then the dynamic table
/// (newest first) and its size, as Appendix C lists them.
fn story(dec: &mut Decoder, steps: &[Step<'_>]) {
    for (i, &(block, fields, table, size)) in steps.iter().enumerate() {
        assert_eq!(decode(dec, &hex(block)).unwrap(), owned(fields), "step {i}: fields");
        let entries: Fields =
            dec.dynamic_entries().into_iter().map(|(n, v)| (n.to_vec(), v.to_vec())).collect();
        assert_eq!(entries, owned(table), "step {i}: table");
        assert_eq!(dec.dynamic_size(), size, "step {i}: table size");
    }
}

#[test]
fn c2_literal_and_indexed_fields() {
    let key = [("custom-key", "custom-header")];
    let cases: [Step<'_>; 4] = [
        ("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572", &key, &key, 55),
        ("040c 2f73 616d 706c 652f 7061 7468", &[(":path", "/sample/path")], &[], 0),
        ("1008 7061 7373 776f 7264 0673 6563 7265 74", &[("password", "secret")], &[], 0),
        ("82", &[(":method", "GET")], &[], 0),
    ];
    for case in cases {
        story(&mut Decoder::new(4096), &[case]);
    }
}

const AUTHORITY: (&str, &str) = (":authority", "www.example.com");
const NO_CACHE: (&str, &str) = ("cache-control", "no-cache");
const CUSTOM: (&str, &str) = ("custom-key", "custom-value");

fn requests(blocks: [&str; 3]) {
    let get = [(":method", "GET"), (":scheme", "http"), (":path", "/")];
    let third = [(":method", "GET"), (":scheme", "https"), (":path", "/index.html"), AUTHORITY, CUSTOM];
    story(
        &mut Decoder::new(4096),
        &[
            (blocks[0], &[get[0], get[1], get[2], AUTHORITY], &[AUTHORITY], 57),
            (blocks[1], &[get[0], get[1], get[2], AUTHORITY, NO_CACHE], &[NO_CACHE, AUTHORITY], 110),
            (blocks[2], &third, &[CUSTOM, NO_CACHE, AUTHORITY], 164),
        ],
    );
}

#[test]
fn c3_requests_without_huffman() {
    requests([
        "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
        "8286 84be 5808 6e6f 2d63 6163 6865",
        "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
    ]);
}

#[test]
fn c4_requests_with_huffman() {
    requests([
        "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
        "8286 84be 5886 a8eb 1064 9cbf",
        "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
    ]);
}

fn responses(blocks: [&str; 3]) {
    let s302 = (":status", "302");
    let s307 = (":status", "307");
    let private = ("cache-control", "private");
    let date1 = ("date", "Mon, 21 Oct 2013 20:13:21 GMT");
    let date2 = ("date", "Mon, 21 Oct 2013 20:13:22 GMT");
    let location = ("location", "https://www.example.com");
    let gzip = ("content-encoding", "gzip");
    let cookie = ("set-cookie", "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1");
    story(
        &mut Decoder::new(256),
        &[
            (blocks[0], &[s302, private, date1, location], &[location, date1, private, s302], 222),
            (blocks[1], &[s307, private, date1, location], &[s307, location, date1, private], 222),
            (
                blocks[2],
                &[(":status", "200"), private, date2, location, gzip, cookie],
                &[cookie, gzip, date2],
                215,
            ),
        ],
    );
}

#[test]
fn c5_responses_without_huffman_evict() {
    responses([
        "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a
         3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
        "4803 3330 37c1 c0bf",
        "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04
         677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49
         553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31",
    ]);
}

#[test]
fn c6_responses_with_huffman_evict() {
    responses([
        "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e
         919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
        "4883 640e ffc1 c0bf",
        "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7
         821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed
         4ee5 b106 3d50 07",
    ]);
}

#[test]
fn errors() {
    use DecodeError::*;
    let cases: [(&str, &[u8], DecodeError); 15] = [
        ("index 0", b"\x80", IndexZero),
        ("index past static table", b"\xbe", IndexOutOfRange),
        ("literal name index past tables", b"\x7f\x00\x01a", IndexOutOfRange),
        ("size update above limit", b"\x3f\xe2\x1f", TableSizeTooLarge),
        ("size update after a field", b"\x82\x20", TableSizeUpdateLate),
        ("huffman padding of 8 bits ('&' is 0xf8)", b"\x00\x01a\x82\xf8\xff", HuffmanPaddingTooLong),
        ("huffman padding of 11 bits", b"\x00\x01a\x82\x1f\xff", HuffmanPaddingTooLong),
        ("huffman padding with a zero bit", b"\x00\x01a\x81\x1e", HuffmanPaddingNotEos),
        ("EOS in a huffman string", b"\x00\x01a\x84\xff\xff\xff\xff", HuffmanEos),
        ("truncated integer", b"\xff\x80", IntegerTruncated),
        ("integer over 2^32", b"\xff\x80\x80\x80\x80\x10", IntegerOverflow),
        ("six continuation bytes", b"\xff\x80\x80\x80\x80\x80\x00", IntegerOverflow),
        ("string past the end", b"\x00\x03ab", StringPastEnd),
        ("value past the end", b"\x00\x01a\x05abcd", StringPastEnd),
        ("string length missing", b"\x00", IntegerTruncated),
    ];
    for (what, block, want) in cases {
        let got = Decoder::new(4096).decode(block, |_, _| Ok(()));
        assert_eq!(got, Err(want), "{what}");
    }
}

#[test]
fn size_updates() {
    // 0x3f 0xe1 0x1f is 4096: allowed at the limit; several in a row before the first field.
    let mut dec = Decoder::new(4096);
    assert_eq!(decode(&mut dec, b"\x3f\xe1\x1f\x20\x3f\xe1\x1f\x82").unwrap(), owned(&[(":method", "GET")]));
    // An update to 0 empties the table; index 62 is then out of range.
    let mut dec = Decoder::new(4096);
    decode(&mut dec, &hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572")).unwrap();
    assert_eq!(decode(&mut dec, b"\xbe").unwrap(), owned(&[("custom-key", "custom-header")]));
    assert_eq!(decode(&mut dec, b"\x20").unwrap(), owned(&[]));
    assert_eq!((dec.dynamic_entries(), dec.dynamic_size()), (vec![], 0));
    assert_eq!(decode(&mut dec, b"\xbe"), Err(DecodeError::IndexOutOfRange));
    // An entry larger than the table empties it and is not added, without an error.
    let mut dec = Decoder::new(40);
    decode(&mut dec, b"\x40\x01a\x01b").unwrap();
    assert_eq!(dec.dynamic_size(), 34);
    assert_eq!(decode(&mut dec, b"\x40\x01a\x09bbbbbbbbb").unwrap(), owned(&[("a", "bbbbbbbbb")]));
    assert_eq!((dec.dynamic_entries(), dec.dynamic_size()), (vec![], 0));
}

/// An `emit` that refuses must not leave the dynamic table behind the peer's.
#[test]
fn refused_emit_keeps_table_in_sync() {
    let block = hex("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d");
    let mut dec = Decoder::new(4096);
    let mut calls = 0;
    let complete = dec.decode(&block, |_, _| {
        calls += 1;
        Err(())
    });
    assert_eq!((complete, calls), (Ok(false), 1));
    assert_eq!(dec.dynamic_size(), 57);
    assert_eq!(decode(&mut dec, b"\xbe").unwrap(), owned(&[(":authority", "www.example.com")]));
}

/// Names and values with a literal name from the dynamic table, indexed by a later literal.
#[test]
fn dynamic_name_reference() {
    let mut dec = Decoder::new(4096);
    decode(&mut dec, b"\x40\x01a\x01b").unwrap();
    // Incremental indexing with name index 62 ("a"), then never-indexed with the same name, now 63.
    let fields = decode(&mut dec, b"\x7e\x01c\x1f\x30\x01d").unwrap();
    assert_eq!(fields, owned(&[("a", "c"), ("a", "d")]));
    assert_eq!(dec.dynamic_entries(), vec![(&b"a"[..], &b"c"[..]), (b"a", b"b")]);
}

#[test]
fn huffman_every_byte_round_trips() {
    let all: Vec<u8> = (0..=255).collect();
    for input in [all.clone(), all.iter().rev().copied().collect(), b"a".to_vec(), Vec::new()] {
        let mut out = Vec::new();
        huffman::decode(&huffman::encode(&input), &mut out).unwrap();
        assert_eq!(out, input);
    }
}

#[test]
fn huffman_each_code_decodes_alone() {
    for (byte, &(code, len)) in huffman::CODES[..256].iter().enumerate() {
        // Pad the code with ones to a whole number of bytes.
        let pad = (8 - len as u32 % 8) % 8;
        let bits = u64::from(code) << pad | ((1 << pad) - 1);
        let n = (len as usize).div_ceil(8);
        let wire: Vec<u8> = (0..n).rev().map(|i| (bits >> (8 * i)) as u8).collect();
        let mut out = Vec::new();
        huffman::decode(&wire, &mut out).unwrap();
        assert_eq!(out, [byte as u8], "byte {byte}");
    }
}

#[test]
fn encoder_round_trip() {
    let obs_text: Vec<u8> = (0x80..=0xff).collect();
    let long = vec![b'v'; 300];
    let mut fields: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (b"content-length".to_vec(), b"0".to_vec()),
        (b"content-type".to_vec(), b"text/html; charset=utf-8".to_vec()),
        (b"date".to_vec(), b"Tue, 08 Dec 2026 00:00:00 GMT".to_vec()),
        (b"server".to_vec(), Vec::new()),
        (b"accept-encoding".to_vec(), b"gzip, deflate".to_vec()),
        (b"accept-encoding".to_vec(), b"br".to_vec()),
        (b"vary".to_vec(), b"".to_vec()),
        (b"x-obs".to_vec(), obs_text),
        (b"x-empty".to_vec(), Vec::new()),
        (b"x-long".to_vec(), long),
        (vec![b'n'; 200], b"long name".to_vec()),
        (b"set-cookie".to_vec(), b"a=1".to_vec()),
        (b"set-cookie".to_vec(), b"b=2".to_vec()),
    ];
    fields.extend((0..100).map(|i| (format!("x-field-{i}").into_bytes(), format!("value {i}").into_bytes())));
    let mut enc = Encoder::new();
    let mut dec = Decoder::new(4096);
    for (code, wire_len) in [(200, 1), (404, 1), (599, 5), (103, 5), (304, 1)] {
        let mut dst = BytesMut::new();
        enc.status(code, &mut dst);
        assert_eq!(dst.len(), wire_len, "{code}");
        for (name, value) in &fields {
            enc.field(name, value, &mut dst);
        }
        let mut want = vec![(b":status".to_vec(), code.to_string().into_bytes())];
        want.extend(fields.iter().cloned());
        assert_eq!(decode(&mut dec, &dst).unwrap(), want, "{code}");
        assert_eq!(dec.dynamic_size(), 0, "the encoder never indexes");
    }
}
