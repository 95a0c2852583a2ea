//! Smooth weighted round robin (nginx's `ngx_http_upstream_get_peer`), precomputed: the order
//! nginx's algorithm produces over one cycle of the total weight is stored once per snapshot,
//! and a pick is one atomic increment and a lookup. nginx recomputes it under a write lock on
//! every pick, which every worker would contend for here.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::Candidates;

#[derive(Debug)]
pub(crate) struct Swrr {
    order: Vec<u32>,
    next: AtomicUsize,
}

impl Swrr {
    pub(crate) fn new(weights: &[u32]) -> Self {
        // Weights divided by their common divisor: the same shares in a shorter cycle.
        let g = weights.iter().copied().fold(0, gcd).max(1);
        let w: Vec<i64> = weights.iter().map(|&w| i64::from(w / g)).collect();
        let total: i64 = w.iter().sum();
        let mut current = vec![0i64; w.len()];
        let mut order = Vec::with_capacity(total as usize);
        for _ in 0..total {
            let mut best = 0;
            for i in 0..w.len() {
                current[i] += w[i];
                if current[i] > current[best] {
                    best = i;
                }
            }
            current[best] -= total;
            order.push(best as u32);
        }
        Swrr { order, next: AtomicUsize::new(0) }
    }

    /// The next usable backend in the cycle: one that cannot take the request gives its turn to
    /// the next in line, as nginx skips it.
    pub(crate) fn pick<C: Candidates>(&self, c: &C) -> Option<usize> {
        let len = self.order.len();
        if len == 0 {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..len.min(64)).map(|t| self.order[(start + t) % len] as usize).find(|&i| c.usable(i))
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests_support::{all_up, Fixed};
    use super::*;

    #[test]
    fn follows_nginx_smooth_order() {
        // nginx's documented sequence for weights 5, 1, 1: a a b a c a a.
        let s = Swrr::new(&[5, 1, 1]);
        let seq: Vec<usize> = (0..7).map(|_| s.pick(&all_up()).unwrap()).collect();
        assert_eq!(seq, [0, 0, 1, 0, 2, 0, 0]);
    }

    #[test]
    fn skips_an_unusable_backend() {
        let s = Swrr::new(&[1, 1, 1]);
        let c = Fixed { down: vec![1], loads: vec![] };
        assert!((0..300).all(|_| s.pick(&c) != Some(1)));
    }
}
