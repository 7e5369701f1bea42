//! The `control =` modifier: what each setting asks of the session or of
//! the current message, typed. The names oxim does not implement are
//! refused (when the configuration is read if the value is written out,
//! else here when the statement is reached), never accepted and dropped.

/// One `control = ...` setting an ACL reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// `allow_auth_unadvertised`: AUTH is taken even when not advertised.
    AllowAuthUnadvertised,
    /// `caseful_local_part` (true) / `caselower_local_part` (false):
    /// `$local_part` in the rest of the RCPT ACL keeps the case written.
    CasefulLocalPart(bool),
    /// `dkim_disable_verify`: no DKIM verification for this message.
    DkimDisableVerify,
    /// `enforce_sync` (true) / `no_enforce_sync` (false), for the rest of
    /// the connection.
    EnforceSync(bool),
    /// `fakedefer[/text]`: the message is kept and delivered, the client
    /// is told 450 with the text.
    FakeDefer(Option<String>),
    /// `fakereject[/text]`: the same with 550.
    FakeReject(Option<String>),
    /// `freeze[/no_tell]`: the message is frozen on arrival.
    Freeze { no_tell: bool },
    /// `no_callout_flush` / `no_delay_flush`: oxim does not flush its SMTP
    /// output before a callout or a delay in the first place, so these ask
    /// for what it does anyway.
    NoFlush,
    /// `no_multiline_responses`: ACL refusals use one line only.
    NoMultilineResponses,
    /// `no_pipelining`: PIPELINING is not advertised.
    NoPipelining,
    /// `queue_only` / `queue[/first_pass_route]`: no immediate delivery.
    Queue,
    /// `submission[/options]`: submission-mode fix-ups; the options as
    /// written.
    Submission(String),
    /// `suppress_local_fixups`: a local message is left as it came.
    SuppressLocalFixups,
}

/// Exim's control names that oxim recognises but does not implement.
pub const NOT_IMPLEMENTED: &[&str] = oxim_conf::acl::UNSUPPORTED_CONTROLS;

impl Control {
    /// The control an expanded `control =` value sets. `Err` holds the
    /// refusal's text.
    pub fn parse(value: &str) -> Result<Control, String> {
        let value = value.trim();
        let (name, arg) = match value.split_once('/') {
            Some((n, a)) => (n.trim(), Some(a)),
            None => (value, None),
        };
        let no_arg = |c: Control| match arg {
            None => Ok(c),
            Some(_) => Err(format!(
                "syntax error in \"control={value}\": \"{name}\" takes no options"
            )),
        };
        let text = || arg.map(str::to_string).filter(|s| !s.is_empty());
        match name {
            "allow_auth_unadvertised" => no_arg(Control::AllowAuthUnadvertised),
            "caseful_local_part" => no_arg(Control::CasefulLocalPart(true)),
            "caselower_local_part" => no_arg(Control::CasefulLocalPart(false)),
            "dkim_disable_verify" => no_arg(Control::DkimDisableVerify),
            "enforce_sync" => no_arg(Control::EnforceSync(true)),
            "no_enforce_sync" => no_arg(Control::EnforceSync(false)),
            "fakedefer" => Ok(Control::FakeDefer(text())),
            "fakereject" => Ok(Control::FakeReject(text())),
            "freeze" => match arg {
                None => Ok(Control::Freeze { no_tell: false }),
                Some("no_tell") => Ok(Control::Freeze { no_tell: true }),
                Some(o) => Err(format!("syntax error in \"control={value}\": bad option \"{o}\"")),
            },
            "no_callout_flush" | "no_delay_flush" => no_arg(Control::NoFlush),
            "no_multiline_responses" => no_arg(Control::NoMultilineResponses),
            "no_pipelining" => no_arg(Control::NoPipelining),
            "queue_only" => no_arg(Control::Queue),
            // `first_pass_route` is a routing pass without SMTP delivery;
            // oxim has none, so only the plain form is taken.
            "queue" => match arg {
                None => Ok(Control::Queue),
                Some(o) => Err(format!(
                    "control \"queue/{o}\" is not supported by oxim (only \"queue\" without options)"
                )),
            },
            "submission" => Ok(Control::Submission(arg.unwrap_or("").to_string())),
            "suppress_local_fixups" => no_arg(Control::SuppressLocalFixups),
            n if NOT_IMPLEMENTED.contains(&n) => {
                Err(format!("control \"{n}\" is not supported by oxim"))
            }
            n => Err(format!("unknown control modifier \"{n}\"")),
        }
    }
}

/// What the controls reached so far ask of the current message. Reset for
/// each message (Exim's controls of this kind apply to one message only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageControls {
    /// `freeze`: frozen on arrival (`Some(no_tell)`).
    pub freeze: Option<bool>,
    /// `queue_only` / `queue`.
    pub queue: bool,
    /// `fakereject` (550) or `fakedefer` (450) and the text.
    pub fake: Option<(u16, Option<String>)>,
    /// `suppress_local_fixups`.
    pub suppress_local_fixups: bool,
    /// `dkim_disable_verify`.
    pub dkim_disable_verify: bool,
}

impl MessageControls {
    /// Takes in the message-level controls of `controls` (later ones win;
    /// `freeze/no_tell` holds only while every freeze said so).
    pub fn absorb(&mut self, controls: &[Control]) {
        for c in controls {
            match c {
                Control::Freeze { no_tell } => {
                    self.freeze = Some(self.freeze.unwrap_or(true) && *no_tell);
                }
                Control::Queue => self.queue = true,
                Control::FakeReject(t) => self.fake = Some((550, t.clone())),
                Control::FakeDefer(t) => self.fake = Some((450, t.clone())),
                Control::SuppressLocalFixups => self.suppress_local_fixups = true,
                Control::DkimDisableVerify => self.dkim_disable_verify = true,
                _ => {}
            }
        }
    }

    /// The reply a fake rejection sends instead of the 250, if one was
    /// asked for. Exim's default text when none is given.
    pub fn fake_reply(&self) -> Option<(u16, String)> {
        let (code, text) = self.fake.as_ref()?;
        let text = text.clone().unwrap_or_else(|| {
            "Your message has been rejected but is being kept for evaluation.\n\
             If it was a legitimate message, it may still be delivered to the \
             target recipient(s)."
                .to_string()
        });
        Some((*code, text))
    }
}

/// What the controls reached so far ask of the rest of the connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionControls {
    /// `no_pipelining`.
    pub no_pipelining: bool,
    /// `allow_auth_unadvertised`.
    pub allow_auth_unadvertised: bool,
    /// `enforce_sync` / `no_enforce_sync`: the last one said, if any.
    pub enforce_sync: Option<bool>,
    /// `no_multiline_responses`.
    pub no_multiline_responses: bool,
}

impl SessionControls {
    /// Takes in the connection-level controls of `controls`.
    pub fn absorb(&mut self, controls: &[Control]) {
        for c in controls {
            match c {
                Control::NoPipelining => self.no_pipelining = true,
                Control::AllowAuthUnadvertised => self.allow_auth_unadvertised = true,
                Control::EnforceSync(on) => self.enforce_sync = Some(*on),
                Control::NoMultilineResponses => self.no_multiline_responses = true,
                _ => {}
            }
        }
    }
}

/// Splits lines longer than 75 characters for an SMTP reply, as Exim
/// does for a fake refusal's text: within a long line the break goes at a
/// space that follows a colon, else at the last space between the 36th
/// and 76th character, else at the first space after them; existing line
/// breaks stay.
pub fn split_long_lines(text: &str) -> String {
    const WIDTH: usize = 75;
    const MIN: usize = 35;
    if text.len() <= WIDTH {
        return text.to_string();
    }
    let mut b = text.as_bytes().to_vec();
    let mut start = 0;
    loop {
        // Look at up to WIDTH characters of the current line.
        let mut at = start;
        while at - start < WIDTH && at < b.len() && b[at] != b'\n' {
            at += 1;
        }
        if at >= b.len() {
            break;
        }
        if b[at] == b'\n' {
            start = at + 1;
            continue;
        }
        // Backwards from `at` to just after start + MIN.
        let mut colon_space = None;
        let mut last_space = None;
        let mut t = at;
        while t > start + MIN {
            if b[t] == b' ' {
                if b[t - 1] == b':' {
                    colon_space = Some(t);
                    break;
                }
                last_space.get_or_insert(t);
            }
            t -= 1;
        }
        let split = colon_space
            .or(last_space)
            .or_else(|| (at + 1..b.len()).find(|&i| b[i] == b' ' || b[i] == b'\n'));
        let Some(split) = split else { break };
        b[split] = b'\n';
        start = split + 1;
    }
    String::from_utf8(b).unwrap_or_else(|_| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_options() {
        assert_eq!(Control::parse("queue_only"), Ok(Control::Queue));
        assert_eq!(
            Control::parse("freeze/no_tell"),
            Ok(Control::Freeze { no_tell: true })
        );
        assert_eq!(
            Control::parse("fakereject/go away"),
            Ok(Control::FakeReject(Some("go away".into())))
        );
        assert_eq!(
            Control::parse("submission/sender_retain"),
            Ok(Control::Submission("sender_retain".into()))
        );
        assert!(Control::parse("no_pipelining/x").is_err());
        assert!(Control::parse("debug")
            .unwrap_err()
            .contains("not supported by oxim"));
        assert!(Control::parse("frobnicate")
            .unwrap_err()
            .contains("unknown control"));
    }

    #[test]
    fn long_fake_texts_are_split_like_exims() {
        let default = MessageControls {
            fake: Some((550, None)),
            ..Default::default()
        };
        let (_, text) = default.fake_reply().unwrap();
        assert_eq!(
            split_long_lines(&text),
            "Your message has been rejected but is being kept for evaluation.\n\
             If it was a legitimate message, it may still be delivered to the target\n\
             recipient(s)."
        );
        assert_eq!(
            split_long_lines(
                "This is a rather long customised message that should get \
                 automatically split up into more than one response line."
            ),
            "This is a rather long customised message that should get automatically\n\
             split up into more than one response line."
        );
        assert_eq!(split_long_lines("short"), "short");
    }

    #[test]
    fn message_controls() {
        let mut m = MessageControls::default();
        m.absorb(&[
            Control::Freeze { no_tell: true },
            Control::Queue,
            Control::NoPipelining,
        ]);
        assert_eq!(m.freeze, Some(true));
        assert!(m.queue);
        m.absorb(&[Control::Freeze { no_tell: false }]);
        assert_eq!(m.freeze, Some(false));
        m.absorb(&[Control::FakeDefer(None)]);
        let (code, text) = m.fake_reply().unwrap();
        assert_eq!(code, 450);
        assert!(text.starts_with("Your message has been rejected"));
    }
}
