//! The model file format: a checked header line, then the JSON payload.

use std::io::{self, BufWriter, Write};

use serde::{Deserialize, Serialize};

use crate::model::counts::{Counts, CountsFile, CountsFileView};
use crate::model::{Calibration, Metadata, Model, ModelSettings, ModelSummary};

/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
const FORMAT_NAME: &str = "topicd-model";

#[derive(Serialize, Deserialize)]
struct Header {
    format: String,
    format_version: u32,
    version: String,
    payload_bytes: u64,
    crc32: String,
}

#[derive(Deserialize)]
struct Payload {
    settings: ModelSettings,
    calibration: Calibration,
    metadata: Metadata,
    counts: CountsFile,
}

/// What [`Payload`] serialises as, borrowed from a model.
#[derive(Serialize)]
struct PayloadView<'a> {
    settings: &'a ModelSettings,
    calibration: &'a Calibration,
    metadata: &'a Metadata,
    counts: CountsFileView<'a>,
}

fn payload(model: &Model) -> PayloadView<'_> {
    PayloadView {
        settings: model.settings(),
        calibration: model.calibration(),
        metadata: model.metadata(),
        counts: model.counts().file_view(),
    }
}

/// FNV-1a, 64 bits, fed in pieces.
struct Fnv1a64(u64);

impl Fnv1a64 {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// The pieces [`Digest`] is fed in: serde_json writes a few bytes at a time, and checksums (and
/// the writer behind) go faster on large pieces.
const DIGEST_CHUNK_BYTES: usize = 64 * 1024;

/// A writer that keeps only the length and checksums of what passes through it (and, when the
/// version is wanted, its FNV-1a hash), then hands it on to `inner`.
struct Digest<W> {
    inner: W,
    len: u64,
    crc: crc32fast::Hasher,
    fnv: Option<Fnv1a64>,
}

impl<W: Write> Write for Digest<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.len += n as u64;
        self.crc.update(&buf[..n]);
        if let Some(fnv) = &mut self.fnv {
            fnv.update(&buf[..n]);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Serialises the model's payload into `inner` through a [`Digest`] (hashing with FNV-1a too when
/// `fnv` is given) and returns the digest.
fn serialise_payload<W: Write>(
    model: &Model,
    inner: W,
    fnv: Option<Fnv1a64>,
) -> io::Result<Digest<W>> {
    let digest = Digest {
        inner,
        len: 0,
        crc: crc32fast::Hasher::new(),
        fnv,
    };
    let mut buffered = BufWriter::with_capacity(DIGEST_CHUNK_BYTES, digest);
    serde_json::to_writer(&mut buffered, &payload(model))?;
    buffered.into_inner().map_err(|e| e.into_error())
}

/// The header line of a model file, ready to write, with the version it names.
#[derive(Debug, Clone)]
pub struct ModelHeader {
    /// The model's version: `m` and the FNV-1a hash of its payload.
    pub version: String,
    line: Vec<u8>,
    payload_bytes: u64,
    crc32: u32,
}

/// Serialises the model's payload once without keeping it (only its length and checksums) and
/// returns the header its file starts with. A model file is written in two passes, this one and
/// [`write_model`], so that saving a model never holds its serialised form in memory: a serving
/// process saves while it holds the old and the new model, and the payload is as large as a model.
pub fn model_header(model: &Model) -> io::Result<ModelHeader> {
    let digest = serialise_payload(model, io::sink(), Some(Fnv1a64::new()))?;
    let version = format!("m{:016x}", digest.fnv.map_or(0, |f| f.0));
    let crc32 = digest.crc.finalize();
    let header = Header {
        format: FORMAT_NAME.to_owned(),
        format_version: FORMAT_VERSION,
        version: version.clone(),
        payload_bytes: digest.len,
        crc32: format!("{crc32:08x}"),
    };
    let mut line = serde_json::to_vec(&header)?;
    line.push(b'\n');
    Ok(ModelHeader {
        version,
        line,
        payload_bytes: digest.len,
        crc32,
    })
}

/// Writes the model file, `header` (from [`model_header`] for this model) then the payload, to
/// `out`. The payload is serialised again and checked against the header as it goes out; a
/// mismatch (which would be a bug: serialising is deterministic) is an error, so a caller writing
/// through a temporary file never puts a file with a wrong checksum in place.
pub fn write_model(model: &Model, header: &ModelHeader, out: &mut dyn Write) -> io::Result<()> {
    out.write_all(&header.line)?;
    let digest = serialise_payload(model, out, None)?;
    if digest.len != header.payload_bytes || digest.crc.finalize() != header.crc32 {
        return Err(io::Error::other(
            "the model serialised differently on its second pass; nothing was written (please report this bug)",
        ));
    }
    Ok(())
}

/// Serialises a model; returns its version and the file bytes (the same bytes [`write_model`]
/// writes).
pub fn encode_model(model: &Model) -> (String, Vec<u8>) {
    // Neither pass can fail: the sink and a Vec take every byte, and plain data structures always
    // serialise.
    let Ok(header) = model_header(model) else {
        return (String::new(), Vec::new());
    };
    let mut bytes = Vec::with_capacity(header.line.len() + header.payload_bytes as usize);
    if write_model(model, &header, &mut bytes).is_err() {
        bytes.clear();
    }
    (header.version, bytes)
}

/// Verifies and parses model file bytes; returns the version and the model, or what is wrong.
pub fn decode_model(bytes: &[u8]) -> Result<(String, Model), String> {
    let (version, body) = verified_payload(bytes)?;
    let payload: Payload =
        serde_json::from_slice(body).map_err(|e| format!("model payload does not parse: {e}"))?;
    let counts =
        Counts::from_file(payload.counts).map_err(|e| format!("inconsistent model: {e}"))?;
    if payload.calibration.thresholds.len() != counts.labels.len() {
        return Err("inconsistent model: thresholds do not match the labels".into());
    }
    let model = Model::from_parts(
        payload.settings,
        counts,
        payload.calibration,
        payload.metadata,
    );
    Ok((version, model))
}

/// What [`decode_summary`] reads of a payload: the terms are only counted.
#[derive(Deserialize)]
struct SummaryPayload {
    settings: ModelSettings,
    metadata: Metadata,
    counts: CountsSummary,
}

#[derive(Deserialize)]
struct CountsSummary {
    labels: Vec<String>,
    documents: f64,
    label_documents: Vec<f64>,
    terms: TermCount,
}

/// The length of the `terms` list, read without keeping any term.
struct TermCount(u64);

impl<'de> Deserialize<'de> for TermCount {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Counter;
        impl<'de> serde::de::Visitor<'de> for Counter {
            type Value = TermCount;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of terms")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<TermCount, A::Error> {
                let mut n = 0;
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(TermCount(n))
            }
        }
        deserializer.deserialize_seq(Counter)
    }
}

/// Verifies model file bytes as [`decode_model`] does and reads its [`ModelSummary`] without
/// building the model (no term is kept, no weight computed), for listing many saved versions.
pub fn decode_summary(bytes: &[u8]) -> Result<(String, ModelSummary), String> {
    let (version, body) = verified_payload(bytes)?;
    let payload: SummaryPayload =
        serde_json::from_slice(body).map_err(|e| format!("model payload does not parse: {e}"))?;
    let counts = payload.counts;
    if counts.label_documents.len() != counts.labels.len() {
        return Err(
            "inconsistent model: per-label count arrays do not match the label list".into(),
        );
    }
    let labels = counts
        .labels
        .into_iter()
        .zip(&counts.label_documents)
        .map(|(l, d)| (l, d.round() as u64))
        .collect();
    let summary = ModelSummary {
        settings: payload.settings.describe(),
        created_at: payload.metadata.created_at,
        parent_version: payload.metadata.parent_version,
        labels,
        vocabulary_size: counts.terms.0,
        total_examples: counts.documents.round() as u64,
    };
    Ok((version, summary))
}

/// Checks the header line (format, version, payload length, checksum) and returns the version and
/// the payload bytes.
fn verified_payload(bytes: &[u8]) -> Result<(String, &[u8]), String> {
    let newline = bytes
        .iter()
        .position(|&b| b == b'\n')
        .ok_or("not a topicd model file (no header line); was it written by `topicd train`?")?;
    let header: Header = serde_json::from_slice(&bytes[..newline])
        .map_err(|e| format!("not a topicd model file (unreadable header: {e})"))?;
    if header.format != FORMAT_NAME {
        return Err(format!(
            "not a topicd model file (format {:?})",
            header.format
        ));
    }
    if header.format_version != FORMAT_VERSION {
        return Err(format!(
            "model format version {} is not supported by this topicd (it reads version {FORMAT_VERSION}); retrain the model with this topicd or use a matching release",
            header.format_version
        ));
    }
    let body = &bytes[newline + 1..];
    if body.len() as u64 != header.payload_bytes {
        return Err(format!(
            "model file is truncated or padded: payload is {} bytes, header says {}; restore it from a backup or retrain",
            body.len(),
            header.payload_bytes
        ));
    }
    let crc = format!("{:08x}", crc32fast::hash(body));
    if crc != header.crc32 {
        return Err(format!(
            "model file is corrupted: checksum {crc} does not match {} in its header; restore it from a backup or retrain",
            header.crc32
        ));
    }
    Ok((header.version, body))
}
