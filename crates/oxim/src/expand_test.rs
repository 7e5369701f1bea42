//! `-be`, `-bem <file>` and `-be -Mset <id>`: Exim's expansion-testing mode.
//!
//! Each string (a command-line argument, or a line read from stdin, with
//! `\` at the end of a line joining the next) has the configuration's
//! macros substituted and is expanded; the result is printed, or
//! `Failed: <message>`. Reading stdin, a `> ` prompt is printed before each
//! line and a newline at the end of input, as Exim does without readline.
//! A line that starts with an upper-case letter that is not a macro defines
//! one (`NAME = value`); `set acl_xxx = value` sets an ACL variable.
//!
//! With `-bem` a message is read from the file (as a local submission, so
//! it gets a message id, `Message-Id:` and `Date:`), and with `-Mset` one is
//! loaded from the spool, so that `$h_*`, `$message_*`, `$recipients`...
//! have values.

use std::io::{BufRead, Write};
use std::sync::Arc;

use anyhow::{bail, Context as _, Result};
use oxim_conf::ExpandContext;

use crate::ctx::Ctx;
use crate::message::Message;
use crate::vars::Vars;

/// How many characters of the body `$message_body` and `$message_body_end`
/// show (Exim's `message_body_visible` default).
const BODY_VISIBLE_DEFAULT: usize = 500;

/// The data one expansion test sees: fixed variables plus, with a
/// message, its headers and body.
struct TestContext {
    vars: Vars,
    /// Header fields of the loaded message (text includes the name).
    headers: Vec<String>,
}

impl ExpandContext for TestContext {
    fn var(&self, name: &str) -> Option<String> {
        if let Some(v) = oxim_conf::header_variable(self.headers.iter().map(String::as_str), name) {
            return Some(v);
        }
        self.vars.var(name)
    }
    fn read_file(&self, path: &str) -> Option<String> {
        self.vars.read_file(path)
    }
    fn auth_results(&self, sysname: &str) -> Option<String> {
        self.vars.auth_results(sysname)
    }
    fn file_exists(&self, path: &str) -> bool {
        self.vars.file_exists(path)
    }
    fn entry_kind(&self, path: &str) -> Option<oxim_conf::EntryKind> {
        self.vars.entry_kind(path)
    }
    fn state_flag(&self, name: &str) -> Option<bool> {
        // No delivery and no queue run in an expansion test.
        match name {
            "first_delivery" | "queue_running" => Some(false),
            _ => None,
        }
    }
}

/// The variables every line sees: configuration-derived ones and the
/// `-oM*`/`-f` origin.
fn base_vars(ctx: &Ctx) -> Vars {
    let mut v = ctx.base_vars();
    if let Some(p) = &ctx.settings.exim_path {
        v.set("exim_path", p);
    }
    let dir = std::path::Path::new(&ctx.config_path)
        .parent()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    v.set("config_dir", dir);
    v.set(
        "bounce_return_size_limit",
        ctx.config.main.int("bounce_return_size_limit").to_string(),
    );
    v.set("sender_address", crate::ctx::envelope_sender(ctx));
    v.set("originator_uid", ctx.caller.uid.to_string());
    v.set("originator_gid", ctx.caller.gid.to_string());
    let o = &ctx.inv.origin;
    if let Some(a) = &o.host_address {
        let (addr, port) = crate::cli::address_port(a);
        v.set("sender_host_address", addr);
        v.set("sender_host_port", port.unwrap_or_else(|| "0".into()));
    }
    if let Some(a) = &o.interface {
        let (addr, port) = crate::cli::address_port(a);
        v.set("received_ip_address", addr.clone());
        v.set("interface_address", addr);
        let port = port.unwrap_or_else(|| "0".into());
        v.set("received_port", port.clone());
        v.set("interface_port", port);
    }
    let pairs = [
        ("sender_host_authenticated", &o.authenticated),
        ("authenticated_id", &o.authenticated_id),
        ("authenticated_sender", &o.authenticated_sender),
        ("sender_host_name", &o.host_name),
        ("sender_ident", &o.ident),
        ("received_protocol", &ctx.inv.received_protocol),
    ];
    for (name, value) in pairs {
        if let Some(value) = value {
            v.set(name, value.clone());
        }
    }
    v
}

/// `$message_body` / `$message_body_end`: up to `n` bytes from the start or
/// the end of the body, newlines shown as spaces.
fn body_window(body: &[u8], n: usize, end: bool) -> String {
    let part = if end {
        &body[body.len().saturating_sub(n)..]
    } else {
        &body[..body.len().min(n)]
    };
    String::from_utf8_lossy(part)
        .chars()
        .map(|c| if c == '\n' || c == '\0' { ' ' } else { c })
        .collect()
}

/// Variables of a message (from `-bem` or `-Mset`).
struct Loaded {
    id: String,
    headers: Vec<String>,
    body: Vec<u8>,
    recipients: Vec<String>,
    body_linecount: u64,
    linecount: Option<u64>,
    max_linelength: u64,
    size: usize,
}

impl Loaded {
    fn apply(&self, v: &mut Vars, visible: usize) {
        v.set("message_exim_id", self.id.clone())
            .set("message_id", self.id.clone())
            .set("message_body_size", self.body.len().to_string())
            .set("message_size", self.size.to_string())
            .set("body_linecount", self.body_linecount.to_string())
            .set("max_received_linelength", self.max_linelength.to_string())
            .set("recipients", self.recipients.join(", "))
            .set("recipients_count", self.recipients.len().to_string())
            .set("message_body", body_window(&self.body, visible, false))
            .set("message_body_end", body_window(&self.body, visible, true));
        if let Some(n) = self.linecount {
            v.set("message_linecount", n.to_string());
        }
        let headers = || self.headers.iter().map(String::as_str);
        v.set(
            "message_headers",
            oxim_conf::message_headers(headers(), false),
        )
        .set(
            "message_headers_raw",
            oxim_conf::message_headers(headers(), true),
        );
    }
}

/// `-bem file`: read the message as a local submission would.
fn message_from_file(ctx: &Ctx, path: &std::path::Path) -> Result<Loaded> {
    let raw =
        std::fs::read(path).with_context(|| format!("failed to open \"{}\"", path.display()))?;
    let raw = crate::submit::read_message(&mut &raw[..], ctx.inv.dot_ends_message)?;
    let max_linelength = raw
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l).len())
        .max()
        .unwrap_or(0) as u64;
    let mut msg = Message::parse(&raw);
    let header_lines: usize = msg
        .headers
        .iter()
        .map(|h| h.text.matches('\n').count())
        .sum();
    let recipients = if ctx.inv.extract_recipients {
        msg.take_recipients_from_headers()
            .into_iter()
            .map(|r| ctx.qualify_recipient(&r))
            .collect()
    } else {
        Vec::new()
    };
    let id = ctx.ids.next().to_string();
    let date = crate::time::LocalTime::now().rfc2822();
    if msg.header("message-id").is_none() && msg.header("resent-message-id").is_none() {
        msg.headers.push(crate::message::HeaderField::new(format!(
            "Message-Id: <E{id}@{}>",
            ctx.primary_hostname
        )));
    }
    if msg.header("date").is_none() {
        msg.headers
            .push(crate::message::HeaderField::new(format!("Date: {date}")));
    }
    let body_linecount = msg.body_lines() as u64;
    // Header lines, the blank line after them, and the body.
    let linecount = header_lines as u64 + 1 + body_linecount;
    Ok(Loaded {
        id,
        size: msg.size(),
        headers: msg.headers.into_iter().map(|h| h.text).collect(),
        body: msg.body,
        recipients,
        body_linecount,
        linecount: Some(linecount),
        max_linelength,
    })
}

/// `-Mset id`: a message from the spool.
fn message_from_spool(ctx: &Ctx, id_text: &str) -> Result<Loaded> {
    use std::io::Read;
    let id: oxim_spool::MessageId = id_text
        .parse()
        .map_err(|_| anyhow::anyhow!("malformed message id {id_text} after -Mset option"))?;
    let msg = ctx
        .spool
        .read(&id)
        .with_context(|| format!("Failed to load message {id_text}"))?;
    let (mut f, _) = ctx
        .spool
        .open_body(&id)
        .with_context(|| format!("Failed to load message datafile {id_text}"))?;
    let mut body = Vec::new();
    f.read_to_end(&mut body)?;
    let env = &msg.envelope;
    let headers: Vec<String> = msg
        .headers
        .iter()
        .filter(|h| h.kind != '*')
        .map(|h| h.text.clone())
        .collect();
    let header_size: usize = headers.iter().map(String::len).sum();
    Ok(Loaded {
        id: id_text.to_string(),
        size: header_size + 1 + body.len(),
        headers,
        recipients: env.recipients.iter().map(|r| r.address.clone()).collect(),
        body_linecount: env.body_linecount.unwrap_or(0),
        linecount: None,
        max_linelength: env.max_received_linelength.unwrap_or(0),
        body,
    })
}

/// The state of one `-be` run: variables and macros grow as lines define
/// them.
struct Session<'a> {
    ctx: &'a Ctx,
    tc: TestContext,
    macros: Vec<(String, String)>,
}

impl Session<'_> {
    /// Handle one logical line; returns the text to print (without the
    /// final newline).
    fn line(&mut self, line: &[u8]) -> Vec<u8> {
        // Macros are only looked for in text (a line that is not UTF-8 is
        // expanded as it is).
        let Ok(text) = std::str::from_utf8(line) else {
            return match oxim_conf::expand_bytes(line, &self.tc, Some(&self.ctx.config)) {
                Ok(v) => v,
                Err(e) => format!("Failed: {e}").into_bytes(),
            };
        };
        let mut text = text.to_string();
        let macro_first = self
            .macros
            .iter()
            .any(|(n, _)| text.starts_with(n.as_str()));
        if let Err(e) = oxim_conf::preproc::substitute_macros(&self.macros, &mut text) {
            return format!("Failed: {e}").into_bytes();
        }
        if text.starts_with(|c: char| c.is_ascii_uppercase()) && !macro_first {
            return match macro_definition(&text) {
                Some((name, value)) => {
                    let msg = format!("Defined macro '{name}'");
                    match self.macros.iter_mut().find(|(n, _)| *n == name) {
                        Some(m) => m.1 = value,
                        None => self.macros.push((name, value)),
                    }
                    msg.into_bytes()
                }
                None => b"Failed: malformed macro definition".to_vec(),
            };
        }
        if let Some(rest) = text.strip_prefix("set ") {
            return self.set(rest).into_bytes();
        }
        // Unchanged by macros: expand the original bytes (they may not be
        // UTF-8).
        let input = if text.as_bytes() == line {
            line.to_vec()
        } else {
            text.into_bytes()
        };
        match oxim_conf::expand_bytes(&input, &self.tc, Some(&self.ctx.config)) {
            Ok(v) => v,
            Err(e) => format!("Failed: {e}").into_bytes(),
        }
    }

    /// `set acl_<name> = <value>`.
    fn set(&mut self, rest: &str) -> String {
        let Some((name, value)) = rest.split_once('=') else {
            return format!("Failed: missing \"=\" after \"{}\"", rest.trim());
        };
        let name = name.trim();
        let valid = (name.starts_with("acl_c") || name.starts_with("acl_m"))
            && name.len() > 5
            && name[5..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid {
            return format!("Failed: unrecognized variable name \"{name}\"");
        }
        match oxim_conf::expand(value.trim(), &self.tc) {
            Ok(v) => {
                self.tc.vars.set(name, v);
                format!("variable {name} set")
            }
            Err(e) => format!("oops: {e}"),
        }
    }
}

/// `NAME = value` or `NAME == value`.
fn macro_definition(text: &str) -> Option<(String, String)> {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    let name = &text[..end];
    let rest = text[end..].trim_start();
    let rest = rest.strip_prefix('=')?;
    let rest = rest.strip_prefix('=').unwrap_or(rest);
    Some((name.to_string(), rest.trim_start().to_string()))
}

/// Read one logical line from `input`: trailing white space dropped, and a
/// final `\` joining the next line (whose leading white space is dropped).
/// None at end of input.
fn logical_line(input: &mut dyn BufRead) -> std::io::Result<Option<Vec<u8>>> {
    let mut out = Vec::new();
    let mut had_input = false;
    for i in 0.. {
        let mut buf = Vec::new();
        if input.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        had_input = true;
        while buf.last().is_some_and(u8::is_ascii_whitespace) {
            buf.pop();
        }
        let mut start = 0;
        if i > 0 {
            while start < buf.len() && buf[start].is_ascii_whitespace() {
                start += 1;
            }
        }
        out.extend_from_slice(&buf[start..]);
        if buf.len() == start || out.last() != Some(&b'\\') {
            break;
        }
        out.pop();
    }
    Ok(had_input.then_some(out))
}

/// Run the expansion test; returns the exit status.
pub fn run(ctx: Arc<Ctx>) -> Result<i32> {
    let mut vars = base_vars(&ctx);
    let visible =
        usize::try_from(ctx.settings.message_body_visible).unwrap_or(BODY_VISIBLE_DEFAULT);
    let loaded = match (&ctx.inv.load_message, &ctx.inv.expand_message) {
        (Some(id), _) => {
            // Admin users only (Exim's suite makes its caller one).
            if !ctx.caller.admin {
                bail!("permission denied");
            }
            Some(message_from_spool(&ctx, id)?)
        }
        (None, Some(path)) => Some(message_from_file(&ctx, path)?),
        (None, None) => None,
    };
    let headers = match &loaded {
        Some(m) => {
            m.apply(&mut vars, visible);
            m.headers.clone()
        }
        None => Vec::new(),
    };
    let mut session = Session {
        ctx: &ctx,
        tc: TestContext { vars, headers },
        macros: ctx.config.macros.clone(),
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if !ctx.inv.recipients.is_empty() {
        for arg in &ctx.inv.recipients {
            let r = session.line(arg.as_bytes());
            out.write_all(&r)?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
        return Ok(0);
    }
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    loop {
        out.write_all(b"> ")?;
        out.flush()?;
        let Some(line) = logical_line(&mut input)? else {
            out.write_all(b"\n")?;
            break;
        };
        let r = session.line(&line);
        out.write_all(&r)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_lines_join() {
        let mut input = &b"x\\\n    y  \nnext\n\nlast"[..];
        assert_eq!(logical_line(&mut input).unwrap(), Some(b"xy".to_vec()));
        assert_eq!(logical_line(&mut input).unwrap(), Some(b"next".to_vec()));
        assert_eq!(logical_line(&mut input).unwrap(), Some(Vec::new()));
        assert_eq!(logical_line(&mut input).unwrap(), Some(b"last".to_vec()));
        assert_eq!(logical_line(&mut input).unwrap(), None);
    }

    #[test]
    fn origin_addresses_with_ports() {
        assert_eq!(
            crate::cli::address_port("10.0.0.1.1234"),
            ("10.0.0.1".to_string(), Some("1234".to_string()))
        );
        assert_eq!(
            crate::cli::address_port("10.0.0.1"),
            ("10.0.0.1".to_string(), None)
        );
        assert_eq!(
            crate::cli::address_port("::1.25"),
            ("::1".to_string(), Some("25".to_string()))
        );
    }

    #[test]
    fn macro_definitions() {
        assert_eq!(
            macro_definition("ABC=$x"),
            Some(("ABC".to_string(), "$x".to_string()))
        );
        assert_eq!(
            macro_definition("ABC == y"),
            Some(("ABC".to_string(), "y".to_string()))
        );
        assert_eq!(macro_definition("Hello world"), None);
    }

    #[test]
    fn header_variables() {
        let tc = TestContext {
            vars: Vars::new(),
            headers: vec![
                "Subject:  hello\n".to_string(),
                "To: a@b,\n  c@d\n".to_string(),
                "X-A: 1\n".to_string(),
                "x-a: 2\n".to_string(),
            ],
        };
        assert_eq!(tc.var("h_subject:").as_deref(), Some("hello"));
        assert_eq!(tc.var("rh_subject:").as_deref(), Some("  hello\n"));
        assert_eq!(tc.var("header_to:").as_deref(), Some("a@b,\n  c@d"));
        assert_eq!(tc.var("h_x-a:").as_deref(), Some("1\n2"));
        assert_eq!(tc.var("lh_x-a:").as_deref(), Some(" 1: 2"));
        assert_eq!(tc.var("h_nothere:"), None);
    }
}
