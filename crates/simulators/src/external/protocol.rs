//! The text of the batch protocol: formatting requests and parsing answers (see the
//! [module docs](super)). Public so that the reader can be tested on any input (the
//! `fuzz/` targets of the repository); a simulator needs none of it.

use std::fmt::Write as _;

/// The keyword of a batch header line, `batch <rows>`.
pub const BATCH: &str = "batch";

/// The keyword of an answer line that declares a failed simulation, `error <message>`.
pub const ERROR: &str = "error";

/// Appends the request for `rows` (each a row seed and its θ) to `buf`:
/// `batch <m>\n` then one line `<seed> <θ_1> … <θ_d>\n` per row. Numbers are written with
/// Rust's shortest representation that parses back to the same `f64` (`{:?}`: `0.1`,
/// `1e-7`, `-2.5e300`, `NaN`, `inf`).
pub fn write_request<'a>(buf: &mut String, rows: impl ExactSizeIterator<Item = (u64, &'a [f64])>) {
    // Writing to a String cannot fail.
    let _ = writeln!(buf, "{BATCH} {}", rows.len());
    for (seed, theta) in rows {
        let _ = write!(buf, "{seed}");
        for t in theta {
            let _ = write!(buf, " {t:?}");
        }
        buf.push('\n');
    }
}

/// What one answer line says.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    /// `x_dim` numbers, written into the output row.
    Values,
    /// `error <message>`: the simulator declares this simulation failed.
    Declared(String),
    /// Anything else: a protocol error (the reason says what was expected and found).
    Invalid(String),
}

/// At most `max` characters of `s`, with `…` when cut.
pub fn shorten(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_string(),
    }
}

/// The text of one line a worker wrote, as the reader hands it to [`parse_answer`]: the
/// bytes read up to and with the `\n` (at most the longest line read whole; a longer one
/// comes as several), without the `\n`, bytes that are not UTF-8 replaced by `�`.
pub fn line_text(mut bytes: Vec<u8>) -> String {
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
    }
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

/// Parses one answer line (without its line break) into `out` (length `x_dim`).
///
/// Values are separated by spaces or tabs and parsed by `f64::from_str`, which takes
/// decimal and exponent forms and `nan`, `NaN`, `-nan`, `inf`, `Inf`, `-Infinity`… in any
/// case. A trailing `\r` (a Windows line end) is ignored. On anything but
/// [`Answer::Values`], `out` may be partly written.
pub fn parse_answer(line: &str, out: &mut [f64]) -> Answer {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let mut tokens = line.split_ascii_whitespace();
    match tokens.next() {
        None => {
            return Answer::Invalid(format!(
                "an empty line, expected {} numbers or `{ERROR} <message>`",
                out.len()
            ));
        }
        Some(first) if first.eq_ignore_ascii_case(ERROR) => {
            let message = line.trim_ascii_start()[first.len()..].trim();
            return Answer::Declared(if message.is_empty() {
                "(no message)".to_string()
            } else {
                shorten(message, 200)
            });
        }
        Some(_) => {}
    }
    let found = line.split_ascii_whitespace().count();
    if found != out.len() {
        return Answer::Invalid(format!(
            "`{}`: expected {} numbers, found {found} values",
            shorten(line, 60),
            out.len()
        ));
    }
    for (o, token) in out.iter_mut().zip(line.split_ascii_whitespace()) {
        match token.parse::<f64>() {
            Ok(v) => *o = v,
            Err(_) => {
                return Answer::Invalid(format!(
                    "`{}`: `{}` is not a number, expected {} numbers",
                    shorten(line, 60),
                    shorten(token, 30),
                    out.len()
                ));
            }
        }
    }
    Answer::Values
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(rows: &[(u64, Vec<f64>)]) -> String {
        let mut buf = String::new();
        write_request(&mut buf, rows.iter().map(|(s, t)| (*s, t.as_slice())));
        buf
    }

    #[test]
    fn requests_have_a_header_and_one_line_per_row() {
        let text = request(&[(7, vec![0.5, -1.0]), (u64::MAX, vec![1e-7, 2.5e300])]);
        assert_eq!(
            text,
            "batch 2\n7 0.5 -1.0\n18446744073709551615 1e-7 2.5e300\n"
        );
        assert_eq!(request(&[]), "batch 0\n");
    }

    #[test]
    fn every_f64_written_parses_back_to_the_same_bits() {
        let mut values = vec![
            0.1,
            1.0 / 3.0,
            -0.0,
            f64::MIN_POSITIVE,
            5e-324,
            f64::MAX,
            f64::MIN,
            f64::EPSILON,
            123_456_789_012_345_680.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        // A deterministic spread over the exponents.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..2000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let v = f64::from_bits(state);
            if !v.is_nan() {
                values.push(v);
            }
        }
        let text = request(&[(1, values.clone())]);
        let row = text.lines().nth(1).unwrap();
        let parsed: Vec<f64> = row
            .split(' ')
            .skip(1)
            .map(|t| t.parse::<f64>().unwrap())
            .collect();
        for (a, b) in values.iter().zip(&parsed) {
            assert_eq!(a.to_bits(), b.to_bits(), "{a:?} came back as {b:?}");
        }
        // And through the answer parser.
        let mut out = vec![0.0; values.len()];
        let answer_line = row.split_once(' ').unwrap().1;
        assert_eq!(parse_answer(answer_line, &mut out), Answer::Values);
        for (a, b) in values.iter().zip(&out) {
            assert_eq!(a.to_bits(), b.to_bits());
        }
    }

    #[test]
    fn answers_accept_every_spelling_of_nan_and_infinity() {
        let mut out = [0.0; 8];
        let line = "nan NaN -nan inf -Inf +infinity INF 1E-3\r";
        assert_eq!(parse_answer(line, &mut out), Answer::Values);
        assert!(out[..3].iter().all(|v| v.is_nan()));
        assert_eq!(
            &out[3..7],
            &[
                f64::INFINITY,
                f64::NEG_INFINITY,
                f64::INFINITY,
                f64::INFINITY
            ]
        );
        assert_eq!(out[7], 1e-3);
        let mut two = [0.0; 2];
        assert_eq!(parse_answer("  1.5\t-2  ", &mut two), Answer::Values);
        assert_eq!(two, [1.5, -2.0]);
    }

    #[test]
    fn error_lines_declare_a_failure_with_their_message() {
        let mut out = [0.0; 2];
        assert_eq!(
            parse_answer("error  the solver diverged ", &mut out),
            Answer::Declared("the solver diverged".into())
        );
        assert_eq!(
            parse_answer("ERROR", &mut out),
            Answer::Declared("(no message)".into())
        );
    }

    #[test]
    fn garbage_and_wrong_counts_are_invalid_with_a_clear_reason() {
        let mut out = [0.0; 2];
        let Answer::Invalid(why) = parse_answer("1.0 2.0 3.0", &mut out) else {
            panic!("three values for x_dim = 2 accepted")
        };
        assert_eq!(why, "`1.0 2.0 3.0`: expected 2 numbers, found 3 values");
        let Answer::Invalid(why) = parse_answer("hello world", &mut out) else {
            panic!("garbage accepted")
        };
        assert!(why.contains("`hello` is not a number"), "{why}");
        let Answer::Invalid(why) = parse_answer("", &mut out) else {
            panic!("an empty line accepted")
        };
        assert!(why.contains("empty line"), "{why}");
        let Answer::Invalid(why) = parse_answer("1,2", &mut out) else {
            panic!("commas accepted")
        };
        assert!(why.contains("found 1 values"), "{why}");
        let long = "x".repeat(1000);
        let Answer::Invalid(why) = parse_answer(&long, &mut out) else {
            panic!()
        };
        assert!(why.chars().count() < 200, "{why}");
    }

    #[test]
    fn shorten_cuts_on_character_boundaries() {
        assert_eq!(shorten("θθθθ", 2), "θθ…");
        assert_eq!(shorten("ab", 2), "ab");
    }
}
