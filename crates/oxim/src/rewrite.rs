//! Address rewriting where oxim applies it (reception, `-brw`, transport
//! `headers_rewrite`); the rules and their semantics are in
//! `oxim_conf::rewrite`, which does no I/O: what it reports is logged here.

use oxim_conf::rewrite::{Env, Note};
use oxim_conf::ExpandContext;
use oxim_log::{LogRecord, Selector};

use crate::ctx::Ctx;

/// The rewriting environment for `ctx` with the variables `vars`.
pub fn env<'a>(ctx: &'a Ctx, vars: &'a dyn ExpandContext) -> Env<'a> {
    Env {
        cfg: &ctx.config,
        ctx: vars,
        qualify_sender: &ctx.qualify_domain,
        qualify_recipient: &ctx.qualify_recipient,
        charset: match ctx.config.main.str("headers_charset") {
            "" => "ISO-8859-1",
            c => c,
        },
    }
}

/// Writes what rewriting reported (with the message id `id`, if any) and
/// returns the old headers it asked for (`X-rewrote-...`).
pub fn log_notes(ctx: &Ctx, id: Option<&str>, notes: Vec<Note>) -> Vec<String> {
    let mut old = Vec::new();
    for n in notes {
        match n {
            Note::Rewritten(t) => {
                if ctx.selector.has(Selector::AddressRewrite) {
                    ctx.log_text(id, &t);
                }
            }
            Note::Log(t) => ctx.log_text(id, &t),
            Note::Panic(t) => ctx.log(&LogRecord::Text {
                id,
                text: &t,
                dest: oxim_log::Dest {
                    main: true,
                    reject: false,
                    panic: true,
                },
            }),
            Note::OldHeader(h) => old.push(h),
        }
    }
    old
}

/// `-brw address`: how the rules rewrite `address` in each place.
pub fn test(ctx: &Ctx, args: &[String], out: &mut dyn std::io::Write) -> anyhow::Result<i32> {
    let Some(address) = args.first() else {
        eprintln!("{}: -brw needs an address argument", ctx.inv.prog);
        return Ok(1);
    };
    let vars = ctx.base_vars();
    let mut notes = Vec::new();
    let text = env(ctx, &vars).test(&ctx.rewrite, address, &mut notes);
    log_notes_testing(ctx, notes);
    out.write_all(text.as_bytes())?;
    Ok(0)
}

/// What a testing command (`-brw`, `-bt`, `-bv`, EXPN) would log goes to
/// the standard error instead of the log files, as Exim writes it.
pub fn log_notes_testing(ctx: &Ctx, notes: Vec<Note>) {
    for n in notes {
        let line = match n {
            Note::Rewritten(t) if ctx.selector.has(Selector::AddressRewrite) => t,
            Note::Rewritten(_) | Note::OldHeader(_) => continue,
            Note::Log(t) | Note::Panic(t) => t,
        };
        let stamp = ctx.logger.timestamp(std::time::SystemTime::now());
        eprintln!("{stamp} {line}");
    }
}

/// The address verification and address testing route: qualified and
/// rewritten by the global rules (`T` for a recipient, `F` for a sender),
/// as Exim's `verify_address` does first. `testing`: report on the
/// standard error (see [`log_notes_testing`]).
pub fn for_verify(
    ctx: &Ctx,
    address: &str,
    is_recipient: bool,
    vars: &dyn ExpandContext,
    testing: bool,
) -> String {
    if address.is_empty() {
        return String::new();
    }
    let mut notes = Vec::new();
    let out =
        env(ctx, vars).rewrite_address(&ctx.rewrite, address, is_recipient, false, &mut notes);
    if testing {
        log_notes_testing(ctx, notes);
    } else {
        log_notes(ctx, None, notes);
    }
    out
}
