//! Reading one image from several endpoints (registries.conf's mirrors, then the
//! location), as containers/image does: an endpoint that cannot serve a request
//! (down, refusing, or without the manifest or blob) is skipped for the next one;
//! an endpoint that serves something wrong (a digest mismatch) stops the pull.
//!
//! Which endpoint serves what: every request goes first to the endpoint that last
//! served a manifest (at first, the first mirror), then to the others in the
//! configured order. So the blobs of a manifest come from where the manifest came
//! from, and a partial mirror that lacks a blob is filled in by the next endpoint.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Endpoint, RegistryClient, RegistryError};
use crate::oci::reference::ImageReference;

/// The endpoints of one pull, in order, and which one served a manifest last.
#[derive(Debug)]
pub struct PullEndpoints {
    endpoints: Vec<Endpoint>,
    preferred: AtomicUsize,
}

impl PullEndpoints {
    /// The endpoints `client`'s registries.conf gives for pulling `image`
    /// (an error when it is blocked).
    pub fn resolve(client: &RegistryClient, image: &ImageReference) -> Result<Self, RegistryError> {
        Ok(Self::new(client.registries_conf().pull_endpoints(image)?))
    }

    /// `endpoints` must not be empty.
    pub fn new(endpoints: Vec<Endpoint>) -> Self {
        assert!(!endpoints.is_empty(), "a pull needs an endpoint");
        PullEndpoints {
            endpoints,
            preferred: AtomicUsize::new(0),
        }
    }

    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// The endpoint that served a manifest last (the first one before any did).
    pub fn preferred(&self) -> &Endpoint {
        &self.endpoints[self.preferred.load(Ordering::Relaxed)]
    }

    /// Indices in the order they are tried: the preferred one, then the rest.
    fn order(&self) -> impl Iterator<Item = usize> + '_ {
        let first = self.preferred.load(Ordering::Relaxed);
        std::iter::once(first).chain((0..self.endpoints.len()).filter(move |&i| i != first))
    }

    /// A manifest request (GET or HEAD): the first endpoint that answers it
    /// becomes the preferred one.
    pub fn manifest<T>(
        &self,
        mut call: impl FnMut(&ImageReference) -> Result<T, RegistryError>,
    ) -> Result<T, RegistryError> {
        self.first_serving(|i, e| {
            let answer = call(&e.reference)?;
            self.preferred.store(i, Ordering::Relaxed);
            Ok(answer)
        })
    }

    /// A blob request: the preferred endpoint first, then the others.
    pub fn blob<T>(
        &self,
        mut call: impl FnMut(&ImageReference) -> Result<T, RegistryError>,
    ) -> Result<T, RegistryError> {
        self.first_serving(|_, e| call(&e.reference))
    }

    fn first_serving<T>(
        &self,
        mut call: impl FnMut(usize, &Endpoint) -> Result<T, RegistryError>,
    ) -> Result<T, RegistryError> {
        let mut location_error = None;
        let mut last_error = None;
        for i in self.order() {
            let endpoint = &self.endpoints[i];
            match call(i, endpoint) {
                Ok(answer) => return Ok(answer),
                Err(e) if cannot_serve(&e) => {
                    // The location's own answer is the one worth reporting when
                    // every endpoint failed: it is the registry the user named.
                    if endpoint.mirror {
                        last_error = Some(e);
                    } else {
                        location_error = Some(e);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(location_error
            .or(last_error)
            .expect("at least one endpoint was tried"))
    }
}

/// Whether `e` says "this endpoint cannot serve it" (so the next may), rather
/// than "what it served is wrong" or "this command must stop".
pub fn cannot_serve(e: &RegistryError) -> bool {
    matches!(
        e,
        RegistryError::Unreachable { .. }
            | RegistryError::NotFound { .. }
            | RegistryError::Unauthorized { .. }
            | RegistryError::TokenRefused { .. }
            | RegistryError::InsecureRealm { .. }
            | RegistryError::Status { .. }
            | RegistryError::BadRedirect { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(s: &str, mirror: bool) -> Endpoint {
        Endpoint {
            reference: s.parse().unwrap(),
            insecure: false,
            mirror,
        }
    }

    fn not_found(what: &str) -> RegistryError {
        RegistryError::NotFound {
            what: "manifest",
            reference: what.to_string(),
            detail: String::new(),
        }
    }

    #[test]
    fn skips_endpoints_that_cannot_serve_and_remembers_who_did() {
        let e = PullEndpoints::new(vec![
            endpoint("m1.example/a:1", true),
            endpoint("m2.example/a:1", true),
            endpoint("loc.example/a:1", false),
        ]);
        let mut tried = Vec::new();
        let got = e.manifest(|r| {
            tried.push(r.registry().to_string());
            match r.registry() {
                "m1.example" => Err(not_found("m1")),
                host => Ok(host.to_string()),
            }
        });
        assert_eq!(got.unwrap(), "m2.example");
        assert_eq!(tried, ["m1.example", "m2.example"]);
        assert_eq!(e.preferred().reference.registry(), "m2.example");
        // Blobs: the manifest's endpoint first, then the others in order.
        let mut tried = Vec::new();
        let got: Result<(), _> = e.blob(|r| {
            tried.push(r.registry().to_string());
            Err(not_found(r.registry()))
        });
        assert_eq!(tried, ["m2.example", "m1.example", "loc.example"]);
        // Every endpoint failed: the location's error is the one reported.
        assert_eq!(
            got.unwrap_err().to_string(),
            "manifest not found: loc.example"
        );
    }

    #[test]
    fn a_wrong_answer_is_not_papered_over() {
        let e = PullEndpoints::new(vec![
            endpoint("m1.example/a:1", true),
            endpoint("loc.example/a:1", false),
        ]);
        let mut tried = 0;
        let got: Result<(), _> = e.manifest(|_| {
            tried += 1;
            Err(RegistryError::DigestMismatch {
                what: "manifest 1".into(),
                host: "m1.example".into(),
                expected: "sha256:aa".into(),
                actual: "sha256:bb".into(),
            })
        });
        assert!(matches!(got, Err(RegistryError::DigestMismatch { .. })));
        assert_eq!(tried, 1);
    }
}
