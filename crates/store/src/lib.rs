//! # fulcrum-store — the service registry on disk
//!
//! The gateway's registry (endpoints registered at run time, and operator
//! overrides) must survive a restart and a `kill -9` in the middle of a
//! write, and a store that is corrupt or unreadable must stop start-up with
//! a clear error rather than come up empty. This crate is that store: one
//! file, `<dir>/registry.redb`, holding two tables ([`Table::Registrations`]
//! and [`Table::Overrides`]) that map a string key (e.g. an endpoint URL) to
//! opaque bytes (the caller stores JSON). It knows nothing about what the
//! values mean, so the registry's types can change without touching it.
//!
//! ## Why redb
//!
//! [redb](https://www.redb.org) is a maintained, pure-Rust, embedded ACID
//! key-value store in which every committed write transaction is durable
//! (fsync'd) by default and a crash at any point leaves the last committed
//! state, which is exactly the guarantee this registry needs and nothing
//! more. The alternatives cost more for less: sled is unmaintained and still
//! beta, SQLite brings a C build and a SQL layer to a key-value need, and a
//! JSON file has no atomicity without a hand-written write-fsync-rename dance.
//!
//! ## Guarantees and what each failure looks like
//!
//! - [`Store::put`], [`Store::delete`] and [`Store::clear`] are each one
//!   write transaction committed with [`redb::Durability::Immediate`]: when
//!   they return `Ok`, the change is on disk. A process killed before that
//!   leaves the previous state; never a half-written entry (the crate's
//!   `kill -9` test checks this against a real SIGKILLed writer).
//! - [`Store::open`] creates the directory and file if missing. On an
//!   existing file it runs redb's crash recovery (if the last run did not
//!   close cleanly) and then a full checksum check of every page, so a
//!   damaged file is refused at start-up with [`StoreError::Corrupt`]
//!   instead of surfacing later as wrong bytes. The registry is small (a few
//!   KiB to MiB), so that check costs milliseconds (about 3 ms for 2,000
//!   entries of 1 KiB). What redb does repair silently is what a crash
//!   leaves: a commit torn by the crash, one whose `put` never returned, is
//!   rolled back to the commit before it. redb 4.4 can panic rather than
//!   return an error on some damaged files; `open` turns that panic into
//!   [`StoreError::Corrupt`] too (the panic message still reaches stderr
//!   through the panic hook). The calls after `open` do not catch panics.
//! - A second [`Store::open`] of the same file while the first [`Store`] is
//!   alive, in this process or another one, fails with
//!   [`StoreError::InUse`]: redb holds an advisory lock on the file for as
//!   long as the database is open. Share one `Store` behind an `Arc`
//!   instead; it is `Send + Sync`, and redb serialises write transactions.
//! - Every [`StoreError`] names the file and says what to do about it.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
};

/// The file name inside the directory given to [`Store::open`].
pub const FILE_NAME: &str = "registry.redb";

/// Cap on redb's page cache. The registry is tiny; redb's default cap
/// (1 GiB) is for general-purpose databases.
const CACHE_BYTES: usize = 4 * 1024 * 1024;

const REGISTRATIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("registrations");
const OVERRIDES: TableDefinition<&str, &[u8]> = TableDefinition::new("overrides");

/// One of the store's two tables. They are independent: the same key may
/// exist in both with different values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// Endpoints registered at run time (table name `registrations`).
    Registrations,
    /// Operator overrides (table name `overrides`).
    Overrides,
}

impl Table {
    fn definition(self) -> TableDefinition<'static, &'static str, &'static [u8]> {
        match self {
            Table::Registrations => REGISTRATIONS,
            Table::Overrides => OVERRIDES,
        }
    }

    /// The table's name inside the file.
    pub fn name(self) -> &'static str {
        match self {
            Table::Registrations => "registrations",
            Table::Overrides => "overrides",
        }
    }
}

/// Why the store could not be opened, read or written. Every message names
/// the file (or directory) and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The state directory could not be created or is not a directory
    /// (for example, a path under a regular file).
    #[error(
        "cannot create registry store directory {}: {source}; \
         check that the path is a writable directory (and not under a regular file)",
        path.display()
    )]
    Directory {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Another open [`Store`] (in this process or another) holds the file.
    #[error(
        "registry store {} is already in use (by another fulcrum process?); \
         stop the other process or give this one a different state directory",
        path.display()
    )]
    InUse { path: PathBuf },
    /// The file is not a redb file, or its checksums do not match.
    #[error(
        "registry store {} is corrupt or not a redb file: {cause}; \
         move it aside to start empty",
        path.display()
    )]
    Corrupt { path: PathBuf, cause: String },
    /// The file was written in a redb file format this build cannot read.
    #[error(
        "registry store {} uses redb file format {format}, which this fulcrum cannot read; \
         open it with the fulcrum release that wrote it, or move it aside to start empty",
        path.display()
    )]
    Format { path: PathBuf, format: u8 },
    /// An I/O error (permissions, disk full, a failing disk).
    #[error(
        "registry store {} could not be {action}: {source}; \
         check that it is a regular file fulcrum can read and write, and the free space on its disk",
        path.display()
    )]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// Any other failure reported by redb.
    #[error(
        "registry store {} could not be {action}: {cause}; \
         restart fulcrum, and if this persists move the file aside to start empty",
        path.display()
    )]
    Other {
        path: PathBuf,
        action: &'static str,
        cause: String,
    },
}

impl StoreError {
    /// The file (or, for [`StoreError::Directory`], directory) concerned.
    pub fn path(&self) -> &Path {
        match self {
            StoreError::Directory { path, .. }
            | StoreError::InUse { path }
            | StoreError::Corrupt { path, .. }
            | StoreError::Format { path, .. }
            | StoreError::Io { path, .. }
            | StoreError::Other { path, .. } => path,
        }
    }

    fn from_redb(path: &Path, action: &'static str, err: redb::Error) -> StoreError {
        let path = path.to_path_buf();
        match err {
            redb::Error::Corrupted(cause) => StoreError::Corrupt { path, cause },
            redb::Error::DatabaseAlreadyOpen => StoreError::InUse { path },
            redb::Error::UpgradeRequired(format) => StoreError::Format { path, format },
            // redb reports a file that is not a redb database (wrong magic
            // number) as an I/O error of this kind.
            redb::Error::Io(source) if source.kind() == std::io::ErrorKind::InvalidData => {
                StoreError::Corrupt {
                    path,
                    cause: source.to_string(),
                }
            }
            redb::Error::Io(source) => StoreError::Io {
                path,
                action,
                source,
            },
            // A header that claims a table of another type is damage too.
            redb::Error::TableTypeMismatch { .. } => StoreError::Corrupt {
                path,
                cause: err.to_string(),
            },
            other => StoreError::Other {
                path,
                action,
                cause: other.to_string(),
            },
        }
    }
}

/// The registry store: one redb file with the two [`Table`]s.
///
/// `Send + Sync`; share it behind an `Arc`. Each call is its own
/// transaction; writes are serialised by redb and durable on return.
pub struct Store {
    db: Database,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating the directory and file if missing) `<dir>/registry.redb`.
    ///
    /// Runs crash recovery if needed and verifies every checksum, so a damaged
    /// file is refused here with [`StoreError::Corrupt`]. Fails with
    /// [`StoreError::InUse`] while another `Store` has the file open.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Directory {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(FILE_NAME);
        // redb 4.4 can panic (`unreachable!`) instead of returning an error
        // when a cleanly closed file has damaged pages. Turn that into the
        // error it should have been. Nothing outlives the closure, so no
        // state observed after the panic can be broken; the panic message
        // still reaches the panic hook (stderr).
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Store::open_file(&path))) {
            Ok(result) => result,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".to_string());
                Err(StoreError::Corrupt {
                    path,
                    cause: format!("redb failed while reading it ({what})"),
                })
            }
        }
    }

    fn open_file(path: &Path) -> Result<Store, StoreError> {
        let err = |action, e: redb::Error| StoreError::from_redb(path, action, e);
        let mut db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .map_err(|e| err("opened", e.into()))?;
        // Crash recovery alone trusts a file that was closed cleanly; this
        // reads every page so damage is found now, not at some later read.
        db.check_integrity().map_err(|e| err("checked", e.into()))?;

        // Create both tables up front (and check their types), so reads never
        // meet a missing table.
        let txn = db.begin_write().map_err(|e| err("opened", e.into()))?;
        for table in [Table::Registrations, Table::Overrides] {
            txn.open_table(table.definition())
                .map_err(|e| err("opened", e.into()))?;
        }
        txn.commit().map_err(|e| err("opened", e.into()))?;

        Ok(Store {
            db,
            path: path.to_path_buf(),
        })
    }

    /// The store's file, `<dir>/registry.redb`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Inserts or replaces `key` in `table`: one durable write transaction.
    pub fn put(&self, table: Table, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.write(table, |t| {
            t.insert(key, value)?;
            Ok(((), true))
        })
    }

    /// Removes `key` from `table`; `true` if it existed.
    pub fn delete(&self, table: Table, key: &str) -> Result<bool, StoreError> {
        self.write(table, |t| {
            let existed = t.remove(key)?.is_some();
            Ok((existed, existed))
        })
    }

    /// Removes every entry of `table`; returns how many there were.
    pub fn clear(&self, table: Table) -> Result<usize, StoreError> {
        self.write(table, |t| {
            let n = t.len()?;
            if n > 0 {
                t.retain(|_, _| false)?;
            }
            // A table has far fewer than usize::MAX entries on any target
            // that could hold them in memory.
            Ok((usize::try_from(n).unwrap_or(usize::MAX), n > 0))
        })
    }

    /// All entries of `table`, in key order.
    pub fn load(&self, table: Table) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let err = |e: redb::Error| StoreError::from_redb(&self.path, "read", e);
        let txn = self.db.begin_read().map_err(|e| err(e.into()))?;
        let t = txn
            .open_table(table.definition())
            .map_err(|e| err(e.into()))?;
        let mut out = Vec::new();
        for entry in t.iter().map_err(|e| err(e.into()))? {
            let (k, v) = entry.map_err(|e| err(e.into()))?;
            out.push((k.value().to_owned(), v.value().to_vec()));
        }
        Ok(out)
    }

    /// Runs `f` on `table` in one write transaction. `f` returns its result
    /// and whether it changed anything: an unchanged transaction is aborted
    /// rather than committed, which saves an fsync.
    fn write<R>(
        &self,
        table: Table,
        f: impl FnOnce(
            &mut redb::Table<'_, &'static str, &'static [u8]>,
        ) -> Result<(R, bool), redb::StorageError>,
    ) -> Result<R, StoreError> {
        let err = |e: redb::Error| StoreError::from_redb(&self.path, "written", e);
        let mut txn = self.db.begin_write().map_err(|e| err(e.into()))?;
        // The default, stated so the guarantee is visible here.
        txn.set_durability(Durability::Immediate)
            .map_err(|e| err(e.into()))?;
        let (result, changed) = {
            let mut t = txn
                .open_table(table.definition())
                .map_err(|e| err(e.into()))?;
            f(&mut t).map_err(|e| err(e.into()))?
        };
        if changed {
            txn.commit().map_err(|e| err(e.into()))?;
        } else {
            txn.abort().map_err(|e| err(e.into()))?;
        }
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn store_is_send_and_sync() {
        assert_send_sync::<Store>();
        assert_send_sync::<StoreError>();
    }

    #[test]
    fn table_names_match_definitions() {
        use redb::TableHandle;
        for t in [Table::Registrations, Table::Overrides] {
            assert_eq!(t.definition().name(), t.name());
        }
    }
}
