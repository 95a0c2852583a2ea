//! Weighted random: a binary search of the cumulative weights for a uniform draw.

use super::{rand_below, Candidates};

#[derive(Debug)]
pub(crate) struct WeightedRandom {
    /// Running sums of the weights: backend `i` owns draws in `[cumulative[i-1], cumulative[i])`.
    cumulative: Vec<u64>,
}

impl WeightedRandom {
    pub(crate) fn new(weights: &[u32]) -> Self {
        let cumulative = weights
            .iter()
            .scan(0u64, |sum, &w| {
                *sum += u64::from(w);
                Some(*sum)
            })
            .collect();
        WeightedRandom { cumulative }
    }

    /// A backend drawn by weight.
    pub(crate) fn draw(&self) -> Option<usize> {
        let total = *self.cumulative.last()?;
        let r = rand_below(total);
        Some(self.cumulative.partition_point(|&c| c <= r))
    }

    /// A usable backend drawn by weight; a few redraws when the draw cannot take the request
    /// (the caller scans for one when they all miss).
    pub(crate) fn pick<C: Candidates>(&self, c: &C) -> Option<usize> {
        (0..4).filter_map(|_| self.draw()).find(|&i| c.usable(i))
    }
}
