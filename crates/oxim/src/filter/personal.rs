//! The `personal` condition: the message was written to this user by a
//! person (Exim's rules: the address, or an alias, in `To:`; no list,
//! daemon or owner in `From:`; no `Precedence: bulk/list/junk`; no list
//! header fields; `Auto-Submitted:` absent or `no`; a non-empty sender).

use super::Env;

/// List header fields (RFC 2369 and 2919) that mark a list message.
const LIST_FIELDS: &[&str] = &[
    "id",
    "help",
    "subscribe",
    "unsubscribe",
    "post",
    "owner",
    "archive",
];

/// From: patterns of mail that is not personal.
const NOT_PERSONAL_FROM: &[&str] = &[
    "^server@",
    "^daemon@",
    "^root@",
    "^listserv@",
    "^majordomo@",
    "^.*?-request@",
    "^owner-[^@]+@",
];

fn field<'h>(h: &'h str, name: &str) -> Option<&'h str> {
    let colon = h.find(':')?;
    h[..colon]
        .trim_end()
        .eq_ignore_ascii_case(name)
        .then(|| &h[colon + 1..])
}

/// Whether `pattern` (`^` starts a caseless regular expression, else an
/// exact address or a substring) matches some field `name`.
fn one_match(headers: &[String], name: &str, addresses: bool, pattern: &str) -> bool {
    let re = if pattern.starts_with('^') {
        regex::RegexBuilder::new(pattern)
            .case_insensitive(true)
            .build()
            .ok()
    } else {
        None
    };
    for h in headers {
        let Some(value) = field(h, name) else {
            continue;
        };
        if addresses {
            for item in oxim_conf::expand::split_addresses(value) {
                // A syntax error ends the scan of this field.
                let Some(a) = oxim_conf::expand::extract_address(item, false) else {
                    break;
                };
                let hit = match &re {
                    Some(re) => re.is_match(&a),
                    None => a.eq_ignore_ascii_case(pattern),
                };
                if hit {
                    return true;
                }
            }
        } else {
            let hit = match &re {
                Some(re) => re.is_match(h),
                None => h.to_lowercase().contains(&pattern.to_lowercase()),
            };
            if hit {
                return true;
            }
        }
    }
    false
}

fn any_match(headers: &[String], name: &str, addresses: bool, patterns: &[String]) -> bool {
    patterns
        .iter()
        .any(|p| one_match(headers, name, addresses, p))
}

pub(super) fn is_personal(env: &Env<'_>, aliases: &[String]) -> bool {
    personal(&env.headers, &env.vars, &env.sender, aliases)
}

/// The test itself, over the message's header fields, the address's
/// variables and the envelope sender.
pub(super) fn personal(
    headers: &[String],
    vars: &crate::vars::Vars,
    sender: &str,
    aliases: &[String],
) -> bool {
    for h in headers {
        if let Some(colon) = h.find(':') {
            let name = h[..colon].to_ascii_lowercase();
            if let Some(rest) = name.strip_prefix("list-") {
                if LIST_FIELDS.contains(&rest) {
                    return false;
                }
            }
        }
        if let Some(v) = field(h, "auto-submitted") {
            if !v.trim().eq_ignore_ascii_case("no") {
                return false;
            }
        }
    }
    let var = |n: &str| vars.get(n).unwrap_or("").to_string();
    let (lp, domain) = (var("local_part"), var("domain"));
    let mut selves = vec![format!("{lp}@{domain}")];
    let (prefix, suffix) = (var("local_part_prefix"), var("local_part_suffix"));
    if !prefix.is_empty() || !suffix.is_empty() {
        selves.push(format!("{prefix}{lp}{suffix}@{domain}"));
    }
    let mut to_patterns: Vec<String> = aliases.to_vec();
    to_patterns.extend(selves.iter().cloned());
    let mut from_patterns: Vec<String> = aliases.to_vec();
    from_patterns.extend(NOT_PERSONAL_FROM.iter().map(|s| s.to_string()));
    from_patterns.extend(selves);
    let precedence: Vec<String> = ["bulk", "list", "junk"].map(String::from).to_vec();
    any_match(headers, "to", true, &to_patterns)
        && !any_match(headers, "from", true, &from_patterns)
        && !any_match(headers, "precedence", false, &precedence)
        && !sender.is_empty()
}
