//! The shape of the decision core, checked: no function in `shared/domain/src` is
//! longer than [`MAX_LINES`] lines, and none needs `too_many_arguments`. A newcomer
//! reads the core one short function at a time; this test keeps it that way.
//!
//! The reader is small on purpose: it blanks comments, string and character
//! literals, then counts braces from each `fn`'s body to its end.

#![allow(clippy::expect_used, clippy::unwrap_used, reason = "tests fail loudly")]

use std::path::{Path, PathBuf};

/// The most lines a function may span, from its `fn` line to its closing brace.
const MAX_LINES: usize = 80;

/// One function found in a source file.
#[derive(Debug)]
struct Function {
    name: String,
    line: usize,
    lines: usize,
}

/// `source` with comments and the contents of string and character literals
/// replaced by spaces (newlines kept), so that braces and `fn` in them do not count.
fn blank(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    let keep = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < chars.len() {
        let rest = &chars[i..];
        let end = if rest.starts_with(&['/', '/']) {
            rest.iter()
                .position(|&c| c == '\n')
                .map_or(chars.len(), |n| i + n)
        } else if rest.starts_with(&['/', '*']) {
            block_comment_end(&chars, i)
        } else if let Some(end) = raw_string_end(&chars, i) {
            end
        } else if chars[i] == '"' {
            string_end(&chars, i)
        } else if let Some(end) = char_literal_end(&chars, i) {
            end
        } else {
            out.push(chars[i]);
            i += 1;
            continue;
        };
        out.extend(chars[i..end].iter().map(|&c| keep(c)));
        i = end;
    }
    out
}

/// The end (exclusive) of the nested block comment starting at `start`.
fn block_comment_end(chars: &[char], start: usize) -> usize {
    let (mut depth, mut i) = (0usize, start);
    while i + 1 < chars.len() {
        match (chars[i], chars[i + 1]) {
            ('/', '*') => {
                depth += 1;
                i += 2;
            }
            ('*', '/') => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    chars.len()
}

/// The end of a `r"…"`, `r#"…"#` or `br"…"` literal starting at `start`, if one does.
fn raw_string_end(chars: &[char], start: usize) -> Option<usize> {
    if start > 0 && (chars[start - 1].is_alphanumeric() || chars[start - 1] == '_') {
        return None;
    }
    let mut i = start;
    if chars.get(i) == Some(&'b') {
        i += 1;
    }
    if chars.get(i) != Some(&'r') {
        return None;
    }
    i += 1;
    let hashes = chars[i..].iter().take_while(|&&c| c == '#').count();
    i += hashes;
    if chars.get(i) != Some(&'"') {
        return None;
    }
    let close: Vec<char> = std::iter::once('"')
        .chain(std::iter::repeat_n('#', hashes))
        .collect();
    (i + 1..chars.len())
        .find(|&j| chars[j..].starts_with(&close))
        .map(|j| j + close.len())
}

/// The end of the plain string literal whose opening quote is at `start`.
fn string_end(chars: &[char], start: usize) -> usize {
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '"' => return i + 1,
            _ => i += 1,
        }
    }
    chars.len()
}

/// The end of a character literal (`'{'`, `'\''`, `'\u{7b}'`) at `start`; `None`
/// for a lifetime or label (`'a`).
fn char_literal_end(chars: &[char], start: usize) -> Option<usize> {
    if chars[start] != '\'' {
        return None;
    }
    if chars.get(start + 1) == Some(&'\\') {
        let close = chars[start + 2..].iter().position(|&c| c == '\'')?;
        return Some(start + 2 + close + 1);
    }
    (chars.get(start + 2) == Some(&'\'')).then_some(start + 3)
}

/// Every function with a body in `source`.
fn functions(source: &str) -> Vec<Function> {
    let text = blank(source);
    let bytes = text.as_bytes();
    let line_of = |at: usize| text[..at].matches('\n').count() + 1;
    let mut out = Vec::new();
    let mut search = 0;
    while let Some(found) = text[search..].find("fn ") {
        let at = search + found;
        search = at + 3;
        let word_start = at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_');
        if !word_start {
            continue;
        }
        let name: String = text[at + 3..]
            .trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if name.is_empty() {
            continue; // a `fn(…)` pointer type
        }
        let Some(open) = body_start(bytes, at + 3) else {
            continue; // a declaration without a body
        };
        let close = matching_brace(bytes, open);
        out.push(Function {
            name,
            line: line_of(at),
            lines: line_of(close) - line_of(at) + 1,
        });
    }
    out
}

/// The `{` that opens the body of the `fn` whose signature starts at `from`, or
/// `None` when a `;` ends it first. Braces inside the signature's brackets (const
/// generics) do not count.
fn body_start(bytes: &[u8], from: usize) -> Option<usize> {
    let mut depth = 0i32;
    for (i, &b) in bytes.iter().enumerate().skip(from) {
        match b {
            b'(' | b'[' => depth += 1,
            b')' | b']' => depth -= 1,
            b';' if depth == 0 => return None,
            b'{' if depth == 0 => return Some(i),
            _ => {}
        }
    }
    None
}

/// The `}` that closes the `{` at `open`.
fn matching_brace(bytes: &[u8], open: usize) -> usize {
    let mut depth = 0usize;
    for (i, &b) in bytes.iter().enumerate().skip(open) {
        match b {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    bytes.len().saturating_sub(1)
}

fn sources() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("readable source directory") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut out);
    out.sort();
    out
}

#[test]
fn no_function_in_the_core_is_longer_than_80_lines_or_needs_too_many_arguments() {
    let mut found = 0;
    let mut longest = (0, String::new());
    let mut problems = Vec::new();
    let files = sources();
    for path in &files {
        let source = std::fs::read_to_string(path).expect("readable source");
        let file = path.file_name().and_then(|n| n.to_str()).unwrap_or("?");
        if blank(&source).contains("too_many_arguments") {
            problems.push(format!("{file}: allows clippy::too_many_arguments"));
        }
        for f in functions(&source) {
            found += 1;
            if f.lines > longest.0 {
                longest = (f.lines, format!("{file}:{} {}", f.line, f.name));
            }
            if f.lines > MAX_LINES {
                problems.push(format!(
                    "{file}:{} fn {} is {} lines long",
                    f.line, f.name, f.lines
                ));
            }
        }
    }
    // The scan must have read the core: every module, and the pass's entry point.
    assert!(files.len() >= 10, "only {} source files found", files.len());
    assert!(found >= 200, "only {found} functions found: the reader is broken");
    println!(
        "{found} functions in {} files; the longest: {} ({} lines)",
        files.len(),
        longest.1,
        longest.0
    );
    assert!(problems.is_empty(), "split these:\n{}", problems.join("\n"));
}

/// The reader itself: it counts a function's lines, skips braces and `fn` in
/// comments, strings and characters, and tells lifetimes from characters.
#[test]
fn the_reader_measures_functions_and_ignores_braces_in_literals() {
    let source = r##"
/// fn not_a_function() { in a doc comment }
fn short<'a>(x: &'a str) -> char {
    let _ = "{ not a brace";
    let _ = r#"} not one " either"#;
    let _ = '{';
    let _ = '\'';
    /* { nested /* } */ still a comment } */
    '}'
}

fn long() {
LINES}

trait T {
    fn declared(&self);
    fn defined(&self) -> [u8; 2] { [0; 2] }
}
"##
    .replace("LINES", &"    let _ = 1;\n".repeat(85));
    let found = functions(&source);
    let summary: Vec<(&str, usize)> = found.iter().map(|f| (f.name.as_str(), f.lines)).collect();
    assert_eq!(summary, [("short", 8), ("long", 87), ("defined", 1)]);
    assert_eq!(found[0].line, 3);
}
