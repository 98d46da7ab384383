//! Content digests (`sha256:<hex>`, `sha512:<hex>`) and hashing writers.
//!
//! A `Digest` is a validated newtype so that a digest can never be confused with
//! any other string, and so that every path built from one is safe (hex only).
//! The OCI image spec registers two algorithms, sha256 and sha512; both are
//! verified, and any other is refused by name (we could not check its content).
//! What ocibench itself writes is sha256, as every registry and runtime expects.

use std::fmt;
use std::io::{self, Write};
use std::str::FromStr;

use sha2::{Digest as _, Sha256, Sha512};

/// A digest algorithm ocibench can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Algorithm {
    #[default]
    Sha256,
    Sha512,
}

/// The algorithms a digest may use, as error messages list them.
pub const SUPPORTED_ALGORITHMS: &str = "sha256, sha512";

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// Length of the hex encoding (the OCI spec fixes it per algorithm).
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "sha256" => Some(Algorithm::Sha256),
            "sha512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }
}

/// A validated content digest.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    /// `Box<str>`, not `String`: with the algorithm beside it a `Digest` stays
    /// three words, as the errors that carry several digests count on.
    hex: Box<str>,
}

/// Why a string is not a digest we can verify.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DigestError {
    #[error(
        "digest {0:?} has no algorithm (expected ALGORITHM:HEX, ALGORITHM one of {SUPPORTED_ALGORITHMS})"
    )]
    NoAlgorithm(String),
    #[error(
        "digest {digest:?} uses algorithm {algorithm:?}, which ocibench cannot verify (supported: {SUPPORTED_ALGORITHMS})"
    )]
    Unsupported { digest: String, algorithm: String },
    #[error("digest {digest:?} is not {algorithm}:<{len} lowercase hex digits>")]
    BadHex {
        digest: String,
        algorithm: &'static str,
        len: usize,
    },
}

impl Digest {
    /// sha256 digest of a byte slice (what ocibench writes).
    pub fn of(bytes: &[u8]) -> Self {
        Self::of_with(Algorithm::Sha256, bytes)
    }

    /// Digest of a byte slice with `algorithm`.
    pub fn of_with(algorithm: Algorithm, bytes: &[u8]) -> Self {
        let hex = match algorithm {
            Algorithm::Sha256 => hex::encode(Sha256::digest(bytes)),
            Algorithm::Sha512 => hex::encode(Sha512::digest(bytes)),
        }
        .into();
        Digest { algorithm, hex }
    }

    pub fn from_sha256(bytes: [u8; 32]) -> Self {
        Digest {
            algorithm: Algorithm::Sha256,
            hex: hex::encode(bytes).into(),
        }
    }

    /// Whether `bytes` are what this digest names (hashed with its own algorithm).
    pub fn matches(&self, bytes: &[u8]) -> bool {
        Self::of_with(self.algorithm, bytes) == *self
    }

    /// The algorithm's name, as in `blobs/<algorithm>/<hex>`.
    pub fn algorithm(&self) -> &'static str {
        self.algorithm.name()
    }

    pub fn alg(&self) -> Algorithm {
        self.algorithm
    }

    /// The hex part, as used for blob file names (`blobs/sha256/<hex>`).
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The first 12 hex digits, as `podman images` prints them.
    pub fn short(&self) -> &str {
        &self.hex[..12]
    }

    /// `<alg>:<first 12 hex digits>`, for tables (sha256 and sha512 are as wide).
    pub fn short_named(&self) -> String {
        format!("{}:{}", self.algorithm(), self.short())
    }

    /// The tag the OCI 1.1 referrers tag schema uses for this digest (`<alg>-<hex>`).
    pub fn referrers_tag(&self) -> String {
        format!("{}-{}", self.algorithm(), self.hex)
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some((alg, hex)) = s.split_once(':') else {
            return Err(DigestError::NoAlgorithm(s.to_string()));
        };
        let Some(algorithm) = Algorithm::from_name(alg) else {
            return Err(DigestError::Unsupported {
                digest: s.to_string(),
                algorithm: alg.to_string(),
            });
        };
        if hex.len() != algorithm.hex_len()
            || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(DigestError::BadHex {
                digest: s.to_string(),
                algorithm: algorithm.name(),
                len: algorithm.hex_len(),
            });
        }
        Ok(Digest {
            algorithm,
            hex: hex.into(),
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm(), self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({}:{})", self.algorithm(), self.hex)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[derive(Clone)]
enum State {
    Sha256(Sha256),
    Sha512(Sha512),
}

impl Default for State {
    fn default() -> Self {
        State::Sha256(Sha256::default())
    }
}

/// A running hash (sha256 unless asked otherwise) plus byte count.
#[derive(Clone, Default)]
pub struct Hasher {
    state: State,
    len: u64,
}

impl Hasher {
    pub fn new() -> Self {
        Self::default()
    }
    /// A hasher for `algorithm`, to verify content named by a digest of it.
    pub fn with_algorithm(algorithm: Algorithm) -> Self {
        let state = match algorithm {
            Algorithm::Sha256 => State::Sha256(Sha256::default()),
            Algorithm::Sha512 => State::Sha512(Sha512::default()),
        };
        Hasher { state, len: 0 }
    }
    pub fn update(&mut self, bytes: &[u8]) {
        match &mut self.state {
            State::Sha256(h) => h.update(bytes),
            State::Sha512(h) => h.update(bytes),
        }
        self.len += bytes.len() as u64;
    }
    pub fn len(&self) -> u64 {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn finish(self) -> (Digest, u64) {
        let digest = match self.state {
            State::Sha256(h) => Digest::from_sha256(h.finalize().into()),
            State::Sha512(h) => Digest {
                algorithm: Algorithm::Sha512,
                hex: hex::encode(h.finalize()).into(),
            },
        };
        (digest, self.len)
    }
}

/// A writer that hashes and counts everything passing through to `inner`.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Hasher,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        Self::with_algorithm(inner, Algorithm::Sha256)
    }
    /// Hashing with `algorithm`, to verify content named by a digest of it.
    pub fn with_algorithm(inner: W, algorithm: Algorithm) -> Self {
        HashingWriter {
            inner,
            hasher: Hasher::with_algorithm(algorithm),
        }
    }
    pub fn bytes_written(&self) -> u64 {
        self.hasher.len()
    }
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }
    /// Returns the inner writer, the digest and the length of what was written.
    pub fn finish(self) -> (W, Digest, u64) {
        let (d, n) = self.hasher.finish();
        (self.inner, d, n)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A writer that only hashes and counts (a sink), for uncompressed tar streams.
#[derive(Default)]
pub struct HashingSink {
    hasher: Hasher,
}

impl HashingSink {
    pub fn new() -> Self {
        Self::default()
    }
    /// A sink hashing with `algorithm` (a sha512 diff_id is measured in sha512).
    pub fn with_algorithm(algorithm: Algorithm) -> Self {
        HashingSink {
            hasher: Hasher::with_algorithm(algorithm),
        }
    }
    pub fn finish(self) -> (Digest, u64) {
        self.hasher.finish()
    }
}

impl Write for HashingSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.hasher.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_of_empty() {
        assert_eq!(
            Digest::of(b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn parse_round_trip() {
        let s = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let d: Digest = s.parse().unwrap();
        assert_eq!(d.to_string(), s);
        assert_eq!(d.short(), "e3b0c44298fc");
    }

    #[test]
    fn parse_rejects() {
        assert!(matches!(
            "abc".parse::<Digest>(),
            Err(DigestError::NoAlgorithm(_))
        ));
        assert!(matches!(
            "md5:abc".parse::<Digest>(),
            Err(DigestError::Unsupported { .. })
        ));
        assert!(matches!(
            "sha256:abc".parse::<Digest>(),
            Err(DigestError::BadHex { .. })
        ));
        let upper = format!("sha256:{}", "A".repeat(64));
        assert!(matches!(
            upper.parse::<Digest>(),
            Err(DigestError::BadHex { .. })
        ));
        // A sha512 length under sha256's name, and the reverse, are refused.
        assert!(
            format!("sha256:{}", "a".repeat(128))
                .parse::<Digest>()
                .is_err()
        );
        assert!(
            format!("sha512:{}", "a".repeat(64))
                .parse::<Digest>()
                .is_err()
        );
        let traversal = format!("sha256:../{}", "a".repeat(61));
        assert!(traversal.parse::<Digest>().is_err());
    }

    #[test]
    fn sha512_digests_parse_hash_and_verify() {
        // sha512("") as `sha512sum </dev/null` prints it.
        let empty = "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e";
        let d: Digest = empty.parse().unwrap();
        assert_eq!(d.to_string(), empty);
        assert_eq!(d.alg(), Algorithm::Sha512);
        assert_eq!(Digest::of_with(Algorithm::Sha512, b""), d);
        assert!(d.matches(b""));
        assert!(!d.matches(b"x"));
        let mut h = Hasher::with_algorithm(Algorithm::Sha512);
        h.update(b"");
        assert_eq!(h.finish(), (d.clone(), 0));
        assert_eq!(d.referrers_tag(), format!("sha512-{}", d.hex()));
    }

    #[test]
    fn unknown_algorithm_error_names_digest_and_supported_ones() {
        let e = "md5:d41d8cd98f00b204e9800998ecf8427e"
            .parse::<Digest>()
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "digest \"md5:d41d8cd98f00b204e9800998ecf8427e\" uses algorithm \"md5\", which ocibench cannot verify (supported: sha256, sha512)"
        );
        let e = "sha512:abc".parse::<Digest>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "digest \"sha512:abc\" is not sha512:<128 lowercase hex digits>"
        );
    }

    #[test]
    fn hashing_writer_counts() {
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"hello ").unwrap();
        w.write_all(b"world").unwrap();
        let (buf, d, n) = w.finish();
        assert_eq!(buf, b"hello world");
        assert_eq!(n, 11);
        assert_eq!(d, Digest::of(b"hello world"));
    }
}
