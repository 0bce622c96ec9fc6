//! The model file format: a checked header line, then the JSON payload.

use serde::{Deserialize, Serialize};

use crate::model::counts::{Counts, CountsFile};
use crate::model::{Calibration, Metadata, Model, ModelSettings};

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

#[derive(Serialize, Deserialize)]
struct Payload {
    settings: ModelSettings,
    calibration: Calibration,
    metadata: Metadata,
    counts: CountsFile,
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Serialises a model; returns its version and the file bytes.
pub fn encode_model(model: &Model) -> (String, Vec<u8>) {
    let payload = Payload {
        settings: model.settings().clone(),
        calibration: model.calibration().clone(),
        metadata: model.metadata().clone(),
        counts: model.counts().to_file(),
    };
    // Serialising plain data structures to a Vec cannot fail.
    let body = serde_json::to_vec(&payload).unwrap_or_default();
    let version = format!("m{:016x}", fnv1a64(&body));
    let header = Header {
        format: FORMAT_NAME.to_owned(),
        format_version: FORMAT_VERSION,
        version: version.clone(),
        payload_bytes: body.len() as u64,
        crc32: format!("{:08x}", crc32fast::hash(&body)),
    };
    let mut bytes = serde_json::to_vec(&header).unwrap_or_default();
    bytes.push(b'\n');
    bytes.extend_from_slice(&body);
    (version, bytes)
}

/// Verifies and parses model file bytes; returns the version and the model, or what is wrong.
pub fn decode_model(bytes: &[u8]) -> Result<(String, Model), String> {
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
    Ok((header.version, model))
}
