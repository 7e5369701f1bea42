//! Testing a filter's conditions: the comparisons (caseless unless
//! written in upper case), regular expressions that set `$1`..., numeric
//! `above`/`below` with K and M, `personal`, `foranyaddress`.

use oxim_conf::filter::{Compare, CondKind, Condition};

use super::{c_integer, personal, quoted, Run, Verdict};

/// A number as C's `%i` reads it (decimal, `0x` hex, `0` octal), with an
/// optional K or M, then only white space.
fn get_number(s: &str) -> Option<i64> {
    let t = s.trim_start();
    let b = t.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'-' | b'+')));
    let hex = b.get(i) == Some(&b'0') && matches!(b.get(i + 1), Some(b'x' | b'X'));
    if hex {
        i += 2;
    }
    while i < b.len()
        && (if hex {
            b[i].is_ascii_hexdigit()
        } else {
            b[i].is_ascii_digit()
        })
    {
        i += 1;
    }
    let mut v = c_integer(&t[..i])?;
    let mut rest = &t[i..];
    if let Some(r) = rest.strip_prefix(['k', 'K']) {
        v *= 1024;
        rest = r;
    }
    if let Some(r) = rest.strip_prefix(['m', 'M']) {
        v *= 1024 * 1024;
        rest = r;
    }
    rest.trim().is_empty().then_some(v)
}

impl Run<'_> {
    pub(super) fn condition(&mut self, c: &Condition) -> Result<bool, Verdict> {
        let v = match &c.kind {
            CondKind::And(l, r) => self.condition(l)? && self.condition(r)?,
            CondKind::Or(l, r) => self.condition(l)? || self.condition(r)?,
            CondKind::Personal { aliases } => {
                let mut expanded = Vec::new();
                for a in aliases {
                    expanded.push(a.clone());
                }
                !self.env.system && personal::is_personal(&self.env, &expanded)
            }
            CondKind::Delivered => self.delivered,
            CondKind::ErrorMessage => self.env.message && self.env.sender.is_empty(),
            CondKind::FirstDelivery => {
                self.env.testing || !self.env.message || self.env.first_delivery
            }
            CondKind::ManuallyThawed => self.env.message && self.env.manually_thawed,
            CondKind::ForAnyAddress { list, cond } => {
                let l = self.expand(list).map_err(|e| {
                    Verdict::Error(format!(
                        "failed to expand {} in filter file: {e}",
                        quoted(list)
                    ))
                })?;
                let mut found = false;
                for item in oxim_conf::expand::split_addresses(&l) {
                    let Some(a) = oxim_conf::expand::extract_address(item, true) else {
                        continue;
                    };
                    if a.is_empty() {
                        continue;
                    }
                    self.thisaddress = Some(a);
                    self.sync_vars();
                    if self.condition(cond)? {
                        found = true;
                        break;
                    }
                }
                found
            }
            CondKind::Compare { op, left, right } => {
                let mut exp = Vec::with_capacity(2);
                for s in [left, right] {
                    exp.push(self.expand(s).map_err(|e| {
                        Verdict::Error(format!(
                            "failed to expand {} in filter file: {e}",
                            quoted(s)
                        ))
                    })?);
                }
                self.compare(*op, &exp[0], &exp[1])?
            }
        };
        Ok(v != c.negated)
    }

    fn compare(&mut self, op: Compare, a: &str, b: &str) -> Result<bool, Verdict> {
        let (al, bl) = (a.to_lowercase(), b.to_lowercase());
        Ok(match op {
            Compare::Is => al == bl,
            Compare::IsCase => a == b,
            Compare::Contains => al.contains(&bl),
            Compare::ContainsCase => a.contains(b),
            Compare::Begins => al.starts_with(&bl),
            Compare::BeginsCase => a.starts_with(b),
            Compare::Ends => al.ends_with(&bl),
            Compare::EndsCase => a.ends_with(b),
            Compare::Matches | Compare::MatchesCase => {
                let re = regex::RegexBuilder::new(b)
                    .case_insensitive(op == Compare::Matches)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| {
                        Verdict::Error(format!("regular expression error in \"{b}\": {e}"))
                    })?;
                match re.captures(a) {
                    Some(caps) => {
                        self.numeric = caps
                            .iter()
                            .map(|m| m.map(|m| m.as_str().to_string()).unwrap_or_default())
                            .collect();
                        self.sync_vars();
                        true
                    }
                    None => false,
                }
            }
            Compare::Above | Compare::Below => {
                let mut v = [0i64; 2];
                for (i, s) in [a, b].into_iter().enumerate() {
                    v[i] = get_number(s).ok_or_else(|| {
                        Verdict::Error(format!("malformed numerical string {}", quoted(s)))
                    })?;
                }
                if op == Compare::Above {
                    v[0] > v[1]
                } else {
                    v[0] < v[1]
                }
            }
        })
    }
}
