//! Saving and loading estimators in a self-describing, checksummed format.
//!
//! Every saved estimator starts with the format tag [`FORMAT_TAG`], its **kind** (`maf`,
//! …) and the version of that kind's layout, followed by the model: its architecture
//! (configuration and dimensions), standardization statistics and parameters. It carries
//! a **checksum** of all of it, a CRC-32 (the polynomial of zlib, gzip and PNG), so that a
//! file changed or corrupted after it was written is an error
//! ([`FlowError::Corrupted`]) instead of loading as another estimator. Two encodings hold
//! the same content:
//!
//! * binary (postcard): a header `(format, kind, version)`, the model, then the CRC-32 of
//!   all the bytes before it, 4 bytes little-endian (in Python,
//!   `zlib.crc32(data[:-4]) == int.from_bytes(data[-4:], "little")`); it stores the bits of
//!   every number, so a loaded estimator computes bit-identical results;
//! * JSON: `{"format": "simfer-estimator", "kind": "maf", "version": 4, "checksum":
//!   "crc32:1a2b3c4d", "model": {…}}`, for people and other tools (numbers round-trip
//!   exactly). The checksum is that of the document's canonical form without its
//!   `checksum` field ([`json_checksum`]): no whitespace, the keys of every object sorted,
//!   every number in its shortest form that reads back to the same value. Indenting the
//!   file or reordering its keys keeps it valid; changing a value does not. A file edited
//!   on purpose is sealed again with [`seal_json`].
//!
//! Reading checks, in this order: the format tag; the kind (another is a
//! [`FlowError::UnknownKind`]); the version (one this build does not read is a
//! [`FlowError::VersionMismatch`]); the checksum (a mismatch is a
//! [`FlowError::Corrupted`] giving both); then the model itself: parameters that do not
//! fit the stored architecture are a [`FlowError::ArchitectureMismatch`], non-finite
//! parameters or statistics a [`FlowError::NonFinite`].
//!
//! # Versions
//!
//! Each kind records the first of its versions that carries a checksum,
//! [`SavedModel::CHECKSUMMED_SINCE`]: `maf` 4, `nsf` 2, `mdn` 2, `ratio-classifier` 2. The
//! model's layout in that version is the one of the version before; only the checksum is
//! new. Files of the earlier versions, written before checksums, still load without one,
//! and so do the MAF files of the format tag `simfer-maf` (versions 1 and 2). Such a file
//! cannot be checked, but it must end where its model ends; and a checksum, where there is
//! one, is checked whatever the version says. So a corrupted version number cannot make a
//! checked file pass as an unchecked one: in binary the checksum's 4 bytes are then left
//! over after the model, in JSON the `checksum` field is still there and covers the
//! version.

use std::io::Write;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::FlowError;

/// The format tag at the start of every saved estimator.
pub const FORMAT_TAG: &str = "simfer-estimator";

/// The format tag of the MAF files of earlier versions (read, not written).
pub const LEGACY_MAF_TAG: &str = "simfer-maf";

/// The name of the checksum's algorithm, before the colon in a JSON file's `checksum`.
pub const CHECKSUM_ALGORITHM: &str = "crc32";

/// The length of a binary file's checksum, at its end.
const CHECKSUM_LEN: usize = 4;

/// A model of this crate that saves in the self-describing format.
pub trait SavedModel: Serialize + Sized {
    /// What a file holds (the model's serde form), checked by
    /// [`from_stored`](Self::from_stored) when it is read.
    type Stored: DeserializeOwned;
    /// The kind recorded in the file (e.g. `"maf"`).
    const KIND: &'static str;
    /// The version of this kind's layout that this build writes.
    const VERSION: u32;
    /// The oldest version of this kind's layout that this build reads.
    const OLDEST_VERSION: u32;
    /// The first version of this kind whose files carry a checksum (files of earlier
    /// versions have none and are read without; a new kind starts checksummed, at 1).
    const CHECKSUMMED_SINCE: u32;

    /// Decodes a binary body (the model, without header or checksum) of an older `version`
    /// (between [`OLDEST_VERSION`](Self::OLDEST_VERSION) and [`VERSION`](Self::VERSION));
    /// the default reads the current layout. The body must be decoded to its end
    /// ([`decode_exact`]).
    fn from_binary_body(version: u32, body: &[u8]) -> Result<Self, FlowError> {
        let _ = version;
        Self::from_stored(decode_exact(body)?)
    }

    /// The model from what a file holds, with its consistency checked (e.g. the number of
    /// parameters against the architecture).
    fn from_stored(stored: Self::Stored) -> Result<Self, FlowError>;
}

/// Decodes a `T` from all of `body`: bytes left over after it are an error (a file that
/// does not end where its model ends was changed or corrupted).
pub fn decode_exact<T: DeserializeOwned>(body: &[u8]) -> Result<T, FlowError> {
    let (value, rest) =
        postcard::take_from_bytes(body).map_err(|e| FlowError::Serialization(e.to_string()))?;
    if !rest.is_empty() {
        return Err(corrupted(format!(
            "{} bytes after the end of the model, where the file should end",
            rest.len()
        )));
    }
    Ok(value)
}

/// A [`FlowError::Corrupted`] without a file.
fn corrupted(what: String) -> FlowError {
    FlowError::Corrupted { path: None, what }
}

/// A checksum as written in JSON and in messages: `crc32:` and 8 hexadecimal digits.
fn label(crc: u32) -> String {
    format!("{CHECKSUM_ALGORITHM}:{crc:08x}")
}

/// The error for a recorded checksum that the content does not give.
fn mismatch(recorded: &str, computed: &str) -> FlowError {
    corrupted(format!(
        "checksum mismatch: the file says {recorded}, its content gives {computed}"
    ))
}

/// The binary header.
#[derive(Serialize, Deserialize)]
pub(crate) struct Header {
    pub(crate) format: String,
    pub(crate) kind: String,
    pub(crate) version: u32,
}

/// The header of the legacy MAF format: `(format, version)`.
#[derive(Deserialize)]
struct LegacyHeader {
    format: String,
    version: u32,
}

/// The kind and version of a binary file, and the body after the header. Legacy MAF
/// files report kind `maf` with their own version (1 or 2).
pub(crate) fn read_header(bytes: &[u8]) -> Result<(String, u32, &[u8]), FlowError> {
    if let Ok((h, rest)) = postcard::take_from_bytes::<LegacyHeader>(bytes)
        && h.format == LEGACY_MAF_TAG
    {
        return Ok(("maf".into(), h.version, rest));
    }
    let (h, rest) = postcard::take_from_bytes::<Header>(bytes).map_err(|e| {
        FlowError::Serialization(format!(
            "not a saved estimator (no `{FORMAT_TAG}` header): {e}"
        ))
    })?;
    if h.format != FORMAT_TAG {
        return Err(FlowError::Serialization(format!(
            "not a saved estimator: expected the format tag `{FORMAT_TAG}`, found `{}`",
            h.format
        )));
    }
    Ok((h.kind, h.version, rest))
}

/// Checks that `version` of `M`'s kind can be read.
pub(crate) fn check_version<M: SavedModel>(version: u32) -> Result<(), FlowError> {
    if !(M::OLDEST_VERSION..=M::VERSION).contains(&version) {
        return Err(FlowError::VersionMismatch {
            expected_format: format!("{FORMAT_TAG} `{}`", M::KIND),
            oldest_version: M::OLDEST_VERSION,
            expected_version: M::VERSION,
            found_format: format!("{FORMAT_TAG} `{}`", M::KIND),
            found_version: version,
        });
    }
    Ok(())
}

/// The model of a binary file (all of it, `bytes`) whose header gave `version` (checked
/// with [`check_version`]) and `body`, the bytes after the header: the checksum at the end
/// is verified where the version carries one.
pub(crate) fn decode_binary<M: SavedModel>(
    bytes: &[u8],
    version: u32,
    body: &[u8],
) -> Result<M, FlowError> {
    if version < M::CHECKSUMMED_SINCE {
        return M::from_binary_body(version, body);
    }
    if body.len() < CHECKSUM_LEN {
        return Err(corrupted(format!(
            "the file ends {} bytes after its header, before the model and its {CHECKSUM_LEN}-byte \
             checksum",
            body.len()
        )));
    }
    let (content, tail) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
    let mut recorded = [0; CHECKSUM_LEN];
    recorded.copy_from_slice(tail);
    let (recorded, computed) = (u32::from_le_bytes(recorded), crc32fast::hash(content));
    if recorded != computed {
        return Err(mismatch(&label(recorded), &label(computed)));
    }
    M::from_binary_body(version, &body[..body.len() - CHECKSUM_LEN])
}

/// The binary encoding of `model`.
pub fn to_bytes<M: SavedModel>(model: &M) -> Result<Vec<u8>, FlowError> {
    let header = Header {
        format: FORMAT_TAG.into(),
        kind: M::KIND.into(),
        version: M::VERSION,
    };
    let mut out =
        postcard::to_allocvec(&header).map_err(|e| FlowError::Serialization(e.to_string()))?;
    let body = postcard::to_allocvec(model).map_err(|e| FlowError::Serialization(e.to_string()))?;
    out.extend_from_slice(&body);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// A model of kind `M::KIND` from its binary encoding; another kind is an
/// [`UnknownKind`](FlowError::UnknownKind) error naming both, a changed or corrupted file
/// a [`Corrupted`](FlowError::Corrupted) error.
pub fn from_bytes<M: SavedModel>(bytes: &[u8]) -> Result<M, FlowError> {
    let (kind, version, body) = read_header(bytes)?;
    if kind != M::KIND {
        return Err(FlowError::UnknownKind {
            expected: format!("`{}`", M::KIND),
            found: kind,
        });
    }
    check_version::<M>(version)?;
    decode_binary(bytes, version, body)
}

/// Feeds what is written to a CRC-32.
struct Crc(crc32fast::Hasher);

impl Write for Crc {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes the canonical form of `value` (no whitespace, sorted keys, numbers and strings
/// as serde_json writes them).
fn canonical(value: &Value, out: &mut Crc) {
    match value {
        Value::Object(map) => canonical_object(map.iter().map(|(k, v)| (k.as_str(), v)), out),
        Value::Array(items) => {
            out.0.update(b"[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.0.update(b",");
                }
                canonical(item, out);
            }
            out.0.update(b"]");
        }
        // A scalar cannot fail to serialize, and the writer does not fail.
        scalar => {
            let _ = serde_json::to_writer(&mut *out, scalar);
        }
    }
}

/// Writes the canonical form of the object of `fields`, sorted by key.
fn canonical_object<'a>(fields: impl Iterator<Item = (&'a str, &'a Value)>, out: &mut Crc) {
    let mut fields: Vec<(&str, &Value)> = fields.collect();
    fields.sort_by(|a, b| a.0.cmp(b.0));
    out.0.update(b"{");
    for (i, (key, value)) in fields.into_iter().enumerate() {
        if i > 0 {
            out.0.update(b",");
        }
        let _ = serde_json::to_writer(&mut *out, key);
        out.0.update(b":");
        canonical(value, out);
    }
    out.0.update(b"}");
}

/// The checksum of a JSON document of `fields` (key and value; a `checksum` field is left
/// out), as recorded in its `checksum` field: `crc32:` and 8 hexadecimal digits, the CRC-32
/// of the canonical form (no whitespace, the keys of every object sorted, numbers and
/// strings as serde_json writes them: a number in the shortest form that reads back to the
/// same value).
pub fn json_fields_checksum<'a>(fields: impl IntoIterator<Item = (&'a str, &'a Value)>) -> String {
    let mut crc = Crc(crc32fast::Hasher::new());
    canonical_object(
        fields.into_iter().filter(|(key, _)| *key != "checksum"),
        &mut crc,
    );
    label(crc.0.finalize())
}

/// The checksum of a saved estimator's or posterior's JSON document (an object; its
/// `checksum` field is left out): see [`json_fields_checksum`]. Of anything else than an
/// object, the checksum of its canonical form.
pub fn json_checksum(document: &Value) -> String {
    match document {
        Value::Object(map) => json_fields_checksum(map.iter().map(|(k, v)| (k.as_str(), v))),
        other => {
            let mut crc = Crc(crc32fast::Hasher::new());
            canonical(other, &mut crc);
            label(crc.0.finalize())
        }
    }
}

/// Sets the `checksum` field of a JSON document (an object) to the checksum of the rest
/// (see [`json_checksum`]): for a file changed on purpose, e.g. by hand, that is to load
/// as it now is. Nested documents (an estimator inside a posterior file) are sealed
/// separately, the innermost first.
pub fn seal_json(document: &mut Value) {
    let checksum = json_checksum(document);
    if let Value::Object(map) = document {
        map.insert("checksum".into(), Value::String(checksum));
    }
}

/// Verifies a JSON document's recorded checksum (`recorded`: the `checksum` field, if
/// any) against `computed`, the checksum of its content. Without one the document must be
/// of a version before `checksummed_since`; `what` names it in the error (e.g. "a `maf`
/// estimator").
pub fn verify_json_checksum(
    recorded: Option<&Value>,
    computed: &str,
    version: u32,
    checksummed_since: u32,
    what: &str,
) -> Result<(), FlowError> {
    match recorded {
        Some(Value::String(s)) if s == computed => Ok(()),
        Some(Value::String(s)) => Err(mismatch(s, computed)),
        Some(other) => Err(mismatch(&other.to_string(), computed)),
        None if version >= checksummed_since => Err(corrupted(format!(
            "no checksum, where {what} of version {version} carries one (`\"checksum\": \
             \"{CHECKSUM_ALGORITHM}:…\"`; the content gives {computed})"
        ))),
        None => Ok(()),
    }
}

/// The JSON envelope written: the header, the checksum and the model (as a value, so that
/// what is written is what was checksummed).
#[derive(Serialize)]
pub(crate) struct JsonOut {
    format: &'static str,
    kind: &'static str,
    version: u32,
    checksum: String,
    model: Value,
}

/// The JSON envelope of `model`, checksummed.
pub(crate) fn json_envelope<M: SavedModel>(model: &M) -> Result<JsonOut, FlowError> {
    let model = serde_json::to_value(model).map_err(|e| FlowError::Serialization(e.to_string()))?;
    let (format, kind, version) = (
        Value::from(FORMAT_TAG),
        Value::from(M::KIND),
        Value::from(M::VERSION),
    );
    let checksum = json_fields_checksum([
        ("format", &format),
        ("kind", &kind),
        ("version", &version),
        ("model", &model),
    ]);
    Ok(JsonOut {
        format: FORMAT_TAG,
        kind: M::KIND,
        version: M::VERSION,
        checksum,
        model,
    })
}

/// The JSON encoding of `model`.
pub fn to_json<M: SavedModel>(model: &M) -> Result<String, FlowError> {
    serde_json::to_string(&json_envelope(model)?)
        .map_err(|e| FlowError::Serialization(e.to_string()))
}

/// What a JSON envelope holds, before its kind's checks.
pub(crate) struct JsonParts {
    /// The kind (`maf` for legacy MAF files).
    pub(crate) kind: String,
    /// The version (`u32::MAX` if missing or not a number).
    pub(crate) version: u32,
    /// The `checksum` field, if there is one.
    pub(crate) recorded: Option<Value>,
    /// The checksum of the content.
    pub(crate) computed: String,
    /// The model.
    pub(crate) model: Value,
}

/// The parts of a JSON envelope (legacy MAF JSON reports kind `maf`).
pub(crate) fn read_json(json: &str) -> Result<JsonParts, FlowError> {
    let mut value: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| FlowError::Serialization(format!("not a saved estimator: {e}")))?;
    read_json_value(&mut value)
}

/// As [`read_json`], from a parsed value (whose model is taken out).
pub(crate) fn read_json_value(value: &mut Value) -> Result<JsonParts, FlowError> {
    let format = value
        .get("format")
        .and_then(|v| v.as_str())
        .unwrap_or("(none)")
        .to_owned();
    let version = value
        .get("version")
        .and_then(|v| v.as_u64())
        .map_or(u32::MAX, |v| u32::try_from(v).unwrap_or(u32::MAX));
    let kind = if format == LEGACY_MAF_TAG {
        "maf".to_owned()
    } else if format == FORMAT_TAG {
        value
            .get("kind")
            .and_then(|v| v.as_str())
            .ok_or_else(|| FlowError::Serialization("a saved estimator without a `kind`".into()))?
            .to_owned()
    } else {
        return Err(FlowError::Serialization(format!(
            "not a saved estimator: expected the format tag `{FORMAT_TAG}`, found `{format}`"
        )));
    };
    let computed = json_checksum(value);
    let recorded = value.get("checksum").cloned();
    let model = value
        .get_mut("model")
        .map(Value::take)
        .ok_or_else(|| FlowError::Serialization("a saved estimator without a `model`".into()))?;
    Ok(JsonParts {
        kind,
        version,
        recorded,
        computed,
        model,
    })
}

/// A model of kind `M::KIND` from its JSON encoding.
pub fn from_json<M: SavedModel>(json: &str) -> Result<M, FlowError> {
    model_from_json_parts(read_json(json)?)
}

/// A model of kind `M::KIND` from the parts of a JSON envelope.
pub(crate) fn model_from_json_parts<M: SavedModel>(parts: JsonParts) -> Result<M, FlowError> {
    if parts.kind != M::KIND {
        return Err(FlowError::UnknownKind {
            expected: format!("`{}`", M::KIND),
            found: parts.kind,
        });
    }
    check_version::<M>(parts.version)?;
    verify_json_checksum(
        parts.recorded.as_ref(),
        &parts.computed,
        parts.version,
        M::CHECKSUMMED_SINCE,
        &format!("a `{}` estimator", M::KIND),
    )?;
    let stored =
        serde_json::from_value(parts.model).map_err(|e| FlowError::Serialization(e.to_string()))?;
    M::from_stored(stored)
}

/// Writes `bytes` to `path` atomically (see [`write_atomically`]); an error names the file.
pub(crate) fn write_file(path: &std::path::Path, bytes: &[u8]) -> Result<(), FlowError> {
    write_atomically(path, bytes).map_err(|source| FlowError::File {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes `bytes` to `path` atomically: to a temporary file beside it (`.NAME.tmp-PID`),
/// synced, then renamed over `path`, and the directory synced so that the rename is on
/// disk (best effort: not every platform can open a directory). A write that fails, or a
/// process killed meanwhile, leaves a file already at `path` as it was (a failed write
/// removes its temporary file). Every estimator and posterior file, and every file the
/// command line writes whole, is written this way.
///
/// ```
/// let path = std::env::temp_dir().join(format!("simfer-doc-atomic-{}", std::process::id()));
/// simfer_flows::io::write_atomically(&path, b"new contents")?;
/// assert_eq!(std::fs::read(&path)?, b"new contents");
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Errors
/// The I/O error of creating, writing, syncing or renaming the temporary file.
pub fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = atomic_tmp_path(path);
    let written = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    } else {
        sync_dir(path);
    }
    written
}

/// The temporary file [`write_atomically`] writes `path`'s new contents to.
pub fn atomic_tmp_path(path: &std::path::Path) -> std::path::PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Syncs the directory holding `path` (best effort).
fn sync_dir(path: &std::path::Path) {
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            std::path::Path::new(".")
        } else {
            dir
        };
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

/// Reads the file `path`; an error names it.
pub(crate) fn read_file(path: &std::path::Path) -> Result<Vec<u8>, FlowError> {
    std::fs::read(path).map_err(|source| FlowError::File {
        path: path.to_path_buf(),
        source,
    })
}
