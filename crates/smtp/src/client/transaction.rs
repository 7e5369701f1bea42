//! One mail transaction as the client saw it: what was sent, every reply,
//! and which reply decides each recipient's fate.

use crate::reply::Reply;

use super::BodyType;

/// The envelope of one transaction.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Envelope {
    /// Reverse path without brackets (empty for `<>`).
    pub from: String,
    /// Forward paths without brackets.
    pub rcpts: Vec<String>,
    /// `SIZE=` to announce (sent only if the server offers SIZE).
    pub size: Option<u64>,
    /// `BODY=` to announce (sent only if the server offers 8BITMIME).
    pub body: Option<BodyType>,
    /// Announce `SMTPUTF8` (sent only if the server offers it).
    pub smtputf8: bool,
    /// `AUTH=` (the authenticated sender, not yet xtext-encoded), for a
    /// session that authenticated.
    pub auth: Option<String>,
}

/// Result of one transaction: the commands and every reply, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TransactionResult {
    /// The `MAIL FROM:<...> ...` command as sent, without CRLF.
    pub mail_command: String,
    /// Reply to MAIL.
    pub mail: Option<Reply>,
    /// MAIL went pipelined with other commands.
    pub mail_pipelined: bool,
    /// The `RCPT TO:<...>` commands, without CRLF.
    pub rcpt_commands: Vec<String>,
    /// Reply to each RCPT (`None` if the RCPT was never sent because MAIL
    /// failed without pipelining).
    pub rcpts: Vec<Option<Reply>>,
    /// Reply to DATA (`354` or a refusal); `None` with BDAT or when DATA
    /// was not sent.
    pub data: Option<Reply>,
    /// DATA went pipelined behind MAIL and RCPT.
    pub data_pipelined: bool,
    /// Reply to the end of the body (after `.` or `BDAT n LAST`).
    pub final_reply: Option<Reply>,
    /// The body went with `BDAT` (CHUNKING).
    pub chunking: bool,
    /// The server may still hold the transaction open: say `RSET` before
    /// the next `MAIL` on this connection.
    pub needs_rset: bool,
}

/// What decided the transaction as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict<'a> {
    /// MAIL was refused: every recipient shares that reply.
    Mail(&'a Reply),
    /// DATA was refused although a recipient had been accepted: every
    /// recipient shares that reply.
    Data(&'a Reply),
    /// Each recipient has its own outcome, in RCPT order.
    Recipients(Vec<RcptVerdict<'a>>),
}

/// What decided one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RcptVerdict<'a> {
    /// Its RCPT was refused.
    Refused(&'a Reply),
    /// Its RCPT was accepted; the reply at the end of the data decides
    /// (delivered if positive).
    Final(&'a Reply),
    /// No reply decides it (the conversation ended before one came).
    NoReply,
}

impl TransactionResult {
    /// Which replies decide the transaction.
    pub fn verdict(&self) -> Verdict<'_> {
        if let Some(m) = self.mail.as_ref().filter(|m| !m.is_positive()) {
            return Verdict::Mail(m);
        }
        let any_ok = self.rcpts.iter().flatten().any(Reply::is_positive);
        if let Some(d) = self.data.as_ref().filter(|d| d.class() != 3) {
            if any_ok {
                return Verdict::Data(d);
            }
        }
        Verdict::Recipients(
            self.rcpts
                .iter()
                .map(|r| match (r, &self.final_reply) {
                    (Some(r), _) if !r.is_positive() => RcptVerdict::Refused(r),
                    (Some(_), Some(f)) => RcptVerdict::Final(f),
                    _ => RcptVerdict::NoReply,
                })
                .collect(),
        )
    }

    /// Indexes of the recipients the message was accepted for.
    pub fn delivered(&self) -> Vec<usize> {
        match self.verdict() {
            Verdict::Recipients(v) => v
                .iter()
                .enumerate()
                .filter(|(_, v)| matches!(v, RcptVerdict::Final(f) if f.is_positive()))
                .map(|(i, _)| i)
                .collect(),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(code: u16) -> Option<Reply> {
        Some(Reply::new(code, "x"))
    }

    #[test]
    fn verdicts() {
        let mut t = TransactionResult {
            mail: r(250),
            rcpts: vec![r(250), r(550), r(250)],
            final_reply: r(250),
            ..Default::default()
        };
        assert_eq!(t.delivered(), [0, 2]);
        t.final_reply = r(451);
        assert!(t.delivered().is_empty());
        assert!(
            matches!(t.verdict(), Verdict::Recipients(v) if v[0] == RcptVerdict::Final(&Reply::new(451, "x")))
        );
        t.data = r(554);
        assert!(matches!(t.verdict(), Verdict::Data(d) if d.code == 554));
        t.rcpts = vec![r(550), r(550), r(550)];
        assert!(matches!(t.verdict(), Verdict::Recipients(_)));
        t.mail = r(452);
        assert!(matches!(t.verdict(), Verdict::Mail(m) if m.code == 452));
    }
}
