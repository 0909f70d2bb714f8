//! TEST ONLY: prints a bearer token signed by the checked-in test key (`ledger_http::auth::testkit`)
//! for the test issuer and audience, valid for an hour, so the test scripts (fuzz, Lambda smoke test)
//! can call a ledger configured with the test JWKS. Usage: `test_token [SCOPE...]` (default
//! `ledger:admin`); the configuration to pair it with: `test_token --env`.

use ledger_http::auth::testkit;

fn main() {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    if arguments.first().map(String::as_str) == Some("--env") {
        println!("LEDGER_AUTH_JWKS_FILE={}", testkit::jwks_path().display());
        println!("LEDGER_AUTH_ISSUER={}", testkit::TEST_ISSUER);
        println!("LEDGER_AUTH_AUDIENCE={}", testkit::TEST_AUDIENCE);
        return;
    }
    let scope = if arguments.is_empty() {
        "ledger:admin".to_owned()
    } else {
        arguments.join(" ")
    };
    let claims = testkit::claims(testkit::TEST_SUBJECT, &scope);
    println!("{}", testkit::token(testkit::TestKey::Rsa, &claims));
}
