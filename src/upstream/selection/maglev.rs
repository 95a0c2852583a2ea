//! Maglev consistent hashing (Eisenbud et al., NSDI 2016), weighted as Envoy's
//! `MAGLEV` is: each backend fills lookup-table slots along its own permutation, taking turns in
//! proportion to its weight. A pick is one hash and one table read; a removed backend's slots go
//! to the others while most other slots keep their owner.

use super::{hash64, Candidates};

/// Table sizes (primes), the smallest of them at least 100 slots per backend is used: Maglev's
/// balance is within about 1 % at that ratio.
const SIZES: [u64; 6] = [65_537, 131_071, 262_147, 524_287, 1_048_573, 2_097_143];

#[derive(Debug)]
pub(crate) struct Maglev {
    table: Vec<u32>,
}

impl Maglev {
    pub(crate) fn new(names: &[&str], weights: &[u32]) -> Self {
        let n = names.len();
        let m = SIZES.iter().copied().find(|&m| m >= 100 * n as u64).unwrap_or(SIZES[SIZES.len() - 1]);
        let mut table = vec![u32::MAX; if n == 0 { 0 } else { m as usize }];
        let max_w = u64::from(weights.iter().copied().max().unwrap_or(1));
        let perm: Vec<(u64, u64)> = names
            .iter()
            .map(|name| (hash64(0, name.as_bytes()) % m, hash64(1, name.as_bytes()) % (m - 1) + 1))
            .collect();
        let mut next = vec![0u64; n];
        let mut credit = vec![0u64; n];
        let mut filled = 0;
        while filled < table.len() {
            for i in 0..n {
                // A backend of weight w takes w turns per `max_w` rounds.
                credit[i] += u64::from(weights[i]);
                if credit[i] < max_w {
                    continue;
                }
                credit[i] -= max_w;
                let (offset, skip) = perm[i];
                loop {
                    let slot = ((offset + next[i] * skip) % m) as usize;
                    next[i] += 1;
                    if table[slot] == u32::MAX {
                        table[slot] = i as u32;
                        filled += 1;
                        break;
                    }
                }
                if filled == table.len() {
                    break;
                }
            }
        }
        Maglev { table }
    }

    /// The key's slot owner, or, when it cannot take the request, the owners of the following
    /// slots (a deterministic second choice per key).
    pub(crate) fn pick<C: Candidates>(&self, hash: u64, c: &C) -> Option<usize> {
        let m = self.table.len();
        if m == 0 {
            return None;
        }
        let start = (hash % m as u64) as usize;
        (0..128).map(|t| self.table[(start + t) % m] as usize).find(|&i| c.usable(i))
    }
}

#[cfg(test)]
mod tests {
    use super::super::hash::rand_u64;
    use super::super::tests_support::all_up;
    use super::*;

    #[test]
    fn shares_follow_weights() {
        let g = Maglev::new(&["a", "b", "c"], &[5, 3, 1]);
        let mut count = [0usize; 3];
        for &i in &g.table {
            count[i as usize] += 1;
        }
        let m = g.table.len() as f64;
        for (i, w) in [5.0, 3.0, 1.0].iter().enumerate() {
            assert!((count[i] as f64 / m - w / 9.0).abs() < 0.01, "{count:?}");
        }
    }

    #[test]
    fn removing_a_backend_moves_few_other_keys() {
        let names = ["s0", "s1", "s2", "s3", "s4"];
        let all = Maglev::new(&names, &[1; 5]);
        let fewer = Maglev::new(&["s0", "s1", "s3", "s4"], &[1; 4]);
        let (mut others, mut moved) = (0, 0);
        for _ in 0..10_000 {
            let h = rand_u64();
            let b = all.pick(h, &all_up()).unwrap();
            let a = fewer.pick(h, &all_up()).unwrap();
            let a = if a >= 2 { a + 1 } else { a };
            if b != 2 {
                others += 1;
                moved += usize::from(a != b);
            }
        }
        // The paper's bound is a few percent of the remaining keys at 100 slots per backend.
        assert!(moved * 100 < others * 3, "{moved} of {others} moved");
    }
}
