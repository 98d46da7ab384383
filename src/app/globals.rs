//! Settings every command shares, resolved once from the global flags: the
//! cache directory, `--quiet`, the registry credentials, and the ways to reach a
//! registry and report progress that follow from them.
//!
//! Credentials from the command line reach no registry until a command binds
//! them ([`Context::bind_creds`]) to the registries they are for: a forgotten
//! binding means anonymous (or the auth files), never a password sent astray.

use std::path::PathBuf;
use std::sync::Arc;

use ocibench::oci::location::ImageLocation;
use ocibench::oci::reference::ImageReference;
use ocibench::oci::reference::TlsMode;
use ocibench::oci::registry::certs_d::CertDirs;
use ocibench::oci::registry::credentials::{self, CredentialStore, CredsFlag, ScopedCreds};
use ocibench::oci::registry::{Deadline, RegistriesConf, RegistryClient, SpeedLimit};

use ocibench::oci::pull::{self, ImageSize, PullOptions, StoredImage};
use ocibench::oci::store::BlobStore;

use crate::app::GlobalArgs;
use crate::app::args::{CopyCredsArgs, NetArgs, NetSettings, SourceSettings};
use crate::app::explain::UserError;

/// Settings every command shares, resolved from the global flags.
#[derive(Debug, Clone)]
pub struct Context {
    pub cache_dir: PathBuf,
    pub quiet: bool,
    /// `-v`: every registry exchange as a line on stderr (see `app::trace`).
    pub verbose: bool,
    /// Where registry credentials come from: `--creds` once bound, then the auth files.
    pub credentials: Arc<CredentialStore>,
    /// `--creds`/`--creds-file`, not yet bound to a registry.
    creds: Option<CredsFlag>,
    /// The low-speed limit of registry transfers.
    speed: Option<SpeedLimit>,
    /// When registry traffic stops (`--timeout`), for every client of the command.
    deadline: Deadline,
    /// `--cert-dir`: every registry's certificates, instead of certs.d.
    cert_dir: Option<PathBuf>,
}

impl Context {
    pub fn from_args(
        g: &GlobalArgs,
    ) -> Result<Self, ocibench::oci::registry::credentials::CredentialError> {
        let flag = match (&g.creds, &g.creds_file) {
            (Some(c), _) => Some(credentials::parse_creds(c.expose(), "--creds")?),
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
            verbose: g.verbose,
            credentials: Arc::new(CredentialStore::from_env(Vec::new())),
            creds: flag,
            speed: Some(SpeedLimit::default()),
            deadline: Deadline::default(),
            cert_dir: g.cert_dir.clone(),
        })
    }

    /// This context with the time limits of `net` (`--timeout` counts from now).
    pub fn with_net(&self, net: &NetArgs) -> anyhow::Result<Context> {
        let NetSettings { timeout, speed } = net.settings()?;
        let mut ctx = self.clone();
        ctx.speed = speed;
        ctx.deadline = Deadline::after(timeout);
        Ok(ctx)
    }

    /// This context with the command line's credentials bound to the registries
    /// they are for: `--creds` to the registries written to (or, when the command
    /// writes to none, the ones read from), `--src-creds`/`--dest-creds` to their
    /// side. Each flag names one registry; other registries are never offered it.
    /// A name registries.conf rewrites binds to its location's registry.
    pub fn bind_creds(
        &self,
        sources: &[&ImageReference],
        destinations: &[&ImageReference],
        copy: &CopyCredsArgs,
    ) -> anyhow::Result<Context> {
        let src = copy
            .src_creds
            .as_ref()
            .map(|c| credentials::parse_creds(c.expose(), "--src-creds"))
            .transpose()?;
        let dest = copy
            .dest_creds
            .as_ref()
            .map(|c| credentials::parse_creds(c.expose(), "--dest-creds"))
            .transpose()?;
        // A name registries.conf rewrites is really at its location: the flags go
        // there (and never to a mirror, which has its own entry in the auth files).
        // (Read only when a registry is involved: a broken file must not stop a
        // command that never touches one.)
        let conf = if sources.is_empty() && destinations.is_empty() {
            RegistriesConf::default()
        } else {
            RegistriesConf::from_env()?
        };
        let located = |refs: &[&ImageReference]| -> Vec<ImageReference> {
            refs.iter()
                .map(|r| {
                    conf.push_endpoint(r)
                        .map_or_else(|_| (*r).clone(), |e| e.reference)
                })
                .collect()
        };
        let (sources, destinations) = (located(sources), located(destinations));
        let flags = scope_creds(
            self.creds.clone(),
            src,
            dest,
            &sources.iter().collect::<Vec<_>>(),
            &destinations.iter().collect::<Vec<_>>(),
        )?;
        let mut ctx = self.clone();
        ctx.credentials = Arc::new(CredentialStore::from_env(flags));
        Ok(ctx)
    }

    /// `bind_creds` for a command that only reads `location` (pull, size, run).
    pub fn bind_creds_to_source(&self, location: &ImageLocation) -> anyhow::Result<Context> {
        let sources: Vec<&ImageReference> = registry_of(location).into_iter().collect();
        self.bind_creds(&sources, &[], &CopyCredsArgs::default())
    }

    /// A registry client with this context's credentials, resolving names through
    /// the machine's registries.conf. `images` are the command's registry names
    /// (for the `insecure` of a `*.domain` table without location); with none, the
    /// file is not read, so a broken one stops no command that never uses it.
    /// With `-v`, every exchange it makes is traced on stderr.
    pub fn registry_client(
        &self,
        tls: TlsMode,
        images: &[&ImageReference],
    ) -> anyhow::Result<Arc<RegistryClient>> {
        let conf = if images.is_empty() {
            RegistriesConf::default()
        } else {
            RegistriesConf::from_env()?
        };
        let mut builder = RegistryClient::builder()
            .tls(tls)
            .credentials(self.credentials.clone().provider())
            .speed_limit(self.speed)
            .deadline(self.deadline)
            .cert_dirs(CertDirs::from_env(self.cert_dir.clone()))
            .insecure_hosts(conf.insecure_hosts(images))
            .registries_conf(Arc::new(conf));
        if self.verbose {
            builder = builder.on_exchange(crate::app::trace::stderr_hook());
        }
        Ok(Arc::new(builder.build()))
    }

    /// Pulls an image (any transport) into the cache, with progress bars when `show`.
    /// (`anyhow`, so a cache that cannot be opened stays a `StoreError` with its hint.)
    pub fn fetch(
        &self,
        settings: &SourceSettings,
        show: bool,
    ) -> anyhow::Result<(BlobStore, StoredImage)> {
        let store = BlobStore::open(&self.cache_dir)?;
        let images: Vec<&ImageReference> = registry_of(&settings.location).into_iter().collect();
        let client = self.registry_client(settings.tls, &images)?;
        let reporter = self.reporter(show);
        let opts = PullOptions {
            platform: settings.platform.clone(),
            platform_required: settings.platform_required,
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
        let mut size = pull::size_of(&store, &stored.name, &stored.manifest_digest)?;
        if let Some(index) = &stored.index {
            size.chosen_from(index);
        }
        Ok((store, stored, size))
    }

    /// Whether progress bars may be drawn (stderr is a terminal, not `--quiet`).
    pub fn show_progress(&self) -> bool {
        !self.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr())
    }

    /// The reporter of transfers and layers: bars when `show`, except under `-v`
    /// (bars redrawn between trace lines would tear them, and each transfer's line
    /// says when it ended). Status lines and the load's bar are not affected.
    pub fn reporter(&self, show: bool) -> Box<dyn ocibench::progress::Reporter> {
        crate::app::terminal::reporter(show && !self.verbose)
    }
}

/// The registry reference of a location, if it names one.
pub fn registry_of(location: &ImageLocation) -> Option<&ImageReference> {
    match location {
        ImageLocation::Registry(r) => Some(r),
        _ => None,
    }
}

/// Binds each command-line credential to its registry (see `Context::bind_creds`).
/// A flag that would have to serve two registries is refused: it is meant for one.
fn scope_creds(
    creds: Option<CredsFlag>,
    src: Option<CredsFlag>,
    dest: Option<CredsFlag>,
    sources: &[&ImageReference],
    destinations: &[&ImageReference],
) -> Result<Vec<ScopedCreds>, UserError> {
    let (mut src, mut dest) = (src, dest);
    if let Some(c) = creds {
        let (slot, other) = if destinations.is_empty() {
            (&mut src, "--src-creds")
        } else {
            (&mut dest, "--dest-creds")
        };
        if slot.is_some() {
            return Err(UserError::usage(format!(
                "{} and {other} name the same registry's credentials",
                c.origin
            ))
            .with_hint("give one of them"));
        }
        *slot = Some(c);
    }
    let one_registry = |flag: &CredsFlag, refs: &[&ImageReference], side: &str| {
        let mut registries: Vec<String> = refs
            .iter()
            .map(|r| credentials::normalize_registry(r.registry()))
            .collect();
        registries.sort();
        registries.dedup();
        match registries.len() {
            1 => Ok(registries.remove(0)),
            0 => Err(UserError::usage(format!(
                "{}: the {side} is not in a registry",
                flag.origin
            ))
            .with_hint("credentials are for registries (docker://REGISTRY/REPO:TAG)")),
            _ => Err(UserError::usage(format!(
                "{} is for one registry, but the {side} is in {}",
                flag.origin,
                registries.join(" and ")
            ))
            .with_hint(
                "log in to each registry with `podman login REGISTRY` (ocibench reads its auth.json), so each gets only its own credentials",
            )),
        }
    };
    let mut flags = Vec::new();
    let src_registry = match &src {
        // `--creds` for a command that reads from no registry (scratch, oci:) is unused.
        Some(f) if sources.is_empty() && f.origin.starts_with("--creds") => None,
        Some(f) => Some(one_registry(f, sources, "source")?),
        None => None,
    };
    let dest_registry = match &dest {
        Some(f) => Some(one_registry(f, destinations, "destination")?),
        None => None,
    };
    // Both ends in one registry with two users: each user for its own repositories.
    let split = src_registry.is_some() && src_registry == dest_registry;
    if let (Some(f), Some(registry)) = (src, src_registry) {
        if split {
            flags.extend(
                sources
                    .iter()
                    .map(|r| f.clone().scoped(&registry, Some(r.repository()))),
            );
        } else {
            flags.push(f.scoped(&registry, None));
        }
    }
    if let (Some(f), Some(registry)) = (dest, dest_registry) {
        if split {
            flags.extend(
                destinations
                    .iter()
                    .map(|r| f.clone().scoped(&registry, Some(r.repository()))),
            );
        } else {
            flags.push(f.scoped(&registry, None));
        }
    }
    Ok(flags)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> ImageReference {
        s.parse().unwrap()
    }
    fn flag(origin: &str) -> Option<CredsFlag> {
        Some(credentials::parse_creds("u:p", origin).unwrap())
    }
    fn bound(v: &[ScopedCreds]) -> Vec<&str> {
        v.iter().map(ScopedCreds::registry).collect()
    }

    #[test]
    fn creds_bind_to_the_destination_else_the_source() {
        let (hub, private) = (r("python:3"), r("private.example/app:1"));
        let v = scope_creds(flag("--creds"), None, None, &[&hub], &[&private]).unwrap();
        assert_eq!(bound(&v), ["private.example"]);
        let v = scope_creds(flag("--creds"), None, None, &[&private], &[]).unwrap();
        assert_eq!(bound(&v), ["private.example"]);
        let v = scope_creds(
            None,
            flag("--src-creds"),
            flag("--dest-creds"),
            &[&hub],
            &[&private],
        )
        .unwrap();
        assert_eq!(bound(&v), ["docker.io", "private.example"]);
        // No registry to read from: `--creds` is unused; `--src-creds` is a mistake.
        assert!(
            scope_creds(flag("--creds"), None, None, &[], &[])
                .unwrap()
                .is_empty()
        );
        assert!(scope_creds(None, flag("--src-creds"), None, &[], &[&private]).is_err());
    }

    #[test]
    fn one_flag_never_serves_two_registries() {
        let (a, b) = (r("a.example/x:1"), r("b.example/y:1"));
        let e = scope_creds(flag("--creds"), None, None, &[], &[&a, &b]).unwrap_err();
        assert!(
            e.message.contains("a.example and b.example"),
            "{}",
            e.message
        );
        let e = scope_creds(flag("--creds"), None, None, &[&a, &b], &[]).unwrap_err();
        assert!(e.message.contains("source"), "{}", e.message);
        let e = scope_creds(flag("--creds"), None, flag("--dest-creds"), &[], &[&a]).unwrap_err();
        assert!(e.message.contains("--dest-creds"), "{}", e.message);
    }
}
