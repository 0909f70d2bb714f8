//! End-to-end tests of the HTTP adapter: real requests through `configure` into the real command
//! and query services over the in-memory stores (and over store ports that fail on purpose).

mod auth;
mod commands;
mod operations;
mod problems;
mod queries;
mod support;
