//! TEST ONLY (feature `testkit`): the checked-in test keys of `tests/fixtures/auth/` (made once with
//! openssl, never used anywhere but tests), a verifier over their JWKS, and tokens signed by them,
//! well-formed or deliberately not. Nothing in a deployable enables this feature.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::{JwksSource, JwtVerifier, KeyRefreshPolicy, VerifierSettings};

/// The issuer the test tokens name and the test verifier accepts.
pub const TEST_ISSUER: &str = "https://issuer.ledger.test/";

/// The audience the test tokens name and the test verifier accepts.
pub const TEST_AUDIENCE: &str = "ledger-api";

/// The subject of [`bearer`]'s tokens.
pub const TEST_SUBJECT: &str = "test-user-1";

const RSA_1_PKCS1_DER: &[u8] =
    include_bytes!("../../tests/fixtures/auth/test-rsa-1.private.pkcs1.der");
const RSA_2_PKCS1_DER: &[u8] =
    include_bytes!("../../tests/fixtures/auth/test-rsa-2.private.pkcs1.der");
const RSA_STRANGER_PKCS1_DER: &[u8] =
    include_bytes!("../../tests/fixtures/auth/test-rsa-stranger.private.pkcs1.der");
const EC_1_PKCS8_DER: &[u8] =
    include_bytes!("../../tests/fixtures/auth/test-ec-1.private.pkcs8.der");

/// The public half of `test-rsa-1` as PEM text: what an HS256 confusion attack uses as its secret.
pub const RSA_1_PUBLIC_PEM: &str = include_str!("../../tests/fixtures/auth/test-rsa-1.public.pem");

/// The JWKS of `test-rsa-1` and `test-ec-1`.
pub const JWKS: &str = include_str!("../../tests/fixtures/auth/jwks.json");

/// The JWKS after a rotation: `test-rsa-2` replaces `test-rsa-1`; `test-ec-1` stays.
pub const JWKS_ROTATED: &str = include_str!("../../tests/fixtures/auth/jwks-rotated.json");

/// A test signing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestKey {
    /// RS256, `kid` `test-rsa-1`, in [`JWKS`].
    Rsa,
    /// ES256 (P-256), `kid` `test-ec-1`, in both sets.
    Ec,
    /// RS256, `kid` `test-rsa-2`, only in [`JWKS_ROTATED`].
    RsaRotated,
    /// RS256 by a key in no set, claiming `kid` `test-rsa-1`: a forged signature.
    RsaImpostor,
}

impl TestKey {
    pub fn kid(self) -> &'static str {
        match self {
            Self::Rsa | Self::RsaImpostor => "test-rsa-1",
            Self::Ec => "test-ec-1",
            Self::RsaRotated => "test-rsa-2",
        }
    }

    pub fn algorithm(self) -> Algorithm {
        match self {
            Self::Ec => Algorithm::ES256,
            _ => Algorithm::RS256,
        }
    }

    fn encoding_key(self) -> EncodingKey {
        match self {
            Self::Rsa => EncodingKey::from_rsa_der(RSA_1_PKCS1_DER),
            Self::RsaRotated => EncodingKey::from_rsa_der(RSA_2_PKCS1_DER),
            Self::RsaImpostor => EncodingKey::from_rsa_der(RSA_STRANGER_PKCS1_DER),
            Self::Ec => EncodingKey::from_ec_der(EC_1_PKCS8_DER),
        }
    }
}

/// Seconds since the epoch, now.
pub fn now_seconds() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
}

/// Claims the test verifier accepts: the test issuer and audience, `sub`, `scope`, issued now,
/// valid for an hour. Change or remove members to make a token it refuses.
pub fn claims(subject: &str, scope: &str) -> Value {
    let now = now_seconds();
    json!({
        "iss": TEST_ISSUER,
        "aud": TEST_AUDIENCE,
        "sub": subject,
        "scope": scope,
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
    })
}

/// `claims` signed by `key`, its `kid` in the header.
pub fn token(key: TestKey, claims: &Value) -> String {
    let mut header = Header::new(key.algorithm());
    header.kid = Some(key.kid().to_owned());
    jsonwebtoken::encode(&header, claims, &key.encoding_key()).expect("the test keys sign")
}

/// `claims` under a header of the caller's making, with `signature` as the third part (base64url of
/// the bytes given): tokens no honest issuer writes (`alg: none`, HS256 with a public key, ...).
pub fn token_with_header(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        base64url(header.to_string().as_bytes()),
        base64url(claims.to_string().as_bytes()),
        base64url(signature)
    )
}

/// HS256 over `claims` with the RSA key's public PEM as the HMAC secret and its `kid`: the
/// algorithm-confusion attack on verifiers that let the header pick the algorithm.
pub fn hs256_with_public_key_as_secret(claims: &Value) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(TestKey::Rsa.kid().to_owned());
    let secret = EncodingKey::from_secret(RSA_1_PUBLIC_PEM.as_bytes()).expect("a non-empty secret");
    jsonwebtoken::encode(&header, claims, &secret).expect("HS256 signs")
}

/// `Bearer <token>` of an RS256 token for [`TEST_SUBJECT`] with `scope`, as an `Authorization`
/// header value.
pub fn bearer(scope: &str) -> String {
    format!(
        "Bearer {}",
        token(TestKey::Rsa, &claims(TEST_SUBJECT, scope))
    )
}

/// The path of the checked-in JWKS (for a `LEDGER_AUTH_JWKS_FILE` of a process under test).
pub fn jwks_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/auth/jwks.json")
}

/// The settings of the test verifier: the test issuer and audience, the default 30 s leeway.
pub fn settings() -> VerifierSettings {
    VerifierSettings {
        issuer: TEST_ISSUER.to_owned(),
        audience: TEST_AUDIENCE.to_owned(),
        leeway: super::verifier::LEEWAY_DEFAULT,
    }
}

/// A verifier over the checked-in [`JWKS`] file with [`settings`].
pub async fn verifier() -> Arc<JwtVerifier> {
    Arc::new(
        JwtVerifier::load(
            JwksSource::File(jwks_path()),
            settings(),
            KeyRefreshPolicy::default(),
        )
        .await
        .expect("the test JWKS loads"),
    )
}

/// Unpadded base64url (RFC 4648 section 5), as JWTs are written.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut text = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let triple = chunk.iter().enumerate().fold(0u32, |acc, (index, byte)| {
            acc | (u32::from(*byte) << (16 - 8 * index))
        });
        for index in 0..=chunk.len() {
            let sextet = (triple >> (18 - 6 * index)) & 0x3f;
            text.push(char::from(ALPHABET[sextet as usize]));
        }
    }
    text
}
