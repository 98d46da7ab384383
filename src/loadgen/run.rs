//! A whole run: resolve the host, make room for the sockets, start one worker
//! thread per core, wait, merge their tallies into a `BenchResult`.
//!
//! `run` blocks the calling thread and is safe to call many times in one
//! process (the `compare` command does): it owns its threads and runtimes and
//! leaves nothing behind but, possibly, a raised soft file-descriptor limit.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hyper::client::conn::http1;

use super::config::{LoadConfig, Stop};
use super::connection::RequestTemplate;
use super::histogram::LatencyHistogram;
use super::result::{BenchResult, Tally};
use super::transport::{TlsClient, TlsSetupError};
use super::worker::{Budget, Gate, Shared, WorkerSchedule, run_worker};

/// File descriptors kept free beyond one per connection (stdio, epoll, ...).
pub const SPARE_FDS: u64 = 64;

/// A live view of a run, for progress bars: poll it from another thread.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    finished: Arc<AtomicU64>,
}

impl Progress {
    pub fn new() -> Progress {
        Progress::default()
    }
    /// Measured requests finished so far (responses and failures; warm-up
    /// excluded). Updated in small batches, so it may lag by a few requests.
    pub fn finished(&self) -> u64 {
        self.finished.load(Ordering::Relaxed)
    }
}

/// Why a run could not take place at all (failed requests are not errors: they
/// are counted in the result).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot resolve `{host}`")]
    Resolve {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{needed} connections need {needed} file descriptors, but the hard limit is {hard}")]
    FileLimit { needed: u64, hard: u64 },
    #[error("cannot raise the file-descriptor limit to {wanted}")]
    RaiseLimit {
        wanted: u64,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start a worker thread")]
    Worker(#[source] std::io::Error),
    #[error("a rate search runs each step for a time, not for a number of requests")]
    SearchNeedsDuration,
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
    /// `--http2` over TLS, and the server chose another protocol (ALPN).
    #[error("{url} does not speak HTTP/2: its TLS handshake chose {}", chosen.as_deref().map_or("no protocol (no ALPN)".to_string(), |p| format!("`{p}`")))]
    NoHttp2 { url: String, chosen: Option<String> },
}

/// Makes room for the sockets `config` opens: raises the soft RLIMIT_NOFILE
/// (up to the hard limit, as wrk and oha users expect of `ulimit -n`), or
/// refuses with `FileLimit` when even the hard limit is too low. `run` does it
/// too; callers with work to do before the load (`ocibench run` starts a
/// container) call it first, to fail before that work.
pub fn reserve_fds(config: &LoadConfig) -> Result<(), LoadError> {
    // At most one open connection per client, and no more clients busy than requests.
    let connections = match config.stop {
        Stop::Requests(n) => config.concurrency.min(n.max(config.warmup)),
        Stop::Duration(_) => config.concurrency,
    };
    ensure_fd_limit(connections + SPARE_FDS)
}

/// Runs the load described by `config`; `progress` counts finished requests.
pub fn run(config: &LoadConfig, progress: &Progress) -> Result<BenchResult, LoadError> {
    run_measured(config, progress).map(|(result, _)| result)
}

/// `run`, also handing back the latency histogram behind the result (for
/// percentiles the result's table does not hold).
pub fn run_measured(
    config: &LoadConfig,
    progress: &Progress,
) -> Result<(BenchResult, LatencyHistogram), LoadError> {
    let addr = resolve(&config.host, config.port)?;
    reserve_fds(config)?;
    // Once per run, never per connection: roots, ALPN, provider.
    let tls = if config.https {
        Some(TlsClient::new(config)?)
    } else {
        None
    };

    let threads = (config.threads as u64).min(config.concurrency).max(1);
    let (gate, gate_rx) = tokio::sync::watch::channel(Gate::Wait);
    let shared = Arc::new(Shared {
        addr,
        http1: http1_builder(),
        http2: config.http2.then(super::http2::builder),
        streams: config.streams,
        tls,
        refused_http2: OnceLock::new(),
        request: request_template(config),
        keepalive: config.keepalive,
        timeout: config.timeout,
        // Open loop: each worker's schedule counts its own share instead.
        budget: match (config.stop, config.rate) {
            (Stop::Requests(n), None) => Some(Budget::new(n)),
            _ => None,
        },
        duration: match config.stop {
            Stop::Requests(_) => None,
            Stop::Duration(d) => Some(d),
        },
        rate: config.rate,
        warmup: Budget::new(config.warmup),
        barrier: tokio::sync::Barrier::new(
            usize::try_from(config.concurrency * config.streams).unwrap_or(usize::MAX),
        ),
        start: OnceLock::new(),
        progress: progress.finished.clone(),
        gate: gate_rx,
    });

    // Runtimes first: a failure here leaves nothing running.
    let runtimes = (0..threads)
        .map(|_| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(LoadError::Worker)?;

    let reports = std::thread::scope(|s| {
        let mut handles = Vec::with_capacity(runtimes.len());
        let mut spawn_error = None;
        for (i, rt) in runtimes.into_iter().enumerate() {
            let i = i as u64;
            // Spread the connections evenly: the first `c % t` workers take one more.
            let connections =
                config.concurrency / threads + u64::from(i < config.concurrency % threads);
            let schedule = config
                .rate
                .map(|rate| worker_schedule(rate, config, threads, i, connections));
            let shared = shared.clone();
            let cpus = config.cpus.as_deref();
            let closed_loop = config.rate.is_none();
            let (pinned_tx, pinned_rx) = std::sync::mpsc::channel();
            let spawned = std::thread::Builder::new()
                .name(format!("loadgen-{i}"))
                .spawn_scoped(s, move || {
                    // Pinned before the first connection; the result goes back
                    // so that a failed pin stops the run before the gate opens.
                    // A worker that could not be pinned still meets the gate,
                    // which then tells every client to leave.
                    let _ = pinned_tx.send(cpus.map_or(Ok(()), pin_current_thread));
                    if closed_loop {
                        // Without it the run still measures, only less of
                        // the server (a seccomp filter may refuse the call).
                        let _ = yield_on_wake_up();
                    }
                    run_worker(shared, connections, schedule, rt)
                });
            let spawned = spawned.and_then(|h| {
                pinned_rx
                    .recv()
                    .unwrap_or_else(|_| Err(std::io::Error::other("worker thread ended")))
                    .map(|()| h)
            });
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => {
                    spawn_error = Some(e);
                    break;
                }
            }
        }
        // Clients wait at the gate until every worker is there; else they all leave.
        let _ = gate.send(if spawn_error.is_none() {
            Gate::Go
        } else {
            Gate::Abort
        });
        let reports: Vec<_> = handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect();
        match spawn_error {
            Some(e) => Err(LoadError::Worker(e)),
            None => Ok(reports),
        }
    })?;

    if let Some(chosen) = shared.refused_http2.get() {
        return Err(LoadError::NoHttp2 {
            url: config.url.clone(),
            chosen: chosen.clone(),
        });
    }
    let start = *shared
        .start
        .get()
        .expect("every client passes the start barrier");
    let mut tally = Tally::new();
    let mut end = start;
    for r in &reports {
        tally.merge(&r.tally);
        end = end.max(r.end);
    }
    let elapsed = match config.stop {
        // A timed run lasts its duration; the last clients stop just after it.
        Stop::Duration(d) => (end - start).min(d),
        Stop::Requests(_) => end - start,
    };
    // ab's mean time per request divides by the requests in flight: C x N.
    let (mut result, latency) = tally.into_parts(
        &config.url,
        config.concurrency * config.streams,
        config.keepalive,
        elapsed.max(Duration::from_nanos(1)),
    );
    result.concurrency = config.concurrency;
    result.streams = config.streams;
    result.http_version = if config.http2 { "HTTP/2" } else { "HTTP/1.1" }.to_string();
    result.tls_error = shared
        .tls
        .as_ref()
        .and_then(TlsClient::first_error)
        .map(str::to_string);
    Ok((result, latency))
}

/// The request every client sends. HTTP/2 names the host in `:authority`,
/// taken from the `Host` header (the URL's, or `-H 'Host: ...'`), with the
/// scheme in `:scheme`: its request target is the absolute URI.
fn request_template(config: &LoadConfig) -> RequestTemplate {
    let mut headers = config.headers.clone();
    let mut path = config.path.clone();
    if config.http2 {
        if let Some(host) = headers.remove(http::header::HOST) {
            let scheme = if config.https { "https" } else { "http" };
            let absolute = format!("{scheme}://{}{}", host.to_str().unwrap_or(""), config.path);
            // A Host header that is no authority keeps the origin form (h2
            // then refuses the request, counted as a failure).
            path = absolute.parse().unwrap_or(path);
        }
    }
    RequestTemplate {
        method: config.method.clone(),
        path,
        headers,
        body: config.body.clone(),
    }
}

/// Worker `i`'s share of an open-loop run at `rate`: a rate in proportion to
/// its `connections`, its slots offset by `i / rate` so the workers' slots
/// interleave, and for a `-n` run as many of the requests (the remainder to
/// the first workers), so the shares add up to exactly `n`.
fn worker_schedule(
    rate: f64,
    config: &LoadConfig,
    threads: u64,
    i: u64,
    connections: u64,
) -> WorkerSchedule {
    let c = config.concurrency;
    let limit = config.request_count().map(|n| {
        let shares: Vec<u64> = (0..threads)
            .map(|w| {
                let cw = c / threads + u64::from(w < c % threads);
                (u128::from(n) * u128::from(cw) / u128::from(c)) as u64
            })
            .collect();
        let left = n - shares.iter().sum::<u64>();
        shares[i as usize] + u64::from(i < left)
    });
    WorkerSchedule {
        interval: c as f64 / (rate * connections as f64),
        offset: i as f64 / rate,
        limit,
    }
}

/// Makes the calling thread give way, when it wakes up, to the thread running
/// on its CPU (Linux `SCHED_BATCH`: the same CPU share and nice value, no
/// wake-up preemption). For closed-loop workers: a response that wakes a
/// worker on the CPU where a server on this machine is busy no longer
/// interrupts that server, which keeps serving until it has nothing to do or
/// its time slice ends. Against `benches/loadgen`'s nginx (one worker, in the
/// generator's session, 2 cores, c=100): 149-164k req/s in three 5-round runs
/// instead of 125-135k, with per 1M requests 4.7k context switches instead of
/// 136k; with two nginx workers or a server in another session, the same or
/// better. Open-loop runs keep the default policy: there a late wake-up is a
/// late request.
fn yield_on_wake_up() -> std::io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: sched_setscheduler(0, ...) sets the calling thread's policy and
    // only reads `param`, which we own.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Restricts the calling thread to `cpus` (Linux `sched_setaffinity`).
pub fn pin_current_thread(cpus: &[usize]) -> std::io::Result<()> {
    // SAFETY: cpu_set_t is plain data; CPU_ZERO/CPU_SET write into the set we
    // own, and sched_setaffinity(0, ...) only reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        for &cpu in cpus {
            if cpu >= libc::CPU_SETSIZE as usize {
                return Err(std::io::Error::other(format!("no CPU {cpu}")));
            }
            libc::CPU_SET(cpu, &mut set);
        }
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The CPUs the calling thread may run on (`sched_getaffinity`), ascending.
pub fn current_thread_cpus() -> std::io::Result<Vec<usize>> {
    // SAFETY: sched_getaffinity writes into the set we own; CPU_ISSET reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok((0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect())
    }
}

fn http1_builder() -> http1::Builder {
    let mut b = http1::Builder::new();
    // Requests are small: one flattened write beats a vectored one.
    b.writev(false);
    b
}

fn resolve(host: &str, port: u16) -> Result<SocketAddr, LoadError> {
    let err = |source| LoadError::Resolve {
        host: host.to_string(),
        source,
    };
    (host, port)
        .to_socket_addrs()
        .map_err(err)?
        .next()
        .ok_or_else(|| err(std::io::Error::other("no address")))
}

/// Raises the soft RLIMIT_NOFILE to `needed` (at most the hard limit).
#[allow(clippy::unnecessary_cast)] // rlim_t is not u64 everywhere
fn ensure_fd_limit(needed: u64) -> Result<(), LoadError> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Ok(()); // Unknown limit: let connect report EMFILE if it comes to that.
    }
    let (soft, hard) = (lim.rlim_cur as u64, lim.rlim_max as u64);
    if soft >= needed || lim.rlim_cur == libc::RLIM_INFINITY {
        return Ok(());
    }
    if hard < needed && lim.rlim_max != libc::RLIM_INFINITY {
        return Err(LoadError::FileLimit {
            needed: needed - SPARE_FDS,
            hard,
        });
    }
    lim.rlim_cur = needed as libc::rlim_t;
    // SAFETY: setrlimit reads the struct we own.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        return Err(LoadError::RaiseLimit {
            wanted: needed,
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_limit_within_soft_is_fine() {
        assert!(ensure_fd_limit(16).is_ok());
    }

    #[test]
    #[allow(clippy::unnecessary_cast)]
    fn fd_limit_beyond_hard_is_refused() {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: as above.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
        if lim.rlim_max == libc::RLIM_INFINITY {
            return;
        }
        let err = ensure_fd_limit(lim.rlim_max as u64 + 1).unwrap_err();
        assert!(matches!(err, LoadError::FileLimit { .. }), "{err}");
    }

    #[test]
    fn a_yielding_thread_runs_as_batch_and_the_others_do_not() {
        // SAFETY: sched_getscheduler only reads the calling thread's policy.
        let policy = || unsafe { libc::sched_getscheduler(0) };
        let before = policy();
        let inside = std::thread::spawn(move || {
            yield_on_wake_up().unwrap();
            policy()
        })
        .join()
        .unwrap();
        assert_eq!(inside, libc::SCHED_BATCH);
        assert_eq!(policy(), before, "only the calling thread changes");
    }

    #[test]
    fn pins_a_thread_to_one_of_its_cpus() {
        std::thread::spawn(|| {
            let allowed = current_thread_cpus().unwrap();
            let last = *allowed.last().unwrap();
            pin_current_thread(&[last]).unwrap();
            assert_eq!(current_thread_cpus().unwrap(), vec![last]);
            assert!(pin_current_thread(&[usize::MAX]).is_err());
        })
        .join()
        .unwrap();
    }

    #[test]
    fn open_loop_shares_add_up_to_the_rate_and_the_count() {
        for (n, c, threads) in [(1000, 3, 2), (7, 5, 3), (1, 2, 2), (100, 100, 2)] {
            let config = LoadConfig::builder("http://h/")
                .concurrency(c)
                .requests(n)
                .rate(1000.0)
                .build()
                .unwrap();
            let parts: Vec<_> = (0..threads)
                .map(|i| {
                    let clients = c / threads + u64::from(i < c % threads);
                    worker_schedule(1000.0, &config, threads, i, clients)
                })
                .collect();
            let total: u64 = parts.iter().map(|p| p.limit.unwrap()).sum();
            assert_eq!(total, n, "n={n} c={c} t={threads}");
            let rate: f64 = parts.iter().map(|p| 1.0 / p.interval).sum();
            assert!((rate - 1000.0).abs() < 1e-6, "{rate}");
        }
        // -z: 200/s for 2 s on two workers is exactly 400 slots, interleaved.
        let config = LoadConfig::builder("http://h/")
            .concurrency(4)
            .duration(Duration::from_secs(2))
            .rate(200.0)
            .build()
            .unwrap();
        let a = worker_schedule(200.0, &config, 2, 0, 2);
        let b = worker_schedule(200.0, &config, 2, 1, 2);
        let d = Some(Duration::from_secs(2));
        assert_eq!((a.slots(d), b.slots(d)), (200, 200));
        assert_eq!((a.offset, b.offset), (0.0, 0.005));
        // Odd rates: the count is exactly the slots due before the end.
        let config = LoadConfig::builder("http://h/")
            .concurrency(3)
            .duration(Duration::from_secs(1))
            .rate(7.0)
            .build()
            .unwrap();
        let s = worker_schedule(7.0, &config, 1, 0, 3);
        assert_eq!(s.slots(Some(Duration::from_secs(1))), 7);
        assert_eq!(s.slots(Some(Duration::from_millis(1001))), 8);
    }

    #[test]
    fn resolves_loopback() {
        assert_eq!(resolve("127.0.0.1", 80).unwrap().port(), 80);
        assert_eq!(resolve("localhost", 81).unwrap().port(), 81);
    }
}
