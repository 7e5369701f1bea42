//! Expansion conditions (`${if cond{yes}{no}}`, `filter`, `forany`...).

use std::net::IpAddr;

use super::*;

impl Expander<'_> {
    /// Parses and evaluates a condition. In `skip` mode only parses.
    pub(super) fn condition(
        &mut self,
        s: &[u8],
        pos: &mut usize,
        skip: bool,
    ) -> Result<bool, ExpandError> {
        self.enter()?;
        skip_ws(s, pos);
        let mut negate = false;
        while s.get(*pos) == Some(&b'!') {
            negate = !negate;
            *pos += 1;
            skip_ws(s, pos);
        }
        let name = if s.get(*pos).is_some_and(|c| c.is_ascii_alphabetic()) {
            read_name(s, pos)
        } else {
            let start = *pos;
            while *pos < s.len() && b"=<>".contains(&s[*pos]) {
                *pos += 1;
            }
            String::from_utf8_lossy(&s[start..*pos]).into_owned()
        };
        let r = match name.as_str() {
            "def" => {
                if s.get(*pos) != Some(&b':') {
                    return Err(syntax("\":\" expected after \"def\""));
                }
                *pos += 1;
                let var = read_name(s, pos);
                let var = if is_header_var(&var) {
                    self.header_name(&var, s, pos)
                } else {
                    var
                };
                if var.is_empty() {
                    return Err(syntax("variable name missing after \"def:\""));
                }
                if skip {
                    false
                } else if var.bytes().all(|c| c.is_ascii_digit()) || var == "value" {
                    !self.variable(&var, false)?.is_empty()
                } else {
                    match self.ctx.var(&var) {
                        Some(v) => !v.is_empty(),
                        None if is_header_var(&var) || crate::vars::is_known_variable(&var) => {
                            false
                        }
                        None => {
                            return Err(syntax(format!(
                                "unknown variable \"{var}\" after \"def:\""
                            )))
                        }
                    }
                }
            }
            "true" => true,
            "false" => false,
            "exists" | "isip" | "isip4" | "isip6" | "bool" | "bool_lax" => {
                let a = self.args(s, pos, 1, skip, &name)?;
                if skip {
                    false
                } else {
                    let v = bytes_to_string(a[0].clone());
                    match name.as_str() {
                        "exists" => self.ctx.file_exists(&v),
                        "isip" => v.parse::<IpAddr>().is_ok(),
                        "isip4" => matches!(v.parse::<IpAddr>(), Ok(IpAddr::V4(_))),
                        "isip6" => matches!(v.parse::<IpAddr>(), Ok(IpAddr::V6(_))),
                        "bool" => strict_bool(&v)?,
                        _ => lax_bool(&v),
                    }
                }
            }
            "match_domain" | "match_address" | "match_local_part" | "match_ip" => {
                let a = self.args(s, pos, 2, skip, &name)?;
                if skip {
                    false
                } else {
                    let Some(cfg) = self.cfg else {
                        return Err(syntax(format!(
                            "\"{name}\" needs the configuration (use expand_with_config)"
                        )));
                    };
                    let subject = bytes_to_string(a[0].clone());
                    let list = bytes_to_string(a[1].clone());
                    let r = match name.as_str() {
                        "match_domain" => {
                            crate::lists::match_domain(&list, &subject, cfg, self.ctx)
                        }
                        "match_address" => {
                            crate::lists::match_address(&list, &subject, cfg, self.ctx)
                        }
                        "match_local_part" => {
                            crate::lists::match_local_part(&list, &subject, cfg, self.ctx)
                        }
                        // An empty address is "no host" (local
                        // submission), which only an empty item matches.
                        _ if subject.trim().is_empty() => {
                            crate::lists::match_no_host(&list, cfg, self.ctx)
                        }
                        _ => match subject.trim().parse::<IpAddr>() {
                            Ok(ip) => crate::lists::match_host(&list, ip, None, cfg, self.ctx),
                            Err(_) => {
                                return Err(syntax(format!("\"{subject}\" is not an IP address")))
                            }
                        },
                    };
                    r.map_err(|e| syntax(e.to_string()))?
                }
            }
            "forany" | "forall" => {
                let list = self.args(s, pos, 1, skip, &name)?.remove(0);
                skip_ws(s, pos);
                if s.get(*pos) != Some(&b'{') {
                    return Err(syntax(format!("missing {{ after \"{name}\"")));
                }
                *pos += 1;
                let body = *pos;
                let mut end = body;
                self.condition(s, &mut end, true)?;
                skip_ws(s, &mut end);
                if s.get(end) != Some(&b'}') {
                    return Err(syntax(format!(
                        "missing }} at end of condition inside \"{name}\""
                    )));
                }
                *pos = end + 1;
                if skip {
                    false
                } else {
                    let any = name == "forany";
                    let list = bytes_to_string(list);
                    let saved = self.item.take();
                    let mut result = !any;
                    let mut failure = None;
                    for item in crate::lists::ListIter::new(&list) {
                        self.item = Some(item);
                        let mut p = body;
                        match self.condition(s, &mut p, false) {
                            Ok(v) if v == any => {
                                result = any;
                                break;
                            }
                            Ok(_) => {}
                            Err(e) => {
                                failure = Some(e);
                                break;
                            }
                        }
                    }
                    self.item = saved;
                    if let Some(e) = failure {
                        return Err(e);
                    }
                    result
                }
            }
            "inlist" | "inlisti" => {
                let a = self.args(s, pos, 2, skip, &name)?;
                if skip {
                    false
                } else {
                    let subject = bytes_to_string(a[0].clone());
                    let list = bytes_to_string(a[1].clone());
                    let ci = name == "inlisti";
                    crate::lists::ListIter::new(&list).any(|item| {
                        if ci {
                            item.eq_ignore_ascii_case(&subject)
                        } else {
                            item == subject
                        }
                    })
                }
            }
            "eq" | "eqi" | "ne" | "==" | "=" | "<" | ">" | "<=" | ">=" | "match" => {
                let a = self.args(s, pos, 2, skip, &name)?;
                if skip {
                    false
                } else {
                    let (x, y) = (&a[0], &a[1]);
                    match name.as_str() {
                        "eq" => x == y,
                        "ne" => x != y,
                        "eqi" => x.eq_ignore_ascii_case(y),
                        "match" => {
                            let re = compile_regex(&bytes_to_string(y.clone()))?;
                            match re.captures(x) {
                                Some(caps) => {
                                    self.numeric = caps
                                        .iter()
                                        .map(|m| {
                                            m.map(|m| bytes_to_string(m.as_bytes().to_vec()))
                                                .unwrap_or_default()
                                        })
                                        .collect();
                                    true
                                }
                                None => false,
                            }
                        }
                        op => {
                            let x = exim_integer(&bytes_to_string(x.clone()))?;
                            let y = exim_integer(&bytes_to_string(y.clone()))?;
                            match op {
                                "==" | "=" => x == y,
                                "<" => x < y,
                                ">" => x > y,
                                "<=" => x <= y,
                                _ => x >= y,
                            }
                        }
                    }
                }
            }
            "lt" | "lti" | "le" | "lei" | "gt" | "gti" | "ge" | "gei" => {
                let a = self.args(s, pos, 2, skip, &name)?;
                if skip {
                    false
                } else {
                    let (x, y) = if name.ends_with('i') {
                        (a[0].to_ascii_lowercase(), a[1].to_ascii_lowercase())
                    } else {
                        (a[0].clone(), a[1].clone())
                    };
                    let ord = x.cmp(&y);
                    match &name[..2] {
                        "lt" => ord.is_lt(),
                        "le" => ord.is_le(),
                        "gt" => ord.is_gt(),
                        _ => ord.is_ge(),
                    }
                }
            }
            "first_delivery" | "queue_running" => {
                if skip {
                    false
                } else {
                    self.ctx
                        .state_flag(&name)
                        .ok_or_else(|| ExpandError::NotSupported("condition", name.clone()))?
                }
            }
            "and" | "or" => {
                skip_ws(s, pos);
                if s.get(*pos) != Some(&b'{') {
                    return Err(syntax(format!("missing {{ after \"{name}\"")));
                }
                *pos += 1;
                let is_and = name == "and";
                let mut acc = is_and;
                loop {
                    skip_ws(s, pos);
                    match s.get(*pos) {
                        Some(b'}') => {
                            *pos += 1;
                            break;
                        }
                        Some(b'{') => {
                            *pos += 1;
                            let decided = if is_and { !acc } else { acc };
                            let v = self.condition(s, pos, skip || decided)?;
                            if !(skip || decided) {
                                acc = v;
                            }
                            skip_ws(s, pos);
                            if s.get(*pos) != Some(&b'}') {
                                return Err(syntax(format!(
                                    "missing }} at end of condition inside \"{name}\""
                                )));
                            }
                            *pos += 1;
                        }
                        _ => {
                            return Err(syntax(format!(
                                "each subcondition inside an \"{name}{{...}}\" condition must be in its own {{}}"
                            )))
                        }
                    }
                }
                !skip && acc
            }
            "" => return Err(syntax("condition name expected")),
            other if known::CONDITIONS.contains(&other) => {
                return Err(ExpandError::NotSupported("condition", other.to_string()))
            }
            other => return Err(ExpandError::UnknownCondition(other.to_string())),
        };
        self.depth -= 1;
        Ok(if skip { false } else { r != negate })
    }
}
