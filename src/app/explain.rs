//! Every hint and exit status in one place: the library's error types say what
//! failed; this module, compiled into the binary only, says what to do about it
//! (the `hint:` line, which may name the command line's flags) and whether the
//! fault is the input (exit 2) or the run (exit 1).
//!
//! The commands wrap what they want to explain themselves in a `UserError`; for
//! the library's errors, `explain` walks the chain and asks each cause's `Explain`.

use std::fmt;

use ocibench::compare::config::ConfigError as CompareConfigError;
use ocibench::compare::experiment::ExperimentError;
use ocibench::compare::trial::TrialError;
use ocibench::loadgen::transport::TlsSetupError;
use ocibench::loadgen::{ConfigError as LoadConfigError, LoadError};
use ocibench::oci::build::BuildError;
use ocibench::oci::build::layer::LayerError;
use ocibench::oci::build::nix::NixError;
use ocibench::oci::copy::CopyError;
use ocibench::oci::image_config::ConfigError;
use ocibench::oci::location::DestinationError;
use ocibench::oci::manifest::ManifestError;
use ocibench::oci::publish::ExportError;
use ocibench::oci::publish::PublishError;
use ocibench::oci::pull::PullError;
use ocibench::oci::push::PushError;
use ocibench::oci::registry::credentials::CredentialError;
use ocibench::oci::registry::{
    ConnectFailure, RegistriesConfError, RegistryError, TransferTimeout,
};
use ocibench::oci::source::SourceError;
use ocibench::oci::store::StoreError;
use ocibench::runner::RunnerError;

/// Which exit status an error deserves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitKind {
    /// Something failed while running: network, registry, podman (exit 1).
    Runtime,
    /// The user's input is wrong: a bad flag value, a missing file (exit 2).
    Usage,
}

impl ExitKind {
    pub fn code(self) -> u8 {
        match self {
            ExitKind::Runtime => 1,
            ExitKind::Usage => 2,
        }
    }
}

/// Implemented by error types that know how to explain themselves.
pub trait Explain {
    fn hint(&self) -> Option<String> {
        None
    }
    fn exit_kind(&self) -> ExitKind {
        ExitKind::Runtime
    }
}

/// An error with a message meant for the user, an optional hint and an exit kind.
#[derive(Debug)]
pub struct UserError {
    pub message: String,
    pub hint: Option<String>,
    pub kind: ExitKind,
}

impl UserError {
    /// Bad input: exit status 2.
    pub fn usage(message: impl Into<String>) -> Self {
        UserError {
            message: message.into(),
            hint: None,
            kind: ExitKind::Usage,
        }
    }
    /// Failure while running: exit status 1.
    pub fn runtime(message: impl Into<String>) -> Self {
        UserError {
            message: message.into(),
            hint: None,
            kind: ExitKind::Runtime,
        }
    }
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for UserError {}

impl Explain for UserError {
    fn hint(&self) -> Option<String> {
        self.hint.clone()
    }
    fn exit_kind(&self) -> ExitKind {
        self.kind
    }
}

/// Hint and exit kind of one error in a chain, for the types that know them.
pub fn explain(e: &(dyn std::error::Error + 'static)) -> Option<(Option<String>, ExitKind)> {
    fn of<T: Explain>(t: &T) -> Option<(Option<String>, ExitKind)> {
        Some((t.hint(), t.exit_kind()))
    }
    macro_rules! try_types {
        ($($t:ty),* $(,)?) => {
            $(if let Some(x) = e.downcast_ref::<$t>() {
                return of(x);
            })*
        };
    }
    try_types!(
        UserError,
        PullError,
        SourceError,
        NixError,
        LayerError,
        ConfigError,
        ExportError,
        DestinationError,
        CredentialError,
        PushError,
        RegistryError,
        RegistriesConfError,
        RunnerError,
        StoreError,
        LoadConfigError,
        LoadError,
        CompareConfigError,
        BuildError,
        PublishError,
        CopyError,
        TrialError,
        ExperimentError,
    );
    None
}

impl Explain for SourceError {
    fn hint(&self) -> Option<String> {
        match self {
            SourceError::Registry(e) => e.hint(),
            SourceError::NoTag { path, .. } | SourceError::Ambiguous { path, .. } => Some(format!(
                "name the image as oci:{}:TAG (or oci-archive:FILE:TAG)",
                path.display()
            )),
            SourceError::Io { .. } => Some("check the path and its permissions".into()),
            SourceError::NotDockerArchive { .. } => Some(
                "a docker-archive is what `docker save` and `podman save` write (manifest.json, the config, layer tars); `skopeo copy` can make one"
                    .into(),
            ),
            SourceError::NotTar { .. } => Some(
                "oci-archive: and docker-archive: name tar files, as `skopeo copy` and `podman save` write them; for a directory use oci:DIR"
                    .into(),
            ),
            SourceError::NotLayout { .. } => Some(
                "an OCI layout has oci-layout, index.json and blobs/; `skopeo copy` can make one"
                    .into(),
            ),
            SourceError::LinkOutside { .. } => Some(
                "an archive may link between its own files only; this one would read a file of this machine into the image: do not trust where it came from"
                    .into(),
            ),
            _ => None,
        }
    }
    fn exit_kind(&self) -> ExitKind {
        match self {
            SourceError::Registry(e) => e.exit_kind(),
            SourceError::MissingBlob { .. } => ExitKind::Runtime,
            _ => ExitKind::Usage,
        }
    }
}

impl Explain for ExportError {
    fn hint(&self) -> Option<String> {
        match self {
            ExportError::ParentMissing { parent, .. } => Some(format!(
                "create {} first, or write elsewhere",
                parent.display()
            )),
            ExportError::NotALayout(_) | ExportError::NotADirectory(_) => {
                Some("choose a new or empty directory, or an existing OCI layout".into())
            }
            ExportError::IsADirectory(_) => Some("give a file name for the archive".into()),
            ExportError::BlobMissing { .. } | ExportError::BlobCorrupt { .. } => {
                Some(CACHE_REPAIR_HINT.into())
            }
            ExportError::Store(e) => e.hint(),
            ExportError::NotOci(_) => Some(
                "copy the index to a registry, which keeps it as it is, or leave --all out to copy one platform's image".into(),
            ),
            ExportError::UnsupportedLayer { .. } => {
                Some("export to oci: or oci-archive:, which keep layers as they are".into())
            }
            _ => None,
        }
    }
    fn exit_kind(&self) -> ExitKind {
        match self {
            ExportError::ParentMissing { .. }
            | ExportError::NotALayout(_)
            | ExportError::NotADirectory(_)
            | ExportError::IsADirectory(_)
            | ExportError::NotOci(_) => ExitKind::Usage,
            _ => ExitKind::Runtime,
        }
    }
}

impl Explain for PushError {
    fn hint(&self) -> Option<String> {
        match self {
            PushError::Registry(e) => e.hint(),
            PushError::Source(e) => e.hint(),
            PushError::Fetch(e) => e.hint(),
            PushError::Upload { source, .. } => source.hint(),
            PushError::Store(e) => e
                .hint()
                .or_else(|| Some("pull or build the image again to restore its blobs".into())),
        }
    }
    fn exit_kind(&self) -> ExitKind {
        match self {
            PushError::Source(e) => e.exit_kind(),
            PushError::Fetch(e) => e.exit_kind(),
            PushError::Registry(e) => e.exit_kind(),
            _ => ExitKind::Runtime,
        }
    }
}

impl Explain for CopyError {
    fn hint(&self) -> Option<String> {
        match self {
            CopyError::Pull(e) => e.hint(),
            CopyError::Push(e) => e.hint(),
            CopyError::Export(e) => e.hint(),
            CopyError::Store(e) => e.hint(),
            CopyError::AllToDockerArchive { .. } => Some(
                "leave --all out to copy one platform's image (--platform OS/ARCH chooses it), or copy the index to oci:, oci-archive: or a registry".into(),
            ),
        }
    }
    fn exit_kind(&self) -> ExitKind {
        match self {
            CopyError::Pull(e) => e.exit_kind(),
            CopyError::Push(e) => e.exit_kind(),
            CopyError::Export(e) => e.exit_kind(),
            CopyError::Store(e) => e.exit_kind(),
            CopyError::AllToDockerArchive { .. } => ExitKind::Usage,
        }
    }
}

impl Explain for PullError {
    fn hint(&self) -> Option<String> {
        match self {
            PullError::Source(e) => e.hint(),
            PullError::Store(e) => e.hint(),
            PullError::Corrupt { .. } | PullError::DiffIdMismatch { .. } | PullError::BadLayerData { .. } => Some(
                "the source served corrupt or altered content; nothing was stored. Retry, and report it if it persists".into(),
            ),
            PullError::Manifest(ManifestError::NoPlatform { .. }) => {
                Some("choose one of the available platforms with --platform OS/ARCH[/VARIANT]".into())
            }
            PullError::Manifest(ManifestError::Unsupported(_)) => Some(
                "ocibench reads OCI and Docker schema 2 manifests; convert with `skopeo copy --format oci`".into(),
            ),
            PullError::Manifest(ManifestError::Digest { .. }) => Some(
                "the OCI image spec registers sha256 and sha512; re-push the content with one of them (`skopeo copy` writes sha256)".into(),
            ),
            PullError::ConfigTooLarge { .. } => Some(format!(
                "image configs are a few KiB (ocibench reads up to {} MiB, as podman and skopeo do): the manifest is damaged or hostile; `skopeo inspect --raw` shows it",
                ocibench::oci::pull::MAX_CONFIG_BYTES >> 20
            )),
            PullError::UnsupportedLayer { .. } => {
                Some("convert the layers to gzip with `skopeo copy --dest-compress-format gzip`".into())
            }
            PullError::Transfer { source, .. } => TransferTimeout::of(source).map(timeout_hint),
            PullError::PlatformMismatch { found, .. } => Some(format!(
                "this image exists for {found} only: leave --platform out to use it as it is, or choose an image built for the platform you want"
            )),
            _ => None,
        }
    }
    fn exit_kind(&self) -> ExitKind {
        match self {
            PullError::Source(e) => e.exit_kind(),
            _ => ExitKind::Runtime,
        }
    }
}

impl Explain for ConfigError {
    fn hint(&self) -> Option<String> {
        match self {
            ConfigError::BadPort { .. } => {
                Some("write a port as NUMBER or NUMBER/PROTO, e.g. 8080 or 53/udp".into())
            }
            ConfigError::BadEnv(_) => Some("write --env KEY=VALUE, e.g. --env PORT=8080".into()),
            ConfigError::BadExecForm { .. } => {
                Some(r#"use the exec form, e.g. '["python3","/app/server.py"]'"#.into())
            }
            ConfigError::RootfsType(_) | ConfigError::Parse(_) | ConfigError::NotAnObject => {
                Some("the base image is unusual or damaged; try another base or `scratch`".into())
            }
            ConfigError::BadVolume(_) => Some("write --volume /PATH, e.g. --volume /data".into()),
            ConfigError::BadStopSignal(_) => {
                Some("write --stop-signal SIGTERM (a name, with or without SIG) or a number 1-64".into())
            }
            ConfigError::BadHealthcheck { .. } => Some(
                r#"write Docker's HealthConfig, e.g. --healthcheck '{"Test":["CMD-SHELL","curl -f http://localhost/"],"Interval":30000000000}' (durations in nanoseconds)"#
                    .into(),
            ),
            _ => None,
        }
    }
    fn exit_kind(&self) -> ExitKind {
        match self {
            ConfigError::BadPort { .. }
            | ConfigError::BadEnv(_)
            | ConfigError::BadLabel(_)
            | ConfigError::BadEpoch(_)
            | ConfigError::BadVolume(_)
            | ConfigError::BadStopSignal(_)
            | ConfigError::BadHealthcheck { .. }
            | ConfigError::BadExecForm { .. } => ExitKind::Usage,
            _ => ExitKind::Runtime,
        }
    }
}

impl Explain for RegistryError {
    fn hint(&self) -> Option<String> {
        match self {
            RegistryError::Unreachable { host, source, .. } if unanswered(source) => Some(format!(
                "{host} accepted the connection but did not answer in time: the registry is overloaded or stuck; try again later"
            )),
            RegistryError::Unreachable { host, source, .. }
                if ConnectFailure::of(source).is_some() =>
            {
                ConnectFailure::of(source).map(|cause| connect::connect_hint(host, &cause))
            }
            RegistryError::Certificates { source, .. } => Some(connect::cert_file_hint(source)),
            RegistryError::BadProxy { .. } => Some(
                "proxy variables hold a URL such as http://[USER:PASS@]HOST:PORT".into(),
            ),
            RegistryError::Unreachable { host, source: ureq::Error::Timeout(_), .. } => Some(format!(
                "could not connect to {host} in time: check the name, the port and the network"
            )),
            RegistryError::Unreachable { source: ureq::Error::Io(e), .. }
                if TransferTimeout::of(e).is_some() =>
            {
                TransferTimeout::of(e).map(timeout_hint)
            }
            RegistryError::Unreachable { host, url, .. } => Some(if url.starts_with("https://") {
                format!("check that {host} is the right registry and is reachable; for a registry without TLS use --tls-verify=false")
            } else {
                format!("is a registry listening on {host}? (start one with: docker-registry serve CONFIG.yml)")
            }),
            RegistryError::NotFound { what: "manifest digest", .. } => Some(
                "check the digest: `skopeo inspect docker://REGISTRY/REPO:TAG` prints the one a tag points to (a platform's manifest and its index have different digests)".into(),
            ),
            RegistryError::NotFound { what: "manifest", .. } => {
                Some("check the tag: `skopeo list-tags docker://REPO` lists what exists".into())
            }
            RegistryError::NotFound { what: "repository", .. } => Some(
                "check the repository name; Docker Hub's official images live under library/ (python:3 is docker.io/library/python:3)".into(),
            ),
            RegistryError::Unauthorized { credentials, .. }
            | RegistryError::TokenRefused { credentials, .. }
                if credentials.starts_with("none") =>
            {
                Some("log in with `podman login` or `docker login`, or pass --creds USER:PASS (--src-creds for the image push or build reads); the repository may also be private or not exist".into())
            }
            RegistryError::Unauthorized { credentials, .. }
            | RegistryError::TokenRefused { credentials, .. } => Some(format!(
                "check the credentials from {credentials}: the password may be wrong, or the account may not have access to this repository"
            )),
            // The credential source's own error carries the hint.
            RegistryError::Credentials { .. } => None,
            RegistryError::Body { source, .. } => TransferTimeout::of(source).map(timeout_hint),
            RegistryError::TimedOut { .. } => Some(timeout_hint(&TransferTimeout::Deadline {
                after: Default::default(),
            })),
            RegistryError::InsecureRealm { host, .. } => Some(format!(
                "nothing was sent: credentials and tokens for {host} travel over HTTPS only. Ask its operator to serve the token realm over HTTPS"
            )),
            RegistryError::DigestMismatch { .. } => Some(
                "the registry served corrupt or altered content; nothing was stored. Retry, and report it to the registry's operator if it persists".into(),
            ),
            RegistryError::Blocked { file, .. } => Some(format!(
                "the machine's registries.conf forbids this registry; use another image, or remove `blocked = true` from {} (CONTAINERS_REGISTRIES_CONF names another file)",
                file.display()
            )),
            RegistryError::BadRewrite(b) => Some(format!(
                "fix that [[registry]]'s location in {}: the name after the prefix is appended to it as is",
                b.file.display()
            )),
            _ => None,
        }
    }
    fn exit_kind(&self) -> ExitKind {
        match self {
            RegistryError::Blocked { .. }
            | RegistryError::BadRewrite(_)
            | RegistryError::Certificates { .. }
            | RegistryError::BadProxy { .. } => ExitKind::Usage,
            _ => ExitKind::Runtime,
        }
    }
}

impl Explain for RegistriesConfError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            RegistriesConfError::Read { .. } => "check the file's permissions, or point CONTAINERS_REGISTRIES_CONF at another registries.conf".into(),
            RegistriesConfError::Syntax { .. } => "registries.conf is TOML: see containers-registries.conf(5)".into(),
            RegistriesConfError::Version1 { .. } => "rewrite it in the version 2 format: each registry as a [[registry]] table with location = \"HOST\" and insecure = true or blocked = true; search registries as unqualified-search-registries = [...] (see containers-registries.conf(5))".into(),
            RegistriesConfError::Invalid { .. } => "see containers-registries.conf(5) for [[registry]] and [[registry.mirror]]".into(),
        })
    }
    fn exit_kind(&self) -> ExitKind {
        match self {
            RegistriesConfError::Read { .. } => ExitKind::Runtime,
            _ => ExitKind::Usage,
        }
    }
}

/// Whether a registry request timed out after the connection was made (waiting for
/// the answer or reading it), rather than while connecting.
fn unanswered(e: &ureq::Error) -> bool {
    use ureq::Timeout as T;
    matches!(e, ureq::Error::Timeout(t) if !matches!(t, T::Resolve | T::Connect))
}

/// What to do about a transfer cut short by a time limit.
fn timeout_hint(t: &TransferTimeout) -> String {
    match t {
        TransferTimeout::TooSlow { .. } => "the registry, or the network to it, is stalling: each attempt was abandoned and retried. Check the connection and try again later".into(),
        TransferTimeout::Deadline { .. } => "--timeout bounds the whole command: raise it, or leave it out for no overall limit".into(),
    }
}

impl Explain for CredentialError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            CredentialError::FlagWithoutColon { .. }
            | CredentialError::FlagEmptyUser { .. }
            | CredentialError::FlagNotOneLine { .. } => {
                "pass --creds USER:PASSWORD (the password may contain `:`), or --creds-file FILE holding that line".into()
            }
            CredentialError::Read { .. } => return None,
            CredentialError::MissingAuthFile { .. } => {
                "unset REGISTRY_AUTH_FILE, or log in to create it (`podman login`)".into()
            }
            CredentialError::Json { path, .. }
            | CredentialError::Shape { path, .. }
            | CredentialError::BadAuth { path, .. } => format!(
                "fix or remove {}; `podman login` / `docker login` rewrite it",
                path.display()
            ),
            CredentialError::BadHelperName { config, .. } => format!(
                "a helper name is the NAME of docker-credential-NAME; fix {}",
                config.display()
            ),
            CredentialError::HelperNotFound {
                helper,
                config,
                field,
            } => format!(
                "install {helper}, or remove `{field}` from {}",
                config.display()
            ),
            CredentialError::HelperIo { .. }
            | CredentialError::HelperFailed { .. }
            | CredentialError::HelperOutput { .. } => {
                "check the helper works (`echo SERVER | docker-credential-NAME get`), or pass --creds USER:PASSWORD".into()
            }
        })
    }
    fn exit_kind(&self) -> ExitKind {
        match self {
            // A credential helper that is missing or fails is a failure of the run
            // (exit 1); a wrong flag or a malformed file is bad input (exit 2).
            CredentialError::HelperNotFound { .. }
            | CredentialError::HelperIo { .. }
            | CredentialError::HelperFailed { .. }
            | CredentialError::HelperOutput { .. }
            | CredentialError::Read { .. } => ExitKind::Runtime,
            _ => ExitKind::Usage,
        }
    }
}

impl Explain for NixError {
    fn hint(&self) -> Option<String> {
        match self {
            NixError::OutsideStore(_) => Some(
                "pass a store path, e.g. the ./result link of nix-build or $(nix-build ... --no-out-link)".into(),
            ),
            NixError::Missing(_) => Some("build or realise it first (nix-build, nix-store --realise)".into()),
            NixError::NoNixStore(_) => Some("install Nix (Debian: apt-get install nix-bin)".into()),
            NixError::NoLayers => Some("--max-layers must be at least 1".into()),
            _ => None,
        }
    }
    fn exit_kind(&self) -> ExitKind {
        match self {
            NixError::Query { .. } => ExitKind::Runtime,
            _ => ExitKind::Usage,
        }
    }
}

impl Explain for RunnerError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            RunnerError::PodmanMissing => {
                "install podman (Debian/Ubuntu: apt-get install podman), or put it on PATH".into()
            }
            RunnerError::RuntimeMissing { runtime } if runtime == "runc" => {
                "install runc (Debian/Ubuntu: apt-get install runc)".into()
            }
            RunnerError::RuntimeMissing { runtime } => format!(
                "install {runtime}, or choose another runtime with --runtime (runc works almost everywhere)"
            ),
            RunnerError::CgroupsHybrid { .. } => {
                "install runc (Debian/Ubuntu: apt-get install runc); ocibench then uses it instead of crun".into()
            }
            RunnerError::NoTun { .. } => "use host networking (--network host, or [load] network = \"host\" in compare's file; the service gets its port in $PORT, see --port-env), or let this user open /dev/net/tun (slirp4netns needs it for -p)".into(),
            RunnerError::LimitsUnavailable { .. } => "drop the limit (--podman-arg, [app]/candidate cpus and memory), or run where podman gives containers their own cgroup: root, or rootless on cgroup v2 with the systemd cgroup manager and delegated controllers".into(),
            RunnerError::Ulimit { .. } => format!(
                "pass limits within `ulimit -Hn` ({}) and `ulimit -Hu`, e.g. --podman-arg=--ulimit=nofile=1024:1024",
                ocibench::runner::limits::hard_limits().nofile.map_or("?".into(), |n| n.to_string())
            ),
            RunnerError::Podman { stderr, .. } if stderr.contains("newuidmap") || stderr.contains("subuid") => {
                "rootless podman needs `uidmap` (newuidmap/newgidmap) and a range for this user in /etc/subuid and /etc/subgid (usermod --add-subuids/--add-subgids)".into()
            }
            RunnerError::Spawn { .. } | RunnerError::Podman { .. } | RunnerError::Output { .. } => {
                "check that `podman info` works for this user".into()
            }
            RunnerError::NoFreePort(_) | RunnerError::PortsBusy { .. } => {
                "free some ports on 127.0.0.1, then try again".into()
            }
            RunnerError::Exited(_) => {
                "the service crashed or exited: check its command, environment (--env) and the logs above".into()
            }
            RunnerError::NotReady(f) if f.last_probe.starts_with("answered") => {
                "the service answers, but not with a 2xx status: point --health at a path that does".into()
            }
            RunnerError::NotReady(_) => {
                "check --port (the port the service listens on inside the container) and --health; or raise --startup-timeout. Under host networking (rootless) the service must listen on the port given in $PORT (--port-env), or use --port-env \"\" to keep --port".into()
            }
            RunnerError::Interrupted => return None,
        })
    }
    fn exit_kind(&self) -> ExitKind {
        ExitKind::Runtime
    }
}

impl Explain for DestinationError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            DestinationError::BadReference { .. } => {
                "write docker-archive:FILE:NAME:TAG, e.g. docker-archive:app.tar:localhost/app:latest".into()
            }
            _ => "write oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE[:NAME:TAG]"
                .into(),
        })
    }
    fn exit_kind(&self) -> ExitKind {
        ExitKind::Usage
    }
}

impl Explain for LayerError {
    fn hint(&self) -> Option<String> {
        use LayerError as E;
        match self {
            E::Source { .. } | E::Read { .. } => {
                Some("check that the --layer source exists and is readable".into())
            }
            E::Unsupported { .. } => Some(
                "remove sockets, FIFOs and device files from the source tree (they cannot be shipped in an image)".into(),
            ),
            E::BadEpoch { .. } => Some("unset SOURCE_DATE_EPOCH or set it to seconds since 1970, e.g. 0".into()),
            E::Changed { .. } => Some("something modified the source while ocibench read it; build again".into()),
            _ => None,
        }
    }
    fn exit_kind(&self) -> ExitKind {
        use LayerError as E;
        match self {
            E::Write { .. } | E::Store(_) | E::Changed { .. } => ExitKind::Runtime,
            _ => ExitKind::Usage,
        }
    }
}

impl Explain for StoreError {
    fn hint(&self) -> Option<String> {
        match self {
            StoreError::Open { .. } => {
                Some("set --cache-dir or OCIBENCH_CACHE to a writable directory".into())
            }
            StoreError::BadIndex { .. } => Some(
                "run `ocibench cache verify --repair`: it resets the cache's index (cached blobs are kept, so pulling again transfers nothing)".into(),
            ),
            StoreError::Corrupt { .. } | StoreError::Missing(_) => {
                Some(CACHE_REPAIR_HINT.into())
            }
            StoreError::Io { source, .. }
                if matches!(
                    source.kind(),
                    std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
                ) =>
            {
                Some("the cache cannot be written: set --cache-dir or OCIBENCH_CACHE to a writable directory (a read-only cache serves only what it already holds)".into())
            }
            StoreError::Busy(_) => Some(
                "another ocibench (pull, build, compare, ...) is using the cache: run this again when it ends".into(),
            ),
            _ => None,
        }
    }
}

/// What to do about a damaged or incomplete cache.
const CACHE_REPAIR_HINT: &str =
    "run `ocibench cache verify --repair`, then pull or build the image again";

impl Explain for LoadConfigError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            LoadConfigError::BadUrl { .. } => "give a URL like http://127.0.0.1:8080/path".into(),
            LoadConfigError::CaCert { .. } => "--cacert takes a PEM file of CA certificates (-----BEGIN CERTIFICATE-----), e.g. /etc/ssl/certs/ca-certificates.crt".into(),
            LoadConfigError::CaCertAndInsecure => "give --cacert FILE to trust a CA, or --insecure to accept any certificate, not both".into(),
            LoadConfigError::TlsOptionWithoutHttps { .. } => "use an https:// URL, or drop the TLS option".into(),
            LoadConfigError::StreamsWithoutHttp2 => "add --http2 (h2load's -m), or raise -c for more HTTP/1.1 requests in flight".into(),
            LoadConfigError::ZeroStreams => "use --streams 1 or more (requests in flight per HTTP/2 connection)".into(),
            LoadConfigError::NoKeepaliveWithHttp2 => "an HTTP/2 connection carries many requests; for one connection per request use HTTP/1.1 (drop --http2); connect_ms reports connection set-up either way".into(),
            LoadConfigError::ZeroConcurrency => "-c is the number of connections open at once: use -c 1 or more".into(),
            LoadConfigError::ZeroRequests => "use -n 1 or more, or -z DURATION for a timed run".into(),
            LoadConfigError::RequestsAndDuration => "give either -n N (stop after N requests) or -z DURATION (stop after a time), not both".into(),
            LoadConfigError::ZeroDuration
            | LoadConfigError::ZeroTimeout
            | LoadConfigError::BadDuration { .. } => {
                "durations look like 500ms, 3s, 2m".into()
            }
            LoadConfigError::BadHeader { .. } => "headers look like -H 'Accept: application/json'".into(),
            LoadConfigError::BadMethod { .. } => "methods look like GET, POST, PUT, DELETE".into(),
            LoadConfigError::ZeroThreads => "use --threads 1 or more (default: one per core)".into(),
            LoadConfigError::BadRate { .. } => "--rate is requests per second, such as -R 500 or -R 0.5".into(),
            LoadConfigError::BadSlo { .. } => "an SLO looks like --slo p99=50ms, or --slo p99.9=200ms,errors=0.1%".into(),
            LoadConfigError::BadPrecision { .. } => "--precision looks like 5% (the default) or 1%".into(),
            LoadConfigError::TooFewSteps => "use --max-steps 2 or more (default 20)".into(),
        })
    }
    fn exit_kind(&self) -> ExitKind {
        ExitKind::Usage
    }
}

impl Explain for LoadError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            LoadError::Resolve { .. } => {
                "check the host name, or use an address such as 127.0.0.1".into()
            }
            LoadError::FileLimit { hard, .. } => format!(
                "lower -c below {}, or raise the hard limit (ulimit -Hn) as root",
                hard.saturating_sub(ocibench::loadgen::run::SPARE_FDS)
            ),
            LoadError::RaiseLimit { .. } => {
                "lower -c, or raise the limit with `ulimit -n` before running".into()
            }
            LoadError::Worker(_) => {
                "the system may be out of threads or memory; try fewer --threads".into()
            }
            LoadError::SearchNeedsDuration => {
                "give each step a length with -z (default 3s), not -n".into()
            }
            LoadError::Tls(TlsSetupError::NoRoots { what }) if what.contains("system") => {
                "install the CA bundle (Debian: apt-get install ca-certificates), or pass the server's CA with --cacert FILE".into()
            }
            LoadError::Tls(TlsSetupError::NoRoots { .. }) => {
                "--cacert needs at least one valid X.509 CA certificate in PEM".into()
            }
            LoadError::Tls(_) => "check the URL's host name".into(),
            LoadError::NoHttp2 { .. } => {
                "drop --http2 to load it over HTTP/1.1, or enable HTTP/2 on the server (nginx: `listen 443 ssl http2;`)".into()
            }
        })
    }
    fn exit_kind(&self) -> ExitKind {
        match self {
            // -c asks for more connections than this process may ever open.
            LoadError::FileLimit { .. } | LoadError::SearchNeedsDuration => ExitKind::Usage,
            _ => ExitKind::Runtime,
        }
    }
}

impl Explain for CompareConfigError {
    fn hint(&self) -> Option<String> {
        match self {
            CompareConfigError::Read { .. } => Some(
                "pass the comparison file with -f FILE (see ocibench.toml in the README)".into(),
            ),
            CompareConfigError::Syntax { file, line, .. } => Some(match line {
                Some(line) => format!("at line {line} of {file}"),
                None => "see the ocibench.toml example in the README".into(),
            }),
            CompareConfigError::Invalid { .. } => None,
            CompareConfigError::NoCandidates { .. } => Some(
                "add candidates:\n[[candidate]]\nname = \"slim\"\nbase = \"python:3.12-slim\""
                    .into(),
            ),
        }
    }
    fn exit_kind(&self) -> ExitKind {
        ExitKind::Usage
    }
}

/// `BuildError` and `PublishError` wrap transparently (their Display is the
/// inner error's), so the chain walk never meets the inner error: delegate.
impl Explain for BuildError {
    fn hint(&self) -> Option<String> {
        match self {
            BuildError::Pull(e) => e.hint(),
            BuildError::Store(e) => e.hint(),
            BuildError::Layer(e) => e.hint(),
            BuildError::Nix(e) => e.hint(),
            BuildError::Config(e) => e.hint(),
            BuildError::NixGraph { .. } => {
                Some("--nix-graph takes exportReferencesGraph files that exist".into())
            }
            BuildError::MissingPlatform { wanted, .. } => Some(format!(
                "leave {wanted} out of --platform, or build on a base whose index has it (`ocibench inspect BASE` lists them)"
            )),
            BuildError::BaseNotAnIndex { .. } => Some(
                "a multi-platform build needs a base that is an index (several platforms); give one --platform to build on this base"
                    .into(),
            ),
            BuildError::AnnotationsOnDocker { .. } => Some(
                "build from an OCI base for annotations (`skopeo copy --format oci` converts one), or use --label".into(),
            ),
        }
    }
    fn exit_kind(&self) -> ExitKind {
        match self {
            BuildError::Pull(e) => e.exit_kind(),
            BuildError::Store(e) => e.exit_kind(),
            BuildError::Layer(e) => e.exit_kind(),
            BuildError::Nix(e) => e.exit_kind(),
            BuildError::Config(e) => e.exit_kind(),
            BuildError::NixGraph { .. }
            | BuildError::MissingPlatform { .. }
            | BuildError::BaseNotAnIndex { .. }
            | BuildError::AnnotationsOnDocker { .. } => ExitKind::Usage,
        }
    }
}

impl Explain for PublishError {
    fn hint(&self) -> Option<String> {
        match self {
            PublishError::Export(e) => e.hint(),
            PublishError::Push(e) => e.hint(),
        }
    }
    fn exit_kind(&self) -> ExitKind {
        match self {
            PublishError::Export(e) => e.exit_kind(),
            PublishError::Push(e) => e.exit_kind(),
        }
    }
}

/// `TrialError` wraps podman's and the export's errors transparently (their
/// Display is the inner error's), so the chain walk never meets them: delegate.
impl Explain for TrialError {
    fn hint(&self) -> Option<String> {
        match self {
            TrialError::Runner(e) => e.hint(),
            TrialError::Export(e) => e.hint(),
            TrialError::LoadConfig(e) => e.hint(),
            TrialError::Load(e) => e.hint(),
            TrialError::Scratch(_) | TrialError::ImageName(_) | TrialError::Serve(_) => None,
        }
    }
    fn exit_kind(&self) -> ExitKind {
        match self {
            TrialError::Runner(e) => e.exit_kind(),
            TrialError::Export(e) => e.exit_kind(),
            TrialError::LoadConfig(_) => ExitKind::Usage,
            TrialError::Load(e) => e.exit_kind(),
            _ => ExitKind::Runtime,
        }
    }
}

/// The experiment's errors name the candidate; the cause in the chain explains.
impl Explain for ExperimentError {
    fn hint(&self) -> Option<String> {
        match self {
            ExperimentError::Base { .. } => Some(
                "a base is an image reference (REGISTRY/REPO:TAG) or oci:/oci-archive:/docker-archive:"
                    .into(),
            ),
            ExperimentError::NothingToPush { .. } => Some(
                "the report above says why no candidate could be recommended (failed runs, \
                 no runs); push the one you choose with `ocibench push`, or fix the runs and \
                 compare again"
                    .into(),
            ),
            _ => None,
        }
    }
    fn exit_kind(&self) -> ExitKind {
        match self {
            ExperimentError::Base { .. } => ExitKind::Usage,
            _ => ExitKind::Runtime,
        }
    }
}

mod connect;
#[cfg(test)]
mod tests;
