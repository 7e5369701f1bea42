//! `-bt` (how each address would route) and `-bv` (whether it verifies),
//! in Exim's layout.

use std::io::{BufRead, Write};

use anyhow::Result;

use crate::ctx::Ctx;
use crate::deliver::route::{self, Routed, RoutedHost};
use crate::settings::TransportKind;
use crate::vars::Vars;

/// One address `-bt` routed to a transport.
struct TestedRoute {
    shown: String,
    key: (String, String),
    router: String,
    transport: String,
    hosts: Vec<RoutedHost>,
    local: bool,
}

/// An address and the lines naming its ancestors (`    <-- parent`).
fn with_parents(address: &str, parents: &[String]) -> String {
    let mut s = address.to_string();
    for p in parents {
        s.push_str("\n    <-- ");
        s.push_str(p);
    }
    s
}

/// `-bt`: show how each address routes, in Exim's layout: failures and
/// deferrals as they happen, then, once an argument's whole tree is
/// routed, the addresses for local transports and then those for remote
/// ones, each group newest first.
pub fn address_test(ctx: std::sync::Arc<Ctx>, addrs: &[String]) -> Result<i32> {
    full_routing(ctx, addrs, false)
}

/// The full routing display of `-bt`, and of `-bv` with `-v` (`verifying`:
/// routers run as for verification, failures say "failed to verify").
fn full_routing(ctx: std::sync::Arc<Ctx>, addrs: &[String], verifying: bool) -> Result<i32> {
    let undeliverable = if verifying {
        "failed to verify"
    } else {
        "is undeliverable"
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let sender = crate::ctx::envelope_sender(&ctx);
    let vars = ctx.base_vars();
    let mut status = 0;
    let mut seen: std::collections::HashSet<(String, String)> = Default::default();
    for a in addrs {
        let mut routed: Vec<TestedRoute> = Vec::new();
        // (redirecting address, file or pipe, transport)
        let mut files: Vec<(String, String, Option<String>)> = Vec::new();
        // (address, ancestors nearest first, first router)
        let mut queue: Vec<(String, Vec<String>, usize)> = vec![(
            crate::rewrite::for_verify(&ctx, a, true, &vars, true),
            Vec::new(),
            0,
        )];
        let mut later: Vec<(String, Vec<String>, usize)> = Vec::new();
        while let Some((addr, mut parents, start)) = queue.pop().or_else(|| later.pop()) {
            let r = rt.block_on(route::route_from(
                &ctx, &addr, &sender, &vars, verifying, start,
            ));
            if r.notes_in_bt {
                // Exim writes its log lines to stderr while testing.
                for n in &r.notes {
                    eprintln!("LOG: MAIN\n  {n} (while routing <{addr}>)");
                }
            }
            if let Some(next) = r.unseen_next {
                let mut p = parents.clone();
                p.insert(0, addr.clone());
                later.insert(0, (addr.clone(), p.clone(), next));
                parents = p;
            }
            match r.routed {
                Routed::Transport {
                    router,
                    transport,
                    hosts,
                    ..
                } => {
                    let local = ctx
                        .drivers
                        .transport(&transport)
                        .is_some_and(|t| !matches!(t.kind, TransportKind::Smtp(_)));
                    routed.push(TestedRoute {
                        shown: with_parents(&addr, &parents),
                        key: (addr.clone(), router.clone()),
                        router,
                        transport,
                        hosts,
                        local,
                    });
                }
                Routed::Blackhole { .. } => {
                    println!("mail to {} is discarded", with_parents(&addr, &parents))
                }
                Routed::Redirected {
                    children, direct, ..
                } => {
                    // Files and pipes show under the address that made them.
                    for d in direct {
                        files.push((addr.clone(), d.target, d.transport));
                    }
                    let mut p = parents.clone();
                    p.insert(0, addr.clone());
                    for c in children.into_iter().rev() {
                        queue.push((ctx.qualify_recipient(&c), p.clone(), 0));
                    }
                }
                Routed::Fail { message, .. } => {
                    println!(
                        "{addr} {undeliverable}: {message}{}",
                        with_parents("", &parents)
                    );
                    status = 2;
                }
                Routed::Defer { message, .. } => {
                    println!(
                        "{addr} cannot be resolved at this time: {message}{}",
                        with_parents("", &parents)
                    );
                    status = status.max(1);
                }
            }
        }
        for (parent, target, transport) in files.into_iter().rev() {
            println!("{parent} -> {target}");
            match transport {
                Some(t) => println!("  transport = {t}"),
                None => println!("  transport = unset"),
            }
        }
        let (local, remote): (Vec<_>, Vec<_>) = routed.into_iter().partition(|t| t.local);
        for t in local.into_iter().rev().chain(remote.into_iter().rev()) {
            let (first, rest) = t
                .shown
                .split_once('\n')
                .map_or((&t.shown[..], None), |(f, r)| (f, Some(r)));
            let dup = if seen.insert(t.key.clone()) {
                ""
            } else {
                "   [duplicate, would not be delivered]"
            };
            println!("{first}{dup}");
            if let Some(r) = rest {
                println!("{r}");
            }
            println!("  router = {}, transport = {}", t.router, t.transport);
            for h in t.hosts {
                let mut mx = h.mx.map(|m| format!(" MX={m}")).unwrap_or_default();
                if let Some(p) = h.port {
                    mx.push_str(&format!(" port={p}"));
                }
                match h.ip {
                    Some(ip) => println!("  host {} [{ip}]{mx}", h.name),
                    None => println!("  host {}{mx}", h.name),
                }
            }
        }
    }
    Ok(status)
}

/// How verifying one address ended.
enum Verdict {
    Verified,
    Failed(String),
    Deferred(String),
}

/// Verify `address` as a recipient the way `-bv` reports it: routing
/// continues into a redirection only while it yields exactly one address
/// that is not a pipe, file or reply; anything else routed is verified.
async fn verify_one(ctx: &Ctx, address: &str, sender: &str, vars: &Vars) -> Verdict {
    let mut current = crate::rewrite::for_verify(ctx, address, true, vars, true);
    // A redirection loop cannot go on for ever: Exim's generation limit.
    for _ in 0..100 {
        let r = route::route(ctx, &current, sender, vars, true).await;
        match r.routed {
            Routed::Transport { .. } | Routed::Blackhole { .. } => return Verdict::Verified,
            Routed::Fail { message, .. } => return Verdict::Failed(message),
            Routed::Defer { message, .. } => return Verdict::Deferred(message),
            // Files and pipes (`direct`) are verified.
            Routed::Redirected {
                children, direct, ..
            } => match children.as_slice() {
                [only] if direct.is_empty() && !only.starts_with(":") => {
                    current = ctx.qualify_recipient(only);
                }
                _ => return Verdict::Verified,
            },
        }
    }
    Verdict::Deferred("too many generations of redirection".into())
}

/// `-bv`: verify each address (from the arguments, or one per line on
/// stdin after a `> ` prompt) and say `verified`, `failed to verify: ...`
/// or `cannot be resolved at this time: ...`; with `-v`, show the full
/// routing as `-bt` does. Exit status 2 if one failed, else 1 if one could
/// not be resolved.
pub fn verify_addresses(ctx: std::sync::Arc<Ctx>, addrs: &[String]) -> Result<i32> {
    if ctx.inv.verbose {
        return full_routing(ctx, addrs, true);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let sender = crate::ctx::envelope_sender(&ctx);
    let vars = ctx.base_vars();
    let mut status = 0;
    let mut check = |address: &str, out: &mut dyn Write| -> std::io::Result<()> {
        let shown = ctx.qualify_recipient(address);
        match rt.block_on(verify_one(&ctx, address, &sender, &vars)) {
            Verdict::Verified => writeln!(out, "{shown} verified"),
            Verdict::Failed(m) => {
                status = 2;
                writeln!(out, "{shown} failed to verify: {m}")
            }
            Verdict::Deferred(m) => {
                status = status.max(1);
                writeln!(out, "{shown} cannot be resolved at this time: {m}")
            }
        }
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if !addrs.is_empty() {
        for a in addrs {
            check(a, &mut out)?;
        }
    } else {
        let stdin = std::io::stdin();
        let mut input = stdin.lock();
        loop {
            out.write_all(b"> ")?;
            out.flush()?;
            let mut line = String::new();
            if input.read_line(&mut line)? == 0 {
                out.write_all(b"\n")?;
                break;
            }
            let a = line.trim();
            if !a.is_empty() {
                check(a, &mut out)?;
            }
        }
    }
    out.flush()?;
    Ok(status)
}
