//! What rank 0 and the worker ranks say to each other, as bytes, and how a chunk is split
//! into shares. Nothing here calls MPI, so all of it is tested without `mpirun`.
//!
//! Every message starts with the four bytes `S`, `F`, [`VERSION`] and its kind; integers
//! are little-endian `u64`, floats the little-endian bits of an `f64` (so NaN payloads and
//! signed zeros arrive unchanged), strings a `u64` byte length and UTF-8.
//!
//! | kind | from | fields |
//! |---|---|---|
//! | `W` work | rank 0 | batch, first index, seed, first stream, theta_dim, x_dim, rows, θ (`rows × theta_dim` floats) |
//! | `S` stop | rank 0 | none |
//! | `D` done | worker | batch, rows, x_dim, x (`rows × x_dim` floats), failed count, then per failed row its index and reason |
//! | `E` error | worker | batch, message |

use std::ops::Range;

/// The version of the message format; a message of another version is refused.
pub(crate) const VERSION: u8 = 1;

/// The largest message either side sends (1 GiB, well below the `i32` element count of
/// one MPI message).
pub(crate) const MAX_MESSAGE_BYTES: usize = 1 << 30;

/// Bytes of a work or done message other than its floats and reasons.
const HEADER_BYTES: usize = 4 + 8 * 8;

const KIND_WORK: u8 = b'W';
const KIND_STOP: u8 = b'S';
const KIND_DONE: u8 = b'D';
const KIND_ERROR: u8 = b'E';

/// What a worker is asked to simulate: rows `first_index..first_index + rows` of a batch,
/// row `k` drawing from `derive_rng(seed, first_stream + k)`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Work {
    /// The number of this exchange, echoed in the answer.
    pub batch: u64,
    /// The simulation index of the first row.
    pub first_index: u64,
    /// The batch's seed.
    pub seed: u64,
    /// The random stream of the first row.
    pub first_stream: u64,
    /// rank 0's simulator's `theta_dim`.
    pub theta_dim: u64,
    /// rank 0's simulator's `x_dim`.
    pub x_dim: u64,
    /// `rows × theta_dim` values, one θ after another.
    pub theta: Vec<f64>,
}

/// A message to a worker.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Request {
    /// Simulate these rows and answer.
    Work(Work),
    /// Return from `serve`.
    Stop,
}

/// A worker's answer to one [`Work`].
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Reply {
    /// Every row simulated: `x` is `rows × x_dim`; `failed` lists the rows the simulator could
    /// not produce (by simulation index), with reasons.
    Done {
        /// The work's batch number.
        batch: u64,
        /// Rows answered.
        rows: u64,
        /// Values per row.
        x_dim: u64,
        /// The simulations, one after another.
        x: Vec<f64>,
        /// Failed rows (simulation index, reason).
        failed: Vec<(u64, String)>,
    },
    /// The share could not be simulated: the error, as text.
    Error {
        /// The work's batch number (`u64::MAX` if the request could not be read).
        batch: u64,
        /// What went wrong.
        message: String,
    },
}

/// Splits `rows` into `parts` contiguous shares in order, the first `rows % parts` one row
/// longer than the others (`parts` is at least 1).
pub(crate) fn shares(rows: usize, parts: usize) -> Vec<Range<usize>> {
    let parts = parts.max(1);
    let (base, extra) = (rows / parts, rows % parts);
    let mut start = 0;
    (0..parts)
        .map(|p| {
            let len = base + usize::from(p < extra);
            let share = start..start + len;
            start += len;
            share
        })
        .collect()
}

/// The most rows one share may have so that its work and its answer (without reasons)
/// each fit in [`MAX_MESSAGE_BYTES`].
pub(crate) fn max_share_rows(theta_dim: usize, x_dim: usize) -> usize {
    let per_row = 8 * theta_dim.max(x_dim).max(1);
    ((MAX_MESSAGE_BYTES - HEADER_BYTES) / per_row).max(1)
}

fn header(kind: u8, capacity: usize) -> Vec<u8> {
    let mut b = Vec::with_capacity(capacity);
    b.extend_from_slice(&[b'S', b'F', VERSION, kind]);
    b
}

fn put_u64(b: &mut Vec<u8>, v: u64) {
    b.extend_from_slice(&v.to_le_bytes());
}

fn put_f64s(b: &mut Vec<u8>, values: &[f64]) {
    for v in values {
        b.extend_from_slice(&v.to_bits().to_le_bytes());
    }
}

fn put_str(b: &mut Vec<u8>, s: &str) {
    put_u64(b, s.len() as u64);
    b.extend_from_slice(s.as_bytes());
}

/// The fields of a work message other than θ.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WorkHeader {
    pub batch: u64,
    pub first_index: u64,
    pub seed: u64,
    pub first_stream: u64,
    pub theta_dim: u64,
    pub x_dim: u64,
}

/// A work message for the rows `theta` (`theta.len() / theta_dim` of them).
pub(crate) fn encode_work(h: &WorkHeader, theta: &[f64]) -> Vec<u8> {
    let rows = theta.len() as u64 / h.theta_dim.max(1);
    let mut b = header(KIND_WORK, HEADER_BYTES + 8 * theta.len());
    for v in [
        h.batch,
        h.first_index,
        h.seed,
        h.first_stream,
        h.theta_dim,
        h.x_dim,
        rows,
    ] {
        put_u64(&mut b, v);
    }
    put_f64s(&mut b, theta);
    b
}

/// The stop message.
pub(crate) fn encode_stop() -> Vec<u8> {
    header(KIND_STOP, 4)
}

/// A done message for `rows` rows of `x_dim` values.
pub(crate) fn encode_done(
    batch: u64,
    x_dim: usize,
    x: &[f64],
    failed: &[(u64, String)],
) -> Vec<u8> {
    let rows = (x.len() / x_dim.max(1)) as u64;
    let reasons: usize = failed.iter().map(|(_, why)| 16 + why.len()).sum();
    let mut b = header(KIND_DONE, HEADER_BYTES + 8 * x.len() + reasons);
    put_u64(&mut b, batch);
    put_u64(&mut b, rows);
    put_u64(&mut b, x_dim as u64);
    put_f64s(&mut b, x);
    put_u64(&mut b, failed.len() as u64);
    for (index, why) in failed {
        put_u64(&mut b, *index);
        put_str(&mut b, why);
    }
    b
}

/// An error message.
pub(crate) fn encode_error(batch: u64, message: &str) -> Vec<u8> {
    let mut b = header(KIND_ERROR, 4 + 16 + message.len());
    put_u64(&mut b, batch);
    put_str(&mut b, message);
    b
}

/// Reads a message from the front, checking every length against what is left.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        if self.bytes.len() < n {
            return Err(format!(
                "the message ends inside {what}: {n} more bytes expected, {} found",
                self.bytes.len()
            ));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn u64(&mut self, what: &str) -> Result<u64, String> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// A count, checked to fit in what is left at `bytes_each` bytes per item.
    fn count(&mut self, what: &str, bytes_each: usize) -> Result<usize, String> {
        let n = self.u64(what)?;
        match usize::try_from(n) {
            Ok(n)
                if n.checked_mul(bytes_each)
                    .is_some_and(|b| b <= self.bytes.len()) =>
            {
                Ok(n)
            }
            _ => Err(format!(
                "{what} is {n}, more than the {} bytes left in the message can hold",
                self.bytes.len()
            )),
        }
    }

    fn f64s(&mut self, n: usize, what: &str) -> Result<Vec<f64>, String> {
        let len = n
            .checked_mul(8)
            .ok_or_else(|| format!("{what}: {n} values cannot be in one message"))?;
        let b = self.take(len, what)?;
        Ok(b.chunks_exact(8)
            .map(|c| {
                let mut a = [0u8; 8];
                a.copy_from_slice(c);
                f64::from_bits(u64::from_le_bytes(a))
            })
            .collect())
    }

    fn string(&mut self, what: &str) -> Result<String, String> {
        let n = self.count(what, 1)?;
        let b = self.take(n, what)?;
        String::from_utf8(b.to_vec()).map_err(|_| format!("{what} is not UTF-8"))
    }

    fn end(&self) -> Result<(), String> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{} bytes after the end of the message",
                self.bytes.len()
            ))
        }
    }
}

/// Checks the magic bytes and the version and returns the kind and a reader after them.
fn open(bytes: &[u8]) -> Result<(u8, Reader<'_>), String> {
    if bytes.len() < 4 || bytes[0] != b'S' || bytes[1] != b'F' {
        return Err(format!(
            "expected a simfer MPI message (starting with `SF`), found {} bytes starting {:?}",
            bytes.len(),
            &bytes[..bytes.len().min(4)]
        ));
    }
    if bytes[2] != VERSION {
        return Err(format!(
            "expected message format version {VERSION}, found version {} (are all ranks \
             running the same build?)",
            bytes[2]
        ));
    }
    Ok((bytes[3], Reader { bytes: &bytes[4..] }))
}

/// Reads a message to a worker.
pub(crate) fn decode_request(bytes: &[u8]) -> Result<Request, String> {
    let (kind, mut r) = open(bytes)?;
    match kind {
        KIND_STOP => {
            r.end()?;
            Ok(Request::Stop)
        }
        KIND_WORK => {
            let batch = r.u64("the batch number")?;
            let first_index = r.u64("the first index")?;
            let seed = r.u64("the seed")?;
            let first_stream = r.u64("the first stream")?;
            let theta_dim = r.u64("theta_dim")?;
            let x_dim = r.u64("x_dim")?;
            let rows = r.u64("the number of rows")?;
            let values = rows
                .checked_mul(theta_dim)
                .and_then(|v| usize::try_from(v).ok())
                .ok_or_else(|| format!("{rows} rows of θ of dimension {theta_dim} overflow"))?;
            let theta = r.f64s(values, "θ")?;
            r.end()?;
            Ok(Request::Work(Work {
                batch,
                first_index,
                seed,
                first_stream,
                theta_dim,
                x_dim,
                theta,
            }))
        }
        other => Err(format!(
            "expected a work or stop message, found a message of kind {:?}",
            char::from(other)
        )),
    }
}

/// Reads a worker's answer.
pub(crate) fn decode_reply(bytes: &[u8]) -> Result<Reply, String> {
    let (kind, mut r) = open(bytes)?;
    match kind {
        KIND_DONE => {
            let batch = r.u64("the batch number")?;
            let rows = r.u64("the number of rows")?;
            let x_dim = r.u64("x_dim")?;
            let values = rows
                .checked_mul(x_dim)
                .and_then(|v| usize::try_from(v).ok())
                .ok_or_else(|| format!("{rows} rows of x of dimension {x_dim} overflow"))?;
            let x = r.f64s(values, "x")?;
            let n_failed = r.count("the number of failed rows", 16)?;
            let mut failed = Vec::with_capacity(n_failed);
            for _ in 0..n_failed {
                let index = r.u64("a failed row's index")?;
                failed.push((index, r.string("a failed row's reason")?));
            }
            r.end()?;
            Ok(Reply::Done {
                batch,
                rows,
                x_dim,
                x,
                failed,
            })
        }
        KIND_ERROR => {
            let batch = r.u64("the batch number")?;
            let message = r.string("the error message")?;
            r.end()?;
            Ok(Reply::Error { batch, message })
        }
        other => Err(format!(
            "expected a done or error message, found a message of kind {:?}",
            char::from(other)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_contiguous_in_order_and_balanced() {
        for rows in 0..40 {
            for parts in 1..9 {
                let s = shares(rows, parts);
                assert_eq!(s.len(), parts);
                assert_eq!(s[0].start, 0);
                assert_eq!(s[parts - 1].end, rows);
                for w in s.windows(2) {
                    assert_eq!(w[0].end, w[1].start, "{rows} rows in {parts}: {s:?}");
                    assert!(w[0].len() >= w[1].len(), "{rows} rows in {parts}: {s:?}");
                }
                let (min, max) = (
                    s.iter().map(Range::len).min().unwrap_or(0),
                    s.iter().map(Range::len).max().unwrap_or(0),
                );
                assert!(max - min <= 1, "{rows} rows in {parts}: {s:?}");
            }
        }
        assert_eq!(shares(7, 3), vec![0..3, 3..5, 5..7]);
        assert_eq!(shares(2, 3), vec![0..1, 1..2, 2..2]);
        assert_eq!(shares(5, 0), vec![0..5]);
    }

    #[test]
    fn max_share_rows_fit_in_a_message() {
        for (td, xd) in [(1, 1), (2, 2), (5, 8), (10, 10_000), (1_000_000, 1)] {
            let rows = max_share_rows(td, xd);
            assert!(rows >= 1);
            assert!(HEADER_BYTES + rows * 8 * td.max(xd) <= MAX_MESSAGE_BYTES);
            assert!(HEADER_BYTES + (rows + 1) * 8 * td.max(xd) > MAX_MESSAGE_BYTES || rows == 1);
        }
    }

    fn header_of(batch: u64) -> WorkHeader {
        WorkHeader {
            batch,
            first_index: 17,
            seed: u64::MAX - 3,
            first_stream: u64::MAX,
            theta_dim: 2,
            x_dim: 3,
        }
    }

    #[test]
    fn work_and_stop_round_trip_bit_for_bit() {
        let theta = [
            0.5,
            -0.0,
            f64::NAN,
            f64::from_bits(0x7ff8_0000_0000_1234),
            1e-300,
            -1.0,
        ];
        let bytes = encode_work(&header_of(9), &theta);
        let Ok(Request::Work(w)) = decode_request(&bytes) else {
            panic!("not a work message: {:?}", decode_request(&bytes));
        };
        assert_eq!(
            (
                w.batch,
                w.first_index,
                w.seed,
                w.first_stream,
                w.theta_dim,
                w.x_dim
            ),
            (9, 17, u64::MAX - 3, u64::MAX, 2, 3)
        );
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&w.theta), bits(&theta));
        assert_eq!(decode_request(&encode_stop()), Ok(Request::Stop));
        // No rows.
        let empty = encode_work(&header_of(1), &[]);
        assert!(matches!(decode_request(&empty), Ok(Request::Work(w)) if w.theta.is_empty()));
    }

    #[test]
    fn replies_round_trip_bit_for_bit() {
        let x = [1.0, f64::NEG_INFINITY, f64::NAN, 2.0, -0.0, 3.5];
        let failed = vec![
            (18, "the simulator reported: ✗ diverged".to_string()),
            (19, String::new()),
        ];
        let bytes = encode_done(4, 3, &x, &failed);
        let Ok(Reply::Done {
            batch,
            rows,
            x_dim,
            x: got,
            failed: got_failed,
        }) = decode_reply(&bytes)
        else {
            panic!("not a done message: {:?}", decode_reply(&bytes));
        };
        assert_eq!((batch, rows, x_dim), (4, 2, 3));
        assert_eq!(
            got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            x.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
        assert_eq!(got_failed, failed);
        assert_eq!(
            decode_reply(&encode_error(7, "simulation 3 failed: ∞")),
            Ok(Reply::Error {
                batch: 7,
                message: "simulation 3 failed: ∞".to_string()
            })
        );
    }

    #[test]
    fn damaged_messages_are_errors_not_panics() {
        let work = encode_work(&header_of(2), &[1.0, 2.0, 3.0, 4.0]);
        let done = encode_done(2, 2, &[1.0, 2.0], &[(5, "why".to_string())]);
        // Every truncation of a valid message is an error, never a panic.
        for cut in 0..work.len() {
            assert!(decode_request(&work[..cut]).is_err(), "cut at {cut}");
        }
        for cut in 0..done.len() {
            assert!(decode_reply(&done[..cut]).is_err(), "cut at {cut}");
        }
        // Trailing bytes.
        let mut long = work.clone();
        long.push(0);
        assert!(decode_request(&long).unwrap_err().contains("after the end"));
        // Another version, another magic, the wrong direction.
        let mut v2 = work.clone();
        v2[2] = VERSION + 1;
        assert!(decode_request(&v2).unwrap_err().contains("version"));
        assert!(decode_request(b"hello").unwrap_err().contains("SF"));
        assert!(decode_request(&done).unwrap_err().contains("work or stop"));
        assert!(decode_reply(&work).unwrap_err().contains("done or error"));
        // Counts larger than the message (no huge allocation, no overflow).
        let mut huge = encode_work(&header_of(2), &[]);
        let rows_at = 4 + 6 * 8;
        huge[rows_at..rows_at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode_request(&huge).is_err());
        let mut many_failed = encode_done(1, 1, &[1.0], &[]);
        let n = many_failed.len();
        many_failed[n - 8..].copy_from_slice(&(1u64 << 60).to_le_bytes());
        assert!(
            decode_reply(&many_failed)
                .unwrap_err()
                .contains("failed rows")
        );
        // A reason that is not UTF-8.
        let mut bad = encode_done(1, 1, &[1.0], &[(0, "ab".to_string())]);
        let n = bad.len();
        bad[n - 1] = 0xff;
        assert!(decode_reply(&bad).unwrap_err().contains("UTF-8"));
    }
}
