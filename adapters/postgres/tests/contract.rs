//! The read-model and checkpoints contract suites, unchanged, against PostgreSQL: each case on a fresh
//! database, created on the server of `DATABASE_URL` (which `scripts/test.sh` starts) and dropped after;
//! and the projector lease contract against the session advisory lock.

use std::sync::Arc;

use ledger_application::testkit::{CheckpointsSubject, ReadModelSubject};
use ledger_postgres::testkit::FreshDatabase;

ledger_application::read_model_contract_tests!(|| async {
    let database = FreshDatabase::create().await;
    let read_model = database.read_model().await;
    // The guard drops the database WITH (FORCE): connections the pool still holds cannot keep it.
    ReadModelSubject::new(Arc::new(read_model), database)
});

mod checkpoints {
    use super::*;

    ledger_application::projection_checkpoints_contract_tests!(|| async {
        let database = FreshDatabase::create().await;
        let read_model = database.read_model().await;
        CheckpointsSubject::new(Arc::new(read_model.checkpoints()), database)
    });
}

/// Severing terminates, from an admin session, every other session holding an advisory lock in the
/// test's database (tests run side by side on one server), as a server restart or failover would.
mod projector_lease {
    use std::sync::Arc;

    use ledger_application::ports::ProjectorLease;
    use ledger_application::testkit::LeaseSubject;
    use ledger_postgres::PostgresProjectorLease;
    use sqlx::Connection;
    use sqlx::postgres::PgConnection;

    use super::FreshDatabase;

    async fn subject() -> LeaseSubject {
        let database = FreshDatabase::create().await;
        let options = database.options.clone();
        let pool = sqlx::postgres::PgPoolOptions::new().connect_lazy_with(options.clone());
        let lease = PostgresProjectorLease::new(pool, "ledger-projector:contract_events");
        LeaseSubject::new(
            Box::new(move || {
                let lease: Arc<dyn ProjectorLease> = Arc::new(lease.clone());
                Box::pin(async move { lease })
            }),
            Some(Box::new(move || {
                let options = options.clone();
                Box::pin(async move {
                    let mut admin = PgConnection::connect_with(&options)
                        .await
                        .expect("an admin session on the test database");
                    let terminated: Vec<bool> = sqlx::query_scalar(
                        "SELECT pg_terminate_backend(pid) FROM pg_locks \
                         WHERE locktype = 'advisory' AND pid <> pg_backend_pid() \
                         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                    )
                    .fetch_all(&mut admin)
                    .await
                    .expect("terminate the holders");
                    assert!(!terminated.is_empty(), "a holder to sever");
                    admin.close().await.expect("close the admin session");
                })
            })),
            database,
        )
    }

    ledger_application::projector_lease_contract_tests!(subject);

    mod severing {
        ledger_application::projector_lease_severing_contract_tests!(super::subject);
    }
}
