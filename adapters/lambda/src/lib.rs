//! The ledger's AWS Lambda adapters: the query function (API Gateway HTTP API, payload v2) serving
//! the `GET` endpoints with the actix service's answers, and the DynamoDB Streams projection function
//! folding stream records through the application's projector.

pub mod projection;
pub mod query;
