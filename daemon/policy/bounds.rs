//! The bound on an expression's size and nesting, checked before any parser sees it: the
//! parser, the type check and the interpreter each recurse once per level, and a few hundred
//! levels overflow a thread's stack.
//!
//! The nesting is counted over the tokens CEL's lexer makes (cel-parser's grammar, `CEL.g4`),
//! not over the characters: a bracket inside a string or a comment is no bracket, and a quote
//! that opens no string by the lexer's rules (a line break in a one-line string, a bad escape,
//! no closing quote) is skipped as the lexer skips it, so the brackets after it count. Reading
//! every quote as a string's start hid a few hundred brackets from the count (the fuzzer found
//! `r'…` with a carriage return in it).

/// Longest expression taken, in bytes: policies are one-line conditions.
pub(super) const MAX_LEN: usize = 2048;
/// Deepest nesting taken: brackets and prefix operators.
pub(super) const MAX_NESTING: usize = 32;
/// Most operators taken (`.`, `+`, `==`, `&&`, `in`, …): a chain of them nests as deep as it is
/// long in the parse tree and in the interpreter, with no bracket; in a debug build about 200
/// `+` overflow a 2 MiB stack.
pub(super) const MAX_OPERATORS: usize = 128;

/// Refuses an expression too long or nested too deep to be evaluated safely.
pub(super) fn within_bounds(expr: &str) -> Result<(), String> {
    if expr.len() > MAX_LEN {
        return Err(format!(
            "the expression is {} bytes long, over the limit of {MAX_LEN}; split the condition",
            expr.len()
        ));
    }
    // Anywhere, strings included (an escape such as `\x00` writes one): the parser's lexer
    // took seconds and hundreds of megabytes over a string of NULs and other controls (the
    // fuzzer found one).
    if let Some((at, c)) = expr
        .chars()
        .enumerate()
        .find(|&(_, c)| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        return Err(format!(
            "column {}: a control character (U+{:04X}); policies are printable text (in a \
             string, write an escape such as \\x00)",
            at + 1,
            c as u32
        ));
    }
    let b = expr.as_bytes();
    let (mut i, mut unary, mut operators) = (0usize, 0usize, 0usize);
    // The brackets open, innermost last, each with where it opened: every one must be closed
    // by its own kind. No expression that parses fails this, and one that does not is refused
    // here, cheaply and saying where: the parser's error recovery over unclosed brackets can
    // take minutes and gigabytes on a few hundred bytes (the fuzzer found one).
    let mut open: Vec<(u8, usize)> = Vec::new();
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            i = b[i..]
                .iter()
                .position(|&c| c == b'\n')
                .map_or(b.len(), |n| i + n);
            continue;
        }
        if let Some(end) = literal(b, i) {
            if &b[i..end] == b"in" {
                operators += 1;
            }
            unary = 0;
            i = end;
            continue;
        }
        // A quote that opens no string or name by the lexer's rules is a syntax error anyway;
        // how far the lexer skips after it is its own (after a back-quote, the whole name it
        // tried), so the brackets after it are refused here rather than counted by a guess.
        if matches!(c, b'"' | b'\'' | b'`') {
            return Err(format!(
                "column {}: this {} opens no string or name that ends (a quote, a line break or \
                 a character the name cannot hold); close it",
                column(b, i),
                c as char
            ));
        }
        // `==`, `!=`, `<=`, `>=`, `&&`, `||` are one operator each, taken whole as the lexer
        // takes them.
        let pair = b
            .get(i..i + 2)
            .is_some_and(|p| matches!(p, b"==" | b"!=" | b"<=" | b">=" | b"&&" | b"||"));
        // A character no token starts with (a lone `=`, `&` or `|`, `#`, `;`, a letter outside
        // ASCII) is a syntax error, and the lexer's recovery from it skips the character after
        // it too: a quote there no longer opens a string, and the brackets the count took for
        // the string's reach the parser (the fuzzer found `|'[[[…` overflowing a 2 MiB stack).
        if !(pair || c.is_ascii_alphanumeric() || b"_.,:?()[]{}+-*/%!<>".contains(&c)) {
            let shown = expr[i..].chars().next().unwrap_or('?');
            return Err(format!(
                "column {}: `{shown}` is no part of a CEL expression here (operators are ==, \
                 !=, <, <=, >, >=, &&, ||, !, +, -, *, /, %, in, and ? :); remove it, or write \
                 it inside a string",
                column(b, i)
            ));
        }
        if b"+-*/%<>=!&|?.".contains(&c) {
            operators += 1;
        }
        if operators > MAX_OPERATORS {
            return Err(format!(
                "column {}: more than {MAX_OPERATORS} operators; split the condition (a list \
                 and `in` takes many values in one)",
                column(b, i)
            ));
        }
        match c {
            b'(' | b'[' | b'{' => open.push((c, i)),
            b')' | b']' | b'}' => {
                let opener = match c {
                    b')' => b'(',
                    b']' => b'[',
                    _ => b'{',
                };
                match open.pop() {
                    Some((o, _)) if o == opener => {}
                    Some((o, at)) => {
                        return Err(format!(
                            "column {}: `{}` closes the `{}` opened at column {}; close each \
                             bracket with its own kind",
                            column(b, i),
                            c as char,
                            o as char,
                            column(b, at)
                        ))
                    }
                    None => {
                        return Err(format!(
                            "column {}: `{}` closes no bracket; remove it or open one before",
                            column(b, i),
                            c as char
                        ))
                    }
                }
            }
            b'!' | b'-' if !pair => unary += 1,
            _ => unary = 0,
        }
        if open.len() + unary > MAX_NESTING {
            return Err(format!(
                "column {}: nested deeper than {MAX_NESTING} levels; simplify the condition",
                column(b, i)
            ));
        }
        i += if pair { 2 } else { 1 };
    }
    match open.last() {
        Some(&(o, at)) => Err(format!(
            "column {}: `{}` is not closed; close it",
            column(b, at),
            o as char
        )),
        None => Ok(()),
    }
}

fn column(b: &[u8], i: usize) -> usize {
    String::from_utf8_lossy(&b[..i]).chars().count() + 1
}

/// Where the token starting at `i` ends, if it is one that can hold brackets or quotes (a
/// string, bytes, a back-quoted identifier) or one whose letters could be taken for a string's
/// prefix (an identifier, a number): the lexer takes the longest token there is.
fn literal(b: &[u8], i: usize) -> Option<usize> {
    let c = b[i];
    if c == b'"' || c == b'\'' {
        return string(b, i, false);
    }
    if c == b'`' {
        let n = b[i + 1..]
            .iter()
            .take_while(|&&c| c.is_ascii_alphanumeric() || b"_.-/ ".contains(&c))
            .count();
        return (n > 0 && b.get(i + 1 + n) == Some(&b'`')).then_some(i + n + 2);
    }
    if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) {
        return Some(number(b, i));
    }
    if c.is_ascii_alphabetic() || c == b'_' {
        // Bytes and raw strings: b"…", r"…", br"…" (either case), taken when they lex.
        let mut p = i;
        if matches!(b[p], b'b' | b'B') {
            p += 1;
        }
        let raw = matches!(b.get(p), Some(b'r' | b'R'));
        if raw {
            p += 1;
        }
        if p > i && matches!(b.get(p), Some(b'"' | b'\'')) {
            if let Some(end) = string(b, p, raw) {
                return Some(end);
            }
        }
        let n = b[i..]
            .iter()
            .take_while(|&&c| c.is_ascii_alphanumeric() || c == b'_')
            .count();
        return Some(i + n);
    }
    None
}

/// The end of the string whose quote is at `q`, by CEL's eight forms (one-line or triple
/// quoted, raw or not), or None when none lexes there. `""` is a whole (empty) string when no
/// triple-quoted one follows.
fn string(b: &[u8], q: usize, raw: bool) -> Option<usize> {
    let quote = b[q];
    let triple = b.get(q + 1) == Some(&quote) && b.get(q + 2) == Some(&quote);
    if triple {
        let mut p = q + 3;
        while p < b.len() {
            if b[p] == quote && b.get(p + 1) == Some(&quote) && b.get(p + 2) == Some(&quote) {
                return Some(p + 3);
            }
            p += match b[p] {
                b'\\' if !raw => match escape(&b[p..]) {
                    Some(n) => n,
                    None => break,
                },
                _ => 1,
            };
        }
        // No closing triple quote (or a bad escape before it): the first two quotes are an
        // empty string, the longest token that lexes there.
        return Some(q + 2);
    }
    let mut p = q + 1;
    loop {
        match *b.get(p)? {
            c if c == quote => return Some(p + 1),
            b'\n' | b'\r' => return None,
            b'\\' if !raw => p += escape(&b[p..])?,
            _ => p += 1,
        }
    }
}

/// The length of the escape sequence at the start of `s` (a backslash), or None when it is
/// not one the lexer takes.
fn escape(s: &[u8]) -> Option<usize> {
    let all = |from: usize, n: usize, ok: fn(&u8) -> bool| {
        (s.len() >= from + n && s[from..from + n].iter().all(ok)).then_some(from + n)
    };
    match *s.get(1)? {
        b'a' | b'b' | b'f' | b'n' | b'r' | b't' | b'v' | b'"' | b'\'' | b'\\' | b'?' | b'`' => {
            Some(2)
        }
        b'0'..=b'3' => all(2, 2, |c| (b'0'..=b'7').contains(c)),
        b'x' | b'X' => all(2, 2, u8::is_ascii_hexdigit),
        b'u' => all(2, 4, u8::is_ascii_hexdigit),
        b'U' => all(2, 8, u8::is_ascii_hexdigit),
        _ => None,
    }
}

/// The end of the number starting at `i`: `0x` and hex digits, or digits with a fraction
/// and an exponent, each only when whole, then a `u` on an integer.
fn number(b: &[u8], i: usize) -> usize {
    let digits = |p: usize, ok: fn(&u8) -> bool| p + b[p..].iter().take_while(|&c| ok(c)).count();
    let unsigned = |p: usize| p + usize::from(matches!(b.get(p), Some(b'u' | b'U')));
    if b[i] == b'0'
        && b.get(i + 1) == Some(&b'x')
        && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
    {
        return unsigned(digits(i + 2, u8::is_ascii_hexdigit));
    }
    let mut p = digits(i, u8::is_ascii_digit);
    let mut float = false;
    if b.get(p) == Some(&b'.') && b.get(p + 1).is_some_and(u8::is_ascii_digit) {
        p = digits(p + 1, u8::is_ascii_digit);
        float = true;
    }
    if matches!(b.get(p), Some(b'e' | b'E')) {
        let sign = usize::from(matches!(b.get(p + 1), Some(b'+' | b'-')));
        if b.get(p + 1 + sign).is_some_and(u8::is_ascii_digit) {
            return digits(p + 1 + sign, u8::is_ascii_digit);
        }
    }
    if float {
        p
    } else {
        unsigned(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(open: &str, close: &str, n: usize) -> String {
        format!("{}1{}", open.repeat(n), close.repeat(n))
    }

    /// Unclosed, stray and crossed brackets are refused before the parser, saying where: its
    /// error recovery over them took minutes and gigabytes (a fuzzer's input of 655 bytes).
    #[test]
    fn brackets_must_close_by_their_own_kind() {
        for (bad, says) in [
            ("claimed.labels[0", "column 15: `[` is not closed"),
            (
                "(claimed.title == 'a']",
                "column 22: `]` closes the `(` opened at column 1",
            ),
            ("claimed.title == 'a')", "column 21: `)` closes no bracket"),
            (
                "[1, {2: 3]}",
                "column 10: `]` closes the `{` opened at column 5",
            ),
            (
                "claimed.title\u{0} == 'a'",
                "column 14: a control character (U+0000)",
            ),
            (
                "claimed.title == 'a\u{1}'",
                "column 20: a control character (U+0001)",
            ),
        ] {
            let err = within_bounds(bad).expect_err(bad);
            assert!(err.starts_with(says), "{bad:?}: {err}");
        }
        // The fuzzer's: an unclosed back-quoted name, after which the lexer resumed at a few
        // hundred `[` that a `//` seemed to hide; they overflowed a 2 MiB stack.
        let name = format!("c`la/haiimed.con //e{}", "[".repeat(300));
        assert!(within_bounds(&name)
            .unwrap_err()
            .starts_with("column 2: this ` opens no"));
        // The fuzzer's of 2026-11-29: a lone `|` whose recovery skipped the quote after it.
        let hidden = format!("((|'{}{}'))", "[".repeat(80), "(".repeat(29));
        assert!(within_bounds(&hidden)
            .unwrap_err()
            .starts_with("column 3: `|` is no part of a CEL expression here"));
        for bad in [
            "a = 'b'",
            "a & b",
            "a # b",
            "a; b",
            "\u{e9}t\u{e9} == 1",
            "a === b",
        ] {
            assert!(within_bounds(bad).is_err(), "{bad:?}");
        }
        let fuzzed = "claimehas(claimzd.titleclaimed.confidence >= \0ce >}".to_string()
            + &"s[-----------[[[!!!!!!".repeat(20);
        assert!(within_bounds(&fuzzed).is_err());
        for ok in [
            "claimed.labels[0] == '[' && {'a': [1, (2)]}.size() == 1",
            "'(' + ']' == claimed.title // }",
            "a == b && c != d || e <= f && g >= h && !i && -j < k",
            "claimed.title == 'é # ; | & = \\u00e9'",
        ] {
            assert_eq!(within_bounds(ok), Ok(()), "{ok:?}");
        }
    }

    #[test]
    fn brackets_in_strings_and_comments_are_not_nesting() {
        let deep = "[".repeat(40);
        for ok in [
            format!("'{deep}' == claimed.title"),
            format!("\"{deep}\" == claimed.title"),
            format!("'''{deep}\n{deep}''' == claimed.title"),
            format!("r'\\{deep}' == claimed.title"),
            format!("b\"\\x41{deep}\" == b''"),
            format!("true // {deep}\n"),
            format!("claimed.`a-b/c` == '{deep}'"),
            nested("(", ")", MAX_NESTING - 1),
        ] {
            assert_eq!(within_bounds(&ok), Ok(()), "{ok:?}");
        }
    }

    /// Each hides brackets from a count that takes every quote for a string's start, as the
    /// lexer does not: they reach the parser.
    #[test]
    fn a_quote_that_opens_no_string_hides_no_brackets() {
        let deep = "[".repeat(40);
        for hiding in [
            // The fuzzer's: a raw string broken by a carriage return.
            format!("[r'rel\r{deep}"),
            format!("'abc\n{deep}'"),
            format!("\"\\q{deep}\""),
            format!("'{deep}"),
            // A raw string ends at its second quote: the backslash escapes nothing.
            format!("r'\\' {deep} '"),
            format!("br\"\\\" {deep} \""),
            // A comment ends at its line, quotes and all.
            format!("true // it's\n{deep}'"),
            // `//` in a back-quoted name is no comment.
            format!("a.`b//c` + {deep}"),
            // A number does not swallow the raw prefix after it.
            format!("1r'\\' {deep} '"),
            format!("0xfr'\\' {deep} '"),
            nested("(", ")", MAX_NESTING + 1),
            format!("{}true", "!".repeat(MAX_NESTING + 1)),
        ] {
            assert!(within_bounds(&hiding).is_err(), "{hiding:?}");
        }
        // An identifier ending in r is no raw prefix: the string after it escapes its quote.
        let escaped = format!("ar'\\' {deep} '");
        assert_eq!(within_bounds(&escaped), Ok(()), "{escaped:?}");
    }

    #[test]
    fn a_chain_of_operators_is_bounded_as_nesting_is() {
        let chain = |n: usize| format!("{}1 == 1", "1 + ".repeat(n));
        assert_eq!(within_bounds(&chain(MAX_OPERATORS - 1)), Ok(()));
        assert!(within_bounds(&chain(MAX_OPERATORS))
            .unwrap_err()
            .contains("operators"));
        let fields = format!("claimed{} == 1", ".a".repeat(MAX_OPERATORS));
        assert!(within_bounds(&fields).is_err());
        // Operators in a string are none.
        let quoted = format!("claimed.title == '{}'", "+".repeat(1000));
        assert_eq!(within_bounds(&quoted), Ok(()));
    }

    #[test]
    fn too_long_is_refused_with_the_limit() {
        let long = format!("claimed.title == '{}'", "a".repeat(MAX_LEN));
        assert!(within_bounds(&long).unwrap_err().contains("2048"));
    }
}
