//! The `-M` family that looks at or changes one queued message without
//! delivering it: `-Mvh`, `-Mvb`, `-Mvl` (the spool header, data file and
//! message log as stored), `-Mvc` (the message as a transport would write
//! it) and `-Mf`/`-Mt` (freeze, thaw), with Exim's wording.

use std::io::Write;
use std::sync::Arc;

use anyhow::Result;
use oxim_spool::MessageId;

use crate::cli::SpoolAction;
use crate::ctx::Ctx;

/// Run `action` on each id; exit status 1 if any of them failed.
pub fn run(ctx: Arc<Ctx>, action: SpoolAction, ids: &[String]) -> Result<i32> {
    let viewing = matches!(
        action,
        SpoolAction::ShowHeader
            | SpoolAction::ShowBody
            | SpoolAction::ShowLog
            | SpoolAction::ShowCopy
    );
    if viewing && ids.len() > 1 {
        println!("*** Only one message can be listed at once");
        return Ok(1);
    }
    let mut status = 0;
    for text in ids {
        let Ok(id) = text.parse::<MessageId>() else {
            eprintln!("{}: malformed message id: {text}", ctx.inv.prog);
            status = 1;
            continue;
        };
        let ok = match action {
            SpoolAction::ShowHeader => {
                show_file(&ctx, "input", &ctx.spool.header_path(&id), "-H", &id)?
            }
            SpoolAction::ShowBody => {
                show_file(&ctx, "input", &ctx.spool.data_path(&id), "-D", &id)?
            }
            SpoolAction::ShowLog => {
                show_file(&ctx, "msglog", &ctx.spool.msglog_path(&id), "", &id)?
            }
            SpoolAction::ShowCopy => show_copy(&ctx, &id)?,
            SpoolAction::Freeze | SpoolAction::Thaw => freeze_or_thaw(&ctx, &id, action)?,
        };
        if !ok {
            status = 1;
        }
    }
    Ok(status)
}

/// Copy one spool file to stdout as it is stored.
fn show_file(
    ctx: &Ctx,
    subdir: &str,
    path: &std::path::Path,
    suffix: &str,
    id: &MessageId,
) -> Result<bool> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let mut out = std::io::stdout().lock();
            out.write_all(&bytes)?;
            out.flush()?;
            Ok(true)
        }
        Err(e) => {
            println!(
                "Failed to open {subdir} file for {id}{suffix}: {}",
                crate::errno::io_text(&e)
            );
            if subdir == "msglog" && !ctx.settings.message_logs {
                println!(
                    "(No message logs are being created because the message_logs option is false.)"
                );
            }
            Ok(false)
        }
    }
}

/// `-Mvc`: the live headers, a blank line and the body.
fn show_copy(ctx: &Ctx, id: &MessageId) -> Result<bool> {
    let Some(m) = read_locked(ctx, id)? else {
        return Ok(false);
    };
    let (mut body, _) = ctx.spool.open_body(id)?;
    let mut out = std::io::stdout().lock();
    for h in m.headers.iter().filter(|h| h.is_live()) {
        out.write_all(h.text.as_bytes())?;
    }
    out.write_all(b"\n")?;
    std::io::copy(&mut body, &mut out)?;
    out.flush()?;
    Ok(true)
}

/// The message's spool files, read while holding its lock, with Exim's
/// messages when either fails.
fn read_locked(ctx: &Ctx, id: &MessageId) -> Result<Option<oxim_spool::SpoolMessage>> {
    let Some(_lock) = lock_or_say(ctx, id) else {
        return Ok(None);
    };
    match ctx.spool.read(id) {
        Ok(m) => Ok(Some(m)),
        Err(e) => {
            println!("Spool read error for {id}-H: {e}");
            Ok(None)
        }
    }
}

/// The message's lock, or None after saying why not in Exim's words.
fn lock_or_say(ctx: &Ctx, id: &MessageId) -> Option<oxim_spool::MessageLock> {
    match ctx.spool.lock(id) {
        Ok(Some(lock)) => Some(lock),
        Ok(None) => {
            println!("Message {id} is locked");
            None
        }
        Err(oxim_spool::SpoolError::NotFound(_)) => {
            println!("Spool data file for {id} does not exist");
            None
        }
        Err(e) => {
            println!("Couldn't open spool file for {id}: {e}");
            None
        }
    }
}

/// `-Mf` / `-Mt`: set or clear the frozen state, say so and log it.
fn freeze_or_thaw(ctx: &Ctx, id: &MessageId, action: SpoolAction) -> Result<bool> {
    let Some(lock) = lock_or_say(ctx, id) else {
        return Ok(false);
    };
    let (mut env, headers) = match oxim_spool::read_header(ctx.spool.header_path(id)) {
        Ok(h) => h,
        Err(e) => {
            println!("Spool read error for {id}-H: {e}");
            return Ok(false);
        }
    };
    print!("Message {id} ");
    let user = &ctx.caller.login;
    let freeze = action == SpoolAction::Freeze;
    let (ok, said, logged) = match (freeze, env.frozen.is_some()) {
        (true, true) => (false, "is already frozen", None),
        (false, false) => (false, "is not frozen", None),
        (true, false) => {
            env.frozen = Some(crate::time::LocalTime::now().epoch_secs());
            env.manual_thaw = false;
            (true, "is now frozen", Some(format!("frozen by {user}")))
        }
        (false, true) => {
            env.frozen = None;
            env.manual_thaw = true;
            (
                true,
                "is no longer frozen",
                Some(format!("unfrozen by {user}")),
            )
        }
    };
    if let Some(line) = logged {
        if let Err(e) = ctx.spool.rewrite_header(&env, &headers) {
            drop(lock);
            let what = if freeze { "frozen" } else { "unfrozen" };
            println!("could not be {what}: {e}");
            return Ok(false);
        }
        ctx.log_text(Some(id.as_str()), &line);
    }
    drop(lock);
    println!("{said}");
    Ok(ok)
}
