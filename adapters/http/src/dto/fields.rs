//! Collects every invalid field of a request — garde's shape checks first, then the domain parsers —
//! so that one `validation_failed` response names all of them, not just the first.

use std::fmt::Display;

use garde::Validate;

use crate::problem::{ApiError, FieldError};

#[derive(Debug, Default)]
pub(crate) struct Fields {
    errors: Vec<FieldError>,
}

impl Fields {
    /// Starts with garde's verdict on `request`.
    pub(crate) fn validated<T: Validate<Context = ()>>(request: &T) -> Self {
        let errors = match request.validate() {
            Ok(()) => Vec::new(),
            Err(report) => report
                .iter()
                .map(|(path, error)| FieldError::new(path.to_string(), error.message()))
                .collect(),
        };
        Self { errors }
    }

    fn has_error(&self, field: &str) -> bool {
        self.errors.iter().any(|error| error.field == field)
    }

    /// The parsed value, or `None` with the field recorded as invalid. A field garde already
    /// refused is not parsed again, so it is reported once.
    pub(crate) fn parse<T, E: Display>(
        &mut self,
        field: &str,
        parse: impl FnOnce() -> Result<T, E>,
    ) -> Option<T> {
        if self.has_error(field) {
            return None;
        }
        match parse() {
            Ok(value) => Some(value),
            Err(error) => {
                self.errors.push(FieldError::new(field, error.to_string()));
                None
            }
        }
    }

    /// Like [`Fields::parse`] for an optional field: `None` when it is absent or invalid, which
    /// callers tell apart by [`Fields::is_valid`].
    pub(crate) fn parse_optional<T, E: Display>(
        &mut self,
        field: &str,
        text: Option<&str>,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<T> {
        text.and_then(|text| self.parse(field, || parse(text)))
    }

    /// Records a failure found outside a parser (a rule between fields, say).
    pub(crate) fn reject(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }

    pub(crate) fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }

    /// The `validation_failed` error naming every invalid field.
    pub(crate) fn into_error(self) -> ApiError {
        if self.errors.is_empty() {
            // Only reachable if a caller forgot to record why a value is missing; still a 400, and
            // never an empty list the client cannot act on.
            return ApiError::invalid_field("request", "the request is invalid");
        }
        ApiError::ValidationFailed {
            errors: self.errors,
        }
    }
}
