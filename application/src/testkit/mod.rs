//! Contract-test suites for the ports (filled in below).
