//! Image references and skopeo-style locations (`oci-archive:FILE:TAG`, ...): what
//! parses must display and parse back to the same value, and the docker-archive
//! reference normaliser must agree with the reference parser.

use ocibench::oci::location::{Destination, ImageLocation, normalize_docker_reference};
use ocibench::oci::reference::{ImageReference, TlsMode};

pub fn run(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(r) = s.parse::<ImageReference>() {
        let shown = r.to_string();
        let again = shown
            .parse::<ImageReference>()
            .unwrap_or_else(|e| panic!("{s:?} parses, its display {shown:?} does not: {e}"));
        assert_eq!(again, r, "{s:?} -> {shown:?} parses to another reference");
        assert!(!r.repository().is_empty(), "{s:?}: empty repository");
        assert_eq!(
            r.digest().is_some(),
            s.contains('@'),
            "{s:?}: digest lost or invented"
        );
        assert!(
            r.tag().is_some() || r.digest().is_some(),
            "{s:?}: no tag nor digest"
        );
        let url = r.base_url(TlsMode::Auto);
        assert!(url.ends_with(r.api_host()), "{s:?}: {url}");
        let _ = r.manifest_reference();
    }
    if let Ok(l) = s.parse::<ImageLocation>() {
        let shown = l.to_string();
        let again = shown
            .parse::<ImageLocation>()
            .unwrap_or_else(|e| panic!("{s:?} parses, its display {shown:?} does not: {e}"));
        assert_eq!(again, l, "{s:?} -> {shown:?} parses to another location");
    }
    if let Ok(d) = Destination::parse(s) {
        let shown = d.to_string();
        let again = Destination::parse(&shown)
            .unwrap_or_else(|e| panic!("{s:?} parses, its display {shown:?} does not: {e}"));
        assert_eq!(again, d, "{s:?} -> {shown:?} parses to another destination");
    }
    if let Ok(n) = normalize_docker_reference(s) {
        // What goes into a docker-archive's RepoTags must be a reference Docker
        // (and our own parser) reads back as itself.
        let r = n
            .parse::<ImageReference>()
            .unwrap_or_else(|e| panic!("{s:?} normalises to {n:?}, which is not a reference: {e}"));
        assert_eq!(r.to_string(), n, "{s:?}: normalised form is not canonical");
        assert_eq!(
            normalize_docker_reference(&n).as_deref(),
            Ok(n.as_str()),
            "{s:?}: normalising is not idempotent"
        );
        let direct = s.parse::<ImageReference>().map(|r| r.to_string()).ok();
        assert_eq!(
            direct.as_deref(),
            Some(n.as_str()),
            "{s:?}: normaliser and parser disagree"
        );
    }
}
