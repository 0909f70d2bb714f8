//! The read model's credentials from Secrets Manager, end to end: a secret on moto's Secrets Manager
//! (`scripts/moto-local.sh`), a PostgreSQL role that logs in by password (the `ledger_password_auth`
//! members of `scripts/postgres-local.sh`), and `ReadSide::open` as every binary calls it, with an
//! AWS-shaped `DATABASE_URL` (no password, another username, `sslmode=verify-full`); and a rotation
//! of the password while the pools are open, taken by the periodic re-read of the secret.

use std::time::Duration;

use ledger_application::ports::ProjectorLease;
use ledger_bootstrap::LedgerConfig;
use ledger_bootstrap::database_credentials::DatabaseCredentialsError;
use ledger_bootstrap::startup::{ReadSide, StartupError};
use ledger_postgres::testkit::{FreshDatabase, server};
use ledger_postgres::{PostgresReadModel, PostgresRebuild};
use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool};
use tokio::time::Instant;

/// The Secrets Manager client of the code under test, pointed at moto; a panic without it, so that
/// the test never reaches a real AWS account and never skips itself.
async fn secrets_manager() -> aws_sdk_secretsmanager::Client {
    assert!(
        std::env::var_os("AWS_ENDPOINT_URL_SECRETS_MANAGER").is_some(),
        "AWS_ENDPOINT_URL_SECRETS_MANAGER is not set: run with ./scripts/test.sh, or \
         `source scripts/moto-local.sh && moto_local_start` first"
    );
    aws_sdk_secretsmanager::Client::new(&ledger_dynamodb::config::aws_sdk_config().await)
}

/// Runs `sql` on the server of `DATABASE_URL` as its (superuser) owner.
async fn as_admin(sql: String) {
    let mut admin = PgConnection::connect_with(&server())
        .await
        .expect("connect to the server of DATABASE_URL");
    sqlx::raw_sql(AssertSqlSafe(sql))
        .execute(&mut admin)
        .await
        .expect("the admin statement");
    admin.close().await.expect("close the admin connection");
}

/// A login role that must give `password` (it is a member of `ledger_password_auth`); dropped by
/// [`PasswordRole::drop_role`].
struct PasswordRole {
    name: String,
}

impl PasswordRole {
    async fn create(password: &str) -> Self {
        let name = format!("ledger_secret_{}", uuid::Uuid::now_v7().simple());
        as_admin(format!(
            "CREATE ROLE {name} LOGIN PASSWORD '{password}' IN ROLE ledger_password_auth"
        ))
        .await;
        Self { name }
    }

    /// What a rotation does on the server: the old password stops working at once.
    async fn set_password(&self, password: &str) {
        as_admin(format!("ALTER ROLE {} PASSWORD '{password}'", self.name)).await;
    }

    /// Ends every session of this role, as a pool's retirement of its connections would (after
    /// their `max_lifetime`), waiting up to 5 s for each to be gone.
    async fn terminate_sessions(&self) {
        as_admin(format!(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE usename = '{}'",
            self.name
        ))
        .await;
    }

    async fn drop_role(self) {
        as_admin(format!("DROP ROLE {}", self.name)).await;
    }
}

/// A secret named after `role` with `secret_string`; its ARN.
async fn create_secret(
    client: &aws_sdk_secretsmanager::Client,
    name: &str,
    secret_string: &str,
) -> String {
    client
        .create_secret()
        .name(name)
        .secret_string(secret_string)
        .send()
        .await
        .expect("create the secret on moto")
        .arn()
        .expect("moto names the secret's ARN")
        .to_owned()
}

/// The AWS shape of the configuration: a URL without password and with another username (the
/// secret's replace it), TLS verified against the test cluster's CA, and the secret's ARN.
fn config(database: &FreshDatabase, arn: &str) -> LedgerConfig {
    let server = server();
    let ca = std::env::var("LEDGER_TEST_PG_CA")
        .expect("LEDGER_TEST_PG_CA, the CA of scripts/postgres-local.sh's cluster");
    let url = format!(
        "postgres://not_the_secrets_user@{}:{}/{}?sslmode=verify-full&sslrootcert={ca}",
        server.get_host(),
        server.get_port(),
        database.name
    );
    LedgerConfig::from_lookup(|name| match name {
        "LEDGER_EVENT_STORE" => Some("dynamodb".to_owned()),
        "LEDGER_READ_MODEL" => Some("postgres".to_owned()),
        "DATABASE_URL" => Some(url.clone()),
        "LEDGER_DATABASE_SECRET_ARN" => Some(arn.to_owned()),
        _ => None,
    })
    .expect("a valid configuration")
}

fn secret_string(username: &str, password: &str) -> String {
    serde_json::json!({ "username": username, "password": password, "engine": "postgres" })
        .to_string()
}

#[tokio::test]
async fn the_secrets_password_opens_the_read_model_and_a_wrong_one_is_refused() {
    let client = secrets_manager().await;
    let database = FreshDatabase::migrated().await;
    let role = PasswordRole::create("right-password-7f3a").await;
    let arn = create_secret(
        &client,
        &role.name,
        &secret_string(&role.name, "wrong-password-91c2"),
    )
    .await;
    let config = config(&database, &arn);

    // The server checks the password (scram-sha-256 for this role): the secret's wrong one fails,
    // and the failure does not print it.
    let error = ReadSide::open(&config)
        .await
        .expect_err("the server must refuse a wrong password");
    assert!(matches!(error, StartupError::Postgres { .. }), "{error:?}");
    let printed = format!("{error} {error:?}");
    assert!(!printed.contains("wrong-password-91c2"), "{printed}");

    // A new version of the secret (as a rotation writes it) is read at the next start.
    client
        .put_secret_value()
        .secret_id(&arn)
        .secret_string(secret_string(&role.name, "right-password-7f3a"))
        .send()
        .await
        .expect("put the right password");
    let read_model = open_refreshing_every(&config, config.database_secret_refresh).await;
    let (user, ssl): (String, bool) = sqlx::query_as(
        "SELECT current_user::text, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
    )
    .fetch_one(read_model.pool())
    .await
    .expect("who the server says we are");
    assert_eq!(user, role.name, "not the secret's username");
    assert!(ssl, "not over TLS");
    read_model.close().await;
    drop(database);
    role.drop_role().await;
}

#[tokio::test]
async fn a_missing_secret_is_reported_as_not_found() {
    let client = secrets_manager().await;
    let database = FreshDatabase::create().await;
    // An ARN of moto's account and region whose secret was never created.
    let known = create_secret(
        &client,
        &format!("ledger-known-{}", uuid::Uuid::now_v7().simple()),
        &secret_string("ledger", "unused"),
    )
    .await;
    let missing = format!(
        "{}secret:ledger-never-created-AbCdEf",
        known
            .split_once("secret:")
            .expect("an ARN with a secret: part")
            .0
    );
    let error = ReadSide::open(&config(&database, &missing))
        .await
        .expect_err("no such secret");
    assert!(
        matches!(
            error,
            StartupError::DatabaseCredentials(DatabaseCredentialsError::SecretNotFound { .. })
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains(&missing), "{error}");
}

#[tokio::test]
async fn a_secret_that_is_not_rds_shaped_is_reported_without_its_content() {
    let client = secrets_manager().await;
    let database = FreshDatabase::create().await;
    let arn = create_secret(
        &client,
        &format!("ledger-plain-{}", uuid::Uuid::now_v7().simple()),
        "plain-text-password-5d1e",
    )
    .await;
    let error = ReadSide::open(&config(&database, &arn))
        .await
        .expect_err("a plain-text secret has no username");
    assert!(
        matches!(
            error,
            StartupError::DatabaseCredentials(DatabaseCredentialsError::Malformed { .. })
        ),
        "{error:?}"
    );
    let printed = format!("{error} {error:?}");
    assert!(!printed.contains("plain-text-password-5d1e"), "{printed}");
}

/// `ReadSide::open_refreshing_every` of `config`: the PostgreSQL read model, its secret read again
/// every `refresh`.
async fn open_refreshing_every(config: &LedgerConfig, refresh: Duration) -> PostgresReadModel {
    let ReadSide::Postgres(read_model) = ReadSide::open_refreshing_every(config, refresh)
        .await
        .expect("the secret's username and password log in")
    else {
        panic!("LEDGER_READ_MODEL=postgres opened another read model");
    };
    read_model
}

/// The role a new session of `pool` logs in as, once the pool manages to open one within
/// `within` (trying every 100 ms); the last error otherwise.
async fn first_login(pool: &PgPool, within: Duration) -> Result<String, sqlx::Error> {
    let deadline = Instant::now() + within;
    loop {
        match sqlx::query_scalar::<_, String>("SELECT current_user::text")
            .fetch_one(pool)
            .await
        {
            Ok(user) => return Ok(user),
            Err(error) if Instant::now() >= deadline => return Err(error),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// PostgreSQL's `invalid_password` (28P01): the server refused the password, not anything else.
fn is_refused_password(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(sqlx::error::DatabaseError::code)
        .is_some_and(|code| code == "28P01")
}

#[tokio::test]
async fn a_rotated_password_reaches_new_connections_through_the_refresh_without_a_restart() {
    let client = secrets_manager().await;
    let database = FreshDatabase::migrated().await;
    let role = PasswordRole::create("before-rotation-4b1d").await;
    // The rebuild's fresh model is a schema of its own, made by the secret's role.
    as_admin(format!(
        "GRANT CREATE ON DATABASE {} TO {}",
        database.name, role.name
    ))
    .await;
    let arn = create_secret(
        &client,
        &role.name,
        &secret_string(&role.name, "before-rotation-4b1d"),
    )
    .await;
    let config = config(&database, &arn);
    let refreshed = open_refreshing_every(&config, Duration::from_millis(200)).await;
    // The same, whose first re-read is an hour away: what a process without the refresh does.
    let not_refreshed = open_refreshing_every(&config, Duration::from_hours(1)).await;
    let rebuild = PostgresRebuild::open(&refreshed)
        .await
        .expect("the rebuild's fresh model, before the rotation");
    let lease = refreshed.projector_lease("ledger-rotation-test");
    let stale_lease = not_refreshed.projector_lease("ledger-rotation-test-stale");

    // The rotation, as RDS does it: the server's password, then the secret's new version. Then
    // the sessions opened with the old password end, as the pools' retirement of them would.
    role.set_password("after-rotation-e8a2").await;
    client
        .put_secret_value()
        .secret_id(&arn)
        .secret_string(secret_string(&role.name, "after-rotation-e8a2"))
        .send()
        .await
        .expect("put the rotated password");
    role.terminate_sessions().await;

    // Without a re-read, a new connection still gives the old password and is refused: this is
    // what the refresh is for.
    let refused = not_refreshed
        .pool()
        .acquire()
        .await
        .expect_err("the old password must be refused after the rotation");
    assert!(is_refused_password(&refused), "{refused:?}");
    assert!(
        stale_lease.try_acquire().await.is_err(),
        "the lease of the pool without the refresh logs in with the old password"
    );

    // With it, within a few periods, new connections log in with the rotated password: the
    // pool's, the lease's (its own connection, the pool's options) and the rebuild's fresh pool.
    let user = first_login(refreshed.pool(), Duration::from_secs(10))
        .await
        .expect("the refreshed pool logs in with the rotated password");
    assert_eq!(user, role.name);
    let fresh_user = first_login(rebuild.fresh_model().pool(), Duration::from_secs(10))
        .await
        .expect("the rebuild's fresh pool follows the live pool's credentials");
    assert_eq!(fresh_user, role.name);
    let held = lease
        .try_acquire()
        .await
        .expect("the lease logs in with the rotated password")
        .expect("nobody else holds the lease");

    // A secret that can no longer be read keeps the credentials in use (a warning, each period).
    drop(held);
    client
        .delete_secret()
        .secret_id(&arn)
        .force_delete_without_recovery(true)
        .send()
        .await
        .expect("delete the secret");
    tokio::time::sleep(Duration::from_secs(1)).await;
    role.terminate_sessions().await;
    let user = first_login(refreshed.pool(), Duration::from_secs(5))
        .await
        .expect("an unreadable secret leaves the rotated password in use");
    assert_eq!(user, role.name);

    rebuild.fresh_model().close().await;
    refreshed.close().await;
    not_refreshed.close().await;
    drop(database);
    role.drop_role().await;
}
