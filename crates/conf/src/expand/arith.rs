//! Integer arithmetic for `${eval:}` and `${eval10:}`.

use super::*;

/// Integer arithmetic for `${eval:}`: + - * / % ( ) and unary minus.
pub(super) fn eval(s: &str) -> Result<i64, ExpandError> {
    struct P<'a> {
        b: &'a [u8],
        i: usize,
        depth: usize,
    }
    fn err(s: &str) -> ExpandError {
        syntax(format!("expected number or opening parenthesis in \"{s}\""))
    }
    impl P<'_> {
        fn ws(&mut self) {
            while self.i < self.b.len() && self.b[self.i].is_ascii_whitespace() {
                self.i += 1;
            }
        }
        fn expr(&mut self) -> Result<i64, ExpandError> {
            let mut v = self.term()?;
            loop {
                self.ws();
                match self.b.get(self.i) {
                    Some(b'+') => {
                        self.i += 1;
                        v = v.wrapping_add(self.term()?);
                    }
                    Some(b'-') => {
                        self.i += 1;
                        v = v.wrapping_sub(self.term()?);
                    }
                    _ => return Ok(v),
                }
            }
        }
        fn term(&mut self) -> Result<i64, ExpandError> {
            let mut v = self.unary()?;
            loop {
                self.ws();
                let op = match self.b.get(self.i) {
                    Some(c @ (b'*' | b'/' | b'%')) => *c,
                    _ => return Ok(v),
                };
                self.i += 1;
                let r = self.unary()?;
                v = match op {
                    b'*' => v.wrapping_mul(r),
                    _ if r == 0 => return Err(syntax("divide by zero")),
                    b'/' => v.wrapping_div(r),
                    _ => v.wrapping_rem(r),
                };
            }
        }
        fn unary(&mut self) -> Result<i64, ExpandError> {
            self.depth += 1;
            if self.depth > 200 {
                return Err(ExpandError::TooComplex("nesting too deep"));
            }
            self.ws();
            let r = match self.b.get(self.i) {
                Some(b'-') => {
                    self.i += 1;
                    self.unary().map(i64::wrapping_neg)
                }
                Some(b'+') => {
                    self.i += 1;
                    self.unary()
                }
                Some(b'(') => {
                    self.i += 1;
                    let v = self.expr()?;
                    self.ws();
                    if self.b.get(self.i) != Some(&b')') {
                        return Err(syntax("expecting closing parenthesis"));
                    }
                    self.i += 1;
                    Ok(v)
                }
                Some(c) if c.is_ascii_digit() => {
                    let st = self.i;
                    while self.i < self.b.len() && self.b[self.i].is_ascii_alphanumeric() {
                        self.i += 1;
                    }
                    parse_number(&String::from_utf8_lossy(&self.b[st..self.i]))
                }
                _ => Err(err(&String::from_utf8_lossy(self.b))),
            };
            self.depth -= 1;
            r
        }
    }
    let mut p = P {
        b: s.as_bytes(),
        i: 0,
        depth: 0,
    };
    let v = p.expr()?;
    p.ws();
    if p.i != p.b.len() {
        return Err(syntax(format!(
            "extra characters at end of expression in \"{s}\""
        )));
    }
    Ok(v)
}
