//! The error number a delivery failure is logged with (`defer (N)` in the
//! `==` line): none, a system `errno`, or one of Exim's negative
//! pseudo-errnos, each with the value Exim logs for it.

/// One delivery error number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Errno {
    /// No number: the message says it all (`defer (0)`; also every 5xx).
    None,
    /// A system error (positive), logged with its text.
    Os(i32),
    /// Exim's catch-all (-1).
    Unknown,
    /// The remote host closed the connection (-18).
    SmtpClosed,
    /// A reply that is not SMTP (-19).
    SmtpFormat,
    /// A home or current directory that is not an absolute path
    /// (`ERRNO_NOTABSOLUTE`, -21).
    NotAbsolute,
    /// An option failed to expand (-27).
    ExpandFail,
    /// A local delivery would run as a `never_users` user (`ERRNO_UIDFAIL`,
    /// -29).
    UidFail,
    /// A transport is unset or does not exist (`ERRNO_BADTRANSPORT`, -30).
    BadTransport,
    /// A router could not find its hosts (-32).
    UnknownHost,
    /// The TLS handshake failed (-37).
    TlsFailure,
    /// TLS was required but not offered, or refused (-38).
    TlsRequired,
    /// Authentication required by the client (`hosts_require_auth`) and
    /// not done (`ERRNO_AUTHFAIL`, -42).
    AuthFail,
    /// A 4xx to RCPT (-44).
    Rcpt4xx,
    /// A 4xx to MAIL (-45).
    Mail4xx,
    /// A 4xx to DATA or after the data (-46).
    Data4xx,
    /// An authenticator's own problem, e.g. an expansion (`ERRNO_AUTHPROB`,
    /// -48).
    AuthProb,
    /// The smtp transport refuses to talk to this host (`ERRNO_HOST_IS_LOCAL`,
    /// -50).
    HostIsLocal,
    /// An error in redirection data or a filter (ERRNO_BADREDIRECT).
    BadRedirect,
    /// Not routed: the address's or domain's retry time has not come
    /// (`ERRNO_RRETRY`, -52).
    RouteRetry,
    /// No host tried: none has reached its retry time (`ERRNO_HRETRY`, -54).
    HostRetry,
    /// Not routed: the domain is in `queue_domains` (`ERRNO_QUEUE_DOMAIN`,
    /// -56).
    QueueDomain,
}

impl Errno {
    /// The number as Exim logs it.
    pub fn code(self) -> i32 {
        match self {
            Errno::None => 0,
            Errno::Os(n) => n,
            Errno::Unknown => -1,
            Errno::SmtpClosed => -18,
            Errno::SmtpFormat => -19,
            Errno::NotAbsolute => -21,
            Errno::ExpandFail => -27,
            Errno::UidFail => -29,
            Errno::BadTransport => -30,
            Errno::UnknownHost => -32,
            Errno::TlsFailure => -37,
            Errno::TlsRequired => -38,
            Errno::AuthFail => -42,
            Errno::Rcpt4xx => -44,
            Errno::Mail4xx => -45,
            Errno::Data4xx => -46,
            Errno::AuthProb => -48,
            Errno::HostIsLocal => -50,
            Errno::BadRedirect => -17,
            Errno::RouteRetry => -52,
            Errno::HostRetry => -54,
            Errno::QueueDomain => -56,
        }
    }
}

/// An I/O error as the C library's `strerror` says it: "Connection
/// refused" rather than "Connection refused (os error 111)".
pub fn io_text(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(p) => s[..p].to_string(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_exims() {
        assert_eq!(Errno::None.code(), 0);
        assert_eq!(Errno::Os(111).code(), 111);
        assert_eq!(Errno::UidFail.code(), -29);
        assert_eq!(Errno::RouteRetry.code(), -52);
        assert_eq!(Errno::HostRetry.code(), -54);
    }
}
