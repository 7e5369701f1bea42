//! `-bV` (version and build facts) and `-bP` (configuration printing).

use anyhow::Result;

use crate::ctx::Ctx;

/// Routers this build really has.
pub const ROUTERS: &[&str] = &["accept", "dnslookup", "manualroute", "redirect"];
/// Transports this build really has.
pub const TRANSPORTS: &[&str] = &["appendfile/maildir", "autoreply", "pipe", "smtp"];
/// Lookup types this build really has (those `oxim_conf::lookup` parses).
pub const LOOKUPS: &[&str] = &[
    "lsearch",
    "wildlsearch",
    "nwildlsearch",
    "iplsearch",
    "dsearch",
];

/// The "Support for:" items.
pub fn support_items() -> Vec<&'static str> {
    let mut v = vec![
        "DKIM",
        "Exim_filter",
        "Sieve_filter",
        "IPv6",
        "PIPECONNECT",
        "PRDR",
    ];
    if oxim_net::tfo_supported() {
        v.push("TCP_Fast_Open");
    }
    v
}

/// Text of `-bV` (the configuration check is done by the caller).
pub fn version_text(version: &str, config_path: &str) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "Exim version {version} #1 (oxim {} built with Rust)\n",
        env!("CARGO_PKG_VERSION")
    ));
    s.push_str("oxim: an Exim-compatible MTA; see README.md\n");
    s.push_str(&format!("Support for: {}\n", support_items().join(" ")));
    s.push_str(&format!("Lookups (built-in): {}\n", LOOKUPS.join(" ")));
    s.push_str(&format!(
        "Authenticators: {}\n",
        crate::settings::AUTH_DRIVERS.join(" ")
    ));
    s.push_str(&format!("Routers: {}\n", ROUTERS.join(" ")));
    s.push_str(&format!("Transports: {}\n", TRANSPORTS.join(" ")));
    s.push_str(&format!("Configuration file is {config_path}\n"));
    s
}

/// Kernel TCP Fast Open counters of this network namespace
/// (`TcpExt` in /proc/net/netstat).
pub fn kernel_tfo_stats() -> Vec<(String, u64)> {
    let Ok(text) = std::fs::read_to_string("/proc/net/netstat") else {
        return Vec::new();
    };
    let mut lines = text.lines();
    while let (Some(names), Some(values)) = (lines.next(), lines.next()) {
        if !names.starts_with("TcpExt:") {
            continue;
        }
        return names
            .split_whitespace()
            .zip(values.split_whitespace())
            .skip(1)
            .filter(|(n, _)| n.starts_with("TCPFastOpen"))
            .filter_map(|(n, v)| Some((n.to_string(), v.parse().ok()?)))
            .collect();
    }
    Vec::new()
}

/// `-bP [names]`.
pub fn print_config(ctx: &Ctx, names: &[String]) -> Result<i32> {
    let cfg = &ctx.config;
    let mut status = 0;
    if names.is_empty() {
        for n in cfg.main.names() {
            if let Some(line) = cfg.main.render(n) {
                println!("{line}");
            }
        }
        return Ok(0);
    }
    // `-bP macro NAME`: the macro (built-ins included) as NAME=value, exit 0;
    // `macro NAME not found` and exit 1 otherwise (Exim's wording).
    if names.first().map(String::as_str) == Some("macro") {
        let Some(wanted) = names.get(1) else {
            for (k, v) in &cfg.macros {
                println!("{k}={v}");
            }
            return Ok(0);
        };
        let builtin = crate::ctx::builtin_macros();
        let found = cfg
            .macros
            .iter()
            .chain(builtin.iter())
            .find(|(k, _)| k == wanted);
        return Ok(match found {
            Some((k, v)) => {
                println!("{k}={v}");
                0
            }
            None => {
                println!("macro {wanted} not found");
                1
            }
        });
    }
    for name in names {
        match name.as_str() {
            "routers" | "transports" => {
                let list = if name == "routers" {
                    &cfg.routers
                } else {
                    &cfg.transports
                };
                for d in list {
                    println!("\n{}:", d.name);
                    for n in d.options.names() {
                        if let Some(line) = d.options.render(n) {
                            println!("{line}");
                        }
                    }
                }
            }
            "authenticators" | "authenticator_list" => {
                let out = cfg.print_item(name, None, false);
                for l in &out.lines {
                    println!("{l}");
                }
            }
            "macros" => {
                for (k, v) in &cfg.macros {
                    println!("{k}={v}");
                }
            }
            "tfo_stats" => {
                println!(
                    "TCP_Fast_Open supported: {}",
                    if oxim_net::tfo_supported() {
                        "yes"
                    } else {
                        "no"
                    }
                );
                if let Some(v) = oxim_net::tfo_sysctl() {
                    println!("net.ipv4.tcp_fastopen = {v}");
                }
                for (k, v) in kernel_tfo_stats() {
                    println!("{k} = {v}");
                }
            }
            "config_file" => println!("config_file = {}", ctx.config_path),
            n => match cfg.main.render(n) {
                Some(line) => println!("{line}"),
                None => {
                    println!("{n} is not a known option");
                    status = 1;
                }
            },
        }
    }
    Ok(status)
}
