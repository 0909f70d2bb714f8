//! The route table: every path template of the API, used by `configure` to mount the actix
//! resources and by [`resolve`] to match a path exactly as actix's router does (its own
//! `ResourceDef` and percent-decoding), for an adapter with no router of its own (the query Lambda).
//! Each template carries the [`Access`] it needs, so both runtimes ask the same of every caller.

use std::sync::LazyLock;

use actix_web::dev::{Path, ResourceDef, Url};
use actix_web::http::Uri;

use crate::answers::QueryEndpoint;
use crate::auth::{Access, Scope};

/// The scope of the versioned API; the `correlate` middleware wraps it (and only it).
pub const V1_SCOPE: &str = "/v1";
pub const ACCOUNTS: &str = "/accounts";
pub const ACCOUNT: &str = "/accounts/{id}";
pub const DEPOSITS: &str = "/accounts/{id}/deposits";
pub const WITHDRAWALS: &str = "/accounts/{id}/withdrawals";
pub const FREEZE: &str = "/accounts/{id}/freeze";
pub const UNFREEZE: &str = "/accounts/{id}/unfreeze";
pub const CLOSE: &str = "/accounts/{id}/close";
pub const TRANSACTIONS: &str = "/accounts/{id}/transactions";
pub const BALANCE: &str = "/accounts/{id}/balance";
pub const DAILY_BALANCES: &str = "/accounts/{id}/daily-balances";
pub const TRANSFERS: &str = "/transfers";
pub const HEALTH_LIVE: &str = "/health/live";
pub const HEALTH_READY: &str = "/health/ready";
pub const OPENAPI: &str = "/openapi.json";

/// What a path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// A query of one account; `account_id` is the path segment, percent-decoded as actix's
    /// `web::Path<String>` decodes it.
    Query {
        endpoint: QueryEndpoint,
        account_id: String,
    },
    Live,
    Ready,
    OpenApi,
    /// A command resource, served by `POST` (by the command API, not by a query-only deployable).
    Command,
    /// No resource: `404 not_found`.
    NotFound,
}

impl Route {
    /// The one method the resource serves (`None` for no resource): any other is `405` with this
    /// in `Allow`.
    pub fn method(&self) -> Option<&'static str> {
        match self {
            Self::Query { .. } | Self::Live | Self::Ready | Self::OpenApi => Some("GET"),
            Self::Command => Some("POST"),
            Self::NotFound => None,
        }
    }
}

/// A resolved path: the route, its full template (`/v1/accounts/{id}`, for spans; `None` when no
/// route matched), whether it lies in the `/v1` scope, whose answers carry `X-Correlation-Id`, and
/// what it asks of the caller (checked before the method and everything else).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    pub route: Route,
    pub template: Option<&'static str>,
    pub in_v1_scope: bool,
    pub access: Access,
}

/// What a path that names no resource asks: a valid token (of any scope), so that strangers learn
/// nothing of the API's shape from `404`s.
pub const UNKNOWN_PATH_ACCESS: Access = Access::Authenticated;

#[derive(Debug, Clone, Copy)]
enum Kind {
    Query(QueryEndpoint),
    Live,
    Ready,
    OpenApi,
    Command,
}

struct Entry {
    template: String,
    definition: ResourceDef,
    kind: Kind,
    access: Access,
}

const READ: Access = Access::Scope(Scope::Read);
const WRITE: Access = Access::Scope(Scope::Write);
const ADMIN: Access = Access::Scope(Scope::Admin);

/// Every resource `configure` mounts, with its full path.
static TABLE: LazyLock<Vec<Entry>> = LazyLock::new(|| {
    let versioned = [
        (ACCOUNTS, Kind::Command, WRITE),
        (ACCOUNT, Kind::Query(QueryEndpoint::Account), READ),
        (DEPOSITS, Kind::Command, WRITE),
        (WITHDRAWALS, Kind::Command, WRITE),
        (FREEZE, Kind::Command, ADMIN),
        (UNFREEZE, Kind::Command, ADMIN),
        (CLOSE, Kind::Command, WRITE),
        (TRANSACTIONS, Kind::Query(QueryEndpoint::Transactions), READ),
        (BALANCE, Kind::Query(QueryEndpoint::BalanceAsOf), READ),
        (
            DAILY_BALANCES,
            Kind::Query(QueryEndpoint::DailyBalances),
            READ,
        ),
        (TRANSFERS, Kind::Command, WRITE),
    ]
    .map(|(path, kind, access)| (format!("{V1_SCOPE}{path}"), kind, access));
    let operations = [
        (HEALTH_LIVE, Kind::Live, Access::Public),
        (HEALTH_READY, Kind::Ready, Access::Public),
        (OPENAPI, Kind::OpenApi, READ),
    ]
    .map(|(path, kind, access)| (path.to_owned(), kind, access));
    versioned
        .into_iter()
        .chain(operations)
        .map(|(template, kind, access)| Entry {
            definition: ResourceDef::new(template.as_str()),
            template,
            kind,
            access,
        })
        .collect()
});

/// What the resource at the full template `template` (`/v1/accounts/{id}`) asks of its caller.
/// A template not in the table asks for admin: a resource mounted without an entry fails closed.
pub fn required_access(template: &str) -> Access {
    TABLE
        .iter()
        .find(|entry| entry.template == template)
        .map_or(ADMIN, |entry| entry.access)
}

static V1_SCOPE_DEFINITION: LazyLock<ResourceDef> =
    LazyLock::new(|| ResourceDef::root_prefix(V1_SCOPE));

/// The route of `path` (the request target's path, still percent-encoded, without the query).
pub fn resolve(path: &str) -> RouteMatch {
    let not_found = |in_v1_scope| RouteMatch {
        route: Route::NotFound,
        template: None,
        in_v1_scope,
        access: UNKNOWN_PATH_ACCESS,
    };
    // A path that is not a valid URI path could not have reached actix at all; it names nothing.
    let Ok(uri) = Uri::try_from(path) else {
        return not_found(false);
    };
    // `Url` re-quotes the path the way actix's router sees it (decoding all but `%`, `/`, `+`).
    let url = Url::new(uri);
    let in_v1_scope = V1_SCOPE_DEFINITION.is_match(url.path());
    for entry in TABLE.iter() {
        let mut matched = Path::new(url.clone());
        if !entry.definition.capture_match_info(&mut matched) {
            continue;
        }
        let route = match entry.kind {
            Kind::Query(endpoint) => match matched.load::<String>() {
                Ok(account_id) => Route::Query {
                    endpoint,
                    account_id,
                },
                // As `problem::path_error_handler`: a segment that cannot be decoded names no
                // resource. Actix finds that out inside the matched resource, after its access
                // check, so the resource's access still applies.
                Err(_) => {
                    return RouteMatch {
                        access: entry.access,
                        ..not_found(in_v1_scope)
                    };
                }
            },
            Kind::Live => Route::Live,
            Kind::Ready => Route::Ready,
            Kind::OpenApi => Route::OpenApi,
            Kind::Command => Route::Command,
        };
        return RouteMatch {
            route,
            template: Some(entry.template.as_str()),
            in_v1_scope,
            access: entry.access,
        };
    }
    not_found(in_v1_scope)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_paths_resolve_with_their_decoded_account_id() {
        let resolved = resolve("/v1/accounts/acc%2D1/balance");
        assert_eq!(
            resolved.route,
            Route::Query {
                endpoint: QueryEndpoint::BalanceAsOf,
                account_id: "acc-1".to_owned()
            }
        );
        assert_eq!(resolved.template, Some("/v1/accounts/{id}/balance"));
        assert!(resolved.in_v1_scope);
    }

    #[test]
    fn every_route_asks_for_its_scope_and_health_for_nothing() {
        let expected = [
            ("/v1/accounts/a", READ),
            ("/v1/accounts/a/transactions", READ),
            ("/v1/accounts/a/balance", READ),
            ("/v1/accounts/a/daily-balances", READ),
            ("/openapi.json", READ),
            ("/v1/accounts", WRITE),
            ("/v1/accounts/a/deposits", WRITE),
            ("/v1/accounts/a/withdrawals", WRITE),
            ("/v1/transfers", WRITE),
            ("/v1/accounts/a/close", WRITE),
            ("/v1/accounts/a/freeze", ADMIN),
            ("/v1/accounts/a/unfreeze", ADMIN),
            ("/health/live", Access::Public),
            ("/health/ready", Access::Public),
            ("/v1/nothing", Access::Authenticated),
            ("/", Access::Authenticated),
            ("/health", Access::Authenticated),
        ];
        for (path, access) in expected {
            let resolved = resolve(path);
            assert_eq!(resolved.access, access, "{path}");
            if let Some(template) = resolved.template {
                assert_eq!(required_access(template), access, "{template}");
            }
        }
        assert_eq!(required_access("/v1/unmounted"), ADMIN);
    }

    #[test]
    fn commands_operations_and_unknown_paths_resolve_to_what_actix_mounts() {
        assert_eq!(resolve("/v1/transfers").route, Route::Command);
        assert_eq!(resolve("/v1/accounts").route, Route::Command);
        assert_eq!(resolve("/health/ready").route, Route::Ready);
        let unknown = resolve("/v1/nothing");
        assert_eq!(
            (unknown.route, unknown.template, unknown.in_v1_scope),
            (Route::NotFound, None, true)
        );
        let outside = resolve("/v1x/accounts/a");
        assert_eq!(
            (outside.route, outside.in_v1_scope),
            (Route::NotFound, false)
        );
        assert_eq!(resolve("/v1/accounts/a/").route, Route::NotFound);
    }
}
