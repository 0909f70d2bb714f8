//! The start rules and the log discipline of authentication, on the real `ledger-api` binary and its
//! JSON log lines: without keys it serves on a loopback address only, and says so in a WARN line at
//! start; on any other address it refuses to start (writing nothing); with keys, no token it was
//! sent — accepted, forged or expired — appears in anything it logs, while the caller's subject may.

mod support;

use std::process::Command;
use std::time::Duration;

use ledger_http::auth::testkit::{self, TestKey};
use support::{LoggedProcess, json_line, listening_port};

const API: &str = env!("CARGO_BIN_EXE_ledger-api");

fn embedded_vars(path: &str, addr: &'static str) -> Vec<(&'static str, String)> {
    vec![
        ("LEDGER_SQLITE_PATH", path.to_owned()),
        ("LEDGER_HTTP_ADDR", addr.to_owned()),
        ("LEDGER_HTTP_WORKERS", "1".to_owned()),
    ]
}

fn spawn(vars: &[(&'static str, String)]) -> LoggedProcess {
    let borrowed: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    LoggedProcess::spawn("ledger-api", API, &borrowed)
}

#[test]
fn on_loopback_without_keys_it_serves_and_warns_at_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ledger.db").display().to_string();
    let mut api = spawn(&embedded_vars(&path, "127.0.0.1:0"));
    let warning = api.wait_for_line("AUTHENTICATION IS OFF", Duration::from_secs(30));
    let warning = json_line(&warning).expect("a JSON log line");
    assert_eq!(warning["level"], "WARN", "{warning:?}");
    api.wait_for_line("ledger listening", Duration::from_secs(30));
    api.stop_with_sigterm();
}

#[test]
fn off_loopback_without_keys_it_refuses_to_start_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ledger.db");
    let output = Command::new(API)
        .env("LEDGER_SQLITE_PATH", &path)
        .env("LEDGER_HTTP_ADDR", "0.0.0.0:0")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .output()
        .expect("ledger-api runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!output.status.success(), "it must not serve: {said}");
    assert!(
        said.contains("LEDGER_AUTH_JWKS"),
        "it says what to set: {said}"
    );
    assert!(!said.contains("ledger listening"), "{said}");
    assert!(!path.exists(), "nothing is opened before the refusal");
}

#[tokio::test]
async fn with_keys_no_token_it_was_sent_appears_in_its_logs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ledger.db").display().to_string();
    let mut vars = embedded_vars(&path, "127.0.0.1:0");
    vars.extend([
        (
            "LEDGER_AUTH_JWKS_FILE",
            testkit::jwks_path().display().to_string(),
        ),
        ("LEDGER_AUTH_ISSUER", testkit::TEST_ISSUER.to_owned()),
        ("LEDGER_AUTH_AUDIENCE", testkit::TEST_AUDIENCE.to_owned()),
    ]);
    let mut api = spawn(&vars);
    let port = listening_port(&api.wait_for_line("ledger listening", Duration::from_secs(30)));
    assert_eq!(api.count("AUTHENTICATION IS OFF"), 0, "{}", api.log());
    let base = format!("http://127.0.0.1:{port}");

    let admin = testkit::token(
        TestKey::Rsa,
        &testkit::claims(testkit::TEST_SUBJECT, "ledger:admin"),
    );
    let read_ec = testkit::token(
        TestKey::Ec,
        &testkit::claims(testkit::TEST_SUBJECT, "ledger:read"),
    );
    let mut expired_claims = testkit::claims(testkit::TEST_SUBJECT, "ledger:admin");
    expired_claims["exp"] = serde_json::json!(testkit::now_seconds() - 3600);
    let expired = testkit::token(TestKey::Rsa, &expired_claims);
    let forged = {
        let mut parts: Vec<String> = admin.split('.').map(str::to_owned).collect();
        parts[2] = parts[2].chars().rev().collect();
        parts.join(".")
    };
    let client = reqwest::Client::new();
    let send_command = |token: &str, key: &str, body: serde_json::Value, url: String| {
        client
            .post(url)
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
    };
    let opened = send_command(
        &admin,
        "open-1",
        serde_json::json!({"account_id": "acc-logs", "owner": "Ada", "kind": "CHECKING", "currency": "EUR"}),
        format!("{base}/v1/accounts"),
    )
    .await
    .expect("sent");
    assert_eq!(opened.status(), 201, "{:?}", opened.text().await);
    for (token, status) in [(&expired, 401), (&forged, 401)] {
        let refused = send_command(
            token,
            "deposit-1",
            serde_json::json!({"amount": "10.00"}),
            format!("{base}/v1/accounts/acc-logs/deposits"),
        )
        .await
        .expect("sent");
        assert_eq!(refused.status(), status);
    }
    let read = client
        .get(format!("{base}/v1/accounts/acc-logs"))
        .bearer_auth(&read_ec)
        .send()
        .await
        .expect("sent");
    // 200 once projected, 404 before: either way the token was accepted.
    assert!(
        matches!(read.status().as_u16(), 200 | 404),
        "{}",
        read.status()
    );
    let garbage = client
        .get(format!("{base}/v1/accounts/acc-logs"))
        .header(
            "Authorization",
            "Bearer not.a-token.at-all-but-secret-looking",
        )
        .send()
        .await
        .expect("sent");
    assert_eq!(garbage.status(), 401);
    api.stop_with_sigterm();

    let log = api.log();
    assert!(!log.is_empty());
    for (what, token) in [
        ("admin", admin.as_str()),
        ("read (ES256)", read_ec.as_str()),
        ("expired", expired.as_str()),
        ("forged", forged.as_str()),
        ("garbage", "not.a-token.at-all-but-secret-looking"),
    ] {
        for part in token.split('.').filter(|part| part.len() >= 16) {
            assert!(
                !log.contains(part),
                "the {what} token's part {part:?} is in the log:\n{log}"
            );
        }
    }
}
