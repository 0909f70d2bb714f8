//! A test's own HTTP server on 127.0.0.1 at a port the OS picks, on a thread and actix runtime of
//! its own (so the test's runtime can be anything): what the OTLP receiver and the Lambda Runtime
//! API are served by. Stopped through the handle it returns.

use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpResponse, HttpServer, web};

/// Serves the routes `configure` registers (a 404 for any other) with `workers` workers and bodies
/// up to `body_limit_bytes`; returns the port and the server's handle once it listens.
pub fn serve(
    workers: usize,
    body_limit_bytes: usize,
    configure: impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
) -> (u16, ServerHandle) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let port = listener.local_addr().expect("its address").port();
    let (handle_sender, handle_receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = HttpServer::new(move || {
                App::new()
                    .app_data(web::PayloadConfig::new(body_limit_bytes))
                    .configure(configure.clone())
                    .default_service(web::to(HttpResponse::NotFound))
            })
            .workers(workers)
            .disable_signals()
            .listen(listener)
            .expect("the test's server listens")
            .run();
            handle_sender
                .send(server.handle())
                .expect("the test waits for the handle");
            let _ = server.await;
        });
    });
    let handle = handle_receiver
        .recv_timeout(Duration::from_secs(10))
        .expect("the test's server started");
    (port, handle)
}
