//! A Lambda Runtime API of the test's own, over HTTP on 127.0.0.1: the protocol a function's
//! runtime loop speaks to AWS Lambda (`GET /2018-06-01/runtime/invocation/next` long-polls for the
//! next event; `POST .../invocation/{id}/response` or `/error` answers it), so that the real
//! Lambda binaries run here as they run on AWS, one invocation at a time, and a test can see what
//! happened between an invocation and its answer (the telemetry flush) and after it (the freeze).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix_web::dev::ServerHandle;
use actix_web::{HttpResponse, web};
use tokio::sync::Notify;

/// How long a function is given per invocation (its deadline header); generous on a loaded machine.
const INVOCATION_DEADLINE: Duration = Duration::from_mins(2);

/// How long one `next` request is held open without an event before it is answered 503 and asked
/// again by the runtime: bounded, so a stopped test leaves nothing hanging.
const NEXT_HELD_AT_MOST: Duration = Duration::from_mins(5);

/// What the function answered to one invocation.
#[derive(Debug, Clone)]
pub enum Answer {
    Response(serde_json::Value),
    Error(String),
}

#[derive(Debug, Default)]
struct State {
    queued: Mutex<VecDeque<(String, serde_json::Value)>>,
    queued_signal: Notify,
    answers: Mutex<HashMap<String, Answer>>,
}

/// Where a failed initialisation (`/runtime/init/error`) is kept among the answers.
const INIT_ERROR: &str = "init";

/// The running Runtime API; stopped when dropped.
#[derive(Debug)]
pub struct LambdaRuntimeApi {
    port: u16,
    state: Arc<State>,
    handle: ServerHandle,
    next_request_id: u64,
}

impl LambdaRuntimeApi {
    /// Listens on 127.0.0.1 at a port the OS picks, on a thread (and actix runtime) of its own.
    pub fn start() -> Self {
        let state = Arc::new(State::default());
        let shared = Arc::clone(&state);
        // The function's long poll holds one worker; the answers need another.
        let (port, handle) = super::loopback::serve(2, 6 * 1024 * 1024, move |config| {
            config
                .app_data(web::Data::new(Arc::clone(&shared)))
                .route("/2018-06-01/runtime/invocation/next", web::get().to(next))
                .route(
                    "/2018-06-01/runtime/invocation/{id}/response",
                    web::post().to(response),
                )
                .route(
                    "/2018-06-01/runtime/invocation/{id}/error",
                    web::post().to(error),
                )
                .route("/2018-06-01/runtime/init/error", web::post().to(init_error));
        });
        Self {
            port,
            state,
            handle,
            next_request_id: 0,
        }
    }

    /// `127.0.0.1:<port>`: the value of `AWS_LAMBDA_RUNTIME_API` for a function.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The environment AWS Lambda gives a function, pointing its runtime loop here.
    pub fn function_vars(&self, function_name: &str) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_LAMBDA_RUNTIME_API", self.address()),
            ("AWS_LAMBDA_FUNCTION_NAME", function_name.to_owned()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512".to_owned()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
            (
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{function_name}"),
            ),
            (
                "AWS_LAMBDA_LOG_STREAM_NAME",
                "2026/12/01/[$LATEST]test".to_owned(),
            ),
        ]
    }

    /// Queues one invocation; returns its request id.
    pub fn invoke(&mut self, event: serde_json::Value) -> String {
        self.next_request_id += 1;
        let request_id = format!("00000000-0000-4000-8000-{:012}", self.next_request_id);
        self.state
            .queued
            .lock()
            .expect("queue lock")
            .push_back((request_id.clone(), event));
        self.state.queued_signal.notify_one();
        request_id
    }

    /// The function's answer to `request_id`, once it came; fails after `within`.
    pub fn wait_for_answer(&self, request_id: &str, within: Duration) -> Answer {
        let deadline = Instant::now() + within;
        loop {
            let answers = self.state.answers.lock().expect("answers lock");
            if let Some(answer) = answers.get(request_id) {
                return answer.clone();
            }
            if let Some(failed) = answers.get(INIT_ERROR) {
                panic!("the function failed to initialise: {failed:?}");
            }
            drop(answers);
            assert!(
                Instant::now() < deadline,
                "the function did not answer {request_id} within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for LambdaRuntimeApi {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}

async fn next(state: web::Data<Arc<State>>) -> HttpResponse {
    let deadline = tokio::time::Instant::now() + NEXT_HELD_AT_MOST;
    loop {
        // Registered before the queue is looked at, so an event queued in between still wakes it.
        let queued = state.queued_signal.notified();
        if let Some((request_id, event)) = state.queued.lock().expect("queue lock").pop_front() {
            let deadline_ms = SystemTime::now()
                .checked_add(INVOCATION_DEADLINE)
                .and_then(|at| at.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |since| since.as_millis());
            return HttpResponse::Ok()
                .insert_header(("lambda-runtime-aws-request-id", request_id))
                .insert_header(("lambda-runtime-deadline-ms", deadline_ms.to_string()))
                .insert_header((
                    "lambda-runtime-invoked-function-arn",
                    "arn:aws:lambda:us-east-1:123456789012:function:ledger-test",
                ))
                .insert_header((
                    "lambda-runtime-trace-id",
                    "Root=1-6745a9e2-3d7b1c0e5f2a4b6c8d9e0f1a;Sampled=0",
                ))
                .json(event);
        }
        if tokio::time::timeout_at(deadline, queued).await.is_err() {
            return HttpResponse::ServiceUnavailable().finish();
        }
    }
}

async fn response(
    state: web::Data<Arc<State>>,
    request_id: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let answer = serde_json::from_slice(&body).map_or_else(
        |_| Answer::Error(String::from_utf8_lossy(&body).into_owned()),
        Answer::Response,
    );
    record(&state, request_id.into_inner(), answer)
}

async fn error(
    state: web::Data<Arc<State>>,
    request_id: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let answer = Answer::Error(String::from_utf8_lossy(&body).into_owned());
    record(&state, request_id.into_inner(), answer)
}

async fn init_error(state: web::Data<Arc<State>>, body: web::Bytes) -> HttpResponse {
    let answer = Answer::Error(String::from_utf8_lossy(&body).into_owned());
    record(&state, INIT_ERROR.to_owned(), answer)
}

fn record(state: &State, request_id: String, answer: Answer) -> HttpResponse {
    state
        .answers
        .lock()
        .expect("answers lock")
        .insert(request_id, answer);
    HttpResponse::Accepted().json(serde_json::json!({"status": "OK"}))
}
