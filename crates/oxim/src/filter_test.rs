//! `-bf file` / `-bF file`: Exim's filter testing. A message is read from
//! stdin; the system filter (`-bF`) and then the user filter (`-bf`) run
//! on it in test mode, saying what they would do. The address is the
//! caller's login at `qualify_recipient` unless `-bfl`/`-bfd` say
//! otherwise; `-bfp`/`-bfs` give a prefix and suffix.

use std::sync::Arc;

use anyhow::{Context as _, Result};
use oxim_conf::filter::{FilterType, ParseOptions};

use crate::ctx::Ctx;
use crate::filter::{self, Env, LogMode, Verdict};
use crate::message::Message;
use crate::vars::Vars;

/// How many characters `$message_body` and `$message_body_end` show
/// unless `message_body_visible` says otherwise.
const BODY_VISIBLE_DEFAULT: usize = 500;

struct Test<'a> {
    ctx: &'a Ctx,
    vars: Vars,
    headers: Vec<String>,
    sender: String,
    return_path: String,
    sn: [i64; 10],
}

/// Run the tests; returns the exit status.
pub fn run(ctx: Arc<Ctx>) -> Result<i32> {
    let args = ctx.inv.filter_test.clone();
    // Open both files first, as Exim does, so a missing one is reported
    // before any output.
    let mut texts = Vec::new();
    for (path, system) in [(&args.system, true), (&args.user, false)] {
        if let Some(p) = path {
            let text =
                std::fs::read(p).with_context(|| format!("failed to open {}", p.display()))?;
            texts.push((
                p.display().to_string(),
                String::from_utf8_lossy(&text).into_owned(),
                system,
            ));
        }
    }
    let raw = crate::submit::read_message(&mut std::io::stdin().lock(), ctx.inv.dot_ends_message)
        .context("error reading message from standard input")?;
    // A leading "From " line (mbox style) is dropped; its address is the
    // sender unless -f gave one.
    let mut from_line_sender = None;
    let raw = match raw.strip_prefix(b"From ".as_slice()) {
        Some(rest) => {
            let end = rest
                .iter()
                .position(|&c| c == b'\n')
                .map_or(rest.len(), |i| i + 1);
            let line = String::from_utf8_lossy(&rest[..end]).into_owned();
            from_line_sender = line.split_whitespace().next().map(str::to_string);
            rest[end..].to_vec()
        }
        None => raw,
    };
    let msg = Message::parse(&raw);
    let mut out = String::new();
    if msg.headers.is_empty() {
        out.push_str("Warning: no message headers read\n");
    }
    // -f is taken from anyone when testing filters.
    let sender = match &ctx.inv.sender {
        Some(s) => {
            let s = s.trim_start_matches('<').trim_end_matches('>');
            if s.is_empty() {
                String::new()
            } else {
                ctx.qualify_recipient(s)
            }
        }
        None => match from_line_sender {
            Some(f) => {
                out.push_str("Sender taken from \"From \" line\n");
                ctx.qualify_recipient(&f)
            }
            None => crate::ctx::envelope_sender(&ctx),
        },
    };
    let return_path_header = msg.header("return-path").map(|h| {
        let v = h.text.split_once(':').map_or("", |(_, v)| v).trim();
        v.strip_prefix('<')
            .and_then(|v| v.strip_suffix('>'))
            .unwrap_or(v)
            .to_string()
    });
    let return_path = match return_path_header {
        Some(r) => {
            out.push_str("Return-path taken from \"Return-path:\" header line\n");
            out.push_str(&format!(
                "Return-path = {}\n",
                if r.is_empty() { "<>" } else { &r }
            ));
            r
        }
        None => {
            out.push_str("Return-path copied from sender\n");
            sender.clone()
        }
    };
    out.push_str(&format!(
        "Sender      = {}\n",
        if sender.is_empty() { "<>" } else { &sender }
    ));
    let domain = args
        .domain
        .clone()
        .unwrap_or_else(|| ctx.qualify_recipient.clone());
    let local_part = args
        .local_part
        .clone()
        .unwrap_or_else(|| ctx.caller.login.clone());
    let prefix = args.prefix.clone().unwrap_or_default();
    let suffix = args.suffix.clone().unwrap_or_default();
    let recipient = format!("{prefix}{local_part}{suffix}@{domain}");
    out.push_str(&format!("Recipient   = {recipient}\n"));
    if let Some(p) = &args.prefix {
        out.push_str(&format!("Prefix    = {p}\n"));
    }
    if let Some(s) = &args.suffix {
        out.push_str(&format!("Suffix    = {s}\n"));
    }
    print!("{out}");

    let home = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(ctx.caller.uid))
        .ok()
        .flatten()
        .map(|u| u.dir.display().to_string())
        .unwrap_or_default();
    let visible =
        usize::try_from(ctx.settings.message_body_visible).unwrap_or(BODY_VISIBLE_DEFAULT);
    let headers: Vec<String> = msg.headers.iter().map(|h| h.text.clone()).collect();
    let header_size: usize = headers.iter().map(String::len).sum();
    let mut vars = ctx.base_vars();
    vars.set("sender_address", sender.clone())
        .set("return_path", return_path.clone())
        .set("local_part", local_part.clone())
        .set("domain", domain.clone())
        .set("original_local_part", local_part)
        .set("original_domain", domain)
        .set("local_part_prefix", prefix)
        .set("local_part_suffix", suffix)
        .set("home", home)
        .set("recipients", recipient.clone())
        .set("recipients_count", "1")
        .set("message_body_size", msg.body.len().to_string())
        .set(
            "message_size",
            (header_size + 1 + msg.body.len()).to_string(),
        )
        .set("body_linecount", msg.body_lines().to_string())
        .set(
            "message_body",
            filter::body_window(&msg.body, visible, false),
        )
        .set(
            "message_body_end",
            filter::body_window(&msg.body, visible, true),
        )
        .set("originator_uid", ctx.caller.uid.to_string())
        .set("originator_gid", ctx.caller.gid.to_string());
    vars.set_headers(headers.clone());
    let mut t = Test {
        ctx: &ctx,
        vars,
        headers,
        sender,
        return_path,
        sn: [0; 10],
    };
    // The filters run with "/" as the current directory.
    let _ = std::env::set_current_dir("/");
    for (path, text, system) in texts {
        if !t.one(&path, &text, system) {
            return Ok(1);
        }
    }
    Ok(0)
}

impl Test<'_> {
    /// Test one file; false when it has an error.
    fn one(&mut self, path: &str, text: &str, system: bool) -> bool {
        let mut kind = oxim_conf::filter::filter_type(text);
        if system && kind == FilterType::Forward {
            kind = FilterType::Exim;
        }
        let what = match kind {
            FilterType::Exim => "Exim filter",
            FilterType::Sieve => "Sieve filter",
            FilterType::Forward => "forward file",
        };
        println!("Testing {what} file \"{path}\"\n");
        match kind {
            FilterType::Sieve => {
                let script = oxim_conf::sieve::parse(
                    text,
                    oxim_conf::sieve::ParseOptions { vacation: true },
                );
                let env = filter::sieve::SieveEnv {
                    cfg: &self.ctx.config,
                    vars: self.vars.clone(),
                    headers: self.headers.clone(),
                    message_size: self
                        .vars
                        .get("message_size")
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0),
                    testing: true,
                    inbox: "inbox".into(),
                    useraddress: None,
                    subaddress: None,
                    vacation_dir: None,
                };
                print!("{}", filter::sieve::run(&script, &env).out);
                // Exim's Sieve errors end in a keep, not in a failure.
                true
            }
            FilterType::Forward => self.forward(text),
            FilterType::Exim => {
                let opts = ParseOptions {
                    system,
                    allow_defer: system,
                    allow_fail: system,
                    allow_freeze: system,
                };
                let env = Env {
                    cfg: &self.ctx.config,
                    vars: self.vars.clone(),
                    headers: self.headers.clone(),
                    testing: true,
                    system,
                    message: false,
                    first_delivery: true,
                    manually_thawed: false,
                    sender: self.sender.clone(),
                    return_path: self.return_path.clone(),
                    sn: self.sn,
                    log: LogMode::Skip,
                    prepend_home: false,
                    forbid: Default::default(),
                };
                let outcome = match oxim_conf::filter::parse(text, opts) {
                    Ok(cmds) => filter::run(&cmds, env),
                    Err(e) => {
                        let v = Verdict::Error(e);
                        println!("{}", filter::final_words(&v));
                        return false;
                    }
                };
                print!("{}", outcome.out);
                // Headers a system filter added are seen by the user filter,
                // and its $n values as $sn.
                if system {
                    self.sn = outcome.n;
                    self.headers = outcome.headers;
                    self.vars.set_headers(self.headers.clone());
                }
                !matches!(outcome.verdict, Verdict::Error(_))
            }
        }
    }

    /// A plain .forward file: the addresses it generates; false (after
    /// saying so) when an item is not an address.
    fn forward(&self, text: &str) -> bool {
        let t = text.trim();
        if t.starts_with(":fail:") {
            println!("exim: forward file contains \":fail:\"");
        } else if t.starts_with(":blackhole:") {
            println!("exim: forwardfile contains \":blackhole:\"");
        }
        let items = t
            .split([',', '\n'])
            .map(str::trim)
            .filter(|s| !s.is_empty() && !s.starts_with('#') && !s.starts_with(':'));
        for item in items {
            if !item.contains('<') && !item.starts_with(['"', '/', '|']) && several_words(item) {
                println!(
                    "exim: error in forward file: missing or malformed local part \
                     (expected word or \"<\") in \"{item}\""
                );
                return false;
            }
        }
        let generated: Vec<String> = t
            .split([',', '\n'])
            .map(str::trim)
            .filter(|s| !s.is_empty() && !s.starts_with('#') && !s.starts_with(':'))
            .map(|s| {
                let bare = s.trim_matches('"');
                if bare.starts_with('/') || bare.starts_with('|') {
                    bare.to_string()
                } else {
                    crate::message::extract_addresses(s)
                        .into_iter()
                        .next()
                        .map(|a| self.ctx.qualify_recipient(&a))
                        .unwrap_or_default()
                }
            })
            .filter(|s| !s.is_empty())
            .collect();
        if generated.is_empty() {
            println!("exim: no addresses generated from forward file");
        } else {
            println!("exim: forward file generated:");
            for g in generated {
                println!("  {g}");
            }
        }
        true
    }
}

/// Whether an address (no `<`, no quotes) has words side by side that no
/// `.` or `@` joins (after comments are dropped): not an address.
fn several_words(item: &str) -> bool {
    let mut depth = 0;
    let mut text = String::new();
    for c in item.chars() {
        match c {
            '(' => depth += 1,
            ')' if depth > 0 => depth -= 1,
            _ if depth == 0 => text.push(c),
            _ => {}
        }
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    words
        .windows(2)
        .any(|w| !w[0].ends_with(['.', '@']) && !w[1].starts_with(['.', '@']))
}
