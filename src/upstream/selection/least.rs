//! Least outstanding requests by the power of two choices (Mitzenmacher; Envoy's
//! `LEAST_REQUEST`): two distinct backends drawn at random, the one with fewer requests in
//! flight per unit of weight wins. Two draws rather than a scan of all: O(1) per pick, and no
//! herd of workers landing on the same momentarily idle backend.

use super::random::WeightedRandom;
use super::{rand_below, Candidates};

#[derive(Debug)]
pub(crate) struct LeastOutstanding {
    weights: Vec<u64>,
    /// Draws by weight when the weights differ; uniform draws when they are all equal.
    weighted: Option<WeightedRandom>,
}

impl LeastOutstanding {
    pub(crate) fn new(weights: &[u32]) -> Self {
        let uniform = weights.windows(2).all(|w| w[0] == w[1]);
        LeastOutstanding {
            weights: weights.iter().map(|&w| u64::from(w)).collect(),
            weighted: (!uniform).then(|| WeightedRandom::new(weights)),
        }
    }

    fn two(&self) -> (usize, usize) {
        let n = self.weights.len() as u64;
        if let Some(w) = &self.weighted {
            let a = w.draw().unwrap_or(0);
            let b = (0..3).filter_map(|_| w.draw()).find(|&b| b != a).unwrap_or(a);
            return (a, b);
        }
        let a = rand_below(n);
        let b = if n > 1 { (a + 1 + rand_below(n - 1)) % n } else { a };
        (a as usize, b as usize)
    }

    pub(crate) fn pick<C: Candidates>(&self, c: &C) -> Option<usize> {
        for _ in 0..4 {
            let (a, b) = self.two();
            match (c.usable(a), c.usable(b)) {
                // load_a / w_a < load_b / w_b, without dividing.
                (true, true) => {
                    let (la, lb) = (c.load(a) * self.weights[b], c.load(b) * self.weights[a]);
                    return Some(if lb < la { b } else { a });
                }
                (true, false) => return Some(a),
                (false, true) => return Some(b),
                (false, false) => {}
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests_support::Fixed;
    use super::*;

    #[test]
    fn never_picks_the_stalled_backend() {
        let s = LeastOutstanding::new(&[1, 1, 1]);
        let c = Fixed { down: vec![], loads: vec![0, 1000, 0] };
        let mut seen = [0u32; 3];
        for _ in 0..30_000 {
            seen[s.pick(&c).unwrap()] += 1;
        }
        assert_eq!(seen[1], 0, "{seen:?}");
        assert!(seen[0] > 10_000 && seen[2] > 10_000, "{seen:?}");
    }

    #[test]
    fn weighs_load_by_weight() {
        // Backend 0 has twice the weight and one more request in flight than backend 1 has...
        let s = LeastOutstanding::new(&[2, 1]);
        let c = Fixed { down: vec![], loads: vec![3, 2] };
        // ...so it is the less loaded per unit of weight (1.5 < 2) whenever both are drawn.
        let zeros = (0..1000).filter(|_| s.pick(&c) == Some(0)).count();
        assert!(zeros > 500, "{zeros}");
    }
}
