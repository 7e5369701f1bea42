//! oxim: an Exim-compatible MTA with first-class TCP Fast Open.
//!
//! Entry point: parse Exim's command line, load the configuration, dispatch.

#![forbid(unsafe_code)]

mod acl;
mod address_test;
mod bounce;
mod cli;
mod condition;
mod config_error;
mod ctx;
mod daemon;
mod dbutil;
mod deliver;
mod dkim;
mod dns;
mod errno;
mod exinext;
mod expand_test;
mod filter;
mod filter_test;
mod harness;
mod hints_file;
mod host_lists;
mod info;
mod loaded;
mod message;
mod metrics;
mod not_smtp;
mod privilege;
mod queue;
mod random;
mod receive;
mod retry;
mod retry_test;
mod rewrite;
mod settings;
mod smtp_in;
mod spool_admin;
mod submit;
mod time;

mod vars;

use std::process::ExitCode;

use cli::{Invocation, Mode};
use ctx::Ctx;

fn program_name(argv0: Option<&String>) -> String {
    argv0
        .and_then(|a| std::path::Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "oxim".into())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let prog = program_name(args.first());
    // Exim's hints utilities, when called by their names (symlinks).
    if let Some(util) = dbutil::Utility::from_name(&prog) {
        let code = util.run(args.get(1..).unwrap_or(&[]));
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    if prog == "exinext" {
        let me = std::env::current_exe().unwrap_or_else(|_| "oxim".into());
        let out = std::io::stdout();
        let code = exinext::run(args.get(1..).unwrap_or(&[]), &me, &mut out.lock());
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    // mailq, runq, newaliases, rsmtp, rmail: options implied by the name.
    let mut rest: Vec<String> = cli::options_for_name(&prog)
        .iter()
        .map(|s| s.to_string())
        .collect();
    rest.extend(args.iter().skip(1).cloned());
    let inv = match Invocation::parse(&prog, &rest) {
        Ok(inv) => inv,
        Err(e) => {
            eprintln!("{prog}: {e}");
            return ExitCode::from(1);
        }
    };
    let inv_copy = inv.clone();
    match run(inv, &args) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) if e.downcast_ref::<config_error::ConfigFailure>().is_some() => {
            if let Some(f) = e.downcast_ref::<config_error::ConfigFailure>() {
                f.report(&inv_copy);
            }
            ExitCode::from(1)
        }
        Err(e) => {
            match e.downcast_ref::<ctx::ConfigPanic>() {
                Some(p) => eprintln!("{p}"),
                None => eprintln!("{prog}: {e:#}"),
            }
            ExitCode::from(1)
        }
    }
}

fn run(inv: Invocation, args: &[String]) -> anyhow::Result<i32> {
    // Before anything reads the configuration.
    harness::note_start();
    privilege::setuid_guard(&inv, std::path::Path::new(ctx::DEFAULT_CONFIG_PATH))?;
    match &inv.mode {
        Mode::Help => {
            print!("{}", cli::HELP);
            return Ok(0);
        }
        Mode::DeliveryHelper => {
            if !nix::unistd::Uid::current().is_root() {
                anyhow::bail!("-oxim-delivery-helper is for the daemon (started as root) only");
            }
            let mut pass = Vec::new();
            if let Some(c) = &inv.config {
                pass.push("-C".to_string());
                pass.push(c.display().to_string());
            }
            for (k, v) in &inv.defines {
                pass.push(format!("-D{k}={v}"));
            }
            return daemon::delivery_helper(&inv.prog, &pass);
        }
        Mode::Daemon if !inv.foreground => {
            // Check the configuration before detaching so errors are seen.
            let ctx = Ctx::new(inv.clone())?;
            daemon::detach(&ctx, args.get(1..).unwrap_or(&[]))?;
            return Ok(0);
        }
        _ => {}
    }
    let mode = inv.mode.clone();
    let ctx = Ctx::new(inv)?;
    if let Some(code) = refuse_non_admin(&ctx, &mode) {
        return Ok(code);
    }
    // The daemon gives up root once its sockets are bound; every other
    // command that receives or delivers does so now.
    // Those that deliver keep root as their saved user id, to run local
    // deliveries as their users. Address testing and verifying (-bt, -bv)
    // keep root, as Exim's do (routers see the files root sees).
    if !matches!(
        mode,
        Mode::Daemon
            | Mode::Demo
            | Mode::AddressTest(_)
            | Mode::VerifyAddresses(_)
            | Mode::RebuildAliases
    ) {
        let delivers = matches!(
            mode,
            Mode::Submit | Mode::SmtpStdin | Mode::BatchSmtp | Mode::QueueRun | Mode::DeliverIds(_)
        );
        ctx.drop_privilege(delivers)?;
        if delivers {
            privilege::allow_user_switch();
        }
    }
    match mode {
        Mode::Version => {
            print!("{}", info::version_text(ctx.version, &ctx.config_path));
            Ok(0)
        }
        Mode::PrintConfig(names) => info::print_config(&ctx, &names),
        Mode::Daemon => daemon::run(ctx),
        Mode::Demo => {
            let specs = daemon::listen_specs(&ctx)?;
            let main_log = ctx.logger.path(oxim_log::LogKind::Main).to_path_buf();
            println!(
                "oxim {} on the embedded default configuration",
                env!("CARGO_PKG_VERSION")
            );
            for s in &specs {
                println!("listening for SMTP on {}", s.addr);
            }
            println!("spool:    {}", ctx.spool.root().display());
            println!("main log: {}", main_log.display());
            println!(
                "mail for local users is appended to {}/mail/<local part>",
                ctx::demo_home().display()
            );
            println!("stop with Ctrl-C");
            daemon::run(ctx)
        }
        Mode::Submit => submit::run(ctx),
        Mode::SmtpStdin => smtp_in::run_stdin(ctx, false),
        Mode::HostCheck { ip, callout } => smtp_in::run_host_check(ctx, ip, callout),
        Mode::BatchSmtp => smtp_in::run_stdin(ctx, true),
        Mode::AddressTest(addrs) => address_test::address_test(ctx, &addrs),
        Mode::VerifyAddresses(addrs) => address_test::verify_addresses(ctx, &addrs),
        Mode::ListQueue(mode) => queue::list(ctx, mode),
        Mode::CountQueue => queue::count(ctx),
        Mode::QueueRun => queue::queue_run(ctx),
        Mode::DeliverIds(ids) => {
            let force = ctx.inv.force;
            queue::deliver_ids(ctx, &ids, force)
        }
        Mode::RemoveIds(ids) => queue::remove_ids(ctx, &ids),
        Mode::Spool(action, ids) => spool_admin::run(ctx, action, &ids),
        Mode::LogWrite(text) => {
            ctx.log_text(None, &text);
            Ok(0)
        }
        Mode::ExpandTest => expand_test::run(ctx),
        Mode::FilterTest => filter_test::run(ctx),
        Mode::RetryTest(args) => {
            let out = std::io::stdout();
            retry_test::run(&ctx, &args, &mut out.lock())
        }
        Mode::RewriteTest(args) => {
            let out = std::io::stdout();
            rewrite::test(&ctx, &args, &mut out.lock())
        }
        Mode::RebuildAliases => rebuild_aliases(&ctx),
        Mode::Help | Mode::DeliveryHelper => Ok(0),
    }
}

/// Exim's admin-only commands, refused to a caller who is not an admin
/// user (see `ctx::Caller::classify`) when oxim runs with more privilege
/// than its caller (installed setuid); a caller running oxim without
/// privilege reaches only what is already theirs. As Exim 4.96: listing
/// or counting the queue (`queue_list_requires_admin`, default true) and
/// queue runs (`prod_requires_admin`, default true) fail with
/// `permission denied` (exit 1); the `-M` actions print `Permission
/// denied` and exit 1, except `-Mrm`, which the message's sender may use.
fn refuse_non_admin(ctx: &Ctx, mode: &Mode) -> Option<i32> {
    if ctx.caller.admin || !harness::started_elevated() {
        return None;
    }
    let main = &ctx.config.main;
    let refused = match mode {
        Mode::ListQueue(_) | Mode::CountQueue => main.bool("queue_list_requires_admin"),
        Mode::QueueRun => main.bool("prod_requires_admin"),
        Mode::DeliverIds(_) | Mode::Spool(..) => {
            println!("Permission denied");
            return Some(1);
        }
        _ => false,
    };
    if refused {
        eprintln!("{}: permission denied", ctx.inv.prog);
        return Some(1);
    }
    None
}

/// `-bi` / `newaliases`: Exim runs `bi_command` (a program path, not
/// expanded) as the caller, with no standard input or output, in place of
/// itself; without it there is nothing to do.
fn rebuild_aliases(ctx: &Ctx) -> anyhow::Result<i32> {
    use std::os::unix::process::CommandExt;
    let Some(command) = &ctx.settings.bi_command else {
        return Ok(0);
    };
    let err = std::process::Command::new(command)
        .uid(nix::unistd::getuid().as_raw())
        .gid(nix::unistd::getgid().as_raw())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .exec();
    anyhow::bail!("exec '{command}' failed: {}", errno::io_text(&err))
}
