//! The histogram wire format: HDR histograms in microseconds, serialised with the
//! compressed V2 format. Agents encode a window's histograms, the coordinator decodes
//! and merges them (never averaging percentiles).

use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;

/// Highest trackable value: one hour in microseconds. Larger samples saturate.
pub const MAX_MICROS: u64 = 3_600_000_000;

/// Significant decimal digits kept (0.1 % relative error).
pub const SIGFIG: u8 = 3;

/// Failure to encode or decode a histogram.
#[derive(Debug, thiserror::Error)]
pub enum HistError {
    /// The bytes were not a valid V2 (deflate) histogram.
    #[error("cannot decode histogram: {0}")]
    Decode(String),
    /// Serialisation failed (should not happen with in-memory buffers).
    #[error("cannot encode histogram: {0}")]
    Encode(String),
}

/// A new empty histogram with the contract's bounds.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_MICROS, SIGFIG).expect("static bounds are valid")
}

/// Serialises `h` with the compressed V2 format. An empty histogram encodes to no bytes.
pub fn encode(h: &Histogram<u64>) -> Result<Vec<u8>, HistError> {
    if h.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut out)
        .map_err(|e| HistError::Encode(format!("{e:?}")))?;
    Ok(out)
}

/// Decodes bytes produced by [`encode`]; no bytes decode to an empty histogram.
pub fn decode(bytes: &[u8]) -> Result<Histogram<u64>, HistError> {
    if bytes.is_empty() {
        return Ok(new_histogram());
    }
    let h: Histogram<u64> = Deserializer::new()
        .deserialize(&mut std::io::Cursor::new(bytes))
        .map_err(|e| HistError::Decode(format!("{e:?}")))?;
    Ok(h)
}

/// Adds `bytes` (as produced by [`encode`]) into `into`.
pub fn merge_into(into: &mut Histogram<u64>, bytes: &[u8]) -> Result<(), HistError> {
    if bytes.is_empty() {
        return Ok(());
    }
    let h = decode(bytes)?;
    into.add(&h).map_err(|e| HistError::Decode(format!("{e:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_keeps_counts_and_percentiles() {
        let mut h = new_histogram();
        for v in 1..=10_000u64 {
            h.record(v * 7).unwrap();
        }
        let back = decode(&encode(&h).unwrap()).unwrap();
        assert_eq!(back.len(), h.len());
        assert_eq!(back.value_at_quantile(0.99), h.value_at_quantile(0.99));
        assert!(decode(&encode(&new_histogram()).unwrap()).unwrap().is_empty());
    }
}
