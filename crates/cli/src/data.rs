//! Tables of numbers from CSV and NumPy `.npy` files (one row per simulation), and θ's
//! written as `.npy` for simulating elsewhere.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use nalgebra::DMatrix;
use npyz::WriterBuilder;

use crate::{CliError, Result};

/// A table read from a file: `rows × cols` values, row after row.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// The file.
    pub path: PathBuf,
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// The values, row-major.
    pub values: Vec<f64>,
}

impl Table {
    /// Row `r`.
    pub fn row(&self, r: usize) -> &[f64] {
        &self.values[r * self.cols..(r + 1) * self.cols]
    }
}

/// Reads a `.npy` (float64, 1-D or 2-D, C or Fortran order) or a CSV file (numbers
/// separated by commas, one row per line, an optional header line; `nan` and `inf` are
/// numbers).
///
/// # Errors
/// An unreadable file, or one that is not such a table.
pub fn read_table(path: &Path) -> Result<Table> {
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"))
    {
        read_npy(path)
    } else {
        let file = simfer_analysis::read_samples_csv(path)?;
        let (cols, rows) = file.samples.shape();
        Ok(Table {
            path: path.to_path_buf(),
            rows,
            cols,
            // One sample per column of the matrix: its column-major storage is row-major
            // in the file's terms.
            values: file.samples.as_slice().to_vec(),
        })
    }
}

fn read_npy(path: &Path) -> Result<Table> {
    let bytes = std::fs::read(path).map_err(|e| CliError::io(path, e))?;
    parse_npy(&bytes, path)
}

/// Parses the bytes of a `.npy` file (float64, 1-D or 2-D, C or Fortran order) as
/// [`read_table`] reads one; `path` names the file in the table and in errors.
///
/// # Errors
/// Bytes that are not such a table.
pub fn parse_npy(bytes: &[u8], path: &Path) -> Result<Table> {
    check_npy_nesting(bytes, path)?;
    let npy = npyz::NpyFile::new(bytes)
        .map_err(|e| CliError::format(path, format!("expected a NumPy .npy file: {e}")))?;
    let dtype = npy.dtype();
    if dtype != npyz::DType::Plain("<f8".parse().map_err(|_| CliError::format(path, "dtype"))?) {
        return Err(CliError::format(
            path,
            format!(
                "expected float64 values (dtype '<f8', so that θ's compare bit for bit), found \
                 {}",
                dtype.descr()
            ),
        ));
    }
    let shape = npy.shape().to_vec();
    let order = npy.order();
    let (rows, cols) = match shape.as_slice() {
        [n] => (*n as usize, 1),
        [n, k] => (*n as usize, *k as usize),
        other => {
            return Err(CliError::format(
                path,
                format!("expected a 1-D or 2-D array, found shape {other:?}"),
            ));
        }
    };
    let values: Vec<f64> = npy
        .into_vec()
        .map_err(|e| CliError::format(path, format!("could not read its values: {e}")))?;
    let values = if order == npyz::Order::Fortran && cols > 1 {
        let mut out = vec![0.0; values.len()];
        for r in 0..rows {
            for c in 0..cols {
                out[r * cols + c] = values[c * rows + r];
            }
        }
        out
    } else {
        values
    };
    Ok(Table {
        path: path.to_path_buf(),
        rows,
        cols,
        values,
    })
}

/// The deepest nesting of brackets a `.npy` header of a plain array has: the dictionary and
/// the shape's tuple.
const NPY_MAX_NESTING: usize = 2;

/// Refuses a `.npy` header nested deeper than [`NPY_MAX_NESTING`] (lists or tuples inside
/// the shape, a structured dtype) before it is parsed: the header's parser takes a time
/// exponential in the nesting (a header of twenty `[` took more than 20 s), and such a
/// file is no table of float64 anyway.
fn check_npy_nesting(bytes: &[u8], path: &Path) -> Result<()> {
    // The magic string, the version, then the header's length: 2 bytes (version 1) or 4.
    let (len, start) = match bytes.get(6) {
        Some(1) if bytes.len() >= 10 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        Some(_) if bytes.len() >= 12 => {
            let len = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
            (usize::try_from(len).unwrap_or(usize::MAX), 12)
        }
        // Too short for a header: the parser says what is wrong.
        _ => return Ok(()),
    };
    let header = &bytes[start.min(bytes.len())..start.saturating_add(len).min(bytes.len())];
    let mut depth = 0usize;
    for b in header {
        match b {
            b'[' | b'(' | b'{' => {
                depth += 1;
                if depth > NPY_MAX_NESTING {
                    return Err(CliError::format(
                        path,
                        format!(
                            "expected a NumPy .npy file of a 1-D or 2-D float64 array, found a \
                             header nested more than {NPY_MAX_NESTING} deep"
                        ),
                    ));
                }
            }
            b']' | b')' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Writes the columns of `m` (one θ per column) as the rows of a float64 `.npy` file.
///
/// # Errors
/// A file that cannot be written.
pub fn write_npy(path: &Path, m: &DMatrix<f64>) -> Result<()> {
    let io = |e: std::io::Error| CliError::io(path, e);
    let file = File::create(path).map_err(io)?;
    write_npy_to(BufWriter::new(file), m).map_err(io)
}

/// Writes the `.npy` file of [`write_npy`] to `writer` (e.g. a `Vec<u8>`).
///
/// # Errors
/// The writer's errors.
pub fn write_npy_to<W: Write>(writer: W, m: &DMatrix<f64>) -> std::io::Result<()> {
    let mut writer = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&[m.ncols() as u64, m.nrows() as u64])
        .writer(writer)
        .begin_nd()?;
    // Column-major storage: θ after θ, i.e. the rows of the file in C order.
    writer.extend(m.as_slice().iter().copied())?;
    writer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_and_csv_tables_round_trip_bit_for_bit() {
        let dir = std::env::temp_dir().join(format!("simfer-data-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let m = DMatrix::from_fn(3, 5, |i, j| (i as f64 + 0.1) / (j as f64 + 0.7) - 1e-300);
        let npy = dir.join("t.npy");
        write_npy(&npy, &m).unwrap();
        let t = read_table(&npy).unwrap();
        assert_eq!((t.rows, t.cols), (5, 3));
        assert_eq!(t.row(2), m.column(2).as_slice());
        let csv = dir.join("t.csv");
        simfer_analysis::write_samples_csv(&csv, &m, None).unwrap();
        let c = read_table(&csv).unwrap();
        assert_eq!(c.values, t.values);
        std::fs::write(dir.join("bad.npy"), b"not numpy").unwrap();
        assert!(read_table(&dir.join("bad.npy")).is_err());
    }

    /// Found by the fuzz target `npy` (fuzz/corpus/npy/crash-nested-header.npy): a header
    /// of nested brackets took the header's parser more than 20 s. It is refused at once,
    /// and a file as simfer writes it still reads.
    #[test]
    fn a_deeply_nested_npy_header_is_refused_at_once() {
        let path = Path::new("nested.npy");
        for version in [1u8, 2] {
            let dict = format!(
                "{{'descr': '<f8', 'shape': {}(2,){}}}",
                "[".repeat(40),
                "]".repeat(40)
            );
            let mut bytes = b"\x93NUMPY".to_vec();
            bytes.extend([version, 0]);
            if version == 1 {
                bytes.extend((dict.len() as u16).to_le_bytes());
            } else {
                bytes.extend((dict.len() as u32).to_le_bytes());
            }
            bytes.extend(dict.as_bytes());
            let start = std::time::Instant::now();
            let e = parse_npy(&bytes, path).unwrap_err();
            assert!(e.to_string().contains("nested more than 2 deep"), "{e}");
            assert!(start.elapsed().as_secs() < 1);
        }
        let mut written = Vec::new();
        write_npy_to(&mut written, &DMatrix::from_element(2, 3, 0.5)).unwrap();
        let t = parse_npy(&written, path).unwrap();
        assert_eq!((t.rows, t.cols), (3, 2));
    }
}
