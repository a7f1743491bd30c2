//! The run served live from the program that records it: the page, the Prometheus exposition and the
//! summary as JSON, over plain blocking HTTP on threads of its own (no async runtime asked of the user).
//!
//! One thread accepts; each connection gets a thread of its own, at most [`MAX_CONNECTIONS`] at once (the
//! next ones get 503 at once), and deadlines on every read and write (see `http`), so a slow or stuck
//! client holds one connection for a few seconds and never the others, the recording threads or the
//! program's exit. Requests close their connection: the page asks again once a second (polling, not a
//! stream held open), which is all a page updating once a second needs and leaves nothing open to stall.
//! Requests do not make summaries: a thread of the server's makes one every [`FRESH`] while someone asks
//! (requests in the last [`IDLE_AFTER`]), and each request answers from the latest, so a scrape or a page
//! update is answered in the time of writing it out, however long a summary takes (64 threads of 4,000
//! call paths each: some 40 ms), and any number of pages and scrapers cost one summary every [`FRESH`].
//! Those summaries leave out the call tree, most of a summary's cost in a process of many call paths; the
//! tree, and the flamegraph drawn from it, are made again at most every [`TREE_EVERY`], on a thread of
//! their own, while the requests go on with the one before. Only the first request waits for a summary.

mod http;

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use self::http::{Request, Response};
use crate::model::{CallTree, TrainingSummary};

/// Connections served at once at most; one more is told 503 and closed.
pub(crate) const MAX_CONNECTIONS: usize = 16;

/// Summaries are made this often while requests come: twice for each update of a page polling once a
/// second, and at 64 threads of 4,000 call paths (some 40 ms a summary) a tenth of a core.
const FRESH: Duration = Duration::from_millis(500);

/// The call tree and its flamegraph are made again when older than this.
const TREE_EVERY: Duration = Duration::from_secs(10);

/// With no request for this long, summaries stop being made (until the next request).
const IDLE_AFTER: Duration = Duration::from_secs(10);

/// The live server started by [`serve`](crate::serve): it serves until dropped (or [`stop`](Self::stop)ped).
///
/// | request | answer |
/// |---|---|
/// | `GET /` | the run's page ([`TrainingSummary::to_html`]'s), updating itself once a second |
/// | `GET /metrics` | the Prometheus exposition ([`TrainingSummary::to_prometheus`]) |
/// | `GET /summary.json` | the [`TrainingSummary`] as JSON |
///
/// `HEAD` is answered as `GET` without the body; other methods get 405, other paths 404, requests that
/// are not HTTP/1.x 400, heads over 16 KiB 431, heads that take over 5 s 408.
#[derive(Debug)]
pub struct Server {
    address: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
    refresher: Option<JoinHandle<()>>,
}

struct Shared {
    /// The summary without its call tree, and with it.
    light: fn() -> TrainingSummary,
    full: fn() -> TrainingSummary,
    title: String,
    stopping: AtomicBool,
    connections: AtomicUsize,
    latest: Mutex<Option<(Instant, Arc<TrainingSummary>)>>,
    /// Wakes the refreshing thread to stop.
    wake: Condvar,
    /// When the server started, and the latest request since, in nanoseconds after it (`u64::MAX`: none
    /// yet).
    started: Instant,
    asked: AtomicU64,
    tree: Mutex<Option<Arc<Tree>>>,
    /// A thread is making the tree again.
    tree_coming: AtomicBool,
}

/// A call tree, when it was made, and the page's section drawn from it.
struct Tree {
    made: Instant,
    call_tree: CallTree,
    section: String,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Shared").field("title", &self.title).finish_non_exhaustive()
    }
}

impl Server {
    /// Binds `address` and starts serving summaries made by `light` (without a call tree) and `full`.
    pub(crate) fn start(
        address: &str,
        light: fn() -> TrainingSummary,
        full: fn() -> TrainingSummary,
    ) -> io::Result<Self> {
        let listener = TcpListener::bind(resolve(address)?.as_slice())?;
        let address = listener.local_addr()?;
        let program = std::env::current_exe()
            .ok()
            .and_then(|path| path.file_stem().map(|stem| stem.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "run".to_owned());
        let shared = Arc::new(Shared {
            light,
            full,
            title: program,
            stopping: AtomicBool::new(false),
            connections: AtomicUsize::new(0),
            latest: Mutex::new(None),
            wake: Condvar::new(),
            started: Instant::now(),
            asked: AtomicU64::new(u64::MAX),
            tree: Mutex::new(None),
            tree_coming: AtomicBool::new(false),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new().name("timing-serve".into()).spawn(move || accept(&listener, &shared))?
        };
        let refresher = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new().name("timing-serve-summaries".into()).spawn(move || refresh(&shared))
        };
        let mut server = Self { address, shared, acceptor: Some(acceptor), refresher: None };
        // Dropped on failure, the server stops its acceptor.
        server.refresher = Some(refresher?);
        Ok(server)
    }

    /// The address it listens on (with the port the system chose, for port 0).
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// `http://ADDRESS/`, the page's address.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}/", self.address)
    }

    /// Stops accepting and returns once the accepting thread has ended; connections being answered end
    /// within their deadlines. Dropping the server does the same.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        let Some(acceptor) = self.acceptor.take() else { return };
        self.shared.stopping.store(true, Ordering::SeqCst);
        {
            let _latest = self.shared.latest.lock().unwrap_or_else(PoisonError::into_inner);
            self.shared.wake.notify_all();
        }
        if let Some(refresher) = self.refresher.take() {
            // It ends at once, or once the summary it is making is made.
            let _ = refresher.join();
        }
        // The acceptor waits in `accept`: a connection of our own wakes it to see the flag. Should that
        // fail, it is left to end with the process rather than waited for.
        let mut wake = self.address;
        if wake.ip().is_unspecified() {
            wake.set_ip(if wake.is_ipv4() { Ipv4Addr::LOCALHOST.into() } else { Ipv6Addr::LOCALHOST.into() });
        }
        if TcpStream::connect_timeout(&wake, Duration::from_secs(1)).is_ok() {
            let _ = acceptor.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// The addresses `address` names: a port alone (`"9185"` or `":9185"`) is loopback's; anything else is
/// resolved as given, so that binding beyond loopback is written out.
fn resolve(address: &str) -> io::Result<Vec<SocketAddr>> {
    let port = address.strip_prefix(':').unwrap_or(address);
    if let Ok(port) = port.parse::<u16>() {
        return Ok(vec![SocketAddr::from((Ipv4Addr::LOCALHOST, port))]);
    }
    let addresses: Vec<SocketAddr> = address
        .to_socket_addrs()
        .map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, format!("serve({address:?}): {error}")))?
        .collect();
    if addresses.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("serve({address:?}): no address")));
    }
    Ok(addresses)
}

fn accept(listener: &TcpListener, shared: &Arc<Shared>) {
    // Connections over the limit go to one thread that tells them 503, so that neither the acceptor nor
    // a thread per refusal waits on them; beyond what it has queued, they are closed unanswered.
    let (refuse, refused) = std::sync::mpsc::sync_channel::<TcpStream>(MAX_CONNECTIONS);
    let refuser = std::thread::Builder::new().name("timing-serve-refuser".into()).spawn(move || {
        for mut stream in refused {
            refuse_one(&mut stream);
        }
    });
    if refuser.is_err() {
        return;
    }
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else {
            // Out of descriptors, a connection reset before it was accepted: the next may do.
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        if shared.connections.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            shared.connections.fetch_sub(1, Ordering::SeqCst);
            let _ = refuse.try_send(stream);
            continue;
        }
        let connection = {
            let shared = Arc::clone(shared);
            let mut stream = stream;
            move || {
                answer(&mut stream, &shared);
                shared.connections.fetch_sub(1, Ordering::SeqCst);
            }
        };
        if std::thread::Builder::new().name("timing-serve-connection".into()).spawn(connection).is_err() {
            shared.connections.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Makes a summary every [`FRESH`] while requests come, until the server stops.
fn refresh(shared: &Shared) {
    loop {
        {
            let latest = shared.latest.lock().unwrap_or_else(PoisonError::into_inner);
            if shared.stopping.load(Ordering::SeqCst) {
                return;
            }
            let _ = shared.wake.wait_timeout(latest, FRESH).unwrap_or_else(PoisonError::into_inner);
        }
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        if shared.wanted() {
            // Made with no lock held: requests meanwhile answer from the one before.
            let summary = Arc::new((shared.light)());
            *shared.latest.lock().unwrap_or_else(PoisonError::into_inner) = Some((Instant::now(), summary));
        }
    }
}

/// Tells a connection over the limit 503. Its request is read first (for at most 100 ms): a socket closed
/// with unread bytes is reset, and the client would see the reset instead of the answer.
fn refuse_one(stream: &mut TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    let mut head = [0_u8; http::MAX_HEAD];
    let _ = std::io::Read::read(stream, &mut head);
    let _ = Response::text(503, "too many connections; try again\n").write(stream, false);
    http::close(stream);
}

fn answer(stream: &mut TcpStream, shared: &Arc<Shared>) {
    let (response, head_only) = match http::read_request(stream) {
        Ok(request) => (route(&request, shared), request.head_only),
        Err(refused) => (refused.response(), false),
    };
    let _ = response.write(stream, head_only);
    http::close(stream);
}

fn route(request: &Request, shared: &Arc<Shared>) -> Response {
    match request.path.as_str() {
        "/" | "/index.html" => {
            let tree = Shared::tree(shared);
            match shared.summary().live_page(&shared.title, Some(&tree.section)) {
                Ok(page) => Response::new(200, "text/html; charset=utf-8", page),
                Err(error) => Response::text(500, format!("the page could not be drawn: {error}\n")),
            }
        }
        "/metrics" => Response::new(200, "text/plain; version=0.0.4; charset=utf-8", shared.summary().to_prometheus()),
        "/summary.json" => {
            let summary = shared.summary();
            // `?calltree=false` leaves the tree out, for a reader that polls (`timing top`).
            let json = if request.query.split('&').any(|pair| pair == "calltree=false") {
                serde_json::to_vec(&*summary)
            } else {
                let mut whole = TrainingSummary::clone(&summary);
                whole.call_tree = Shared::tree(shared).call_tree.clone();
                serde_json::to_vec(&whole)
            };
            match json {
                Ok(json) => Response::new(200, "application/json", json),
                Err(error) => Response::text(500, format!("the summary could not be written: {error}\n")),
            }
        }
        path => Response::text(404, format!("nothing at {path}: try /, /metrics or /summary.json\n")),
    }
}

impl Shared {
    /// The latest summary the refreshing thread made; the first request (or the first after the server
    /// was idle) makes one itself. Requests arriving while it is made wait for it rather than make their own.
    fn summary(&self) -> Arc<TrainingSummary> {
        let now = u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let before = self.asked.swap(now, Ordering::SeqCst);
        let idle =
            before == u64::MAX || now.saturating_sub(before) > u64::try_from(IDLE_AFTER.as_nanos()).unwrap_or(u64::MAX);
        let mut latest = self.latest.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((made, summary)) = latest.as_ref() {
            // After an idle stretch the kept summary is old: not served as if it were the latest.
            if !idle || made.elapsed() < FRESH {
                return Arc::clone(summary);
            }
        }
        let summary = Arc::new((self.light)());
        *latest = Some((Instant::now(), Arc::clone(&summary)));
        summary
    }

    /// Whether a request came in the last [`IDLE_AFTER`].
    fn wanted(&self) -> bool {
        let asked = self.asked.load(Ordering::SeqCst);
        asked != u64::MAX && self.started.elapsed().saturating_sub(Duration::from_nanos(asked)) < IDLE_AFTER
    }

    /// The call tree kept, made on the spot the first time; one older than [`TREE_EVERY`] is made again on
    /// a thread of its own while this request (and the next ones) go on with it.
    fn tree(shared: &Arc<Shared>) -> Arc<Tree> {
        let kept = shared.tree.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let Some(kept) = kept else {
            let tree = Arc::new(Shared::make_tree(shared));
            *shared.tree.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(&tree));
            return tree;
        };
        if kept.made.elapsed() >= TREE_EVERY && !shared.tree_coming.swap(true, Ordering::SeqCst) {
            let worker = Arc::clone(shared);
            let spawned = std::thread::Builder::new().name("timing-serve-tree".into()).spawn(move || {
                let tree = Arc::new(Shared::make_tree(&worker));
                *worker.tree.lock().unwrap_or_else(PoisonError::into_inner) = Some(tree);
                worker.tree_coming.store(false, Ordering::SeqCst);
            });
            if spawned.is_err() {
                // No thread to spare: the next request tries again.
                shared.tree_coming.store(false, Ordering::SeqCst);
            }
        }
        kept
    }

    fn make_tree(shared: &Shared) -> Tree {
        let call_tree = (shared.full)().call_tree;
        let section = super::html::flamegraph_section(&call_tree);
        Tree { made: Instant::now(), call_tree, section }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_alone_is_loopback() {
        assert_eq!(resolve("9185").expect("an address"), vec![SocketAddr::from((Ipv4Addr::LOCALHOST, 9185))]);
        assert_eq!(resolve(":0").expect("an address"), vec![SocketAddr::from((Ipv4Addr::LOCALHOST, 0))]);
        assert!(resolve("0.0.0.0:0").expect("an address")[0].ip().is_unspecified());
        assert_eq!(resolve("not an address").map_err(|error| error.kind()), Err(io::ErrorKind::InvalidInput));
        assert!(resolve("127.0.0.1:99999").is_err());
    }
}
