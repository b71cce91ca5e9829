//! A `/metrics` body in the making: text written in [`Part`]s that are joined in an
//! order of their own, kept plain or gzip-compressed as it is written, so that a big
//! body is never whole in memory as text. A leaf.
//!
//! The store's families are written as the tenants are walked, every family into a part
//! of its own, and the parts are joined in family order afterwards (a family's samples
//! must be together). Compressed, a part is a run of raw deflate chunks, each compressed
//! alone (a fresh dictionary, so no back-reference leaves its chunk) and ended by a sync
//! flush, which byte-aligns it without ending the stream: parts join by concatenation
//! into one deflate stream, as pigz joins its blocks. Their CRC-32s combine, and the
//! body's last chunk ends the stream: one gzip member, which any gzip reader takes.

use std::fmt;

use bytes::Bytes;
use flate2::{Compress, Compression, FlushCompress, Status};

/// Text bytes a part collects before compressing them as one chunk: big enough that a
/// chunk's fresh dictionary and its own Huffman tables cost little (a few percent of the
/// compressed size), small enough that a few dozen parts pending hold ~1 MiB.
const CHUNK: usize = 32 << 10;

/// The gzip header: deflate, no name or time, "fastest" (XFL 4), OS unknown.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 0xff];

/// The compression level of every `/metrics` body: the fastest, a few times the speed
/// of the default for ~25% more bytes; a body is compressed once per encoding, but that
/// can be several times a second.
pub const LEVEL: Compression = Compression::fast();

/// A raw deflate compressor, shared by the parts of one writer one chunk at a time.
struct Deflater(Compress);

impl Deflater {
    fn new() -> Self {
        Self(Compress::new(LEVEL, false))
    }

    /// Compresses `text` alone into `out`, ended by a sync flush (byte-aligned, the
    /// stream open) or, when `last`, ending the stream.
    fn chunk(&mut self, text: &[u8], out: &mut Vec<u8>, last: bool) {
        let c = &mut self.0;
        c.reset();
        let flush = if last {
            FlushCompress::Finish
        } else {
            FlushCompress::Sync
        };
        loop {
            out.reserve(text.len() / 2 + 64);
            let read = usize::try_from(c.total_in()).unwrap_or(usize::MAX);
            // Compressing into memory cannot fail.
            let status = c
                .compress_vec(&text[read.min(text.len())..], out, flush)
                .expect("deflate into memory");
            let all_read = usize::try_from(c.total_in()).is_ok_and(|n| n == text.len());
            // Done when the stream ended, or (a sync flush) when everything was read and
            // the output had room to spare: the compressor stopped on its own.
            if status == Status::StreamEnd || (!last && all_read && out.len() < out.capacity()) {
                return;
            }
        }
    }
}

/// One part of a body: plain text, or (written through a compressing writer) the raw
/// deflate chunks of the text so far and the text since the last chunk.
#[derive(Default)]
pub struct Part {
    /// Text not compressed (yet).
    text: String,
    /// Whole chunks, each a sync-flushed raw deflate stream.
    deflated: Vec<u8>,
    /// CRC-32 of the text in `deflated`.
    crc: crc32fast::Hasher,
    /// Text bytes in `deflated`.
    deflated_len: usize,
}

impl fmt::Debug for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Part")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl Part {
    /// Text bytes written.
    pub fn len(&self) -> usize {
        self.deflated_len + self.text.len()
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The text written since the last chunk (all of it, uncompressed).
    #[cfg(test)]
    pub(crate) fn pending(&self) -> &str {
        &self.text
    }

    fn deflate(&mut self, z: &mut Deflater, last: bool) {
        self.crc.update(self.text.as_bytes());
        self.deflated_len += self.text.len();
        z.chunk(self.text.as_bytes(), &mut self.deflated, last);
        self.text.clear();
    }
}

/// Writes text into [`Part`]s, compressing every [`CHUNK`] of a part when made with
/// [`Writer::gzip`].
pub struct Writer {
    z: Option<Deflater>,
}

impl fmt::Debug for Writer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Writer")
            .field("gzip", &self.z.is_some())
            .finish()
    }
}

impl Writer {
    /// A writer of plain text.
    pub fn text() -> Self {
        Self { z: None }
    }

    /// A writer that compresses.
    pub fn gzip() -> Self {
        Self {
            z: Some(Deflater::new()),
        }
    }

    /// Whether this writer compresses.
    pub fn is_gzip(&self) -> bool {
        self.z.is_some()
    }

    /// Appends to `part` what `f` writes into its text.
    pub fn write(&mut self, part: &mut Part, f: impl FnOnce(&mut String)) {
        f(&mut part.text);
        if let Some(z) = &mut self.z
            && part.text.len() >= CHUNK
        {
            part.deflate(z, false);
        }
    }

    /// Puts every byte of `part` in whole chunks (compressing), ready to be joined.
    fn seal(&mut self, part: &mut Part) {
        if let Some(z) = &mut self.z
            && !part.text.is_empty()
        {
            part.deflate(z, false);
        }
    }
}

/// A whole body: parts appended in order, then [`finish`](Body::finish)ed.
#[derive(Debug)]
pub struct Body {
    writer: Writer,
    part: Part,
}

impl Body {
    /// A plain-text body of `capacity` bytes to start with.
    pub fn text(capacity: usize) -> Self {
        Self {
            writer: Writer::text(),
            part: Part {
                text: String::with_capacity(capacity),
                ..Part::default()
            },
        }
    }

    /// A gzip body of `capacity` compressed bytes to start with.
    pub fn gzip(capacity: usize) -> Self {
        let mut deflated = Vec::with_capacity(capacity.max(GZIP_HEADER.len()));
        deflated.extend_from_slice(&GZIP_HEADER);
        Self {
            writer: Writer::gzip(),
            part: Part {
                deflated,
                ..Part::default()
            },
        }
    }

    /// A writer for parts to be [`append`](Self::append)ed to this body: it compresses
    /// when the body does.
    pub fn writer(&self) -> Writer {
        if self.writer.is_gzip() {
            Writer::gzip()
        } else {
            Writer::text()
        }
    }

    /// Appends `part`, written by `writer` (from [`Self::writer`]).
    pub fn append(&mut self, writer: &mut Writer, mut part: Part) {
        assert_eq!(
            writer.is_gzip(),
            self.writer.is_gzip(),
            "a part is appended to a body of its own kind"
        );
        if !self.writer.is_gzip() {
            self.part.text.push_str(&part.text);
            return;
        }
        self.writer.seal(&mut self.part);
        writer.seal(&mut part);
        self.part.deflated.extend_from_slice(&part.deflated);
        self.part.crc.combine(&part.crc);
        self.part.deflated_len += part.deflated_len;
    }

    /// The plain text (the body of [`Self::text`]).
    pub fn into_text(self) -> String {
        assert!(!self.writer.is_gzip(), "into_text of a gzip body");
        self.part.text
    }

    /// The body's bytes, gzip-compressed for a [`Self::gzip`] body, and the length of
    /// its text.
    pub fn finish(self) -> (Bytes, usize) {
        let Self { writer, mut part } = self;
        let len = part.len();
        let Some(mut z) = writer.z else {
            return (Bytes::from(part.text.into_bytes()), len);
        };
        // The last chunk (the text since the last one, maybe none) ends the stream.
        part.deflate(&mut z, true);
        let mut out = part.deflated;
        out.extend_from_slice(&part.crc.finalize().to_le_bytes());
        // ISIZE: the length modulo 2^32 (RFC 1952).
        out.extend_from_slice(&((len & 0xffff_ffff) as u32).to_le_bytes());
        (Bytes::from(out), len)
    }
}

impl fmt::Write for Body {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let Self { writer, part } = self;
        writer.write(part, |text| text.push_str(s));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write as _;
    use std::io::Read;

    fn gunzip(gz: &[u8]) -> String {
        let mut text = String::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_string(&mut text)
            .expect("a valid gzip member");
        text
    }

    /// Text of `n` lines of `seed`-scrambled digits: compressible, but not to nothing.
    fn lines(seed: u64, n: usize) -> String {
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let mut out = String::new();
        for i in 0..n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            writeln!(out, "part{seed}_line{{i=\"{i}\",x=\"{x:x}\"}} {}", x % 1000).unwrap();
        }
        out
    }

    #[test]
    fn parts_written_interleaved_join_in_their_own_order() {
        for gzip in [false, true] {
            let mut body = if gzip { Body::gzip(0) } else { Body::text(0) };
            let mut w = body.writer();
            body.write_str("head\n").unwrap();
            // Three parts written a line at a time, interleaved, each well over a chunk.
            let texts: Vec<String> = (0..3).map(|s| lines(s, 3_000)).collect();
            let mut parts: Vec<Part> = (0..3).map(|_| Part::default()).collect();
            let mut iters: Vec<_> = texts.iter().map(|t| t.split_inclusive('\n')).collect();
            let mut more = true;
            while more {
                more = false;
                for (part, lines) in parts.iter_mut().zip(&mut iters) {
                    if let Some(line) = lines.next() {
                        w.write(part, |t| t.push_str(line));
                        more = true;
                    }
                }
            }
            assert!(texts[0].len() > 4 * CHUNK, "{}", texts[0].len());
            // Joined in reverse, an empty part among them.
            parts.insert(1, Part::default());
            for part in parts.into_iter().rev() {
                body.append(&mut w, part);
            }
            body.write_str("# EOF\n").unwrap();
            let expected = format!("head\n{}{}{}# EOF\n", texts[2], texts[1], texts[0]);
            let (bytes, len) = body.finish();
            assert_eq!(len, expected.len());
            if gzip {
                assert!(bytes.len() < expected.len() / 2, "{} bytes", bytes.len());
                assert_eq!(gunzip(&bytes), expected);
            } else {
                assert_eq!(&bytes[..], expected.as_bytes());
            }
        }
    }

    #[test]
    fn incompressible_chunks_and_an_empty_body_are_whole_gzip() {
        // Text that does not compress: every chunk's output outgrows its first reserve.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let noise: String = (0..5 * CHUNK)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from(b' ' + (x % 95) as u8)
            })
            .collect();
        let mut body = Body::gzip(0);
        let mut w = body.writer();
        let mut part = Part::default();
        w.write(&mut part, |t| t.push_str(&noise));
        body.append(&mut w, part);
        let (bytes, len) = body.finish();
        assert_eq!(len, noise.len());
        assert_eq!(gunzip(&bytes), noise);

        let (empty, len) = Body::gzip(0).finish();
        assert_eq!((gunzip(&empty), len), (String::new(), 0));
    }
}
