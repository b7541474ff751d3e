//! Text from a node, made safe to print.
//!
//! Error messages, module names, query results and logs come from the node, which may be
//! anyone's: a string with terminal escapes could recolour, clear or rewrite the user's
//! terminal, or hide text (bidirectional overrides). Everything the CLI prints that a node
//! supplied goes through [`printable`] first.

use std::borrow::Cow;

/// `text` with every control character (but newline and tab), every bidirectional formatting
/// character and the Unicode line and paragraph separators shown as a Rust escape (`\u{1b}`),
/// so it prints as itself.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn unsafe_char(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(
            c,
            '\u{61c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn escapes_and_controls_print_as_text() {
        assert_eq!(
            printable("plain, with\ttab\nand newline"),
            "plain, with\ttab\nand newline"
        );
        assert_eq!(printable("\x1b[2Jgone"), "\\u{1b}[2Jgone");
        assert_eq!(printable("a\rb\x07\u{9b}c"), "a\\u{d}b\\u{7}\\u{9b}c");
        assert_eq!(printable("evil\u{202e}txt.exe"), "evil\\u{202e}txt.exe");
        assert_eq!(printable("héllo 世界"), "héllo 世界");
    }
}
