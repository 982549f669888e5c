//! Where in a config file something is: a byte span to its line, column and dotted key.

use std::ops::Range;
use std::path::Path;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::CliError;

/// Line and column (both from 1, the column in characters) of byte `offset` of `text`.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// The dotted key (`simulator.workers`, `prior.theta.low[1]`) of the innermost value of the
/// document whose span holds `span`, or the empty string if none does (the error is about
/// the whole file, or the document does not parse).
pub(crate) fn key_at(text: &str, span: &Range<usize>) -> String {
    let Ok(doc) = DeTable::parse(text) else {
        return String::new();
    };
    let mut path = Vec::new();
    walk_table(doc.get_ref(), span, &mut path);
    path.join(".")
}

fn holds(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end.max(outer.start + 1)
}

/// Finds the key of `span` in `table`, pushing the path onto `path`; whether it did.
/// (A table under a `[header]` has the header's span only, so tables are searched
/// whatever their span.)
fn walk_table(table: &DeTable<'_>, span: &Range<usize>, path: &mut Vec<String>) -> bool {
    for (key, value) in table {
        if holds(&key.span(), span) {
            path.push(key.get_ref().to_string());
            return true;
        }
        path.push(key.get_ref().to_string());
        if walk_value(value, span, path) || holds(&value.span(), span) {
            return true;
        }
        path.pop();
    }
    false
}

fn walk_value(value: &Spanned<DeValue<'_>>, span: &Range<usize>, path: &mut Vec<String>) -> bool {
    match value.get_ref() {
        DeValue::Table(t) => walk_table(t, span, path),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let before = path.last().cloned();
                if let Some(last) = path.last_mut() {
                    last.push_str(&format!("[{i}]"));
                }
                if walk_value(item, span, path) || holds(&item.span(), span) {
                    return true;
                }
                if let (Some(last), Some(before)) = (path.last_mut(), before) {
                    *last = before;
                }
            }
            false
        }
        _ => false,
    }
}

/// A config error at `span` of `text` (the file at `path`), with `key` given or found
/// from the span.
pub(crate) fn error_at(
    path: &Path,
    text: &str,
    span: Option<Range<usize>>,
    key: Option<&str>,
    message: impl Into<String>,
) -> CliError {
    let (line, column) = span.as_ref().map_or((1, 1), |s| line_column(text, s.start));
    let key = match key {
        Some(k) => k.to_string(),
        None => span.as_ref().map_or(String::new(), |s| key_at(text, s)),
    };
    CliError::Config {
        path: path.to_path_buf(),
        line,
        column,
        key,
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_columns_count_from_one_in_characters() {
        let text = "a = 1\nβ = \"x\"\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 4), (1, 5));
        // `=` after the two-byte β is the third character of line 2.
        let eq = text.rfind('=').unwrap();
        assert_eq!(line_column(text, eq), (2, 3));
    }

    #[test]
    fn keys_are_found_from_spans() {
        let text = "seed = 1\n[simulator]\nprogram = \"p\"\nargs = [\"a\", \"b\"]\n\
                    [prior]\ntheta = { kind = \"uniform\", low = [0, 1] }\n";
        let at = |needle: &str| {
            let start = text.find(needle).unwrap();
            key_at(text, &(start..start + needle.trim_end().len()))
        };
        assert_eq!(at("1\n"), "seed");
        assert_eq!(at("\"p\""), "simulator.program");
        assert_eq!(at("\"b\""), "simulator.args[1]");
        assert_eq!(at("[0, 1]"), "prior.theta.low");
        assert_eq!(at("\"uniform\""), "prior.theta.kind");
        assert_eq!(key_at("not toml ===", &(0..1)), "");
    }
}
