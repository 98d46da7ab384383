//! OCI 1.1 referrers: the manifests whose `subject` is a given manifest
//! (signatures, SBOMs, attestations), as `oras discover` and `regctl artifact
//! list` find them. The referrers API (`GET /v2/<name>/referrers/<digest>`) is
//! asked first; a registry without it answers 404 (Distribution 2.8 does), and
//! then the distribution spec's fallback is read: the index tagged
//! `<alg>-<hex>`, which whoever pushed a referrer keeps up to date. When that
//! tag is missing too, the image has no referrers (not an error).

use http::StatusCode;
use serde::Serialize;

use super::client::RegistryClient;
use super::send::{Call, header};
use super::{MAX_MANIFEST_BYTES, RegistryError};
use crate::oci::digest::Digest;
use crate::oci::manifest::{Descriptor, Manifest, OCI_INDEX};
use crate::oci::reference::ImageReference;

/// How the referrers were found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReferrersVia {
    /// `GET /v2/<name>/referrers/<digest>`.
    ReferrersApi,
    /// The `<alg>-<hex>` tag, for registries without the API.
    TagSchema,
}

/// The referrers of one manifest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Referrers {
    pub subject: Digest,
    pub via: ReferrersVia,
    /// The `artifactType` asked for, if any (applied by the registry or here).
    pub artifact_type: Option<String>,
    /// Their descriptors, in the registry's order (OCI's field names in JSON).
    pub referrers: Vec<Descriptor>,
}

impl RegistryClient {
    /// The referrers of `subject` in `image`'s repository, only those of
    /// `artifact_type` when given (a registry that did not apply the filter, as
    /// its `OCI-Filters-Applied` header tells, is filtered here).
    pub fn referrers(
        &self,
        image: &ImageReference,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Referrers, RegistryError> {
        let mut url = self.url(image, &format!("referrers/{subject}"));
        if let Some(t) = artifact_type {
            url.push_str("?artifactType=");
            url.extend(url::form_urlencoded::byte_serialize(t.as_bytes()));
        }
        let (via, filtered, listed) = match self.get_index(image, &url, subject)? {
            Some((list, filters)) => (
                ReferrersVia::ReferrersApi,
                filters.split(',').any(|f| f.trim() == "artifactType"),
                list,
            ),
            None => {
                let tag = self.url(image, &format!("manifests/{}", subject.referrers_tag()));
                let list = self.get_index(image, &tag, subject)?.map(|(l, _)| l);
                (ReferrersVia::TagSchema, false, list.unwrap_or_default())
            }
        };
        let referrers = match artifact_type {
            Some(t) if !filtered => listed
                .into_iter()
                .filter(|d| d.artifact_type.as_deref() == Some(t))
                .collect(),
            _ => listed,
        };
        Ok(Referrers {
            subject: subject.clone(),
            via,
            artifact_type: artifact_type.map(str::to_string),
            referrers,
        })
    }

    /// An OCI index's entries and the `OCI-Filters-Applied` header, or `None` on 404.
    fn get_index(
        &self,
        image: &ImageReference,
        url: &str,
        subject: &Digest,
    ) -> Result<Option<(Vec<Descriptor>, String)>, RegistryError> {
        let mut call = Call::get(image, url.to_string());
        call.headers.push(("Accept", OCI_INDEX.to_string()));
        let resp = self.send(call)?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let resp = self.check_status(image, "GET", url, resp)?;
        let filters = header(&resp, "oci-filters-applied").unwrap_or_default();
        let bytes = self
            .transport
            .read_capped(resp.into_body(), MAX_MANIFEST_BYTES)
            .map_err(|source| RegistryError::Body {
                url: url.into(),
                source,
            })?
            .ok_or_else(|| RegistryError::ManifestTooLarge {
                host: image.api_host().to_string(),
            })?;
        let bad = |source| RegistryError::BadReferrers {
            host: image.api_host().to_string(),
            subject: subject.to_string(),
            source: Box::new(source),
        };
        // Served as an index whatever the Content-Type says (some registries send
        // application/json); anything else is not a referrers list.
        match Manifest::parse(OCI_INDEX, &bytes).map_err(bad)? {
            (_, Manifest::Index(index)) => Ok(Some((index.manifests, filters))),
            (mt, Manifest::Image(_)) => {
                Err(bad(crate::oci::manifest::ManifestError::Unsupported(mt)))
            }
        }
    }
}
