//! The human text of `ocibench inspect --referrers`: which manifests refer to an
//! image (signatures, SBOMs, attestations), one block each, and how they were
//! found (the referrers API or the tag-schema fallback), as `oras discover` lists them.

use std::io::Write;

use crate::oci::registry::{Referrers, ReferrersVia};
use crate::report::units::thousands;

/// Writes `found`, the referrers of the image `source` names.
pub fn write_referrers(
    out: &mut dyn Write,
    source: &str,
    found: &Referrers,
) -> std::io::Result<()> {
    let via = match found.via {
        ReferrersVia::ReferrersApi => "the referrers API".to_string(),
        ReferrersVia::TagSchema => {
            format!("the tag schema (tag {})", found.subject.referrers_tag())
        }
    };
    let filter = found
        .artifact_type
        .as_deref()
        .map(|t| format!(" of artifact type {t}"))
        .unwrap_or_default();
    let n = found.referrers.len();
    writeln!(out, "Referrers of {source}")?;
    writeln!(out, "  subject       {}", found.subject)?;
    writeln!(out, "  found via     {via}")?;
    writeln!(out, "  referrers     {n}{filter}",)?;
    for r in &found.referrers {
        writeln!(out)?;
        writeln!(out, "  {}", r.digest)?;
        writeln!(
            out,
            "    artifact type  {}",
            r.artifact_type.as_deref().unwrap_or("(none)")
        )?;
        writeln!(out, "    media type     {}", r.media_type)?;
        writeln!(out, "    size           {} bytes", thousands(r.size))?;
        for (k, v) in r.annotations.iter().flatten() {
            writeln!(out, "    annotation     {k}={v}")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::digest::Digest;
    use crate::oci::manifest::{Descriptor, OCI_MANIFEST};

    #[test]
    fn one_block_per_referrer() {
        let subject = Digest::of(b"image");
        let mut sbom = Descriptor::new(OCI_MANIFEST, Digest::of(b"sbom"), 1234);
        sbom.artifact_type = Some("application/spdx+json".into());
        sbom.annotations = Some([("k".to_string(), "v".to_string())].into());
        let found = Referrers {
            subject: subject.clone(),
            via: ReferrersVia::TagSchema,
            artifact_type: None,
            referrers: vec![sbom],
        };
        let mut out = Vec::new();
        write_referrers(&mut out, "docker://r/a:1", &found).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!(
                "Referrers of docker://r/a:1\n  subject       {subject}\n  found via     the tag schema (tag sha256-{})\n  referrers     1\n\n  {}\n    artifact type  application/spdx+json\n    media type     {OCI_MANIFEST}\n    size           1,234 bytes\n    annotation     k=v\n",
                subject.hex(),
                Digest::of(b"sbom")
            )
        );
    }
}
