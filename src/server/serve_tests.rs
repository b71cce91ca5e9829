//! [`serve_with`] over loopback with a small slot table: who is closed to make room,
//! the first-byte timeout, and `--web.max-requests` with a client that stops reading.

use std::net::SocketAddr;

use prometheus_client::metrics::info::Info;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::metrics::ReasonLabels;
use super::*;

/// Bound on every wait in these tests.
const WAIT: Duration = Duration::from_secs(20);
/// A request head cut short: no blank line.
const HALF: &[u8] = b"GET /metrics HTTP/1.1\r\nHost: t\r\n";

struct Server {
    addr: SocketAddr,
    state: Arc<ServerState>,
    conns: Arc<Connections>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(limits: Limits, state: ServerState) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(state);
        let conns = Arc::new(Connections::new(
            limits.connections,
            limits.stalled_after,
            limits.unused_grace,
            state.metrics.clone(),
        ));
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(serve_with(
            listener,
            state.clone(),
            async {
                let _ = stopped.await;
            },
            limits,
            conns.clone(),
        ));
        Self {
            addr,
            state,
            conns,
            stop,
            task,
        }
    }

    async fn connect(&self) -> TcpStream {
        TcpStream::connect(self.addr).await.unwrap()
    }

    async fn half_sent(&self) -> TcpStream {
        let mut s = self.connect().await;
        s.write_all(HALF).await.unwrap();
        s
    }

    /// Waits until the table holds connections in exactly `phases` (any order).
    async fn wait_for_phases(&self, phases: &[Phase]) {
        let mut want = phases.to_vec();
        want.sort_by_key(|p| *p as u8);
        wait_until(&format!("phases {want:?}"), || {
            let mut got: Vec<Phase> = self.conns.states().iter().map(|s| s.0).collect();
            got.sort_by_key(|p| *p as u8);
            got == want
        })
        .await;
    }

    fn closed(&self, reason: CloseReason) -> u64 {
        self.state
            .metrics
            .connections_closed
            .get_or_create(&ReasonLabels {
                reason: reason.label(),
            })
            .get()
    }

    fn refused(&self) -> u64 {
        self.state
            .metrics
            .requests_refused
            .get_or_create(&ReasonLabels {
                reason: "max_requests",
            })
            .get()
    }

    async fn shutdown(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("serve returns after shutdown")
            .unwrap()
            .unwrap();
    }
}

async fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Sends GET `path` on `s` and reads one response: status and body.
async fn request(s: &mut TcpStream, path: &str, close: bool) -> (u16, Vec<u8>) {
    let connection = if close { "Connection: close\r\n" } else { "" };
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\n{connection}\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(WAIT, s.read(&mut chunk))
            .await
            .expect("response head in time")
            .unwrap();
        assert!(n > 0, "closed before the response head");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
    let status = head[9..12].parse().unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0);
    let mut body = buf.split_off(head_end);
    while body.len() < length {
        let mut chunk = vec![0u8; 1 << 16];
        let n = tokio::time::timeout(WAIT, s.read(&mut chunk))
            .await
            .expect("response body in time")
            .unwrap();
        assert!(n > 0, "closed mid-body");
        body.extend_from_slice(&chunk[..n]);
    }
    (status, body)
}

/// A scrape on a new connection.
async fn scrape(addr: SocketAddr) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    request(&mut s, "/metrics", true).await
}

/// Whether the server closed `s` (EOF or reset) within [`WAIT`]; data is skipped.
async fn closed(s: &mut TcpStream) -> bool {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

/// Whether `s` is still open after a moment (nothing arrives, no EOF).
async fn still_open(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 16];
    tokio::time::timeout(Duration::from_millis(200), s.read(&mut buf))
        .await
        .is_err()
}

fn small_state() -> ServerState {
    let mut registry = Registry::default();
    registry.register(
        "example",
        "An example.",
        Info::new(vec![("k", "v".to_owned())]),
    );
    ServerState {
        registry,
        telemetry_path: "/metrics".into(),
        ..ServerState::default()
    }
}

/// Long timeouts and no grace: only the behaviour under test closes connections.
fn patient(connections: usize) -> Limits {
    Limits {
        connections,
        first_byte: Duration::from_secs(60),
        header_read: Duration::from_secs(60),
        unused_grace: Duration::ZERO,
        ..Limits::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_table_makes_room_unused_first_then_idle_then_incomplete() {
    tokio::time::timeout(WAIT * 3, async {
        let server = Server::start(patient(3), small_state()).await;
        let mut idle = server.connect().await;
        assert_eq!(request(&mut idle, "/-/healthy", false).await.0, 200);
        let mut half = server.half_sent().await;
        let mut unused = server.connect().await;
        server
            .wait_for_phases(&[Phase::Answered, Phase::Reading, Phase::Unused])
            .await;

        assert_eq!(scrape(server.addr).await.0, 200, "the cap makes room");
        assert!(
            closed(&mut unused).await,
            "the one that sent nothing goes first, though newest"
        );
        assert!(still_open(&mut idle).await && still_open(&mut half).await);

        server
            .wait_for_phases(&[Phase::Answered, Phase::Reading])
            .await;
        let mut half2 = server.half_sent().await;
        server
            .wait_for_phases(&[Phase::Answered, Phase::Reading, Phase::Reading])
            .await;
        assert_eq!(scrape(server.addr).await.0, 200);
        assert!(
            closed(&mut idle).await,
            "then the idle keep-alive connection"
        );
        assert!(still_open(&mut half).await && still_open(&mut half2).await);

        server
            .wait_for_phases(&[Phase::Reading, Phase::Reading])
            .await;
        let mut half3 = server.half_sent().await;
        server
            .wait_for_phases(&[Phase::Reading, Phase::Reading, Phase::Reading])
            .await;
        assert_eq!(scrape(server.addr).await.0, 200);
        assert!(
            closed(&mut half).await,
            "then the oldest incomplete request"
        );
        assert!(still_open(&mut half2).await && still_open(&mut half3).await);

        assert_eq!(server.closed(CloseReason::PressureUnused), 1);
        assert_eq!(server.closed(CloseReason::PressureIdle), 1);
        assert_eq!(server.closed(CloseReason::PressureIncomplete), 1);
        assert_eq!(server.state.metrics.connections_accepted.get(), 8);
        wait_until("the scrape connection closed", || {
            server.state.metrics.connections_open.get() == 2
        })
        .await;
        drop((half2, half3));
        server.shutdown().await;
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_young_connection_chosen_to_make_room_that_then_asks_is_answered() {
    tokio::time::timeout(WAIT * 3, async {
        let limits = Limits {
            unused_grace: Duration::from_secs(30),
            ..patient(1)
        };
        let server = Server::start(limits, small_state()).await;
        let mut slow = server.connect().await;
        server.wait_for_phases(&[Phase::Unused]).await;
        assert_eq!(scrape(server.addr).await.0, 200, "admitted at once");
        assert_eq!(server.closed(CloseReason::PressureUnused), 1);
        slow.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        let mut response = Vec::new();
        tokio::time::timeout(WAIT, slow.read_to_end(&mut response))
            .await
            .expect("answered, then closed")
            .unwrap();
        let response = String::from_utf8_lossy(&response).to_lowercase();
        assert!(response.starts_with("http/1.1 200"), "{response}");
        assert!(response.contains("connection: close"), "{response}");
        server.shutdown().await;
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_sends_nothing_is_closed_at_the_first_byte_timeout() {
    tokio::time::timeout(WAIT * 3, async {
        let limits = Limits {
            first_byte: Duration::from_millis(300),
            ..patient(8)
        };
        let server = Server::start(limits, small_state()).await;
        let mut half = server.half_sent().await;
        let mut silent = server.connect().await;
        assert!(closed(&mut silent).await);
        assert_eq!(server.closed(CloseReason::FirstByteTimeout), 1);
        assert!(
            still_open(&mut half).await,
            "a connection that sent a byte stays"
        );
        let mut keep = server.connect().await;
        assert_eq!(request(&mut keep, "/-/healthy", false).await.0, 200);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(still_open(&mut keep).await, "only until the first byte");
        assert_eq!(server.closed(CloseReason::FirstByteTimeout), 1);
        drop((half, keep));
        server.shutdown().await;
    })
    .await
    .unwrap();
}

/// A registry whose body (~12 MB) outgrows any socket buffers.
fn big_state(max_requests: usize) -> ServerState {
    let mut registry = Registry::default();
    for i in 0..12 {
        registry.register(
            format!("blob_{i}"),
            "A megabyte.",
            Info::new(vec![("blob", "x".repeat(1 << 20))]),
        );
    }
    ServerState {
        registry,
        telemetry_path: "/metrics".into(),
        max_requests,
        ..ServerState::default()
    }
}

/// A scrape whose client never reads: its response stalls, holding its permit.
async fn stalled_scrape(server: &Server) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut s = socket.connect(server.addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    wait_until("a stalled response holding its permit", || {
        server
            .conns
            .states()
            .contains(&(Phase::Answered, true, true))
    })
    .await;
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_requests_a_scrape_gets_429_until_a_permit_is_free() {
    tokio::time::timeout(WAIT * 3, async {
        let limits = Limits {
            stalled_after: Duration::from_secs(3600),
            ..patient(8)
        };
        let server = Server::start(limits, big_state(1)).await;
        let reader = stalled_scrape(&server).await;
        assert_eq!(server.state.metrics.requests_in_flight.get(), 1);
        let (status, body) = scrape(server.addr).await;
        assert_eq!(status, 429);
        assert_eq!(
            String::from_utf8_lossy(&body),
            "Limit of concurrent requests reached (1), try again later.\n"
        );
        assert_eq!(server.refused(), 1);
        let mut health = server.connect().await;
        assert_eq!(
            request(&mut health, "/-/healthy", true).await.0,
            200,
            "only the metrics path is limited"
        );
        drop(reader);
        wait_until("the permit back", || {
            server.state.metrics.requests_in_flight.get() == 0
        })
        .await;
        let (status, body) = scrape(server.addr).await;
        assert_eq!(status, 200);
        assert!(body.len() > 12 << 20, "{}", body.len());
        server.shutdown().await;
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_response_gives_its_permit_to_a_new_scrape() {
    tokio::time::timeout(WAIT * 3, async {
        let limits = Limits {
            stalled_after: Duration::ZERO,
            ..patient(8)
        };
        let server = Server::start(limits, big_state(1)).await;
        let mut reader = stalled_scrape(&server).await;
        let (status, body) = scrape(server.addr).await;
        assert_eq!(status, 200);
        assert!(body.len() > 12 << 20);
        assert_eq!(server.refused(), 0);
        assert_eq!(server.closed(CloseReason::PressureStalled), 1);
        assert!(closed(&mut reader).await, "the stalled one was closed");
        server.shutdown().await;
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_idle_connections_and_finishes() {
    tokio::time::timeout(WAIT * 3, async {
        let server = Server::start(patient(8), small_state()).await;
        let mut idle = server.connect().await;
        assert_eq!(request(&mut idle, "/-/healthy", false).await.0, 200);
        let conns = server.conns.clone();
        server.shutdown().await;
        assert_eq!(conns.open(), 0);
        assert!(closed(&mut idle).await);
    })
    .await
    .unwrap();
}
