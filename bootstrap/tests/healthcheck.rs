//! `ledger-healthcheck` as the container runs it, a process with only its environment: exit 0 against
//! a real embedded `ledger-api` once it is ready; exit 1 (one line on stderr saying why) on a closed
//! port, a 503, a server that accepts and never answers, one that drips its status line a byte at a
//! time, and a URL it will not try; the last three within its 2 s bound.

mod support;

use std::io::Write;
use std::net::TcpListener;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use actix_web::{HttpResponse, web};
use support::{LoggedProcess, listening_port, loopback};

/// The binary's own bound is 2 s; the process start and exit get this much on top, no more.
const BOUND_WITH_PROCESS_START: Duration = Duration::from_millis(3500);

/// Runs the check against `url`, timing the whole process.
fn healthcheck(url: &str) -> (Output, Duration) {
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_ledger-healthcheck"))
        .env("LEDGER_HEALTHCHECK_URL", url)
        .output()
        .expect("ledger-healthcheck runs");
    (output, started.elapsed())
}

/// Exit 1 with exactly one line on stderr that contains `why`.
fn assert_unhealthy(output: &Output, why: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("ledger-healthcheck: ") && stderr.contains(why),
        "{stderr}"
    );
    assert!(output.stdout.is_empty(), "{output:?}");
}

#[test]
fn a_ready_embedded_ledger_api_is_healthy() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ledger.db").display().to_string();
    let mut api = LoggedProcess::spawn(
        "ledger-api",
        env!("CARGO_BIN_EXE_ledger-api"),
        &[
            ("LEDGER_SQLITE_PATH", path.as_str()),
            ("LEDGER_HTTP_ADDR", "127.0.0.1:0"),
            ("LEDGER_HTTP_WORKERS", "1"),
        ],
    );
    let port = listening_port(&api.wait_for_line("ledger listening", Duration::from_secs(30)));
    let url = format!("http://127.0.0.1:{port}/health/ready");
    // Ready follows listening once the in-process projector has caught up: a bounded wait.
    let deadline = Instant::now() + Duration::from_secs(15);
    let (output, elapsed) = loop {
        let (output, elapsed) = healthcheck(&url);
        if output.status.success() || Instant::now() > deadline {
            break (output, elapsed);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(output.status.code(), Some(0), "{output:?}\n{}", api.log());
    assert!(
        output.stderr.is_empty() && output.stdout.is_empty(),
        "{output:?}"
    );
    assert!(elapsed < BOUND_WITH_PROCESS_START, "{elapsed:?}");
    // Liveness is a 200 too, so the same binary serves a liveness probe given that URL.
    let (output, _) = healthcheck(&format!("http://127.0.0.1:{port}/health/live"));
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    // A path the service does not have is not healthy: the check reads the status, not the socket.
    let (output, _) = healthcheck(&format!("http://127.0.0.1:{port}/health/nothing"));
    assert_unhealthy(&output, "HTTP status 404, not 200");
    api.stop_with_sigterm();
}

#[test]
fn a_closed_port_is_unhealthy_at_once() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        listener.local_addr().expect("its address").port()
    };
    let (output, elapsed) = healthcheck(&format!("http://127.0.0.1:{port}/health/ready"));
    assert_unhealthy(&output, "cannot connect to 127.0.0.1:");
    // Refused, not waited out: well inside the bound.
    assert!(elapsed < Duration::from_millis(1500), "{elapsed:?}");
}

#[test]
fn a_not_ready_answer_is_unhealthy() {
    let (port, handle) = loopback::serve(1, 1024, |config| {
        config.route(
            "/health/ready",
            web::get().to(|| async {
                HttpResponse::ServiceUnavailable()
                    .content_type("application/json")
                    .body(r#"{"status":"not_ready","checks":{"dead_letters":"1"}}"#)
            }),
        );
    });
    let (output, elapsed) = healthcheck(&format!("http://127.0.0.1:{port}/health/ready"));
    assert_unhealthy(&output, "HTTP status 503, not 200");
    assert!(elapsed < Duration::from_millis(1500), "{elapsed:?}");
    // Asks the server to stop; its thread ends on its own.
    drop(handle.stop(false));
}

#[test]
fn a_server_that_accepts_and_never_answers_is_unhealthy_within_the_bound() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let port = listener.local_addr().expect("its address").port();
    // Accepts, reads nothing, answers nothing, and holds the connection open until the test ends.
    let silent = std::thread::spawn(move || listener.accept().map(|(stream, _)| stream));
    let (output, elapsed) = healthcheck(&format!("http://127.0.0.1:{port}/health/ready"));
    assert_unhealthy(&output, "no complete answer within 2000ms");
    assert!(
        elapsed >= Duration::from_millis(1900) && elapsed < BOUND_WITH_PROCESS_START,
        "{elapsed:?}"
    );
    drop(
        silent
            .join()
            .expect("the silent server")
            .expect("it accepted"),
    );
}

#[test]
fn a_status_line_dripped_a_byte_at_a_time_cannot_stretch_the_bound() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let port = listener.local_addr().expect("its address").port();
    // A byte every 200 ms resets any per-read timeout; only a bound on the whole check ends it. The
    // whole line would take 5.6 s, so its end never arrives in time; writing stops once the check
    // hung up.
    let dripping = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("the check connects");
        for byte in b"HTTP/1.1 200            OK\r\n" {
            if stream.write_all(&[*byte]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    let (output, elapsed) = healthcheck(&format!("http://127.0.0.1:{port}/health/ready"));
    assert_unhealthy(&output, "no complete answer within 2000ms");
    assert!(elapsed < BOUND_WITH_PROCESS_START, "{elapsed:?}");
    dripping.join().expect("the dripping server");
}

#[test]
fn a_url_it_will_not_try_is_refused_with_the_reason() {
    let (output, _) = healthcheck("https://127.0.0.1:8443/health/ready");
    assert_unhealthy(&output, "only plain http:// URLs are supported");
    let (output, _) = healthcheck("http://localhost:8080/health/ready");
    assert_unhealthy(&output, "the host must be an IP address");
}
