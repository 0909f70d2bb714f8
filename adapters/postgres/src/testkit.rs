//! A fresh PostgreSQL database per test (feature `testkit`), on the server that `scripts/test.sh`
//! starts (`DATABASE_URL`), dropped again when the test's guard goes. The one helper every
//! PostgreSQL test uses, so that creating, naming and dropping a test database is done one way.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AssertSqlSafe, Connection};

use crate::PostgresReadModel;

/// The variable naming the server to create test databases on: any database of it that the user
/// may connect to and create databases from (`scripts/postgres-local.sh` exports one).
pub const DATABASE_URL_VARIABLE: &str = "DATABASE_URL";

/// The URL of the server, or a panic that says how to get one: a PostgreSQL suite never skips itself.
///
/// # Panics
/// When `DATABASE_URL` is not set.
pub fn server_url() -> String {
    std::env::var(DATABASE_URL_VARIABLE).unwrap_or_else(|_| {
        panic!(
            "{DATABASE_URL_VARIABLE} is not set: the PostgreSQL tests need a server. Run them with \
             ./scripts/test.sh, or `source scripts/postgres-local.sh && postgres_local_start` first \
             (it exports {DATABASE_URL_VARIABLE})"
        )
    })
}

/// The admin connection options of the server.
///
/// # Panics
/// When `DATABASE_URL` is not set or is no PostgreSQL URL.
pub fn server() -> PgConnectOptions {
    let url = server_url();
    PgConnectOptions::from_str(&url)
        .unwrap_or_else(|e| panic!("{DATABASE_URL_VARIABLE} = {url} is no PostgreSQL URL: {e}"))
}

/// `url` with its database replaced by `database`, for what takes a URL rather than connect
/// options (the binaries' configuration).
///
/// # Panics
/// When `url` has no scheme.
pub fn url_with_database(url: &str, database: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(base, query)| (base, Some(query)));
    let (scheme, rest) = base.split_once("://").expect("a URL with a scheme");
    let authority = rest
        .split_once('/')
        .map_or(rest, |(authority, _)| authority);
    let query = query.map(|query| format!("?{query}")).unwrap_or_default();
    format!("{scheme}://{authority}/{database}{query}")
}

/// A database created for one test; dropped (connections and all) when this guard is dropped.
#[derive(Debug)]
pub struct FreshDatabase {
    pub name: String,
    pub options: PgConnectOptions,
}

impl FreshDatabase {
    /// Creates an empty database with a unique name, without any schema.
    ///
    /// # Panics
    /// When the server cannot be reached or refuses to create it: a test cannot go on without it.
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

    /// Creates one and applies the migrations, as `ledger migrate` does.
    ///
    /// # Panics
    /// As [`FreshDatabase::create`], or when the migrations fail.
    pub async fn migrated() -> Self {
        let database = Self::create().await;
        database.read_model().await.close().await;
        database
    }

    /// This database's URL (the server's URL naming it), for what is configured by URL.
    pub fn url(&self) -> String {
        url_with_database(&server_url(), &self.name)
    }

    /// A read model on this database, migrated (migrating again is a no-op).
    ///
    /// # Panics
    /// When it cannot connect or migrate.
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
