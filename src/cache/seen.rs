//! Which of the fields the cache policy reads a head has, found in one pass over its names: a
//! lookup by name scans every field of a head, and the policy asks about a dozen names of
//! responses that mostly have none of them.

use crate::protocol::http::Headers;

/// A set of the fields below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Seen(u16);

/// The names, each with its bit.
const NAMES: [&str; 8] =
    ["cache-control", "pragma", "expires", "content-range", "set-cookie", "vary", "etag", "last-modified"];

impl Seen {
    /// `cache-control`
    pub(crate) const CACHE_CONTROL: Seen = Seen(1);
    /// `pragma`
    pub(crate) const PRAGMA: Seen = Seen(1 << 1);
    /// `expires`
    pub(crate) const EXPIRES: Seen = Seen(1 << 2);
    /// `content-range`
    pub(crate) const CONTENT_RANGE: Seen = Seen(1 << 3);
    /// `set-cookie`
    pub(crate) const SET_COOKIE: Seen = Seen(1 << 4);
    /// `vary`
    pub(crate) const VARY: Seen = Seen(1 << 5);
    /// `etag`
    pub(crate) const ETAG: Seen = Seen(1 << 6);
    /// `last-modified`
    pub(crate) const LAST_MODIFIED: Seen = Seen(1 << 7);

    /// The fields of `h` among these names.
    pub(crate) fn of(h: &Headers) -> Seen {
        let mut bits = 0u16;
        h.any_name(|n| {
            for (i, name) in NAMES.iter().enumerate() {
                if n.len() == name.len() && n.eq_ignore_ascii_case(name.as_bytes()) {
                    bits |= 1 << i;
                    break;
                }
            }
            false
        });
        Seen(bits)
    }

    /// Whether `f` is among them.
    pub(crate) fn has(self, f: Seen) -> bool {
        self.0 & f.0 != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::http::fields::wire;

    #[test]
    fn finds_each_name_in_any_case() {
        let s = Seen::of(&wire(&[("ETag", "\"a\""), ("CACHE-CONTROL", "x"), ("X-Other", "y")]));
        assert!(s.has(Seen::ETAG) && s.has(Seen::CACHE_CONTROL));
        assert!(!s.has(Seen::VARY) && !s.has(Seen::EXPIRES) && !s.has(Seen::SET_COOKIE));
    }
}
