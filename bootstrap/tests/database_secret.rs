//! The read model's credentials from Secrets Manager, end to end: a secret on moto's Secrets Manager
//! (`scripts/moto-local.sh`), a PostgreSQL role that logs in by password (the `ledger_password_auth`
//! members of `scripts/postgres-local.sh`), and `ReadSide::open` as every binary calls it, with an
//! AWS-shaped `DATABASE_URL` (no password, another username, `sslmode=verify-full`).

use ledger_bootstrap::LedgerConfig;
use ledger_bootstrap::database_credentials::DatabaseCredentialsError;
use ledger_bootstrap::startup::{ReadSide, StartupError};
use ledger_postgres::testkit::{FreshDatabase, server};
use sqlx::{AssertSqlSafe, Connection, PgConnection};

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

/// A login role that must give `password` (it is a member of `ledger_password_auth`); dropped by
/// [`PasswordRole::drop_role`].
struct PasswordRole {
    name: String,
}

impl PasswordRole {
    async fn create(password: &str) -> Self {
        let name = format!("ledger_secret_{}", uuid::Uuid::now_v7().simple());
        let mut admin = PgConnection::connect_with(&server())
            .await
            .expect("connect to the server of DATABASE_URL");
        sqlx::raw_sql(AssertSqlSafe(format!(
            "CREATE ROLE {name} LOGIN PASSWORD '{password}' IN ROLE ledger_password_auth"
        )))
        .execute(&mut admin)
        .await
        .expect("create the password role");
        admin.close().await.expect("close the admin connection");
        Self { name }
    }

    async fn drop_role(self) {
        let mut admin = PgConnection::connect_with(&server())
            .await
            .expect("connect to the server of DATABASE_URL");
        sqlx::raw_sql(AssertSqlSafe(format!("DROP ROLE {}", self.name)))
            .execute(&mut admin)
            .await
            .expect("drop the password role");
        admin.close().await.expect("close the admin connection");
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
    let ReadSide::Postgres(read_model) = ReadSide::open(&config)
        .await
        .expect("the secret's username and password log in")
    else {
        panic!("LEDGER_READ_MODEL=postgres opened another read model");
    };
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
