//! Integer arithmetic for `${eval:}` and `${eval10:}`.
//!
//! Precedence, loosest first: `|`, `^`, `&`, `<<` `>>`, `+` `-`, `*` `/` `%`,
//! then unary `+` `-` `~`, numbers and parentheses. `eval` reads numbers as
//! C's `%i` does (`0x` hex, leading `0` octal); `eval10` only decimal. Both
//! take a `K`, `M` or `G` suffix. Errors use Exim's text: `error in expression
//! evaluation: <what> (after processing "<input so far>")`.

use super::*;

/// Recursion limit for parentheses and unary operators.
const MAX_NESTING: usize = 200;

struct Arith<'a> {
    b: &'a [u8],
    i: usize,
    decimal: bool,
    depth: usize,
}

type R = Result<i64, &'static str>;

impl Arith<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }

    /// A whole expression; with `endket` it must stop at `)`.
    fn expr(&mut self, endket: bool) -> R {
        let x = self.or()?;
        if endket {
            if self.peek() != Some(b')') {
                return Err("expecting closing parenthesis");
            }
            self.i += 1;
            self.ws();
        } else if self.i < self.b.len() {
            return Err("expecting operator");
        }
        Ok(x)
    }

    fn number(&mut self) -> R {
        self.ws();
        match self.peek() {
            Some(c) if c.is_ascii_digit() => {
                let start = self.i;
                let (radix, digits_from) = if self.decimal || c != b'0' {
                    (10, start)
                } else if matches!(self.b.get(start + 1), Some(b'x' | b'X'))
                    && self.b.get(start + 2).is_some_and(u8::is_ascii_hexdigit)
                {
                    (16, start + 2)
                } else {
                    (8, start)
                };
                let mut j = digits_from;
                while self.b.get(j).is_some_and(|c| (*c as char).is_digit(radix)) {
                    j += 1;
                }
                let text = std::str::from_utf8(&self.b[digits_from..j]).unwrap_or("0");
                // Like sscanf: an out-of-range value saturates.
                let mut n = i64::from_str_radix(text, radix).unwrap_or(i64::MAX);
                self.i = j;
                let mult = match self.peek().map(|c| c.to_ascii_lowercase()) {
                    Some(b'k') => 1024,
                    Some(b'm') => 1024 * 1024,
                    Some(b'g') => 1024 * 1024 * 1024,
                    _ => 1,
                };
                if mult != 1 {
                    n = n.wrapping_mul(mult);
                    self.i += 1;
                }
                self.ws();
                Ok(n)
            }
            Some(b'(') => {
                self.i += 1;
                self.nest(|a| a.expr(true))
            }
            _ => Err("expecting number or opening parenthesis"),
        }
    }

    fn nest(&mut self, f: impl FnOnce(&mut Self) -> R) -> R {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err("expression too deeply nested");
        }
        let r = f(self);
        self.depth -= 1;
        r
    }

    fn unary(&mut self) -> R {
        self.ws();
        match self.peek() {
            Some(op @ (b'+' | b'-' | b'~')) => {
                self.i += 1;
                let x = self.nest(Self::unary)?;
                Ok(match op {
                    b'-' => x.wrapping_neg(),
                    b'~' => !x,
                    _ => x,
                })
            }
            _ => self.number(),
        }
    }

    fn mult(&mut self) -> R {
        let mut x = self.unary()?;
        while let Some(op @ (b'*' | b'/' | b'%')) = self.peek() {
            self.i += 1;
            let y = self.unary()?;
            x = match op {
                b'*' => x.wrapping_mul(y),
                _ if y == 0 => {
                    return Err(if op == b'/' {
                        "divide by zero"
                    } else {
                        "modulo by zero"
                    })
                }
                // i64::MIN / -1 overflows: Exim gives the largest value.
                _ if y == -1 && x == i64::MIN => i64::MAX,
                b'/' => x / y,
                _ => x % y,
            };
        }
        Ok(x)
    }

    fn sum(&mut self) -> R {
        let mut x = self.mult()?;
        while let Some(op @ (b'+' | b'-')) = self.peek() {
            self.i += 1;
            let y = self.mult()?;
            let half = i64::MAX / 2;
            if (x >= half && y >= half) || (x <= -half && y <= -half) {
                return Err(if op == b'+' {
                    "overflow in sum"
                } else {
                    "overflow in difference"
                });
            }
            x = if op == b'+' {
                x.wrapping_add(y)
            } else {
                x.wrapping_sub(y)
            };
        }
        Ok(x)
    }

    fn shift(&mut self) -> R {
        let mut x = self.sum()?;
        while let Some(op @ (b'<' | b'>')) = self.peek() {
            if self.b.get(self.i + 1) != Some(&op) {
                break;
            }
            self.i += 2;
            let y = self.sum()?;
            let n = u32::try_from(y.clamp(0, 63)).unwrap_or(63);
            x = if op == b'<' {
                x.wrapping_shl(n)
            } else {
                x.wrapping_shr(n)
            };
        }
        Ok(x)
    }

    fn binary(&mut self, op: u8, next: fn(&mut Self) -> R, f: fn(i64, i64) -> i64) -> R {
        let mut x = next(self)?;
        while self.peek() == Some(op) {
            self.i += 1;
            let y = next(self)?;
            x = f(x, y);
        }
        Ok(x)
    }

    fn and(&mut self) -> R {
        self.binary(b'&', Self::shift, |x, y| x & y)
    }

    fn xor(&mut self) -> R {
        self.binary(b'^', Self::and, |x, y| x ^ y)
    }

    fn or(&mut self) -> R {
        self.binary(b'|', Self::xor, |x, y| x | y)
    }
}

/// Evaluates `s` (`decimal`: as `eval10`).
pub(super) fn eval(s: &str, decimal: bool) -> Result<i64, ExpandError> {
    let mut a = Arith {
        b: s.as_bytes(),
        i: 0,
        decimal,
        depth: 0,
    };
    a.expr(false).map_err(|what| {
        let done = String::from_utf8_lossy(&a.b[..a.i.min(a.b.len())]);
        syntax(format!(
            "error in expression evaluation: {what} (after processing \"{done}\")"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::eval;

    fn ok(s: &str) -> i64 {
        eval(s, false).unwrap()
    }

    fn fails(s: &str, decimal: bool) -> String {
        eval(s, decimal).unwrap_err().to_string()
    }

    #[test]
    fn precedence_and_radix() {
        assert_eq!(ok("1+2*3"), 7);
        assert_eq!(ok("(1+2)*3"), 9);
        assert_eq!(ok("3/2*4"), 4);
        assert_eq!(ok("-2 - -3"), 1);
        assert_eq!(ok("(2*(1+1))/2 + 40K"), 40962);
        assert_eq!(ok("077"), 63);
        assert_eq!(eval("077", true).unwrap(), 77);
        assert_eq!(ok("0xc & 5 "), 4);
        assert_eq!(ok("0xc^5"), 9);
        assert_eq!(ok("0xc<<1"), 24);
        assert_eq!(ok("~255&0x1234"), 4608);
        assert_eq!(ok(" -(~255&0x1234)"), -4608);
        assert_eq!(ok("2+42%5"), 4);
    }

    #[test]
    fn exim_error_texts() {
        assert_eq!(
            fails("", false),
            "error in expression evaluation: expecting number or opening parenthesis (after processing \"\")"
        );
        assert_eq!(
            fails("-2 - (-3", false),
            "error in expression evaluation: expecting closing parenthesis (after processing \"-2 - (-3\")"
        );
        assert_eq!(
            fails("-2 - -3)", false),
            "error in expression evaluation: expecting operator (after processing \"-2 - -3\")"
        );
        assert_eq!(
            fails("08", false),
            "error in expression evaluation: expecting operator (after processing \"0\")"
        );
        assert_eq!(
            fails("0x1234", true),
            "error in expression evaluation: expecting operator (after processing \"0\")"
        );
        assert!(fails("1/0", false).contains("divide by zero"));
    }
}
