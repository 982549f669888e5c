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
}
