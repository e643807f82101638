//! permessage-deflate (RFC 7692) with no context takeover in either direction, so
//! no connection keeps compression state: every message is deflated or inflated
//! whole by a compressor taken from one pool per process and given back at once.

use std::sync::{Arc, Mutex};

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The tail a sync flush ends with; senders strip it and receivers put it back.
const SYNC_TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];
/// Bytes inflated per step, handed on before the next step (on the stack).
const INFLATE_CHUNK: usize = 8 * 1024;

/// Why an inflated message was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum InflateError<E> {
    /// It inflates to more than the limit.
    TooLarge,
    /// It is not a valid deflate stream.
    Corrupt,
    /// The consumer of the inflated bytes refused them.
    Rejected(E),
}

/// Compressors and decompressors shared by every connection of a process.
#[derive(Clone)]
pub struct DeflatePool {
    inner: Arc<PoolInner>,
}

struct PoolInner {
    compressors: Mutex<Vec<Compress>>,
    decompressors: Mutex<Vec<Decompress>>,
    /// Most idle states of each kind kept for reuse (one per thread is enough).
    keep: usize,
}

impl std::fmt::Debug for DeflatePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeflatePool").field("keep", &self.inner.keep).finish()
    }
}

/// Takes a state from `stack`, or makes one; `put_back` returns it unless `keep` are idle.
fn take<T>(stack: &Mutex<Vec<T>>, make: impl FnOnce() -> T) -> T {
    stack.lock().unwrap().pop().unwrap_or_else(make)
}

fn put_back<T>(stack: &Mutex<Vec<T>>, item: T, keep: usize) {
    let mut stack = stack.lock().unwrap();
    if stack.len() < keep {
        stack.push(item);
    }
}

/// How far a call moved: input consumed and output produced.
fn progress(before: (u64, u64), after: (u64, u64)) -> (usize, usize) {
    ((after.0 - before.0) as usize, (after.1 - before.1) as usize)
}

impl DeflatePool {
    /// A pool keeping up to `keep` idle compressors and as many decompressors.
    pub fn new(keep: usize) -> Self {
        Self {
            inner: Arc::new(PoolInner {
                compressors: Mutex::new(Vec::new()),
                decompressors: Mutex::new(Vec::new()),
                keep: keep.max(1),
            }),
        }
    }

    /// Deflates one message and appends it to `out` without the sync-flush tail
    /// (RFC 7692 7.2.1), at the fastest level: the server's messages are small JSON.
    pub fn deflate(&self, data: &[u8], out: &mut Vec<u8>) {
        let inner = &*self.inner;
        let mut c = take(&inner.compressors, || Compress::new(Compression::fast(), false));
        c.reset();
        let start = out.len();
        let mut pos = 0;
        loop {
            out.reserve(data.len() - pos + 64);
            let before = (c.total_in(), c.total_out());
            c.compress_vec(&data[pos..], out, FlushCompress::Sync)
                .expect("deflating into a growing buffer cannot fail");
            let (consumed, _) = progress(before, (c.total_in(), c.total_out()));
            pos += consumed;
            // Done once all input is in and the flush had room to finish.
            if pos == data.len() && out.len() < out.capacity() {
                break;
            }
        }
        put_back(&inner.compressors, c, inner.keep);
        if out[start..].ends_with(&SYNC_TAIL) {
            out.truncate(out.len() - SYNC_TAIL.len());
        }
        if out.len() == start {
            // An empty message deflates to one empty stored block (RFC 7692 7.2.3.6).
            out.push(0x00);
        }
    }

    /// Inflates one message, handing the output to `sink` in chunks; stops as soon
    /// as the output passes `max` bytes, so a small message cannot inflate to a huge one.
    pub fn inflate<E>(
        &self,
        data: &[u8],
        max: usize,
        mut sink: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), InflateError<E>> {
        let inner = &*self.inner;
        let mut d = take(&inner.decompressors, || Decompress::new(false));
        d.reset(false);
        let result = inflate_with(&mut d, data, max, &mut sink);
        put_back(&inner.decompressors, d, inner.keep);
        result
    }
}

fn inflate_with<E>(
    d: &mut Decompress,
    data: &[u8],
    max: usize,
    sink: &mut impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<(), InflateError<E>> {
    let mut chunk = [0u8; INFLATE_CHUNK];
    let mut total = 0usize;
    for input in [data, &SYNC_TAIL[..]] {
        let mut pos = 0;
        loop {
            let before = (d.total_in(), d.total_out());
            let status = d
                .decompress(&input[pos..], &mut chunk, FlushDecompress::Sync)
                .map_err(|_| InflateError::Corrupt)?;
            let (consumed, produced) = progress(before, (d.total_in(), d.total_out()));
            pos += consumed;
            total += produced;
            if total > max {
                return Err(InflateError::TooLarge);
            }
            sink(&chunk[..produced]).map_err(InflateError::Rejected)?;
            let stuck = consumed == 0 && produced == 0;
            if status == Status::StreamEnd || stuck || (pos == input.len() && produced < chunk.len()) {
                break;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inflate_all(pool: &DeflatePool, data: &[u8], max: usize) -> Result<Vec<u8>, InflateError<()>> {
        let mut out = Vec::new();
        pool.inflate(data, max, |c| {
            out.extend_from_slice(c);
            Ok::<(), ()>(())
        })?;
        Ok(out)
    }

    #[test]
    fn round_trips_small_large_and_empty_messages() {
        let pool = DeflatePool::new(2);
        let big: Vec<u8> = (0..200_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        for msg in [&b"{\"type\":\"response\"}"[..], &big[..], b""] {
            let mut wire = Vec::new();
            pool.deflate(msg, &mut wire);
            assert!(!wire.ends_with(&SYNC_TAIL));
            assert_eq!(inflate_all(&pool, &wire, usize::MAX).unwrap(), msg);
        }
    }

    #[test]
    fn inflating_stops_at_the_limit_and_rejects_garbage() {
        let pool = DeflatePool::new(1);
        let mut wire = Vec::new();
        pool.deflate(&vec![b'a'; 100_000], &mut wire);
        assert!(wire.len() < 1000, "compressible");
        assert_eq!(inflate_all(&pool, &wire, 99_999), Err(InflateError::TooLarge));
        assert_eq!(inflate_all(&pool, &wire, 100_000).unwrap().len(), 100_000);
        assert_eq!(inflate_all(&pool, &[0xff; 16], 1000), Err(InflateError::Corrupt));
    }
}
