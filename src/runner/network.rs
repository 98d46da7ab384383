//! How the load reaches the container, chosen so that it measures the service.
//!
//! As root, podman publishes the container's port through netavark or CNI
//! (kernel NAT and a veth pair). Rootless, the same `-p` goes through
//! slirp4netns's user-space TCP stack (or needs `/dev/net/tun`, which CI
//! runners often lack): a benchmark through it measures slirp4netns, not the
//! image. So rootless podman gets host networking by default: the container
//! shares the host's network namespace and the service listens on a free port
//! of the host, passed to it through its port variable (`PORT`, or
//! `[app] port_env`). podman 4.3 has no pasta network mode; `Published` stays
//! available to force (`--network published`).

use super::podman::HostInfo;

/// What the user asked for (`--network`, `[load] network`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NetworkChoice {
    /// Host networking when rootless, a published port as root.
    #[default]
    Auto,
    Host,
    Published,
}

impl std::str::FromStr for NetworkChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<NetworkChoice, String> {
        match s {
            "auto" => Ok(NetworkChoice::Auto),
            "host" => Ok(NetworkChoice::Host),
            "published" => Ok(NetworkChoice::Published),
            _ => Err(format!(
                "unknown network {s:?}: expected auto, host or published"
            )),
        }
    }
}

/// The path the runner uses, as decided for this podman.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkPath {
    /// `-p 127.0.0.1:HOST:CONTAINER`; `rootless` says whether slirp4netns
    /// (rather than netavark or CNI) carries it; `backend` is podman's.
    Published { rootless: bool, backend: String },
    /// `--network host`; the service listens on a free host port.
    Host,
}

impl NetworkPath {
    /// The path for `choice` on the podman `info` describes.
    pub fn choose(choice: NetworkChoice, info: &HostInfo) -> NetworkPath {
        let published = NetworkPath::Published {
            rootless: info.rootless,
            backend: info.network_backend.clone(),
        };
        match choice {
            NetworkChoice::Host => NetworkPath::Host,
            NetworkChoice::Published => published,
            NetworkChoice::Auto if info.rootless => NetworkPath::Host,
            NetworkChoice::Auto => published,
        }
    }

    /// For reports: `published port (root, netavark)`, `host network, port 41234`.
    pub fn describe(&self, host_port: Option<u16>) -> String {
        match self {
            NetworkPath::Published { rootless: true, .. } => {
                "published port (rootless, slirp4netns port forwarding)".into()
            }
            NetworkPath::Published { backend, .. } => format!(
                "published port (root, {})",
                if backend.is_empty() {
                    "netavark/CNI"
                } else {
                    backend
                }
            ),
            NetworkPath::Host => match host_port {
                Some(p) => format!("host network, port {p}"),
                None => "host network".into(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(rootless: bool) -> HostInfo {
        HostInfo {
            default_runtime: "runc".into(),
            cgroup_version: "v1".into(),
            rootless,
            cgroup_manager: "cgroupfs".into(),
            graph_driver: "vfs".into(),
            network_backend: "cni".into(),
        }
    }

    #[test]
    fn auto_is_host_rootless_and_published_as_root() {
        let root = NetworkPath::choose(NetworkChoice::Auto, &info(false));
        assert_eq!(root.describe(Some(1)), "published port (root, cni)");
        let rootless = NetworkPath::choose(NetworkChoice::Auto, &info(true));
        assert_eq!(rootless, NetworkPath::Host);
        assert_eq!(rootless.describe(Some(41234)), "host network, port 41234");
        let forced = NetworkPath::choose(NetworkChoice::Published, &info(true));
        assert_eq!(
            forced.describe(None),
            "published port (rootless, slirp4netns port forwarding)"
        );
        let host = NetworkPath::choose(NetworkChoice::Host, &info(false));
        assert_eq!(host.describe(None), "host network");
    }

    #[test]
    fn choices_parse() {
        assert_eq!("host".parse(), Ok(NetworkChoice::Host));
        assert_eq!("published".parse(), Ok(NetworkChoice::Published));
        assert_eq!("auto".parse(), Ok(NetworkChoice::Auto));
        assert!("pasta".parse::<NetworkChoice>().is_err());
    }
}
