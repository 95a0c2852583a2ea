//! Content-Length values (RFC 9110 §8.6), the same for both protocols: `1*DIGIT` per list
//! element, identical values collapse into one, anything else is an error.

use http::header::{HeaderValue, CONTENT_LENGTH};

use super::fields::{list_elements, Headers};
use super::names::Known;

/// The one length the fields announce: `Ok(None)` without any, `Err` with a reason when a value is
/// no number, overflows, or differs from another.
pub fn content_length(headers: &Headers) -> Result<Option<u64>, &'static str> {
    // One line of up to 19 digits (no list, no overflow) is read straight: nearly every message.
    if let Some(line) = headers.single(Known::ContentLength) {
        if (1..=19).contains(&line.len()) && line.iter().all(u8::is_ascii_digit) {
            return Ok(Some(line.iter().fold(0, |n, &d| n * 10 + u64::from(d - b'0'))));
        }
    }
    list_length(headers)
}

/// [`content_length`] of lists, repeated lines and invalid values. Apart, so that the common case
/// does not pay for this one's frame.
#[cold]
#[inline(never)]
fn list_length(headers: &Headers) -> Result<Option<u64>, &'static str> {
    let mut found = None;
    for element in list_elements(headers, &Known::ContentLength) {
        // Parsed by hand: u64::from_str accepts a leading '+'.
        if element.is_empty() || !element.iter().all(u8::is_ascii_digit) {
            return Err("invalid Content-Length");
        }
        let n = element
            .iter()
            .try_fold(0u64, |acc, &d| acc.checked_mul(10)?.checked_add(u64::from(d - b'0')))
            .ok_or("Content-Length overflow")?;
        match found {
            Some(prev) if prev != n => return Err("conflicting Content-Length values"),
            _ => found = Some(n),
        }
    }
    Ok(found)
}

/// The length a head announces, when it announces exactly one valid length. For heads hooks may
/// have edited.
pub fn declared_length(headers: &Headers) -> Option<u64> {
    content_length(headers).ok().flatten()
}

/// Whether the fields say `Content-Length: n` exactly once, in canonical form.
pub fn says_length(headers: &Headers, n: u64) -> bool {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    let mut rest = n;
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    headers.single(Known::ContentLength) == Some(&digits[start..])
}

/// Sets `Content-Length: n`. A head that already says exactly that (a proxied message usually
/// does) is left alone: a new value costs an allocation and a formatting per message.
pub fn set_content_length(headers: &mut Headers, n: u64) {
    if !says_length(headers, n) {
        headers.insert(CONTENT_LENGTH, HeaderValue::from(n));
    }
}
