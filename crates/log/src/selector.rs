//! `log_selector`: which optional items are written to the logs.

use std::fmt;

macro_rules! selectors {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, $default:literal; )*) => {
        /// One `log_selector` item. Exim's items keep Exim's names and
        /// defaults; `TfoDetail` is oxim's own.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum Selector {
            $( $(#[$doc])* $variant, )*
        }

        impl Selector {
            /// Every item, in table order.
            pub const ALL: &'static [Selector] = &[ $( Selector::$variant, )* ];

            /// The name used in `log_selector` (without `+`/`-`).
            pub const fn name(self) -> &'static str {
                match self { $( Selector::$variant => $name, )* }
            }

            /// Whether the item is on when `log_selector` does not mention it.
            pub const fn default_on(self) -> bool {
                match self { $( Selector::$variant => $default, )* }
            }

            /// Looks an item up by name.
            pub fn from_name(name: &str) -> Option<Selector> {
                match name { $( $name => Some(Selector::$variant), )* _ => None }
            }
        }
    };
}

selectors! {
    /// `M8S=` on `<=` lines: 8BITMIME status.
    EightBitMime = "8bitmime", false;
    /// Skipped `warn` ACL statements.
    AclWarnSkipped = "acl_warn_skipped", true;
    /// Address rewriting.
    AddressRewrite = "address_rewrite", false;
    /// All parents in `=>` lines.
    AllParents = "all_parents", false;
    /// Command line arguments.
    Arguments = "arguments", false;
    /// `Ci=<id>` connection identifiers (Exim 4.98+); accepted, not yet
    /// rendered.
    ConnectionId = "connection_id", false;
    /// Rejected connections (main log; the reject log always gets them).
    ConnectionReject = "connection_reject", true;
    /// Immediate delivery delayed.
    DelayDelivery = "delay_delivery", true;
    /// `DT=` on `=>`, `==`, `**` lines.
    DeliverTime = "deliver_time", false;
    /// `S=` on `=>` lines.
    DeliverySize = "delivery_size", false;
    /// DKIM verified domain on `<=` lines.
    Dkim = "dkim", true;
    /// One line per DKIM signature.
    DkimVerbose = "dkim_verbose", false;
    /// Defers of DNS list lookups.
    DnslistDefer = "dnslist_defer", true;
    /// `DS` for DNSSEC-secured lookups.
    Dnssec = "dnssec", false;
    /// ETRN commands.
    Etrn = "etrn", true;
    /// Failed host name lookups.
    HostLookupFailed = "host_lookup_failed", true;
    /// Ident timeouts.
    IdentTimeout = "ident_timeout", false;
    /// `I=` on `<=` lines.
    IncomingInterface = "incoming_interface", false;
    /// `:port` after the remote address on `<=` lines.
    IncomingPort = "incoming_port", false;
    /// Lost incoming connections.
    LostIncomingConnection = "lost_incoming_connection", true;
    /// Milliseconds in timestamps and durations.
    Millisec = "millisec", false;
    /// `id=` on `<=` lines.
    MsgId = "msg_id", true;
    /// `id*=` on `<=` lines for a Message-ID we generated.
    MsgIdCreated = "msg_id_created", false;
    /// `I=` on `=>` lines.
    OutgoingInterface = "outgoing_interface", false;
    /// `:port` after the remote address on `=>` lines.
    OutgoingPort = "outgoing_port", false;
    /// `[pid]` after the timestamp.
    Pid = "pid", false;
    /// Pipelining use.
    Pipelining = "pipelining", false;
    /// `PS=` on `=>` lines: the protocol steps of the SMTP session start
    /// (`e` EHLO, `h` HELO, `s` STARTTLS, `a` AUTH, `l` LHLO).
    ProtocolDetail = "protocol_detail", false;
    /// Proxy addresses.
    Proxy = "proxy", false;
    /// Start and end of queue runs.
    QueueRun = "queue_run", true;
    /// `QT=` on `=>` lines.
    QueueTime = "queue_time", false;
    /// Exclude receive time from `QT=`.
    QueueTimeExclusive = "queue_time_exclusive", false;
    /// `QT=` on `Completed` lines.
    QueueTimeOverall = "queue_time_overall", false;
    /// `RT=` on `<=` lines.
    ReceiveTime = "receive_time", false;
    /// `for <recipients>` on `<=` lines.
    ReceivedRecipients = "received_recipients", false;
    /// `from <sender>` on `<=` lines.
    ReceivedSender = "received_sender", false;
    /// Header contents in the reject log.
    RejectedHeader = "rejected_header", true;
    /// "retry time not reached" deferrals.
    RetryDefer = "retry_defer", true;
    /// `P=<return path>` on `=>` and `**` lines.
    ReturnPathOnDelivery = "return_path_on_delivery", false;
    /// `F=<sender>` on `=>` lines.
    SenderOnDelivery = "sender_on_delivery", false;
    /// Sender verification failures.
    SenderVerifyFail = "sender_verify_fail", true;
    /// Rejections for size.
    SizeReject = "size_reject", true;
    /// Deliveries skipped in a queue run.
    SkipDelivery = "skip_delivery", true;
    /// `C="..."` on `=>` lines.
    SmtpConfirmation = "smtp_confirmation", true;
    /// Incoming SMTP connections and their end.
    SmtpConnection = "smtp_connection", false;
    /// Incomplete SMTP transactions.
    SmtpIncompleteTransaction = "smtp_incomplete_transaction", false;
    /// AUTH= argument of MAIL.
    SmtpMailauth = "smtp_mailauth", false;
    /// Sessions without MAIL.
    SmtpNoMail = "smtp_no_mail", false;
    /// SMTP protocol errors.
    SmtpProtocolError = "smtp_protocol_error", false;
    /// SMTP syntax errors.
    SmtpSyntaxError = "smtp_syntax_error", false;
    /// `T="subject"` on `<=` lines.
    Subject = "subject", false;
    /// Taint errors and warnings.
    Taint = "taint", true;
    /// `CV=` on `<=` and `=>` lines.
    TlsCertificateVerified = "tls_certificate_verified", true;
    /// `X=` on `<=` and `=>` lines.
    TlsCipher = "tls_cipher", true;
    /// `DN="..."` on `<=` and `=>` lines.
    TlsPeerdn = "tls_peerdn", false;
    /// `*` after the cipher for a resumed session.
    TlsResumption = "tls_resumption", false;
    /// `SNI=` on `<=` and `=>` lines.
    TlsSni = "tls_sni", false;
    /// Lookup failures in list matching.
    UnknownInList = "unknown_in_list", false;
    /// oxim: ` TFO=<outcome>` with the detailed TCP Fast Open outcome of
    /// the connection (`requested`, `accepted`, `rejected`, `data`, `none`,
    /// `cookie`, ...), on `<=` and `=>` lines.
    TfoDetail = "tfo_detail", false;
}

impl Selector {
    /// Items whose lines or fields oxim does not produce (or cannot turn
    /// off): a `log_selector` that moves one of them from its default is
    /// refused rather than accepted and ignored.
    pub const NOT_IMPLEMENTED: &'static [Selector] = &[
        Selector::AclWarnSkipped,
        Selector::EightBitMime,
        Selector::Arguments,
        Selector::DnslistDefer,
        Selector::Dnssec,
        Selector::HostLookupFailed,
        Selector::IdentTimeout,
        Selector::Proxy,
        Selector::QueueTimeExclusive,
        Selector::SenderVerifyFail,
        Selector::SkipDelivery,
        Selector::SmtpIncompleteTransaction,
        Selector::Taint,
        Selector::UnknownInList,
    ];
}

/// Why a `log_selector` string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// The item is not a known selector name.
    #[error("unknown log_selector item \"{0}\"")]
    Unknown(String),
    /// The item does not start with `+` or `-`.
    #[error("log_selector item \"{0}\" must start with + or -")]
    MissingSign(String),
    /// The setting moves an item oxim does not implement from its
    /// default (see [`Selector::NOT_IMPLEMENTED`]).
    #[error("log_selector \"{0}\" is not supported by oxim")]
    NotImplemented(String),
}

/// A set of [`Selector`] items.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct LogSelector {
    bits: u64,
}

const _: () = assert!(Selector::ALL.len() <= 64);

impl Default for LogSelector {
    /// Exim's default set.
    fn default() -> Self {
        let mut s = LogSelector { bits: 0 };
        for &item in Selector::ALL {
            s.set(item, item.default_on());
        }
        s
    }
}

impl LogSelector {
    /// No item at all (`-all`).
    pub const fn none() -> LogSelector {
        LogSelector { bits: 0 }
    }

    /// Every item (`+all`).
    pub fn all() -> LogSelector {
        let mut s = LogSelector::none();
        for &item in Selector::ALL {
            s.set(item, true);
        }
        s
    }

    /// Parses a `log_selector` value: `+item` / `-item`, separated by
    /// white space or written one after the other (`+pid+queue_time`),
    /// applied in order to Exim's default set; `+all` / `-all` set or clear
    /// everything.
    pub fn parse(s: &str) -> Result<LogSelector, SelectorError> {
        let mut sel = LogSelector::default();
        let words = s.split_whitespace().flat_map(|w| {
            let mut parts = Vec::new();
            let mut start = 0;
            for (i, c) in w.char_indices() {
                if (c == '+' || c == '-') && i > start {
                    parts.push(&w[start..i]);
                    start = i;
                }
            }
            parts.push(&w[start..]);
            parts
        });
        for word in words {
            let (on, name) = if let Some(n) = word.strip_prefix('+') {
                (true, n)
            } else if let Some(n) = word.strip_prefix('-') {
                (false, n)
            } else {
                return Err(SelectorError::MissingSign(word.to_string()));
            };
            if name == "all" {
                sel = if on {
                    LogSelector::all()
                } else {
                    LogSelector::none()
                };
                continue;
            }
            let item = Selector::from_name(name)
                .ok_or_else(|| SelectorError::Unknown(name.to_string()))?;
            sel.set(item, on);
        }
        let default = LogSelector::default();
        if let Some(item) = Selector::NOT_IMPLEMENTED
            .iter()
            .find(|&&i| sel.has(i) != default.has(i))
        {
            let sign = if sel.has(*item) { '+' } else { '-' };
            return Err(SelectorError::NotImplemented(format!(
                "{sign}{}",
                item.name()
            )));
        }
        Ok(sel)
    }

    /// Is `item` on?
    #[inline]
    pub fn has(&self, item: Selector) -> bool {
        self.bits & (1u64 << item as u8) != 0
    }

    /// Turns `item` on or off.
    pub fn set(&mut self, item: Selector, on: bool) {
        if on {
            self.bits |= 1u64 << item as u8;
        } else {
            self.bits &= !(1u64 << item as u8);
        }
    }

    /// Builder form of [`LogSelector::set`].
    pub fn with(mut self, item: Selector, on: bool) -> LogSelector {
        self.set(item, on);
        self
    }

    /// The items that are on.
    pub fn items(&self) -> impl Iterator<Item = Selector> + '_ {
        Selector::ALL.iter().copied().filter(|&i| self.has(i))
    }
}

impl fmt::Debug for LogSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.items().map(Selector::name))
            .finish()
    }
}

impl fmt::Display for LogSelector {
    /// The set as a `log_selector` value that [`LogSelector::parse`] maps
    /// back to it (differences from the default set only).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let default = LogSelector::default();
        let mut first = true;
        for &item in Selector::ALL {
            if self.has(item) != default.has(item) {
                if !first {
                    f.write_str(" ")?;
                }
                first = false;
                write!(
                    f,
                    "{}{}",
                    if self.has(item) { '+' } else { '-' },
                    item.name()
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn defaults() {
        let d = LogSelector::default();
        for on in [
            Selector::SmtpConfirmation,
            Selector::RetryDefer,
            Selector::MsgId,
            Selector::TlsCipher,
            Selector::TlsCertificateVerified,
            Selector::ConnectionReject,
            Selector::LostIncomingConnection,
        ] {
            assert!(d.has(on), "{on:?}");
        }
        for off in [
            Selector::ReceivedRecipients,
            Selector::Millisec,
            Selector::IncomingPort,
            Selector::SmtpConnection,
            Selector::SenderOnDelivery,
            Selector::ReceivedSender,
            Selector::Subject,
            Selector::TlsPeerdn,
            Selector::OutgoingPort,
            Selector::QueueTime,
            Selector::DeliverTime,
            Selector::TfoDetail,
        ] {
            assert!(!d.has(off), "{off:?}");
        }
    }

    #[test]
    fn parse_test_suite_values() {
        let s = LogSelector::parse("+received_recipients +millisec").unwrap();
        assert!(s.has(Selector::ReceivedRecipients) && s.has(Selector::Millisec));
        assert!(s.has(Selector::SmtpConfirmation));
        let s = LogSelector::parse("-connection_reject").unwrap();
        assert!(!s.has(Selector::ConnectionReject));
        let s = LogSelector::parse("  +smtp_connection\t").unwrap();
        assert!(s.has(Selector::SmtpConnection));
        assert_eq!(LogSelector::parse("").unwrap(), LogSelector::default());
        // Items may follow one another without white space.
        let s = LogSelector::parse("+pid+queue_time -msg_id+subject").unwrap();
        assert!(s.has(Selector::Pid) && s.has(Selector::QueueTime) && s.has(Selector::Subject));
        assert!(!s.has(Selector::MsgId));
        assert_eq!(
            LogSelector::parse("+pid+bogus"),
            Err(SelectorError::Unknown("bogus".into()))
        );
    }

    #[test]
    fn all_and_order() {
        // `+all` and `-all` would move items oxim does not implement.
        assert!(matches!(
            LogSelector::parse("+all"),
            Err(SelectorError::NotImplemented(_))
        ));
        assert!(matches!(
            LogSelector::parse("-all +subject"),
            Err(SelectorError::NotImplemented(_))
        ));
        // Later items win.
        let s = LogSelector::parse("+subject -subject +pid").unwrap();
        assert!(!s.has(Selector::Subject) && s.has(Selector::Pid));
    }

    #[test]
    fn items_oxim_lacks_are_refused_off_their_default() {
        assert_eq!(
            LogSelector::parse("+unknown_in_list"),
            Err(SelectorError::NotImplemented("+unknown_in_list".into()))
        );
        assert_eq!(
            LogSelector::parse("-sender_verify_fail"),
            Err(SelectorError::NotImplemented("-sender_verify_fail".into()))
        );
        // Back at the default by the end: accepted.
        assert!(LogSelector::parse("+unknown_in_list -unknown_in_list").is_ok());
    }

    #[test]
    fn errors() {
        assert_eq!(
            LogSelector::parse("+received_recipients +bogus"),
            Err(SelectorError::Unknown("bogus".into()))
        );
        assert_eq!(
            LogSelector::parse("subject"),
            Err(SelectorError::MissingSign("subject".into()))
        );
        assert_eq!(
            LogSelector::parse("+"),
            Err(SelectorError::Unknown("".into()))
        );
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<_> = Selector::ALL.iter().map(|s| s.name()).collect();
        names.sort_unstable();
        let n = names.len();
        names.dedup();
        assert_eq!(names.len(), n);
    }

    proptest! {
        #[test]
        fn display_roundtrips(bits in any::<u64>()) {
            let mut s = LogSelector::none();
            let default = LogSelector::default();
            for (i, &item) in Selector::ALL.iter().enumerate() {
                let on = if Selector::NOT_IMPLEMENTED.contains(&item) {
                    default.has(item)
                } else {
                    bits & (1 << i) != 0
                };
                s.set(item, on);
            }
            prop_assert_eq!(LogSelector::parse(&s.to_string()).unwrap(), s);
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,60}") {
            let _ = LogSelector::parse(&s);
        }
    }
}
