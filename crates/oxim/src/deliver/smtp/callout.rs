//! The connection of a callout (address verification by asking the next
//! hop): opened as the smtp transport opens one (TFO, banner, EHLO or
//! HELO, STARTTLS, AUTH), then driven one command at a time by the
//! verifier, which decides what to send (`acl::callout`).

use std::time::Duration;

use oxim_smtp::{EhloCapabilities, Reply};

use super::conn::{open, reply_text, OpenError, Session};
use super::{ConvError, Host, SmtpError, SmtpParams};
use crate::errno::Errno;

/// Why a callout conversation could not go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalloutError {
    /// Exim's words: `Connection refused`, `Remote host closed connection
    /// in response to initial connection`, `SMTP error from remote mail
    /// server after EHLO x: 550 ...`.
    pub text: String,
    /// A permanent refusal of the greeting or of HELO.
    pub perm: bool,
    /// The TLS handshake failed (a retry in clear may be allowed).
    pub tls_failed: bool,
    /// The system error, if there was one (not a reply).
    pub errno: Option<i32>,
}

impl CalloutError {
    fn from_conv(e: ConvError, tls_failed: bool) -> Self {
        let (perm, e) = match e {
            ConvError::Temp(e) => (false, e),
            ConvError::Perm(e) => (true, e),
        };
        CalloutError {
            text: error_text(&e),
            perm,
            tls_failed,
            errno: match e.errno {
                Errno::Os(n) => Some(n),
                _ => None,
            },
        }
    }
}

fn error_text(e: &SmtpError) -> String {
    match (&e.message, &e.errno_text) {
        (Some(m), _) => m.clone(),
        (None, Some(t)) => t.clone(),
        (None, None) => "connection failed".to_string(),
    }
}

/// An open callout connection, ready for `MAIL FROM`.
pub struct CalloutConn {
    sess: Session,
    timeout: Duration,
}

/// Connect to `host` with the transport's settings and say hello.
pub async fn callout_open(host: &Host, params: &SmtpParams) -> Result<CalloutConn, CalloutError> {
    match open(host, params).await {
        Ok(sess) => Ok(CalloutConn {
            sess,
            timeout: params.command_timeout,
        }),
        Err(OpenError {
            error, tls_failed, ..
        }) => Err(CalloutError::from_conv(error, tls_failed)),
    }
}

impl CalloutConn {
    /// What the server offered in its EHLO reply.
    pub fn caps(&self) -> &EhloCapabilities {
        self.sess.caps()
    }

    /// The session authenticated (AUTH= then goes on MAIL).
    pub fn authenticated(&self) -> bool {
        self.sess.auth.is_some()
    }

    /// Send one command (without its CRLF) and read the reply; `Err` when
    /// the connection failed or timed out (the text says which).
    pub async fn command(&mut self, cmd: &str) -> Result<Reply, CalloutError> {
        self.sess
            .conn
            .exchange(cmd, cmd)
            .await
            .map_err(|e| CalloutError::from_conv(e, false))
    }

    /// Say QUIT and close.
    pub async fn quit(mut self) {
        self.sess.conn.quit(self.timeout).await;
    }
}

/// A reply as Exim keeps it in its buffer: each line with its code, the
/// lines joined by a newline.
pub fn reply_lines(r: &Reply) -> String {
    reply_text(r).replace("\\n", "\n")
}
