//! The CLI's single error type: a message for the user and the exit code
//! (1 = a check failed, 2 = bad input or usage), and the one place errors
//! are printed: every error is one line on stderr, with control characters
//! escaped and overlong tokens cut, whatever the message echoes from a file.

use std::fmt;

/// Exit code of a failed check (mismatch, regression).
pub const EXIT_CHECK: u8 = 1;
/// Exit code of bad input or usage.
pub const EXIT_INPUT: u8 = 2;

/// What went wrong, said for the user (printed as `error: <message>`), and
/// the process exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CliError {
    pub message: String,
    pub code: u8,
}

impl CliError {
    /// Bad input: a missing or malformed file, a bad argument value, a
    /// program that does not fit the hardware or faults on it (exit 2).
    pub fn input(message: impl fmt::Display) -> CliError {
        CliError { message: message.to_string(), code: EXIT_INPUT }
    }

    /// A check that failed (exit 1).
    #[allow(dead_code)]
    pub fn check(message: impl fmt::Display) -> CliError {
        CliError { message: message.to_string(), code: EXIT_CHECK }
    }

    /// The line printed for this error: `error: ` and the message made one line.
    pub fn line(&self) -> String {
        format!("error: {}", one_line(&self.message))
    }
}

pub type Result<T> = std::result::Result<T, CliError>;

/// Longest token (run of non-blank characters) printed whole.
const MAX_TOKEN_CHARS: usize = 200;
/// Longest message printed whole.
const MAX_MESSAGE_CHARS: usize = 2000;

/// A message as one printable line: line breaks, tabs and other control
/// characters escaped (`\n`, `\t`, `\x1b`, `\u{85}`), each token longer than
/// `MAX_TOKEN_CHARS` cut to its start with a marker saying how much is left
/// out, and the whole cut at `MAX_MESSAGE_CHARS` the same way. Messages quote
/// file contents (names, tokens, header text), so this is applied to every
/// error the CLI prints.
pub fn one_line(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(MAX_MESSAGE_CHARS + 64));
    let mut token_chars = 0usize;
    let mut cut_token = 0usize;
    let mut printed = 0usize;
    let mut rest = message.trim_end().chars().peekable();
    while let Some(c) = rest.next() {
        if c == ' ' {
            flush_cut(&mut out, &mut cut_token);
            token_chars = 0;
        } else {
            token_chars += 1;
            if token_chars > MAX_TOKEN_CHARS {
                cut_token += 1;
                continue;
            }
        }
        if printed >= MAX_MESSAGE_CHARS {
            let left = 1 + rest.count();
            out.push_str(&format!("…[{left} more characters]"));
            return out;
        }
        printed += 1;
        push_escaped(&mut out, c);
    }
    flush_cut(&mut out, &mut cut_token);
    out
}

fn flush_cut(out: &mut String, cut: &mut usize) {
    if *cut > 0 {
        out.push_str(&format!("…[{cut} more characters]"));
        *cut = 0;
    }
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if (c as u32) < 0x80 && c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
        // C1 controls, and the separators and direction marks that break or
        // reorder a terminal line.
        c if c.is_control()
            || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') =>
        {
            out.push_str(&format!("\\u{{{:x}}}", c as u32))
        }
        c => out.push(c),
    }
}

/// Clap's usage errors (several lines: the error, tips, the usage) as one
/// line: `error: MESSAGE[, continued][; tip: ...] (usage: ...)`.
pub fn usage_line(rendered: &str) -> String {
    let mut message = String::new();
    let mut usage = None;
    for line in rendered.lines() {
        let text = line.trim();
        if text.is_empty() || text.starts_with("For more information") {
            continue;
        }
        if let Some(u) = text.strip_prefix("Usage:") {
            usage = Some(u.trim().to_string());
        } else if let Some(first) = text.strip_prefix("error:") {
            message.push_str(first.trim());
        } else if text.starts_with("tip:") {
            message.push_str("; ");
            message.push_str(text);
        } else {
            // A continuation: the arguments of "the following ... were not provided:".
            message.push_str(if message.ends_with(':') || text.starts_with('[') { " " } else { ", " });
            message.push_str(text);
        }
    }
    if let Some(u) = usage {
        message.push_str(&format!(" (usage: {u}; see --help)"));
    }
    format!("error: {}", one_line(&message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls_and_cuts_long_tokens() {
        assert_eq!(one_line("a\nb\tc\u{1b}[31m\u{7f}\r"), "a\\nb\\tc\\x1b[31m\\x7f");
        assert_eq!(one_line("x\u{85}y\u{202e}z"), "x\\u{85}y\\u{202e}z");
        let long = "k".repeat(20_000);
        let line = one_line(&format!("unknown key `{long}` here"));
        assert!(line.starts_with("unknown key `kkk"), "{line}");
        assert!(line.contains("…[19802 more characters] here"), "{line}");
        assert!(line.len() < 300);
        let many = "word ".repeat(2000);
        let line = one_line(&many);
        assert!(line.chars().count() < MAX_MESSAGE_CHARS + 40 && line.ends_with("more characters]"), "{line}");
        assert_eq!(one_line("plain message"), "plain message");
    }

    #[test]
    fn clap_errors_become_one_line() {
        let rendered = "error: the following required arguments were not provided:\n  --input <X.npy>\n  \
                        --out <DIR>\n\nUsage: systole run --input <X.npy> --out <DIR> <MODEL.sbin>\n\n\
                        For more information, try '--help'.\n";
        assert_eq!(
            usage_line(rendered),
            "error: the following required arguments were not provided: --input <X.npy>, --out <DIR> \
             (usage: systole run --input <X.npy> --out <DIR> <MODEL.sbin>; see --help)"
        );
    }
}
