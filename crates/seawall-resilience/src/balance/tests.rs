use std::{cmp::Reverse, collections::BinaryHeap, time::Duration};

use tokio::time::Instant;

use super::*;

const MS: Duration = Duration::from_millis(1);

fn ewma(len: usize, now: Instant) -> PeakEwma {
    PeakEwma::try_new(PeakEwmaSettings::default(), len, now).expect("valid")
}

/// Runs `requests` arrivals, one per millisecond, against endpoints with fixed latencies,
/// with requests overlapping as they would in a gateway; returns picks per endpoint.
fn simulate(balancer: &mut Balancer, latencies: &[Duration], requests: usize) -> Vec<usize> {
    let mut rng = fastrand::Rng::with_seed(42);
    let base = Instant::now();
    let mut in_flight = BinaryHeap::new(); // Reverse((finish offset, endpoint, start offset))
    let mut picks = vec![0; latencies.len()];
    for n in 0..requests {
        let offset = MS * u32::try_from(n).expect("small");
        while let Some(Reverse((end, i, start))) = in_flight.peek().copied() {
            if end > offset {
                break;
            }
            in_flight.pop();
            balancer.end(i, end - start, base + end);
        }
        let i = balancer
            .pick(&mut rng, base + offset, &[])
            .expect("endpoints");
        picks[i] += 1;
        balancer.start(i, base + offset);
        in_flight.push(Reverse((offset + latencies[i], i, offset)));
    }
    picks
}

#[test]
fn ewma_balancer_sends_less_traffic_to_slow_endpoint() {
    let now = Instant::now();
    let mut latencies = vec![5 * MS; 5];
    latencies[0] = 50 * MS;
    let n = 20_000;
    // Every endpoint measured once, so the slow one is known to be slow (an unmeasured
    // endpoint would just cost `default_rtt`).
    let mut b = ewma(5, now);
    for (i, rtt) in latencies.iter().enumerate() {
        b.end(i, *rtt, now);
    }
    let picks = simulate(&mut Balancer::PeakEwma(b), &latencies, n);
    let fair = n / 5;
    assert!(
        picks[0] < fair / 4,
        "slow endpoint got {} of a fair {fair}: {picks:?}",
        picks[0]
    );
    // Yet not starved: its estimate decays while idle, so it is re-measured now and then.
    assert!(picks[0] > 0, "{picks:?}");
    // The control: round robin is blind to latency and sends the slow one its full share.
    let picks = simulate(&mut Balancer::RoundRobin(RoundRobin::new(5)), &latencies, n);
    assert_eq!(picks[0], fair);
}

#[test]
fn a_slow_sample_replaces_the_estimate_at_once() {
    let t0 = Instant::now();
    let mut b = ewma(1, t0);
    b.end(0, 10 * MS, t0);
    b.end(0, 200 * MS, t0 + MS);
    let rtt = b.snapshot(t0 + MS)[0].rtt_estimate;
    assert_eq!(rtt, 200 * MS);
}

#[test]
fn fast_samples_pull_the_estimate_down_gradually() {
    let t0 = Instant::now();
    let mut b = ewma(1, t0);
    b.end(0, 100 * MS, t0);
    // One second later (τ = 10 s), a 10 ms sample: 100·e^(−0.1) + 10·(1 − e^(−0.1)) ms.
    let t1 = t0 + Duration::from_secs(1);
    b.end(0, 10 * MS, t1);
    let w = (-0.1f64).exp();
    let expected = 0.100 * w + 0.010 * (1.0 - w);
    let got = b.snapshot(t1)[0].rtt_estimate.as_secs_f64();
    assert!((got - expected).abs() < 1e-9, "{got} vs {expected}");
    assert!(got > 0.09, "one fast sample barely moves it");
}

#[test]
fn an_idle_estimate_decays_so_a_slow_endpoint_is_tried_again() {
    let t0 = Instant::now();
    let mut b = ewma(2, t0);
    b.end(0, 100 * MS, t0);
    b.end(1, 10 * MS, t0);
    let mut rng = fastrand::Rng::with_seed(1);
    assert_eq!(b.pick(&mut rng, t0, &[]), Some(1));
    // Both decay at the same rate, so only a re-measured fast endpoint keeps winning;
    // after 30 s the slow one's 100 ms has decayed below a fresh 10 ms sample's cost.
    let later = t0 + Duration::from_secs(30);
    b.end(1, 10 * MS, later);
    assert!(b.cost(0, later) < 0.01 && b.cost(0, later) < b.cost(1, later));
    assert_eq!(b.pick(&mut rng, later, &[]), Some(0));
}

#[test]
fn pending_requests_raise_the_cost() {
    let t0 = Instant::now();
    let mut b = ewma(2, t0);
    b.end(0, 10 * MS, t0);
    b.end(1, 10 * MS, t0);
    for _ in 0..3 {
        b.start(0, t0);
    }
    assert!((b.cost(0, t0) - 0.040).abs() < 1e-12, "10 ms × (3 + 1)");
    let mut rng = fastrand::Rng::with_seed(3);
    for _ in 0..20 {
        assert_eq!(b.pick(&mut rng, t0, &[]), Some(1));
    }
}

#[test]
fn pick_never_returns_an_excluded_endpoint() {
    let t0 = Instant::now();
    let mut rng = fastrand::Rng::with_seed(9);
    let mut b = Balancer::PeakEwma(ewma(4, t0));
    for _ in 0..200 {
        let i = b.pick(&mut rng, t0, &[1, 3]).expect("two allowed");
        assert!(i == 0 || i == 2, "{i}");
    }
    assert_eq!(
        b.pick(&mut rng, t0, &[0, 1, 3]),
        Some(2),
        "the only one left"
    );
    assert_eq!(b.pick(&mut rng, t0, &[0, 1, 2, 3]), None);
    assert_eq!(
        Balancer::PeakEwma(ewma(0, t0)).pick(&mut rng, t0, &[]),
        None
    );
    // Out-of-range indices are ignored rather than panicking.
    let mut e = ewma(1, t0);
    e.start(7, t0);
    e.end(7, MS, t0);
    assert_eq!(e.cost(7, t0), f64::INFINITY);
}

#[test]
fn p2c_compares_two_distinct_endpoints() {
    // With two endpoints, two distinct choices always include the cheaper one.
    let t0 = Instant::now();
    let mut b = ewma(2, t0);
    b.end(0, 20 * MS, t0);
    b.end(1, 10 * MS, t0);
    let mut rng = fastrand::Rng::with_seed(5);
    assert!((0..100).all(|_| b.pick(&mut rng, t0, &[]) == Some(1)));
    assert_eq!(b.snapshot(t0)[1].picks, 100);
}

#[test]
fn round_robin_cycles_and_skips_excluded_endpoints() {
    let mut rr = RoundRobin::new(3);
    let order: Vec<_> = (0..4).filter_map(|_| rr.pick(&[])).collect();
    assert_eq!(order, [0, 1, 2, 0]);
    assert_eq!(rr.pick(&[1]), Some(2));
    assert_eq!(rr.pick(&[0, 1, 2]), None);
    assert_eq!(RoundRobin::new(0).pick(&[]), None);
}

#[test]
fn peak_ewma_rejects_a_zero_decay() {
    let s = PeakEwmaSettings {
        decay: Duration::ZERO,
        ..Default::default()
    };
    assert_eq!(
        PeakEwma::try_new(s, 2, Instant::now()).err(),
        Some(InvalidPeakEwma::ZeroDecay)
    );
}
