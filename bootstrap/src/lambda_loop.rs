//! The runtime loop of a Lambda function's binary: invocations are served until the runtime stops
//! or the execution environment is shut down.

use std::fmt::Display;
use std::future::Future;
use std::process::ExitCode;

use crate::startup::wait_for_shutdown_signal;
use crate::telemetry::Telemetry;

/// Serves `runtime` (the function's `lambda_http::run` or `lambda_runtime::run`) until it ends, or
/// until SIGTERM (or SIGINT). Lambda sends SIGTERM, with a short grace period, before it shuts an
/// execution environment down when an extension is registered (the ADOT collector layer is one);
/// otherwise it ends the process without a word. Every invocation's telemetry was flushed before
/// its answer already, so nothing depends on this: the exporters are shut down here so that the
/// process ends tidily, and a runtime that stops is an error in the logs and the exit status.
pub async fn serve_until_shutdown<E: Display>(
    telemetry: &Telemetry,
    runtime: impl Future<Output = Result<(), E>>,
) -> ExitCode {
    let code = tokio::select! {
        biased;
        () = wait_for_shutdown_signal() => {
            tracing::info!("the execution environment is shutting down");
            ExitCode::SUCCESS
        }
        ended = runtime => match ended {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                tracing::error!(%error, "the Lambda runtime stopped");
                ExitCode::FAILURE
            }
        },
    };
    // The exporters' shutdown blocks until their last export: off the runtime's threads.
    let telemetry = telemetry.clone();
    if let Err(error) = tokio::task::spawn_blocking(move || telemetry.shutdown()).await {
        tracing::warn!(%error, "shutting telemetry down failed");
    }
    code
}
