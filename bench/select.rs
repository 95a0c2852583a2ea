//! Selection cost per pick, for each algorithm with 3 and 1,000 backends: the whole
//! `UpstreamGroup::pick` a request makes (snapshot load, the algorithm, the in-flight count up
//! and down), on one thread, keys precomputed.
//!
//!   cargo run --release --example bench_select [picks]
//!
//! Prints ns/pick per algorithm and size, and how long the 1,000-backend tables take to build.
//! Wall clock on a shared machine: compare numbers from one run only.

use std::hint::black_box;
use std::time::Instant;

use proxy::upstream::{Algorithm, Backend, Tried, UpstreamGroup};

const ALGORITHMS: [Algorithm; 5] = [
    Algorithm::RoundRobin,
    Algorithm::Random,
    Algorithm::LeastOutstanding,
    Algorithm::Ketama,
    Algorithm::Maglev,
];

fn group(algorithm: Algorithm, n: usize) -> UpstreamGroup {
    let g = UpstreamGroup::new("bench", algorithm);
    let list = (0..n)
        .map(|i| {
            Backend::new(&format!("10.{}.{}.{}:80", i >> 16 & 255, i >> 8 & 255, i & 255), 1 + (i % 5) as u32)
        })
        .collect::<Result<Vec<_>, _>>()
        .expect("valid backends");
    g.set_backends(list).expect("distinct names");
    g
}

fn main() {
    let picks: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(2_000_000);
    let keys: Vec<String> = (0..4096).map(|i| format!("/objects/{i:08x}")).collect();
    println!("{:<18} {:>10} {:>10}", "algorithm", "3 (ns)", "1000 (ns)");
    for alg in ALGORITHMS {
        let mut cols = Vec::new();
        for n in [3, 1000] {
            let g = group(alg, n);
            let keyed = matches!(alg, Algorithm::Ketama | Algorithm::Maglev);
            let run = |count: usize| {
                for i in 0..count {
                    let key = keyed.then(|| keys[i & 4095].as_bytes());
                    black_box(g.pick(key, &mut Tried::default()).expect("a backend"));
                }
            };
            run(picks / 10);
            let t = Instant::now();
            run(picks);
            cols.push(t.elapsed().as_nanos() as f64 / picks as f64);
        }
        println!("{:<18} {:>10.1} {:>10.1}", format!("{alg:?}"), cols[0], cols[1]);
    }
    for alg in ALGORITHMS {
        let t = Instant::now();
        black_box(group(alg, 1000));
        println!("build {:<18} 1000 backends: {:.2} ms", format!("{alg:?}"), t.elapsed().as_secs_f64() * 1e3);
    }
}
