//! UTF-8 validation of a text message that arrives in pieces (reads, fragments,
//! inflated chunks), keeping at most the 3 bytes of a code point cut in two.

/// The message so far is not UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidUtf8;

/// Validates a byte stream piece by piece; std's validator does the checking.
#[derive(Debug, Default, Clone, Copy)]
pub struct Utf8Validator {
    /// The start of a code point the last piece ended inside (a valid prefix).
    partial: [u8; 4],
    /// How many bytes of `partial` are in use (0..=3).
    len: u8,
}

/// Length of the code point that `lead` starts (a lead byte std accepted).
fn width(lead: u8) -> usize {
    match lead {
        0xF0.. => 4,
        0xE0.. => 3,
        _ => 2,
    }
}

impl Utf8Validator {
    /// Checks the next piece of the stream.
    pub fn feed(&mut self, mut data: &[u8]) -> Result<(), InvalidUtf8> {
        if self.len > 0 {
            let have = usize::from(self.len);
            let take = (width(self.partial[0]) - have).min(data.len());
            self.partial[have..have + take].copy_from_slice(&data[..take]);
            self.len += take as u8;
            data = &data[take..];
            match std::str::from_utf8(&self.partial[..usize::from(self.len)]) {
                Ok(_) => self.len = 0,
                // Still a valid prefix: the piece ended before the code point did.
                Err(e) if e.error_len().is_none() => return Ok(()),
                Err(_) => return Err(InvalidUtf8),
            }
        }
        match std::str::from_utf8(data) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_none() => {
                let rest = &data[e.valid_up_to()..];
                self.partial[..rest.len()].copy_from_slice(rest);
                self.len = rest.len() as u8;
                Ok(())
            }
            Err(_) => Err(InvalidUtf8),
        }
    }

    /// Ends the stream: fails if it stopped inside a code point.
    pub fn finish(self) -> Result<(), InvalidUtf8> {
        if self.len == 0 {
            Ok(())
        } else {
            Err(InvalidUtf8)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validate_in_pieces(data: &[u8], cuts: &[usize]) -> Result<(), InvalidUtf8> {
        let mut v = Utf8Validator::default();
        let mut start = 0;
        for &cut in cuts.iter().chain(std::iter::once(&data.len())) {
            v.feed(&data[start..cut])?;
            start = cut;
        }
        v.finish()
    }

    const SAMPLES: &[&[u8]] = &[
        "plain ascii".as_bytes(),
        "h\u{e9}llo \u{20ac} \u{1f600} \u{10ffff}\u{7ff}\u{800}\u{ffff}\u{10000}".as_bytes(),
        // Invalid: lone continuation, overlong forms, a surrogate, past U+10FFFF,
        // a truncated code point at the end or in the middle, bytes never valid.
        b"a\x80b",
        b"\xc0\xaf",
        b"\xe0\x80\xaf",
        b"\xf0\x80\x80\xaf",
        b"\xed\xa0\x80",
        b"\xf4\x90\x80\x80",
        b"ok\xe2\x82",
        b"\xe2\x82ok",
        b"\xf0\x9f\x98",
        b"\xfe\xff",
        b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
    ];

    #[test]
    fn every_split_agrees_with_std() {
        for &sample in SAMPLES {
            let expect = std::str::from_utf8(sample).is_ok();
            for a in 0..=sample.len() {
                for b in a..=sample.len() {
                    let got = validate_in_pieces(sample, &[a, b]).is_ok();
                    assert_eq!(got, expect, "{sample:x?} cut at {a} and {b}");
                }
            }
            let bytewise: Vec<usize> = (1..sample.len()).collect();
            assert_eq!(
                validate_in_pieces(sample, &bytewise).is_ok(),
                expect,
                "{sample:x?} byte by byte"
            );
        }
    }
}
