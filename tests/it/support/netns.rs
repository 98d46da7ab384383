//! A network namespace of the test's own, for registries at an address that is not
//! loopback (`10.77.0.1`) without touching the machine's network or `/etc/hosts`.
//!
//! Measured on the test machines (Debian 12, root): `ip netns add` works, `ip link add
//! ... type dummy` does not (no module), but an address added to `lo` inside a fresh
//! namespace works, and ocibench does not treat it as loopback (it is not in
//! 127.0.0.0/8). Traffic to it never leaves the namespace. Processes run inside with
//! `ip netns exec`; the test's own threads enter it with `setns(2)` (network
//! namespaces may be entered by one thread of a multi-threaded process), which is how
//! in-test servers such as the CONNECT proxy listen there.
//!
//! Each namespace has a unique name and is deleted on drop, also when the test panics.

use std::ffi::OsStr;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::tools;

/// The non-loopback address every namespace puts on its `lo`.
pub const NS_ADDR: &str = "10.77.0.1";

/// A named network namespace with `lo` up and [`NS_ADDR`] on it.
#[derive(Debug)]
pub struct NetNs {
    name: String,
}

impl NetNs {
    /// Creates the namespace (panics, naming the cause, if it cannot).
    pub fn new() -> NetNs {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "ocibench-t{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let ip = || tools::command("ip", "iproute2");
        tools::run(ip().args(["netns", "add", &name]));
        // From here on, Drop deletes it, whatever fails next.
        let ns = NetNs { name };
        tools::run(ip().args(["-n", &ns.name, "link", "set", "lo", "up"]));
        tools::run(ip().args([
            "-n",
            &ns.name,
            "addr",
            "add",
            &format!("{NS_ADDR}/32"),
            "dev",
            "lo",
        ]));
        ns
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip netns exec NAME program`: add arguments, environment, as to any command.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = tools::command("ip", "iproute2");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }

    /// `cmd` (program, arguments, environment, working directory) run inside the
    /// namespace instead (`ip netns exec` keeps the environment it is given).
    pub fn wrap(&self, cmd: &Command) -> Command {
        let mut inner = self.command(cmd.get_program());
        inner.args(cmd.get_args());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => inner.env(k, v),
                None => inner.env_remove(k),
            };
        }
        if let Some(dir) = cmd.get_current_dir() {
            inner.current_dir(dir);
        }
        inner
    }

    /// Runs `f` on a new thread that has entered the namespace, and waits for it.
    /// Sockets made there live inside, wherever they are used later.
    pub fn run_inside<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        self.spawn_inside(f)
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    }

    /// Starts `f` on a new thread that has entered the namespace (a server whose
    /// outgoing connections must start inside too).
    pub fn spawn_inside<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> std::thread::JoinHandle<T> {
        let file = std::fs::File::open(format!("/var/run/netns/{}", self.name))
            .unwrap_or_else(|e| panic!("open netns {}: {e}", self.name));
        std::thread::spawn(move || {
            // SAFETY: setns on an open namespace fd; it changes this thread only.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            drop(file);
            f()
        })
    }

    /// A port free on [`NS_ADDR`] inside the namespace (bound then released: the
    /// namespace is this test's alone, so nothing else can take it meanwhile).
    pub fn free_port(&self) -> u16 {
        self.run_inside(|| {
            std::net::TcpListener::bind((NS_ADDR, 0))
                .and_then(|l| l.local_addr())
                .expect("bind inside the netns")
                .port()
        })
    }

    /// Whether something accepts TCP connections at `addr` inside the namespace.
    pub fn accepts(&self, addr: &str) -> bool {
        let addr: std::net::SocketAddr = addr.parse().expect("socket address");
        self.run_inside(move || {
            std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(300))
                .is_ok()
        })
    }
}

impl Default for NetNs {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let out = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
        if let Ok(o) = out
            && !o.status.success()
            && !std::thread::panicking()
        {
            panic!(
                "ip netns del {}: {}",
                self.name,
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
}
