//! The container health check's one request: GET an `http://IP:port/path` URL over a plain
//! `TcpStream` within one total time bound, and accept only an HTTP 200 status line. No HTTP client
//! crate and no name lookup: the image's HEALTHCHECK (and ECS's) runs this every few seconds inside a
//! distroless image, so it must be small, start fast, and never hang past its bound.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// What the check asks when `LEDGER_HEALTHCHECK_URL` is not set: the readiness of the `ledger-api`
/// beside it, at the image's `LEDGER_HTTP_ADDR` (`0.0.0.0:8080`), over loopback.
pub const DEFAULT_HEALTHCHECK_URL: &str = "http://127.0.0.1:8080/health/ready";

/// The whole check (connect, send, read the status line) gets this long, not each step.
pub const HEALTHCHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The status line must arrive within this many bytes; anything longer is not the ledger answering.
const STATUS_LINE_BYTES_MAX: usize = 1024;

/// Why the check failed, each said in one line on stderr by the binary.
#[derive(Debug, thiserror::Error)]
pub enum HealthcheckError {
    #[error(
        "only plain http:// URLs are supported (the check runs beside the service, over loopback)"
    )]
    UnsupportedScheme,
    #[error(
        "the host must be an IP address with an optional port, e.g. 127.0.0.1:8080 (no name lookup: it has no time bound)"
    )]
    HostNotAnAddress,
    #[error("the path must have no spaces or control characters")]
    PathNotPlain,
    #[error("cannot connect to {address}: {source}")]
    Connect {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("no complete answer within {}ms", HEALTHCHECK_TIMEOUT.as_millis())]
    TimedOut,
    #[error("the request could not be sent: {0}")]
    Send(std::io::Error),
    #[error("the answer could not be read: {0}")]
    Read(std::io::Error),
    #[error("the connection closed before a status line")]
    ClosedBeforeStatusLine,
    #[error("the answer does not start with an HTTP/1.x status line")]
    MalformedStatusLine,
    #[error("HTTP status {0}, not 200")]
    NotOk(u16),
}

/// An `http://` URL taken apart: where to connect, and what to put in the request line and `Host`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthcheckTarget {
    address: SocketAddr,
    host_header: String,
    path: String,
}

impl HealthcheckTarget {
    /// Parses `http://IP[:port][/path]`; the port defaults to 80 and the path to `/`. A host name is
    /// refused rather than resolved, because the standard library's lookup cannot be bounded in time.
    pub fn parse(url: &str) -> Result<Self, HealthcheckError> {
        let rest = url
            .strip_prefix("http://")
            .ok_or(HealthcheckError::UnsupportedScheme)?;
        let (authority, path) = match rest.find('/') {
            Some(slash) => rest.split_at(slash),
            None => (rest, "/"),
        };
        let address = authority
            .parse::<SocketAddr>()
            .or_else(|_| {
                // No port: an IPv4 address alone, or an IPv6 address in brackets.
                let bare = authority
                    .strip_prefix('[')
                    .and_then(|inner| inner.strip_suffix(']'))
                    .unwrap_or(authority);
                bare.parse::<std::net::IpAddr>()
                    .map(|ip| SocketAddr::new(ip, 80))
            })
            .map_err(|_| HealthcheckError::HostNotAnAddress)?;
        if path.chars().any(|c| c.is_ascii_control() || c == ' ') {
            return Err(HealthcheckError::PathNotPlain);
        }
        Ok(Self {
            address,
            host_header: authority.to_owned(),
            path: path.to_owned(),
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// One GET within `timeout` in all; `Ok` only for status 200.
    pub fn check(&self, timeout: Duration) -> Result<(), HealthcheckError> {
        let deadline = Instant::now() + timeout;
        let mut stream =
            TcpStream::connect_timeout(&self.address, remaining(deadline)?).map_err(|source| {
                match source.kind() {
                    std::io::ErrorKind::TimedOut => HealthcheckError::TimedOut,
                    _ => HealthcheckError::Connect {
                        address: self.address,
                        source,
                    },
                }
            })?;
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: ledger-healthcheck\r\nAccept: */*\r\nConnection: close\r\n\r\n",
            self.path, self.host_header
        );
        stream
            .set_write_timeout(Some(remaining(deadline)?))
            .map_err(HealthcheckError::Send)?;
        stream
            .write_all(request.as_bytes())
            .map_err(|error| io_error(error, HealthcheckError::Send))?;
        let status = read_status_code(&mut stream, deadline)?;
        if status == 200 {
            Ok(())
        } else {
            Err(HealthcheckError::NotOk(status))
        }
    }
}

/// Reads until the end of the status line, each read bounded by what is left of the deadline, so a
/// server that sends a byte at a time cannot stretch the check past its bound.
fn read_status_code(stream: &mut TcpStream, deadline: Instant) -> Result<u16, HealthcheckError> {
    let mut received = Vec::with_capacity(256);
    let mut buffer = [0_u8; 256];
    loop {
        if let Some(end) = received.windows(2).position(|pair| pair == b"\r\n") {
            return parse_status_line(&received[..end]);
        }
        if received.len() > STATUS_LINE_BYTES_MAX {
            return Err(HealthcheckError::MalformedStatusLine);
        }
        stream
            .set_read_timeout(Some(remaining(deadline)?))
            .map_err(HealthcheckError::Read)?;
        match stream.read(&mut buffer) {
            Ok(0) => return Err(HealthcheckError::ClosedBeforeStatusLine),
            Ok(read) => received.extend_from_slice(&buffer[..read]),
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(io_error(error, HealthcheckError::Read)),
        }
    }
}

/// `HTTP/1.1 200 OK` -> 200.
fn parse_status_line(line: &[u8]) -> Result<u16, HealthcheckError> {
    let line = std::str::from_utf8(line).map_err(|_| HealthcheckError::MalformedStatusLine)?;
    let mut parts = line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let code = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") || code.len() != 3 {
        return Err(HealthcheckError::MalformedStatusLine);
    }
    code.parse()
        .map_err(|_| HealthcheckError::MalformedStatusLine)
}

/// What is left until `deadline`; none left is the timeout. (A zero duration is not a valid socket
/// timeout, so the last instant counts as none.)
fn remaining(deadline: Instant) -> Result<Duration, HealthcheckError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(HealthcheckError::TimedOut)
    } else {
        Ok(left)
    }
}

/// A socket timeout shows up as `WouldBlock` or `TimedOut` depending on the platform: both are the
/// bound running out.
fn io_error(
    error: std::io::Error,
    otherwise: fn(std::io::Error) -> HealthcheckError,
) -> HealthcheckError {
    match error.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => HealthcheckError::TimedOut,
        _ => otherwise(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_url_is_the_readiness_of_the_api_beside_it() {
        let target = HealthcheckTarget::parse(DEFAULT_HEALTHCHECK_URL).expect("parses");
        assert_eq!(target.address(), SocketAddr::from(([127, 0, 0, 1], 8080)));
        assert_eq!(target.path, "/health/ready");
        assert_eq!(target.host_header, "127.0.0.1:8080");
    }

    #[test]
    fn port_and_path_have_defaults_and_ipv6_is_accepted() {
        let target = HealthcheckTarget::parse("http://10.0.0.7").expect("parses");
        assert_eq!(target.address(), SocketAddr::from(([10, 0, 0, 7], 80)));
        assert_eq!(target.path, "/");
        let target = HealthcheckTarget::parse("http://[::1]:9000/health/live").expect("parses");
        assert_eq!(target.address(), "[::1]:9000".parse().expect("an address"));
        assert_eq!(target.path, "/health/live");
        let target = HealthcheckTarget::parse("http://[::1]/").expect("parses");
        assert_eq!(target.address(), "[::1]:80".parse().expect("an address"));
    }

    /// The reason `url` is refused, as the discriminant of the error (its payload aside).
    fn refusal(url: &str) -> std::mem::Discriminant<HealthcheckError> {
        let error = HealthcheckTarget::parse(url)
            .map(|target| format!("{target:?}"))
            .expect_err(url);
        std::mem::discriminant(&error)
    }

    #[test]
    fn other_schemes_host_names_and_unsafe_paths_are_refused() {
        let cases = [
            (
                "https://127.0.0.1:8080/health/ready",
                HealthcheckError::UnsupportedScheme,
            ),
            ("127.0.0.1:8080", HealthcheckError::UnsupportedScheme),
            ("ftp://x", HealthcheckError::UnsupportedScheme),
            (
                "http://localhost:8080/health/ready",
                HealthcheckError::HostNotAnAddress,
            ),
            (
                "http://ledger/health/ready",
                HealthcheckError::HostNotAnAddress,
            ),
            (
                "http://127.0.0.1:99999/",
                HealthcheckError::HostNotAnAddress,
            ),
            ("http:///health/ready", HealthcheckError::HostNotAnAddress),
            // Either would break the request line or smuggle a header into it.
            (
                "http://127.0.0.1:8080/health ready",
                HealthcheckError::PathNotPlain,
            ),
            (
                "http://127.0.0.1:8080/a\r\nX: y",
                HealthcheckError::PathNotPlain,
            ),
        ];
        for (url, expected) in cases {
            assert_eq!(refusal(url), std::mem::discriminant(&expected), "{url}");
        }
    }

    #[test]
    fn only_an_http_1_status_line_gives_a_code() {
        assert_eq!(parse_status_line(b"HTTP/1.1 200 OK").expect("a code"), 200);
        assert_eq!(parse_status_line(b"HTTP/1.0 503").expect("a code"), 503);
        for line in [
            &b"HTTP/2 200"[..],
            b"HTTP/1.1 20 OK",
            b"SSH-2.0-OpenSSH",
            b"",
            b"\xff\xfe",
        ] {
            assert!(
                matches!(
                    parse_status_line(line),
                    Err(HealthcheckError::MalformedStatusLine)
                ),
                "{line:?}"
            );
        }
    }
}
