//! `-bt`: how each address would route, in Exim's layout.

use anyhow::Result;

use crate::ctx::Ctx;
use crate::deliver::route::{self, Routed, RoutedHost};
use crate::settings::TransportKind;

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
        let mut queue: Vec<(String, Vec<String>, usize)> =
            vec![(ctx.qualify_recipient(a), Vec::new(), 0)];
        let mut later: Vec<(String, Vec<String>, usize)> = Vec::new();
        while let Some((addr, mut parents, start)) = queue.pop().or_else(|| later.pop()) {
            let r = rt.block_on(route::route_from(&ctx, &addr, &sender, &vars, false, start));
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
                Routed::Redirected { children, direct } => {
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
                        "{addr} is undeliverable: {message}{}",
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
