//! The embedded store on real SQLite files: queue semantics, durability across a reopen,
//! concurrent consumers, dedupe and dead letters.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use railyard_store::{DeadLetter, Store};
use serde_json::json;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("data/railyard.db")).unwrap();
    (dir, s)
}

#[test]
fn publish_lease_ack() {
    let (_d, s) = store();
    s.subscribe("orders", "erp").unwrap();
    assert_eq!(s.publish("orders", &json!({"n": 1})).unwrap(), 1);
    let got = s.lease("orders", "erp", 10, 1_000, 0).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].message, json!({"n": 1}));
    assert_eq!(got[0].attempt, 1);
    // Leased: invisible to a second lease.
    assert!(s.lease("orders", "erp", 10, 1_000, 10).unwrap().is_empty());
    assert!(s.ack(&got[0]).unwrap());
    assert_eq!(s.depth("orders", "erp").unwrap(), 0);
}

#[test]
fn an_expired_lease_is_redelivered_and_the_old_ack_does_not_count() {
    let (_d, s) = store();
    s.subscribe("t", "g").unwrap();
    s.publish("t", &json!(1)).unwrap();
    let first = s.lease("t", "g", 1, 1_000, 0).unwrap().remove(0);
    let second = s.lease("t", "g", 1, 1_000, 1_001).unwrap().remove(0);
    assert_eq!(second.seq, first.seq);
    assert_eq!(second.attempt, 2);
    assert!(
        !s.ack(&first).unwrap(),
        "a stale lease must not delete the row"
    );
    assert_eq!(s.depth("t", "g").unwrap(), 1);
    assert!(s.ack(&second).unwrap());
    assert_eq!(s.depth("t", "g").unwrap(), 0);
}

#[test]
fn nack_delays_redelivery() {
    let (_d, s) = store();
    s.subscribe("t", "g").unwrap();
    s.publish("t", &json!(1)).unwrap();
    let d = s.lease("t", "g", 1, 60_000, 0).unwrap().remove(0);
    assert!(s.nack(&d, 5_000).unwrap());
    assert!(s.lease("t", "g", 1, 1_000, 4_999).unwrap().is_empty());
    assert_eq!(s.lease("t", "g", 1, 1_000, 5_000).unwrap().len(), 1);
}

#[test]
fn topics_fan_out_to_groups_subscribed_before_the_publish() {
    let (_d, s) = store();
    s.subscribe("t", "a").unwrap();
    s.subscribe("t", "b").unwrap();
    s.subscribe("t", "a").unwrap(); // idempotent
    assert_eq!(s.publish("t", &json!("x")).unwrap(), 2);
    s.subscribe("t", "late").unwrap();
    assert_eq!(s.depth("t", "a").unwrap(), 1);
    assert_eq!(s.depth("t", "b").unwrap(), 1);
    assert_eq!(s.depth("t", "late").unwrap(), 0);
    assert_eq!(s.publish("nobody", &json!("y")).unwrap(), 0);
}

#[test]
fn unacked_messages_survive_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("railyard.db");
    {
        let s = Store::open(&path).unwrap();
        s.subscribe("t", "g").unwrap();
        s.publish("t", &json!({"order": 1042})).unwrap();
        let leased = s.lease("t", "g", 1, 1_000, 0).unwrap();
        assert_eq!(leased.len(), 1);
        // Dropped without ack: the process "crashed" mid-processing.
    }
    let s = Store::open(&path).unwrap();
    let again = s.lease("t", "g", 1, 1_000, 2_000).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].message, json!({"order": 1042}));
    assert_eq!(again[0].attempt, 2);
}

#[test]
fn concurrent_consumers_take_each_message_exactly_once() {
    let (_d, s) = store();
    s.subscribe("t", "g").unwrap();
    for i in 0..1_000 {
        s.publish("t", &json!(i)).unwrap();
    }
    let s = Arc::new(s);
    let acked = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (s, acked) = (s.clone(), acked.clone());
            std::thread::spawn(move || {
                loop {
                    let batch = s.lease("t", "g", 16, 60_000, 0).unwrap();
                    if batch.is_empty() {
                        return;
                    }
                    for d in batch {
                        assert!(s.ack(&d).unwrap());
                        acked.lock().unwrap().push(d.message.as_i64().unwrap());
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap();
    assert_eq!(acked.len(), 1_000, "every message once, none twice");
    let unique: BTreeSet<i64> = acked.iter().copied().collect();
    assert_eq!(unique.len(), 1_000);
    assert_eq!(s.depth("t", "g").unwrap(), 0);
}

#[test]
fn dedupe_keys_expire() {
    let (_d, s) = store();
    assert!(!s.seen("p", "evt-1", 1_000, 0).unwrap());
    assert!(s.seen("p", "evt-1", 1_000, 500).unwrap());
    assert!(
        !s.seen("other", "evt-1", 1_000, 500).unwrap(),
        "keys are per pipeline"
    );
    assert!(
        !s.seen("p", "evt-1", 1_000, 1_000).unwrap(),
        "expired at ttl"
    );
    assert_eq!(s.purge_expired(10_000).unwrap(), 2);
}

#[test]
fn dead_letters_are_kept_listed_and_taken() {
    let (_d, s) = store();
    let dl = |p: &str| DeadLetter {
        pipeline: p.to_string(),
        pipeline_version: 3,
        step: "steps[1] map".to_string(),
        error: json!({"code": "schema-violation"}),
        message: json!({"body": {"id": 1}, "meta": {"id": "m-1"}}),
        attempts: 1,
        at_ms: 42,
    };
    let a = s.dead_letter(&dl("a")).unwrap();
    s.dead_letter(&dl("b")).unwrap();
    assert_eq!(s.dead_letters(None, 10).unwrap().len(), 2);
    let only_a = s.dead_letters(Some("a"), 10).unwrap();
    assert_eq!(only_a.len(), 1);
    assert_eq!(only_a[0].1, dl("a"));
    assert_eq!(s.take_dead_letter(a).unwrap(), Some(dl("a")));
    assert_eq!(s.take_dead_letter(a).unwrap(), None);
    assert_eq!(s.dead_letters(None, 10).unwrap().len(), 1);
}
