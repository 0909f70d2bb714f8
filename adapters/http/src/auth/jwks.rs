//! The verification keys: a JWKS document (RFC 7517) read from a file or fetched from a URL, each
//! usable key by its `kid` with the one algorithm its type allows (RSA: RS256, EC P-256: ES256), and
//! the refresh rules (on an unknown `kid`, rate-limited; periodically; a failed refresh keeps the
//! keys there were).

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey};

/// Largest JWKS document read, in bytes: a key set of a few dozen keys is well under this.
pub const JWKS_MAX_BYTES: usize = 1024 * 1024;

/// Shortest RSA modulus accepted (NIST SP 800-131A: 2048 bits at least).
pub const RSA_MODULUS_MIN_BITS: usize = 2048;

/// How long connecting to a JWKS URL may take.
const FETCH_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a whole JWKS fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the keys come from. `Display` and `Debug` leave out a URL's credentials and query, which
/// some key servers take as access tokens.
#[derive(Clone, PartialEq, Eq)]
pub enum JwksSource {
    /// `LEDGER_AUTH_JWKS_FILE`.
    File(PathBuf),
    /// `LEDGER_AUTH_JWKS_URL`: https, or plain http to a loopback host (checked by
    /// [`JwksSource::url`]).
    Url(reqwest::Url),
}

impl JwksSource {
    /// A JWKS URL, refused unless it is `https`, or `http` to a loopback host (a key set fetched in
    /// clear over a network could be replaced by anyone on the path).
    pub fn url(text: &str) -> Result<Self, JwksError> {
        let url = reqwest::Url::parse(text).map_err(|_| JwksError::InvalidUrl {
            reason: "not an absolute URL",
        })?;
        // `host_str` writes an IPv6 address in brackets, as the URL does.
        let loopback = url.host_str().is_some_and(|host| {
            host.eq_ignore_ascii_case("localhost")
                || host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|address| address.is_loopback())
        });
        match url.scheme() {
            "https" => Ok(Self::Url(url)),
            "http" if loopback => Ok(Self::Url(url)),
            "http" => Err(JwksError::InvalidUrl {
                reason: "plain http is allowed to a loopback host only; use https",
            }),
            _ => Err(JwksError::InvalidUrl {
                reason: "the scheme must be https (or http to a loopback host)",
            }),
        }
    }
}

impl fmt::Display for JwksSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "file {}", path.display()),
            Self::Url(url) => {
                let credentials = if url.username().is_empty() && url.password().is_none() {
                    ""
                } else {
                    "***@"
                };
                let host = url.host_str().unwrap_or_default();
                let port = url
                    .port()
                    .map(|port| format!(":{port}"))
                    .unwrap_or_default();
                let query = if url.query().is_some() { "?***" } else { "" };
                write!(
                    f,
                    "URL {}://{credentials}{host}{port}{}{query}",
                    url.scheme(),
                    url.path()
                )
            }
        }
    }
}

impl fmt::Debug for JwksSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JwksSource({self})")
    }
}

/// When the keys are read again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRefreshPolicy {
    /// A token naming an unknown `kid` reads the keys again at most this often (default 60 s), so
    /// tokens with made-up key ids cannot make the ledger hammer the key server.
    pub unknown_kid_interval: Duration,
    /// Keys older than this are read again in the background (default 10 minutes), so a key the
    /// issuer withdrew stops being accepted.
    pub max_age: Duration,
}

impl Default for KeyRefreshPolicy {
    fn default() -> Self {
        Self {
            unknown_kid_interval: Duration::from_mins(1),
            max_age: Duration::from_mins(10),
        }
    }
}

/// Why keys could not be read. Says where from and what was wrong, never a key.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("LEDGER_AUTH_JWKS_URL is invalid: {reason}")]
    InvalidUrl { reason: &'static str },
    #[error("cannot read the JWKS {source_name}: {reason}")]
    Unreadable { source_name: String, reason: String },
    #[error("the JWKS {source_name} is larger than {JWKS_MAX_BYTES} bytes")]
    TooLarge { source_name: String },
    #[error("the JWKS {source_name} is not a JSON Web Key Set: {reason}")]
    NotAKeySet { source_name: String, reason: String },
    #[error(
        "the JWKS {source_name} holds no usable signing key (RSA of at least \
         {RSA_MODULUS_MIN_BITS} bits for RS256, or EC P-256 for ES256, each with a `kid`)"
    )]
    NoUsableKey { source_name: String },
}

/// One verification key and the only algorithm it verifies.
#[derive(Clone)]
pub(crate) struct VerificationKey {
    pub(crate) algorithm: Algorithm,
    pub(crate) decoding: DecodingKey,
}

/// The usable keys of a JWKS document by `kid`.
#[derive(Clone, Default)]
struct KeySet(HashMap<String, VerificationKey>);

impl KeySet {
    fn parse(document: &[u8], source_name: &str) -> Result<Self, JwksError> {
        let set: JwkSet =
            serde_json::from_slice(document).map_err(|error| JwksError::NotAKeySet {
                source_name: source_name.to_owned(),
                // The parser's position and category, not the text it choked on.
                reason: format!("{:?} error at line {}", error.classify(), error.line()),
            })?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            match usable_key(jwk) {
                Ok((kid, key)) => {
                    keys.insert(kid.to_owned(), key);
                }
                Err(reason) => tracing::warn!(
                    jwks = source_name,
                    kid = jwk.common.key_id.as_deref().unwrap_or("<none>"),
                    reason,
                    "JWKS key skipped"
                ),
            }
        }
        if keys.is_empty() {
            return Err(JwksError::NoUsableKey {
                source_name: source_name.to_owned(),
            });
        }
        Ok(Self(keys))
    }
}

/// The key's `kid` and verification key, or why it cannot verify ledger tokens. The algorithm is
/// the key type's (a `kid` never lets a token pick it); a key whose `alg` says otherwise is unusable.
fn usable_key(jwk: &Jwk) -> Result<(&str, VerificationKey), &'static str> {
    let kid = jwk
        .common
        .key_id
        .as_deref()
        .filter(|kid| !kid.is_empty())
        .ok_or("no `kid`")?;
    if !matches!(
        jwk.common.public_key_use,
        None | Some(PublicKeyUse::Signature)
    ) {
        return Err("`use` is not `sig`");
    }
    let algorithm = match &jwk.algorithm {
        AlgorithmParameters::RSA(rsa) => {
            let modulus_bits = rsa.n.trim_end_matches('=').len() * 6;
            // Base64url digits carry 6 bits each; a leading zero byte is not part of the length.
            if modulus_bits < RSA_MODULUS_MIN_BITS {
                return Err("RSA modulus shorter than 2048 bits");
            }
            Algorithm::RS256
        }
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
            Algorithm::ES256
        }
        AlgorithmParameters::EllipticCurve(_) => return Err("EC curve other than P-256"),
        AlgorithmParameters::OctetKey(_) => return Err("a symmetric key (HS*) is never accepted"),
        _ => return Err("key type other than RSA or EC"),
    };
    let declared_matches = match jwk.common.key_algorithm {
        None => true,
        Some(KeyAlgorithm::RS256) => algorithm == Algorithm::RS256,
        Some(KeyAlgorithm::ES256) => algorithm == Algorithm::ES256,
        Some(_) => false,
    };
    if !declared_matches {
        return Err("`alg` is not RS256 for RSA or ES256 for EC P-256");
    }
    let decoding = DecodingKey::from_jwk(jwk).map_err(|_| "the key's parameters do not decode")?;
    Ok((
        kid,
        VerificationKey {
            algorithm,
            decoding,
        },
    ))
}

/// The keys in use and where they come from, shared by every request; cheap to clone.
#[derive(Clone)]
pub(crate) struct KeyStore {
    inner: Arc<KeyStoreInner>,
}

struct KeyStoreInner {
    source: JwksSource,
    policy: KeyRefreshPolicy,
    client: reqwest::Client,
    state: RwLock<KeyState>,
    /// Set while a refresh runs, so that concurrent misses and the periodic refresh fetch once.
    refreshing: AtomicBool,
}

struct KeyState {
    keys: KeySet,
    /// The last read (successful or not), for the unknown-`kid` rate limit and the key age.
    last_attempt: Instant,
}

impl KeyStore {
    /// Reads the keys once: a source that cannot be read, or holds no usable key, fails start-up.
    pub(crate) async fn load(
        source: JwksSource,
        policy: KeyRefreshPolicy,
    ) -> Result<Self, JwksError> {
        let client = reqwest::Client::builder()
            .connect_timeout(FETCH_CONNECT_TIMEOUT)
            .timeout(FETCH_TIMEOUT)
            // A redirect could lead from https to a place the URL check never saw.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|error| JwksError::Unreadable {
                source_name: source.to_string(),
                reason: format!("cannot build the HTTP client ({error})"),
            })?;
        let keys = read(&source, &client).await?;
        Ok(Self {
            inner: Arc::new(KeyStoreInner {
                source,
                policy,
                client,
                state: RwLock::new(KeyState {
                    keys,
                    last_attempt: Instant::now(),
                }),
                refreshing: AtomicBool::new(false),
            }),
        })
    }

    /// The key named `kid`. An unknown one reads the keys again first, if the last read is at
    /// least `unknown_kid_interval` old; keys older than `max_age` are read again in the background.
    pub(crate) async fn key(&self, kid: &str) -> Option<VerificationKey> {
        let (found, age) = self.lookup(kid);
        if found.is_some() {
            if age >= self.inner.policy.max_age {
                let store = self.clone();
                tokio::spawn(async move { store.refresh().await });
            }
            return found;
        }
        if age < self.inner.policy.unknown_kid_interval {
            return None;
        }
        self.refresh().await;
        self.lookup(kid).0
    }

    /// The `kid`s in use, for `Debug` and the start-up log.
    pub(crate) fn key_ids(&self) -> Vec<String> {
        let state = self.read_state();
        let mut kids: Vec<String> = state.keys.0.keys().cloned().collect();
        kids.sort();
        kids
    }

    pub(crate) fn source(&self) -> &JwksSource {
        &self.inner.source
    }

    fn lookup(&self, kid: &str) -> (Option<VerificationKey>, Duration) {
        let state = self.read_state();
        (state.keys.0.get(kid).cloned(), state.last_attempt.elapsed())
    }

    fn read_state(&self) -> std::sync::RwLockReadGuard<'_, KeyState> {
        // A panic while holding the lock cannot leave the key set half-written (it is replaced
        // whole), so a poisoned lock still holds a consistent set.
        self.inner
            .state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Reads the keys again; on failure keeps the old ones and logs a warning. One at a time: a
    /// refresh already running makes this one return at once.
    async fn refresh(&self) {
        if self.inner.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        // Cleared however this ends: a refresh awaited inline (an unknown `kid`) is dropped with its
        // request when the client goes away, and a flag left set would stop every refresh after.
        let _refreshing = RefreshingFlag(&self.inner.refreshing);
        let outcome = read(&self.inner.source, &self.inner.client).await;
        {
            let mut state = self
                .inner
                .state
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            state.last_attempt = Instant::now();
            match outcome {
                Ok(keys) => {
                    let mut kids: Vec<&String> = keys.0.keys().collect();
                    kids.sort();
                    tracing::info!(jwks = %self.inner.source, ?kids, "JWKS refreshed");
                    state.keys = keys;
                }
                Err(error) => {
                    tracing::warn!(%error, "JWKS refresh failed; keeping the keys read before");
                }
            }
        }
    }
}

/// Marks a refresh in flight; clears the mark when dropped, whether the refresh finished or not.
struct RefreshingFlag<'flag>(&'flag AtomicBool);

impl Drop for RefreshingFlag<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// The key set at `source`, bounded in size and time.
async fn read(source: &JwksSource, client: &reqwest::Client) -> Result<KeySet, JwksError> {
    let source_name = source.to_string();
    let unreadable = |reason: String| JwksError::Unreadable {
        source_name: source_name.clone(),
        reason,
    };
    let document = match source {
        JwksSource::File(path) => {
            let path = path.clone();
            let read = tokio::task::spawn_blocking(move || read_file_bounded(&path))
                .await
                .map_err(|error| unreadable(format!("the reading task failed ({error})")))?;
            match read {
                Ok(Some(bytes)) => bytes,
                Ok(None) => return Err(JwksError::TooLarge { source_name }),
                Err(error) => return Err(unreadable(error.to_string())),
            }
        }
        JwksSource::Url(url) => {
            let mut response = client
                .get(url.clone())
                .header("accept", "application/json")
                .send()
                .await
                .map_err(|error| unreadable(fetch_failure(&error)))?;
            let status = response.status();
            if !status.is_success() {
                return Err(unreadable(format!("answered HTTP {}", status.as_u16())));
            }
            let mut bytes = Vec::new();
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|error| unreadable(fetch_failure(&error)))?
            {
                if bytes.len() + chunk.len() > JWKS_MAX_BYTES {
                    return Err(JwksError::TooLarge { source_name });
                }
                bytes.extend_from_slice(&chunk);
            }
            bytes
        }
    };
    KeySet::parse(&document, &source_name)
}

/// What went wrong with a fetch, in words an operator can act on.
fn fetch_failure(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "could not connect".to_owned()
    } else {
        error.to_string()
    }
}

/// The file's bytes, or `None` if it is larger than [`JWKS_MAX_BYTES`].
fn read_file_bounded(path: &std::path::Path) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(u64::try_from(JWKS_MAX_BYTES).unwrap_or(u64::MAX) + 1)
        .read_to_end(&mut bytes)?;
    Ok((bytes.len() <= JWKS_MAX_BYTES).then_some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_http_urls_are_accepted() {
        for good in [
            "https://issuer.example/.well-known/jwks.json",
            "http://127.0.0.1:8080/jwks",
            "http://localhost/jwks",
            "http://[::1]:9/jwks",
        ] {
            assert!(JwksSource::url(good).is_ok(), "{good}");
        }
        for bad in [
            "http://issuer.example/jwks",
            "http://10.0.0.1/jwks",
            "ftp://127.0.0.1/jwks",
            "file:///etc/jwks.json",
            "/relative/jwks.json",
        ] {
            assert!(JwksSource::url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_url_prints_without_its_credentials_or_query() {
        let source = JwksSource::url("https://user:hunter2@keys.example:8443/jwks.json?key=s3cret")
            .expect("https");
        let printed = format!("{source} {source:?}");
        assert!(
            !printed.contains("hunter2") && !printed.contains("s3cret"),
            "{printed}"
        );
        assert!(printed.contains("keys.example:8443/jwks.json"), "{printed}");
    }

    #[test]
    fn symmetric_small_and_mislabelled_keys_are_unusable_and_the_rest_kept() {
        let document = serde_json::json!({"keys": [
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {"kty": "RSA", "kid": "small", "n": "A".repeat(340), "e": "AQAB"},
            {"kty": "EC", "kid": "p384", "crv": "P-384", "x": "AA", "y": "AA"},
            {"kty": "RSA", "kid": "rs384", "alg": "RS384", "use": "sig",
             "n": "A".repeat(342), "e": "AQAB"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": "A".repeat(342), "e": "AQAB"},
            {"kty": "RSA", "n": "A".repeat(342), "e": "AQAB"},
            {"kty": "RSA", "kid": "good", "alg": "RS256", "n": "A".repeat(342), "e": "AQAB"},
        ]});
        let set = KeySet::parse(document.to_string().as_bytes(), "test").expect("one usable");
        let kids: Vec<&String> = set.0.keys().collect();
        assert_eq!(kids, ["good"]);
        assert_eq!(set.0["good"].algorithm, Algorithm::RS256);
    }

    #[test]
    fn a_set_without_usable_keys_or_not_a_set_is_refused() {
        let only_hmac = br#"{"keys": [{"kty": "oct", "kid": "h", "k": "c2VjcmV0"}]}"#;
        assert!(matches!(
            KeySet::parse(only_hmac, "test"),
            Err(JwksError::NoUsableKey { .. })
        ));
        assert!(matches!(
            KeySet::parse(b"{\"keys\": 1}", "test"),
            Err(JwksError::NotAKeySet { .. })
        ));
    }
}
