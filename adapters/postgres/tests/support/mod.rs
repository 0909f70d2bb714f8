//! A fresh database per test on the PostgreSQL that `scripts/test.sh` starts (`DATABASE_URL`), dropped
//! again when the test's guard goes.

use std::str::FromStr;

use ledger_postgres::PostgresReadModel;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AssertSqlSafe, Connection};

/// The server to create test databases on: any database of it that the user may connect to and
/// create databases from (`scripts/postgres-local.sh` exports one).
pub const DATABASE_URL_VARIABLE: &str = "DATABASE_URL";

/// The admin connection options, or a panic that says how to get them: a PostgreSQL suite never
/// skips itself.
pub fn server() -> PgConnectOptions {
    let url = std::env::var(DATABASE_URL_VARIABLE).unwrap_or_else(|_| {
        panic!(
            "{DATABASE_URL_VARIABLE} is not set: the PostgreSQL tests need a server. Run them with \
             ./scripts/test.sh, or `source scripts/postgres-local.sh && postgres_local_start` first \
             (it exports {DATABASE_URL_VARIABLE})"
        )
    });
    PgConnectOptions::from_str(&url)
        .unwrap_or_else(|e| panic!("{DATABASE_URL_VARIABLE} = {url} is no PostgreSQL URL: {e}"))
}

/// A database created for one test; dropped (connections and all) when this guard is dropped.
#[derive(Debug)]
pub struct FreshDatabase {
    pub name: String,
    pub options: PgConnectOptions,
}

impl FreshDatabase {
    pub async fn create() -> Self {
        let server = server();
        let name = format!("ledger_test_{}", uuid::Uuid::now_v7().simple());
        let mut admin = PgConnection::connect_with(&server)
            .await
            .expect("connect to the PostgreSQL server of DATABASE_URL");
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create a fresh database");
        admin.close().await.expect("close the admin connection");
        let options = server.database(&name);
        Self { name, options }
    }

    /// A read model on this database, migrated.
    pub async fn read_model(&self) -> PostgresReadModel {
        let read_model = PostgresReadModel::connect_with(self.options.clone())
            .await
            .expect("connect to the fresh database");
        read_model.migrate().await.expect("migrate");
        read_model
    }
}

impl Drop for FreshDatabase {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which cannot be blocked on; a thread of its own with
        // a small runtime drops the database (FORCE ends connections a pool still holds).
        let server = server();
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime to drop the test database");
            runtime.block_on(async move {
                let mut admin = PgConnection::connect_with(&server).await?;
                sqlx::raw_sql(AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut admin)
                .await?;
                admin.close().await
            })
        })
        .join();
        assert!(
            matches!(dropped, Ok(Ok(()))) || std::thread::panicking(),
            "could not drop test database {}: {dropped:?}",
            self.name
        );
    }
}
