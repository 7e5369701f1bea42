//! Callout verification (`verify = sender/callout`, `verify =
//! recipient/callout=...`): after an address routed to an smtp transport,
//! ask its hosts whether they would take it (`MAIL FROM`, `RCPT TO`, then
//! `QUIT`), with Exim's options, its texts and its cache (the `callout`
//! hints file: per-domain and per-address records).

mod cache;

use std::time::{Duration, Instant};

use cache::{now, Cache, DomainRecord, ACCEPT, REJECT, REJECT_MFNULL, UNKNOWN};

use crate::condition::ConditionError;
use crate::ctx::Ctx;
use crate::deliver::smtp::{self, CalloutConn};
use crate::vars::Vars;

/// The options of `callout[=...]` and of the verify condition around it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CalloutOpts {
    /// Per-command timeout (Exim's default 30s).
    pub timeout: Duration,
    /// `maxwait=`: for the whole callout (default four times `timeout`).
    pub overall: Option<Duration>,
    /// `connect=`: for each connection (default `timeout`).
    pub connect: Option<Duration>,
    /// `defer_ok` (or the old `callout_defer_ok`).
    pub defer_ok: bool,
    pub no_cache: bool,
    pub random: bool,
    /// `use_sender`: the message's sender in a recipient callout.
    pub use_sender: bool,
    /// `use_postmaster`: `postmaster@<qualify_domain>` as the sender.
    pub use_postmaster: bool,
    /// `postmaster`, `fullpostmaster`, `postmaster_mailfrom=`: check
    /// `postmaster@domain` too, with this sender.
    pub pm_mailfrom: Option<String>,
    pub fullpostmaster: bool,
    /// `mailfrom=` (header_sender only).
    pub mailfrom: Option<String>,
}

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Parse the text after `callout=` into `o`. `Err`: Exim's complaint, or
/// an option oxim does not implement.
pub fn parse_options(
    arg: &str,
    list: &str,
    header_sender: bool,
    o: &mut CalloutOpts,
) -> Result<(), ConditionError> {
    let bad = ConditionError::BadVerify;
    for opt in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let value = |name: &str| -> Result<String, ConditionError> {
            let rest = opt[name.len()..].trim_start();
            match rest.strip_prefix('=') {
                Some(v) => Ok(v.trim().to_string()),
                None => Err(bad(format!(
                    "'=' expected after \"{name}\" in ACL verify condition \"{arg}\""
                ))),
            }
        };
        let period = |text: &str| -> Result<Duration, ConditionError> {
            oxim_conf::options::parse_time(text)
                .map(Duration::from_secs)
                .ok_or_else(|| bad(format!("bad time value in ACL condition \"verify {arg}\"")))
        };
        let lower = opt.to_ascii_lowercase();
        let starts = |p: &str| lower.starts_with(p);
        if starts("defer_ok") {
            o.defer_ok = true;
        } else if starts("no_cache") {
            o.no_cache = true;
        } else if starts("random") {
            o.random = true;
        } else if starts("use_sender") {
            o.use_sender = true;
        } else if starts("use_postmaster") {
            o.use_postmaster = true;
        } else if starts("postmaster_mailfrom") {
            o.pm_mailfrom = Some(value("postmaster_mailfrom")?);
        } else if starts("postmaster") {
            o.pm_mailfrom = Some(String::new());
        } else if starts("fullpostmaster") {
            o.pm_mailfrom = Some(String::new());
            o.fullpostmaster = true;
        } else if starts("mailfrom") {
            if !header_sender {
                return Err(bad(format!(
                    "\"mailfrom\" is allowed as a callout option only for verify=header_sender (detected in ACL condition \"{arg}\")"
                )));
            }
            o.mailfrom = Some(value("mailfrom")?);
        } else if starts("maxwait") {
            o.overall = Some(period(&value("maxwait")?)?);
        } else if starts("connect") {
            o.connect = Some(period(&value("connect")?)?);
        } else if starts("use_tptsender") || starts("hold") {
            return Err(ConditionError::Unsupported(format!(
                "verify = {arg} (callout option \"{opt}\")"
            )));
        } else {
            o.timeout = period(opt)?;
        }
    }
    if [o.use_sender, o.use_postmaster]
        .iter()
        .filter(|b| **b)
        .count()
        > 1
    {
        return Err(bad(
            "only one of use_sender, use_tptsender and use_postmaster can be set for a recipient callout"
                .into(),
        ));
    }
    Ok(())
}

/// How a callout ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rc {
    Ok,
    Fail,
    Defer,
}

/// The result of a callout, with Exim's texts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalloutResult {
    pub rc: Rc,
    /// For the log.
    pub message: Option<String>,
    /// For the client.
    pub user_message: Option<String>,
    /// `MAIL FROM:<>` (or the connection, or HELO) was refused.
    pub nsfail: bool,
    /// `postmaster@domain` was refused.
    pub pmfail: bool,
    /// `$sender_verify_failure`/`$recipient_verify_failure`: `mail`,
    /// `recipient`, `postmaster`, `random`.
    pub failure: Option<&'static str>,
}

impl CalloutResult {
    fn new() -> Self {
        CalloutResult {
            rc: Rc::Ok,
            message: None,
            user_message: None,
            nsfail: false,
            pmfail: false,
            failure: None,
        }
    }
}

/// What a callout asks, for one address.
pub struct Request<'a> {
    pub address: &'a str,
    pub is_recipient: bool,
    /// The sender of `MAIL FROM` (empty for `<>`).
    pub from: String,
    pub opts: &'a CalloutOpts,
}

/// A reply as the log shows it: lines joined by `\n`, other unprintable
/// characters escaped in octal.
fn printing(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\{:03o}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

/// A reply as the client is shown it: cut at the first character that is
/// not printable ASCII (or a tab or newline), marked `(truncated)`.
fn truncated(s: &str) -> String {
    match s.find(|c: char| c != '\t' && c != '\n' && !(' '..='~').contains(&c)) {
        Some(i) => format!("{}(truncated)", &s[..i]),
        None => s.to_string(),
    }
}

/// What the last command of a conversation got.
enum Last {
    /// A reply (its command and lines).
    Reply {
        cmd: String,
        code: u16,
        text: String,
    },
    /// The connection failed or timed out.
    Io,
}

/// One conversation's state, as Exim's `do_callout` keeps it.
struct Conv {
    auth_sender: Option<String>,
    done: bool,
    res: CalloutResult,
    dom: DomainRecord,
    addr_result: u8,
    last: Option<Last>,
}

impl Conv {
    /// Send `cmd`; a reply is returned whatever its code, a failed
    /// connection ends the conversation (the text goes to the log).
    async fn ask(&mut self, conn: &mut CalloutConn, cmd: &str) -> Option<(u16, String)> {
        match conn.command(cmd).await {
            Ok(r) => {
                let text = smtp::reply_lines(&r);
                self.last = Some(Last::Reply {
                    cmd: cmd.to_string(),
                    code: r.code,
                    text: text.clone(),
                });
                Some((r.code, text))
            }
            Err(e) => {
                self.last = Some(Last::Io);
                self.res.message = Some(e.text);
                None
            }
        }
    }

    /// MAIL and RCPT; the RCPT's code, or `None` (MAIL refused, or the
    /// connection failed; `mail_refused` says which).
    async fn mail_rcpt(
        &mut self,
        conn: &mut CalloutConn,
        from: &str,
        size: Option<usize>,
        to: &str,
    ) -> Result<u16, bool> {
        let mut mail = format!("MAIL FROM:<{from}>");
        if let Some(n) = size.filter(|_| conn.caps().size.is_some()) {
            mail.push_str(&format!(" SIZE={n}"));
        }
        if let Some(a) = self.auth_sender.as_deref().filter(|_| conn.authenticated()) {
            mail.push_str(&format!(" AUTH={}", oxim_smtp::sasl::xtext_encode(a)));
        }
        let Some((code, _)) = self.ask(conn, &mail).await else {
            return Err(false);
        };
        if code / 100 != 2 {
            return Err(true);
        }
        let rcpt = format!("RCPT TO:<{to}>");
        let Some((code, text)) = self.ask(conn, &rcpt).await else {
            return Err(false);
        };
        if code / 100 != 2 {
            self.res.message = Some(format!(
                "SMTP error from remote mail server after {rcpt}: {}",
                printing(&text)
            ));
        }
        Ok(code)
    }
}

/// Make the callout for `req` to `targets` (already known to be an smtp
/// transport's hosts), using and updating the cache.
pub async fn callout(
    ctx: &Ctx,
    req: &Request<'_>,
    targets: Vec<crate::deliver::CalloutTarget>,
    vars: &Vars,
) -> CalloutResult {
    let opts = req.opts;
    let (_, domain) = crate::vars::split_address(req.address);
    let address_key = if req.from.is_empty() {
        req.address.to_string()
    } else {
        format!("{}/<{}>", req.address, req.from)
    };
    let mut res = CalloutResult::new();
    let mut new_dom = DomainRecord::default();
    let mut old_domain_result = ACCEPT;
    let mut random = opts.random;
    let mut pm_mailfrom = opts.pm_mailfrom.clone();
    let cache = Cache::new(ctx);
    // The cache first: a domain that refused before, or an answer kept
    // for this address, decides without a connection.
    if !opts.no_cache {
        'cache: {
            if let Some(d) = cache.domain(ctx, domain) {
                old_domain_result = d.result;
                if d.result == REJECT || (req.from.is_empty() && d.result == REJECT_MFNULL) {
                    res.rc = Rc::Fail;
                    res.nsfail = true;
                    res.user_message = Some("(result of an earlier callout reused).".into());
                    res.failure = Some("mail");
                    return res;
                }
                if random {
                    match d.random_result {
                        ACCEPT => {
                            res.failure = Some("random");
                            return res;
                        }
                        REJECT => {
                            random = false;
                            new_dom.random_result = REJECT;
                            new_dom.random_stamp = d.random_stamp;
                        }
                        _ => break 'cache,
                    }
                }
                if pm_mailfrom.is_some() {
                    match d.pm_result {
                        REJECT => {
                            res.rc = Rc::Fail;
                            res.pmfail = true;
                            res.failure = Some("postmaster");
                            res.user_message =
                                Some("(result of earlier verification reused).".into());
                            return res;
                        }
                        UNKNOWN => break 'cache,
                        _ => {
                            pm_mailfrom = None;
                            new_dom.pm_result = ACCEPT;
                            new_dom.pm_stamp = d.pm_stamp;
                        }
                    }
                }
            }
            match cache.address(ctx, &address_key) {
                None => {}
                Some(ACCEPT) => return res,
                Some(_) => {
                    res.rc = Rc::Fail;
                    res.user_message =
                        Some("Previous (cached) callout verification failure".into());
                    res.failure = Some("recipient");
                    return res;
                }
            }
        }
    }
    let random_local_part = if random {
        let text = ctx
            .config
            .main
            .opt_str("callout_random_local_part")
            .filter(|s| !s.is_empty())
            .unwrap_or("$primary_hostname-$tod_epoch-testing");
        match oxim_conf::expand_with_config(text, vars, &ctx.config) {
            Ok(v) => Some(v),
            Err(e) => {
                ctx.log_text(
                    None,
                    &format!("failed to expand callout_random_local_part: {e}"),
                );
                None
            }
        }
    } else {
        None
    };
    let overall = opts.overall.unwrap_or(opts.timeout * 4);
    let started = Instant::now();
    let several = targets.len() > 1;
    let mut conv = Conv {
        auth_sender: None,
        done: false,
        res,
        dom: new_dom,
        addr_result: UNKNOWN,
        last: None,
    };
    for t in targets {
        if conv.done {
            break;
        }
        if started.elapsed() >= overall {
            break;
        }
        conv.res.message = None;
        conv.last = None;
        conv.auth_sender = t.auth_sender.clone();
        let mut opened = smtp::callout_open(&t.host, &t.params).await;
        if let Err(e) = &opened {
            let allowed = t
                .params
                .tls
                .as_ref()
                .is_some_and(|x| !x.require && !x.client.require_verify);
            if e.tls_failed && t.tryclear && allowed {
                ctx.log_text(
                    None,
                    &format!(
                        "{}: callout unencrypted to {} [{}] (not in hosts_require_tls)",
                        e.text, t.host.name, t.host.ip
                    ),
                );
                let mut p = t.params.clone();
                p.tls = None;
                opened = smtp::callout_open(&t.host, &p).await;
            }
        }
        let mut conn = match opened {
            Ok(c) => c,
            Err(e) => {
                conv.res.message = Some(format!("{} [{}] : {}", t.host.name, t.host.ip, e.text));
                if e.perm {
                    conv.res.nsfail = true;
                    conv.res.rc = Rc::Fail;
                    conv.dom.result = REJECT;
                    conv.done = true;
                }
                continue;
            }
        };
        conv.dom.result = if old_domain_result == REJECT_MFNULL {
            REJECT_MFNULL
        } else {
            ACCEPT
        };
        conv.done = true;
        if let Some(lp) = &random_local_part {
            conv.done = false;
            conv.dom.random_stamp = now();
            let to = format!("{lp}@{domain}");
            match conv.mail_rcpt(&mut conn, &req.from, None, &to).await {
                Ok(code) if code / 100 == 2 => {
                    conv.dom.random_result = ACCEPT;
                    conv.res.rc = Rc::Ok;
                    conv.res.failure = Some("random");
                    conv.res.message = None;
                    conv.done = true;
                    conn.quit().await;
                    continue;
                }
                Ok(code) if code / 100 == 5 => {
                    conv.dom.random_result = REJECT;
                    conv.res.message = None;
                    conv.done =
                        matches!(conv.ask(&mut conn, "RSET").await, Some((c, _)) if c / 100 == 2);
                }
                _ => {}
            }
        }
        if conv.done {
            conv.done = false;
            let size = None;
            match conv
                .mail_rcpt(&mut conn, &req.from, size, req.address)
                .await
            {
                Ok(code) if code / 100 == 2 => {
                    conv.done = true;
                    conv.addr_result = ACCEPT;
                }
                Ok(code) if code / 100 == 5 => {
                    conv.done = true;
                    conv.res.rc = Rc::Fail;
                    conv.res.failure = Some("recipient");
                    conv.addr_result = REJECT;
                }
                Ok(_) => {}
                Err(true) => {
                    conv.res.failure = Some("mail");
                    if let Some(Last::Reply { code, .. }) = &conv.last {
                        if code / 100 == 5 {
                            conv.res.nsfail = true;
                            if req.from.is_empty() {
                                conv.dom.result = REJECT_MFNULL;
                            }
                        }
                    }
                }
                Err(false) => {}
            }
        }
        if conv.done {
            if let Some(pm_from) = pm_mailfrom.clone() {
                conv.done =
                    matches!(conv.ask(&mut conn, "RSET").await, Some((c, _)) if c / 100 == 2);
                if conv.done {
                    let to = format!("postmaster@{domain}");
                    conv.done = match conv.mail_rcpt(&mut conn, &pm_from, None, &to).await {
                        Ok(c) if c / 100 == 2 => true,
                        Ok(_) if opts.fullpostmaster => {
                            matches!(conv.ask(&mut conn, "RCPT TO:<postmaster>").await, Some((c, _)) if c / 100 == 2)
                        }
                        _ => false,
                    };
                    conv.dom.pm_stamp = now();
                    if conv.done {
                        conv.dom.pm_result = ACCEPT;
                        conv.res.message = None;
                    } else if let Some(Last::Reply { code, .. }) = &conv.last {
                        if code / 100 == 5 {
                            conv.res.failure = Some("postmaster");
                            conv.res.pmfail = true;
                            conv.dom.pm_result = REJECT;
                        }
                    }
                }
            }
        }
        // The texts of a refusal: the log's on one line, the client's
        // with the reply as it came (cut at a bad character).
        if let Some(Last::Reply { cmd, code, text }) = &conv.last {
            if code / 100 != 2 {
                if conv.res.message.is_none() {
                    conv.res.message =
                        Some(format!("response to \"{cmd}\" was: {}", printing(text)));
                }
                let shown = truncated(text);
                conv.res.user_message = Some(if req.is_recipient {
                    format!("Callout verification failed:\n{shown}")
                } else {
                    format!(
                        "Called:   {}\nSent:     {cmd}\nResponse: {shown}",
                        t.host.ip
                    )
                });
                if code / 100 == 5 {
                    conv.res.rc = Rc::Fail;
                    conv.done = true;
                }
            }
        }
        conn.quit().await;
        if !conv.done || conv.res.rc != Rc::Ok {
            if let Some(m) = conv.res.message.take() {
                conv.res.message = Some(format!("{} [{}] : {m}", t.host.name, t.host.ip));
            }
        }
    }
    let Conv {
        done,
        mut res,
        dom,
        addr_result,
        ..
    } = conv;
    if !opts.no_cache {
        if dom.result != UNKNOWN {
            cache.put_domain(domain, &dom);
        }
        if done && addr_result != UNKNOWN {
            cache.put_address(&address_key, addr_result);
        }
    }
    if !done {
        let message = res.message.take().filter(|_| !several);
        return not_completed(ctx, req, message, res);
    }
    res
}

/// A callout that could not be completed (no host answered, or none could
/// be tried): a temporary failure with Exim's texts; `message` is the one
/// host's reason, if there was one host.
pub fn not_completed(
    ctx: &Ctx,
    req: &Request<'_>,
    message: Option<String>,
    mut res: CalloutResult,
) -> CalloutResult {
    let dull = format!(
        "Could not complete {} verify callout",
        if req.is_recipient {
            "recipient"
        } else {
            "sender"
        }
    );
    res.rc = Rc::Defer;
    res.message = Some(match message {
        Some(m) => format!("{dull}: {m}"),
        None => dull.clone(),
    });
    res.user_message = Some(if ctx.config.main.bool("smtp_return_error_details") {
        format!(
            "{dull} for <{}>.\nThe mail server(s) for the domain may be temporarily unreachable, or\nthey may be permanently unreachable from this server. In the latter case,\n{}",
            req.address,
            if req.is_recipient {
                "the address will never be accepted."
            } else {
                "you need to change the address or create an MX record for its domain\nif it is supposed to be generally accessible from the Internet.\nTalk to your mail administrator for details."
            }
        )
    } else {
        dull
    });
    res
}

/// [`not_completed`] before any host was tried.
pub fn nothing_to_call(ctx: &Ctx, req: &Request<'_>) -> CalloutResult {
    not_completed(ctx, req, None, CalloutResult::new())
}
