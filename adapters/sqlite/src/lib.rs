//! Embedded SQLite adapters of the ledger's store ports: the event store and its feed
//! ([`SqliteEventStore`]), the read model ([`SqliteReadModel`]) and the projectors' positions
//! ([`SqliteCheckpoints`]), all in one database file opened as a [`SqliteDatabase`]; and
//! [`SqliteProjectorLease`], the file lock beside it that keeps one projector active.
//!
//! ```no_run
//! # async fn run() -> Result<(), ledger_application::ports::StoreError> {
//! use ledger_sqlite::{SqliteDatabase, SqliteEventStore, SqliteReadModel};
//!
//! let db = SqliteDatabase::open(std::path::Path::new("./data/ledger.db")).await?;
//! let events = SqliteEventStore::new(&db); // or db.event_store()
//! let read_model = SqliteReadModel::new(&db); // or db.read_model()
//! // ... serve ...
//! db.close().await?; // checkpoints the WAL into the database file
//! # drop((events, read_model));
//! # Ok(())
//! # }
//! ```
//!
//! Every write goes through one connection, owned by the database's writer thread, which commits the
//! writes queued up together in one `BEGIN IMMEDIATE` transaction (a group commit, one fsync), each in
//! a savepoint of its own, and answers none before that COMMIT has returned: this process never
//! contends with itself for SQLite's single write lock, and another process (the admin tool) waits on
//! the busy timeout instead of deadlocking. Reads use a separate pool of read-only connections, which
//! WAL mode lets run alongside the writer.

mod checkpoints;
pub mod constraint;
mod database;
mod event_store;
mod lease;
mod migrations;
mod read_model;
mod rebuild;
mod rows;
mod writer;

pub use checkpoints::SqliteCheckpoints;
pub use database::{SqliteDatabase, SqliteSettings};
pub use event_store::SqliteEventStore;
pub use lease::SqliteProjectorLease;
pub use migrations::SCHEMA_VERSION;
pub use read_model::SqliteReadModel;
pub use rebuild::SqliteRebuild;
pub use writer::{GroupCommit, WriteStats};
