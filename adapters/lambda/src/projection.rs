//! The projection function: DynamoDB Streams records through the projector, partial batch failures.
