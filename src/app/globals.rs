//! Settings every command shares, resolved once from the global flags: the
//! cache directory, `--quiet`, the registry credentials, and the ways to reach a
//! registry and report progress that follow from them.

use std::path::PathBuf;
use std::sync::Arc;

use ocibench::oci::reference::TlsMode;
use ocibench::oci::registry::RegistryClient;
use ocibench::oci::registry::credentials::{self, CredentialStore};

use ocibench::oci::pull::{self, ImageSize, PullOptions, StoredImage};
use ocibench::oci::store::BlobStore;

use crate::app::GlobalArgs;
use crate::app::args::SourceSettings;

/// Settings every command shares, resolved from the global flags.
#[derive(Debug, Clone)]
pub struct Context {
    pub cache_dir: PathBuf,
    pub quiet: bool,
    /// Where registry credentials come from (`--creds`, then the auth files).
    pub credentials: Arc<CredentialStore>,
}

impl Context {
    pub fn from_args(
        g: &GlobalArgs,
    ) -> Result<Self, ocibench::oci::registry::credentials::CredentialError> {
        let flag = match (&g.creds, &g.creds_file) {
            (Some(c), _) => Some(credentials::parse_creds(c, "--creds")?),
            (None, Some(f)) => Some(credentials::read_creds_file(
                f,
                format!("--creds-file {}", f.display()),
            )?),
            (None, None) => None,
        };
        Ok(Context {
            cache_dir: g
                .cache_dir
                .clone()
                .unwrap_or_else(ocibench::oci::store::BlobStore::default_root),
            quiet: g.quiet,
            credentials: Arc::new(CredentialStore::from_env(flag)),
        })
    }

    /// A registry client with this context's credentials.
    pub fn registry_client(&self, tls: TlsMode) -> Arc<RegistryClient> {
        Arc::new(
            RegistryClient::builder()
                .tls(tls)
                .credentials(self.credentials.clone().provider())
                .build(),
        )
    }

    /// Pulls an image (any transport) into the cache, with progress bars when `show`.
    /// (`anyhow`, so a cache that cannot be opened stays a `StoreError` with its hint.)
    pub fn fetch(
        &self,
        settings: &SourceSettings,
        show: bool,
    ) -> anyhow::Result<(BlobStore, StoredImage)> {
        let store = BlobStore::open(&self.cache_dir)?;
        let client = self.registry_client(settings.tls);
        let reporter = crate::app::terminal::reporter(show);
        let opts = PullOptions {
            platform: settings.platform.clone(),
            ..PullOptions::default()
        };
        let stored = pull::fetch(
            &settings.location,
            &client,
            &store,
            &opts,
            reporter.as_ref(),
        )?;
        Ok((store, stored))
    }

    /// `fetch`, then the image's exact sizes (from the store's records).
    pub fn fetch_sized(
        &self,
        settings: &SourceSettings,
        show: bool,
    ) -> anyhow::Result<(BlobStore, StoredImage, ImageSize)> {
        let (store, stored) = self.fetch(settings, show)?;
        let size = pull::size_of(&store, &stored.name, &stored.manifest_digest)?;
        Ok((store, stored, size))
    }

    /// Whether progress bars may be drawn (stderr is a terminal, not `--quiet`).
    pub fn show_progress(&self) -> bool {
        !self.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr())
    }
}
