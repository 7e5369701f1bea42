//! Port numbers in munged output: the harness's own ports by name
//! (`PORT_D`...), the other ends' numbered in order of appearance.

use regex::{Captures, Regex};

use super::rules::PATTERNS;
use super::Munger;
use crate::subst::PORTS;

impl Munger {
    pub(super) fn port_name(port: &str) -> Option<&'static str> {
        let n: u16 = port.parse().ok()?;
        if n == crate::subst::PORT_DYNAMIC {
            return Some("<dynamic port>");
        }
        PORTS.iter().find(|(_, p)| *p == n).map(|(name, _)| *name)
    }

    /// The number standing for `raw` (assigned from 10001 on first sight).
    fn port_value(&mut self, raw: &str) -> String {
        if let Some(v) = self.ports.get(raw) {
            return v.clone();
        }
        let v = self.next_port.to_string();
        self.next_port += 1;
        self.ports.insert(raw.to_string(), v.clone());
        v
    }

    /// runtest's "Port numbers": `Port: N`, `(port=N`, `Connection
    /// request from X port N` and the first `[ip]:N` of a line (except on
    /// lines about the harness's own listeners and deliveries) become
    /// numbers from 10001 in order of appearance.
    pub(super) fn number_ports(&mut self, l: &str) -> String {
        let p = &*PATTERNS;
        let mut l = l.to_string();
        for pat in [&p.port_colon, &p.port_eq, &p.port_request] {
            if let Some(c) = pat.captures(&l) {
                let (whole, num) = (c.get(0).expect("match"), c.get(2).expect("group"));
                let v = self.port_value(num.as_str());
                l = format!("{}{}{v}{}", &l[..whole.start()], &c[1], &l[num.end()..]);
            }
        }
        let skip = p.port_skip.is_match(&l);
        if !skip {
            if let Some(c) = p.ip_port.captures(&l) {
                let num = c.get(2).expect("group");
                let v = self.port_value(num.as_str());
                l = format!("{}{v}{}", &l[..num.start()], &l[num.end()..]);
            }
        }
        p.host_address.replace(&l, "$1 ${2}9999").into_owned()
    }

    /// runtest's log-file port names: the daemon's ports after ` I=[..]:`,
    /// in `=>`/`->`/`==` lines and before ` Connection refused`; PORT_S
    /// after any `]:` and `port <`; other ` I=` ports share one number.
    pub(super) fn name_log_ports(&mut self, l: &str) -> String {
        let p = &*PATTERNS;
        let named = |n: &str| Self::port_name(n).filter(|x| x.starts_with("PORT_"));
        let mut out = String::with_capacity(l.len());
        let mut last = 0;
        let delivery = p.log_delivery.is_match(l);
        for c in p.bracket_port.captures_iter(l) {
            let num = c.get(2).expect("group");
            let before = &l[..num.start()];
            let after = &l[num.end()..];
            let name = match named(num.as_str()) {
                Some("PORT_S") => Some("PORT_S"),
                Some(n) if before.ends_with(&c[1]) && c[1].starts_with(" I=") => {
                    matches!(n, "PORT_D" | "PORT_D2").then_some(n)
                }
                Some(n) if after.starts_with(" Connection refused") => Some(n),
                Some(n) if delivery && n.starts_with("PORT_D") => Some(n),
                _ => None,
            };
            if let Some(n) = name {
                out.push_str(&l[last..num.start()]);
                out.push_str(n);
                last = num.end();
            }
        }
        out.push_str(&l[last..]);
        let mut l = p.port_lt.replace_all(&out, "${1}PORT_S").into_owned();
        l = p.plp_port.replace(&l, "${1}PORT_D").into_owned();
        // Any other ` I=` port: one shared number (runtest keys it on its
        // own name).
        if let Some(c) = p.incoming_port.captures(&l) {
            let num = c.get(2).expect("group");
            let v = self.port_value("$0");
            l = format!("{}{v}{}", &l[..num.start()], &l[num.end()..]);
        }
        l
    }

    /// Like [`Self::name_ports`] for a pattern with a third group kept
    /// after the port; only the harness's own ports are named.
    pub(super) fn name_key_ports(pat: &Regex, l: &str) -> String {
        pat.replace_all(l, |c: &Captures<'_>| {
            match Self::port_name(&c[2]).filter(|n| n.starts_with("PORT")) {
                Some(name) => format!("{}{name}{}", &c[1], &c[3]),
                None => c[0].to_string(),
            }
        })
        .into_owned()
    }

    pub(super) fn name_ports(pat: &Regex, l: &str) -> String {
        pat.replace_all(l, |c: &Captures<'_>| match Self::port_name(&c[2]) {
            Some(name) => format!("{}{}", &c[1], name),
            None => c[0].to_string(),
        })
        .into_owned()
    }
}
