//! Selection algorithms over a snapshot of a group's backends (Pingora's `selection/`). Each
//! is built once per snapshot from the backends' names and weights, and picks an index; which
//! backends are usable right now (healthy, not ejected, not tried, under their cap) is asked of
//! the caller, so the tables never change while requests read them.

mod hash;
mod ketama;
mod least;
mod maglev;
mod random;
mod swrr;

pub(crate) use hash::{crc32, hash64, rand_below};

/// How a group chooses among its backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Algorithm {
    /// Smooth weighted round robin (nginx's): each backend gets its weight's share, spread out.
    #[default]
    RoundRobin,
    /// Weighted random.
    Random,
    /// The less loaded of two random backends (power of two choices), load being requests in
    /// flight per unit of weight.
    LeastOutstanding,
    /// Consistent hashing of the key on a Ketama ring, the same as nginx's
    /// `hash $key consistent` for the same server list and weights.
    Ketama,
    /// Consistent hashing of the key through a Maglev lookup table.
    Maglev,
}

/// What a selector needs to know about backend `i` of the snapshot at pick time.
pub(crate) trait Candidates {
    /// Whether backend `i` may take this request.
    fn usable(&self, i: usize) -> bool;
    /// Requests in flight on backend `i`.
    fn load(&self, i: usize) -> u64;
}

/// A selection table for one snapshot.
#[derive(Debug)]
pub(crate) enum Selector {
    RoundRobin(swrr::Swrr),
    Random(random::WeightedRandom),
    LeastOutstanding(least::LeastOutstanding),
    Ketama(ketama::Ketama),
    Maglev(maglev::Maglev),
}

impl Selector {
    /// The table for backends with these names and weights (in snapshot order; weights >= 1).
    pub(crate) fn build(algorithm: Algorithm, names: &[&str], weights: &[u32]) -> Self {
        match algorithm {
            Algorithm::RoundRobin => Selector::RoundRobin(swrr::Swrr::new(weights)),
            Algorithm::Random => Selector::Random(random::WeightedRandom::new(weights)),
            Algorithm::LeastOutstanding => Selector::LeastOutstanding(least::LeastOutstanding::new(weights)),
            Algorithm::Ketama => Selector::Ketama(ketama::Ketama::new(names, weights)),
            Algorithm::Maglev => Selector::Maglev(maglev::Maglev::new(names, weights)),
        }
    }

    /// A usable backend: the algorithm's choice, or, when its bounded search finds none usable,
    /// the first usable one after a start point the key (or chance) decides. `None` when no
    /// backend is usable. `key` matters to the hashing algorithms only; without one they pick
    /// at random.
    pub(crate) fn pick<C: Candidates>(&self, n: usize, key: Option<&[u8]>, c: &C) -> Option<usize> {
        if n == 0 {
            return None;
        }
        let found = match self {
            Selector::RoundRobin(s) => s.pick(c),
            Selector::Random(s) => s.pick(c),
            Selector::LeastOutstanding(s) => s.pick(c),
            Selector::Ketama(s) => s.pick(key_or_random(key, crc32), c),
            Selector::Maglev(s) => s.pick(key_or_random(key, |k| hash64(2, k)), c),
        };
        found.or_else(|| {
            let start = key.map_or_else(|| rand_below(n as u64), |k| hash64(3, k) % n as u64) as usize;
            (0..n).map(|t| (start + t) % n).find(|&i| c.usable(i))
        })
    }
}

fn key_or_random<H: Into<u64>>(key: Option<&[u8]>, hash: impl Fn(&[u8]) -> H) -> u64 {
    key.map_or_else(hash::rand_u64, |k| hash(k).into())
}

#[cfg(test)]
pub(crate) mod tests_support {
    use super::Candidates;

    /// Every backend usable except those listed, with the given loads.
    pub(crate) struct Fixed {
        pub(crate) down: Vec<usize>,
        pub(crate) loads: Vec<u64>,
    }

    impl Candidates for Fixed {
        fn usable(&self, i: usize) -> bool {
            !self.down.contains(&i)
        }
        fn load(&self, i: usize) -> u64 {
            self.loads.get(i).copied().unwrap_or(0)
        }
    }

    pub(crate) fn all_up() -> Fixed {
        Fixed { down: Vec::new(), loads: Vec::new() }
    }
}
