//! Field names as the proxy looks them up: the [`Known`] fields it reads itself (told apart once,
//! when a head is parsed), and the key types the header methods take (a `HeaderName`, a string,
//! or a `Known` field, which needs no classifying).

use http::header::{self, HeaderName};

/// RFC 9110 §5.6.2 `tchar`, as a table: field names and list tokens are checked byte by byte on
/// every request, and a lookup is one load where the spelled-out test is a dozen compares.
const fn tchars() -> [bool; 256] {
    let mut t = [false; 256];
    let extra = b"!#$%&'*+-.^_`|~";
    let mut i = 0;
    while i < extra.len() {
        t[extra[i] as usize] = true;
        i += 1;
    }
    let mut b = 0;
    while b < 256 {
        t[b] |= (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    t
}
static TCHAR: [bool; 256] = tchars();

/// Whether `b` may appear in a token (a field name, a Transfer-Encoding coding, a protocol name).
pub fn is_tchar(b: u8) -> bool {
    TCHAR[usize::from(b)]
}

/// The fields the proxy reads for framing, routing and persistence, told apart at parse time so
/// that asking for one is a byte compare per field instead of a hash, and asking for an absent one
/// is a bit test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Known {
    /// Any other field.
    Other = 0,
    /// `host`
    Host,
    /// `content-length`
    ContentLength,
    /// `transfer-encoding`
    TransferEncoding,
    /// `connection`
    Connection,
    /// `keep-alive`
    KeepAlive,
    /// `proxy-connection`
    ProxyConnection,
    /// `te`
    Te,
    /// `upgrade`
    Upgrade,
    /// `expect`
    Expect,
    /// `http2-settings`
    Http2Settings,
    /// `trailer`
    Trailer,
}

impl Known {
    /// Classifies a field name as it came (any case).
    pub fn classify(name: &[u8]) -> Known {
        // Length and first letter rule out almost every other name (`Date` vs `host`, `Server` vs
        // `expect`) before a whole comparison: this runs for every field of every head.
        const FIRSTS: &[u8] = b"tehuckp";
        let Some(first) = name.first().map(u8::to_ascii_lowercase) else { return Known::Other };
        if !FIRSTS.contains(&first) {
            return Known::Other;
        }
        let is = |s: &str| s.as_bytes()[0] == first && name.eq_ignore_ascii_case(s.as_bytes());
        match name.len() {
            2 if is("te") => Known::Te,
            4 if is("host") => Known::Host,
            6 if is("expect") => Known::Expect,
            7 if is("upgrade") => Known::Upgrade,
            7 if is("trailer") => Known::Trailer,
            10 if is("connection") => Known::Connection,
            10 if is("keep-alive") => Known::KeepAlive,
            14 if is("content-length") => Known::ContentLength,
            14 if is("http2-settings") => Known::Http2Settings,
            16 if is("proxy-connection") => Known::ProxyConnection,
            17 if is("transfer-encoding") => Known::TransferEncoding,
            _ => Known::Other,
        }
    }

    /// The lowercase name (empty for `Other`).
    pub fn as_str(self) -> &'static str {
        match self {
            Known::Other => "",
            Known::Host => "host",
            Known::ContentLength => "content-length",
            Known::TransferEncoding => "transfer-encoding",
            Known::Connection => "connection",
            Known::KeepAlive => "keep-alive",
            Known::ProxyConnection => "proxy-connection",
            Known::Te => "te",
            Known::Upgrade => "upgrade",
            Known::Expect => "expect",
            Known::Http2Settings => "http2-settings",
            Known::Trailer => "trailer",
        }
    }

    /// The same for a `HeaderName`, which is lowercase already: a plain string match.
    pub fn of(name: &HeaderName) -> Known {
        match name.as_str() {
            "te" => Known::Te,
            "host" => Known::Host,
            "expect" => Known::Expect,
            "upgrade" => Known::Upgrade,
            "trailer" => Known::Trailer,
            "connection" => Known::Connection,
            "keep-alive" => Known::KeepAlive,
            "content-length" => Known::ContentLength,
            "http2-settings" => Known::Http2Settings,
            "proxy-connection" => Known::ProxyConnection,
            "transfer-encoding" => Known::TransferEncoding,
            _ => Known::Other,
        }
    }

    /// Number of variants, `Other` included.
    pub(super) const COUNT: usize = Known::Trailer as usize + 1;

    pub(super) const fn bit(self) -> u16 {
        1 << self as u16
    }

    /// The name as a `HeaderName` (`None` for `Other`), without parsing it.
    pub fn header_name(self) -> Option<&'static HeaderName> {
        static NAMES: [HeaderName; 11] = [
            header::HOST,
            header::CONTENT_LENGTH,
            header::TRANSFER_ENCODING,
            header::CONNECTION,
            HeaderName::from_static("keep-alive"),
            HeaderName::from_static("proxy-connection"),
            header::TE,
            header::UPGRADE,
            header::EXPECT,
            HeaderName::from_static("http2-settings"),
            header::TRAILER,
        ];
        (self as usize).checked_sub(1).map(|i| &NAMES[i])
    }
}

/// A field to look up or remove: a `HeaderName`, a name as a string (any case), or one of the
/// [`Known`] fields, which needs no classifying (the proxy's own lookups on the hot path).
pub trait FieldKey {
    /// Which known field it is (`Other` for the rest) and its name, lowercase unless given as a
    /// string.
    fn key(&self) -> (Known, &str);

    /// The key for a map lookup: a `HeaderName` where there is one, so that the map does not
    /// parse a string again.
    fn map_key(&self) -> MapKey<'_>;
}

/// How a map is asked for a field.
pub enum MapKey<'a> {
    /// By name.
    Name(&'a HeaderName),
    /// By a string the map parses.
    Str(&'a str),
}

impl FieldKey for HeaderName {
    fn key(&self) -> (Known, &str) {
        (Known::of(self), self.as_str())
    }

    fn map_key(&self) -> MapKey<'_> {
        MapKey::Name(self)
    }
}

impl FieldKey for Known {
    fn key(&self) -> (Known, &str) {
        (*self, self.as_str())
    }

    fn map_key(&self) -> MapKey<'_> {
        match self.header_name() {
            Some(n) => MapKey::Name(n),
            None => MapKey::Str(""),
        }
    }
}

impl FieldKey for str {
    fn key(&self) -> (Known, &str) {
        (Known::classify(self.as_bytes()), self)
    }

    fn map_key(&self) -> MapKey<'_> {
        MapKey::Str(self)
    }
}

impl<T: FieldKey + ?Sized> FieldKey for &T {
    fn key(&self) -> (Known, &str) {
        (**self).key()
    }

    fn map_key(&self) -> MapKey<'_> {
        (**self).map_key()
    }
}

/// A field name as the editing methods take it: a `HeaderName`, a reference to one, or a static
/// string (which must be a valid lowercase name, as for `HeaderMap::insert`).
pub trait IntoFieldName {
    /// The name.
    fn into_field_name(self) -> HeaderName;
}

impl IntoFieldName for HeaderName {
    fn into_field_name(self) -> HeaderName {
        self
    }
}

impl IntoFieldName for &HeaderName {
    fn into_field_name(self) -> HeaderName {
        self.clone()
    }
}

impl IntoFieldName for &'static str {
    /// Panics on an invalid name, like `HeaderName::from_static`.
    fn into_field_name(self) -> HeaderName {
        HeaderName::from_static(self)
    }
}
