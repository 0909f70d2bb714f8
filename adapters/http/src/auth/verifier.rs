//! The bearer token check: a JWT signed RS256 or ES256 by a key of the JWKS named by its `kid`
//! (the key decides the algorithm; `none`, HS* and every other `alg` are refused), from the
//! configured issuer for the configured audience, within its validity (`exp` required, `nbf` and
//! `iat` checked when present, a bounded leeway), naming a subject, and its ledger scopes.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;

use super::jwks::{JwksError, JwksSource, KeyRefreshPolicy, KeyStore};
use ledger_application::Caller;

use super::{Principal, Scopes};

/// The largest leeway allowed on `exp`, `nbf` and `iat` (`LEDGER_AUTH_LEEWAY_SECONDS`).
pub const LEEWAY_MAX: Duration = Duration::from_mins(5);

/// The default leeway.
pub const LEEWAY_DEFAULT: Duration = Duration::from_secs(30);

/// What a token must say to be accepted, besides a good signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierSettings {
    /// The one accepted `iss`.
    pub issuer: String,
    /// The `aud` that must be (among) the token's.
    pub audience: String,
    /// Clock skew allowed on `exp`, `nbf` and `iat`; at most [`LEEWAY_MAX`].
    pub leeway: Duration,
}

/// Why a token was refused: a category a client can act on, never the token or its claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenRejection {
    #[error("it is not a well-formed JWT")]
    Malformed,
    #[error("its algorithm is not accepted (RS256 and ES256 only, as the key says)")]
    AlgorithmNotAccepted,
    #[error("it names no key id (`kid`) this ledger knows")]
    UnknownKey,
    #[error("its signature does not verify")]
    BadSignature,
    #[error("it has expired")]
    Expired,
    #[error("it is not valid yet")]
    NotYetValid,
    #[error("its issuer is not accepted")]
    WrongIssuer,
    #[error("it is not meant for this audience")]
    WrongAudience,
    #[error("it lacks a required claim (exp, iss, aud, sub)")]
    MissingClaim,
    #[error("its subject is not 1 to 256 bytes without control characters")]
    InvalidSubject,
}

/// The claims read beyond those `jsonwebtoken` validates.
#[derive(Debug, Deserialize)]
struct Claims {
    /// Required; optional here so that its absence is told apart from a malformed token.
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    iat: Option<u64>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    scp: Option<ScopeClaim>,
}

/// `scp`: an array of scopes, or one space-separated string.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ScopeClaim {
    List(Vec<String>),
    Text(String),
}

/// Verifies bearer tokens against the configured keys and claims.
pub struct JwtVerifier {
    keys: KeyStore,
    settings: VerifierSettings,
}

impl fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Key ids and where they come from; never key material.
        f.debug_struct("JwtVerifier")
            .field("jwks", &self.keys.source().to_string())
            .field("kids", &self.keys.key_ids())
            .field("issuer", &self.settings.issuer)
            .field("audience", &self.settings.audience)
            .field("leeway", &self.settings.leeway)
            .finish()
    }
}

impl JwtVerifier {
    /// Reads the keys at `source` (a failure, or a set with no usable key, is an error: the caller
    /// refuses to start) and keeps them fresh by `policy`. A leeway above [`LEEWAY_MAX`] is cut to it.
    pub async fn load(
        source: JwksSource,
        settings: VerifierSettings,
        policy: KeyRefreshPolicy,
    ) -> Result<Self, JwksError> {
        let keys = KeyStore::load(source, policy).await?;
        let settings = VerifierSettings {
            leeway: settings.leeway.min(LEEWAY_MAX),
            ..settings
        };
        tracing::info!(jwks = %keys.source(), kids = ?keys.key_ids(), issuer = %settings.issuer,
            audience = %settings.audience, leeway_s = settings.leeway.as_secs(),
            "bearer token verification on");
        Ok(Self { keys, settings })
    }

    /// The caller `token` proves, or why it proves nothing.
    pub async fn verify(&self, token: &str) -> Result<Principal, TokenRejection> {
        let header = jsonwebtoken::decode_header(token).map_err(|error| match error.kind() {
            // An `alg` outside the library's list (`none` among them) fails the header's parse.
            ErrorKind::Json(_) => TokenRejection::AlgorithmNotAccepted,
            _ => TokenRejection::Malformed,
        })?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(TokenRejection::AlgorithmNotAccepted);
        }
        let kid = header.kid.as_deref().ok_or(TokenRejection::UnknownKey)?;
        let key = self.keys.key(kid).await.ok_or(TokenRejection::UnknownKey)?;
        // The key's algorithm, not the header's: an RSA key verifies RS256 and nothing else.
        if header.alg != key.algorithm {
            return Err(TokenRejection::AlgorithmNotAccepted);
        }
        let leeway_seconds = self.settings.leeway.as_secs();
        let mut validation = Validation::new(key.algorithm);
        validation.leeway = leeway_seconds;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = true;
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.set_issuer(&[self.settings.issuer.as_str()]);
        validation.set_audience(&[self.settings.audience.as_str()]);
        let data = jsonwebtoken::decode::<Claims>(token, &key.decoding, &validation)
            .map_err(|error| rejection_of(error.kind()))?;
        let claims = data.claims;
        if claims
            .iat
            .is_some_and(|issued_at| issued_at > now_seconds().saturating_add(leeway_seconds))
        {
            return Err(TokenRejection::NotYetValid);
        }
        let subject = claims.sub.ok_or(TokenRejection::MissingClaim)?;
        let caller = Caller::parse(&subject).map_err(|_| TokenRejection::InvalidSubject)?;
        let mut names: Vec<&str> = claims
            .scope
            .as_deref()
            .map(|scope| scope.split(' ').collect())
            .unwrap_or_default();
        match &claims.scp {
            Some(ScopeClaim::List(items)) => names.extend(items.iter().map(String::as_str)),
            Some(ScopeClaim::Text(text)) => names.extend(text.split(' ')),
            None => {}
        }
        Ok(Principal::new(caller, Scopes::from_names(names)))
    }
}

fn rejection_of(kind: &ErrorKind) -> TokenRejection {
    match kind {
        ErrorKind::InvalidSignature => TokenRejection::BadSignature,
        ErrorKind::ExpiredSignature => TokenRejection::Expired,
        ErrorKind::ImmatureSignature => TokenRejection::NotYetValid,
        ErrorKind::InvalidIssuer => TokenRejection::WrongIssuer,
        ErrorKind::InvalidAudience => TokenRejection::WrongAudience,
        ErrorKind::MissingRequiredClaim(_) => TokenRejection::MissingClaim,
        ErrorKind::InvalidAlgorithm | ErrorKind::UnsupportedAlgorithm => {
            TokenRejection::AlgorithmNotAccepted
        }
        _ => TokenRejection::Malformed,
    }
}

fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}
