//! Ketama consistent hashing, point for point nginx's `hash $key consistent`
//! (ngx_http_upstream_hash_module): each server gets 160 points per unit of weight, point `j`
//! hashed as crc32(HOST, NUL, PORT, previous point's hash as 4 little-endian bytes), with HOST and
//! PORT split from the server's name as nginx splits the text of its `server` directive; a key
//! goes to the first point at or after crc32(key), wrapping. Same names and weights, same
//! mapping, so a fleet can move between nginx and this library without reshuffling caches.

use super::hash::Crc32;
use super::Candidates;

/// Points per unit of weight (nginx's constant).
const POINTS_PER_WEIGHT: u32 = 160;

#[derive(Debug)]
pub(crate) struct Ketama {
    /// (hash, backend index), sorted by hash, one point per distinct hash.
    points: Vec<(u32, u32)>,
}

impl Ketama {
    pub(crate) fn new(names: &[&str], weights: &[u32]) -> Self {
        let mut points = Vec::with_capacity(weights.iter().map(|&w| w as usize * 160).sum());
        for (i, (name, &weight)) in names.iter().zip(weights).enumerate() {
            let (host, port) = split_host_port(name.as_bytes());
            let base = Crc32::new().update(host).update(&[0]).update(port);
            let mut prev = 0u32;
            for _ in 0..weight * POINTS_PER_WEIGHT {
                prev = base.update(&prev.to_le_bytes()).finish();
                points.push((prev, i as u32));
            }
        }
        // nginx sorts, then keeps the first point of each run of equal hashes. Its qsort leaves
        // the order within a run unspecified; a stable sort keeps the earlier server's point.
        points.sort_by_key(|p| p.0);
        points.dedup_by_key(|p| p.0);
        Ketama { points }
    }

    /// The first usable server at or after `hash` on the ring, as nginx walks on to the next
    /// point when a server is down or already tried.
    pub(crate) fn pick<C: Candidates>(&self, hash: u64, c: &C) -> Option<usize> {
        let n = self.points.len();
        let hash = hash as u32;
        let start = self.points.partition_point(|p| p.0 < hash);
        (0..n.min(256)).map(|t| self.points[(start + t) % n].1 as usize).find(|&i| c.usable(i))
    }
}

/// nginx's split of a server name: `unix:PATH` is all host; otherwise the digits after the last
/// `:` are the port, and a name without one is all host.
fn split_host_port(name: &[u8]) -> (&[u8], &[u8]) {
    if name.len() >= 5 && name[..5].eq_ignore_ascii_case(b"unix:") {
        return (&name[5..], &[]);
    }
    let digits = name.iter().rev().take_while(|c| c.is_ascii_digit()).count();
    match name.len().checked_sub(digits + 1) {
        Some(colon) if name[colon] == b':' => (&name[..colon], &name[colon + 1..]),
        _ => (name, &[]),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests_support::all_up;
    use super::super::{crc32, hash::rand_u64};
    use super::*;

    #[test]
    fn splits_names_as_nginx_does() {
        assert_eq!(split_host_port(b"127.0.0.1:8080"), (&b"127.0.0.1"[..], &b"8080"[..]));
        assert_eq!(split_host_port(b"[::1]:80"), (&b"[::1]"[..], &b"80"[..]));
        assert_eq!(split_host_port(b"backend"), (&b"backend"[..], &b""[..]));
        assert_eq!(split_host_port(b"UNIX:/run/a.sock"), (&b"/run/a.sock"[..], &b""[..]));
        assert_eq!(split_host_port(b"a:b"), (&b"a:b"[..], &b""[..]));
    }

    #[test]
    fn removing_a_server_moves_only_its_keys() {
        let names = ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.4:80", "10.0.0.5:80"];
        let weights = [1, 2, 1, 3, 1];
        let all = Ketama::new(&names, &weights);
        let keys: Vec<String> = (0..10_000).map(|_| format!("k{}", rand_u64())).collect();
        let before: Vec<usize> =
            keys.iter().map(|k| all.pick(u64::from(crc32(k.as_bytes())), &all_up()).unwrap()).collect();
        // Drop server 1 ("10.0.0.2:80"); indices above it shift down by one.
        let fewer = Ketama::new(&[names[0], names[2], names[3], names[4]], &[1, 1, 3, 1]);
        let mut moved_own = 0;
        for (k, &b) in keys.iter().zip(&before) {
            let a = fewer.pick(u64::from(crc32(k.as_bytes())), &all_up()).unwrap();
            let a = if a >= 1 { a + 1 } else { a };
            if b == 1 {
                moved_own += 1;
                assert_ne!(a, 1);
            } else {
                assert_eq!(a, b, "key {k} moved though its server stayed");
            }
        }
        // Server 1 holds 2/8 of the weight, so about a quarter of the keys.
        assert!((2000..3000).contains(&moved_own), "{moved_own}");
    }
}
