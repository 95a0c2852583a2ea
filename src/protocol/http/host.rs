//! Host values (RFC 9110 §7.2), checked the same way whichever protocol carried them: the Host
//! field of HTTP/1 and `:authority` of HTTP/2 are the upstream's routing key.

/// Bytes of a `reg-name` (RFC 3986 §3.2.2: unreserved, pct-encoded, sub-delims), as a table: the
/// Host of every request is checked against it.
const REG_NAME: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric();
        b += 1;
    }
    let extra = b"-._~%!$&'()*+,;=";
    let mut i = 0;
    while i < extra.len() {
        t[extra[i] as usize] = true;
        i += 1;
    }
    t
};

/// Whether `v` is a valid Host value: `uri-host [":" port]` (RFC 9110 §7.2) with a non-empty
/// reg-name or IP-literal, no userinfo, and a port of at most 65535.
pub fn valid_host_value(v: &[u8]) -> bool {
    let (host, port) = if v.first() == Some(&b'[') {
        let Some(end) = v.iter().position(|&b| b == b']') else { return false };
        let inner = &v[1..end];
        if inner.is_empty() || !inner.iter().all(|b| b.is_ascii_hexdigit() || b":.".contains(b)) {
            return false;
        }
        v.split_at(end + 1)
    } else {
        let (host, port) = v.split_at(v.iter().position(|&b| b == b':').unwrap_or(v.len()));
        if host.is_empty() || !host.iter().all(|&b| REG_NAME[usize::from(b)]) {
            return false;
        }
        (host, port)
    };
    debug_assert!(!host.is_empty());
    match port {
        [] => true,
        [b':', digits @ ..] => {
            !digits.is_empty()
                && digits.len() <= 5
                && digits.iter().all(u8::is_ascii_digit)
                && digits.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0')) <= 65535
        }
        _ => false,
    }
}
