//! `-brw`: how the rules rewrite one address in each place it may appear.

use super::*;

impl Env<'_> {
    /// The output of `-brw address` (Exim's `rewrite_test`), one line each;
    /// what the rules log goes to `notes`.
    pub fn test(&self, rules: &Rules, s: &str, notes: &mut Vec<Note>) -> String {
        let mut out = String::new();
        if rules.exist == 0 {
            return "No rewrite rules are defined\n".into();
        }
        let mut done_smtp = false;
        if rules.exist & flag::SMTP != 0 {
            if let Some(new) =
                self.rewrite_one(rules, s, flag::SMTP | flag::SMTP_SENDER, None, None, notes)
            {
                if new.is_empty() {
                    out.push_str("    SMTP: <>\n");
                } else {
                    out.push_str(&format!("    SMTP: {new}\n"));
                }
                done_smtp = true;
            }
        }
        if rules.exist & !flag::SMTP & flag::ALL == 0 {
            return out;
        }
        let s = if find_at(s).is_none() {
            format!("{s}@{}", self.qualify_recipient)
        } else {
            s.to_string()
        };
        let p = match extract_address(&s, false, true, &mut Group::default()) {
            Ok(p) => p,
            Err(e) => {
                if !done_smtp {
                    let mut c = e.chars();
                    let first = c.next().map(|c| c.to_ascii_uppercase()).unwrap_or(' ');
                    out.push_str(&format!("Syntax error in {s}\n{first}{}\n", c.as_str()));
                }
                return out;
            }
        };
        const NAMES: [&str; 8] = [
            "  sender", "    from", "      to", "      cc", "     bcc", "reply-to", "env-from",
            "  env-to",
        ];
        for (i, name) in NAMES.iter().enumerate() {
            let f = 1u32 << i;
            let mut whole = false;
            let new = self
                .rewrite_one(rules, &p.address, f, Some(&mut whole), None, notes)
                .unwrap_or_else(|| p.address.clone());
            if new.is_empty() {
                out.push_str(&format!("{name}: <>\n"));
            } else if whole || f & flag::ALL_HEADERS == 0 {
                out.push_str(&format!("{name}: {new}\n"));
            } else {
                out.push_str(&format!("{name}: {}{new}{}\n", &s[..p.start], &s[p.end..]));
            }
        }
        out
    }
}
