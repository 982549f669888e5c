//! Sample files: CSV with one sample per row, one column per dimension, and an optional
//! header line of column names.
//!
//! Numbers are written in Rust's shortest round-trip form (`{:?}`: `-0.5`, `1e-7`, `NaN`,
//! `inf`), so a file read back gives the same `f64`s bit for bit and the same samples give
//! the same bytes. NumPy, pandas and R read these files as they are.

use std::fmt::Write as _;
use std::path::Path;

use nalgebra::DMatrix;

use crate::error::{AnalysisError, Result, invalid};

/// The contents of a sample file: the column names, if the file had a header, and the
/// samples, `D × n` (one sample per column, i.e. one per row of the file).
#[derive(Clone, Debug, PartialEq)]
pub struct SampleFile {
    /// The header's column names, or `None` for a file without a header.
    pub names: Option<Vec<String>>,
    /// The samples, one per column.
    pub samples: DMatrix<f64>,
}

/// `theta_1, …, theta_d`: the default column names of [`samples_to_csv`].
pub fn default_column_names(d: usize) -> Vec<String> {
    (1..=d).map(|i| format!("theta_{i}")).collect()
}

/// The samples (`D × n`, one per column) as CSV: a header line (`names`, or `theta_1,…` for
/// `None`), then one line per sample.
///
/// # Errors
/// `names` of another length than `D`, or names that would not read back as the same
/// header ([`check_column_names`]).
///
/// ```
/// use nalgebra::DMatrix;
/// let s = DMatrix::from_column_slice(2, 2, &[0.5, -1.0, 1e-7, 3.0]);
/// let csv = simfer_analysis::samples_to_csv(&s, None)?;
/// assert_eq!(csv, "theta_1,theta_2\n0.5,-1.0\n1e-7,3.0\n");
/// assert_eq!(simfer_analysis::parse_samples_csv(&csv)?.samples, s);
/// # Ok::<(), simfer_analysis::AnalysisError>(())
/// ```
pub fn samples_to_csv(samples: &DMatrix<f64>, names: Option<&[String]>) -> Result<String> {
    let d = samples.nrows();
    let defaults;
    let names = match names {
        Some(n) => n,
        None => {
            defaults = default_column_names(d);
            &defaults
        }
    };
    if names.len() != d {
        return Err(AnalysisError::DimensionMismatch {
            what: "column names of a sample file (one per dimension)".into(),
            expected: d,
            found: names.len(),
        });
    }
    check_column_names(names)?;
    // About 20 bytes per number.
    let mut out = String::with_capacity(
        names.iter().map(|n| n.len() + 1).sum::<usize>() + 20 * samples.len(),
    );
    out.push_str(&names.join(","));
    out.push('\n');
    for col in samples.column_iter() {
        for (i, v) in col.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            // Writing into a String cannot fail.
            let _ = write!(out, "{v:?}");
        }
        out.push('\n');
    }
    Ok(out)
}

/// Checks that `names` can be the header of a sample file, one that reads back
/// ([`parse_samples_csv`]) with the same names: each name non-empty, without commas,
/// quotes or line breaks, without spaces (or other white space) at its start or end, not
/// starting with `#` (a comment line), and at least one of them not a number (a header of
/// numbers reads as a sample).
///
/// # Errors
/// The first name that breaks a rule, or all names numbers.
///
/// ```
/// let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
/// assert!(simfer_analysis::check_column_names(&names(&["mu", "log_sigma"])).is_ok());
/// assert!(simfer_analysis::check_column_names(&names(&["a,b"])).is_err());
/// assert!(simfer_analysis::check_column_names(&names(&[" a"])).is_err());
/// assert!(simfer_analysis::check_column_names(&names(&["#a", "b"])).is_err());
/// assert!(simfer_analysis::check_column_names(&names(&["1", "2e3"])).is_err());
/// ```
pub fn check_column_names(names: &[String]) -> Result<()> {
    if let Some(bad) = names.iter().find(|n| {
        n.is_empty()
            || n.contains([',', '"', '\n', '\r'])
            || n.trim() != n.as_str()
            || n.starts_with('#')
    }) {
        return Err(invalid(
            "column name of a sample file",
            "a non-empty name without commas, quotes or line breaks, without white space at \
             its start or end, not starting with `#`",
            format!("{bad:?}"),
        ));
    }
    if !names.is_empty() && names.iter().all(|n| parse_number(n).is_some()) {
        return Err(invalid(
            "column names of a sample file",
            "at least one name that is not a number (a header of numbers reads as a sample)",
            format!("{names:?}"),
        ));
    }
    Ok(())
}

/// Writes [`samples_to_csv`] to `path`.
///
/// # Errors
/// As [`samples_to_csv`], and I/O errors naming the path.
pub fn write_samples_csv(
    path: impl AsRef<Path>,
    samples: &DMatrix<f64>,
    names: Option<&[String]>,
) -> Result<()> {
    crate::write_file(path.as_ref(), &samples_to_csv(samples, names)?)
}

/// Parses a sample file: comma-separated numbers, one sample per line, with or without a
/// header line.
///
/// The first non-blank line is a header when any of its fields is not a number (names may
/// be wrapped in double quotes, which are removed). Blank lines and lines starting with `#`
/// are skipped; fields may be padded with spaces; `\r\n` line ends are accepted; `nan`,
/// `inf` and `-inf` (any case) are numbers.
///
/// # Errors
/// No samples; a line with another number of fields than the first; a field of a sample
/// line that is not a number (the error names line and column, counted from 1).
///
/// ```
/// let f = simfer_analysis::parse_samples_csv("a, b\n1, -2\n3, 4\n")?;
/// assert_eq!(f.names, Some(vec!["a".to_string(), "b".to_string()]));
/// assert_eq!(f.samples.shape(), (2, 2));
/// assert_eq!(f.samples[(1, 0)], -2.0);
/// // Without a header: every line is a sample.
/// let f = simfer_analysis::parse_samples_csv("-0.5,0.3")?;
/// assert_eq!((f.names, f.samples.as_slice()), (None, &[-0.5, 0.3][..]));
/// # Ok::<(), simfer_analysis::AnalysisError>(())
/// ```
pub fn parse_samples_csv(text: &str) -> Result<SampleFile> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .peekable();
    let Some(&(first_no, first)) = lines.peek() else {
        return Err(no_samples());
    };
    let first_fields: Vec<&str> = first.split(',').map(str::trim).collect();
    let d = first_fields.len();
    let names = if first_fields.iter().any(|f| parse_number(f).is_none()) {
        lines.next();
        Some(
            first_fields
                .iter()
                .map(|f| {
                    f.strip_prefix('"')
                        .and_then(|g| g.strip_suffix('"'))
                        .unwrap_or(f)
                        .to_string()
                })
                .collect::<Vec<_>>(),
        )
    } else {
        None
    };
    let mut values = Vec::new();
    let mut n = 0;
    for (line_no, line) in lines {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != d {
            let first = if names.is_some() {
                "header"
            } else {
                "first line"
            };
            return Err(AnalysisError::DimensionMismatch {
                what: format!(
                    "sample file, line {line_no}: number of fields, to match the {first} \
                     (line {first_no})"
                ),
                expected: d,
                found: fields.len(),
            });
        }
        for (col, field) in fields.iter().enumerate() {
            let v = parse_number(field).ok_or_else(|| {
                invalid(
                    format!("sample file, line {line_no}, column {}", col + 1),
                    "a number",
                    format!("{field:?}"),
                )
            })?;
            values.push(v);
        }
        n += 1;
    }
    if n == 0 {
        return Err(no_samples());
    }
    Ok(SampleFile {
        names,
        samples: DMatrix::from_vec(d, n, values),
    })
}

/// Reads and parses a sample file (see [`parse_samples_csv`]).
///
/// # Errors
/// An unreadable file (named in the error), and the errors of [`parse_samples_csv`], with
/// the path in front of the message.
pub fn read_samples_csv(path: impl AsRef<Path>) -> Result<SampleFile> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|e| {
        invalid(
            format!("sample file {}", path.display()),
            "a readable UTF-8 text file",
            e,
        )
    })?;
    parse_samples_csv(&text).map_err(|e| match e {
        AnalysisError::InvalidArgument {
            name,
            expected,
            found,
        } => AnalysisError::InvalidArgument {
            name: format!("{}: {name}", path.display()),
            expected,
            found,
        },
        AnalysisError::DimensionMismatch {
            what,
            expected,
            found,
        } => AnalysisError::DimensionMismatch {
            what: format!("{}: {what}", path.display()),
            expected,
            found,
        },
        AnalysisError::TooFewSamples {
            what,
            expected,
            found,
        } => AnalysisError::TooFewSamples {
            what: format!("{}: {what}", path.display()),
            expected,
            found,
        },
        other => other,
    })
}

fn no_samples() -> AnalysisError {
    AnalysisError::TooFewSamples {
        what: "sample file (lines of numbers)".into(),
        expected: 1,
        found: 0,
    }
}

/// A number as Rust parses it (which includes `nan`, `inf`, `-inf`, `infinity` in any case),
/// or `None`.
fn parse_number(field: &str) -> Option<f64> {
    if field.is_empty() {
        return None;
    }
    field.parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_detection_needs_one_non_number() {
        assert!(parse_samples_csv("1,x\n2,3").is_ok_and(|f| f.names.is_some()));
        assert!(parse_samples_csv("1,2\n2,3").is_ok_and(|f| f.names.is_none()));
        assert!(parse_samples_csv("nan,inf\n").is_ok_and(|f| f.names.is_none()));
    }

    #[test]
    fn empty_field_is_not_a_number() {
        assert_eq!(parse_number(""), None);
        assert_eq!(parse_number("-0.5"), Some(-0.5));
    }
}
