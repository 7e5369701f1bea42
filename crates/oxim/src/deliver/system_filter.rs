//! The system filter (`system_filter`): an Exim filter run once at the
//! start of every delivery attempt, before any routing. It may add and
//! remove header fields (kept with the message), set `$n` values that
//! users' filters see as `$sn`, and defer, freeze, fail or discard the
//! message.

use oxim_conf::filter::{HeadersOp, ParseOptions};
use oxim_spool::Header;

use crate::ctx::Ctx;
use crate::filter::{Env, LogMode, Verdict};
use crate::loaded::Loaded;
use crate::vars::Vars;

/// What the delivery attempt does after the system filter.
pub(super) enum After {
    /// Route the recipients as usual (`$sn` values to pass on).
    Continue([i64; 10]),
    /// Nothing more this attempt (deferred, frozen, filter error); the
    /// message stays on the queue.
    Stop,
    /// Every recipient is done (`seen finish` with no delivery).
    Discarded,
    /// Fail every recipient with this message (`fail`).
    FailAll(String),
}

/// Run the system filter, if there is one, on `m`.
pub(super) fn run(ctx: &Ctx, m: &mut Loaded, vars: &Vars) -> After {
    let Some(path) = ctx.settings.system_filter.as_deref() else {
        return After::Continue([0; 10]);
    };
    let id = m.env.id.to_string();
    let error = |msg: &str| {
        let text = format!(
            "Error in system filter: {}",
            crate::filter::printing(msg, false)
        );
        ctx.log(&oxim_log::LogRecord::Text {
            id: Some(&id),
            text: &text,
            dest: oxim_log::Dest {
                main: true,
                reject: false,
                panic: true,
            },
        });
        // Panic-log lines also go to the standard error of a process that
        // has one (as Exim's do).
        eprintln!(
            "{} {id} {text}",
            ctx.logger.timestamp(std::time::SystemTime::now())
        );
        After::Stop
    };
    if !path.starts_with('/') {
        return error(&format!("\"{path}\" is not an absolute path"));
    }
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            return error(&format!(
                "failed to open {path}: {}",
                crate::errno::io_text(&e)
            ))
        }
    };
    let opts = ParseOptions {
        system: true,
        allow_defer: true,
        allow_fail: true,
        allow_freeze: true,
    };
    let commands = match oxim_conf::filter::parse(&text, opts) {
        Ok(c) => c,
        Err(e) => return error(&e),
    };
    let mut fvars = vars.clone();
    let recipients: Vec<&str> = m
        .env
        .recipients
        .iter()
        .map(|r| r.address.as_str())
        .collect();
    fvars.set("recipients", recipients.join(", "));
    let env = Env {
        cfg: &ctx.config,
        headers: vars.headers(),
        vars: fvars,
        testing: false,
        system: true,
        message: true,
        first_delivery: m.env.deliver_firsttime,
        manually_thawed: m.env.manual_thaw,
        sender: m.env.sender.clone(),
        return_path: m.env.sender.clone(),
        sn: [0; 10],
        log: LogMode::Real,
        prepend_home: false,
        forbid: Default::default(),
    };
    let outcome = crate::filter::run(&commands, env);
    if let Verdict::Error(e) = &outcome.verdict {
        return error(e);
    }
    if !outcome.actions.is_empty() {
        return error(
            "deliveries set up by the system filter (deliver, save, pipe, mail, vacation) \
             are not supported by oxim",
        );
    }
    apply_header_ops(m, &outcome.header_ops);
    let changed = !outcome.header_ops.is_empty();
    match outcome.verdict {
        Verdict::NotDelivered => {
            if changed {
                rewrite_header(ctx, m, &id);
            }
            After::Continue(outcome.n)
        }
        Verdict::Delivered => {
            ctx.log_text(Some(&id), "=> discarded (system filter)");
            After::Discarded
        }
        Verdict::Defer(_) => {
            let text = "Delivery deferred by system filter";
            ctx.log_text(Some(&id), text);
            m.note_msglog(format!("{text}\n"));
            if changed {
                rewrite_header(ctx, m, &id);
            }
            After::Stop
        }
        Verdict::Freeze(msg) if !m.env.manual_thaw => {
            m.env.frozen = Some(super::now_secs());
            let text = if msg.is_empty() {
                "Frozen by the system filter".to_string()
            } else {
                format!("Frozen by the system filter: {msg}")
            };
            ctx.log_text(Some(&id), &text);
            m.note_msglog(format!(
                "{} {text}\n",
                ctx.logger.timestamp(std::time::SystemTime::now())
            ));
            rewrite_header(ctx, m, &id);
            After::Stop
        }
        // A freeze after a manual thaw is ignored.
        Verdict::Freeze(_) => After::Continue(outcome.n),
        Verdict::Fail(msg) => {
            // "<<log text>>bounce text": only the first part is logged.
            let (log_part, bounce_part) =
                match msg.strip_prefix("<<").and_then(|r| r.split_once(">>")) {
                    Some((l, b)) => (l.to_string(), b.to_string()),
                    None => (msg.clone(), msg.clone()),
                };
            let text = if log_part.is_empty() {
                "cancelled by system filter".to_string()
            } else {
                format!("cancelled by system filter: {log_part}")
            };
            ctx.log_text(Some(&id), &text);
            After::FailAll(if bounce_part.is_empty() {
                "delivery cancelled by system filter".into()
            } else {
                bounce_part
            })
        }
        Verdict::Error(_) => After::Stop,
    }
}

/// Make the filter's `headers add`/`remove` on the message's header list:
/// added fields go at the end, removed ones are marked deleted.
fn apply_header_ops(m: &mut Loaded, ops: &[(HeadersOp, String)]) {
    for (op, v) in ops {
        match op {
            HeadersOp::Add => {
                // Several fields may come in one string: a newline not
                // followed by white space starts the next.
                let mut field = String::new();
                for line in v.split_inclusive('\n') {
                    if !field.is_empty() && !line.starts_with([' ', '\t']) {
                        m.headers.push(Header::new(std::mem::take(&mut field)));
                    }
                    field.push_str(line);
                }
                if !field.is_empty() {
                    if !field.ends_with('\n') {
                        field.push('\n');
                    }
                    m.headers.push(Header::new(field));
                }
            }
            HeadersOp::Remove => {
                for h in m.headers.iter_mut().filter(|h| h.is_live()) {
                    let name = h.text.split(':').next().unwrap_or("").trim_end();
                    if name.eq_ignore_ascii_case(v) {
                        h.kind = oxim_spool::header::kind::DELETED;
                    }
                }
            }
            HeadersOp::Charset => {}
        }
    }
}

/// Keep the filter's header changes (or the freeze) on the spool; a write
/// that fails is logged, and the next attempt runs the filter again.
fn rewrite_header(ctx: &Ctx, m: &Loaded, id: &str) {
    if let Err(e) = ctx.spool.rewrite_header(&m.env, &m.headers) {
        ctx.log_text(Some(id), &format!("cannot rewrite the spool header: {e}"));
    }
}
