//! Throughput on this machine, on a real file (WAL, `synchronous=FULL`: every commit is an
//! fsync). A measurement, not an assertion: run once with
//! `cargo test --release -p railyard-store --test throughput -- --ignored --nocapture --test-threads 1`.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use railyard_store::Store;
use serde_json::json;

/// A small order envelope (~230 bytes of JSON), like the runtime publishes.
fn order(i: u64) -> serde_json::Value {
    json!({"body": {"id": i, "store": "S-0042", "lines": [{"sku": "A-1", "qty": 2, "price": "19.90"}]},
           "meta": {"id": format!("m-{i}"), "correlation_id": format!("c-{i}"), "attempt": 1}})
}

fn fresh() -> (tempfile::TempDir, Arc<Store>) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("railyard.db")).unwrap();
    s.subscribe("orders", "erp").unwrap();
    (dir, Arc::new(s))
}

fn timed(f: impl FnOnce()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

/// Leases `batch` at a time and acks each, from `threads` threads, until the queue is empty.
fn drain(s: &Arc<Store>, batch: usize, threads: usize) {
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let s = s.clone();
            std::thread::spawn(move || {
                loop {
                    let got = s.lease("orders", "erp", batch, 30_000, 0).unwrap();
                    if got.is_empty() {
                        return;
                    }
                    for d in &got {
                        assert!(s.ack(d).unwrap());
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
#[ignore = "measurement; run with --release --ignored --nocapture"]
fn measure_publish_and_lease_ack() {
    let n = 2_000u64;
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    let (_d, s) = fresh();
    let publish = timed(|| {
        for i in 0..n {
            s.publish("orders", &order(i)).unwrap();
        }
    });
    println!(
        "publish, 1 group:                 {:>6.0} msg/s",
        rate(publish)
    );
    println!(
        "lease(1) + ack:                   {:>6.0} msg/s",
        rate(timed(|| drain(&s, 1, 1)))
    );
    for i in 0..n {
        s.publish("orders", &order(i)).unwrap();
    }
    println!(
        "lease(32) + ack each:             {:>6.0} msg/s",
        rate(timed(|| drain(&s, 32, 1)))
    );
    for i in 0..n {
        s.publish("orders", &order(i)).unwrap();
    }
    println!(
        "4 threads, lease(32) + ack each:  {:>6.0} msg/s",
        rate(timed(|| drain(&s, 32, 4)))
    );

    let (_d, s) = fresh();
    s.subscribe("orders", "audit").unwrap();
    let fan = timed(|| {
        for i in 0..n {
            s.publish("orders", &order(i)).unwrap();
        }
    });
    println!("publish, 2 groups:                {:>6.0} msg/s", rate(fan));
}

#[test]
#[ignore = "measurement; run with --release --ignored --nocapture"]
fn measure_lease_on_a_deep_backlog() {
    let (_d, s) = fresh();
    let n = 100_000u64;
    for i in 0..n {
        s.publish("orders", &json!({"id": i})).unwrap();
    }
    let per = |d: Duration, k: u32| d.as_secs_f64() * 1e3 / f64::from(k);

    // Everything ready: the lease reads the first 32 through the primary key.
    let mut leased = Vec::new();
    let ready = timed(|| {
        for _ in 0..50 {
            leased.extend(s.lease("orders", "erp", 32, 30_000, 0).unwrap());
        }
    });
    println!("{n} ready: lease(32) {:>6.2} ms", per(ready, 50));
    for d in &leased {
        assert!(s.ack(d).unwrap());
    }

    // The oldest ~99% delayed (downstream down, nacked far into the future): a lease walks
    // past them to the ready ones.
    let target = n - leased.len() as u64 - 1_000;
    let mut delayed = 0;
    while delayed < target {
        let max = (target - delayed).min(1_000) as usize;
        let got = s.lease("orders", "erp", max, 30_000, 100_000).unwrap();
        for d in &got {
            assert!(s.nack(d, i64::MAX).unwrap());
        }
        delayed += got.len() as u64;
    }
    let mut leased = Vec::new();
    let behind = timed(|| {
        for _ in 0..25 {
            let got = s.lease("orders", "erp", 32, 30_000, 200_000).unwrap();
            assert_eq!(got.len(), 32);
            leased.extend(got);
        }
    });
    println!(
        "{delayed} delayed ahead of the ready ones: lease(32) {:>6.2} ms",
        per(behind, 25)
    );
    // Nothing ready at all (every poll of an idle consumer during an outage).
    for d in &leased {
        assert!(s.nack(d, i64::MAX).unwrap());
    }
    loop {
        let got = s.lease("orders", "erp", 1_000, 30_000, 200_000).unwrap();
        if got.is_empty() {
            break;
        }
        for d in &got {
            assert!(s.nack(d, i64::MAX).unwrap());
        }
    }
    let idle = timed(|| {
        for _ in 0..25 {
            assert!(
                s.lease("orders", "erp", 32, 30_000, 300_000)
                    .unwrap()
                    .is_empty()
            );
        }
    });
    println!(
        "{} delayed, none ready: lease(32) {:>6.2} ms",
        s.depth("orders", "erp").unwrap(),
        per(idle, 25)
    );
}
