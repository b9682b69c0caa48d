//! systemd readiness protocol (sd_notify(3)) for `Type=notify` units:
//! one datagram to the socket named by `$NOTIFY_SOCKET`.
//! Outside systemd the variable is unset and every call does nothing.

use std::ffi::OsStr;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// The environment variable systemd sets for `Type=notify` services.
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// Sends `state` (newline-separated `KEY=VALUE` assignments) to systemd.
/// Returns whether a message was sent; failures are logged, never fatal.
pub fn notify(state: &str) -> bool {
    let Some(socket) = std::env::var_os(NOTIFY_SOCKET) else {
        return false;
    };
    match notify_to(&socket, state) {
        Ok(sent) => sent,
        Err(e) => {
            tracing::warn!(
                "Cannot notify systemd at {}: {e}.",
                socket.to_string_lossy()
            );
            false
        }
    }
}

/// Tells systemd the worker is polling.
pub fn ready(status: &str) -> bool {
    notify(&format!("READY=1\nSTATUS={status}"))
}

/// Tells systemd the worker is draining and needs `needed` more time to stop
/// (`EXTEND_TIMEOUT_USEC`; it only matters once past `TimeoutStopSec`).
pub fn stopping(needed: Duration, status: &str) -> bool {
    notify(&format!(
        "STOPPING=1\nEXTEND_TIMEOUT_USEC={}\nSTATUS={status}",
        needed.as_micros()
    ))
}

/// Sends `state` to the socket at `socket`: a file system path, or an
/// abstract name written `@name`. Other forms (e.g. `vsock:`) are ignored.
pub fn notify_to(socket: &OsStr, state: &str) -> io::Result<bool> {
    let bytes = socket.as_bytes();
    let sock = UnixDatagram::unbound()?;
    if let Some(name) = bytes.strip_prefix(b"@") {
        sock.send_to_addr(state.as_bytes(), &SocketAddr::from_abstract_name(name)?)?;
    } else if bytes.starts_with(b"/") {
        sock.send_to(state.as_bytes(), socket)?;
    } else {
        return Ok(false);
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receive(listener: &UnixDatagram) -> String {
        let mut buf = [0u8; 512];
        listener
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let n = listener.recv(&mut buf).expect("a datagram");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn sends_one_datagram_to_a_path_socket() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path).expect("bind");
        assert!(notify_to(path.as_os_str(), "READY=1\nSTATUS=x").expect("send"));
        assert_eq!(receive(&listener), "READY=1\nSTATUS=x");
    }

    #[test]
    fn sends_to_an_abstract_socket() {
        let name = format!("lava-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).expect("addr");
        let listener = UnixDatagram::bind_addr(&addr).expect("bind");
        let socket = format!("@{name}");
        assert!(notify_to(OsStr::new(&socket), "STOPPING=1").expect("send"));
        assert_eq!(receive(&listener), "STOPPING=1");
    }

    #[test]
    fn ignores_unsupported_addresses_and_reports_missing_sockets() {
        assert!(!notify_to(OsStr::new("vsock:2:1"), "READY=1").expect("ignored"));
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("absent");
        assert!(notify_to(missing.as_os_str(), "READY=1").is_err());
    }
}
