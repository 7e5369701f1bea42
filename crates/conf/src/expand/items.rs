//! Expansion items: `${name{arg}...}` (if, lookup, sg, tr, extract, map...).

use super::*;

impl Expander<'_> {
    pub(super) fn item(
        &mut self,
        name: &str,
        s: &[u8],
        pos: &mut usize,
        skip: bool,
    ) -> Result<Vec<u8>, ExpandError> {
        match name {
            "if" => {
                let saved = self.numeric.clone();
                let ok = self.condition(s, pos, skip)?;
                let r = self.yes_no(s, pos, skip, "if", Outcome::new(ok, b"true".to_vec(), None));
                self.numeric = saved;
                r
            }
            "lookup" => self.lookup(s, pos, skip),
            "sg" => {
                let a = self.args(s, pos, 3, skip, "sg")?;
                self.close(s, pos, "sg")?;
                if skip {
                    return Ok(Vec::new());
                }
                self.sg(&a[0], &a[1], &a[2])
            }
            "tr" => {
                let a = self.args(s, pos, 3, skip, "tr")?;
                self.close(s, pos, "tr")?;
                if skip {
                    return Ok(Vec::new());
                }
                Ok(tr(&a[0], &a[1], &a[2]))
            }
            "length" | "substr" | "hash" | "nhash" => {
                let max = if name == "length" { 2 } else { 3 };
                let mut a = self.read_subs(s, pos, (2, max), skip, name)?;
                if skip {
                    return Ok(Vec::new());
                }
                let subject = a.pop().unwrap_or_default();
                // With two arguments, `length` has the length, the others
                // the first value.
                let mut vals: [Option<i64>; 2] = [None, None];
                let first = usize::from(name == "length" && a.len() == 1);
                for (i, arg) in a.iter().enumerate() {
                    let slot = i + first;
                    let text = bytes_to_string(arg.clone());
                    let v = text
                        .trim()
                        .parse::<i64>()
                        .ok()
                        .filter(|v| slot == 0 || *v >= 0);
                    let Some(v) = v.filter(|_| !text.is_empty() && text.trim() == text) else {
                        let positive = if slot != 0 { " positive" } else { "" };
                        return Err(syntax(format!(
                            "\"{text}\" is not a{positive} number (in \"{name}\" expansion)"
                        )));
                    };
                    vals[slot] = Some(v);
                }
                let v0 = vals[0].unwrap_or(0);
                match name {
                    "hash" => textops::hash(
                        &subject,
                        usize::try_from(v0).unwrap_or(0),
                        vals[1].map(|m| usize::try_from(m).unwrap_or(0)),
                    ),
                    "nhash" => Ok(textops::nhash(
                        &subject,
                        u64::try_from(v0).unwrap_or(0),
                        vals[1].map(|m| u64::try_from(m).unwrap_or(0)),
                    )?
                    .into_bytes()),
                    _ => Ok(substr(&subject, v0, vals[1])),
                }
            }
            "extract" => self.extract(s, pos, skip),
            "listquote" => self.listquote(s, pos, skip),
            "sort" => self.sort(s, pos, skip),
            "hmac" => {
                let a = self.args(s, pos, 3, skip, "hmac")?;
                self.close(s, pos, "hmac")?;
                if skip {
                    return Ok(Vec::new());
                }
                let algo = bytes_to_string(a[0].clone());
                Ok(digest::hmac(&algo, &a[1], &a[2])?.into_bytes())
            }
            "map" | "filter" | "reduce" => self.list_item(name, s, pos, skip),
            "listextract" => {
                let a = self.args(s, pos, 2, skip, "listextract")?;
                if skip {
                    return self.yes_no(s, pos, true, name, Outcome::new(false, Vec::new(), None));
                }
                let n = parse_number(&bytes_to_string(a[0].clone()))?;
                let list = bytes_to_string(a[1].clone());
                let items: Vec<String> = crate::lists::ListIter::new(&list).collect();
                let idx = if n > 0 {
                    usize::try_from(n - 1).ok()
                } else if n < 0 {
                    usize::try_from(-n)
                        .ok()
                        .and_then(|k| items.len().checked_sub(k))
                } else {
                    None
                };
                let found = idx.and_then(|i| items.get(i)).cloned();
                let ok = found.is_some();
                let value = found.unwrap_or_default();
                let saved = self.lookup_value.replace(value.clone());
                let r = self.yes_no(
                    s,
                    pos,
                    false,
                    name,
                    Outcome::new(ok, value.into_bytes(), Some(saved.clone())),
                );
                self.lookup_value = saved;
                r
            }
            "authresults" => {
                let a = self.args(s, pos, 1, skip, "authresults")?;
                self.close(s, pos, "authresults")?;
                if skip {
                    return Ok(Vec::new());
                }
                let sysname = bytes_to_string(a[0].clone());
                // Exim's order: the SMTP AUTH and iprev parts, then DKIM's.
                let smtp = self.ctx.auth_results(&sysname);
                let dkim = self.ctx.var(crate::AUTHRESULTS_DKIM_VAR);
                if smtp.is_none() && dkim.is_none() {
                    return Err(ExpandError::NotSupported(
                        "expansion item",
                        "authresults".to_string(),
                    ));
                }
                let mut out = format!("Authentication-Results: {sysname}").into_bytes();
                out.extend_from_slice(smtp.unwrap_or_default().as_bytes());
                out.extend_from_slice(dkim.unwrap_or_default().as_bytes());
                Ok(out)
            }
            "readfile" => {
                let mut a = self.args(s, pos, 1, skip, "readfile")?;
                a.extend(self.opt_args(s, pos, 1, &[skip])?);
                self.close(s, pos, "readfile")?;
                if skip {
                    return Ok(Vec::new());
                }
                let path = bytes_to_string(a[0].clone());
                let text = self
                    .ctx
                    .read_file(&path)
                    .ok_or_else(|| syntax(format!("failed to open {path}")))?;
                Ok(match a.get(1) {
                    Some(eol) => text
                        .replace('\n', &bytes_to_string(eol.clone()))
                        .into_bytes(),
                    None => text.into_bytes(),
                })
            }
            _ if known::ITEMS.contains(&name) => Err(ExpandError::NotSupported(
                "expansion item",
                name.to_string(),
            )),
            _ => Err(syntax(format!(
                "\"${{{name}\" is not a known operator (or a }} is missing in a variable reference)"
            ))),
        }
    }

    /// `${map{list}{expr}}`, `${filter{list}{condition}}` and
    /// `${reduce{list}{initial}{expr}}`: the last argument is evaluated once
    /// per item with `$item` (and `$value` for reduce) set.
    pub(super) fn list_item(
        &mut self,
        name: &str,
        s: &[u8],
        pos: &mut usize,
        skip: bool,
    ) -> Result<Vec<u8>, ExpandError> {
        let list = self.args(s, pos, 1, skip, name)?.remove(0);
        let initial = if name == "reduce" {
            Some(self.args(s, pos, 1, skip, name)?.remove(0))
        } else {
            None
        };
        skip_ws(s, pos);
        if s.get(*pos) != Some(&b'{') {
            return Err(syntax(format!(
                "missing or misplaced {{ or }} in \"{name}\""
            )));
        }
        *pos += 1;
        let body = *pos;
        // Parse once in skip mode to find the end (and check the syntax).
        let mut end = body;
        let inside = |e: ExpandError| syntax(format!("{e} inside \"{name}\" item"));
        if name == "filter" {
            self.condition(s, &mut end, true).map_err(inside)?;
            skip_ws(s, &mut end);
            if s.get(end) != Some(&b'}') {
                return Err(syntax(format!(
                    "missing }} at end of condition or expression inside \"{name}\"; could be an unquoted }} in the content"
                )));
            }
            end += 1;
        } else {
            self.string(s, &mut end, true, true).map_err(inside)?;
        }
        *pos = end;
        self.close(s, pos, name)?;
        if skip {
            return Ok(Vec::new());
        }
        let list = bytes_to_string(list);
        let mut iter = crate::lists::ListIter::new(&list);
        let sep = iter.separator();
        let saved_item = self.item.take();
        let saved_value = self.lookup_value.clone();
        let mut out: Vec<String> = Vec::new();
        let mut acc = initial.map(bytes_to_string);
        let result = (|| -> Result<(), ExpandError> {
            for item in iter.by_ref() {
                self.item = Some(item.clone());
                let mut p = body;
                match name {
                    "filter" => {
                        if self.condition(s, &mut p, false)? {
                            out.push(item);
                        }
                    }
                    "map" => {
                        let v = self.string(s, &mut p, true, false)?;
                        out.push(bytes_to_string(v));
                    }
                    _ => {
                        self.lookup_value = acc.clone();
                        let v = self.string(s, &mut p, true, false)?;
                        acc = Some(bytes_to_string(v));
                    }
                }
            }
            Ok(())
        })();
        self.item = saved_item;
        self.lookup_value = saved_value;
        result.map_err(|e| match e {
            ExpandError::ForcedFail(_) => e,
            e => {
                let what = if name == "filter" {
                    "condition"
                } else {
                    "item"
                };
                syntax(format!(
                    "{} inside \"{name}\" {what}",
                    quoted(&e.to_string())
                ))
            }
        })?;
        if name == "reduce" {
            return Ok(acc.unwrap_or_default().into_bytes());
        }
        Ok(join_list(&out, sep).into_bytes())
    }

    pub(super) fn extract(
        &mut self,
        s: &[u8],
        pos: &mut usize,
        skip: bool,
    ) -> Result<Vec<u8>, ExpandError> {
        if skip {
            // Numeric or keyed cannot be told without the data: read up to
            // five arguments and an optional "fail".
            skip_ws(s, pos);
            for _ in 0..5 {
                if s.get(*pos) != Some(&b'{') {
                    break;
                }
                *pos += 1;
                self.string(s, pos, true, true)?;
                skip_ws(s, pos);
            }
            if s[*pos..].starts_with(b"fail")
                && matches!(s.get(*pos + 4), None | Some(b'}' | b' ' | b'\t'))
            {
                *pos += 4;
                skip_ws(s, pos);
            }
            if s.get(*pos) != Some(&b'}') {
                return Err(syntax("missing '}' closing extract"));
            }
            *pos += 1;
            return Ok(Vec::new());
        }
        let mut args: Vec<Vec<u8>> = Vec::new();
        let mut field: Option<i64> = None;
        let mut want = 2;
        while args.len() < want {
            skip_ws(s, pos);
            if s.get(*pos) != Some(&b'{') {
                return Err(syntax(format!(
                    "missing '{{' for arg {} of extract",
                    args.len() + 1
                )));
            }
            *pos += 1;
            let v = self.string(s, pos, true, false)?;
            if args.is_empty() {
                let key = bytes_to_string(v.clone());
                let key = key.trim();
                if key.is_empty() {
                    return Err(syntax("first argument of \"extract\" must not be empty"));
                }
                let digits = key.strip_prefix('-').unwrap_or(key);
                if !digits.is_empty() && digits.bytes().all(|c| c.is_ascii_digit()) {
                    field = Some(key.parse().unwrap_or(i64::MAX));
                    want = 3;
                }
                args.push(key.as_bytes().to_vec());
            } else {
                args.push(v);
            }
        }
        let found = match field {
            Some(n) => tokened(n, &args[1], &args[2]),
            None => extract_key(
                &bytes_to_string(args[1].clone()),
                &bytes_to_string(args[0].clone()),
            )
            .map(String::into_bytes),
        };
        let ok = found.is_some();
        let value = found.unwrap_or_default();
        let saved = self.lookup_value.replace(bytes_to_string(value.clone()));
        let r = self.yes_no(
            s,
            pos,
            false,
            "extract",
            Outcome::new(ok, value, Some(saved.clone())),
        );
        self.lookup_value = saved;
        r
    }

    pub(super) fn lookup(
        &mut self,
        s: &[u8],
        pos: &mut usize,
        skip: bool,
    ) -> Result<Vec<u8>, ExpandError> {
        skip_ws(s, pos);
        let key = if s.get(*pos) == Some(&b'{') {
            Some(self.args(s, pos, 1, skip, "lookup")?.remove(0))
        } else {
            None
        };
        skip_ws(s, pos);
        let start = *pos;
        while *pos < s.len() && s[*pos] != b'{' && !s[*pos].is_ascii_whitespace() {
            *pos += 1;
        }
        let ltype = String::from_utf8_lossy(&s[start..*pos]).into_owned();
        if !ltype.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return Err(syntax("missing lookup type"));
        }
        let file = self.args(s, pos, 1, skip, "lookup")?.remove(0);
        if skip {
            return self.yes_no(
                s,
                pos,
                true,
                "lookup",
                Outcome::new(false, Vec::new(), None),
            );
        }
        let Some(key) = key else {
            return Err(ExpandError::UnknownLookup(ltype));
        };
        let found = self.do_lookup(&ltype, &bytes_to_string(key), &bytes_to_string(file))?;
        let ok = found.is_some();
        let value = found.unwrap_or_default();
        let saved = self.lookup_value.replace(value.clone());
        let r = self.yes_no(
            s,
            pos,
            false,
            "lookup",
            Outcome::new(ok, value.into_bytes(), Some(saved.clone())),
        );
        self.lookup_value = saved;
        r
    }

    /// `dsearch`: is there an entry named `key` in directory `dir`?
    /// Options `ret=full`, `filter=file|dir|subdir`, `key=path`.
    fn dsearch(&self, ltype: &str, key: &str, dir: &str) -> Result<Option<String>, ExpandError> {
        let (mut full, mut filter, mut path_key) = (false, None, false);
        for opt in ltype.split(',').skip(1).map(str::trim) {
            match opt {
                "ret=full" => full = true,
                "filter=file" | "filter=dir" | "filter=subdir" => filter = Some(&opt[7..]),
                "key=path" => path_key = true,
                _ => return Err(ExpandError::NotSupported("lookup option", opt.to_string())),
            }
        }
        if !dir.starts_with('/') {
            return Err(syntax(format!(
                "dsearch: directory name \"{dir}\" is not absolute"
            )));
        }
        let bad_key = if path_key {
            key.split('/').any(|c| c == "..")
        } else {
            key.contains('/')
        };
        if key.is_empty() || bad_key {
            return Ok(None);
        }
        let path = format!("{}/{key}", dir.trim_end_matches('/'));
        let found = match (self.ctx.entry_kind(&path), filter) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(k), Some("file")) => k == EntryKind::File,
            (Some(k), Some("dir")) => k == EntryKind::Dir,
            (Some(k), _) => k == EntryKind::Dir && key != "." && key != "..",
        };
        Ok(found.then(|| if full { path } else { key.to_string() }))
    }

    pub(super) fn do_lookup(
        &self,
        ltype: &str,
        key: &str,
        file: &str,
    ) -> Result<Option<String>, ExpandError> {
        if ltype == "dsearch" || ltype.starts_with("dsearch,") {
            return self.dsearch(ltype, key, file);
        }
        let Some(spec) = crate::lookup::LookupSpec::parse(ltype) else {
            return Err(match crate::lookup::LookupSpec::unsupported(ltype) {
                Some((what, name)) => ExpandError::NotSupported(what, name),
                None => ExpandError::UnknownLookup(ltype.to_string()),
            });
        };
        let text = self
            .ctx
            .read_file(file)
            .ok_or_else(|| ExpandError::LookupFile(file.to_string()))?;
        Ok(crate::lookup::search(&spec, &text, key))
    }

    pub(super) fn sg(
        &mut self,
        subject: &[u8],
        re: &[u8],
        repl: &[u8],
    ) -> Result<Vec<u8>, ExpandError> {
        let re = compile_regex(&bytes_to_string(re.to_vec()))?;
        let mut out = Vec::new();
        let mut last = 0;
        let mut at = 0;
        while at <= subject.len() {
            let Some(caps) = re.captures_at(subject, at) else {
                break;
            };
            let Some(m) = caps.get(0) else { break };
            out.extend_from_slice(&subject[last..m.start()]);
            // Only $N / ${N} and backslash escapes are interpreted in the
            // replacement: it has already been expanded once.
            let mut i = 0;
            while i < repl.len() {
                let c = repl[i];
                if c == b'$' {
                    let mut j = i + 1;
                    let braced = repl.get(j) == Some(&b'{');
                    if braced {
                        j += 1;
                    }
                    let ds = j;
                    while j < repl.len() && repl[j].is_ascii_digit() {
                        j += 1;
                    }
                    if j > ds && (!braced || repl.get(j) == Some(&b'}')) {
                        let n: usize = std::str::from_utf8(&repl[ds..j])
                            .ok()
                            .and_then(|d| d.parse().ok())
                            .unwrap_or(usize::MAX);
                        if let Some(g) = caps.get(n) {
                            out.extend_from_slice(g.as_bytes());
                        }
                        i = if braced { j + 1 } else { j };
                        continue;
                    }
                }
                out.push(c);
                i += 1;
            }
            last = m.end();
            at = if m.end() == m.start() {
                m.end() + 1
            } else {
                m.end()
            };
            if out.len() > MAX_OUTPUT {
                return Err(ExpandError::TooComplex("result too long"));
            }
        }
        if last <= subject.len() {
            out.extend_from_slice(&subject[last..]);
        }
        Ok(out)
    }
}

/// A string in double quotes with `"` and `\` escaped (Exim's `%q`).
pub(super) fn quoted(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            o.push('\\');
        }
        o.push(c);
    }
    o.push('"');
    o
}

/// Field `n` of `data` split at any byte of `seps` (1 is the first, -1 the
/// last, 0 the whole string); None if there are not that many fields.
fn tokened(n: i64, seps: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    if n == 0 {
        return Some(data.to_vec());
    }
    let fields: Vec<&[u8]> = data.split(|c| seps.contains(c)).collect();
    let idx = if n > 0 {
        usize::try_from(n - 1).ok()?
    } else {
        fields
            .len()
            .checked_sub(usize::try_from(n.checked_neg()?).ok()?)?
    };
    fields.get(idx).map(|f| f.to_vec())
}
