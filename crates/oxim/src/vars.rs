//! Expansion variables: the values `$name` takes in string expansions.
//!
//! Values are plain data; the expander never re-expands them, so text from
//! the network (HELO names, addresses) stays text.

use std::collections::HashMap;

use oxim_conf::ExpandContext;

/// A set of variables for one expansion context (a connection, a message, an
/// address being routed). Cheap to clone and extend.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    map: HashMap<String, String>,
    /// The message's header fields, for `$h_name:` and friends.
    headers: Option<std::sync::Arc<Vec<String>>>,
    /// `$0`, `$1`, ... set outside any `match` (an authenticator's data).
    numeric: Vec<String>,
    /// The delivery's state for the `first_delivery` condition (and
    /// filters' `first_delivery`, `manually_thawed`).
    first_delivery: Option<bool>,
    manually_thawed: bool,
    /// The DKIM verification statuses the `dkim_status` condition matches:
    /// the current signature's in the DKIM ACL, all signatures' after it.
    dkim_status: Option<Vec<String>>,
    /// The public (mechanism) name of the authenticator the client used
    /// (Exim's `sender_host_auth_pubname`, no variable of its own), for
    /// `${authresults}`.
    auth_pubname: Option<String>,
}

impl Vars {
    pub fn new() -> Self {
        Vars::default()
    }

    /// The public name of the authenticator that authenticated the client.
    pub fn set_auth_pubname(&mut self, name: Option<String>) -> &mut Self {
        self.auth_pubname = name;
        self
    }

    /// Set (or replace) a variable.
    pub fn set(&mut self, name: &str, value: impl Into<String>) -> &mut Self {
        self.map.insert(name.to_string(), value.into());
        self
    }

    /// Remove a variable (it expands to nothing again).
    pub fn unset(&mut self, name: &str) -> &mut Self {
        self.map.remove(name);
        self
    }

    /// Take over the ACL variables (`$acl_c*`, `$acl_m*`) `other` has:
    /// they outlive the ACL run that set them (the MAIL and RCPT ACLs run
    /// on a copy of the session's variables).
    pub fn keep_acl_vars(&mut self, other: &Vars) {
        for (k, v) in &other.map {
            if k.starts_with("acl_c") || k.starts_with("acl_m") {
                self.map.insert(k.clone(), v.clone());
            }
        }
    }

    /// Forget the message's ACL variables (`$acl_m*`): a new transaction
    /// starts (Exim resets them with MAIL).
    pub fn clear_acl_m(&mut self) {
        self.map.retain(|k, _| !k.starts_with("acl_m"));
    }

    /// Set `$local_part`, `$domain` and friends for an address.
    pub fn set_address(&mut self, address: &str) -> &mut Self {
        let (lp, dom) = split_address(address);
        self.set("local_part", lp);
        self.set("domain", dom);
        self.set("address", address)
    }

    /// The header fields `$h_*` variables read (each with its name and
    /// final newline).
    pub fn set_headers(&mut self, headers: Vec<String>) -> &mut Self {
        self.headers = Some(std::sync::Arc::new(headers));
        self
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.map.get(name).map(String::as_str)
    }

    /// The header fields set with [`Vars::set_headers`].
    pub fn headers(&self) -> Vec<String> {
        self.headers.as_deref().cloned().unwrap_or_default()
    }

    /// Record whether this is the message's first delivery attempt and
    /// whether it was thawed by hand.
    pub fn set_delivery_state(&mut self, first: bool, manually_thawed: bool) -> &mut Self {
        self.first_delivery = Some(first);
        self.manually_thawed = manually_thawed;
        self
    }

    /// The state set by [`Vars::set_delivery_state`]: (first delivery,
    /// manually thawed), None when no delivery is running.
    pub fn delivery_state(&self) -> Option<(bool, bool)> {
        self.first_delivery.map(|f| (f, self.manually_thawed))
    }

    /// Set the statuses `dkim_status` matches (None: no verification).
    pub fn set_dkim_status(&mut self, statuses: Option<Vec<String>>) -> &mut Self {
        self.dkim_status = statuses;
        self
    }

    /// The statuses set with [`Vars::set_dkim_status`].
    pub fn dkim_status(&self) -> Option<&[String]> {
        self.dkim_status.as_deref()
    }

    /// Set `$0`, `$1`, ... (`items[0]` is `$0`); empty clears them.
    pub fn set_numeric(&mut self, items: Vec<String>) -> &mut Self {
        self.numeric = items;
        self
    }
}

/// Split `local@domain` at the last `@` (a quoted local part may contain `@`).
pub fn split_address(address: &str) -> (&str, &str) {
    match address.rfind('@') {
        Some(p) => (&address[..p], &address[p + 1..]),
        None => (address, ""),
    }
}

fn tod(name: &str) -> Option<String> {
    let now = crate::time::LocalTime::now();
    Some(match name {
        "tod_log" => now.log_format(),
        "tod_full" => now.rfc2822(),
        "tod_bsdinbox" => now.bsd_inbox(),
        "tod_epoch" => now.epoch_secs().to_string(),
        _ => return None,
    })
}

/// Set (to `1`) while the non-SMTP ACL runs: `${authresults}` then has
/// Exim's `local=pass` element. Not an expansion variable.
pub const AUTHENTICATION_LOCAL: &str = " authentication_local";

impl ExpandContext for Vars {
    /// `local` in the non-SMTP ACL (the message came from a local
    /// process), `iprev` when the client's name was looked up, `auth` when
    /// it authenticated.
    fn auth_results(&self, sysname: &str) -> Option<String> {
        let get = |n: &str| self.map.get(n).filter(|v| !v.is_empty());
        let mut g = String::new();
        if get(AUTHENTICATION_LOCAL).is_some() {
            g.push_str(&format!(";\n\tlocal=pass (non-smtp, {sysname})"));
            if let Some(id) = get("authenticated_id") {
                g.push_str(&format!(" u={id}"));
            }
        }
        let iprev = if let Some(n) = get("sender_host_name") {
            Some(format!(";\n\tiprev=pass ({n})"))
        } else if get("host_lookup_deferred").is_some_and(|v| v == "1") {
            Some(";\n\tiprev=temperror".to_string())
        } else if get("host_lookup_failed").is_some_and(|v| v == "1") {
            Some(";\n\tiprev=fail".to_string())
        } else {
            None
        };
        if let Some(i) = iprev {
            g.push_str(&i);
            if let Some(a) = get("sender_host_address") {
                g.push_str(&format!(" smtp.remote-ip={a}"));
            }
        }
        if get("sender_host_authenticated").is_some() {
            let pubname = self.auth_pubname.as_deref().unwrap_or("");
            g.push_str(&format!(";\n\tauth=pass ({pubname}"));
            let id = get("authenticated_id");
            if pubname == "tls" {
                match id {
                    Some(id) => g.push_str(&format!(") x509.auth={id}")),
                    None => g.push_str(") reason=x509.auth"),
                }
            } else {
                match id {
                    Some(id) => g.push_str(&format!(") smtp.auth={id}")),
                    None => g.push_str(", no id saved)"),
                }
            }
            if let Some(s) = get("authenticated_sender") {
                g.push_str(&format!(" smtp.mailfrom={s}"));
            }
        }
        Some(g)
    }

    fn numeric_vars(&self) -> Vec<String> {
        self.numeric.clone()
    }

    fn state_flag(&self, name: &str) -> Option<bool> {
        match name {
            "first_delivery" => self.first_delivery,
            _ => None,
        }
    }

    fn var(&self, name: &str) -> Option<String> {
        if let Some(v) = self.map.get(name) {
            return Some(v.clone());
        }
        if let Some(h) = &self.headers {
            if let Some(v) = oxim_conf::header_variable(h.iter().map(String::as_str), name) {
                return Some(v);
            }
        }
        match name {
            "pid" => Some(std::process::id().to_string()),
            // Derived from $sender_address, as Exim's are.
            "sender_address_domain" | "sender_address_local_part" => {
                let s = self.map.get("sender_address")?;
                let (lp, dom) = split_address(s);
                Some(if name.ends_with("domain") { dom } else { lp }.to_string())
            }
            n if n.starts_with("tod_") => tod(n),
            _ => None,
        }
    }

    fn read_file(&self, path: &str) -> Option<String> {
        std::fs::read_to_string(path).ok()
    }

    fn file_exists(&self, path: &str) -> bool {
        std::path::Path::new(path).exists()
    }

    fn entry_kind(&self, path: &str) -> Option<oxim_conf::EntryKind> {
        let m = std::fs::symlink_metadata(path).ok()?;
        Some(if m.is_file() {
            oxim_conf::EntryKind::File
        } else if m.is_dir() {
            oxim_conf::EntryKind::Dir
        } else {
            oxim_conf::EntryKind::Other
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_split() {
        assert_eq!(split_address("a@b.c"), ("a", "b.c"));
        assert_eq!(split_address("\"x@y\"@d"), ("\"x@y\"", "d"));
        assert_eq!(split_address("local"), ("local", ""));
    }
}
