//! One-layer OCI images made in memory, for the mock registries that answer what a
//! real registry would not (a lying size, a trickle, a stall, a wrong diff_id): the
//! image is the same every time, only the way it is served differs per test.

use std::io::Write;

use sha2::{Digest as _, Sha256};

/// `sha256:<hex>` of `b`.
pub fn sha(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

/// An OCI image manifest, its config, its one gzip layer and that layer's tar.
pub struct MockImage {
    pub manifest: Vec<u8>,
    pub config: Vec<u8>,
    pub layer: Vec<u8>,
    pub tar: Vec<u8>,
}

/// What [`MockImage::one_file`] builds; the defaults make a valid linux/amd64 image.
pub struct MockImageSpec<'a> {
    file: &'a str,
    data: &'a [u8],
    compression: flate2::Compression,
    diff_id: Option<String>,
    declared_config_size: Option<u64>,
}

impl MockImage {
    /// A linux/amd64 image whose one layer holds `file` (mode 0644, mtime 0) = `data`.
    pub fn one_file<'a>(file: &'a str, data: &'a [u8]) -> MockImageSpec<'a> {
        MockImageSpec {
            file,
            data,
            compression: flate2::Compression::default(),
            diff_id: None,
            declared_config_size: None,
        }
    }
}

impl MockImageSpec<'_> {
    pub fn compression(mut self, c: flate2::Compression) -> Self {
        self.compression = c;
        self
    }
    /// The config's `rootfs.diff_ids[0]`, instead of the tar's digest.
    pub fn diff_id(mut self, d: &str) -> Self {
        self.diff_id = Some(d.to_string());
        self
    }
    /// The config size the manifest declares, instead of the config's length.
    pub fn declared_config_size(mut self, n: u64) -> Self {
        self.declared_config_size = Some(n);
        self
    }

    pub fn build(self) -> MockImage {
        let mut tar = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_size(self.data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_cksum();
        tar.append_data(&mut h, self.file, self.data).unwrap();
        let tar = tar.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), self.compression);
        gz.write_all(&tar).unwrap();
        let layer = gz.finish().unwrap();
        let diff_id = self.diff_id.unwrap_or_else(|| sha(&tar));
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":["{diff_id}"]}}}}"#
        )
        .into_bytes();
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{}","size":{}}}]}}"#,
            sha(&config),
            self.declared_config_size.unwrap_or(config.len() as u64),
            sha(&layer),
            layer.len()
        )
        .into_bytes();
        MockImage {
            manifest,
            config,
            layer,
            tar,
        }
    }
}
