//! The command table and the session's internal phases.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pending {
    Helo { ehlo: bool },
    Mail,
    Rcpt,
    Data,
    DataEnd,
    Quit,
    Other,
    StartTls,
    Auth,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    PreGreeting,
    Command,
    Data,
    /// Reading a BDAT chunk; `discard` when the chunk is being thrown away.
    Bdat {
        remaining: u64,
        size: u64,
        last: bool,
        discard: bool,
    },
    /// After a non-LAST BDAT: only BDAT, RSET, NOOP, QUIT.
    BdatNext,
    /// After a BDAT error: only RSET and QUIT.
    RsetOnly,
    AuthContinue,
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verb {
    Helo,
    Ehlo,
    Auth,
    StartTls,
    Mail,
    Rcpt,
    Data,
    Bdat,
    Quit,
    Rset,
    Etrn,
    Vrfy,
    Expn,
    Help,
    Noop,
}

/// (name, verb, takes an argument) in Exim's matching order.
pub(super) const COMMANDS: &[(&[u8], Verb, bool)] = &[
    (b"HELO", Verb::Helo, true),
    (b"EHLO", Verb::Ehlo, true),
    (b"AUTH", Verb::Auth, true),
    (b"STARTTLS", Verb::StartTls, false),
    (b"MAIL FROM:", Verb::Mail, true),
    (b"RCPT TO:", Verb::Rcpt, true),
    (b"DATA", Verb::Data, false),
    (b"BDAT", Verb::Bdat, true),
    (b"QUIT", Verb::Quit, false),
    (b"RSET", Verb::Rset, false),
    (b"ETRN", Verb::Etrn, true),
    (b"VRFY", Verb::Vrfy, true),
    (b"EXPN", Verb::Expn, true),
    (b"HELP", Verb::Help, true),
    (b"NOOP", Verb::Noop, true),
];

pub(super) fn identify(line: &[u8]) -> Option<(Verb, bool, usize)> {
    COMMANDS.iter().find_map(|&(name, verb, has_arg)| {
        let n = name.len();
        let matches = line.len() >= n
            && line[..n].eq_ignore_ascii_case(name)
            && (name[n - 1] == b':' || line.len() == n || line[n] == b' ');
        matches.then_some((verb, has_arg, n))
    })
}

impl Verb {
    /// The command's name as Exim's `C=` history shows it.
    pub(super) fn history_name(self) -> &'static str {
        match self {
            Verb::Helo => "HELO",
            Verb::Ehlo => "EHLO",
            Verb::Auth => "AUTH",
            Verb::StartTls => "STARTTLS",
            Verb::Mail => "MAIL",
            Verb::Rcpt => "RCPT",
            Verb::Data => "DATA",
            Verb::Bdat => "BDAT",
            Verb::Quit => "QUIT",
            Verb::Rset => "RSET",
            Verb::Etrn => "ETRN",
            Verb::Vrfy => "VRFY",
            Verb::Expn => "EXPN",
            Verb::Help => "HELP",
            Verb::Noop => "NOOP",
        }
    }

    /// Must this command be the last of what the client has sent?
    /// (Exim's command ordering: HELO, EHLO, DATA, VRFY, EXPN, NOOP, ETRN,
    /// STARTTLS always; MAIL, RCPT, RSET too when PIPELINING was not
    /// advertised; AUTH, QUIT, HELP, BDAT never.)
    pub(super) fn needs_sync(self, pipelining: bool) -> bool {
        match self {
            Verb::Helo
            | Verb::Ehlo
            | Verb::Data
            | Verb::Vrfy
            | Verb::Expn
            | Verb::Noop
            | Verb::Etrn
            | Verb::StartTls => true,
            Verb::Mail | Verb::Rcpt | Verb::Rset => !pipelining,
            Verb::Auth | Verb::Quit | Verb::Help | Verb::Bdat => false,
        }
    }
}
