//! put / load / delete / clear, table independence, reopen, sharing.

mod common;

use std::sync::Arc;

use common::TempDir;
use fulcrum_store::{Store, Table};

fn entries(store: &Store, table: Table) -> Vec<(String, Vec<u8>)> {
    store.load(table).expect("load")
}

fn kv(k: &str, v: &[u8]) -> (String, Vec<u8>) {
    (k.to_string(), v.to_vec())
}

#[test]
fn put_load_delete_clear_round_trip_with_independent_tables() {
    let dir = TempDir::new("round-trip");
    let store = Store::open(dir.path()).expect("open");
    assert_eq!(store.path(), dir.path().join("registry.redb"));
    assert!(store.path().is_file());

    // A fresh store has both tables, empty.
    assert!(entries(&store, Table::Registrations).is_empty());
    assert!(entries(&store, Table::Overrides).is_empty());

    // Inserted out of order, loaded in key order; the empty key and the
    // empty value are ordinary values.
    let r = Table::Registrations;
    store.put(r, "http://b:8000", br#"{"w":2}"#).unwrap();
    store.put(r, "http://a:8000", br#"{"w":1}"#).unwrap();
    store.put(r, "", b"").unwrap();
    store
        .put(Table::Overrides, "http://a:8000", b"drain")
        .unwrap();
    assert_eq!(
        entries(&store, r),
        vec![
            kv("", b""),
            kv("http://a:8000", br#"{"w":1}"#),
            kv("http://b:8000", br#"{"w":2}"#),
        ]
    );
    assert_eq!(
        entries(&store, Table::Overrides),
        vec![kv("http://a:8000", b"drain")]
    );

    // put replaces.
    store.put(r, "http://a:8000", br#"{"w":9}"#).unwrap();
    assert_eq!(entries(&store, r)[1], kv("http://a:8000", br#"{"w":9}"#));

    // delete: true once, then false; the other table keeps its key.
    assert!(store.delete(r, "http://a:8000").unwrap());
    assert!(!store.delete(r, "http://a:8000").unwrap());
    assert!(!store.delete(Table::Overrides, "http://b:8000").unwrap());
    assert_eq!(
        entries(&store, r),
        vec![kv("", b""), kv("http://b:8000", br#"{"w":2}"#)]
    );
    assert_eq!(
        entries(&store, Table::Overrides),
        vec![kv("http://a:8000", b"drain")]
    );

    // clear counts what it removed and leaves the other table alone.
    assert_eq!(store.clear(r).unwrap(), 2);
    assert_eq!(store.clear(r).unwrap(), 0);
    assert!(entries(&store, r).is_empty());
    assert_eq!(entries(&store, Table::Overrides).len(), 1);
    assert_eq!(store.clear(Table::Overrides).unwrap(), 1);
    assert!(entries(&store, Table::Overrides).is_empty());

    // The tables still work after being cleared.
    store.put(r, "k", b"v").unwrap();
    assert_eq!(entries(&store, r), vec![kv("k", b"v")]);
}

#[test]
fn data_survives_drop_and_reopen() {
    let dir = TempDir::new("reopen");
    let big = vec![0xA5u8; 64 * 1024];
    {
        let store = Store::open(dir.path()).expect("first open");
        for i in 0..100 {
            let key = format!("http://10.0.0.{i}:8000");
            store
                .put(
                    Table::Registrations,
                    &key,
                    format!("{{\"i\":{i}}}").as_bytes(),
                )
                .unwrap();
        }
        store.put(Table::Overrides, "big", &big).unwrap();
        store.put(Table::Overrides, "gone", b"x").unwrap();
        assert!(store.delete(Table::Overrides, "gone").unwrap());
    }
    let store = Store::open(dir.path()).expect("reopen");
    let regs = entries(&store, Table::Registrations);
    assert_eq!(regs.len(), 100);
    for (key, value) in &regs {
        let i: u32 = key
            .trim_start_matches("http://10.0.0.")
            .trim_end_matches(":8000")
            .parse()
            .unwrap();
        assert_eq!(value, format!("{{\"i\":{i}}}").as_bytes());
    }
    assert_eq!(entries(&store, Table::Overrides), vec![kv("big", &big)]);

    // And a third time, after writing through the reopened store.
    store.put(Table::Overrides, "after", b"1").unwrap();
    drop(store);
    let store = Store::open(dir.path()).expect("third open");
    assert_eq!(entries(&store, Table::Overrides).len(), 2);
}

#[test]
fn one_store_shared_between_threads() {
    let dir = TempDir::new("threads");
    let store = Arc::new(Store::open(dir.path()).expect("open"));
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                for i in 0..10 {
                    let key = format!("t{t}-{i:02}");
                    store
                        .put(Table::Registrations, &key, key.as_bytes())
                        .unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let all = entries(&store, Table::Registrations);
    assert_eq!(all.len(), 40);
    assert!(all.iter().all(|(k, v)| k.as_bytes() == v.as_slice()));
}
