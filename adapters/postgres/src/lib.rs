//! The PostgreSQL read model ([`PostgresReadModel`]): the `Projection`, `ReadModelQuery` and
//! `HealthCheck` ports on flat tables, shared by every API task and the projector of the AWS
//! topology (design §5), and the projectors' positions beside it ([`PostgresCheckpoints`]), with
//! the schema embedded and applied by [`migrate`]; and [`PostgresProjectorLease`], the advisory lock
//! that keeps one `ledger-projector` active.
//!
//! ```no_run
//! # async fn run() -> Result<(), ledger_application::ports::StoreError> {
//! use ledger_postgres::PostgresReadModel;
//!
//! let read_model = PostgresReadModel::connect("postgres://ledger@127.0.0.1/ledger").await?;
//! read_model.migrate().await?;
//! // ... project and serve ...
//! read_model.close().await;
//! # Ok(())
//! # }
//! ```
//!
//! Every apply is one transaction whose account update is conditional on
//! `last_sequence = sequence - 1`: PostgreSQL's row lock, not a read beforehand, decides which of two
//! racing projectors applies an event; the other finds no matching row and is `Stale`.

mod checkpoints;
mod lease;
mod migrations;
mod read_model;
mod rebuild;
mod rows;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use checkpoints::PostgresCheckpoints;
pub use lease::PostgresProjectorLease;
pub use migrations::{SCHEMA_VERSION, migrate};
pub use read_model::{LAST_TRANSACTION_AT_OR_BEFORE, PostgresReadModel};
pub use rebuild::{FRESH_SCHEMA, PostgresRebuild};
