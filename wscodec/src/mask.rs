//! Masking (RFC 6455 5.3): the payload XOR a 4-byte key, eight bytes at a time. The
//! same operation masks (the agent's frames) and unmasks (the server reading them).

/// Unmasks (or masks) `data`, which starts `phase` bytes into the mask cycle.
pub fn unmask(data: &mut [u8], mask: [u8; 4], phase: u8) {
    let mut key = [0u8; 8];
    for (i, k) in key.iter_mut().enumerate() {
        *k = mask[(usize::from(phase) + i) % 4];
    }
    let word = u64::from_ne_bytes(key);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let v = u64::from_ne_bytes(chunk.try_into().expect("8 bytes")) ^ word;
        chunk.copy_from_slice(&v.to_ne_bytes());
    }
    for (b, k) in chunks.into_remainder().iter_mut().zip(key) {
        *b ^= k;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masking_twice_gives_the_data_back_at_every_length_and_phase() {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        for len in 0..40usize {
            let data: Vec<u8> = (0..len as u8).collect();
            for phase in 0..4u8 {
                let mut d = data.clone();
                unmask(&mut d, mask, phase);
                for (i, (m, o)) in d.iter().zip(&data).enumerate() {
                    assert_eq!(m ^ o, mask[(i + usize::from(phase)) % 4]);
                }
                unmask(&mut d, mask, phase);
                assert_eq!(d, data);
            }
        }
    }
}
