//! Manifests and indexes as a registry or a layout serves them. The first input
//! byte picks the Content-Type (the four manifest types, a vague one, none); the
//! rest is the document. Whatever parses must serialise and parse back equal,
//! every digest in it is a valid sha256 or sha512 (its hex as long as its
//! algorithm fixes), and platform selection keeps its promise
//! (never an attestation entry, always a matching platform).

use ocibench::oci::digest::Digest;
use ocibench::oci::manifest::{
    DOCKER_LIST, DOCKER_MANIFEST, Descriptor, ImageIndex, Manifest, ManifestError, OCI_INDEX,
    OCI_MANIFEST, Platform, layer_compression,
};

const CONTENT_TYPES: &[&str] = &[
    OCI_MANIFEST,
    OCI_INDEX,
    DOCKER_MANIFEST,
    DOCKER_LIST,
    "application/json",
    "",
    "application/vnd.oci.image.manifest.v1+json; charset=utf-8",
];

pub fn run(data: &[u8]) {
    let Some((&pick, doc)) = data.split_first() else {
        return;
    };
    let content_type = CONTENT_TYPES[usize::from(pick) % CONTENT_TYPES.len()];
    if let Ok(text) = std::str::from_utf8(doc)
        && let Ok(p) = text.parse::<Platform>()
    {
        let shown = p.to_string();
        assert_eq!(shown.parse::<Platform>().as_ref(), Ok(&p), "{text:?}");
    }
    let Ok((media_type, manifest)) = Manifest::parse(content_type, doc) else {
        return;
    };
    match &manifest {
        Manifest::Image(m) => {
            assert!(
                media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST,
                "image manifest parsed as {media_type:?}"
            );
            descriptor(&m.config);
            m.layers.iter().for_each(descriptor);
            m.subject.as_deref().into_iter().for_each(descriptor);
            for l in &m.layers {
                let _ = layer_compression(&l.media_type);
            }
            let _ = m.family();
            let bytes = m.to_bytes();
            let (again_type, again) = Manifest::parse(&media_type, &bytes)
                .unwrap_or_else(|e| panic!("canonical bytes of a parsed manifest fail: {e}"));
            assert_eq!(again_type, media_type);
            assert_eq!(again, manifest, "manifest changes through to_bytes");
            let Manifest::Image(a) = again else {
                unreachable!()
            };
            assert_eq!(a.to_bytes(), bytes, "to_bytes is not stable");
        }
        Manifest::Index(i) => {
            assert!(
                media_type == OCI_INDEX || media_type == DOCKER_LIST,
                "index parsed as {media_type:?}"
            );
            i.manifests.iter().for_each(descriptor);
            i.subject.as_deref().into_iter().for_each(descriptor);
            let bytes = serde_json::to_vec(i).expect("an index serialises");
            let (_, again) = Manifest::parse(&media_type, &bytes)
                .unwrap_or_else(|e| panic!("serialised parsed index fails: {e}"));
            assert_eq!(again, manifest, "index changes through serde");
            select(i);
        }
    }
}

fn descriptor(d: &Descriptor) {
    let shown = d.digest.to_string();
    assert_eq!(shown.parse::<Digest>().as_ref(), Ok(&d.digest));
    assert_eq!(d.digest.hex().len(), d.digest.alg().hex_len());
}

fn select(i: &ImageIndex) {
    assert!(!i.platforms().is_empty(), "platforms() is never empty");
    for wanted in [
        Platform::host(),
        Platform::new("linux", "arm64", Some("v8")),
        Platform::new("linux", "arm64", None),
        Platform::new("unknown", "unknown", None),
    ] {
        match i.select(&wanted) {
            Ok(d) => {
                let p = d.platform.as_ref().expect("selected entry has a platform");
                assert!(!p.is_unknown(), "selected an attestation entry");
                assert!(p.satisfies(&wanted), "selected {p} for {wanted}");
            }
            Err(ManifestError::NoPlatform { .. }) => {}
            Err(e) => panic!("select failed oddly: {e}"),
        }
    }
}
