//! A response without a framework: a status code, header pairs and body bytes. The query work and
//! the problem mapping produce it once; actix (here) and the query Lambda (`ledger-lambda`) only
//! copy it into their own response types, so both send the same bytes.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use serde::Serialize;

use crate::problem::ApiError;

/// The media type of every success body.
pub const JSON_CONTENT_TYPE: &str = "application/json";

/// An HTTP response as plain data. Header names are lower case, as HTTP/2 and API Gateway write them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlainResponse {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl PlainResponse {
    /// `status` with `body` as `application/json`, serialised as actix's `HttpResponse::json` does.
    pub fn json(status: u16, body: &impl Serialize) -> Result<Self, ApiError> {
        let bytes = serde_json::to_vec(body).map_err(|error| ApiError::internal(&error))?;
        Ok(Self {
            status,
            headers: vec![("content-type", JSON_CONTENT_TYPE.to_owned())],
            body: bytes,
        })
    }

    /// The first value of the header `name` (lower case), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| *header == name)
            .map(|(_, value)| value.as_str())
    }
}

impl From<PlainResponse> for HttpResponse {
    fn from(plain: PlainResponse) -> Self {
        let status =
            StatusCode::from_u16(plain.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = HttpResponse::build(status);
        for (name, value) in plain.headers {
            // Every value is built by this crate from visible ASCII; one that is not is dropped
            // rather than sent malformed.
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                response.append_header((name, value));
            }
        }
        response.body(plain.body)
    }
}
