use std::time::Duration;

use super::*;

fn group(algorithm: Algorithm, weights: &[u32]) -> UpstreamGroup {
    let g = UpstreamGroup::new("test", algorithm);
    let list = weights
        .iter()
        .enumerate()
        .map(|(i, &w)| Backend::new(&format!("127.0.0.1:{}", 1000 + i), w).unwrap())
        .collect();
    g.set_backends(list).unwrap();
    g
}

fn index(p: &Pick) -> usize {
    usize::from(p.peer().address.to_string().ends_with(":1001"))
        + 2 * usize::from(p.name().ends_with(":1002"))
}

#[test]
fn weights_531_give_their_shares_within_one_percent() {
    for alg in [Algorithm::RoundRobin, Algorithm::Random, Algorithm::LeastOutstanding, Algorithm::Maglev] {
        let g = group(alg, &[5, 3, 1]);
        let mut count = [0u32; 3];
        for _ in 0..90_000 {
            count[index(&g.pick(None, &mut Tried::default()).unwrap())] += 1;
        }
        for (i, ideal) in [5.0 / 9.0, 3.0 / 9.0, 1.0 / 9.0].iter().enumerate() {
            let share = f64::from(count[i]) / 90_000.0;
            assert!((share - ideal).abs() < 0.01, "{alg:?}: {count:?}");
        }
        if alg == Algorithm::RoundRobin {
            assert_eq!(count, [50_000, 30_000, 10_000]);
        }
    }
}

#[test]
fn a_retry_excludes_backends_already_tried() {
    for alg in [
        Algorithm::RoundRobin,
        Algorithm::Random,
        Algorithm::LeastOutstanding,
        Algorithm::Ketama,
        Algorithm::Maglev,
    ] {
        let g = group(alg, &[1, 1, 1]);
        let mut tried = Tried::default();
        let picks: Vec<Pick> = (0..3).map(|_| g.pick(Some(b"key"), &mut tried).unwrap()).collect();
        let mut seen: Vec<usize> = picks.iter().map(index).collect();
        seen.sort();
        assert_eq!(seen, [0, 1, 2], "{alg:?}");
        let e = g.pick(Some(b"key"), &mut tried).unwrap_err();
        assert_eq!(e.status(), 502, "{alg:?}");
    }
}

#[test]
fn least_outstanding_never_picks_a_stalled_backend() {
    let g = group(Algorithm::LeastOutstanding, &[1, 1, 1]);
    // Requests pile up on backend 1: it stops answering, and they stay in flight.
    let mut stalled = Vec::new();
    while stalled.len() < 20 {
        // Among three picks excluding each other, one is backend 1.
        let mut tried = Tried::default();
        let three: Vec<Pick> = (0..3).map(|_| g.pick(None, &mut tried).unwrap()).collect();
        stalled.extend(three.into_iter().filter(|p| index(p) == 1));
    }
    for _ in 0..10_000 {
        assert_ne!(index(&g.pick(None, &mut Tried::default()).unwrap()), 1);
    }
    assert_eq!(g.figures()[1].in_flight, 20);
}

#[test]
fn consecutive_failures_eject_within_the_cap() {
    let g = group(Algorithm::RoundRobin, &[1, 1, 1]);
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    g.set_health_listener(Some(Arc::new(move |name: &str, e| seen.lock().push((name.to_owned(), e)))));
    g.set_outlier_detection(OutlierDetection { consecutive_failures: 3, ..OutlierDetection::default() });
    let fail = |target: usize| {
        for _ in 0..3 {
            let p = loop {
                let p = g.pick(None, &mut Tried::default()).unwrap();
                if index(&p) == target {
                    break p;
                }
            };
            p.report(Outcome::Failure);
        }
    };
    fail(0);
    assert_eq!(*events.lock(), [("127.0.0.1:1000".to_owned(), HealthEvent::Ejected)]);
    assert!((0..3000).all(|_| index(&g.pick(None, &mut Tried::default()).unwrap()) != 0));
    // 10 % of three backends rounds to none, but one may always be out: a second stays in.
    fail(1);
    assert_eq!(events.lock().len(), 1);
    let f = g.figures();
    assert!(f[0].ejected && !f[1].ejected);
    assert_eq!((f[0].ejections, f[0].failures, f[1].failures), (1, 3, 3));
    // A passing active check readmits it.
    assert_eq!(g.set_healthy("127.0.0.1:1000", true), Some(HealthEvent::Readmitted));
    assert!(!g.figures()[0].ejected);
    assert!((0..30).any(|_| index(&g.pick(None, &mut Tried::default()).unwrap()) == 0));
}

#[test]
fn a_success_resets_the_failure_count() {
    let g = group(Algorithm::RoundRobin, &[1]);
    g.set_outlier_detection(OutlierDetection { consecutive_failures: 2, ..OutlierDetection::default() });
    for _ in 0..10 {
        g.pick(None, &mut Tried::default()).unwrap().report(Outcome::Failure);
        g.pick(None, &mut Tried::default()).unwrap().report(Outcome::Success);
    }
    assert_eq!(g.figures()[0].ejections, 0);
}

#[test]
fn ejections_grow_on_repeat_and_end_when_their_time_is_up() {
    let g = group(Algorithm::RoundRobin, &[1, 1]);
    let base = Duration::from_secs(10);
    let o = &g.shared.outlier;
    *o.settings.lock() = OutlierDetection {
        consecutive_failures: 1,
        base_ejection: base,
        max_ejection: Duration::from_secs(25),
        max_ejected_percent: 50,
    };
    let b = g.shared.snapshot.load().backends[0].clone();
    let length = |b: &BackendState| {
        b.ejected_until.load(Ordering::Relaxed) - b.last_ejection_end.load(Ordering::Relaxed)
            + (b.last_ejection_end.load(Ordering::Relaxed) - o.now_ms())
    };
    assert!(o.report(&b, Outcome::Failure, 2));
    let first = length(&b);
    assert!(first <= 10_000 && first > 9_000, "{first}");
    // Not out yet at half time; readmitted (once) when the time is up.
    let until = b.ejected_until.load(Ordering::Relaxed);
    assert_eq!(o.standing(&b, until - 5_000), Standing::Ejected);
    assert_eq!(o.standing(&b, until), Standing::Readmitted);
    assert_eq!(o.standing(&b, until), Standing::In);
    // Failing again at once: twice as long; a third time: capped at 25 s.
    assert!(o.report(&b, Outcome::Failure, 2));
    assert!(length(&b) > 19_000 && length(&b) <= 20_000);
    o.readmit(&b);
    assert!(o.report(&b, Outcome::Failure, 2));
    assert!(length(&b) > 24_000 && length(&b) <= 25_000);
}

#[test]
fn every_backend_at_its_cap_is_a_503() {
    let g = group(Algorithm::LeastOutstanding, &[1, 1, 1]);
    g.set_max_in_flight(2);
    let held: Vec<Pick> = (0..6).map(|_| g.pick(None, &mut Tried::default()).unwrap()).collect();
    let e = g.pick(None, &mut Tried::default()).unwrap_err();
    assert_eq!(e.status(), 503);
    assert!(e.to_string().contains("cap"), "{e}");
    drop(held);
    assert!(g.pick(None, &mut Tried::default()).is_ok());
}

#[test]
fn every_backend_down_still_gets_traffic() {
    let g = group(Algorithm::RoundRobin, &[1, 1]);
    g.set_healthy("127.0.0.1:1000", false);
    assert!((0..100).all(|_| index(&g.pick(None, &mut Tried::default()).unwrap()) == 1));
    g.set_healthy("127.0.0.1:1001", false);
    assert!(g.pick(None, &mut Tried::default()).is_ok());
}

#[test]
fn a_replaced_list_keeps_the_state_of_backends_that_stay() {
    let g = group(Algorithm::RoundRobin, &[1, 1]);
    let held = g.pick(Some(b"x"), &mut Tried::default()).unwrap();
    let kept = held.name().to_owned();
    g.update(|list| {
        list.retain(|b| b.name == kept);
        list.push(Backend::new("127.0.0.1:2000", 1).unwrap());
    })
    .unwrap();
    let f = g.figures();
    assert_eq!((f[0].name.as_str(), f[0].in_flight, f[0].requests), (kept.as_str(), 1, 1));
    assert_eq!((f[1].requests, f[1].in_flight), (0, 0));
    drop(held);
    assert_eq!(g.figures()[0].in_flight, 0);
    assert!(g.update(|list| list.push(Backend::new("127.0.0.1:2000", 1).unwrap())).is_err());
}

#[test]
fn the_same_list_again_keeps_the_round_robin_cycle() {
    let g = group(Algorithm::RoundRobin, &[5, 3, 1]);
    let mut seen = Vec::new();
    for _ in 0..9 {
        seen.push(index(&g.pick(None, &mut Tried::default()).unwrap()));
        g.set_backends(g.backends()).unwrap();
    }
    seen.sort();
    assert_eq!(seen, [0, 0, 0, 0, 0, 1, 1, 1, 2]);
}

#[test]
fn every_backend_with_its_connections_busy_is_a_503() {
    let g = group(Algorithm::RoundRobin, &[1, 1]);
    g.set_max_connections(1);
    let mut busy: Vec<Pick> = (0..2).map(|_| g.pick(None, &mut Tried::default()).unwrap()).collect();
    let counts: Vec<ConnectionCount> = busy.iter().map(Pick::count_connection).collect();
    assert!(g.figures().iter().all(|f| f.connections == 1));
    let e = g.pick(None, &mut Tried::default()).unwrap_err();
    assert_eq!(e.status(), 503);
    assert!(e.to_string().contains("connections open and busy"), "{e}");
    // A request ends: its connection is idle in the pool, so the next one may reuse it.
    let freed = index(&busy.remove(0));
    assert_eq!(index(&g.pick(None, &mut Tried::default()).unwrap()), freed);
    drop((busy, counts));
    assert!(g.figures().iter().all(|f| f.connections == 0));
}
