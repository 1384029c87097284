//! Start-up failures must be clear errors that name the file, never an
//! empty store: garbage in the file, a damaged file, a directory that cannot
//! exist, and a second open of a store that is in use.

mod common;

use common::TempDir;
use fulcrum_store::{Store, StoreError, Table};

fn open_err(dir: &std::path::Path) -> StoreError {
    match Store::open(dir) {
        Ok(store) => panic!(
            "opened {} although it should have failed; it holds {} registrations",
            store.path().display(),
            store
                .load(Table::Registrations)
                .map(|v| v.len())
                .unwrap_or(0)
        ),
        Err(e) => e,
    }
}

/// Deterministic noise (xorshift), so a failure reproduces.
fn garbage(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn garbage_file_is_reported_as_corrupt_with_its_path() {
    let dir = TempDir::new("garbage");
    let file = dir.path().join("registry.redb");
    for bytes in [
        garbage(64 * 1024),
        b"{\"registrations\": []}\n".to_vec(),
        garbage(3),
    ] {
        std::fs::write(&file, &bytes).unwrap();
        let err = open_err(dir.path());
        let msg = err.to_string();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
        assert!(msg.contains(&file.display().to_string()), "{msg}");
        assert!(msg.contains("corrupt"), "{msg}");
        assert!(msg.contains("move it aside"), "{msg}");
        assert_eq!(err.path(), file);
        // The file is left as it was, for the operator to inspect.
        assert_eq!(std::fs::read(&file).unwrap(), bytes);
    }
}

#[test]
fn damaged_store_is_refused_not_emptied() {
    let dir = TempDir::new("damaged");
    {
        let store = Store::open(dir.path()).unwrap();
        for i in 0..200 {
            let value = vec![i as u8; 1000];
            store
                .put(Table::Registrations, &format!("key-{i:04}"), &value)
                .unwrap();
        }
    }
    // Keep the file's first page (its header) and overwrite everything
    // after it: the header is intact but the data it points at is not.
    let file = dir.path().join("registry.redb");
    let mut bytes = std::fs::read(&file).unwrap();
    assert!(bytes.len() > 8192, "file is {} bytes", bytes.len());
    let noise = garbage(bytes.len() - 4096);
    bytes[4096..].copy_from_slice(&noise);
    std::fs::write(&file, &bytes).unwrap();

    let err = open_err(dir.path());
    let msg = err.to_string();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}: {msg}");
    assert!(msg.contains(&file.display().to_string()), "{msg}");
}

/// One flipped byte inside a stored value, in a file that was closed
/// cleanly. redb's crash recovery does not look at such a file, so without
/// the full checksum check at open this value would load silently wrong.
#[test]
fn one_flipped_byte_in_a_value_is_refused() {
    let dir = TempDir::new("flipped");
    {
        let store = Store::open(dir.path()).unwrap();
        for i in 0..50 {
            store
                .put(Table::Registrations, &format!("key-{i:04}"), &[0x5A; 1000])
                .unwrap();
        }
    }
    let file = dir.path().join("registry.redb");
    let mut bytes = std::fs::read(&file).unwrap();
    let at = bytes
        .windows(1000)
        .position(|w| w.iter().all(|&b| b == 0x5A))
        .expect("a stored value in the file");
    bytes[at + 500] ^= 0x01;
    std::fs::write(&file, &bytes).unwrap();

    let err = open_err(dir.path());
    let msg = err.to_string();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}: {msg}");
    assert!(msg.contains(&file.display().to_string()), "{msg}");
}

#[test]
fn directory_under_a_regular_file_is_a_clear_error() {
    let dir = TempDir::new("not-a-dir");
    let blocker = dir.path().join("state");
    std::fs::write(&blocker, b"i am a file").unwrap();
    let wanted = blocker.join("fulcrum");

    let err = open_err(&wanted);
    let msg = err.to_string();
    assert!(matches!(err, StoreError::Directory { .. }), "{err:?}");
    assert!(msg.contains(&wanted.display().to_string()), "{msg}");
    assert!(msg.contains("directory"), "{msg}");
    assert_eq!(err.path(), wanted);
}

#[test]
fn store_path_that_is_a_directory_is_a_clear_error() {
    let dir = TempDir::new("file-is-dir");
    let file = dir.path().join("registry.redb");
    std::fs::create_dir(&file).unwrap();
    let err = open_err(dir.path());
    let msg = err.to_string();
    assert!(msg.contains(&file.display().to_string()), "{msg}");
    assert!(msg.starts_with("registry store "), "{msg}");
}

/// redb locks the file for as long as the `Database` is open, in this
/// process as in another: a second `Store::open` of the same directory is
/// refused (share one `Store` behind an `Arc` instead), and succeeds again
/// once the first is dropped.
#[test]
fn second_open_while_in_use_is_refused_clearly() {
    let dir = TempDir::new("in-use");
    let first = Store::open(dir.path()).unwrap();
    first.put(Table::Overrides, "k", b"v").unwrap();

    let err = open_err(dir.path());
    let msg = err.to_string();
    assert!(matches!(err, StoreError::InUse { .. }), "{err:?}");
    assert!(msg.contains(&first.path().display().to_string()), "{msg}");
    assert!(msg.contains("already in use"), "{msg}");
    assert!(msg.contains("another fulcrum process"), "{msg}");

    // The refused open did not disturb the first store.
    first.put(Table::Overrides, "k2", b"v2").unwrap();
    assert_eq!(first.load(Table::Overrides).unwrap().len(), 2);

    drop(first);
    let again = Store::open(dir.path()).expect("open after the first is dropped");
    assert_eq!(again.load(Table::Overrides).unwrap().len(), 2);
}
