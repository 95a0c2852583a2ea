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
/// reg-name or IP-literal, no userinfo, and a port of at most 65535. One pass over the bytes: it
/// runs twice for every request (at intake and as the request leaves).
pub fn valid_host_value(v: &[u8]) -> bool {
    let port = if v.first() == Some(&b'[') {
        let Some(end) = v.iter().position(|&b| b == b']') else { return false };
        let inner = &v[1..end];
        if inner.is_empty() || !inner.iter().all(|b| b.is_ascii_hexdigit() || b":.".contains(b)) {
            return false;
        }
        &v[end + 1..]
    } else {
        // `:` is no reg-name byte, so the name ends at the port or at the first bad byte (which
        // the port check then refuses).
        let name = v.iter().take_while(|&&b| REG_NAME[usize::from(b)]).count();
        if name == 0 {
            return false;
        }
        &v[name..]
    };
    match port {
        [] => true,
        [b':', digits @ ..] if !digits.is_empty() && digits.len() <= 5 => {
            let mut n = 0u32;
            for &d in digits {
                if !d.is_ascii_digit() {
                    return false;
                }
                n = n * 10 + u32::from(d - b'0');
            }
            n <= 65535
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::valid_host_value;

    #[test]
    fn host_values_table() {
        let table: &[(&str, bool)] = &[
            ("example.com", true),
            ("127.0.0.1:18292", true),
            ("a:0", true),
            ("a:65535", true),
            ("[::1]", true),
            ("[::1]:8080", true),
            ("xn--bcher-kva.example~_%20!$&'()*+,;=", true),
            ("", false),
            (":80", false),
            ("a:", false),
            ("a:65536", false),
            ("a:123456", false),
            ("a:8o", false),
            ("a:-1", false),
            ("user@a", false),
            ("a b", false),
            ("a/b", false),
            ("a:80:80", false),
            ("[]", false),
            ("[::1", false),
            ("[::g]", false),
            ("[::1]80", false),
            ("a\u{e9}", false),
        ];
        for &(v, ok) in table {
            assert_eq!(valid_host_value(v.as_bytes()), ok, "{v:?}");
        }
    }
}
