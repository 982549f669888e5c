//! Files of checksummed records, the storage of a run directory.
//!
//! A file starts with a 16-byte header: `simfer` and two bytes `0, 1` (the format version),
//! then 8 bytes naming the file's kind (ASCII, padded with zeros). Records follow, each
//! `length (u32, little-endian) · CRC-32 of the payload (u32, little-endian) · payload`.
//!
//! An append-only file ([`RecordLog`]) gets each record with one write, then `fsync`, before
//! [`append`](RecordLog::append) returns. A process killed during a write leaves at most
//! the last record torn (short) or with a wrong checksum: reading drops such a last record
//! with a warning on stderr, and a writer cuts it off before appending. A bad record
//! anywhere else is not what a kill leaves: it is an error naming the file and the record.
//!
//! Files written whole ([`write_atomic`]) go to a temporary file that is synced and then
//! renamed over the old one (and the directory synced), so they are either the old or the
//! new file, never a mix.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::{CliError, Result};

/// The first 8 bytes of every record file: the name and the format version (1).
const MAGIC: &[u8; 8] = b"simfer\x00\x01";
/// The header's length.
pub const HEADER_LEN: usize = 16;
/// A record's length and checksum.
const RECORD_HEAD: usize = 8;
/// The largest payload a record may have (a longer length is a corrupted one).
const MAX_PAYLOAD: usize = 1 << 31;

fn header(kind: &str) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(MAGIC);
    for (d, s) in h[8..].iter_mut().zip(kind.bytes()) {
        *d = s;
    }
    h
}

fn kind_name(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .trim_end_matches('\0')
        .to_string()
}

/// A record with its length and checksum in front.
fn framed(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(RECORD_HEAD + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// What reading a record file found.
#[derive(Debug, Default)]
pub struct Records {
    /// The intact records' payloads, in order.
    pub payloads: Vec<Vec<u8>>,
    /// The length of the file up to the end of the last intact record.
    pub intact_len: u64,
    /// A torn or corrupted last record that was dropped: why.
    pub dropped: Option<String>,
}

/// Reads the record file of `kind` at `path`. A torn or corrupted last record is dropped
/// (and said so in [`Records::dropped`]) if `tolerate_last` is set, an error otherwise.
///
/// # Errors
/// An unreadable file, a header of another format or kind, and a corrupted record that is
/// not the last ([`CliError::Corrupted`], naming the file and the record from 1).
pub fn read_records(path: &Path, kind: &str, tolerate_last: bool) -> Result<Records> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| CliError::io(path, e))?;
    parse_records(&bytes, path, kind, tolerate_last)
}

/// Parses the bytes of a record file of `kind` as [`read_records`] reads one; `path` names
/// the file in errors.
///
/// # Errors
/// As [`read_records`], but for reading the file.
pub fn parse_records(
    bytes: &[u8],
    path: &Path,
    kind: &str,
    tolerate_last: bool,
) -> Result<Records> {
    if bytes.len() < HEADER_LEN || bytes[..8] != MAGIC[..] {
        return Err(CliError::format(
            path,
            format!(
                "expected a simfer record file (version 1) of kind `{kind}`, found {}",
                if bytes.len() < HEADER_LEN {
                    format!("{} bytes", bytes.len())
                } else {
                    "another header".to_string()
                }
            ),
        ));
    }
    if bytes[..HEADER_LEN] != header(kind) {
        return Err(CliError::format(
            path,
            format!(
                "expected a record file of kind `{kind}`, found one of kind `{}`",
                kind_name(&bytes[8..HEADER_LEN])
            ),
        ));
    }
    let mut out = Records {
        intact_len: HEADER_LEN as u64,
        ..Records::default()
    };
    let mut at = HEADER_LEN;
    let mut record = 0;
    while at < bytes.len() {
        record += 1;
        let rest = &bytes[at..];
        let problem = if rest.len() < RECORD_HEAD {
            Some(format!(
                "{} bytes, shorter than a record's length and checksum",
                rest.len()
            ))
        } else {
            let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            let crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
            if len > MAX_PAYLOAD {
                Some(format!("a length of {len} bytes"))
            } else if rest.len() < RECORD_HEAD + len {
                Some(format!(
                    "{len} bytes announced, {} there",
                    rest.len() - RECORD_HEAD
                ))
            } else {
                let payload = &rest[RECORD_HEAD..RECORD_HEAD + len];
                if crc32fast::hash(payload) != crc {
                    Some("its checksum does not match".to_string())
                } else {
                    out.payloads.push(payload.to_vec());
                    at += RECORD_HEAD + len;
                    out.intact_len = at as u64;
                    None
                }
            }
        };
        if let Some(what) = problem {
            // A problem in the last record (nothing intact after it) is what a write cut
            // short leaves.
            let is_last = next_record_after(bytes, at).is_none();
            if tolerate_last && is_last {
                out.dropped = Some(format!("record {record}: {what}"));
                return Ok(out);
            }
            return Err(CliError::Corrupted {
                path: path.to_path_buf(),
                record,
                what,
            });
        }
    }
    Ok(out)
}

/// Whether an intact record starts anywhere after the bad one at `at` (then the bad one is
/// not the last). Searches every later offset for a length and checksum that fit.
fn next_record_after(bytes: &[u8], at: usize) -> Option<usize> {
    (at + 1..bytes.len().saturating_sub(RECORD_HEAD - 1)).find(|&p| {
        let r = &bytes[p..];
        let len = u32::from_le_bytes([r[0], r[1], r[2], r[3]]) as usize;
        let crc = u32::from_le_bytes([r[4], r[5], r[6], r[7]]);
        // An empty payload's CRC is 0 and zero bytes would always match: require data.
        len > 0
            && r.len() >= RECORD_HEAD + len
            && crc32fast::hash(&r[RECORD_HEAD..RECORD_HEAD + len]) == crc
    })
}

/// Prints the warning for a dropped last record.
pub fn warn_dropped(path: &Path, records: &Records) {
    if let Some(why) = &records.dropped {
        eprintln!(
            "warning: {}: dropped the last record, which a write cut short left incomplete \
             ({why}); what it held is made again",
            path.display()
        );
    }
}

/// An append-only record file, safe to append to from several threads.
#[derive(Debug)]
pub struct RecordLog {
    path: PathBuf,
    file: Mutex<File>,
}

impl RecordLog {
    /// Opens the record file of `kind` at `path` for appending (creating it if missing):
    /// returns its intact records, after cutting off a torn or corrupted last record (with
    /// a warning).
    ///
    /// # Errors
    /// As [`read_records`], and I/O errors.
    pub fn open(path: &Path, kind: &str) -> Result<(RecordLog, Vec<Vec<u8>>)> {
        if !path.exists() {
            write_atomic_bytes(path, &header(kind))?;
        }
        let records = read_records(path, kind, true)?;
        warn_dropped(path, &records);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| CliError::io(path, e))?;
        let len = file.metadata().map_err(|e| CliError::io(path, e))?.len();
        if len != records.intact_len {
            file.set_len(records.intact_len)
                .and_then(|()| file.sync_all())
                .map_err(|e| CliError::io(path, e))?;
        }
        file.seek(SeekFrom::End(0))
            .map_err(|e| CliError::io(path, e))?;
        Ok((
            RecordLog {
                path: path.to_path_buf(),
                file: Mutex::new(file),
            },
            records.payloads,
        ))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record and syncs it to disk before returning.
    ///
    /// # Errors
    /// The write or the sync failed.
    pub fn append(&self, payload: &[u8]) -> Result<()> {
        let record = framed(payload);
        let mut file = self
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        file.write_all(&record)
            .and_then(|()| file.sync_data())
            .map_err(|e| CliError::io(&self.path, e))
    }
}

/// Writes `bytes` to `path` atomically: a temporary file beside it, synced, renamed over
/// `path`, and the directory synced ([`simfer_flows::io::write_atomically`]).
///
/// # Errors
/// I/O errors naming the file.
pub fn write_atomic_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    simfer_flows::io::write_atomically(path, bytes).map_err(|e| CliError::io(path, e))
}

/// Writes a file holding one record of `kind` atomically (see [`write_atomic_bytes`]).
///
/// # Errors
/// I/O errors naming the file.
pub fn write_atomic(path: &Path, kind: &str, payload: &[u8]) -> Result<()> {
    let mut bytes = header(kind).to_vec();
    bytes.extend(framed(payload));
    write_atomic_bytes(path, &bytes)
}

/// Reads a file of one record written by [`write_atomic`].
///
/// # Errors
/// As [`read_records`] (every problem is an error: such a file is never torn), and a file
/// with another number of records.
pub fn read_single(path: &Path, kind: &str) -> Result<Vec<u8>> {
    let mut records = read_records(path, kind, false)?;
    if records.payloads.len() != 1 {
        return Err(CliError::format(
            path,
            format!("expected one record, found {}", records.payloads.len()),
        ));
    }
    Ok(records.payloads.remove(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("simfer-records-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn records_round_trip_and_a_torn_last_one_is_cut_off() {
        let path = temp("torn.log");
        let _ = std::fs::remove_file(&path);
        {
            let (log, old) = RecordLog::open(&path, "test").unwrap();
            assert!(old.is_empty());
            for i in 0..3u8 {
                log.append(&[i; 10]).unwrap();
            }
        }
        // A write cut short: a record's head and half its payload.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&framed(&[9; 10])[..13]).unwrap();
        drop(f);
        let read = read_records(&path, "test", true).unwrap();
        assert_eq!(read.payloads, vec![vec![0; 10], vec![1; 10], vec![2; 10]]);
        assert!(read.dropped.unwrap().starts_with("record 4"));
        assert!(read_records(&path, "test", false).is_err());
        // Opening cuts it off, and appending goes on after the intact records.
        let (log, old) = RecordLog::open(&path, "test").unwrap();
        assert_eq!(old.len(), 3);
        log.append(&[7; 3]).unwrap();
        let read = read_records(&path, "test", false).unwrap();
        assert_eq!(read.payloads.len(), 4);
        assert_eq!(read.payloads[3], vec![7; 3]);
    }

    #[test]
    fn a_corrupted_middle_record_is_an_error_naming_it() {
        let path = temp("middle.log");
        let _ = std::fs::remove_file(&path);
        let (log, _) = RecordLog::open(&path, "test").unwrap();
        for i in 0..4u8 {
            log.append(&[i; 20]).unwrap();
        }
        drop(log);
        let mut bytes = std::fs::read(&path).unwrap();
        // A byte of record 2's payload.
        bytes[HEADER_LEN + 28 + 8 + 5] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        let e = read_records(&path, "test", true).unwrap_err();
        assert!(matches!(e, CliError::Corrupted { record: 2, .. }), "{e}");
        assert!(e.to_string().contains("middle.log: record 2"), "{e}");
        // The last record corrupted instead: dropped.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[HEADER_LEN + 28 + 8 + 5] ^= 0x40;
        let n = bytes.len();
        bytes[n - 1] ^= 0x01;
        std::fs::write(&path, &bytes).unwrap();
        let read = read_records(&path, "test", true).unwrap();
        assert_eq!(read.payloads.len(), 3);
        assert!(read.dropped.unwrap().contains("checksum"));
    }

    #[test]
    fn single_record_files_are_atomic_and_checked() {
        let path = temp("single.bin");
        write_atomic(&path, "one", b"hello").unwrap();
        assert_eq!(read_single(&path, "one").unwrap(), b"hello");
        assert!(!simfer_flows::io::atomic_tmp_path(&path).exists());
        let e = read_single(&path, "two").unwrap_err();
        assert!(
            e.to_string()
                .contains("kind `two`, found one of kind `one`"),
            "{e}"
        );
        let mut bytes = std::fs::read(&path).unwrap();
        let n = bytes.len();
        bytes[n - 1] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(
            read_single(&path, "one"),
            Err(CliError::Corrupted { record: 1, .. })
        ));
    }
}
