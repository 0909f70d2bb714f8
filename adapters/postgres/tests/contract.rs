//! The read-model and checkpoints contract suites, unchanged, against PostgreSQL: each case on a fresh database,
//! created on the server of `DATABASE_URL` (which `scripts/test.sh` starts) and dropped after.

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
