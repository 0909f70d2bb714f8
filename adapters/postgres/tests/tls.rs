//! TLS to PostgreSQL, as RDS requires it: the driver is built with rustls, so `sslmode=verify-full`
//! with the server's CA as `sslrootcert` connects over TLS (the server says so in `pg_stat_ssl`), and
//! the same URL with a CA that did not sign the server's certificate is refused. Against the TLS
//! cluster of `scripts/postgres-local.sh` (`LEDGER_TEST_PG_CA`, `LEDGER_TEST_PG_OTHER_CA`).

use ledger_postgres::PostgresReadModel;
use ledger_postgres::testkit::server_url;

/// The path in `variable`, or a panic that says where it comes from: this suite never skips itself.
fn certificate(variable: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| {
        panic!(
            "{variable} is not set: the TLS tests need the CA of the server that \
             scripts/postgres-local.sh starts (`postgres_local_start` exports it)"
        )
    })
}

/// The server's URL with `sslmode=verify-full` and `sslrootcert=ca`, as an operator writes it.
fn verify_full_url(ca: &str) -> String {
    let url = server_url();
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}sslmode=verify-full&sslrootcert={ca}")
}

#[tokio::test]
async fn verify_full_with_the_servers_ca_connects_over_tls() {
    let read_model =
        PostgresReadModel::connect(&verify_full_url(&certificate("LEDGER_TEST_PG_CA")))
            .await
            .expect("verify-full against the CA that signed the server's certificate");
    let (ssl, version): (bool, Option<String>) =
        sqlx::query_as("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(read_model.pool())
            .await
            .expect("the server's view of this connection");
    assert!(ssl, "the server saw no TLS on this connection");
    assert!(
        version
            .as_deref()
            .is_some_and(|version| version.starts_with("TLSv1.")),
        "{version:?}"
    );
    read_model.close().await;
}

#[tokio::test]
async fn verify_full_with_another_ca_is_refused() {
    let error =
        PostgresReadModel::connect(&verify_full_url(&certificate("LEDGER_TEST_PG_OTHER_CA")))
            .await
            .expect_err("a CA that did not sign the server's certificate must not be trusted");
    let printed = format!("{error:?}");
    assert!(
        printed.contains("certificate") || printed.contains("Certificate"),
        "not refused for its certificate: {printed}"
    );
}

#[tokio::test]
async fn require_connects_over_tls_without_checking_the_certificate() {
    let url = server_url();
    let separator = if url.contains('?') { '&' } else { '?' };
    let read_model = PostgresReadModel::connect(&format!("{url}{separator}sslmode=require"))
        .await
        .expect("sslmode=require, as the RDS-forced SSL needs at least");
    let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(read_model.pool())
        .await
        .expect("the server's view of this connection");
    assert!(ssl, "sslmode=require connected without TLS");
    read_model.close().await;
}
