//! Name lookups through a real resolver library (hickory), configured from
//! `/etc/resolv.conf`, with a per-query timeout.
//!
//! Exim's `host_lookup_order = bydns` means "ask DNS, not /etc/hosts"; the
//! harness relies on that, and so does this module's default: the hosts file
//! is consulted only when `use_hosts` is set.

use std::net::IpAddr;
use std::time::Duration;

use hickory_resolver::proto::rr::{Name, RData};
use hickory_resolver::TokioResolver;

/// A DNS resolver shared by the daemon and deliveries.
#[derive(Clone)]
pub struct Dns {
    resolver: Option<TokioResolver>,
    /// `disable_ipv6`: A records only, and IPv6 addresses are dropped.
    ipv4_only: bool,
}

/// An MX record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mx {
    pub preference: u16,
    pub exchange: String,
}

/// Why a lookup gave no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupFailure {
    /// The name or record does not exist (permanent).
    NotFound,
    /// Timeout, SERVFAIL, no resolver configured (temporary).
    Temporary(String),
}

fn fqdn(name: &str) -> String {
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    }
}

fn strip_dot(name: &Name) -> String {
    let s = name.to_utf8();
    s.strip_suffix('.').unwrap_or(&s).to_string()
}

/// The resolver's search domains (`search`, else `domain`, in
/// `/etc/resolv.conf`), which `qualify_single` appends to a one-component
/// domain.
pub fn search_domains() -> Vec<String> {
    std::fs::read_to_string("/etc/resolv.conf")
        .map(|t| parse_search_domains(&t))
        .unwrap_or_default()
}

fn parse_search_domains(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            // The last `domain` or `search` line wins, as in the resolver.
            Some("domain") | Some("search") => {
                out = words.map(|w| w.trim_end_matches('.').to_string()).collect();
            }
            _ => {}
        }
    }
    out
}

impl Dns {
    /// Build from the system configuration. A missing or unreadable
    /// resolv.conf leaves a resolver that fails every query temporarily
    /// (logged by the caller), rather than refusing to start.
    pub fn from_system(timeout: Duration, use_hosts: bool, ipv4_only: bool) -> Self {
        let resolver = TokioResolver::builder_tokio().ok().and_then(|mut b| {
            let opts = b.options_mut();
            opts.timeout = timeout;
            opts.attempts = 2;
            opts.ndots = 0;
            if ipv4_only {
                opts.ip_strategy = hickory_resolver::config::LookupIpStrategy::Ipv4Only;
            }
            opts.use_hosts_file = if use_hosts {
                hickory_resolver::config::ResolveHosts::Always
            } else {
                hickory_resolver::config::ResolveHosts::Never
            };
            b.build().ok()
        });
        Dns {
            resolver,
            ipv4_only,
        }
    }

    fn resolver(&self) -> Result<&TokioResolver, LookupFailure> {
        self.resolver
            .as_ref()
            .ok_or_else(|| LookupFailure::Temporary("no DNS resolver configured".into()))
    }

    fn failure(e: hickory_resolver::net::NetError) -> LookupFailure {
        if e.is_no_records_found() || e.is_nx_domain() {
            LookupFailure::NotFound
        } else {
            LookupFailure::Temporary(e.to_string())
        }
    }

    /// PTR names for an address, without trailing dots.
    pub async fn reverse(&self, ip: IpAddr) -> Result<Vec<String>, LookupFailure> {
        let r = self.resolver()?;
        let lookup = r
            .reverse_lookup(Name::from(ip))
            .await
            .map_err(Self::failure)?;
        Ok(lookup
            .answers()
            .iter()
            .filter_map(|rec| match &rec.data {
                RData::PTR(p) => Some(strip_dot(&p.0)),
                _ => None,
            })
            .collect())
    }

    /// A and AAAA addresses of a name.
    pub async fn addresses(&self, name: &str) -> Result<Vec<IpAddr>, LookupFailure> {
        let r = self.resolver()?;
        let lookup = r.lookup_ip(fqdn(name)).await.map_err(Self::failure)?;
        let v: Vec<IpAddr> = lookup
            .iter()
            .filter(|ip| !(self.ipv4_only && ip.is_ipv6()))
            .collect();
        if v.is_empty() {
            Err(LookupFailure::NotFound)
        } else {
            Ok(v)
        }
    }

    /// A records of a name with the smallest TTL among them; on failure
    /// the RFC 2308 negative TTL (from the SOA) when the answer carried
    /// one. For DNS black lists.
    pub async fn a_with_ttl(
        &self,
        name: &str,
    ) -> Result<(Vec<std::net::Ipv4Addr>, u32), (LookupFailure, Option<u32>)> {
        let r = self.resolver().map_err(|e| (e, None))?;
        match r.ipv4_lookup(fqdn(name)).await {
            Ok(lookup) => {
                let mut ttl = u32::MAX;
                let mut v = Vec::new();
                for rec in lookup.answers() {
                    if let RData::A(a) = &rec.data {
                        v.push(a.0);
                        ttl = ttl.min(rec.ttl);
                    }
                }
                if v.is_empty() {
                    Err((LookupFailure::NotFound, None))
                } else {
                    Ok((v, ttl))
                }
            }
            Err(e) => {
                if e.is_no_records_found() || e.is_nx_domain() {
                    let neg = e.into_soa().map(|soa| soa.ttl.min(soa.data.minimum));
                    Err((LookupFailure::NotFound, neg))
                } else {
                    Err((Self::failure(e), None))
                }
            }
        }
    }

    /// The first character-string of the first TXT record of a name.
    pub async fn txt(&self, name: &str) -> Option<String> {
        let r = self.resolver().ok()?;
        let lookup = r.txt_lookup(fqdn(name)).await.ok()?;
        lookup.answers().iter().find_map(|rec| match &rec.data {
            RData::TXT(t) => t
                .txt_data
                .first()
                .map(|s| String::from_utf8_lossy(&s[..s.len().min(511)]).into_owned()),
            _ => None,
        })
    }

    /// All TXT records of a name, each with its character-strings joined.
    pub async fn txt_records(&self, name: &str) -> Result<Vec<String>, LookupFailure> {
        let r = self.resolver()?;
        // From ASCII as is: selectors may hold underscores.
        let qname = Name::from_ascii(fqdn(name))
            .map_err(|e| LookupFailure::Temporary(format!("bad name {name}: {e}")))?;
        let lookup = r.txt_lookup(qname).await.map_err(Self::failure)?;
        Ok(lookup
            .answers()
            .iter()
            .filter_map(|rec| match &rec.data {
                RData::TXT(t) => Some(
                    t.txt_data
                        .iter()
                        .map(|s| String::from_utf8_lossy(s).into_owned())
                        .collect::<String>(),
                ),
                _ => None,
            })
            .collect())
    }

    /// MX records of a domain, sorted by preference.
    pub async fn mx(&self, domain: &str) -> Result<Vec<Mx>, LookupFailure> {
        let r = self.resolver()?;
        let lookup = r.mx_lookup(fqdn(domain)).await.map_err(Self::failure)?;
        let mut v: Vec<Mx> = lookup
            .answers()
            .iter()
            .filter_map(|rec| match &rec.data {
                RData::MX(mx) => Some(Mx {
                    preference: mx.preference,
                    exchange: strip_dot(&mx.exchange),
                }),
                _ => None,
            })
            .collect();
        v.sort_by_key(|m| m.preference);
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_lines() {
        let t = "nameserver 127.0.0.1\ndomain a.example\nsearch b.example c.example.\n";
        assert_eq!(parse_search_domains(t), vec!["b.example", "c.example"]);
        assert_eq!(
            parse_search_domains("domain x.example\n"),
            vec!["x.example"]
        );
        assert!(parse_search_domains("nameserver ::1\n").is_empty());
    }
}
