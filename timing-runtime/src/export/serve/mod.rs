//! The run served live from the program that records it: the page, the Prometheus exposition and the
//! summary as JSON, over plain blocking HTTP on threads of its own (no async runtime asked of the user).
//!
//! One thread accepts; each connection gets a thread of its own, at most [`MAX_CONNECTIONS`] at once (the
//! next ones get 503 at once), and deadlines on every read and write (see `http`), so a slow or stuck
//! client holds one connection for a few seconds and never the others, the recording threads or the
//! program's exit. Requests close their connection: the page asks again once a second (polling, not a
//! stream held open), which is all a page updating once a second needs and leaves nothing open to stall.
//! Summaries are made at most every [`FRESH`] and shared by the requests that arrive meanwhile, so a page
//! and a scraper together cost the recording threads about one summary a second.

mod http;

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use self::http::{Request, Response};
use crate::model::TrainingSummary;

/// Connections served at once at most; one more is told 503 and closed.
pub(crate) const MAX_CONNECTIONS: usize = 16;

/// A summary younger than this is served again rather than made anew.
const FRESH: Duration = Duration::from_millis(250);

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
}

struct Shared {
    source: fn() -> TrainingSummary,
    title: String,
    stopping: AtomicBool,
    connections: AtomicUsize,
    latest: Mutex<Option<(Instant, Arc<TrainingSummary>)>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Shared").field("title", &self.title).finish_non_exhaustive()
    }
}

impl Server {
    /// Binds `address` and starts serving summaries made by `source`.
    pub(crate) fn start(address: &str, source: fn() -> TrainingSummary) -> io::Result<Self> {
        let listener = TcpListener::bind(resolve(address)?.as_slice())?;
        let address = listener.local_addr()?;
        let program = std::env::current_exe()
            .ok()
            .and_then(|path| path.file_stem().map(|stem| stem.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "run".to_owned());
        let shared = Arc::new(Shared {
            source,
            title: program,
            stopping: AtomicBool::new(false),
            connections: AtomicUsize::new(0),
            latest: Mutex::new(None),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new().name("timing-serve".into()).spawn(move || accept(&listener, &shared))?
        };
        Ok(Self { address, shared, acceptor: Some(acceptor) })
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

/// Tells a connection over the limit 503. Its request is read first (for at most 100 ms): a socket closed
/// with unread bytes is reset, and the client would see the reset instead of the answer.
fn refuse_one(stream: &mut TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    let mut head = [0_u8; http::MAX_HEAD];
    let _ = std::io::Read::read(stream, &mut head);
    let _ = Response::text(503, "too many connections; try again\n").write(stream, false);
    http::close(stream);
}

fn answer(stream: &mut TcpStream, shared: &Shared) {
    let (response, head_only) = match http::read_request(stream) {
        Ok(request) => (route(&request, shared), request.head_only),
        Err(refused) => (refused.response(), false),
    };
    let _ = response.write(stream, head_only);
    http::close(stream);
}

fn route(request: &Request, shared: &Shared) -> Response {
    match request.path.as_str() {
        "/" | "/index.html" => match shared.summary().live_page(&shared.title) {
            Ok(page) => Response::new(200, "text/html; charset=utf-8", page),
            Err(error) => Response::text(500, format!("the page could not be drawn: {error}\n")),
        },
        "/metrics" => Response::new(200, "text/plain; version=0.0.4; charset=utf-8", shared.summary().to_prometheus()),
        "/summary.json" => match serde_json::to_vec(&*shared.summary()) {
            Ok(json) => Response::new(200, "application/json", json),
            Err(error) => Response::text(500, format!("the summary could not be written: {error}\n")),
        },
        path => Response::text(404, format!("nothing at {path}: try /, /metrics or /summary.json\n")),
    }
}

impl Shared {
    /// The latest summary, made anew when the one kept is older than [`FRESH`]; requests arriving while it
    /// is made wait for it rather than make their own.
    fn summary(&self) -> Arc<TrainingSummary> {
        let mut latest = self.latest.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((made, summary)) = latest.as_ref() {
            if made.elapsed() < FRESH {
                return Arc::clone(summary);
            }
        }
        let summary = Arc::new((self.source)());
        *latest = Some((Instant::now(), Arc::clone(&summary)));
        summary
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
