//! Command-line groups more than one command shares (`--platform`, `--tls-verify`),
//! resolved into library settings; every mistake is a usage error with a hint.

use ocibench::oci::location::ImageLocation;
use ocibench::oci::manifest::Platform;
use ocibench::oci::reference::TlsMode;

use crate::app::explain::UserError;

/// `--tls-verify`, as podman spells it.
#[derive(Debug, Clone, clap::Args)]
pub struct TlsArgs {
    /// Require HTTPS and verify certificates (false: skip verification)
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub tls_verify: bool,
}

impl TlsArgs {
    pub fn mode(&self) -> TlsMode {
        if self.tls_verify {
            TlsMode::Auto
        } else {
            TlsMode::Insecure
        }
    }
}

/// Which image of a multi-platform index to read, and how to reach its registry:
/// shared by every command that reads an image (pull, size, push, run).
#[derive(Debug, Clone, clap::Args)]
pub struct SourceArgs {
    /// Platform to choose from a multi-platform index [default: the host's]
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    #[command(flatten)]
    pub tls: TlsArgs,
}

/// An image to read and how: the location, the platform, TLS.
pub struct SourceSettings {
    pub location: ImageLocation,
    pub platform: Platform,
    pub tls: TlsMode,
}

impl SourceSettings {
    /// `image` in any transport, with the source flags.
    pub fn new(image: &str, source: &SourceArgs) -> anyhow::Result<Self> {
        let location: ImageLocation = image.parse().map_err(|e: ocibench::oci::location::TransportError| {
            UserError::usage(e.to_string()).with_hint(
                "images are docker://REGISTRY/REPO:TAG (or REPO:TAG), oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE[:REF]",
            )
        })?;
        let platform = parse_platform(source.platform.as_deref())?;
        Ok(SourceSettings {
            location,
            platform,
            tls: source.tls.mode(),
        })
    }
}

pub fn parse_platform(p: Option<&str>) -> Result<Platform, UserError> {
    match p {
        None => Ok(Platform::host()),
        Some(s) => Ok(s
            .parse()
            .map_err(|e: ocibench::oci::manifest::PlatformParseError| {
                UserError::usage(e.to_string())
            })?),
    }
}
