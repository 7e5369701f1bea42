//! Access control lists: `begin acl` sections and inline ACL text.

/// An ACL verb.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AclVerb {
    /// `accept`
    Accept,
    /// `defer`
    Defer,
    /// `deny` (also what the trivial ACL `reject` means)
    Deny,
    /// `discard`
    Discard,
    /// `drop`
    Drop,
    /// `require`
    Require,
    /// `warn`
    Warn,
}

impl AclVerb {
    /// Parses a verb name (case-sensitive, as in Exim).
    pub fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "accept" => AclVerb::Accept,
            "defer" => AclVerb::Defer,
            "deny" => AclVerb::Deny,
            "discard" => AclVerb::Discard,
            "drop" => AclVerb::Drop,
            "require" => AclVerb::Require,
            "warn" => AclVerb::Warn,
            _ => return None,
        })
    }

    /// The verb's name.
    pub fn name(self) -> &'static str {
        match self {
            AclVerb::Accept => "accept",
            AclVerb::Defer => "defer",
            AclVerb::Deny => "deny",
            AclVerb::Discard => "discard",
            AclVerb::Drop => "drop",
            AclVerb::Require => "require",
            AclVerb::Warn => "warn",
        }
    }
}

/// One condition or modifier of an ACL statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclCondition {
    /// Condition/modifier name (`hosts`, `condition`, `verify`, `message`,
    /// `control`, `set`, `endpass`, ...).
    pub name: String,
    /// The raw, unexpanded value (rest of the line after `=`). For `set`
    /// it is `variable = value` (e.g. `acl_m0 = x`); for `endpass` it is
    /// empty.
    pub value: String,
    /// Preceded by `!`.
    pub negated: bool,
}

/// One ACL statement: a verb and its conditions in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclStatement {
    /// The verb.
    pub verb: AclVerb,
    /// Conditions and modifiers, in the order written.
    pub conditions: Vec<AclCondition>,
    /// File and line of the verb (ACLs from the configuration file; inline
    /// ACLs have none).
    pub source: Option<(std::sync::Arc<str>, usize)>,
}

/// A named ACL (or an inline one, whose name is its text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acl {
    /// ACL name.
    pub name: String,
    /// Statements in order.
    pub statements: Vec<AclStatement>,
}

/// Known conditions and modifiers (Exim's table). `true` marks ones that
/// may not be negated (modifiers).
const CONDITIONS: &[(&str, bool)] = &[
    ("acl", false),
    ("add_header", true),
    ("atrn_domains", false),
    ("authenticated", false),
    ("bmi_optin", true),
    ("condition", false),
    ("continue", true),
    ("control", true),
    ("dcc", false),
    ("decode", false),
    ("delay", true),
    ("dkim_signers", false),
    ("dkim_status", false),
    ("dmarc_status", false),
    ("dnslists", false),
    ("domains", false),
    ("encrypted", false),
    ("endpass", true),
    ("hosts", false),
    ("local_parts", false),
    ("log_message", true),
    ("log_reject_target", true),
    ("logwrite", true),
    ("malware", false),
    ("message", true),
    ("mime_regex", false),
    ("queue", true),
    ("ratelimit", false),
    ("recipients", false),
    ("regex", false),
    ("remove_header", true),
    ("seen", false),
    ("sender_domains", false),
    ("senders", false),
    ("set", true),
    ("spam", false),
    ("spf", false),
    ("spf_guess", false),
    ("udpsend", true),
    ("verify", false),
];

/// Exim ACL conditions and modifiers oxim does not implement: a
/// configuration that uses one is refused when it is read ("... is not
/// supported by oxim", with file and line), never accepted and ignored.
pub const UNSUPPORTED_CONDITIONS: &[&str] = &[
    "atrn_domains",
    "bmi_optin",
    "dcc",
    "decode",
    "dmarc_status",
    "log_reject_target",
    "malware",
    "mime_regex",
    "queue",
    "ratelimit",
    "regex",
    "seen",
    "spam",
    "spf",
    "spf_guess",
    "udpsend",
];

/// Exim's `control =` names that oxim implements.
pub const SUPPORTED_CONTROLS: &[&str] = &[
    "allow_auth_unadvertised",
    "caseful_local_part",
    "caselower_local_part",
    "dkim_disable_verify",
    "enforce_sync",
    "fakedefer",
    "fakereject",
    "freeze",
    "no_callout_flush",
    "no_delay_flush",
    "no_enforce_sync",
    "no_multiline_responses",
    "no_pipelining",
    "queue",
    "queue_only",
    "submission",
    "suppress_local_fixups",
];

/// Exim's `control =` names that oxim knows but does not implement.
pub const UNSUPPORTED_CONTROLS: &[&str] = &[
    "cutthrough_delivery",
    "debug",
    "dmarc_disable_verify",
    "dmarc_enable_forensic",
    "dscp",
    "error",
    "no_mbox_unspool",
    "utf8_downconvert",
    "wellknown",
];

/// Checks a `control =` value written out in full (one with `$` is
/// checked when it is expanded).
fn check_control(value: &str) -> Result<(), String> {
    let v = value.trim();
    if v.contains('$') {
        return Ok(());
    }
    let name = v.split('/').next().unwrap_or("").trim();
    if SUPPORTED_CONTROLS.contains(&name) {
        Ok(())
    } else if UNSUPPORTED_CONTROLS.contains(&name) {
        Err(format!("control \"{name}\" is not supported by oxim"))
    } else {
        Err(format!("unknown control modifier \"{name}\""))
    }
}

/// Whether `name` is a known ACL condition or modifier.
pub fn is_condition(name: &str) -> bool {
    CONDITIONS.iter().any(|(n, _)| *n == name)
}

/// Incremental ACL text parser: feed logical lines (without the
/// `name:` header lines).
#[derive(Debug, Default)]
pub(crate) struct AclBuilder {
    pub(crate) statements: Vec<AclStatement>,
}

fn read_name(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    if !s.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return ("", s);
    }
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    (&s[..end], s[end..].trim_start())
}

impl AclBuilder {
    /// Handles one logical line of ACL text. Errors are Exim's message text.
    pub(crate) fn line(&mut self, text: &str) -> Result<(), String> {
        self.line_at(text, None)
    }

    /// [`AclBuilder::line`] for a line read from `source` (file, line).
    pub(crate) fn line_at(
        &mut self,
        text: &str,
        source: Option<(std::sync::Arc<str>, usize)>,
    ) -> Result<(), String> {
        let saveline = text.trim();
        let mut s = saveline;
        let negated = s.starts_with('!');
        if negated {
            s = &s[1..];
        }
        let (word, rest) = read_name(s);
        if let Some(verb) = AclVerb::from_name(word) {
            if negated {
                return Err(format!("malformed ACL line \"{saveline}\""));
            }
            self.statements.push(AclStatement {
                verb,
                conditions: Vec::new(),
                source,
            });
            if rest.is_empty() {
                return Ok(());
            }
            let cond = parse_condition(rest, saveline)?;
            if let Some(st) = self.statements.last_mut() {
                st.conditions.push(cond);
            }
            return Ok(());
        }
        let Some(st) = self.statements.last_mut() else {
            return Err(format!("unknown ACL verb \"{word}\" in \"{saveline}\""));
        };
        st.conditions.push(parse_condition(saveline, saveline)?);
        Ok(())
    }
}

/// Parses `[!]name = value` (or `endpass`, or `set acl_xx = value`).
/// `saveline` is the whole logical line, used in error messages.
fn parse_condition(s: &str, saveline: &str) -> Result<AclCondition, String> {
    let mut t = s.trim_start();
    let negated = t.starts_with('!');
    if negated {
        t = &t[1..];
    }
    let (name, rest) = read_name(t);
    let Some(&(_, modifier)) = CONDITIONS.iter().find(|(n, _)| *n == name) else {
        return Err(format!("unknown ACL condition/modifier in \"{saveline}\""));
    };
    if UNSUPPORTED_CONDITIONS.contains(&name) {
        return Err(format!("ACL condition \"{name}\" is not supported by oxim"));
    }
    if negated && modifier {
        return Err(format!(
            "ACL error: negation is not allowed with \"{name}\""
        ));
    }
    if name == "endpass" {
        return Ok(AclCondition {
            name: name.to_string(),
            value: String::new(),
            negated,
        });
    }
    let mut rest = rest;
    let mut prefix = String::new();
    if name == "set" {
        let end = rest
            .find(|c: char| c == '=' || c.is_whitespace())
            .unwrap_or(rest.len());
        let var = &rest[..end];
        // The DKIM ACL may override the verification's verdict.
        let dkim = var == "dkim_verify_status" || var == "dkim_verify_reason";
        if !(dkim || var.starts_with("acl_c") || var.starts_with("acl_m")) {
            return Err(format!(
                "invalid variable name after \"set\" in ACL modifier \"set {rest}\" (must start \"acl_c\" or \"acl_m\")"
            ));
        }
        if !dkim && !var[5..].starts_with(|c: char| c.is_ascii_digit() || c == '_') {
            return Err(format!(
                "invalid variable name after \"set\" in ACL modifier \"set {rest}\" (digit or underscore must follow acl_c or acl_m)"
            ));
        }
        if let Some(bad) = var[if dkim { 0 } else { 5 }..]
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
        {
            return Err(format!(
                "invalid character \"{bad}\" in variable name in ACL modifier \"set {rest}\""
            ));
        }
        prefix = format!("{var} = ");
        rest = rest[end..].trim_start();
    }
    let Some(value) = rest.strip_prefix('=') else {
        let kind = if modifier { "modifier" } else { "condition" };
        return Err(format!("\"=\" missing after ACL \"{name}\" {kind}"));
    };
    if name == "control" {
        check_control(value)?;
    }
    Ok(AclCondition {
        name: name.to_string(),
        value: format!("{prefix}{}", value.trim()),
        negated,
    })
}

/// Parses inline ACL text (as given in an `acl_smtp_*` option): statements
/// separated by newlines.
pub fn parse_inline(name: &str, text: &str) -> Result<Acl, String> {
    let mut b = AclBuilder::default();
    for line in text.split('\n') {
        if line.trim().is_empty() {
            continue;
        }
        b.line(line)?;
    }
    Ok(Acl {
        name: name.to_string(),
        statements: b.statements,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_acl_with_condition() {
        let acl = parse_inline("x", "accept logwrite=cmd '$smtp_command'").unwrap();
        assert_eq!(acl.statements.len(), 1);
        assert_eq!(acl.statements[0].verb, AclVerb::Accept);
        assert_eq!(acl.statements[0].conditions[0].name, "logwrite");
        assert_eq!(acl.statements[0].conditions[0].value, "cmd '$smtp_command'");
    }

    #[test]
    fn negation_and_set() {
        let acl = parse_inline("x", "deny !hosts = 1.2.3.4\n set acl_m0 = abc\n endpass").unwrap();
        let c = &acl.statements[0].conditions;
        assert!(c[0].negated);
        assert_eq!(c[1].value, "acl_m0 = abc");
        assert_eq!(c[2].name, "endpass");
        assert!(parse_inline("x", "accept colour = red").is_err());
        assert!(parse_inline("x", "hosts = 1").is_err());
        assert!(parse_inline("x", "accept hosts 1").is_err());
    }
}
