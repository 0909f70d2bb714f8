//! The query function: API Gateway HTTP API (v2) requests answered like the actix service.
