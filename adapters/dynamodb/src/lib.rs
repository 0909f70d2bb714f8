//! DynamoDB adapters (in progress).
