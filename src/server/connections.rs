//! The connection slots, and who is closed to make room when they are all taken.
//!
//! Each open connection holds a [`Slot`] with its [`Conn`]: what it has done so far
//! (its [`Phase`]) and since when, written by the connection's stream and request
//! handler as plain atomics. When a new connection finds every slot taken,
//! [`Connections::admit`] closes the connection that has done the least, in this
//! order ([`Tier`]):
//!
//! 1. one that has sent nothing yet, the oldest first (closed at once; if it is younger
//!    than the unused grace, up to `cap` such get until then to send their first byte,
//!    and one that does is answered, then closed);
//! 2. an idle keep-alive connection, the longest idle first (closed once anything it is
//!    still writing is written: at once when idle);
//! 3. one whose request head is still incomplete, the oldest first (closed at once);
//! 4. one whose response has made no progress for [`Connections::stalled_after`] (the
//!    client stopped reading), the longest stalled first (closed at once).
//!
//! A connection whose request is being handled is never closed to make room: request
//! handling is bounded separately (`--web.max-requests`, [`super::requests`]). When
//! nothing can be closed the new connection waits for a slot, and later ones wait in
//! the listen backlog.
//!
//! A victim is marked before it is told, so it is chosen once; one that a request
//! reached in the moment between being chosen and being told finishes that request.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::metrics::{CloseReason, ServerMetrics};

/// How long [`Connections::admit`] waits for a slot, when nothing could make room, before
/// it looks again (a stalled response becomes closable with time).
const EVICTION_RECHECK: Duration = Duration::from_millis(100);
/// Connections beyond the cap (and the graced ones) that may be open while connections
/// asked to close are still going: a new connection takes its place at once instead of
/// waiting for its victim's task to run (an idle victim still writing a response takes
/// that long).
pub(super) const CLOSING_HEADROOM: usize = 64;

/// What a connection has done so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Phase {
    /// Accepted; not a byte received.
    Unused = 0,
    /// Bytes of a request (or of the TLS handshake) received, the head not complete.
    Reading = 1,
    /// A request is being handled.
    Busy = 2,
    /// A response was handed to hyper and nothing new has arrived since: writing it or
    /// idle (keep-alive).
    Answered = 3,
}

impl Phase {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::Unused,
            1 => Self::Reading,
            2 => Self::Busy,
            _ => Self::Answered,
        }
    }
}

/// What a connection has been asked to do, in rising order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub(super) enum Ask {
    /// Nothing.
    None = 0,
    /// Close once the response in progress is written (at once when idle).
    Graceful = 1,
    /// Close at once (unless a request reached the handler meanwhile: then gracefully).
    Now = 2,
}

impl Ask {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::None,
            1 => Self::Graceful,
            _ => Self::Now,
        }
    }
}

/// Which connections are closed first to make room (lowest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Tier {
    /// Sent nothing yet.
    Unused,
    /// Idle keep-alive.
    Idle,
    /// Request head incomplete.
    Incomplete,
    /// Response stalled.
    Stalled,
}

impl Tier {
    fn reason(self) -> CloseReason {
        match self {
            Self::Unused => CloseReason::PressureUnused,
            Self::Idle => CloseReason::PressureIdle,
            Self::Incomplete => CloseReason::PressureIncomplete,
            Self::Stalled => CloseReason::PressureStalled,
        }
    }

    fn ask(self) -> Ask {
        match self {
            Self::Idle => Ask::Graceful,
            _ => Ask::Now,
        }
    }
}

/// Which timeout of the stream ended a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum TimedOut {
    /// Not timed out.
    No = 0,
    /// Nothing received within the first-byte timeout.
    FirstByte = 1,
    /// No progress within the idle timeout.
    Idle = 2,
}

/// One open connection, as the slot table sees it. Times are nanoseconds since the
/// table's epoch.
#[derive(Debug)]
pub(super) struct Conn {
    epoch: Instant,
    accepted: u64,
    phase: AtomicU8,
    /// When the current phase began.
    since: AtomicU64,
    /// When a read or write last made progress.
    progress: AtomicU64,
    /// The last write (or flush) could not go on: the client is not reading.
    write_blocked: AtomicBool,
    /// Holds a `--web.max-requests` permit.
    holds_permit: AtomicBool,
    ask: AtomicU8,
    asked: Notify,
    timed_out: AtomicU8,
    /// Still in the table.
    open: AtomicBool,
    /// Chosen to close while young and unused: until when it may still send its first
    /// byte (0: no grace).
    grace_until: AtomicU64,
    /// Asked to close at once when its first request had just arrived: that request is
    /// answered (with `Connection: close`) and then it closes.
    answer_then_close: AtomicBool,
}

impl Conn {
    fn new(epoch: Instant) -> Self {
        let now = nanos_since(epoch);
        Self {
            epoch,
            accepted: now,
            phase: AtomicU8::new(Phase::Unused as u8),
            since: AtomicU64::new(now),
            progress: AtomicU64::new(now),
            write_blocked: AtomicBool::new(false),
            holds_permit: AtomicBool::new(false),
            ask: AtomicU8::new(Ask::None as u8),
            asked: Notify::new(),
            timed_out: AtomicU8::new(TimedOut::No as u8),
            open: AtomicBool::new(true),
            grace_until: AtomicU64::new(0),
            answer_then_close: AtomicBool::new(false),
        }
    }

    fn now(&self) -> u64 {
        nanos_since(self.epoch)
    }

    /// The current phase.
    pub(super) fn phase(&self) -> Phase {
        Phase::from_u8(self.phase.load(Ordering::Acquire))
    }

    /// Bytes arrived: a request (or the next one) has begun.
    pub(super) fn received(&self) {
        let now = self.now();
        self.progress.store(now, Ordering::Relaxed);
        for from in [Phase::Unused, Phase::Answered] {
            if self
                .phase
                .compare_exchange(
                    from as u8,
                    Phase::Reading as u8,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                )
                .is_ok()
            {
                self.since.store(now, Ordering::Relaxed);
                return;
            }
        }
    }

    /// A read or write made progress; `write_blocked` says whether a write is now
    /// waiting for the client (None: not a write).
    pub(super) fn progressed(&self, write_blocked: Option<bool>) {
        self.progress.store(self.now(), Ordering::Relaxed);
        if let Some(blocked) = write_blocked {
            self.write_blocked.store(blocked, Ordering::Relaxed);
        }
    }

    /// A write is waiting for the client.
    pub(super) fn write_waiting(&self) {
        self.write_blocked.store(true, Ordering::Relaxed);
    }

    /// The handler got a request.
    pub(super) fn begin_request(&self) {
        self.phase.store(Phase::Busy as u8, Ordering::Release);
    }

    /// The handler answered.
    pub(super) fn end_request(&self) {
        self.since.store(self.now(), Ordering::Relaxed);
        self.phase.store(Phase::Answered as u8, Ordering::Release);
    }

    /// Whether it holds a request permit (set by [`super::requests::Permit`]).
    pub(super) fn set_holds_permit(&self, holds: bool) {
        self.holds_permit.store(holds, Ordering::Relaxed);
    }

    /// What it has been asked to do.
    pub(super) fn ask(&self) -> Ask {
        Ask::from_u8(self.ask.load(Ordering::Acquire))
    }

    /// Completes when the ask rises (each rise wakes one wait).
    pub(super) async fn asked(&self) {
        self.asked.notified().await;
    }

    /// Completes once it has been asked to close at once.
    pub(super) async fn asked_now(&self) {
        while self.ask() < Ask::Now {
            self.asked().await;
        }
    }

    /// How long it may still send its first byte after being chosen to close.
    pub(super) fn grace_left(&self) -> Duration {
        let until = self.grace_until.load(Ordering::Relaxed);
        Duration::from_nanos(until.saturating_sub(self.now()))
    }

    /// Its request had arrived when it was asked to close: answer it, then close.
    pub(super) fn answer_then_close(&self) {
        self.answer_then_close.store(true, Ordering::Relaxed);
    }

    /// Whether it answers one request and then closes.
    pub(super) fn answers_then_closes(&self) -> bool {
        self.answer_then_close.load(Ordering::Relaxed)
    }

    /// Raises the ask to `ask`; what it was.
    fn raise(&self, ask: Ask) -> Ask {
        let before = Ask::from_u8(self.ask.fetch_max(ask as u8, Ordering::AcqRel));
        if before < ask {
            self.asked.notify_one();
        }
        before
    }

    /// Still open, still unused and not asked to close at once.
    fn waiting_unused(&self) -> bool {
        self.open.load(Ordering::Relaxed) && self.phase() == Phase::Unused && self.ask() < Ask::Now
    }

    /// Records which stream timeout fired.
    pub(super) fn set_timed_out(&self, t: TimedOut) {
        self.timed_out.store(t as u8, Ordering::Relaxed);
    }

    /// Which stream timeout fired, if one did.
    pub(super) fn timed_out(&self) -> TimedOut {
        match self.timed_out.load(Ordering::Relaxed) {
            1 => TimedOut::FirstByte,
            2 => TimedOut::Idle,
            _ => TimedOut::No,
        }
    }

    /// Whether its response has waited on the client for `stalled_after` or longer.
    fn stalled(&self, now: u64, stalled_after: u64) -> bool {
        self.write_blocked.load(Ordering::Relaxed)
            && now.saturating_sub(self.progress.load(Ordering::Relaxed)) >= stalled_after
    }

    /// Its place in the eviction order (lower goes first), or None if it is not to be
    /// closed to make room now.
    fn rank(&self, now: u64, stalled_after: u64) -> Option<(Tier, u64)> {
        let ask = self.ask();
        let (tier, at) = match self.phase() {
            Phase::Unused => (Tier::Unused, self.accepted),
            Phase::Reading => (Tier::Incomplete, self.since.load(Ordering::Relaxed)),
            Phase::Busy => return None,
            Phase::Answered if !self.write_blocked.load(Ordering::Relaxed) => {
                (Tier::Idle, self.since.load(Ordering::Relaxed))
            }
            Phase::Answered if self.stalled(now, stalled_after) => {
                (Tier::Stalled, self.progress.load(Ordering::Relaxed))
            }
            Phase::Answered => return None,
        };
        (ask < tier.ask()).then_some((tier, at))
    }
}

fn nanos_since(epoch: Instant) -> u64 {
    u64::try_from(Instant::now().saturating_duration_since(epoch).as_nanos()).unwrap_or(u64::MAX)
}

struct Table {
    /// `cap` live + `cap` graced + [`CLOSING_HEADROOM`] places.
    slots: Vec<Option<Arc<Conn>>>,
    free: Vec<usize>,
    /// Open connections asked to close, not gone yet.
    closing: usize,
    /// Of those, unused ones given a grace to send their first byte.
    graced: usize,
    /// Connections in admission order, for finding the oldest unused one without a scan;
    /// entries that are gone or past [`Phase::Unused`] are dropped when met.
    unused: VecDeque<Arc<Conn>>,
}

impl Table {
    fn open(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Open connections not asked to close.
    fn live(&self) -> usize {
        self.open() - self.closing
    }
}

/// The slot table.
pub(super) struct Connections {
    epoch: Instant,
    /// How long a response waits on the client before it counts as stalled.
    stalled_after: Duration,
    /// How long after accept an unused connection chosen to close may still send.
    unused_grace: Duration,
    cap: usize,
    table: Mutex<Table>,
    freed: Notify,
    metrics: ServerMetrics,
}

impl Connections {
    /// A table of `cap` slots (plus room for connections closing to make room).
    pub(super) fn new(
        cap: usize,
        stalled_after: Duration,
        unused_grace: Duration,
        metrics: ServerMetrics,
    ) -> Self {
        let places = 2 * cap + CLOSING_HEADROOM;
        Self {
            epoch: Instant::now(),
            stalled_after,
            unused_grace,
            cap,
            table: Mutex::new(Table {
                slots: vec![None; places],
                // Popped from the end: slot 0 first.
                free: (0..places).rev().collect(),
                closing: 0,
                graced: 0,
                unused: VecDeque::new(),
            }),
            freed: Notify::new(),
            metrics,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slot if fewer than `cap` connections are open and not closing.
    #[cfg(test)]
    pub(super) fn try_admit(self: &Arc<Self>) -> Option<Slot> {
        self.admit_now(false)
    }

    /// A slot for a new connection, closing another to make room when all are taken
    /// (see the module doc); waits only when nothing can be closed, or when
    /// [`CLOSING_HEADROOM`] connections are still closing.
    pub(super) async fn admit(self: &Arc<Self>) -> Slot {
        loop {
            if let Some(slot) = self.admit_now(true) {
                return slot;
            }
            tracing::debug!("no connection can make room now; waiting for a slot");
            let _ = tokio::time::timeout(EVICTION_RECHECK, self.freed.notified()).await;
        }
    }

    /// A slot at once, if there is one (after closing another, if `evict`).
    fn admit_now(self: &Arc<Self>, evict: bool) -> Option<Slot> {
        let conn = Arc::new(Conn::new(self.epoch));
        let index = {
            let mut table = self.lock();
            if table.free.is_empty() {
                // Every place taken, the headroom by connections still closing.
                return None;
            }
            if evict && table.live() >= self.cap {
                let now = nanos_since(self.epoch);
                let stalled_after = duration_nanos(self.stalled_after);
                self.evict(&mut table, |c| c.rank(now, stalled_after));
            }
            if table.live() >= self.cap {
                return None;
            }
            let index = table.free.pop()?;
            table.slots[index] = Some(conn.clone());
            table.unused.push_back(conn.clone());
            if table.unused.len() > 2 * table.slots.len() {
                table.unused.retain(|c| c.waiting_unused());
            }
            index
        };
        self.metrics.connections_open.inc();
        Some(Slot {
            owner: self.clone(),
            index,
            conn,
        })
    }

    /// Asks the first connection in the eviction order to close; its tier.
    #[cfg(test)]
    pub(super) fn make_room(&self) -> Option<Tier> {
        let now = nanos_since(self.epoch);
        let stalled_after = duration_nanos(self.stalled_after);
        self.evict(&mut self.lock(), |c| c.rank(now, stalled_after))
    }

    /// Asks the longest-stalled connection holding a request permit to close at once;
    /// whether there was one.
    pub(super) fn evict_stalled_request(&self) -> bool {
        let now = nanos_since(self.epoch);
        let stalled_after = duration_nanos(self.stalled_after);
        self.evict(&mut self.lock(), |c| {
            (c.holds_permit.load(Ordering::Relaxed)
                && c.ask() < Ask::Now
                && c.stalled(now, stalled_after))
            .then(|| (Tier::Stalled, c.progress.load(Ordering::Relaxed)))
        })
        .is_some()
    }

    /// Asks the connection that `rank` puts first to close, and counts it. The oldest
    /// unused connection, when `rank` takes those, comes from the admission queue.
    fn evict(
        &self,
        table: &mut Table,
        rank: impl Fn(&Conn) -> Option<(Tier, u64)>,
    ) -> Option<Tier> {
        while let Some(front) = table.unused.front() {
            if front.waiting_unused() {
                break;
            }
            table.unused.pop_front();
        }
        let oldest_unused = table
            .unused
            .front()
            .filter(|c| rank(c).is_some_and(|(tier, _)| tier == Tier::Unused))
            .map(|c| (c.clone(), Tier::Unused));
        let (victim, tier) = match oldest_unused {
            Some(found) => found,
            None => {
                let (conn, (tier, _)) = table
                    .slots
                    .iter()
                    .flatten()
                    .filter_map(|c| rank(c).map(|r| (c, r)))
                    .min_by_key(|(_, r)| *r)?;
                (conn.clone(), tier)
            }
        };
        let now = nanos_since(self.epoch);
        let grace_until = victim.accepted + duration_nanos(self.unused_grace);
        if tier == Tier::Unused && now < grace_until && table.graced < self.cap {
            // Young: it may be a client that has not written its request yet (many
            // connecting at once from a loaded machine take up to a second).
            victim.grace_until.store(grace_until, Ordering::Relaxed);
            table.graced += 1;
        }
        let before = victim.raise(tier.ask());
        if before == Ask::None {
            table.closing += 1;
        }
        if before < tier.ask() {
            self.metrics.closed(tier.reason());
            tracing::debug!(
                reason = tier.reason().label(),
                "closing a connection to make room"
            );
        }
        Some(tier)
    }

    /// Connections open (some may be closing).
    pub(super) fn open(&self) -> usize {
        self.lock().open()
    }

    /// Each open connection's phase, whether its writes wait on the client and whether
    /// it holds a request permit.
    #[cfg(test)]
    pub(super) fn states(&self) -> Vec<(Phase, bool, bool)> {
        self.lock()
            .slots
            .iter()
            .flatten()
            .map(|c| {
                (
                    c.phase(),
                    c.write_blocked.load(Ordering::Relaxed),
                    c.holds_permit.load(Ordering::Relaxed),
                )
            })
            .collect()
    }

    /// Completes when every connection has closed.
    pub(super) async fn drained(&self) {
        loop {
            let freed = self.freed.notified();
            if self.open() == 0 {
                return;
            }
            freed.await;
        }
    }
}

fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A connection's place in the table; frees it when dropped.
pub(super) struct Slot {
    owner: Arc<Connections>,
    index: usize,
    conn: Arc<Conn>,
}

impl Slot {
    /// The connection's shared state.
    pub(super) fn conn(&self) -> &Arc<Conn> {
        &self.conn
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        {
            let mut table = self.owner.lock();
            table.slots[self.index] = None;
            table.free.push(self.index);
            // Under the lock, as `evict` counts it.
            if self.conn.ask() > Ask::None {
                table.closing -= 1;
            }
            if self.conn.grace_until.load(Ordering::Relaxed) != 0 {
                table.graced -= 1;
            }
            self.conn.open.store(false, Ordering::Relaxed);
        }
        self.owner.metrics.connections_open.dec();
        // One waiter at a time: the accept loop, or the drain at shutdown.
        self.owner.freed.notify_one();
    }
}

/// Raises the soft limit on open files to the hard limit, as Go programs do at start
/// (since Go 1.19): with epoll there is no reason to stay at the historical 1024, and
/// the connection cap, not `EMFILE`, should be what bounds connections. Returns the
/// soft limit now in force (`u64::MAX`: unlimited); an error leaves it unchanged.
pub fn raise_open_file_limit() -> io::Result<u64> {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let limit = getrlimit(Resource::Nofile);
        let Some(current) = limit.current else {
            return Ok(u64::MAX);
        };
        if limit.maximum == Some(current) {
            return Ok(current);
        }
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            },
        )?;
        Ok(limit.maximum.unwrap_or(u64::MAX))
    }
    #[cfg(not(unix))]
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "no open-file limit to raise on this platform",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(cap: usize) -> Arc<Connections> {
        Arc::new(Connections::new(
            cap,
            Duration::from_secs(1),
            Duration::ZERO,
            ServerMetrics::default(),
        ))
    }

    fn closed(c: &Connections, reason: CloseReason) -> u64 {
        c.metrics
            .connections_closed
            .get_or_create(&super::super::metrics::ReasonLabels {
                reason: reason.label(),
            })
            .get()
    }

    #[tokio::test(start_paused = true)]
    async fn room_is_made_by_the_connection_that_did_the_least() {
        let conns = table(6);
        let step = || tokio::time::advance(Duration::from_millis(10));
        let mut slots = Vec::new();
        // In order of arrival: busy, incomplete, idle, unused (old), stalled, unused (new).
        for _ in 0..6 {
            slots.push(conns.try_admit().unwrap());
            step().await;
        }
        assert!(conns.try_admit().is_none(), "the table is full");
        let c = |i: usize| slots[i].conn().clone();
        c(0).received();
        c(0).begin_request();
        c(1).received();
        step().await;
        c(2).received();
        c(2).begin_request();
        c(2).end_request();
        c(4).received();
        c(4).begin_request();
        c(4).end_request();
        c(4).write_waiting();
        // Stalled only once it has waited `stalled_after`.
        step().await;
        let mut order: Vec<(usize, Tier)> = Vec::new();
        while let Some(tier) = conns.make_room() {
            let i = (0..6)
                .find(|&i| c(i).ask() > Ask::None && !order.iter().any(|(j, _)| *j == i))
                .expect("the victim was asked");
            order.push((i, tier));
        }
        assert_eq!(
            order,
            [
                (3, Tier::Unused),
                (5, Tier::Unused),
                (2, Tier::Idle),
                (1, Tier::Incomplete)
            ],
            "unused oldest first, then idle, then incomplete; stalled not yet, busy never"
        );
        assert_eq!(
            c(2).ask(),
            Ask::Graceful,
            "an idle connection closes gracefully"
        );
        assert_eq!(c(1).ask(), Ask::Now);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(conns.make_room(), Some(Tier::Stalled));
        assert_eq!(c(4).ask(), Ask::Now);
        assert_eq!(conns.make_room(), None, "only the busy one is left");
        assert_eq!(c(0).ask(), Ask::None);
        assert_eq!(closed(&conns, CloseReason::PressureUnused), 2);
        assert_eq!(closed(&conns, CloseReason::PressureIdle), 1);
        assert_eq!(closed(&conns, CloseReason::PressureIncomplete), 1);
        assert_eq!(closed(&conns, CloseReason::PressureStalled), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn young_unused_victims_get_a_grace_while_there_is_room_for_them() {
        let conns = Arc::new(Connections::new(
            2,
            Duration::from_secs(1),
            Duration::from_secs(1),
            ServerMetrics::default(),
        ));
        let a = conns.admit().await;
        let b = conns.admit().await;
        let c = conns.admit().await;
        assert!(
            a.conn().grace_left() > Duration::from_millis(900),
            "a was young"
        );
        let d = conns.admit().await;
        assert!(b.conn().grace_left() > Duration::ZERO);
        let e = conns.admit().await;
        assert_eq!(
            c.conn().grace_left(),
            Duration::ZERO,
            "as many graced as the cap: c closes at once"
        );
        assert_eq!(c.conn().ask(), Ask::Now);
        drop((a, c));
        tokio::time::advance(Duration::from_secs(2)).await;
        let _f = conns.admit().await;
        assert_eq!(d.conn().ask(), Ask::Now);
        assert_eq!(
            d.conn().grace_left(),
            Duration::ZERO,
            "d had its second of silence already"
        );
        drop((b, d));
        assert_eq!(conns.lock().graced, 0);
        assert_eq!(conns.lock().closing, 0);
        assert_eq!(e.conn().ask(), Ask::None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_request_moves_an_idle_connection_out_of_the_idle_tier() {
        let conns = table(1);
        let slot = conns.try_admit().unwrap();
        let c = slot.conn().clone();
        c.received();
        c.begin_request();
        c.end_request();
        c.received();
        assert_eq!(c.phase(), Phase::Reading, "the next request has begun");
        c.begin_request();
        assert_eq!(
            conns.make_room(),
            None,
            "a request being handled is not closed"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn admit_closes_a_victim_without_waiting_for_it_and_waits_when_none_can_go() {
        let conns = table(1);
        let busy = conns.try_admit().unwrap();
        busy.conn().received();
        busy.conn().begin_request();
        let waiting = tokio::spawn({
            let conns = conns.clone();
            async move { conns.admit().await }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(
            !waiting.is_finished(),
            "a request being answered is not closed"
        );
        drop(busy);
        let unused = tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("a freed slot is taken")
            .unwrap();
        let next = tokio::time::timeout(Duration::from_millis(1), conns.admit())
            .await
            .expect("the unused one makes room at once");
        assert_eq!(unused.conn().ask(), Ask::Now);
        assert_eq!(conns.open(), 2, "the victim may still be closing");
        assert!(
            conns.try_admit().is_none(),
            "the cap counts only those not closing"
        );
        drop(unused);
        assert_eq!(conns.open(), 1);
        drop(next);
        tokio::time::timeout(Duration::from_secs(1), conns.drained())
            .await
            .unwrap();
        assert_eq!(conns.metrics.connections_open.get(), 0);
        assert_eq!(closed(&conns, CloseReason::PressureUnused), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_closing_headroom_bounds_what_is_open() {
        let conns = table(1);
        let places = 2 + CLOSING_HEADROOM;
        let mut victims = Vec::new();
        for _ in 0..places {
            victims.push(conns.admit().await);
        }
        assert_eq!(
            conns.open(),
            places,
            "the cap, as many graced, the headroom"
        );
        let waiting = tokio::spawn({
            let conns = conns.clone();
            async move { conns.admit().await }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(
            !waiting.is_finished(),
            "no place left while the victims close"
        );
        drop(victims.remove(0));
        tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn only_stalled_permit_holders_are_closed_for_a_request() {
        let conns = table(2);
        let a = conns.try_admit().unwrap();
        let b = conns.try_admit().unwrap();
        for s in [&a, &b] {
            s.conn().received();
            s.conn().begin_request();
            s.conn().end_request();
            s.conn().write_waiting();
        }
        a.conn().set_holds_permit(true);
        assert!(
            !conns.evict_stalled_request(),
            "not stalled long enough yet"
        );
        tokio::time::advance(Duration::from_secs(2)).await;
        b.conn().progressed(Some(true));
        assert!(conns.evict_stalled_request());
        assert_eq!(a.conn().ask(), Ask::Now);
        assert_eq!(b.conn().ask(), Ask::None, "b holds no permit");
        assert!(!conns.evict_stalled_request(), "a was already asked");
    }

    #[test]
    fn the_open_file_limit_is_raised_to_the_hard_limit() {
        let n = raise_open_file_limit().expect("the soft limit can be raised to the hard one");
        #[cfg(unix)]
        {
            let now = rustix::process::getrlimit(rustix::process::Resource::Nofile);
            assert_eq!(now.current, now.maximum);
            assert_eq!(now.current.unwrap_or(u64::MAX), n);
        }
    }
}
