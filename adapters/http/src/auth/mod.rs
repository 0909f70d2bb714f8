//! Authentication and authorisation of every request but health, once and framework-neutral: the
//! `Authorization: Bearer <JWT>` header verified against a JWKS ([`JwtVerifier`]), the scope a
//! route needs (`routes`) checked against the token's, and the refusals as [`AuthError`]s, which
//! `problem` alone turns into `401`/`403`. The actix middleware and the query Lambda both call
//! [`authorise`], so the two cannot let in different callers.

use std::fmt;
use std::sync::Arc;

use ledger_application::Caller;

mod jwks;
#[cfg(feature = "testkit")]
pub mod testkit;
mod verifier;

pub use jwks::{JwksError, JwksSource, KeyRefreshPolicy, RSA_MODULUS_MIN_BITS};
pub use verifier::{JwtVerifier, LEEWAY_DEFAULT, LEEWAY_MAX, TokenRejection, VerifierSettings};

/// The `Authorization` header's name (lower case, as HTTP/2 and API Gateway write it).
pub const AUTHORIZATION: &str = "authorization";

/// The realm every `WWW-Authenticate` challenge names.
pub const REALM: &str = "ledger";

/// Longest `Authorization` header value looked at; a longer one is refused unread (a JWT of the
/// ledger's claims is well under 4 KiB; this bounds the work a stranger can ask for).
pub const AUTHORIZATION_MAX_BYTES: usize = 8 * 1024;

/// A permission a token can carry (the `scope` or `scp` claim).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Every `GET` but health, `/openapi.json` included.
    Read,
    /// The money and lifecycle commands: open, deposit, withdraw, transfer, close.
    Write,
    /// Freeze and unfreeze; implies read and write.
    Admin,
}

impl Scope {
    /// The scope as tokens spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "ledger:read",
            Self::Write => "ledger:write",
            Self::Admin => "ledger:admin",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "ledger:read" => Some(Self::Read),
            "ledger:write" => Some(Self::Write),
            "ledger:admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a route asks of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Nothing: the health endpoints, which load balancers poll without credentials.
    Public,
    /// A valid token, whatever its scopes: a path that names no resource (so the API's shape is not
    /// shown to strangers).
    Authenticated,
    /// A valid token granting this scope (or admin).
    Scope(Scope),
}

/// The ledger scopes a token grants; other scopes in it are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes {
    read: bool,
    write: bool,
    admin: bool,
}

impl Scopes {
    /// Every scope: what a caller has when authentication is off (loopback only).
    pub fn all() -> Self {
        Self {
            read: true,
            write: true,
            admin: true,
        }
    }

    /// The ledger scopes among `names` (space-separated `scope`, or the items of `scp`).
    pub fn from_names<'name>(names: impl IntoIterator<Item = &'name str>) -> Self {
        let mut scopes = Self::default();
        for scope in names.into_iter().filter_map(Scope::parse) {
            match scope {
                Scope::Read => scopes.read = true,
                Scope::Write => scopes.write = true,
                Scope::Admin => scopes.admin = true,
            }
        }
        scopes
    }

    /// Whether these scopes allow what `needed` guards: admin implies read and write.
    pub fn permit(self, needed: Scope) -> bool {
        self.admin
            || match needed {
                Scope::Read => self.read,
                Scope::Write => self.write,
                Scope::Admin => false,
            }
    }
}

/// Who is calling, as the verified token says: its subject (`sub`, as the application's
/// [`Caller`]) and its ledger scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    caller: Caller,
    scopes: Scopes,
}

impl Principal {
    pub(crate) fn new(caller: Caller, scopes: Scopes) -> Self {
        Self { caller, scopes }
    }

    /// The caller of a ledger serving without authentication (loopback only): every scope.
    pub fn anonymous() -> Self {
        Self {
            caller: Caller::anonymous(),
            scopes: Scopes::all(),
        }
    }

    /// The token's `sub`, as recorded with every event the caller's commands write.
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// The token's `sub`.
    pub fn subject(&self) -> &str {
        self.caller.subject()
    }

    pub fn scopes(&self) -> Scopes {
        self.scopes
    }
}

/// Whether requests are authenticated.
#[derive(Clone)]
pub enum Authentication {
    /// Every request is the anonymous caller with every scope. Only for a ledger listening on a
    /// loopback address (the bootstrap refuses any other), so that `cargo run` just works.
    Disabled,
    /// Bearer JWTs verified against the configured keys.
    Jwt(Arc<JwtVerifier>),
}

impl fmt::Debug for Authentication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Disabled => f.write_str("Authentication::Disabled"),
            Self::Jwt(verifier) => f
                .debug_tuple("Authentication::Jwt")
                .field(verifier)
                .finish(),
        }
    }
}

/// Why a request was not let in. Holds no part of the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// `401`: the caller is not known.
    #[error(transparent)]
    Unauthenticated(#[from] Unauthenticated),
    /// `403`: a valid token without the scope the route needs.
    #[error("the token lacks the scope {needed}")]
    InsufficientScope { needed: Scope },
}

/// Why no caller is known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unauthenticated {
    /// No `Authorization` header.
    #[error("no bearer token")]
    MissingToken,
    /// An `Authorization` header that is not one `Bearer <token>` (another scheme, two headers,
    /// no token, not visible ASCII, too long).
    #[error("the Authorization header is not `Bearer <token>`")]
    MalformedHeader,
    /// A bearer token that does not verify.
    #[error("bearer token refused: {0}")]
    InvalidToken(TokenRejection),
}

/// Lets the request in or says why not: `access` is what the route needs (`routes`), and
/// `authorization` the values of its `Authorization` headers (every one, so that two are refused
/// rather than one picked). Logs the refusal's reason (never the token) and, when let in, the
/// subject on the current span.
pub async fn authorise<'value>(
    authentication: &Authentication,
    authorization: impl IntoIterator<Item = &'value [u8]>,
    access: Access,
) -> Result<Principal, AuthError> {
    let verifier = match (authentication, access) {
        (_, Access::Public) | (Authentication::Disabled, _) => return Ok(Principal::anonymous()),
        (Authentication::Jwt(verifier), _) => verifier,
    };
    let outcome = match bearer_token(authorization) {
        Ok(token) => verifier
            .verify(token)
            .await
            .map_err(|rejection| AuthError::from(Unauthenticated::InvalidToken(rejection))),
        Err(error) => Err(AuthError::from(error)),
    };
    let granted = outcome.and_then(|principal| {
        tracing::Span::current().record("enduser.id", principal.subject());
        match access {
            Access::Scope(needed) if !principal.scopes.permit(needed) => {
                Err(AuthError::InsufficientScope { needed })
            }
            _ => Ok(principal),
        }
    });
    if let Err(error) = &granted {
        tracing::info!(reason = %error, "request not authorised");
    }
    granted
}

/// The token of the one `Authorization: Bearer <token>` header (scheme case-insensitive, RFC 9110
/// 11.1; the token is RFC 6750's `b64token`).
fn bearer_token<'value>(
    authorization: impl IntoIterator<Item = &'value [u8]>,
) -> Result<&'value str, Unauthenticated> {
    let mut values = authorization.into_iter();
    let Some(value) = values.next() else {
        return Err(Unauthenticated::MissingToken);
    };
    if values.next().is_some() || value.len() > AUTHORIZATION_MAX_BYTES {
        return Err(Unauthenticated::MalformedHeader);
    }
    let text = std::str::from_utf8(value).map_err(|_| Unauthenticated::MalformedHeader)?;
    let (scheme, token) = text
        .split_once(' ')
        .ok_or(Unauthenticated::MalformedHeader)?;
    let token = token.trim_start_matches(' ');
    let b64token = |byte: u8| byte.is_ascii_alphanumeric() || b"-._~+/=".contains(&byte);
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || !token.bytes().all(b64token) {
        return Err(Unauthenticated::MalformedHeader);
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_implies_read_and_write_and_nothing_else_implies_anything() {
        let admin = Scopes::from_names(["ledger:admin"]);
        let read = Scopes::from_names(["ledger:read", "openid"]);
        let write = Scopes::from_names(["ledger:write"]);
        for needed in [Scope::Read, Scope::Write, Scope::Admin] {
            assert!(admin.permit(needed), "{needed}");
        }
        assert!(read.permit(Scope::Read));
        assert!(!read.permit(Scope::Write) && !read.permit(Scope::Admin));
        assert!(write.permit(Scope::Write));
        assert!(!write.permit(Scope::Read) && !write.permit(Scope::Admin));
        assert_eq!(
            Scopes::from_names(["LEDGER:READ", "ledger:*", ""]),
            Scopes::default()
        );
    }

    #[test]
    fn only_one_bearer_header_with_a_token_is_a_token() {
        assert_eq!(
            bearer_token([b"Bearer abc.def.ghi".as_slice()]),
            Ok("abc.def.ghi")
        );
        assert_eq!(bearer_token([b"bearer abc".as_slice()]), Ok("abc"));
        assert_eq!(
            bearer_token(std::iter::empty()),
            Err(Unauthenticated::MissingToken)
        );
        for bad in [
            b"Basic dXNlcjpwYXNz".as_slice(),
            b"Bearer",
            b"Bearer ",
            b"Bearer a b",
            b"Bearer a\"b",
            b"Bearerabc",
            b"Bearer \xff",
        ] {
            assert_eq!(
                bearer_token([bad]),
                Err(Unauthenticated::MalformedHeader),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            bearer_token([b"Bearer a".as_slice(), b"Bearer b".as_slice()]),
            Err(Unauthenticated::MalformedHeader)
        );
        let long = format!("Bearer {}", "a".repeat(AUTHORIZATION_MAX_BYTES));
        assert_eq!(
            bearer_token([long.as_bytes()]),
            Err(Unauthenticated::MalformedHeader)
        );
    }
}
