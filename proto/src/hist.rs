//! The histogram wire format: HDR histograms in microseconds, serialised with the
//! compressed V2 format. Agents encode a window's histograms, the coordinator decodes
//! and merges them (never averaging percentiles).
//!
//! Every histogram either side creates comes from [`new_histogram`]: auto-resizing,
//! so merging never fails and recording a huge stall never panics. Agents record with
//! [`record`], which clamps at [`MAX_MICROS`], so what they send stays within the
//! bounds an older coordinator's histograms accept.

use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;

/// Largest sample an agent records: one hour in microseconds. Longer samples are
/// recorded as this value.
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

/// A new empty latency histogram (microseconds, [`SIGFIG`] significant figures).
///
/// It grows as needed: adding any other histogram into it and recording any value
/// succeed, and it costs memory only for the range actually recorded.
pub fn new_histogram() -> Histogram<u64> {
    // `new` fails only for more than 5 significant figures.
    Histogram::new(SIGFIG).unwrap_or_else(|_| unreachable!("{SIGFIG} significant figures is valid"))
}

/// Records a sample of `micros` into `h` (made by [`new_histogram`]) as agents do:
/// clamped to 1..=[`MAX_MICROS`].
pub fn record(h: &mut Histogram<u64>, micros: u64) {
    // Cannot fail: the histogram grows itself, and a clamped value is far below the
    // largest it can grow to. (`saturating_record` would clamp at the histogram's
    // current size instead of growing it.)
    let _ = h.record(micros.clamp(1, MAX_MICROS));
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

    /// A stall far past an hour is recorded, and merging histograms of any range into
    /// a fresh one succeeds.
    #[test]
    fn huge_samples_record_and_merge() {
        let mut stall = new_histogram();
        stall.record(10 * MAX_MICROS).unwrap();
        let mut small = new_histogram();
        small.record(3).unwrap();
        let mut into = new_histogram();
        merge_into(&mut into, &encode(&small).unwrap()).unwrap();
        merge_into(&mut into, &encode(&stall).unwrap()).unwrap();
        assert_eq!(into.len(), 2);
        assert_eq!(into.min(), 3);
        assert!(into.equivalent(into.max(), 10 * MAX_MICROS));
    }

    /// What an agent records is clamped to the wire's range, and merges into a
    /// histogram bounded at one hour, as coordinators before the auto-resizing
    /// histogram created them.
    #[test]
    fn recorded_samples_are_clamped_and_fit_the_old_bounds() {
        let mut h = new_histogram();
        record(&mut h, 0);
        record(&mut h, u64::MAX);
        assert_eq!(h.len(), 2);
        assert_eq!(h.min(), 1);
        assert!(h.equivalent(h.max(), MAX_MICROS));
        let mut old = Histogram::<u64>::new_with_bounds(1, MAX_MICROS, SIGFIG).unwrap();
        merge_into(&mut old, &encode(&h).unwrap()).unwrap();
        assert_eq!(old.len(), 2);
    }
}
