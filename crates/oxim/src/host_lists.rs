//! Host lists against the connected client. Matching is synchronous (in
//! `oxim-conf`) and DNS is not: the lookups a list may need (its plain host
//! names, the client's own name) are made first, and the matcher is given a
//! context that answers from them, writing Exim's trace of each lookup (and
//! its log line) at the moment the list uses it.

use std::cell::Cell;
use std::collections::HashMap;
use std::net::IpAddr;

use oxim_conf::{ExpandContext, HostFind, ListError, Probe, Trace};

use crate::ctx::Ctx;
use crate::dns::LookupFailure;
use crate::vars::Vars;

/// What the session knows about the client's host name.
#[derive(Debug, Clone, Default)]
pub struct ClientName {
    /// The verified name, once known.
    pub name: Option<String>,
    /// A reverse lookup was made and found no usable name.
    pub lookup_failed: bool,
}

/// The outcome of the reverse lookup with forward confirmation, and what
/// to trace and log when the list uses it.
struct Reverse {
    /// Trace lines with their depth below the caller's level.
    lines: Vec<(usize, String)>,
    log: Option<String>,
    result: Result<Vec<String>, String>,
}

/// A name's addresses; `localhost` is the loopback address.
async fn addresses(ctx: &Ctx, name: &str) -> Result<Vec<IpAddr>, LookupFailure> {
    if name.eq_ignore_ascii_case("localhost") {
        return Ok(vec![IpAddr::from([127, 0, 0, 1])]);
    }
    ctx.dns.addresses(name).await
}

async fn reverse_lookup(ctx: &Ctx, ip: IpAddr) -> Reverse {
    let mut lines = vec![(0, format!("looking up host name for {ip}"))];
    let failed = |lines, log| Reverse {
        lines,
        log,
        result: Err(format!("failed to find host name for {ip}")),
    };
    let names: Vec<String> = match ctx.dns.reverse(ip).await {
        Ok(n) => n
            .into_iter()
            .map(|n| n.trim_end_matches('.').to_ascii_lowercase())
            .filter(|n| !n.is_empty())
            .collect(),
        Err(_) => Vec::new(),
    };
    let Some(first) = names.first() else {
        return failed(
            lines,
            Some(format!("no host name found for IP address {ip}")),
        );
    };
    lines.push((1, format!("IP address lookup yielded \"{first}\"")));
    for a in &names[1..] {
        lines.push((1, format!("  alias \"{a}\"")));
    }
    let mut good = Vec::new();
    for n in &names {
        for which in ["require", "request"] {
            lines.push((1, format!("check dnssec {which} list")));
            lines.push((
                2,
                format!("{n} not in empty list (option unset? cannot trace name)"),
            ));
        }
        match addresses(ctx, n).await {
            Ok(addrs) => {
                lines.push((1, format!("checking addresses for {n}")));
                let mut ok = false;
                for a in &addrs {
                    if *a == ip {
                        lines.push((1, format!("  {a} OK")));
                        ok = true;
                        break;
                    }
                    lines.push((1, format!("  {a}")));
                }
                if ok {
                    good.push(n.clone());
                } else {
                    lines.push((1, format!("no IP address for {n} matched {ip}")));
                }
            }
            Err(LookupFailure::Temporary(_)) => {
                lines.push((1, "temporary error for host name lookup".into()));
                return failed(lines, None);
            }
            Err(LookupFailure::NotFound) => {
                lines.push((1, format!("no IP addresses found for {n}")));
            }
        }
    }
    if good.is_empty() {
        lines.push((1, format!("{ip} does not match any IP address for {first}")));
        return failed(lines, None);
    }
    Reverse {
        lines,
        log: None,
        result: Ok(good),
    }
}

/// The matcher's view: variables and files from `vars`, host lookups from
/// what was looked up beforehand.
struct Looked<'a> {
    ctx: &'a Ctx,
    vars: &'a Vars,
    forward: HashMap<String, Result<Vec<IpAddr>, LookupFailure>>,
    reverse: Option<Reverse>,
    reverse_used: Cell<bool>,
    /// `SMTP connection from ...`, for the "no IP address found" text.
    connection: &'a str,
}

impl ExpandContext for Looked<'_> {
    fn var(&self, name: &str) -> Option<String> {
        self.vars.var(name)
    }

    fn auth_results(&self, sysname: &str) -> Option<String> {
        self.vars.auth_results(sysname)
    }

    fn read_file(&self, path: &str) -> Option<String> {
        self.vars.read_file(path)
    }

    fn file_exists(&self, path: &str) -> bool {
        self.vars.file_exists(path)
    }

    fn find_host(&self, name: &str, trace: &mut Trace) -> Option<HostFind> {
        let r = self.forward.get(name)?;
        Some(match r {
            Ok(addrs) => {
                trace.line(|| "gethostbyname2 looked up these IP addresses:".into());
                for a in addrs {
                    trace.line(|| format!("  name={name} address={a}"));
                }
                HostFind::Found(addrs.clone())
            }
            Err(LookupFailure::NotFound) => {
                let msg = format!(
                    "no IP address found for host {name} (during {})",
                    self.connection
                );
                trace.line(|| msg.clone());
                self.ctx.log_text(None, &msg);
                HostFind::NotFound(format!("failed to find IP address for {name}"))
            }
            Err(LookupFailure::Temporary(_)) => {
                let again = || format!("{name} in dns_again_means_nonexist? no (option unset)");
                trace.line(again);
                trace.line(|| {
                    format!(
                        "no IP address found for host {name} (during {})",
                        self.connection
                    )
                });
                trace.line(again);
                HostFind::Again(format!("DNS lookup of \"{name}\" deferred"))
            }
        })
    }

    fn sender_host_names(&self, trace: &mut Trace) -> Option<Result<Vec<String>, String>> {
        let rev = self.reverse.as_ref()?;
        if !self.reverse_used.replace(true) {
            for (depth, l) in &rev.lines {
                trace.level += depth;
                trace.line(|| l.clone());
                trace.level -= depth;
            }
            if let Some(l) = &rev.log {
                self.ctx.log_text(None, l);
            }
        }
        Some(rev.result.clone())
    }
}

/// Matches the client against host list `list` (already expanded), making
/// the DNS lookups the list needs first. A reverse lookup the list used
/// is remembered in `client` (Exim looks the name up once per connection).
pub async fn match_client(
    ctx: &Ctx,
    list: &str,
    ip: IpAddr,
    client: &mut ClientName,
    vars: &Vars,
    connection: &str,
    probe: &mut Probe<'_>,
) -> Result<bool, ListError> {
    let (names, wants_name) = oxim_conf::host_list_lookups(list, &ctx.config, vars);
    let mut forward = HashMap::new();
    for n in names {
        let r = addresses(ctx, &n).await;
        forward.insert(n, r);
    }
    let reverse = if client.name.is_none() && wants_name {
        Some(if client.lookup_failed {
            Reverse {
                lines: Vec::new(),
                log: None,
                result: Err(format!("failed to find host name for {ip}")),
            }
        } else {
            reverse_lookup(ctx, ip).await
        })
    } else {
        None
    };
    let looked = Looked {
        ctx,
        vars,
        forward,
        reverse,
        reverse_used: Cell::new(false),
        connection,
    };
    let r = oxim_conf::match_host_probe(
        list,
        ip,
        client.name.as_deref(),
        &ctx.config,
        &looked,
        probe,
    );
    if looked.reverse_used.get() {
        match looked.reverse.as_ref().map(|r| &r.result) {
            Some(Ok(names)) => client.name = names.first().cloned(),
            Some(Err(_)) => client.lookup_failed = true,
            None => {}
        }
    }
    r
}
