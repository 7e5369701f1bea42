//! Conditions: `and` binds more tightly than `or`; `not` and brackets;
//! the comparison words in their lower-case (caseless) and upper-case
//! (case-sensitive) forms, with `is`/`does` [`not`] before them.

use super::*;

impl Parser<'_> {
    /// A condition up to `then` (top level) or the `)` that closes it
    /// (left for the caller). `and` binds more tightly than `or`.
    pub(super) fn condition(&mut self, toplevel: bool) -> PResult<Condition> {
        // An "or" of "and" groups.
        let mut ors: Vec<Vec<Condition>> = vec![Vec::new()];
        let mut negate = false;
        loop {
            if self.at_end() {
                return Err("\"then\" missing at end of filter file".into());
            }
            let c = match self.peek() {
                b'(' => {
                    self.pos += 1;
                    self.skip_space();
                    let mut c = self.condition(false)?;
                    if self.peek() != b')' {
                        return Err(format!(
                            "expected \")\" in line {} of filter file",
                            self.line
                        ));
                    }
                    self.pos += 1;
                    self.skip_space();
                    if negate {
                        c.negated = !c.negated;
                        negate = false;
                    }
                    c
                }
                b')' => {
                    return Err(format!(
                        "unexpected \")\" in line {} of filter file",
                        self.line
                    ))
                }
                _ => {
                    let w = self.item(true)?;
                    if w == "then" {
                        return Err(format!(
                            "unexpected \"then\" near line {} of filter file",
                            self.line
                        ));
                    }
                    if w == "not" {
                        negate = !negate;
                        continue;
                    }
                    let c = self.simple_condition(w, negate)?;
                    negate = false;
                    c
                }
            };
            ors.last_mut().expect("non-empty").push(c);
            match self.peek() {
                b')' => {
                    if toplevel {
                        return Err(format!(
                            "unexpected \")\" in line {} of filter file",
                            self.line
                        ));
                    }
                    break;
                }
                b'(' => {
                    return Err(format!(
                        "unexpected \"(\" in line {} of filter file",
                        self.line
                    ))
                }
                _ => {}
            }
            let w = self.word(false);
            match w.as_str() {
                "then" => {
                    if !toplevel {
                        return Err(format!(
                            "missing \")\" at end of condition near line {} of filter file",
                            self.line
                        ));
                    }
                    break;
                }
                "and" => {}
                "or" => ors.push(Vec::new()),
                _ => {
                    return Err(format!(
                        "\"and\" or \"or\" or \"{}\" expected near line {} of filter file, but found \"{w}\"",
                        if toplevel { "then" } else { ")" },
                        self.line
                    ))
                }
            }
        }
        let fold = |items: Vec<Condition>, and: bool| -> Condition {
            let mut it = items.into_iter();
            let first = it.next().expect("non-empty");
            it.fold(first, |l, r| Condition {
                negated: false,
                kind: if and {
                    CondKind::And(Box::new(l), Box::new(r))
                } else {
                    CondKind::Or(Box::new(l), Box::new(r))
                },
            })
        };
        let groups: Vec<Condition> = ors.into_iter().map(|g| fold(g, true)).collect();
        Ok(fold(groups, false))
    }

    fn simple_condition(&mut self, w: String, negated: bool) -> PResult<Condition> {
        let kind = match w.as_str() {
            "delivered" => CondKind::Delivered,
            "error_message" => CondKind::ErrorMessage,
            "first_delivery" => CondKind::FirstDelivery,
            "manually_thawed" => CondKind::ManuallyThawed,
            "personal" => {
                let mut aliases = Vec::new();
                loop {
                    let save = (self.pos, self.line);
                    if self.word(true) != "alias" {
                        (self.pos, self.line) = save;
                        break;
                    }
                    aliases.push(self.item(true)?);
                }
                CondKind::Personal { aliases }
            }
            "foranyaddress" => {
                let list = self.item(true)?;
                if self.peek() != b'(' {
                    return Err(format!(
                        "\"(\" expected after \"foranyaddress\" near line {} of filter file",
                        self.line
                    ));
                }
                self.pos += 1;
                self.skip_space();
                let cond = self.condition(false)?;
                if self.peek() != b')' {
                    return Err(format!(
                        "expected \")\" in line {} of filter file",
                        self.line
                    ));
                }
                self.pos += 1;
                self.skip_space();
                CondKind::ForAnyAddress {
                    list,
                    cond: Box::new(cond),
                }
            }
            _ => return self.comparison(w, negated),
        };
        Ok(Condition { negated, kind })
    }

    /// `<left> [is|does] [not] <word> <right>`; after `is` or `is not`
    /// an unknown word is the right-hand side itself (`a is b`).
    fn comparison(&mut self, left: String, mut negated: bool) -> PResult<Condition> {
        let mut w = self.word(true);
        let mut is_form: Option<(Compare, usize, usize)> = None;
        if w.eq_ignore_ascii_case("does") || w.eq_ignore_ascii_case("is") {
            let op = match w.as_bytes()[0] {
                b'i' => Some(Compare::Is),
                b'I' => Some(Compare::IsCase),
                _ => None,
            };
            is_form = op.map(|op| (op, self.pos, self.line));
            w = self.word(true);
            if w.eq_ignore_ascii_case("not") {
                negated = !negated;
                if let Some(f) = is_form.as_mut() {
                    f.1 = self.pos;
                    f.2 = self.line;
                }
                w = self.word(true);
            }
        }
        let op = match COND_WORDS.iter().find(|(n, _)| *n == w) {
            Some((_, op)) => *op,
            None => match is_form {
                Some((op, pos, line)) => {
                    self.pos = pos;
                    self.line = line;
                    op
                }
                None => {
                    return Err(format!(
                        "unrecognized condition word \"{w}\" near line {} of filter file",
                        self.line
                    ))
                }
            },
        };
        let right = self.item(true)?;
        Ok(Condition {
            negated,
            kind: CondKind::Compare { op, left, right },
        })
    }
}
