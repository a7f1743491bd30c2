//! The run served live from the program that records it: the page, the Prometheus exposition and the
//! summary as JSON, over plain blocking HTTP on threads of its own (no async runtime asked of the user).
//!
//! One thread accepts; each connection gets a thread of its own, at most [`MAX_CONNECTIONS`] at once (the
//! next ones get 503 at once), and deadlines on every read and write (see `http`), so a slow or stuck
//! client holds one connection for a few seconds and never the others, the recording threads or the
//! program's exit. Requests close their connection: the page asks again once a second (polling, not a
//! stream held open), which is all a page updating once a second needs and leaves nothing open to stall.
//! Requests do not make summaries: a thread of the server's makes them at the cadence requests come in
//! (every half of the time between the two latest requests, from [`FRESH`] to [`SLOWEST`]) while they
//! come, and each request answers from the latest, so a scrape or a page update is answered in the time of
//! writing it out, however long a summary takes (64 threads of 4,000 call paths each: some 46 ms). A page
//! polling once a second costs a summary every 500 ms, a scraper asking every 15 s one every 5 s, and any
//! number of them together no more than the most frequent. Those summaries leave out the call tree, most
//! of a summary's cost in a process of many call paths; the tree, and the flamegraph drawn from it, are
//! made again at most every [`TREE_EVERY`], on a thread of their own, while the requests go on with the one
//! before. A request that finds no summary recent enough for the cadence (the first one, one after a
//! pause) waits for one; requests arriving meanwhile wait for the same one.

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

/// Summaries are made at most this often: twice for each update of a page polling once a second (at 64
/// threads of 4,000 call paths, some 46 ms a summary, a tenth of a core)...
const FRESH: Duration = Duration::from_millis(500);

/// ...and at least this often while requests come, however far apart (a scraper every minute).
const SLOWEST: Duration = Duration::from_secs(5);

/// The call tree and its flamegraph are made again when older than this.
const TREE_EVERY: Duration = Duration::from_secs(10);

/// With no request for three times the time between the two latest, and at least this long, summaries
/// stop being made until the next request.
const IDLE_AFTER: Duration = Duration::from_secs(10);

/// The live server started by [`serve`](crate::serve): it serves until dropped (or [`stop`](Self::stop)ped).
///
/// | request | answer |
/// |---|---|
/// | `GET /` | the run's page ([`TrainingSummary::to_html`]'s), updating itself once a second |
/// | `GET /metrics` | the Prometheus exposition ([`TrainingSummary::to_prometheus`]) |
/// | `GET /summary.json` | the [`TrainingSummary`] as JSON; its call tree is the one kept (made every 10 s, header `X-Timing-Calltree-Age` in seconds); `?calltree=false` leaves it out |
///
/// `HEAD` is answered as `GET` without the body; other methods get 405, other paths 404, requests that
/// are not HTTP/1.x 400, heads over 16 KiB 431, heads that take over 5 s 408.
#[derive(Debug)]
#[must_use = "the server stops when it is dropped: keep it in a variable for as long as it should serve"]
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
    /// When the server started, the latest request since, in nanoseconds after it, and the time between the
    /// two latest (`u64::MAX`: none yet).
    started: Instant,
    asked: AtomicU64,
    gap: AtomicU64,
    tree: Mutex<Option<Arc<Tree>>>,
    /// A thread is making the tree again.
    tree_coming: AtomicBool,
    /// Held while the first tree is made, so that requests arriving meanwhile wait for it.
    first_tree: Mutex<()>,
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
            gap: AtomicU64::new(u64::MAX),
            tree: Mutex::new(None),
            tree_coming: AtomicBool::new(false),
            first_tree: Mutex::new(()),
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
        // The connection's place is given back when the thread ends, however it ends.
        let place = Place(Arc::clone(shared));
        let connection = move || {
            let mut stream = stream;
            answer(&mut stream, &place.0);
            drop(place);
        };
        // A thread that cannot be made drops its closure, and with it the place.
        let _ = std::thread::Builder::new().name("timing-serve-connection".into()).spawn(connection);
    }
}

/// A connection's place among the [`MAX_CONNECTIONS`], given back when dropped.
struct Place(Arc<Shared>);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Makes summaries at the requests' cadence while they come, until the server stops.
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
        let due = {
            let latest = shared.latest.lock().unwrap_or_else(PoisonError::into_inner);
            latest.as_ref().is_none_or(|(made, _)| made.elapsed() >= shared.cadence())
        };
        if shared.wanted() && due {
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
        // A panic while answering (drawing the page, say) is the request's 500, not the server's end.
        Ok(request) => match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| route(&request, shared))) {
            Ok(response) => (response, request.head_only),
            Err(_) => {
                (Response::text(500, "the answer could not be made (a panic; see the program's output)\n"), false)
            }
        },
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
            let mut age = None;
            // `?calltree=false` leaves the tree out, for a reader that polls (`timing top`).
            let json = if request.query.split('&').any(|pair| pair == "calltree=false") {
                serde_json::to_vec(&*summary)
            } else {
                let tree = Shared::tree(shared);
                age = Some(tree.made.elapsed());
                let mut whole = TrainingSummary::clone(&summary);
                whole.call_tree = tree.call_tree.clone();
                serde_json::to_vec(&whole)
            };
            match json {
                Ok(json) => {
                    let mut response = Response::new(200, "application/json", json);
                    if let Some(age) = age {
                        response.headers.push(("X-Timing-Calltree-Age", format!("{:.1}", age.as_secs_f64())));
                    }
                    response
                }
                Err(error) => Response::text(500, format!("the summary could not be written: {error}\n")),
            }
        }
        path => Response::text(404, format!("nothing at {path}: try /, /metrics or /summary.json\n")),
    }
}

/// A tree being made on a thread of its own; dropped, it lets the next one be made.
struct Coming(Arc<Shared>);

impl Drop for Coming {
    fn drop(&mut self) {
        self.0.tree_coming.store(false, Ordering::SeqCst);
    }
}

impl Shared {
    /// The latest summary the refreshing thread made, if it is recent enough for the requests' cadence
    /// (made within two periods of it); otherwise one made now. Requests arriving while it is made wait for
    /// it rather than make their own.
    fn summary(&self) -> Arc<TrainingSummary> {
        let now = u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let before = self.asked.swap(now, Ordering::SeqCst);
        if before != u64::MAX {
            self.gap.store(now.saturating_sub(before), Ordering::SeqCst);
        }
        let mut latest = self.latest.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((made, summary)) = latest.as_ref() {
            if made.elapsed() < 2 * self.cadence() {
                return Arc::clone(summary);
            }
        }
        let summary = Arc::new((self.light)());
        *latest = Some((Instant::now(), Arc::clone(&summary)));
        summary
    }

    /// How often summaries are made: half the time between the two latest requests, from [`FRESH`] to
    /// [`SLOWEST`].
    fn cadence(&self) -> Duration {
        match self.gap.load(Ordering::SeqCst) {
            u64::MAX => FRESH,
            gap => Duration::from_nanos(gap / 2).clamp(FRESH, SLOWEST),
        }
    }

    /// Whether requests still come: one came within three times the time between the two latest, and
    /// within [`IDLE_AFTER`] at least.
    fn wanted(&self) -> bool {
        let asked = self.asked.load(Ordering::SeqCst);
        if asked == u64::MAX {
            return false;
        }
        let gap = match self.gap.load(Ordering::SeqCst) {
            u64::MAX => Duration::ZERO,
            gap => Duration::from_nanos(gap.saturating_mul(3)),
        };
        self.started.elapsed().saturating_sub(Duration::from_nanos(asked)) < gap.max(IDLE_AFTER)
    }

    /// The call tree kept, made on the spot the first time; one older than [`TREE_EVERY`] is made again on
    /// a thread of its own while this request (and the next ones) go on with it.
    fn tree(shared: &Arc<Shared>) -> Arc<Tree> {
        let kept = shared.tree.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let Some(kept) = kept else {
            // The first: made once, by the first request to get here; the others wait for it.
            let _first = shared.first_tree.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(made) = shared.tree.lock().unwrap_or_else(PoisonError::into_inner).clone() {
                return made;
            }
            let tree = Arc::new(Shared::make_tree(shared));
            *shared.tree.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(&tree));
            return tree;
        };
        if kept.made.elapsed() >= TREE_EVERY && !shared.tree_coming.swap(true, Ordering::SeqCst) {
            // The flag is lowered however the making ends (a panic in it included), or if no thread is made.
            let coming = Coming(Arc::clone(shared));
            let _ = std::thread::Builder::new().name("timing-serve-tree".into()).spawn(move || {
                let tree = Arc::new(Shared::make_tree(&coming.0));
                *coming.0.tree.lock().unwrap_or_else(PoisonError::into_inner) = Some(tree);
                drop(coming);
            });
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
