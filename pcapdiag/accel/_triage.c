/*
 * pcapdiag._triage: a first pass in C over a classic pcap file that finds the TCP connections
 * nothing can be said about, so that the Python analysis never has to look at their frames.
 *
 * A connection is "plain" when, from its first frame to its last, it is exactly a connection
 * that every rule is silent about: a bare SYN, a SYN-ACK acknowledging it, then segments in
 * both directions carrying only ACK (PSH, FIN) with every sequence number exactly where the
 * sender left off (no retransmission, no gap, no keepalive, no window probe), every ACK moving
 * forward and never past what the peer sent, no zero window, nothing from the server but
 * ACKs until the client has acknowledged the SYN-ACK, no snap-length cut, and an orderly
 * close: both FINs sent and acknowledged, nothing after (or the capture ends while it is
 * open, past the handshake and not idle). Its 4-tuple must then stay unused for the linger time
 * (a new connection on the same ports would be numbered after it) and no ICMP error may quote
 * it. When every rule is blind to them (triage.py decides), two repairs a healthy connection
 * makes are allowed too: retransmitted data that the peer then acknowledges, and keepalive
 * probes that the peer answers (see repair). A connection whose first segment is no SYN (it
 * began before the capture did, as most do on a busy link) is judged the same way from that
 * segment on, on the tracker's terms for such a connection (see midstream). Anything else
 * about a connection, however harmless, makes it "not plain": all its frames go to the Python
 * tracker, which is the only judge of what happened.
 *
 * The pass is conservative by construction: a wrong "not plain" costs time, never a result.
 * When a frame might carry TCP in a way this pass does not decode (GRE, VXLAN, IPv6 extension
 * headers, other link types), the pass gives up (returns None) and Python reads everything.
 * It also gives up when it would have to remember more than MAX_FLOWS port pairs at once,
 * and when the unanswered connection attempts reach the flow table's cap, whose early
 * release depends on every attempt being counted: without failure shapes at once, with
 * them only when it cannot tell which attempt the cap releases (see evict).
 *
 * Failure shapes (see "failure shapes" below): with them, refused connections and lone SYNs
 * are recorded by class, each class's first ones left to Python as exemplars and the rest
 * set aside and counted; the cap on unanswered attempts is then followed here, and Python's
 * table told at which frames it releases one of the attempts it reads.
 *
 * Frame decoding follows pcapdiag/decode/link.py and decode/ip.py exactly in what makes a
 * frame a TCP segment of a given 4-tuple (the numbers and sets they share come from
 * _shared.h, generated from those modules); tests/accel/test_triage.py compares whole
 * reports with and without this pass.
 *
 * Output: a bitmap with bit (n - 1) set for every frame n of a plain connection (and one
 * that also marks the TCP frames of other workers' connections under --jobs), the number of
 * plain connections, and the number of records read. batch() then reads the file in
 * batches of records, runs of the marked ones given as counts, never one by one.
 *
 * A selection of packets (pcapdiag/selection.py: hosts, ports, a span of capture time) is
 * applied here as Python applies it: a frame it leaves out is marked in `unsel` and set
 * aside, neither tracked nor counted toward the flow table's sweeps, as Python drops it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* TCP flags, protocol numbers, the sets the decoder tests and the reader's limits, generated
 * from the Python definitions at build time (pcapdiag/accel/shared.py). */
#include "_shared.h"

/* ST_GONE: released by the flow table's cap on unanswered attempts (see evict): the next
 * packet on its ports starts a new connection, as in the tracker. */
enum { ST_OPEN = 1, ST_CLOSED = 2, ST_BAD = 3, ST_GONE = 4 };
enum { PH_SYN = 0, PH_EST = 1, PH_MID = 2 }; /* PH_MID: seen mid-stream, see midstream() */

#define MAX_FLOW_FRAMES (1u << 22)
#define SWEEP_FRAMES 65536
/* A sweep walks the whole table, and on a busy link the closed connections lingering there
 * are most of it: at most one sweep per 30 s of capture time, so that a capture's sweeps cost
 * in proportion to its length, not to its length times the lingering connections. The table
 * then holds up to 30 s more of them (linger_ns is 120 s). */
#define SWEEP_INTERVAL_NS (30 * 1000000000LL)
#define RELEASE_BYTES (16LL << 20)
/* Ports remembered at once at most (about 200 bytes each): past this the pass gives up and
 * Python's flow table, which releases what it can, reads everything. A refused connection
 * leaves at the next sweep for a Tomb (24 bytes, see Tombs); a lone SYN leaves when the cap
 * releases it. */
#define MAX_FLOWS 1000000

typedef struct Flow {
    uint8_t key[40]; /* the protocol, then the two endpoints (address, port), lower first */
    uint8_t klen;    /* 13 or 37 */
    uint8_t udp;     /* a UDP flow (its instances end after udp_idle_ns of silence) */
    uint8_t status;
    uint8_t phase;
    uint8_t client_low; /* the client (first sender) is the lower endpoint of the key */
    uint8_t attempt;    /* a bare SYN came first and nothing from the other side yet */
    uint8_t shard;      /* the worker of --jobs that owns it (shard.py) */
    uint8_t fin[2];     /* side 0 = client, 1 = server */
    uint8_t fin_acked[2];
    uint8_t client_acked; /* the client has acknowledged the SYN-ACK */
    /* With repairs allowed (see triage()): a side's retransmission the peer has not yet
     * acknowledged past (Python: retx_streak > 0, a `recovered` event still to come), and a
     * side's keepalive probe the peer has not yet answered (keepalive_unanswered > 0). */
    uint8_t retx[2], probe[2];
    /* Seen mid-stream (PH_MID): each side's sequence space is known (the tracker's snd_nxt
     * is set), and it has sent new data the capture saw (bytes_sent > 0). */
    uint8_t known[2], sent[2];
    /* Seen mid-stream: each side has sent a segment the capture saw, and an ACK has covered
     * data the capture never showed (ack-of-unseen-data): with one side never seen, the
     * report counts the connection as captured in one direction (track/flows.py). */
    uint8_t seen[2], acked_unseen;
    uint32_t nxt[2]; /* next sequence number each side should send */
    uint32_t ack[2]; /* last acknowledgement each side sent */
    uint32_t una[2]; /* PH_MID: each side's oldest unacknowledged byte (the tracker's snd_una) */
    uint32_t isn0;
    /* The server's SYN-ACK carried timestamps and its next segment has yet to show whether
     * that SYN-ACK was a SYN cookie's (track/syncookie.py): its TSval and capture time. */
    uint8_t cookie;
    uint32_t synack_tsval;
    int64_t synack_ts;
    int64_t last_ts;
    uint32_t *frames;
    uint32_t nframes, fcap;
    /* Its first SYN, where the file holds it (the IP header and the TCP header's offset from
     * it): read again when the connection takes a failure shape (see refused). */
    const uint8_t *syn_ip;
    uint16_t syn_l4;
    uint32_t shaped; /* 1 + its index in the State's shaped records; 0: none */
    /* An unanswered attempt (attempt set) in the flow table's order of attempts, with the
     * time of its first SYN; `ending`: the tracker may end it at a sweep (see evict). */
    struct Flow *aprev, *anext;
    int64_t first_ts;
    uint8_t ending;
} Flow;

/* -- failure shapes ------------------------------------------------------------------------
 * Three shapes of failing connection make floods, scans and outages: a connection refused
 * at once (a bare SYN, then RST|ACK acknowledging it from the server, nothing else on its
 * ports for the linger time), one an ICMP or ICMPv6 error answered (a bare SYN, then an error
 * quoting it whose kind aborts a connect, nothing else on its ports: see icmp_shape) and a
 * lone SYN (nothing else on its ports until the flow table's cap on unanswered attempts
 * releases it, or the capture ends). Each one's verdict depends only on what its packets
 * carry, their distances in time (its end's included), and the server's address (findings
 * of one server are grouped): everything the tracker reads of a segment but the
 * connection's identity (the client's address and the ports), its ISN and the time it
 * happened. Connections that agree on all of that form a class; the first max_alike of each
 * base class (and a few of each class: see shapes_decide) go to Python as exemplars, which
 * the rules judge as any other connection, and the others are set aside and counted per
 * class: the report's groups count them in with their exemplars' findings (session.py).
 * What Python needs of the counted ones is gathered per class: how many, the first and last
 * time of each of their packets and of their ends, first frames, distinct clients and
 * server ports. */
#define SHAPE_KEY_MAX 192
enum { SH_REFUSED = 1, SH_LONE = 2, SH_ICMP = 3 };
/* How the tracker ends it: closed by the RST, released by the cap, open when the capture
 * ends (flows.FlowTable: "closed", "evicted", "capture-end"). */
enum { END_CLOSED = 1, END_EVICTED = 2, END_CAPTURE = 3 };
typedef struct {
    uint32_t frames[2]; /* the SYN's, the RST's (0: a lone SYN) */
    uint32_t end_frame; /* released by the cap: the frame whose SYN released it */
    int64_t ts, rst_ts, end_ts;
    uint32_t base; /* the class of what its packets carry (shape_class) */
    uint32_t cls;  /* ... and of its times, end included (shapes_decide) */
    uint8_t client[16];
    uint8_t alen, bad; /* bad: not counted (see make_bad); 2 once chosen as an exemplar */
    uint8_t kind, end;
    uint16_t port; /* the server's */
} Shaped;

typedef struct {
    uint8_t key[SHAPE_KEY_MAX];
    uint16_t klen;
    uint64_t hash;
} ShapeClass;

typedef struct {
    ShapeClass *classes;
    size_t nclasses, ccap;
    uint32_t *slots; /* open addressing on the key's hash: class index + 1, 0 empty */
    size_t scap;
} Classes;

/* Refused connections a sweep moved out of the flow table (a Flow is ~200 bytes, an outage
 * holds its refusals for the linger time): their ports by the table's hash of their key,
 * their record (index + 1; 0: an empty slot) and until when the ports used again make it
 * Python's (see refused_named). A hash shared by other ports only makes a record Python's
 * for nothing. */
typedef struct {
    uint64_t hash;
    int64_t until;
    uint32_t rec;
} Tomb;

typedef struct {
    Tomb *slots;
    size_t cap, used;
} Tombs;

typedef struct {
    Shaped *recs;
    size_t n, cap;
    Classes base, full;
    Tombs tombs;
    long long max_alike; /* 0: shapes are not recognised */
    int shared;          /* exemplars chosen over each base class, not each class (choose) */
    int64_t grace_ns;    /* flows.ATTEMPT_GRACE_NS: how long the tracker holds it after */
    /* ... after an ICMP error ended it (the full grace: BSD and macOS send their SYN again
     * after one, flows._ended_early) */
    int64_t icmp_grace_ns;
    /* Where the time from SYN to RST may change what the rules say (accel/timing.py):
     * a class holds times between the same two. */
    const int64_t *bounds;
    size_t nbounds;
    int oom;
} Shapes;

typedef struct {
    uint64_t hash;
    Flow *flow; /* NULL: empty slot */
} Slot;

typedef struct {
    Slot *slots;
    size_t cap; /* power of two */
    size_t used;
} Table;

typedef struct {
    uint8_t *bits;
    size_t nbytes;
    int oom;
} Bitmap;

/* The first SYN or SYN-ACK of each source address, its frame and TTL (track/hosts.py keeps
 * the same table in Python): open addressing on the address, frame 0 marks an empty slot. */
typedef struct {
    uint8_t addr[16];
    uint8_t alen, ttl;
    uint32_t frame;
} Host;

typedef struct {
    Host *slots;
    size_t cap, used; /* cap: a power of two, kept at most half full */
    int overflow;     /* more than MAX_HOSTS distinct hosts: no baseline for any */
    int oom;
} Hosts;

/* Workers of --jobs one pass can plan for. */
#define MAX_SHARDS 64

/* The hosts (each as its length, then the address) and ports a selection keeps (none: any),
 * and its span of capture time, relative bounds taken from the first frame's time. */
typedef struct {
    const uint8_t *hosts;
    size_t nhosts;
    const uint8_t *ports; /* a bitmap of 65,536 bits, or NULL */
    int64_t lo, hi;       /* INT64_MIN, INT64_MAX: open */
    int lo_rel, hi_rel;   /* lo, hi are offsets from the first frame's time */
    int timed, started;
} Selection;

typedef struct {
    Table t;
    Bitmap bm; /* frames of plain connections */
    /* With more than one worker: the frames of every TCP and UDP flow, and for each worker
     * those of the flows it owns (shard.py). */
    Bitmap flows, mine[MAX_SHARDS];
    int shard_n;
    int64_t linger_ns, idle_ns;
    long long plain[MAX_SHARDS], plain_udp[MAX_SHARDS]; /* by worker */
    /* Of the plain connections, by worker: those seen mid-stream (the capture began after
     * them), and of these those whose segments all came from one side. */
    long long plain_mid[MAX_SHARDS], plain_oneway[MAX_SHARDS];
    /* ... and the first frame of each kind (0: none), as the report names one. */
    uint32_t mid_frame[MAX_SHARDS], oneway_frame[MAX_SHARDS];
    int64_t udp_idle_ns;
    /* Unanswered attempts by worker: each worker's flow table has its own cap. */
    long long attempts[MAX_SHARDS], attempts_peak[MAX_SHARDS], max_attempts;
    int give_up;
    int oom;
    int repairs; /* repaired connections count as plain (triage.py: blind_to_plain) */
    int midstream; /* connections seen mid-stream may be plain (triage.py: blind_to_plain) */
    /* No flow can be released before this capture time: sweeps wait for it (a sweep only
     * gives memory back; what it decides is decided the same later, see settle). */
    int64_t sweep_due;
    int64_t last_sweep; /* capture time of the last sweep (see SWEEP_INTERVAL_NS) */
    Hosts hosts;
    Shapes shapes;
    /* An ARP or NDP frame was seen: the tracker's neighbour table (track/neighbours.py)
     * then notes every SYN and its answer, and no SYN may go unseen. */
    int neighbours;
    /* With shapes: the flow table's unanswered attempts, oldest first, as the tracker holds
     * them (flows.FlowTable._attempts), how many, and how many of them `ending`. */
    Flow *ahead, *atail;
    long long acount, aending;
    /* A bare SYN came on ports the pass still held for an earlier connection (other than
     * that attempt's SYN again): the tracker may have started a new connection and attempt
     * with it, which the queue does not follow; a release by the cap after that steps
     * aside. */
    int attempt_doubt;
    /* Releases by the cap: every one, and the frames whose SYN released an attempt that is
     * not a lone SYN (Python reads those: its table is told when, see evict). */
    long long evictions;
    uint32_t *evict_frames;
    size_t nevict, evict_cap;
    Bitmap evict; /* the frames at which Python's table releases its oldest attempt */
    /* A selection of packets (pcapdiag/selection.py): the frames it leaves out are skipped
     * as if the capture had not held them, here and by Python (in `unsel`, which the plan
     * sets aside without counting them toward the flow table's sweeps). */
    Selection sel;
    Bitmap unsel;
    /* Plain flows by service, for the report's health table (findings/services.py): keys
     * made by service_key, their counts at the same index. */
    Classes services;
    long long *service_n;
    size_t service_cap;
} State;

/* A multiply-xorshift hash over 8-byte words (keys are 13 or 37 bytes): much cheaper than
 * a byte-at-a-time hash here. Open addressing takes the low bits: the last shift
 * brings the high bits of the product down. */
static uint64_t hash_key(const uint8_t *k, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ n, w;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, k + i, 8);
        h = (h ^ w) * 0xFF51AFD7ED558CCDULL;
        h ^= h >> 32;
    }
    w = 0;
    memcpy(&w, k + i, n - i);
    h = (h ^ w) * 0xC4CEB9FE1A85EC53ULL;
    return h ^ (h >> 29);
}

static int table_init(Table *t, size_t cap) {
    t->slots = calloc(cap, sizeof(Slot));
    t->cap = cap;
    t->used = 0;
    return t->slots != NULL;
}

/* The slot holding `key`, or the empty slot where it would go. */
static Slot *table_find(Table *t, const uint8_t *key, uint8_t klen, uint64_t h) {
    size_t mask = t->cap - 1;
    size_t i = (size_t)h & mask;
    for (;;) {
        Slot *sl = &t->slots[i];
        if (sl->flow == NULL) return sl;
        if (sl->hash == h && sl->flow->klen == klen && memcmp(sl->flow->key, key, klen) == 0)
            return sl;
        i = (i + 1) & mask;
    }
}

/* Rebuild the table with the flows `keep` says to keep: how flows are released (open
 * addressing, so a rebuild rather than holes). Also grows the table when it fills. */
static int table_rebuild(State *s, int64_t now, int final);

static void bit_set(Bitmap *b, uint32_t frame) {
    size_t byte = (frame - 1) >> 3;
    if (byte >= b->nbytes) {
        size_t n = b->nbytes ? b->nbytes : 4096;
        while (n <= byte) n *= 2;
        uint8_t *p = realloc(b->bits, n);
        if (!p) {
            b->oom = 1;
            return;
        }
        memset(p + b->nbytes, 0, n - b->nbytes);
        b->bits = p;
        b->nbytes = n;
    }
    b->bits[byte] |= (uint8_t)(1u << ((frame - 1) & 7));
}

static void bit_clear(Bitmap *b, uint32_t frame) {
    size_t byte = (frame - 1) >> 3;
    if (byte < b->nbytes) b->bits[byte] &= (uint8_t)~(1u << ((frame - 1) & 7));
}

static void flow_free_frames(Flow *f) {
    free(f->frames);
    f->frames = NULL;
    f->nframes = f->fcap = 0;
}

/* The connection is not plain after all: its frames go back to Python. */
static void make_bad(State *s, Flow *f) {
    if (f->shaped) s->shapes.recs[f->shaped - 1].bad = 1; /* its frames go to Python */
    if (f->status == ST_BAD) return;
    for (uint32_t i = 0; i < f->nframes; i++) bit_clear(&s->bm, f->frames[i]);
    flow_free_frames(f);
    f->status = ST_BAD;
}

static void add_frame(State *s, Flow *f, uint32_t frame) {
    if (f->nframes == f->fcap) {
        if (f->fcap >= MAX_FLOW_FRAMES) {
            make_bad(s, f); /* long connections are left to Python's own steady path */
            return;
        }
        uint32_t n = f->fcap ? f->fcap * 2 : 16;
        uint32_t *p = realloc(f->frames, n * sizeof(uint32_t));
        if (!p) {
            s->oom = 1;
            make_bad(s, f);
            return;
        }
        f->frames = p;
        f->fcap = n;
    }
    f->frames[f->nframes++] = frame;
    bit_set(&s->bm, frame);
}

/* When a flow's fate is sealed at `now`: a closed plain connection once its ports have been
 * quiet for the linger time (with a margin for the grace time), a plain UDP flow after
 * udp_idle. Returns 1 when the flow can leave the table.
 *
 * Ports whose flow was not plain stay in the table, not plain, to the end of the capture:
 * Python may still hold that flow when the next one on the same ports starts, and the first
 * packet of the next one closes it there (with that packet's time); were that packet set
 * aside, Python would close it later, at a sweep or at the end, possibly otherwise. MAX_FLOWS
 * bounds what this keeps. */
/* A plain flow is over: counted (in `counters`, by worker), its frames stay marked.
 * Returns 1. */
static void count_service(State *s, const Flow *f);

static int count_plain(State *s, long long *counters, Flow *f) {
    counters[f->shard]++;
    count_service(s, f);
    flow_free_frames(f);
    return 1;
}

/* A plain TCP connection is over: counted as count_plain does, and as begun before the capture
 * or seen from one side only (the report's capture-quality counts). Returns 1. */
static void first_of(uint32_t *first, const Flow *f) {
    if (f->nframes && (*first == 0 || f->frames[0] < *first)) *first = f->frames[0];
}

static int count_plain_tcp(State *s, Flow *f) {
    if (f->phase == PH_MID) {
        s->plain_mid[f->shard]++;
        first_of(&s->mid_frame[f->shard], f);
        if (f->acked_unseen && !(f->seen[0] && f->seen[1])) {
            s->plain_oneway[f->shard]++;
            first_of(&s->oneway_frame[f->shard], f);
        }
    }
    return count_plain(s, s->plain, f);
}

/* A repair still waiting for the peer's answer: the tracker would end the connection with a
 * retransmission never `recovered` or a keepalive never answered. Not plain. */
static int pending(const Flow *f) {
    return f->retx[0] | f->retx[1] | f->probe[0] | f->probe[1];
}

static int lone(State *s, Flow *f, int end, int64_t end_ts, uint32_t end_frame);

static int settle(State *s, Flow *f, int64_t now, int final) {
    int64_t quiet = now - f->last_ts;
    if (f->status == ST_GONE) return 1; /* released by the cap: its ports are free */
    if (f->udp) {
        /* A UDP flow is over after udp_idle_ns of silence (flows.UDP_IDLE_NS); an ICMP error
         * after that is an orphan for Python too. */
        if (f->status != ST_OPEN) return final; /* kept: see above */
        return (final || quiet > s->udp_idle_ns + 10 * 1000000000LL) &&
               count_plain(s, s->plain_udp, f);
    }
    if (f->status == ST_CLOSED)
        /* A refused connection is no plain one: its record says what becomes of it. */
        return (final || quiet > s->linger_ns + 10 * 1000000000LL) &&
               (f->shaped || count_plain_tcp(s, f));
    if (f->status == ST_OPEN) {
        /* A lone SYN open when the capture ends ends there (not idle: "expired" ends at
         * its last packet, whenever a sweep notices). */
        if (final && s->shapes.max_alike && quiet <= s->idle_ns && f->attempt &&
            lone(s, f, END_CAPTURE, now, 0))
            return 1;
        if (quiet > s->idle_ns || (final && (f->phase == PH_SYN || pending(f)))) {
            make_bad(s, f); /* expired, or a SYN the capture ends on: Python judges */
        } else if (final) {
            /* Past the handshake (or seen mid-stream) and open when the capture ends:
             * plain too. */
            return count_plain_tcp(s, f);
        }
    }
    return final; /* not plain: kept, see above */
}

/* The earliest capture time at which settle could release `f` (a lower bound). */
static int64_t release_bound(const State *s, const Flow *f) {
    if (f->status == ST_CLOSED && f->shaped) return f->last_ts; /* to the tombs: see tomb_put */
    return f->last_ts + (f->udp ? s->udp_idle_ns : s->linger_ns) + 10 * 1000000000LL;
}

/* Keep a refused connection's ports as a Tomb until `until`: returns 0 without memory. The
 * table is rebuilt without the expired ones when it fills. */
static int tomb_put(Tombs *tb, uint64_t hash, int64_t until, uint32_t rec, int64_t now) {
    if (2 * (tb->used + 1) > tb->cap) {
        size_t live = 0;
        for (size_t i = 0; i < tb->cap; i++) live += tb->slots[i].rec && tb->slots[i].until >= now;
        size_t cap = 1024;
        while (cap < 4 * (live + 1)) cap *= 2;
        Tomb *slots = calloc(cap, sizeof(Tomb));
        if (!slots) return 0;
        for (size_t i = 0; i < tb->cap; i++) {
            Tomb *x = &tb->slots[i];
            if (!x->rec || x->until < now) continue;
            size_t j = (size_t)x->hash & (cap - 1);
            while (slots[j].rec) j = (j + 1) & (cap - 1);
            slots[j] = *x;
        }
        free(tb->slots);
        tb->slots = slots;
        tb->cap = cap;
        tb->used = live;
    }
    size_t j = (size_t)hash & (tb->cap - 1);
    while (tb->slots[j].rec) j = (j + 1) & (tb->cap - 1);
    tb->slots[j] = (Tomb){hash, until, rec};
    tb->used++;
    return 1;
}

/* Ports kept as a Tomb past `now` (and not used up): their refused connection is Python's
 * (the tracker may still hold it, numbers a next one after it, or drops a packet as a
 * straggler) and 1 is returned. With `use_up` the Tomb is spent: the flow table holds the
 * ports again. */
static int refused_named(State *s, uint64_t hash, int64_t now, int use_up) {
    Tombs *tb = &s->shapes.tombs;
    if (!tb->used) return 0;
    int hit = 0;
    for (size_t j = (size_t)hash & (tb->cap - 1); tb->slots[j].rec; j = (j + 1) & (tb->cap - 1)) {
        Tomb *x = &tb->slots[j];
        if (x->hash == hash && x->until >= now) {
            s->shapes.recs[x->rec - 1].bad = 1;
            if (use_up) x->until = INT64_MIN;
            hit = 1;
        }
    }
    return hit;
}

static int table_rebuild(State *s, int64_t now, int final) {
    Table *t = &s->t;
    size_t live = 0;
    s->sweep_due = INT64_MAX;
    s->last_sweep = now;
    for (size_t i = 0; i < t->cap; i++) {
        Slot *sl = &t->slots[i];
        Flow *f = sl->flow;
        if (f && !final && f->status == ST_CLOSED && f->shaped &&
            now - f->last_ts <= s->linger_ns + 10 * 1000000000LL) {
            /* A refused connection: its ports kept as a Tomb as long as it would stay here. */
            if (!tomb_put(&s->shapes.tombs, sl->hash, f->last_ts + s->linger_ns + 10 * 1000000000LL,
                          f->shaped, now))
                return 0;
            free(f->frames);
            free(f);
            sl->flow = NULL;
            continue;
        }
        if (sl->flow && settle(s, sl->flow, now, final)) {
            free(sl->flow->frames);
            free(sl->flow);
            sl->flow = NULL;
        }
        if (!sl->flow) continue;
        live++;
        if (sl->flow->status != ST_BAD) {
            int64_t due = release_bound(s, sl->flow);
            if (due < s->sweep_due) s->sweep_due = due;
        }
    }
    if (final) return 1;
    size_t cap = 1024;
    while (cap < live * 4) cap *= 2;
    Table nt;
    if (!table_init(&nt, cap)) return 0;
    for (size_t i = 0; i < t->cap; i++) {
        Slot *sl = &t->slots[i];
        if (!sl->flow) continue;
        *table_find(&nt, sl->flow->key, sl->flow->klen, sl->hash) = *sl;
        nt.used++;
    }
    free(t->slots);
    *t = nt;
    return 1;
}

static inline uint32_t rd16(const uint8_t *p) { return ((uint32_t)p[0] << 8) | p[1]; }
static inline uint32_t rd32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* A selection's tests, as pcapdiag/selection.py makes them (Selection.keeps, TimeWindow):
 * one of the packet's addresses a selected host, one of its ports a selected port, each
 * test only when asked for; the span of capture time, a relative bound taken from the
 * first frame's time. */
static int sel_hosts(const Selection *x, const uint8_t *a, const uint8_t *b, size_t alen) {
    if (!x->nhosts) return 1;
    const uint8_t *h = x->hosts;
    for (size_t i = 0; i < x->nhosts; i++, h += 17)
        if (h[0] == alen && (!memcmp(h + 1, a, alen) || !memcmp(h + 1, b, alen))) return 1;
    return 0;
}

static int sel_flow(const Selection *x, const uint8_t *src, const uint8_t *dst, size_t alen,
                    const uint8_t *ports) {
    uint32_t sport = rd16(ports), dport = rd16(ports + 2);
    if (x->ports && !((x->ports[sport >> 3] >> (sport & 7)) & 1) &&
        !((x->ports[dport >> 3] >> (dport & 7)) & 1))
        return 0;
    return sel_hosts(x, src, dst, alen);
}

static int sel_time(Selection *x, int64_t ts) {
    if (!x->timed) return 1;
    if (!x->started) {
        x->started = 1;
        if (x->lo_rel) x->lo += ts;
        if (x->hi_rel) x->hi += ts;
    }
    return ts >= x->lo && ts <= x->hi;
}

/* The canonical key of (src, sport) <-> (dst, dport); *low is 1 when the sender is the lower. */
static uint8_t make_key(uint8_t *key, uint8_t proto, const uint8_t *src, const uint8_t *dst,
                        size_t alen, uint32_t sport, uint32_t dport, int *sender_low) {
    uint8_t a[18], b[18];
    memcpy(a, src, alen);
    a[alen] = (uint8_t)(sport >> 8);
    a[alen + 1] = (uint8_t)sport;
    memcpy(b, dst, alen);
    b[alen] = (uint8_t)(dport >> 8);
    b[alen + 1] = (uint8_t)dport;
    size_t n = alen + 2;
    int low = memcmp(a, b, n) <= 0;
    key[0] = proto; /* TCP and UDP on the same ports are separate flows, as in flows.py */
    memcpy(key + 1, low ? a : b, n);
    memcpy(key + 1 + n, low ? b : a, n);
    *sender_low = low;
    return (uint8_t)(1 + 2 * n);
}

/* An attempt the tracker may end other than by an answer or the cap (a RST or FIN from the
 * client, a new SYN on its ports, an ICMP error): it then leaves the tracker's attempts at
 * a sweep, whose time this pass does not follow (see evict). */
static void ending(State *s, Flow *f) {
    if (f->attempt && !f->ending) {
        f->ending = 1;
        s->aending++;
    }
}

/* An ICMP error names the flow `f` (NULL: none held) whose key hashes to `h`. */
static void taint(State *s, Flow *f, uint64_t h) {
    if (f) {
        make_bad(s, f);
        ending(s, f); /* an attempt ended by an ICMP error leaves at a sweep */
    }
    /* A refused connection kept as a Tomb, whatever its time (an ICMP error carries none
     * here): the tracker may still hold it. */
    refused_named(s, h, INT64_MIN + 1, 0);
    /* An ICMP error about ports not (or no longer) tracked changes nothing here: Python
     * counts it as an orphan with or without the connection's frames. */
}

/* One TCP segment of the capture. */
/* shard.shard_of for a 4-tuple: (src ^ dst ^ sport ^ dport) mod n, the addresses read as
 * big-endian integers. */
static int shard_of(const uint8_t *src, const uint8_t *dst, size_t alen, uint32_t sport,
                    uint32_t dport, int n) {
    unsigned __int128 x = 0;
    for (size_t i = 0; i < alen; i++) x = (x << 8) | (uint8_t)(src[i] ^ dst[i]);
    x ^= (unsigned __int128)(sport ^ dport);
    return (int)(x % (unsigned __int128)n);
}

/* The slot of a frame's flow (`key`, `klen`, `h`, `low` and `shard` filled in for a new
 * one); the frame is marked as its worker's. The ports are at `ports` (TCP and UDP alike). */
static Slot *lookup(State *s, uint8_t proto, uint32_t frame, const uint8_t *src,
                    const uint8_t *dst, size_t alen, const uint8_t *ports, uint8_t *key,
                    uint8_t *klen, uint64_t *h, int *low, int *shard) {
    uint32_t sport = rd16(ports), dport = rd16(ports + 2);
    *shard = 0;
    if (s->shard_n > 1) {
        *shard = shard_of(src, dst, alen, sport, dport, s->shard_n);
        bit_set(&s->flows, frame);
        bit_set(&s->mine[*shard], frame);
    }
    *klen = make_key(key, proto, src, dst, alen, sport, dport, low);
    *h = hash_key(key, *klen);
    return table_find(&s->t, key, *klen, *h);
}

/* A segment of an established connection whose sequence number is not where its sender left
 * off, taken as plain only when repairs are allowed and it is one of the two repairs a healthy
 * connection makes, as tracker.Connection._on_segment classifies them, in its order (the flag
 * it sets must then be cleared by the peer, see segment):
 * - a keepalive probe (RFC 9293 3.8.4, Linux tcp_xmit_probe_skb): no FIN, at most one byte,
 *   at snd_nxt - 1 when everything sent is acknowledged, before either side's FIN;
 * - a retransmission: data (no FIN) lying wholly below snd_nxt, whether the peer has
 *   acknowledged it already (a spurious retransmission: the ACK was on its way) or not.
 * Anything else (a gap, a partial overlap, a FIN sent again, a probe after a FIN) is not
 * plain. Sequence numbers are compared with snd_nxt as the tracker unwraps them (within
 * 2^31). Returns 1 for a repair (its flag set), 0 otherwise. */
/* The TSval of the first timestamps option in a TCP header captured whole, -1 without one:
 * the options walked as decode/ip.py _tcp_options walks them. */
static long long find_tsval(const uint8_t *tcp) {
    long end = (tcp[12] >> 4) * 4, p = 20;
    while (p < end) {
        uint8_t kind = tcp[p];
        if (kind == 0) break;
        if (kind == 1) {
            p++;
            continue;
        }
        if (p + 2 > end) break;
        long olen = tcp[p + 1];
        if (olen < 2 || p + olen > end) break;
        if (kind == 8 && olen == 10) return (long long)rd32(tcp + p + 2);
        p += olen;
    }
    return -1;
}

/* Whether the server's segment `tcp`, its first after the SYN-ACK, shows that SYN-ACK to be
 * a SYN cookie's: track/syncookie.py lag_ns() and is_cookie_lag(). */
static int cookie_shown(const Flow *f, const uint8_t *tcp, int64_t ts) {
    long long tsv = find_tsval(tcp);
    int64_t elapsed = ts - f->synack_ts;
    if (tsv < 0 || elapsed < 0 || elapsed > (int64_t)COOKIE_SPAN_NS) return 0;
    int64_t lag = (int64_t)(int32_t)((uint32_t)tsv - f->synack_tsval) * 1000000 - elapsed;
    return lag >= (int64_t)COOKIE_MIN_LAG_NS && lag <= (int64_t)COOKIE_MAX_LAG_NS;
}

static int repair(State *s, Flow *f, int side, uint32_t seq, uint32_t flags, long payload) {
    int peer = 1 - side;
    if (!s->repairs || !f->client_acked || (flags & F_FIN)) return 0;
    uint32_t una = f->ack[peer], nxt = f->nxt[side];
    int64_t dq = (int32_t)(seq - nxt);
    if (payload <= 1 && dq == -1 && una == nxt) {
        if (f->fin[0] || f->fin[1]) return 0;
        f->probe[side] = 1;
        return 1;
    }
    if (payload > 0 && dq + payload <= 0) {
        f->retx[side] = 1;
        return 1;
    }
    return 0;
}

/* Both FINs sent and acknowledged: the tracker's connection is finished (both ends CLOSED or
 * TIME_WAIT), plain unless a repair is still unanswered. */
static void closed_or_bad(State *s, Flow *f) {
    if (f->fin_acked[0] && f->fin_acked[1]) {
        if (pending(f)) make_bad(s, f);
        else f->status = ST_CLOSED;
    }
}

/* A segment of a connection seen mid-stream (PH_MID): its first segment carried no SYN, so it
 * began before the capture did. tracker.Connection.from_first_segment starts both ends
 * ESTABLISHED (roles guessed from the ports), learns a side's sequence space from its first
 * segment (snd_una = snd_nxt = seq) or from the peer's first ACK (snd_una = snd_nxt = ack),
 * and never takes the inline path (the window scale is unknown): this follows _on_segment
 * and _on_ack step by step, in their order, for segments carrying ACK (PSH, FIN) and a
 * window, and keeps the connection plain (track/plain.py: MIDSTREAM_*) only while every
 * step gives one of these:
 * - nothing, `data` or `fin`; a bare ACK is not checked against snd_nxt (neither is it there);
 * - the anomaly `ack-of-unseen-data`: an ACK beyond what the peer was seen to send, while
 *   the peer has sent neither data nor FIN in the capture (data sent just before the capture
 *   started); the peer's snd_nxt moves up to it. After that it is capture loss: not plain;
 * - with repairs allowed, `retransmission` (data wholly below snd_nxt, acknowledged before
 *   or not) and `keepalive` (at most one byte at snd_nxt - 1 when everything sent is
 *   acknowledged, before either FIN), each answered later as in repair().
 * A gap after data (previous-segment-not-captured), data part old and part new, a FIN sent
 * again or anything sent after one's own FIN, or more than 2^31 bytes unacknowledged (32-bit
 * arithmetic) make it not plain. */
static void midstream(State *s, Flow *f, int side, uint32_t frame, uint32_t seq, uint32_t ackv,
                      uint32_t flags, long payload) {
    int peer = 1 - side, fin = (flags & F_FIN) != 0;
    f->seen[side] = 1;
    if ((flags & ~(uint32_t)(F_PSH | F_FIN)) != F_ACK || (f->fin[side] && (payload || fin))) {
        make_bad(s, f);
        return;
    }
    if (!f->known[side]) {
        f->known[side] = 1;
        f->una[side] = f->nxt[side] = seq;
    }
    /* _on_ack */
    if (!f->known[peer]) {
        f->known[peer] = 1;
        f->una[peer] = f->nxt[peer] = ackv;
    }
    if ((int32_t)(ackv - f->nxt[peer]) > 0) {
        if (f->sent[peer] || f->fin[peer]) {
            make_bad(s, f);
            return;
        }
        f->nxt[peer] = ackv; /* ack-of-unseen-data */
        f->acked_unseen = 1;
    }
    if ((int64_t)(int32_t)(ackv - f->nxt[peer]) + (int64_t)(f->nxt[peer] - f->una[peer]) > 0) {
        f->una[peer] = ackv;
        f->retx[peer] = 0; /* `recovered` */
        /* Nothing follows a side's FIN (see above): its FIN is acknowledged at snd_nxt. */
        if (f->fin[peer] && ackv == f->nxt[peer]) f->fin_acked[peer] = 1;
    }
    f->probe[peer] = 0; /* `keepalive_ack` */
    /* The payload and FIN, against the sender's snd_nxt. */
    int64_t dq = (int32_t)(seq - f->nxt[side]);
    if (!fin && payload <= 1 && dq == -1 && f->una[side] == f->nxt[side]) {
        if (!s->repairs || f->fin[0] || f->fin[1]) {
            make_bad(s, f);
            return;
        }
        f->probe[side] = 1; /* `keepalive` */
    } else if (payload || fin) {
        if (dq + payload + fin <= 0) {
            if (fin || !s->repairs) {
                make_bad(s, f);
                return;
            }
            f->retx[side] = 1; /* `retransmission` */
        } else if (dq < 0 || (dq > 0 && f->sent[side])) {
            make_bad(s, f);
            return;
        } else {
            f->nxt[side] = seq + (uint32_t)payload + (uint32_t)fin;
            if (payload) f->sent[side] = 1;
            if (fin) f->fin[side] = 1;
        }
    }
    if (f->nxt[side] - f->una[side] >= 0x80000000u || f->nxt[peer] - f->una[peer] >= 0x80000000u) {
        make_bad(s, f);
        return;
    }
    add_frame(s, f, frame);
    closed_or_bad(s, f);
}

static Host *host_slot(Host *slots, size_t cap, const uint8_t *addr, size_t alen) {
    size_t i = (size_t)hash_key(addr, alen) & (cap - 1);
    while (slots[i].frame && (slots[i].alen != alen || memcmp(slots[i].addr, addr, alen)))
        i = (i + 1) & (cap - 1);
    return &slots[i];
}

/* A SYN or SYN-ACK from `addr` (frames come in order: the first one noted stays). */
static void host_note(Hosts *h, uint32_t frame, const uint8_t *addr, size_t alen, uint8_t ttl) {
    if (h->overflow || h->oom) return;
    if (2 * (h->used + 1) > h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 1024;
        Host *slots = calloc(cap, sizeof(Host));
        if (!slots) {
            h->oom = 1;
            return;
        }
        for (size_t i = 0; i < h->cap; i++)
            if (h->slots[i].frame)
                *host_slot(slots, cap, h->slots[i].addr, h->slots[i].alen) = h->slots[i];
        free(h->slots);
        h->slots = slots;
        h->cap = cap;
    }
    Host *sl = host_slot(h->slots, h->cap, addr, alen);
    if (sl->frame) return;
    if (h->used >= MAX_HOSTS) {
        h->overflow = 1;
        return;
    }
    memcpy(sl->addr, addr, alen);
    sl->alen = (uint8_t)alen;
    sl->ttl = ttl;
    sl->frame = frame;
    h->used++;
}

/* The table as {address bytes: (frame, ttl)}, or None when it overflowed. */
static PyObject *hosts_dict(const Hosts *h) {
    if (h->overflow) Py_RETURN_NONE;
    PyObject *d = PyDict_New();
    for (size_t i = 0; d && i < h->cap; i++) {
        const Host *x = &h->slots[i];
        if (!x->frame) continue;
        PyObject *k = PyBytes_FromStringAndSize((const char *)x->addr, x->alen);
        PyObject *v = Py_BuildValue("kI", (unsigned long)x->frame, (unsigned)x->ttl);
        if (!k || !v || PyDict_SetItem(d, k, v) < 0) Py_CLEAR(d);
        Py_XDECREF(k);
        Py_XDECREF(v);
    }
    return d;
}

static void refused(State *s, Flow *f, uint32_t frame, int64_t ts, int64_t syn_ts,
                    const uint8_t *ip, const uint8_t *tcp, size_t alen);

/* The attempts queue (with shapes: see State). */
static void attempt_push(State *s, Flow *f) {
    f->aprev = s->atail;
    f->anext = NULL;
    if (s->atail) s->atail->anext = f;
    else s->ahead = f;
    s->atail = f;
    s->acount++;
}

static void attempt_remove(State *s, Flow *f) {
    if (f->aprev) f->aprev->anext = f->anext;
    else s->ahead = f->anext;
    if (f->anext) f->anext->aprev = f->aprev;
    else s->atail = f->aprev;
    f->aprev = f->anext = NULL;
    s->acount--;
    if (f->ending) s->aending--;
    f->ending = 0;
    f->attempt = 0;
}

static int push_frame(State *s, uint32_t frame) {
    if (s->nevict == s->evict_cap) {
        size_t cap = s->evict_cap ? 2 * s->evict_cap : 1024;
        uint32_t *p = realloc(s->evict_frames, cap * sizeof(uint32_t));
        if (!p) return 0;
        s->evict_frames = p;
        s->evict_cap = cap;
    }
    s->evict_frames[s->nevict++] = frame;
    return 1;
}

/* More unanswered attempts than the tracker holds (flows.FlowTable.max_attempts): the SYN of
 * `frame` at `now` releases the oldest, as the tracker does. Which one that is, and that the
 * tracker holds as many, this pass knows exactly unless an attempt may have left at a sweep
 * (ending, or idle for longer than the tracker holds a connection, which the oldest would
 * be first): then it steps aside. A lone SYN released so is recorded as one (lone); any
 * other attempt is Python's, whose table is told to release its oldest at this frame
 * (Plan.evict: its own cap is off, since it does not see what is counted unseen). */
static void evict(State *s, int64_t now, uint32_t frame) {
    Flow *f = s->ahead;
    if (s->aending || s->attempt_doubt || now - f->first_ts > s->idle_ns) {
        s->give_up = 1;
        return;
    }
    attempt_remove(s, f);
    s->evictions++;
    if (lone(s, f, END_EVICTED, now, frame)) {
        f->status = ST_GONE;
    } else {
        if (!push_frame(s, frame)) s->oom = 1;
        /* The tracker forgets it: the next packet on its ports starts a new connection.
         * The pass keeps it (not plain) to the end: a packet set aside cannot follow. */
        make_bad(s, f);
    }
}

static void segment(State *s, uint32_t frame, int64_t ts, const uint8_t *ip, const uint8_t *src,
                    const uint8_t *dst, size_t alen, const uint8_t *tcp, long payload,
                    int unusual) {
    uint8_t key[40], klen;
    uint64_t h;
    int low, shard;
    Slot *sl = lookup(s, 6, frame, src, dst, alen, tcp, key, &klen, &h, &low, &shard);
    uint32_t seq = rd32(tcp + 4), ackv = rd32(tcp + 8);
    uint32_t flags = tcp[13];
    uint32_t window = rd16(tcp + 14);
    Flow *f = sl->flow;
    int reused = 0;
    if (f && settle(s, f, ts, 0)) {
        /* the ports' past is over: a new connection, in the same slot */
        flow_free_frames(f);
    } else if (!f) {
        reused = refused_named(s, h, ts, 1); /* the new flow is Python's too */
        f = malloc(sizeof(Flow));
        if (!f) {
            s->oom = 1;
            return;
        }
        f->frames = NULL;
        sl->flow = f;
        sl->hash = h;
        s->t.used++;
    } else {
        f = NULL;
    }
    if (f) {
        memset(f, 0, sizeof(*f));
        memcpy(f->key, key, klen);
        f->klen = klen;
        f->client_low = (uint8_t)low;
        f->shard = (uint8_t)shard;
        f->last_ts = ts;
        if (release_bound(s, f) < s->sweep_due) s->sweep_due = release_bound(s, f);
        /* flows.FlowTable counts an attempt for a first segment with SYN and no ACK. */
        if ((flags & F_SYN) && !(flags & F_ACK)) {
            f->attempt = 1;
            f->first_ts = ts;
            f->isn0 = seq;
            if (s->shapes.max_alike) {
                attempt_push(s, f);
                if (s->acount > s->max_attempts) evict(s, ts, frame);
            } else {
                if (++s->attempts[shard] > s->attempts_peak[shard])
                    s->attempts_peak[shard] = s->attempts[shard];
                if (s->attempts_peak[shard] >= s->max_attempts) s->give_up = 1; /* no need to go on */
            }
        }
        if (flags == F_SYN && payload == 0 && window != 0 && !unusual) {
            f->status = ST_OPEN;
            f->phase = PH_SYN;
            f->isn0 = seq;
            f->syn_ip = ip;
            f->syn_l4 = (uint16_t)(tcp - ip);
            add_frame(s, f, frame);
        } else if (s->midstream && !(flags & (F_SYN | F_RST)) && window != 0 && !unusual) {
            /* No SYN first: the connection began before the capture did. */
            f->status = ST_OPEN;
            f->phase = PH_MID;
            midstream(s, f, 0, frame, seq, ackv, flags, payload);
        } else {
            f->status = ST_BAD;
        }
        if (reused) make_bad(s, f); /* after a refused connection: see refused_named */
        if (s->t.used * 2 > s->t.cap && !table_rebuild(s, ts, 0)) s->oom = 1;
        if (s->t.used > MAX_FLOWS) s->give_up = 1; /* Python's flow table bounds memory */
        return;
    }
    f = sl->flow;
    int side = (low == f->client_low) ? 0 : 1;
    if ((flags & F_SYN) && !(flags & F_ACK) && !(f->attempt && side == 0 && seq == f->isn0))
        s->attempt_doubt = 1;
    if (f->attempt && side == 1) {
        if (s->shapes.max_alike) {
            attempt_remove(s, f);
        } else {
            f->attempt = 0;
            s->attempts[f->shard]--;
        }
    } else if (f->attempt && !((flags & ~(uint32_t)F_PSH) == F_SYN && seq == f->isn0)) {
        /* Anything from the client but its SYN again (flows.FlowTable._starts_new_connection:
         * a retransmission keeps the same ISN) may end the attempt at a sweep. */
        ending(s, f);
    }
    int64_t gap = ts - f->last_ts;
    f->last_ts = ts;
    if (f->status == ST_BAD) return;
    if (s->shapes.max_alike && f->status == ST_OPEN && f->phase == PH_SYN && side == 1 &&
        flags == (F_RST | F_ACK) && ackv == f->isn0 + 1 && payload == 0 && !unusual &&
        gap >= 0 && gap <= s->idle_ns) {
        refused(s, f, frame, ts, ts - gap, ip, tcp, alen); /* the SYN came last before */
        return;
    }
    if (f->status == ST_CLOSED || unusual || gap < 0 || gap > s->idle_ns || window == 0) {
        make_bad(s, f);
        return;
    }
    if (f->phase == PH_MID) {
        midstream(s, f, side, frame, seq, ackv, flags, payload);
        return;
    }
    if (f->phase == PH_SYN) {
        if (side == 1 && flags == (F_SYN | F_ACK) && ackv == f->isn0 + 1 && payload == 0) {
            f->phase = PH_EST;
            f->nxt[0] = f->isn0 + 1;
            f->nxt[1] = seq + 1;
            f->ack[0] = seq + 1; /* the client's first ACK may not go below this */
            f->ack[1] = ackv;
            long long tsv = find_tsval(tcp);
            if (tsv >= 0) {
                f->cookie = 1;
                f->synack_tsval = (uint32_t)tsv;
                f->synack_ts = ts;
            }
            add_frame(s, f, frame);
        } else {
            make_bad(s, f);
        }
        return;
    }
    if (side == 1 && f->cookie) {
        /* A cookie's connection is healthy, but a rule tells of it (the tracker's
         * syn_cookie event): Python reads it. */
        f->cookie = 0;
        if (!(flags & F_SYN) && cookie_shown(f, tcp, ts)) {
            make_bad(s, f);
            return;
        }
    }
    int peer = 1 - side;
    /* A server sends data or FIN only once its SYN-ACK is acknowledged (RFC 9293: a
     * connection in SYN-RECEIVED has nothing to send yet): anything else is left to Python. */
    if (side == 1 && !f->client_acked && (payload || (flags & F_FIN))) {
        make_bad(s, f);
        return;
    }
    if ((flags & ~(uint32_t)(F_PSH | F_FIN)) != F_ACK || (int32_t)(ackv - f->ack[side]) < 0 ||
        (int32_t)(f->nxt[peer] - ackv) < 0 || (f->fin[side] && (payload || (flags & F_FIN)))) {
        make_bad(s, f);
        return;
    }
    if (seq != f->nxt[side] && !repair(s, f, side, seq, flags, payload)) {
        make_bad(s, f);
        return;
    }
    /* The tracker's _on_ack: an ACK past the peer's snd_una ends its retransmissions
     * (`recovered`); any ACK answers its keepalive probes (`keepalive_ack`). ack[side] is
     * the peer's snd_una once the client has acknowledged the SYN-ACK, and neither flag is
     * set before that (repair). */
    if (ackv != f->ack[side]) f->retx[peer] = 0;
    f->probe[peer] = 0;
    if (side == 0) f->client_acked = 1;
    if (seq == f->nxt[side]) f->nxt[side] = seq + (uint32_t)payload + ((flags & F_FIN) ? 1u : 0u);
    f->ack[side] = ackv;
    if (flags & F_FIN) f->fin[side] = 1;
    if (f->fin[peer] && ackv == f->nxt[peer]) f->fin_acked[peer] = 1;
    add_frame(s, f, frame);
    closed_or_bad(s, f);
}

/* The one's complement sum of 16-bit words (decode/ip.py checksum_ok). */
static uint32_t sum16(const uint8_t *p, size_t n, uint32_t acc) {
    size_t i = 0;
    for (; i + 1 < n; i += 2) acc += ((uint32_t)p[i] << 8) | p[i + 1];
    if (n & 1) acc += (uint32_t)p[n - 1] << 8;
    return acc;
}

/* Whether the TCP checksum of a segment of `len` bytes at `tcp` is right (checksum_ok). */
static int tcp_checksum_ok(const uint8_t *src, const uint8_t *dst, size_t alen,
                           const uint8_t *tcp, size_t len) {
    uint32_t acc = sum16(src, alen, 0);
    acc = sum16(dst, alen, acc);
    acc += PROTO_TCP + (uint32_t)len;
    acc = sum16(tcp, len, acc);
    while (acc > 0xFFFF) acc = (acc & 0xFFFF) + (acc >> 16);
    return acc == 0xFFFF;
}

/* Append n bytes to a shape key (bounded by SHAPE_KEY_MAX: a longer key is no class). */
static int put(uint8_t *key, size_t *k, const void *p, size_t n) {
    if (*k + n > SHAPE_KEY_MAX) return 0;
    memcpy(key + *k, p, n);
    *k += n;
    return 1;
}

/* What the tracker reads of one segment besides its identity (decode/packets.py Segment:
 * all but frame, time, addresses and ports; the sequence numbers are given by the caller
 * relative to what they relate to). The timestamps option's TSval and TSecr of a SYN are
 * left out: the tracker reads a TSval only from the server's packets (syn cookies). */
static int put_segment(uint8_t *key, size_t *k, const uint8_t *ip, const uint8_t *tcp,
                       size_t alen, int zero_ts) {
    uint8_t head[8];
    size_t thl = (size_t)(tcp[12] >> 4) * 4;
    head[0] = alen == 4 ? ip[8] : ip[7];                  /* TTL, hop limit */
    head[1] = alen == 4 ? (uint8_t)((ip[6] >> 6) & 1) : 2; /* DF, none for IPv6 */
    head[2] = tcp[13];                                     /* flags */
    head[3] = tcp[14], head[4] = tcp[15];                  /* window */
    head[5] = (uint8_t)thl;
    head[6] = alen == 4 && !zero_ts ? ip[4] : 0; /* IPv4 Identification: see refused */
    head[7] = alen == 4 && !zero_ts ? ip[5] : 0;
    if (!put(key, k, head, sizeof head)) return 0;
    uint8_t opts[40];
    memcpy(opts, tcp + 20, thl - 20);
    if (zero_ts) {
        for (size_t p = 0; p < thl - 20;) {
            uint8_t kind = opts[p];
            if (kind == 0) break;
            if (kind == 1) {
                p++;
                continue;
            }
            if (p + 2 > thl - 20 || opts[p + 1] < 2) break;
            if (kind == 8 && opts[p + 1] == 10 && p + 10 <= thl - 20) memset(opts + p + 2, 0, 8);
            p += opts[p + 1];
        }
    }
    return put(key, k, opts, thl - 20);
}

/* The class of a key in `sh` (its index, a new one for a new key), or -1 (no memory). */
static long shape_class(Classes *sh, const uint8_t *key, size_t klen) {
    uint64_t h = hash_key(key, klen);
    if (2 * (sh->nclasses + 1) > sh->scap) {
        size_t cap = sh->scap ? 2 * sh->scap : 256;
        uint32_t *slots = calloc(cap, sizeof(uint32_t));
        if (!slots) return -1;
        for (size_t c = 0; c < sh->nclasses; c++) {
            size_t i = (size_t)sh->classes[c].hash & (cap - 1);
            while (slots[i]) i = (i + 1) & (cap - 1);
            slots[i] = (uint32_t)(c + 1);
        }
        free(sh->slots);
        sh->slots = slots;
        sh->scap = cap;
    }
    size_t i = (size_t)h & (sh->scap - 1);
    for (; sh->slots[i]; i = (i + 1) & (sh->scap - 1)) {
        ShapeClass *c = &sh->classes[sh->slots[i] - 1];
        if (c->hash == h && c->klen == klen && !memcmp(c->key, key, klen))
            return (long)(sh->slots[i] - 1);
    }
    if (sh->nclasses == sh->ccap) {
        size_t cap = sh->ccap ? 2 * sh->ccap : 64;
        ShapeClass *p = realloc(sh->classes, cap * sizeof(ShapeClass));
        if (!p) return -1;
        sh->classes = p;
        sh->ccap = cap;
    }
    ShapeClass *c = &sh->classes[sh->nclasses];
    memcpy(c->key, key, klen);
    c->klen = (uint16_t)klen;
    c->hash = h;
    sh->slots[i] = (uint32_t)(sh->nclasses + 1);
    return (long)sh->nclasses++;
}

/* Plain flows by service (findings/services.py), each worker's apart. The key: the worker,
 * the kind (SVC_*), the address length, then for SVC_GUESS the first sender's endpoint, then
 * the other's (address, then port). A connection with its SYN or a UDP flow names its server
 * (the SYN's or the first datagram's receiver, as the tracker takes it); one seen mid-stream
 * is left for Python to name, by the tracker's own guess from the ports
 * (track/connection.py), so that the guess has one home. */
enum { SVC_SERVER = 0, SVC_GUESS = 1, SVC_UDP = 2 };

static void count_service(State *s, const Flow *f) {
    size_t n = (size_t)(f->klen - 1) / 2, alen = n - 2;
    const uint8_t *lo = f->key + 1, *hi = f->key + 1 + n;
    const uint8_t *first = f->client_low ? lo : hi, *other = f->client_low ? hi : lo;
    uint8_t key[3 + 2 * 18];
    size_t k = 3;
    int guess = !f->udp && f->phase == PH_MID;
    key[0] = f->shard, key[2] = (uint8_t)alen;
    key[1] = (uint8_t)(f->udp ? SVC_UDP : guess ? SVC_GUESS : SVC_SERVER);
    if (guess) {
        memcpy(key + k, first, n);
        k += n;
    }
    memcpy(key + k, other, n);
    k += n;
    long c = shape_class(&s->services, key, k);
    if (c >= 0 && (size_t)c >= s->service_cap) {
        size_t cap = s->service_cap ? 2 * s->service_cap : 256;
        long long *p = realloc(s->service_n, cap * sizeof *p);
        if (p) {
            memset(p + s->service_cap, 0, (cap - s->service_cap) * sizeof *p);
            s->service_n = p;
            s->service_cap = cap;
        } else {
            c = -1;
        }
    }
    if (c < 0) {
        s->oom = 1;
        return;
    }
    s->service_n[c]++;
}

/* Worker k's plain flows by service: [(kind, address, port, first sender's address or
 * None, its port, count)], addresses as bytes. NULL on error. */
static PyObject *services_of(const State *s, int k) {
    PyObject *out = PyList_New(0);
    for (size_t c = 0; out && c < s->services.nclasses; c++) {
        const uint8_t *key = s->services.classes[c].key;
        if (key[0] != k) continue;
        size_t alen = key[2], n = alen + 2;
        const uint8_t *server = key + 3 + (key[1] == SVC_GUESS ? n : 0);
        PyObject *item;
        if (key[1] == SVC_GUESS)
            item = Py_BuildValue("iy#ky#kL", (int)key[1], server, (Py_ssize_t)alen,
                                 (unsigned long)rd16(server + alen), key + 3, (Py_ssize_t)alen,
                                 (unsigned long)rd16(key + 3 + alen), s->service_n[c]);
        else
            item = Py_BuildValue("iy#kOkL", (int)key[1], server, (Py_ssize_t)alen,
                                 (unsigned long)rd16(server + alen), Py_None, 0UL,
                                 s->service_n[c]);
        if (!item || PyList_Append(out, item) < 0) Py_CLEAR(out);
        Py_XDECREF(item);
    }
    return out;
}

/* Whether an address is the tracker's "one host" (track/connection.py same_host: loopback,
 * or both ends at one address): left to Python. */
static int loopback(const uint8_t *a, size_t alen) {
    static const uint8_t one6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    return alen == 4 ? a[0] == 127 : !memcmp(a, one6, 16);
}

/* What a shape's key holds of its SYN and server: the family, the server's address, the SYN
 * as put_segment reads it, whether its checksum is right (offload: decode/ip.py checks a
 * SYN's), its acknowledgement field as sent. 0 (no key) for a loopback or one-address
 * connection (the tracker's "one host": left to Python). */
static int syn_key(uint8_t *key, size_t *k, const Flow *f, size_t alen) {
    const uint8_t *syn_ip = f->syn_ip, *syn_tcp = syn_ip + f->syn_l4;
    const uint8_t *client = alen == 4 ? syn_ip + 12 : syn_ip + 8;
    const uint8_t *server = alen == 4 ? syn_ip + 16 : syn_ip + 24;
    size_t syn_len = (size_t)(syn_tcp[12] >> 4) * 4;
    uint8_t family = (uint8_t)alen;
    uint8_t sum_ok = (uint8_t)tcp_checksum_ok(client, server, alen, syn_tcp, syn_len);
    return !loopback(client, alen) && !loopback(server, alen) && memcmp(client, server, alen) &&
           put(key, k, &family, 1) && put(key, k, server, alen) &&
           put_segment(key, k, syn_ip, syn_tcp, alen, 1) && put(key, k, &sum_ok, 1) &&
           put(key, k, syn_tcp + 8, 4);
}

static int grow_shaped(Shapes *sh);

/* The address length of a flow's endpoints: its key is the protocol, then two (address,
 * port) pairs (make_key). */
static size_t flow_alen(const Flow *f) { return (size_t)(f->klen - 1) / 2 - 2; }

/* A record for connection `f` of base class `key` (its SYN's frame, client and port filled
 * in), the flow's frames cleared and left to the end of the pass; NULL without memory. */
static Shaped *new_shaped(State *s, Flow *f, const uint8_t *key, size_t klen) {
    Shapes *sh = &s->shapes;
    long base = shape_class(&sh->base, key, klen);
    if (base < 0 || (sh->n == sh->cap && !grow_shaped(sh))) return NULL;
    const uint8_t *syn_ip = f->syn_ip;
    size_t alen = flow_alen(f);
    Shaped *r = &sh->recs[sh->n++];
    memset(r, 0, sizeof *r);
    r->frames[0] = f->nframes ? f->frames[0] : 0;
    r->base = (uint32_t)base;
    memcpy(r->client, alen == 4 ? syn_ip + 12 : syn_ip + 8, alen);
    r->alen = (uint8_t)alen;
    r->port = (uint16_t)rd16(syn_ip + f->syn_l4 + 2);
    for (uint32_t i = 0; i < f->nframes; i++) bit_clear(&s->bm, f->frames[i]);
    flow_free_frames(f);
    f->shaped = (uint32_t)sh->n;
    return r;
}

/* A lone SYN (`f`: its bare SYN and nothing since) ends: released by the cap at `end_ts` by
 * the SYN of `end_frame`, or open when the capture ends. Returns 1 when recorded. */
static int lone(State *s, Flow *f, int end, int64_t end_ts, uint32_t end_frame) {
    if (f->status != ST_OPEN || f->phase != PH_SYN || f->nframes != 1 || f->ending) return 0;
    uint8_t key[SHAPE_KEY_MAX];
    size_t k = 0;
    uint8_t kind = SH_LONE;
    Shaped *r = put(key, &k, &kind, 1) && syn_key(key, &k, f, flow_alen(f))
                    ? new_shaped(s, f, key, k)
                    : NULL;
    if (!r) return 0;
    r->kind = SH_LONE;
    r->end = (uint8_t)end;
    r->ts = f->first_ts;
    r->end_ts = end_ts;
    r->end_frame = end_frame;
    f->shaped = 0; /* what happens on its ports from now on is another connection's */
    return 1;
}

static int grow_shaped(Shapes *sh) {
    size_t cap = sh->cap ? 2 * sh->cap : 4096;
    Shaped *p = realloc(sh->recs, cap * sizeof(Shaped));
    if (!p) return 0;
    sh->recs = p;
    sh->cap = cap;
    return 1;
}

/* The server's RST|ACK answered the client's bare SYN (segment checked the rest): the
 * connection is refused, its two frames and its base class recorded, its bits left clear
 * until the end of the pass decides (shapes_decide, which adds its times to its class). The
 * base class: what syn_key holds, the RST as put_segment reads it and its sequence number.
 * The SYN's IPv4 Identification is left out (the tracker compares a side's Identifications
 * only from its second packet on: the client sends one), the RST's is kept (the rst event
 * carries it). */
/* The record of connection `f` (base class `key`, of `kind`) whose SYN at `syn_ts` was
 * answered by frame `frame` at `ts` (a RST or an ICMP error): closed, its end's time left
 * to shapes_decide. NULL without memory (or when the key did not fit: `ok` 0). */
static Shaped *answered(State *s, Flow *f, int ok, const uint8_t *key, size_t klen,
                        uint8_t kind, uint32_t frame, int64_t syn_ts, int64_t ts) {
    Shaped *r = ok ? new_shaped(s, f, key, klen) : NULL;
    if (!r) return NULL;
    r->kind = kind;
    r->end = END_CLOSED;
    r->frames[1] = frame;
    r->ts = syn_ts;
    r->rst_ts = ts;
    f->status = ST_CLOSED;
    return r;
}

static void refused(State *s, Flow *f, uint32_t frame, int64_t ts, int64_t syn_ts,
                    const uint8_t *ip, const uint8_t *tcp, size_t alen) {
    uint8_t key[SHAPE_KEY_MAX];
    size_t k = 0;
    uint8_t kind = SH_REFUSED;
    int ok = put(key, &k, &kind, 1) && syn_key(key, &k, f, alen) &&
             put_segment(key, &k, ip, tcp, alen, 0) && put(key, &k, tcp + 4, 4);
    if (!answered(s, f, ok, key, k, SH_REFUSED, frame, syn_ts, ts)) make_bad(s, f);
}

/* An ICMP or ICMPv6 error message of frame `frame` at `ts`: its header (type, code...), its
 * sender's address, its family (4: ICMP, 6: ICMPv6) and whether its own IP header is one
 * every decoder reads alike (no options, not a fragment, not cut short). */
typedef struct {
    uint32_t frame;
    int64_t ts;
    const uint8_t *header;
    const uint8_t *src;
    int family, simple;
} IcmpMsg;

/* An ICMP or ICMPv6 error answered the client's bare SYN (icmp_shape checked the rest): the
 * connection is answered, as the tracker reads it (Connection.icmp: an error quoting the
 * SYN's own sequence number is accepted, and in SYN_SENT every kind Linux does not ignore
 * aborts the connect), its record made with its base class: what syn_key holds, the error's
 * family, sender, type and code (the icmp_error event's kind, reporter and from_peer; the
 * quoted ports and sequence number are the connection's own). Its attempt leaves the flow
 * table only at a sweep, after its grace: from then on the pass cannot follow the cap on
 * unanswered attempts (evict steps aside). */
static int icmp_answered(State *s, Flow *f, const IcmpMsg *m, size_t alen) {
    uint8_t key[SHAPE_KEY_MAX];
    size_t k = 0;
    uint8_t kind = SH_ICMP, family = (uint8_t)alen;
    int ok = put(key, &k, &kind, 1) && syn_key(key, &k, f, alen) && put(key, &k, &family, 1) &&
             put(key, &k, m->src, alen) && put(key, &k, m->header, 2); /* type, code */
    if (!answered(s, f, ok, key, k, SH_ICMP, m->frame, f->last_ts, m->ts)) return 0;
    f->last_ts = m->ts;
    attempt_remove(s, f);
    s->attempt_doubt = 1;
    if (release_bound(s, f) < s->sweep_due) s->sweep_due = release_bound(s, f);
    return 1;
}

/* Error `m` names the TCP flow `f` (its quoted sender the lower endpoint of the key when
 * `low`), quoting `qavail` bytes of its TCP header at `qtcp` in an IP packet of `alen`-byte
 * addresses. If it answers the client's bare SYN of an attempt, quoting the SYN's own
 * sequence number, in a message of the quote's own family (an ICMPv6 error quoting IPv4,
 * or the reverse, would have its sender and kind read in the other family's terms) whose
 * kind aborts a connect(), the connection is answered by it, its record made and 1
 * returned (see icmp_answered); else 0. */
static int icmp_shape(State *s, Flow *f, int low, const IcmpMsg *m, size_t alen,
                      const uint8_t *qtcp, long qavail) {
    if (!s->shapes.max_alike || !m->simple || qavail < 8 || m->family != (alen == 4 ? 4 : 6) ||
        !ICMP_ABORTS_CONNECT(m->family, m->header[0], m->header[1]))
        return 0;
    if (f->udp || f->status != ST_OPEN || f->phase != PH_SYN || f->nframes != 1 ||
        !f->attempt || f->ending || low != f->client_low || rd32(qtcp + 4) != f->isn0)
        return 0; /* not the client's bare SYN, quoted as sent */
    int64_t gap = m->ts - f->last_ts;
    if (gap < 0 || gap > s->idle_ns) return 0;
    return icmp_answered(s, f, m, alen);
}

/* One UDP datagram (decode_ip._udp: `udp` points at its 8-byte header). A UDP flow is plain
 * when no ICMP error names it: the only rule about UDP needs one. flows.FlowTable starts a
 * new flow on the same ports after more than UDP_IDLE_NS of silence; so does this. */
static void datagram(State *s, uint32_t frame, int64_t ts, const uint8_t *src,
                     const uint8_t *dst, size_t alen, const uint8_t *udp, int unusual) {
    uint8_t key[40], klen;
    uint64_t h;
    int low, shard;
    Slot *sl = lookup(s, 17, frame, src, dst, alen, udp, key, &klen, &h, &low, &shard);
    Flow *f = sl->flow;
    int64_t gap = f ? ts - f->last_ts : 0;
    if (f && gap > s->udp_idle_ns && f->status == ST_OPEN) {
        /* the previous flow on these ports expired: count it, start the next */
        count_plain(s, s->plain_udp, f);
        memset(f, 0, sizeof(*f));
        memcpy(f->key, key, klen);
        f->klen = klen;
        f->udp = 1;
        f->client_low = (uint8_t)low; /* the first sender, as flows.py takes a UDP client */
        f->shard = (uint8_t)shard;
        f->status = ST_OPEN;
    } else if (!f) {
        f = calloc(1, sizeof(Flow));
        if (!f) {
            s->oom = 1;
            return;
        }
        memcpy(f->key, key, klen);
        f->klen = klen;
        f->udp = 1;
        f->client_low = (uint8_t)low;
        f->shard = (uint8_t)shard;
        f->status = ST_OPEN;
        sl->flow = f;
        sl->hash = h;
        s->t.used++;
    }
    f->last_ts = ts;
    if (release_bound(s, f) < s->sweep_due) s->sweep_due = release_bound(s, f);
    if (unusual || gap < 0) make_bad(s, f);
    if (f->status == ST_OPEN) add_frame(s, f, frame);
    if (s->t.used * 2 > s->t.cap && !table_rebuild(s, ts, 0)) s->oom = 1;
    if (s->t.used > MAX_FLOWS) s->give_up = 1;
}

/* Error `m` quotes a datagram of `proto` from `qsrc` to `qdst` (`alen`-byte addresses), its
 * transport header at `ql4` (`qavail` bytes of it, at least the ports): the TCP connection
 * it answers takes a failure shape (icmp_shape), or the flow it names is tainted. */
static void icmp_names(State *s, const IcmpMsg *m, uint8_t proto, const uint8_t *qsrc,
                       const uint8_t *qdst, size_t alen, const uint8_t *ql4, long qavail) {
    uint8_t key[40];
    int low;
    uint8_t klen = make_key(key, proto, qsrc, qdst, alen, rd16(ql4), rd16(ql4 + 2), &low);
    uint64_t h = hash_key(key, klen);
    Flow *f = table_find(&s->t, key, klen, h)->flow;
    if (proto == PROTO_TCP && f && icmp_shape(s, f, low, m, alen, ql4, qavail)) return;
    taint(s, f, h);
}

/* The quoted datagram of error `m` at q (up to end): see icmp_names; or give up when it is
 * quoted in a way decode_ip.quoted_datagram may read and we do not (IPv6 extension
 * headers). */
static void icmp_error(State *s, const uint8_t *d, long q, long end, const IcmpMsg *m) {
    if (end - q < 1) return;
    int version = d[q] >> 4;
    if (version == 4) {
        if (end - q < 20) return;
        long ihl = (d[q] & 0x0F) * 4;
        uint32_t frag = rd16(d + q + 6);
        uint8_t proto = d[q + 9];
        if (ihl < 20 || (frag & 0x1FFF) || (proto != PROTO_TCP && proto != PROTO_UDP)) return;
        long ql4 = q + ihl;
        if (end - ql4 < 4) return;
        icmp_names(s, m, proto, d + q + 12, d + q + 16, 4, d + ql4, end - ql4);
    } else if (version == 6) {
        if (end - q < 40) return;
        uint8_t nh = d[q + 6];
        if (nh == PROTO_TCP || nh == PROTO_UDP) {
            long ql4 = q + 40;
            if (end - ql4 < 4) return;
            icmp_names(s, m, nh, d + q + 8, d + q + 24, 16, d + ql4, end - ql4);
        } else if (IS_IPV6_WALKED_EXT(nh)) {
            s->give_up = 1;
        }
    }
}

/* An ICMP (family 4) or ICMPv6 (6) message at l4 of frame `frame` at `ts`, sent by `src`:
 * only errors quote a datagram. `simple`: see IcmpMsg. */
static void icmp(State *s, const uint8_t *d, long l4, long end, int family, uint32_t frame,
                 int64_t ts, const uint8_t *src, int simple) {
    if (end - l4 < 8) return;
    int type = d[l4];
    if (family == 6 && (type == ND_SOLICIT || type == ND_ADVERT)) s->neighbours = 1;
    int error = family == 4 ? IS_ICMP4_ERROR(type) : IS_ICMP6_ERROR(type);
    IcmpMsg m = {frame, ts, d + l4, src, family, simple};
    if (error) icmp_error(s, d, l4 + 8, end, &m);
}

/* One Ethernet frame (decode.decode_ethernet and what it calls, as far as TCP goes). */
static void ethernet(State *s, uint32_t frame, int64_t ts, const uint8_t *d, long n,
                     int truncated) {
    if (n < 14) return;
    long off = 14;
    uint32_t et = rd16(d + 12);
    while (IS_VLAN_TPID(et)) {
        if (n - off < 4) return;
        et = rd16(d + off + 2);
        off += 4;
    }
    if (et == ETH_ARP) s->neighbours = 1;
    if (et == ETH_IPV4) {
        if (n - off < 20) return;
        const uint8_t *ip = d + off;
        if (ip[0] >> 4 != 4) return;
        long ihl = (ip[0] & 0x0F) * 4;
        if (ihl < 20 || n - off < ihl) return;
        long total = rd16(ip + 2);
        long ip_end;
        int unusual = truncated;
        if (total == 0) {
            ip_end = n;
            unusual = 1;
        } else if (total < ihl) {
            return;
        } else {
            ip_end = off + total;
        }
        uint32_t frag = rd16(ip + 6);
        if (frag & 0x1FFF) return; /* a later fragment: Other for Python too */
        long l4 = off + ihl;
        uint8_t proto = ip[9];
        if (frag & 0x2000) {
            long min = proto == PROTO_TCP                           ? 20
                       : (proto == PROTO_UDP || proto == PROTO_ICMP) ? 8
                                                                     : 0;
            if (ip_end - l4 < min) return;
            unusual = 1;
        }
        if (ihl != 20) unusual = 1;
        if (proto == PROTO_TCP) {
            if (n - l4 < 20) return;
            long thl = (d[l4 + 12] >> 4) * 4;
            if (thl < 20) return;
            long payload = ip_end - l4 - thl;
            if (payload < 0) return;
            if (n - l4 < thl) unusual = 1; /* options cut short by the snap length */
            if (!sel_flow(&s->sel, ip + 12, ip + 16, 4, d + l4)) {
                bit_set(&s->unsel, frame);
                return;
            }
            if (d[l4 + 13] & F_SYN) host_note(&s->hosts, frame, ip + 12, 4, ip[8]);
            segment(s, frame, ts, ip, ip + 12, ip + 16, 4, d + l4, payload, unusual);
        } else if (proto == PROTO_UDP) {
            if (n - l4 < 8 || ip_end - l4 < 8) return; /* Undecodable for Python */
            if (rd16(d + l4 + 2) == VXLAN_PORT) s->give_up = 1; /* Python decapsulates */
            if (!sel_flow(&s->sel, ip + 12, ip + 16, 4, d + l4)) {
                bit_set(&s->unsel, frame);
                return;
            }
            datagram(s, frame, ts, ip + 12, ip + 16, 4, d + l4, unusual);
        } else if (proto == PROTO_ICMP) {
            /* No IP options, not a fragment, not cut short: decoded alike everywhere. */
            int simple = !unusual && ip_end <= n;
            icmp(s, d, l4, ip_end < n ? ip_end : n, 4, frame, ts, ip + 12, simple);
        } else if (proto == PROTO_GRE) {
            s->give_up = 1; /* GRE: Python decapsulates */
        }
    } else if (et == ETH_IPV6) {
        if (n - off < 40) return;
        const uint8_t *ip = d + off;
        if (ip[0] >> 4 != 6) return;
        uint8_t nh = ip[6];
        long plen = rd16(ip + 4);
        long l4 = off + 40;
        long ip_end = plen ? l4 + plen : n;
        int unusual = truncated || plen == 0;
        if (nh == PROTO_TCP) {
            if (n - l4 < 20) return;
            long thl = (d[l4 + 12] >> 4) * 4;
            if (thl < 20) return;
            long payload = ip_end - l4 - thl;
            if (payload < 0) return;
            if (n - l4 < thl) unusual = 1;
            if (!sel_flow(&s->sel, ip + 8, ip + 24, 16, d + l4)) {
                bit_set(&s->unsel, frame);
                return;
            }
            if (d[l4 + 13] & F_SYN) host_note(&s->hosts, frame, ip + 8, 16, ip[7]);
            segment(s, frame, ts, ip, ip + 8, ip + 24, 16, d + l4, payload, unusual);
        } else if (nh == PROTO_UDP) {
            if (n - l4 < 8 || ip_end - l4 < 8) return;
            if (rd16(d + l4 + 2) == VXLAN_PORT) s->give_up = 1;
            if (!sel_flow(&s->sel, ip + 8, ip + 24, 16, d + l4)) {
                bit_set(&s->unsel, frame);
                return;
            }
            datagram(s, frame, ts, ip + 8, ip + 24, 16, d + l4, unusual);
        } else if (nh == PROTO_ICMPV6) {
            icmp(s, d, l4, ip_end < n ? ip_end : n, 6, frame, ts, ip + 8, !unusual && ip_end <= n);
        } else if (nh == PROTO_GRE || IS_IPV6_WALKED_EXT(nh)) {
            s->give_up = 1; /* tunnels and extension headers: Python walks them */
        }
    }
}

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
/* Map the next `size` bytes of the file ahead of reading them, in one call rather than a
 * page fault every few pages (Linux 5.14 and later; a no-op elsewhere). */
static void populate(const uint8_t *buf, long long from, long long size, long long end) {
    long long to = from + size;
    if (to > end) to = end;
    if (to > from) madvise((void *)(buf + from), (size_t)(to - from), MADV_POPULATE_READ);
}

/* Records are read one after the other, but where the next header lies is known only once
 * this one is read: a cache miss per record, which was most of each pass. Asking for every
 * cache line PREFETCH_AHEAD bytes ahead of the reader turns that into a stream. `*frontier`
 * is where the lines asked for so far end. */
#define PREFETCH_AHEAD 8192
static inline void prefetch_ahead(const uint8_t *buf, long long pos, long long end,
                                  long long *frontier) {
    long long to = pos + PREFETCH_AHEAD;
    if (to > end) to = end;
    if (*frontier < pos) *frontier = pos;
    for (; *frontier < to; *frontier += 64) __builtin_prefetch(buf + *frontier);
}

static inline uint32_t rd32e(const uint8_t *p, int big) {
    return big ? rd32(p)
               : ((uint32_t)p[3] << 24) | ((uint32_t)p[2] << 16) | ((uint32_t)p[1] << 8) | p[0];
}

/* The file being read by a pass, and what of it was given back. */
typedef struct {
    const uint8_t *buf;
    long long end;
    int release; /* an mmap: pages read may be given back */
    long long page, released;
} Reading;

/* After each record, in either format: a sweep if one is due, and the pages read given back
 * (as capture.CaptureReader._release does), so that a large file does not count in the
 * resident memory. The buffer is an mmap: its start is page-aligned. */
static inline void after_record(State *s, Reading *rd, long long pos, uint32_t number,
                                int64_t now) {
    if (!(number % SWEEP_FRAMES) && now >= s->sweep_due &&
        now - s->last_sweep >= SWEEP_INTERVAL_NS && !table_rebuild(s, now, 0))
        s->oom = 1;
    if (rd->release && pos - rd->released >= RELEASE_BYTES) {
        long long upto = pos - pos % rd->page;
        madvise((void *)(rd->buf + rd->released), (size_t)(upto - rd->released), MADV_DONTNEED);
        rd->released = upto;
        populate(rd->buf, upto + RELEASE_BYTES, RELEASE_BYTES, rd->end);
    }
}

/* The records of a classic pcap file (capture.CaptureReader._pcap_records): returns how many
 * were read; stops before a damaged one (Python reports the damage). */
static uint32_t walk_pcap(State *s, Reading *rd, int big, int nano, long long max_caplen,
                          int64_t *now) {
    const uint8_t *buf = rd->buf;
    long long end = rd->end, pos = 24, frontier = pos;
    int64_t mul = nano ? 1 : 1000;
    uint32_t number = 0;
    while (end - pos >= 16 && !s->give_up && !s->oom && number < UINT32_MAX - 1) {
        prefetch_ahead(buf, pos, end, &frontier);
        const uint8_t *h = buf + pos;
        uint32_t caplen = rd32e(h + 8, big), orig = rd32e(h + 12, big);
        if (caplen > max_caplen || pos + 16 + (long long)caplen > end) break; /* damage */
        number++;
        *now = (int64_t)rd32e(h, big) * 1000000000LL + (int64_t)rd32e(h + 4, big) * mul;
        if (sel_time(&s->sel, *now)) ethernet(s, number, *now, h + 16, (long)caplen, caplen < orig);
        else bit_set(&s->unsel, number);
        pos += 16 + caplen;
        after_record(s, rd, pos, number, *now);
    }
    if (end - pos >= 16 && number >= UINT32_MAX - 1) s->give_up = 1; /* numbers: 32 bits */
    return number;
}

static inline uint32_t rd16e(const uint8_t *p, int big) {
    return big ? rd16(p) : ((uint32_t)p[1] << 8) | p[0];
}

/* An interface of a pcapng section: its timestamps in ns are units * mul / div + off. */
typedef struct {
    __int128 mul, div, off;
} Iface;

/* The timestamp options of an Interface Description Block, as capture.CaptureReader
 * ._parse_idb reads them (if_tsresol, if_tsoffset); 0 when a value is beyond what this pass
 * computes in 128 bits (Python's integers do: the pass steps aside). */
static int parse_idb(const uint8_t *b, uint32_t blen, int big, Iface *f) {
    f->mul = 1000, f->div = 1, f->off = 0;
    long long p = 16, stop = (long long)blen - 4;
    while (p + 4 <= stop) {
        uint32_t code = rd16e(b + p, big), length = rd16e(b + p + 2, big);
        if (code == 0) break;
        long long value = p + 4;
        if (value + length > stop) break;
        if (code == 9 && length >= 1) {
            uint8_t res = b[value];
            if (res & 0x80) {
                if ((res & 0x7F) > 62) return 0;
                f->mul = 1000000000, f->div = (__int128)1 << (res & 0x7F);
            } else if (res <= 9) {
                f->mul = 1, f->div = 1;
                for (int i = res; i < 9; i++) f->mul *= 10;
            } else {
                if (res - 9 > 18) return 0;
                f->mul = 1, f->div = 1;
                for (int i = 9; i < res; i++) f->div *= 10;
            }
        } else if (code == 14 && length >= 8) {
            uint64_t hi = rd32e(b + value + (big ? 0 : 4), big);
            uint64_t lo = rd32e(b + value + (big ? 4 : 0), big);
            f->off = (__int128)(int64_t)((hi << 32) | lo) * 1000000000;
        }
        p = value + ((length + 3) & ~3u);
    }
    return 1;
}

/* The block at buf + pos, in a section of byte order `big`: 1 with its type and length when its
 * lengths are sound and it lies wholly in the buffer (capture._pcapng_frames's checks), else
 * 0 (damage: the reader reports it). */
static int ng_block(const uint8_t *buf, long long pos, long long end, int big, uint32_t *btype,
                    uint32_t *blen) {
    const uint8_t *b = buf + pos;
    *btype = rd32e(b, big), *blen = rd32e(b + 4, big);
    uint32_t n = *blen;
    return n >= 12 && n % 4 == 0 && n <= MAX_BLOCK && end - pos >= (long long)n &&
           rd32e(b + n - 4, big) == n;
}

/* An Enhanced Packet Block's timestamp in ns on interface `f`: 0 when beyond 64 bits. */
static int epb_time(const uint8_t *b, int big, const Iface *f, int64_t *ts) {
    uint64_t units = ((uint64_t)rd32e(b + 12, big) << 32) | rd32e(b + 16, big);
    __int128 t = (__int128)units * f->mul;
    if (f->div != 1) t /= f->div;
    t += f->off;
    if (t > INT64_MAX || t < INT64_MIN) return 0;
    *ts = (int64_t)t;
    return 1;
}

/* Blocks numbered as frames though they hold no packet (capture._NUMBERED_NON_PACKETS). */
static int numbered_non_packet(uint32_t btype) {
    return btype == 0x00000BADu || btype == 0x40000BADu || btype == 0x00000009u;
}

/* The blocks of a pcapng file (capture.CaptureReader._pcapng_frames), frames numbered as it
 * numbers them: Enhanced Packet Blocks of Ethernet interfaces go to ethernet(). The pass
 * steps aside (give_up) for what it does not read as Python does: an interface of another
 * link type, Simple or obsolete Packet Blocks, a timestamp beyond 64 bits. It stops before a
 * damaged block: Python reports the damage. Returns the frames numbered. */
static uint32_t walk_pcapng(State *s, Reading *rd, long long max_caplen, int64_t *now) {
    const uint8_t *buf = rd->buf;
    long long end = rd->end, pos = 0, frontier = 0;
    uint32_t number = 0;
    int big = 0, nif = 0;
    Iface ifs[MAX_IFACES];
    while (end - pos >= 12 && !s->give_up && !s->oom && number < UINT32_MAX - 1) {
        prefetch_ahead(buf, pos, end, &frontier);
        const uint8_t *b = buf + pos;
        if (rd32(b) == BT_SHB) { /* the same bytes in either order; its magic tells */
            uint32_t bom = rd32(b + 8);
            if (bom == 0x1A2B3C4Du) big = 1;
            else if (bom == 0x4D3C2B1Au) big = 0;
            else break; /* damage */
        }
        uint32_t btype, blen;
        if (!ng_block(buf, pos, end, big, &btype, &blen)) break; /* damage */
        if (btype == BT_EPB) {
            if (blen < 32) break;
            uint32_t ifid = rd32e(b + 8, big), caplen = rd32e(b + 20, big);
            uint32_t orig = rd32e(b + 24, big);
            if (ifid >= (uint32_t)nif || caplen > blen - 32 || caplen > max_caplen) break;
            if (!epb_time(b, big, &ifs[ifid], now)) {
                s->give_up = 1;
                break;
            }
            number++;
            if (sel_time(&s->sel, *now))
                ethernet(s, number, *now, b + 28, (long)caplen, caplen < orig);
            else
                bit_set(&s->unsel, number);
        } else if (btype == BT_IDB) {
            if (blen < 20) break;
            if (rd16e(b + 8, big) != 1 || nif == MAX_IFACES || !parse_idb(b, blen, big, &ifs[nif])) {
                s->give_up = 1; /* not Ethernet, or beyond this pass: Python reads it all */
                break;
            }
            nif++;
        } else if (btype == BT_SHB) {
            if (blen < 28) break;
            if (rd16e(b + 12, big) != 1) break; /* damage: another major version */
            nif = 0; /* interface ids are per section */
        } else if (btype == BT_SPB || btype == BT_PB) {
            s->give_up = 1;
            break;
        } else if (numbered_non_packet(btype)) {
            number++;
        }
        pos += blen;
        after_record(s, rd, pos, number, *now);
    }
    if (end - pos >= 12 && number >= UINT32_MAX - 1) s->give_up = 1;
    return number;
}

/* The byte at i of a bitmap, 0 past its end. */
static inline uint8_t byte_at(const Bitmap *b, size_t i) { return i < b->nbytes ? b->bits[i] : 0; }

/* What worker k of n gets: (skip bits, own bits, plain TCP connections, plain UDP flows).
 * skip: the frames of plain connections and of every other worker's flows; own: those of
 * its own plain connections. */
static PyObject *plan_of(const State *s, int k) {
    size_t n = s->bm.nbytes;
    if (s->shard_n > 1 && s->flows.nbytes > n) n = s->flows.nbytes;
    if (s->unsel.nbytes > n) n = s->unsel.nbytes;
    PyObject *skip = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)n);
    PyObject *own = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)n);
    if (!skip || !own) {
        Py_XDECREF(skip);
        Py_XDECREF(own);
        return NULL;
    }
    uint8_t *sk = (uint8_t *)PyBytes_AS_STRING(skip), *ow = (uint8_t *)PyBytes_AS_STRING(own);
    for (size_t i = 0; i < n; i++) {
        uint8_t plain = byte_at(&s->bm, i), unsel = byte_at(&s->unsel, i);
        if (s->shard_n == 1) {
            sk[i] = (uint8_t)(plain | unsel);
            ow[i] = plain;
        } else {
            uint8_t mine = byte_at(&s->mine[k], i);
            sk[i] = (uint8_t)(plain | unsel | (byte_at(&s->flows, i) & ~mine));
            ow[i] = (uint8_t)(plain & mine);
        }
    }
    PyObject *services = services_of(s, k);
    if (!services) {
        Py_DECREF(skip);
        Py_DECREF(own);
        return NULL;
    }
    return Py_BuildValue("NNLLLLIIN", skip, own, s->plain[k], s->plain_udp[k], s->plain_mid[k],
                         s->plain_oneway[k], s->mid_frame[k], s->oneway_frame[k], services);
}

static void state_free(State *s) {
    for (size_t i = 0; i < s->t.cap; i++) {
        if (s->t.slots[i].flow) {
            free(s->t.slots[i].flow->frames);
            free(s->t.slots[i].flow);
        }
    }
    free(s->t.slots);
    free(s->hosts.slots);
    free(s->shapes.recs);
    free(s->shapes.base.classes);
    free(s->shapes.base.slots);
    free(s->shapes.full.classes);
    free(s->shapes.full.slots);
    free(s->shapes.tombs.slots);
    free(s->services.classes);
    free(s->services.slots);
    free(s->service_n);
    free(s->evict_frames);
    free(s->evict.bits);
    free(s->bm.bits);
    free(s->unsel.bits);
    free(s->flows.bits);
    for (int k = 0; k < MAX_SHARDS; k++) free(s->mine[k].bits);
}

/* -- after the pass: which failing connections are counted ----------------------------- */

static int cmp_shaped(const void *pa, const void *pb) {
    const Shaped *a = pa, *b = pb;
    if (a->base != b->base) return a->base < b->base ? -1 : 1;
    if (a->cls != b->cls) return a->cls < b->cls ? -1 : 1;
    if (a->ts != b->ts) return a->ts < b->ts ? -1 : 1;
    return a->frames[0] < b->frames[0] ? -1 : a->frames[0] > b->frames[0];
}

/* How many of accel/timing.py's boundaries are at or before a time between two of a
 * connection's moments: the rules tell two such times apart only if this differs. */
static int64_t slot_of(const Shapes *sh, int64_t dt) {
    if (dt < 0) return -1;
    size_t lo = 0, hi = sh->nbounds;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (sh->bounds[mid] <= dt) lo = mid + 1;
        else hi = mid;
    }
    return (int64_t)lo;
}

/* A record's full class: its base class, how it ended, and the times between its moments
 * (SYN, RST, end) as slot_of tells them. A refused connection ends, for the tracker, when
 * its grace runs out after the RST if the capture goes on that long (flows.FlowTable
 * ._close_tcp), else with the capture (`end`). -1 without memory. */
static long full_class(State *s, Shaped *r, int64_t end) {
    Shapes *sh = &s->shapes;
    int64_t grace = r->kind == SH_ICMP ? sh->icmp_grace_ns : sh->grace_ns;
    if (r->kind != SH_LONE) r->end_ts = end - r->rst_ts > grace ? r->rst_ts + grace : end;
    int64_t key[5] = {r->base, r->end, slot_of(sh, r->end_ts - r->ts), 0, 0};
    if (r->kind != SH_LONE) {
        key[3] = slot_of(sh, r->rst_ts - r->ts);
        key[4] = slot_of(sh, r->end_ts - r->rst_ts);
    }
    return shape_class(&sh->full, (const uint8_t *)key, sizeof key);
}

/* Whether a record may be counted unseen: nothing made it another shape (port reuse, an
 * ICMP error about it: make_bad). */
static int countable(const Shaped *r) { return r->bad != 1; }

/* With exemplars shared over a base class, each of its classes still has this many of its
 * own (in each order): findings/samples.py checks that they agree. */
#define EXEMPLARS_EACH 2

/* An order of a class's records: by one moment's time (its offset in Shaped), then by one
 * of its frames (0: the SYN's, 1: the RST's). */
typedef struct {
    size_t at;
    int frame;
} Order;

/* The order qsort sorts by (qsort takes no context; qsort_r differs between C libraries). */
static _Thread_local Order sort_order;

static int cmp_order(const void *pa, const void *pb) {
    const Order *o = &sort_order;
    const Shaped *a = *(Shaped *const *)pa, *b = *(Shaped *const *)pb;
    int64_t ta, tb;
    memcpy(&ta, (const uint8_t *)a + o->at, sizeof ta);
    memcpy(&tb, (const uint8_t *)b + o->at, sizeof tb);
    if (ta != tb) return ta < tb ? -1 : 1;
    uint32_t fa = a->frames[o->frame], fb = b->frames[o->frame];
    return fa < fb ? -1 : fa > fb;
}

/* Mark as exemplars (bad = 2) the first `max_alike` of `order` (countable records) in each
 * order a finding's place in the report's list can take: its evidence's first time, the
 * SYN's, the RST's or the end's, then its frames, whose first is the SYN's or (without the
 * SYN) the RST's, the end's being its last packet's (flows.FlowTable._close_tcp). */
static void choose(Shaped **order, size_t n, long long max_alike, int answered) {
    static const size_t at[3] = {offsetof(Shaped, ts), offsetof(Shaped, rst_ts),
                                 offsetof(Shaped, end_ts)};
    for (int m = 0; m < 3; m++) {
        if (m == 1 && !answered) continue;
        for (int k = 0; k < (answered ? 2 : 1); k++) {
            sort_order = (Order){at[m], k};
            qsort(order, n, sizeof(Shaped *), cmp_order);
            for (size_t u = 0; u < n && (long long)u < max_alike; u++) order[u]->bad = 2;
        }
    }
}

/* Distinct client addresses of a class, counted up to `max` (then None for Python). */
typedef struct {
    uint8_t (*addr)[17]; /* length, then the address; length 0: empty */
    size_t cap, n;
    uint32_t *used;
} AddrSet;

static int addr_add(AddrSet *a, const uint8_t *addr, uint8_t alen) {
    size_t i = (size_t)hash_key(addr, alen) & (a->cap - 1);
    for (; a->addr[i][0]; i = (i + 1) & (a->cap - 1))
        if (a->addr[i][0] == alen && !memcmp(a->addr[i] + 1, addr, alen)) return 0;
    a->addr[i][0] = alen;
    memcpy(a->addr[i] + 1, addr, alen);
    a->used[a->n++] = (uint32_t)i;
    return 1;
}

/* The first and last of a moment's times over a class's counted records. */
typedef struct {
    int64_t lo, hi;
} Span;

static void span_add(Span *sp, int64_t t, int first) {
    if (first || t < sp->lo) sp->lo = t;
    if (first || t > sp->hi) sp->hi = t;
}

static PyObject *span_obj(const Span *sp, int any) {
    if (!any) Py_RETURN_NONE;
    return Py_BuildValue("LL", (long long)sp->lo, (long long)sp->hi);
}

/* The first of a class's counted records in one order (moment, frame: see Order): its
 * (time, frame). */
typedef struct {
    int64_t ts;
    uint32_t frame;
} Least;

static void least_add(Least *l, int64_t ts, uint32_t frame, int first) {
    if (first || ts < l->ts || (ts == l->ts && frame < l->frame)) *l = (Least){ts, frame};
}

/* One server port's share of a class: how many, and the spans of their moments. */
typedef struct {
    uint32_t port;
    long long n;
    Span m[3];
} PortShare;

/* What Python is told of one class that counts any: (kind, exemplar SYN frames, count, SYN
 * times, RST times or None, end times, first SYN frame, first RST frame or 0, client
 * addresses or None past max_clients, each server port's share (port, count, its SYN,
 * answer (None for lone SYNs) and end times), least) where `least` holds, for each moment
 * (SYN, RST, end) and frame (SYN's, RST's), the (time, frame) its counted records sort from
 * in that order (None for a RST's without one): Python checks that none of them sorts among
 * the findings a group lists (findings/samples.py). NULL on error. */
static PyObject *class_obj(Shaped *rec, size_t n, AddrSet *set, uint32_t *port_at, int many) {
    PyObject *examples = PyList_New(0), *portlist = PyList_New(0), *clients = NULL;
    PortShare *shares = malloc((n ? n : 1) * sizeof *shares);
    size_t nshares = 0;
    if (!shares) Py_CLEAR(portlist);
    Span syn = {0, 0}, rst = {0, 0}, end = {0, 0};
    uint32_t syn_min = 0, rst_min = 0;
    Least least[3][2];
    memset(least, 0, sizeof least);
    long long seen = 0;
    for (size_t r = 0; examples && portlist && r < n; r++) {
        Shaped *x = &rec[r];
        if (!countable(x)) continue;
        if (x->bad == 2) {
            PyObject *fr = PyLong_FromUnsignedLong(x->frames[0]);
            if (!fr || PyList_Append(examples, fr) < 0) Py_CLEAR(examples);
            Py_XDECREF(fr);
            continue;
        }
        int first = !seen++;
        span_add(&syn, x->ts, first);
        span_add(&rst, x->rst_ts, first);
        span_add(&end, x->end_ts, first);
        if (first || x->frames[0] < syn_min) syn_min = x->frames[0];
        if (first || x->frames[1] < rst_min) rst_min = x->frames[1];
        const int64_t moment[3] = {x->ts, x->rst_ts, x->end_ts};
        for (int m = 0; m < 3; m++)
            for (int k = 0; k < 2; k++) least_add(&least[m][k], moment[m], x->frames[k], first);
        if (!port_at[x->port]) {
            shares[nshares] = (PortShare){x->port, 0, {{0, 0}, {0, 0}, {0, 0}}};
            port_at[x->port] = (uint32_t)++nshares;
        }
        PortShare *share = &shares[port_at[x->port] - 1];
        for (int m = 0; m < 3; m++) span_add(&share->m[m], moment[m], !share->n);
        share->n++;
    }
    for (size_t u = 0; portlist && u < nshares; u++) {
        PortShare *share = &shares[u];
        PyObject *p = Py_BuildValue("kLNNN", (unsigned long)share->port, share->n,
                                    span_obj(&share->m[0], 1),
                                    span_obj(&share->m[1], rec[0].kind != SH_LONE),
                                    span_obj(&share->m[2], 1));
        if (!p || PyList_Append(portlist, p) < 0) Py_CLEAR(portlist);
        Py_XDECREF(p);
    }
    for (size_t u = 0; u < nshares; u++) port_at[shares[u].port] = 0;
    free(shares);
    if (!many) {
        clients = PyList_New((Py_ssize_t)set->n);
        for (size_t u = 0; clients && u < set->n; u++) {
            const uint8_t *a = set->addr[set->used[u]];
            PyObject *b = PyBytes_FromStringAndSize((const char *)a + 1, a[0]);
            if (!b) Py_CLEAR(clients);
            else PyList_SET_ITEM(clients, (Py_ssize_t)u, b);
        }
    } else {
        clients = Py_NewRef(Py_None);
    }
    PyObject *item = NULL;
    int refused = rec[0].kind != SH_LONE; /* answered: by a RST or an ICMP error */
    PyObject *firsts = PyTuple_New(3);
    for (int m = 0; firsts && m < 3; m++) {
        PyObject *by_frame = PyTuple_New(2);
        for (int k = 0; by_frame && k < 2; k++) {
            PyObject *one = (m == 1 || k == 1) && !refused
                                ? Py_NewRef(Py_None)
                                : Py_BuildValue("Lk", (long long)least[m][k].ts,
                                                (unsigned long)least[m][k].frame);
            if (!one) Py_CLEAR(by_frame);
            else PyTuple_SET_ITEM(by_frame, k, one);
        }
        if (!by_frame) Py_CLEAR(firsts);
        else PyTuple_SET_ITEM(firsts, m, by_frame);
    }
    if (examples && portlist && clients && firsts)
        item = Py_BuildValue("iOLNNNkkOOO", (int)rec[0].kind, examples, seen, span_obj(&syn, 1),
                             span_obj(&rst, refused), span_obj(&end, 1), (unsigned long)syn_min,
                             (unsigned long)(refused ? rst_min : 0), clients, portlist, firsts);
    Py_XDECREF(firsts);
    Py_XDECREF(examples);
    Py_XDECREF(portlist);
    Py_XDECREF(clients);
    return item;
}

/* Decide, class by class, which countable records are exemplars (Python judges them) and
 * which are counted, their frames set aside. Shared (the common case): the first max_alike
 * in each order a finding of theirs can be listed in (choose) over all the classes of one
 * base class, which differ only in their times, and the first EXEMPLARS_EACH of each class;
 * the classes of a base class mostly make the same findings (an outage's last refusals,
 * open when the capture ends, are as refused as the others), whose group lists only the
 * first max_alike. Python checks that it was so (findings/samples.py: a group whose list
 * would hold a record counted here makes the analysis run again unshared). Unshared: the
 * first max_alike of each class, which its findings' groups list whatever they are. The
 * frames at which the cap released an attempt Python reads are marked in s->evict. Returns the classes that count any (class_obj) and, in *counted,
 * how many releases by the cap were counted unseen; NULL on error. */
static PyObject *shapes_decide(State *s, int64_t end, long max_clients, long long *counted) {
    Shapes *sh = &s->shapes;
    PyObject *out = PyList_New(0);
    *counted = 0;
    if (!out) return NULL;
    int off = s->neighbours || !sh->max_alike;
    for (size_t i = 0; i < sh->n; i++) {
        Shaped *r = &sh->recs[i];
        long cls = off ? 0 : full_class(s, r, end);
        if (cls < 0) off = 1;
        r->cls = (uint32_t)(cls < 0 ? 0 : cls);
    }
    if (off) {
        /* Nothing counted unseen: every release by the cap is Python's to make. */
        for (size_t i = 0; i < sh->n; i++)
            if (sh->recs[i].end == END_EVICTED && !push_frame(s, sh->recs[i].end_frame))
                s->oom = 1;
        return out;
    }
    qsort(sh->recs, sh->n, sizeof(Shaped), cmp_shaped);
    AddrSet set = {0};
    set.cap = 1;
    while (set.cap < 2 * (size_t)max_clients + 2) set.cap *= 2;
    set.addr = calloc(set.cap, sizeof *set.addr);
    set.used = malloc((size_t)(max_clients + 1) * sizeof(uint32_t));
    uint32_t *ports = calloc(65536, sizeof(uint32_t));
    Shaped **order = malloc((sh->n ? sh->n : 1) * sizeof(Shaped *));
    if (!set.addr || !set.used || !ports || !order) {
        Py_CLEAR(out);
        PyErr_NoMemory();
    }
    for (size_t b = 0; out && sh->shared && b < sh->n;) {
        size_t e = b, n = 0;
        while (e < sh->n && sh->recs[e].base == sh->recs[b].base) e++;
        /* [b, e): one base class, by class then SYN time */
        for (size_t r = b; r < e; r++)
            if (countable(&sh->recs[r])) order[n++] = &sh->recs[r];
        choose(order, n, sh->max_alike, sh->recs[b].kind != SH_LONE);
        b = e;
    }
    for (size_t i = 0; out && i < sh->n;) {
        size_t j = i, n = 0;
        while (j < sh->n && sh->recs[j].cls == sh->recs[i].cls) j++;
        /* [i, j): one class, by SYN time */
        for (size_t r = i; r < j; r++)
            if (countable(&sh->recs[r])) order[n++] = &sh->recs[r];
        choose(order, n, sh->shared ? EXEMPLARS_EACH : sh->max_alike,
               sh->recs[i].kind != SH_LONE);
        long long count = 0;
        int many = 0;
        for (size_t r = i; r < j; r++) {
            Shaped *x = &sh->recs[r];
            if (!countable(x) || x->bad == 2) {
                if (x->end == END_EVICTED && !push_frame(s, x->end_frame)) s->oom = 1;
                continue;
            }
            count++;
            if (x->end == END_EVICTED) ++*counted;
            bit_set(&s->bm, x->frames[0]);
            if (x->frames[1]) bit_set(&s->bm, x->frames[1]);
            if (!many && addr_add(&set, x->client, x->alen) && set.n > (size_t)max_clients)
                many = 1;
        }
        if (count) {
            PyObject *item = class_obj(&sh->recs[i], j - i, &set, ports, many);
            if (!item || PyList_Append(out, item) < 0) Py_CLEAR(out);
            Py_XDECREF(item);
        }
        for (size_t u = 0; u < set.n; u++) set.addr[set.used[u]][0] = 0;
        set.n = 0;
        i = j;
    }
    free(set.addr);
    free(set.used);
    free(ports);
    free(order);
    return out;
}

/* The frames at which Python's table releases its oldest attempt, as a bitmap. */
static int evict_bits(State *s) {
    for (size_t i = 0; i < s->nevict; i++) bit_set(&s->evict, s->evict_frames[i]);
    return !s->evict.oom;
}

/* triage(buffer, pcapng, big_endian, nanosecond, max_caplen, linger_ns, idle_ns, max_attempts,
 *        udp_idle_ns, release, shards, repairs, midstream, max_alike, grace_ns, max_clients,
 *        boundaries, shared, icmp_grace_ns)
 *   -> ([(skip bits, own bits, plain TCP connections, plain UDP flows)] one per worker,
 *       records, {source address: (frame, ttl) of its first SYN or SYN-ACK} or None when
 *       more than MAX_HOSTS, [class_obj of each class counted], evict bits, releases by
 *       the cap counted unseen or -1 when the pass did not follow the cap) or None
 * `pcapng`: the buffer is a pcapng file (walk_pcapng; big_endian and nanosecond are then read
 * from its blocks), else a classic pcap file.
 * `release`: the buffer is a read-only mmap of the file, whose pages may be given back.
 * `shards`: the workers of --jobs (1 for one process), planned for in this one pass: each
 * skips the TCP and UDP frames of the others' flows (see plan_of). `repairs`: a connection
 * whose retransmissions were all acknowledged and whose keepalive probes were all answered
 * may be plain (see repair). `midstream`: a connection whose first segment is no SYN may be
 * plain (see midstream). `max_alike` (0: none), `grace_ns`, `max_clients` and `boundaries`
 * (int64 ns, sorted: accel/timing.py): failure shapes with one worker (see Shapes);
 * `shared`: their exemplars chosen over base classes (see shapes_decide); `icmp_grace_ns`:
 * flows.FlowTable.grace_ns, how long the tracker holds a connection an ICMP error ended. */
static PyObject *triage(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer view, bounds, hosts_sel, ports_sel;
    int pcapng, big, nano, release, shard_n, repairs, midstream, shared, lo_rel, hi_rel, timed;
    long long max_caplen, linger_ns, idle_ns, max_attempts, udp_idle_ns, max_alike, grace_ns,
        icmp_grace_ns, lo, hi;
    long max_clients;
    if (!PyArg_ParseTuple(args, "y*pppLLLLLpippLLly*pLy*y*LLppp", &view, &pcapng, &big, &nano,
                          &max_caplen, &linger_ns, &idle_ns, &max_attempts, &udp_idle_ns,
                          &release, &shard_n, &repairs, &midstream, &max_alike, &grace_ns,
                          &max_clients, &bounds, &shared, &icmp_grace_ns, &hosts_sel,
                          &ports_sel, &lo, &hi, &lo_rel, &hi_rel, &timed))
        return NULL;
    if (bounds.len % (Py_ssize_t)sizeof(int64_t) || hosts_sel.len % 17 ||
        (ports_sel.len && ports_sel.len != 65536 / 8)) {
        PyBuffer_Release(&view);
        PyBuffer_Release(&bounds);
        PyBuffer_Release(&hosts_sel);
        PyBuffer_Release(&ports_sel);
        PyErr_SetString(PyExc_ValueError,
                        "boundaries: 8-byte integers; hosts: 17 bytes each; ports: a bitmap");
        return NULL;
    }
    if (shard_n > MAX_SHARDS) {
        PyBuffer_Release(&view);
        PyBuffer_Release(&bounds);
        PyBuffer_Release(&hosts_sel);
        PyBuffer_Release(&ports_sel);
        Py_RETURN_NONE; /* more workers than one pass plans for: each reads everything */
    }
    State s;
    memset(&s, 0, sizeof(s));
    s.repairs = repairs;
    s.midstream = midstream;
    s.sweep_due = INT64_MAX;
    s.last_sweep = INT64_MIN / 2; /* no sweep yet */
    s.max_attempts = max_attempts;
    s.udp_idle_ns = udp_idle_ns;
    s.shard_n = shard_n < 1 ? 1 : shard_n;
    s.linger_ns = linger_ns;
    s.idle_ns = idle_ns;
    /* Refused connections are counted in one process only (--jobs: each worker reads its
     * own, see session.py). */
    s.shapes.max_alike = s.shard_n == 1 && max_alike > 0 && max_clients > 0 ? max_alike : 0;
    s.shapes.grace_ns = grace_ns;
    s.shapes.shared = shared;
    s.shapes.icmp_grace_ns = icmp_grace_ns;
    s.shapes.bounds = bounds.buf;
    s.shapes.nbounds = (size_t)bounds.len / sizeof(int64_t);
    s.sel = (Selection){hosts_sel.buf, (size_t)hosts_sel.len / 17,
                        ports_sel.len ? ports_sel.buf : NULL, lo, hi, lo_rel, hi_rel, timed, 0};
    if (!table_init(&s.t, 1 << 14)) {
        PyBuffer_Release(&view);
        PyBuffer_Release(&bounds);
        PyBuffer_Release(&hosts_sel);
        PyBuffer_Release(&ports_sel);
        return PyErr_NoMemory();
    }
    const uint8_t *buf = view.buf;
    long long end = view.len;
    int64_t now = 0;
    uint32_t number;
    if (release) populate(buf, 0, RELEASE_BYTES, view.len);
    Py_BEGIN_ALLOW_THREADS
    Reading rd = {buf, end, release, sysconf(_SC_PAGESIZE), 0};
    number = pcapng ? walk_pcapng(&s, &rd, max_caplen, &now)
                    : walk_pcap(&s, &rd, big, nano, max_caplen, &now);
    if (!s.give_up && !s.oom) table_rebuild(&s, now, 1);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    PyBuffer_Release(&bounds);
    PyBuffer_Release(&hosts_sel);
    PyBuffer_Release(&ports_sel);
    int failed = s.give_up || s.oom || s.bm.oom || s.flows.oom || s.hosts.oom || s.unsel.oom;
    for (int k = 0; k < s.shard_n; k++)
        failed |= s.mine[k].oom || (!s.shapes.max_alike && s.attempts_peak[k] >= max_attempts);
    long long counted = 0;
    PyObject *shapes = failed ? NULL : shapes_decide(&s, now, max_clients, &counted);
    failed |= s.bm.oom || s.oom || (shapes && !evict_bits(&s));
    PyObject *evict = failed || !shapes ? NULL
                                        : PyBytes_FromStringAndSize((const char *)s.evict.bits,
                                                                    (Py_ssize_t)s.evict.nbytes);
    PyObject *plans = failed || !shapes ? NULL : PyList_New(s.shard_n);
    for (int k = 0; plans && k < s.shard_n; k++) {
        PyObject *plan = plan_of(&s, k);
        if (!plan) Py_CLEAR(plans);
        else PyList_SET_ITEM(plans, k, plan);
    }
    PyObject *hosts = plans ? hosts_dict(&s.hosts) : NULL;
    if (!hosts || !evict) Py_CLEAR(plans);
    state_free(&s);
    if (failed || !plans) {
        Py_XDECREF(shapes);
        Py_XDECREF(evict);
        Py_XDECREF(hosts);
        if (failed) Py_RETURN_NONE;
        return NULL;
    }
    return Py_BuildValue("NkNNNL", plans, (unsigned long)number, hosts, shapes, evict,
                         (long long)(s.shapes.max_alike ? counted : -1));
}

/* -- the second pass: records read in batches --------------------------------------------- */

static PyObject *new_segment(PyObject *cls, uint32_t number, int64_t ts, int family,
                             const uint8_t *src, const uint8_t *dst, size_t alen, uint32_t ttl,
                             const uint8_t *tcp, long payload, long ip_id, int df,
                             long long ts_val) {
    /* A field added to decode/packets.py's Segment must be filled here too (and in
     * fast_decode.py): the build stops until it is. */
    _Static_assert(SEGMENT_NFIELDS == 18, "Segment's fields changed: fill them in new_segment");
    PyObject *args[SEGMENT_NFIELDS];
    args[SEG_FRAME] = PyLong_FromUnsignedLong(number);
    args[SEG_TS_NS] = PyLong_FromLongLong(ts);
    args[SEG_FAMILY] = PyLong_FromLong(family);
    args[SEG_SRC] = PyBytes_FromStringAndSize((const char *)src, (Py_ssize_t)alen);
    args[SEG_DST] = PyBytes_FromStringAndSize((const char *)dst, (Py_ssize_t)alen);
    args[SEG_TTL] = PyLong_FromUnsignedLong(ttl);
    args[SEG_SPORT] = PyLong_FromUnsignedLong(rd16(tcp));
    args[SEG_DPORT] = PyLong_FromUnsignedLong(rd16(tcp + 2));
    args[SEG_SEQ] = PyLong_FromUnsignedLong(rd32(tcp + 4));
    args[SEG_ACK] = PyLong_FromUnsignedLong(rd32(tcp + 8));
    args[SEG_FLAGS] = PyLong_FromUnsignedLong(tcp[13]);
    args[SEG_WINDOW] = PyLong_FromUnsignedLong(rd16(tcp + 14));
    args[SEG_PAYLOAD_LEN] = PyLong_FromLong(payload);
    args[SEG_OPTIONS] = Py_None; /* borrowed: the tracker reads options only from SYNs */
    args[SEG_BAD_CHECKSUM] = Py_False; /* borrowed: checked on SYNs only, never seen here */
    args[SEG_IP_ID] = PyLong_FromLong(ip_id); /* IPv4 Identification, -1 for IPv6 */
    args[SEG_DF] = df ? Py_True : Py_False;   /* borrowed */
    args[SEG_TS_VAL] = PyLong_FromLongLong(ts_val);
    PyObject *seg = NULL;
    int ok = 1;
    for (int i = 0; i < SEGMENT_NFIELDS; i++) ok &= args[i] != NULL;
    if (ok) seg = PyObject_Vectorcall(cls, args, SEGMENT_NFIELDS, NULL);
    for (int i = 0; i < SEGMENT_NFIELDS; i++) {
        if (i != SEG_OPTIONS && i != SEG_BAD_CHECKSUM && i != SEG_DF) Py_XDECREF(args[i]);
    }
    return seg;
}

/* The TSval of a TCP header whose options start with NOP, NOP, timestamps (RFC 7323 appendix
 * A), -1 without options; -2 for options in another layout or a timestamps option not
 * captured whole (the general decoder reads none from a cut one): those go
 * to the general decoder (decode_fast.ethernet_segment does the same). `avail`: bytes
 * captured from the TCP header on. */
static long long common_ts(const uint8_t *tcp, long thl, long avail) {
    if (thl == 20) return -1;
    if (thl < 32 || avail < 32 || rd32(tcp + 20) != 0x0101080Au) return -2;
    return (long long)rd32(tcp + 24);
}

/* decode_fast.ethernet_segment in C: the Segment of an Ethernet frame of the common kind
 * (at most one 802.1Q tag, IPv4 without options or IPv6 without extension headers, TCP,
 * not a SYN nor a RST with options, options only in the common layout, not a fragment),
 * Py_None when the frame is of another kind, NULL on error. */
static PyObject *fast_segment(PyObject *cls, const uint8_t *d, long n, uint32_t number,
                              int64_t ts) {
    long off = (n > 18 && rd16(d + 12) == ETH_8021Q) ? 4 : 0;
    if (n <= 14 + off) Py_RETURN_NONE;
    const uint8_t *e = d + off;
    if (rd16(e + 12) == ETH_IPV4 && n >= 54 + off) {
        long total = rd16(e + 16), thl = (e[46] >> 4) * 4;
        uint32_t frag = rd16(e + 20);
        /* A RST with options goes to the general decoder, which reads them (the tracker
         * wants to know whether it carries timestamps). */
        int rst = e[47] & F_RST;
        if (e[14] == 0x45 && e[23] == PROTO_TCP && !(frag & 0x3FFF) && total >= 40 &&
            thl >= 20 && total - 20 >= thl && !(e[47] & F_SYN) && (!rst || thl == 20)) {
            long long tsv = common_ts(e + 34, thl, n - off - 34);
            if (tsv == -2) Py_RETURN_NONE;
            return new_segment(cls, number, ts, 4, e + 26, e + 30, 4, e[22], e + 34,
                               total - 20 - thl, (long)rd16(e + 18), (frag & 0x4000) != 0,
                               tsv);
        }
    } else if (rd16(e + 12) == ETH_IPV6 && n >= 74 + off) {
        long plen = rd16(e + 18), thl = (e[66] >> 4) * 4;
        if ((e[14] >> 4) == 6 && e[20] == PROTO_TCP && plen >= thl && thl >= 20 &&
            !(e[67] & F_SYN) && (!(e[67] & F_RST) || thl == 20)) {
            long long tsv = common_ts(e + 54, thl, n - off - 54);
            if (tsv == -2) Py_RETURN_NONE;
            return new_segment(cls, number, ts, 6, e + 22, e + 38, 16, e[21], e + 54,
                               plen - thl, -1, 0, tsv);
        }
    }
    Py_RETURN_NONE;
}

/* What one call of batch() or ng_batch() gathers: the items, and the timestamps of the
 * skipped records of this worker's own plain connections. */
typedef struct {
    PyObject *items, *cls;
    const uint8_t *skip, *own, *evict;
    long long nskip, nown, nevict;
    int ethernet; /* frames of the common kind become Segments (fast_segment) */
    int64_t *ts_buf;
    size_t ts_len, ts_cap;
    long long run_count, run_index; /* an open run of skipped records (count < 0: none) */
    int64_t first, last;
    int any; /* a record was read (first and last are set) */
    int failed;
} Gather;

static void gather_close_run(Gather *g) {
    if (g->failed || g->run_count < 0) return;
    PyObject *run = Py_BuildValue("LL", g->run_count, g->run_index);
    g->failed = run == NULL || PyList_Append(g->items, run) < 0;
    Py_XDECREF(run);
    g->run_count = -1;
}

/* After record i (0-based) at `ts`: where the plan says the flow table's cap released its
 * oldest attempt here (Plan.evict), the run so far is closed and a marker (ts,) follows. */
static void gather_evict(Gather *g, long long i, int64_t ts) {
    if (g->failed || i >= g->nevict || !((g->evict[i >> 3] >> (i & 7)) & 1)) return;
    gather_close_run(g);
    PyObject *mark = g->failed ? NULL : Py_BuildValue("(L)", (long long)ts);
    g->failed = mark == NULL || PyList_Append(g->items, mark) < 0;
    Py_XDECREF(mark);
}

static void gather_one(Gather *g, const uint8_t *buf, long long start, uint32_t caplen,
                       long long number, int64_t ts, uint32_t orig);

/* Record `number` (1-based), its bytes at buf[start:start + caplen]. */
static void gather_record(Gather *g, const uint8_t *buf, long long start, uint32_t caplen,
                          long long number, int64_t ts, uint32_t orig) {
    gather_one(g, buf, start, caplen, number, ts, orig);
    gather_evict(g, number - 1, ts);
}

static void gather_one(Gather *g, const uint8_t *buf, long long start, uint32_t caplen,
                       long long number, int64_t ts, uint32_t orig) {
    if (!g->any) g->first = ts;
    g->any = 1;
    g->last = ts;
    long long i = number - 1;
    if (i < g->nskip && ((g->skip[i >> 3] >> (i & 7)) & 1)) {
        if (g->run_count < 0) {
            g->run_count = 0;
            g->run_index = (long long)g->ts_len;
        }
        if (i < g->nown && ((g->own[i >> 3] >> (i & 7)) & 1)) {
            if (g->ts_len == g->ts_cap) {
                size_t c = g->ts_cap ? g->ts_cap * 2 : 1024;
                int64_t *p = realloc(g->ts_buf, c * sizeof(int64_t));
                if (!p) {
                    PyErr_NoMemory();
                    g->failed = 1;
                    return;
                }
                g->ts_buf = p;
                g->ts_cap = c;
            }
            g->ts_buf[g->ts_len++] = ts;
            g->run_count++;
        }
        return;
    }
    gather_close_run(g);
    if (g->failed) return;
    PyObject *item = g->ethernet
                         ? fast_segment(g->cls, buf + start, (long)caplen, (uint32_t)number, ts)
                         : Py_NewRef(Py_None);
    if (item == Py_None) {
        Py_DECREF(item);
        item = Py_BuildValue("LLLLk", start, start + (long long)caplen, number, (long long)ts,
                             (unsigned long)orig);
    }
    g->failed = item == NULL || PyList_Append(g->items, item) < 0;
    Py_XDECREF(item);
}

/* The call's result: (items, own_ts, pos, number, first_ts, last_ts), or NULL on error;
 * first_ts and last_ts are None when no record was read. */
static PyObject *gather_result(Gather *g, long long pos, long long number) {
    gather_close_run(g);
    PyObject *stamps =
        g->failed ? NULL
                  : PyBytes_FromStringAndSize((const char *)g->ts_buf,
                                              (Py_ssize_t)(g->ts_len * sizeof(int64_t)));
    free(g->ts_buf);
    if (g->failed || stamps == NULL) {
        Py_XDECREF(g->items);
        Py_XDECREF(stamps);
        return NULL;
    }
    if (!g->any) return Py_BuildValue("NNLLOO", g->items, stamps, pos, number, Py_None, Py_None);
    return Py_BuildValue("NNLLLL", g->items, stamps, pos, number, (long long)g->first,
                         (long long)g->last);
}

static void gather_init(Gather *g, PyObject *cls, Py_buffer *sk, Py_buffer *ow, Py_buffer *ev,
                        int ethernet) {
    memset(g, 0, sizeof(*g));
    g->items = PyList_New(0);
    g->failed = g->items == NULL;
    g->cls = cls;
    g->skip = sk->buf, g->own = ow->buf;
    g->nskip = (long long)sk->len * 8, g->nown = (long long)ow->len * 8;
    g->evict = ev->buf, g->nevict = (long long)ev->len * 8;
    g->ethernet = ethernet;
    g->run_count = -1;
}

/* batch(buffer, pos, big_endian, nanosecond, skip, own, evict, number, max_records, max_caplen,
 *       ethernet, Segment)
 *   -> (items, own_ts, pos, number, first_ts, last_ts)
 * Reads up to max_records records from `pos` (capture.CaptureReader._pcap_records does the
 * same one record at a time) and gives, in order, one item per record or run of records:
 * a Segment (the fast path of decode_fast, when `ethernet`), a tuple (start, stop, number,
 * ts_ns, orig_len) for a record Python decodes, or a pair (count, index) for a run of
 * records marked in `skip`, `count` of them marked in `own`, whose timestamps are own_ts
 * (int64, native order) from `index`; after a record marked in `evict`, a 1-tuple (ts_ns,):
 * the flow table's cap releases its oldest attempt there (see evict). Stops before a record that is cut short or too long:
 * Python reads that one and reports the damage. first_ts and last_ts are those of the first
 * and last records read (None if none). */
static PyObject *batch(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer view, sk, ow, ev;
    long long pos, number, max_records, max_caplen;
    int big, nano, ethernet;
    PyObject *cls;
    if (!PyArg_ParseTuple(args, "y*Lppy*y*y*LLLpO", &view, &pos, &big, &nano, &sk, &ow, &ev,
                          &number, &max_records, &max_caplen, &ethernet, &cls))
        return NULL;
    const uint8_t *buf = view.buf;
    long long end = view.len;
    int64_t mul = nano ? 1 : 1000;
    /* The reader gives only an mmap of the whole file (page-aligned at 0): map what this
     * batch is likely to read in one call (see populate). */
    long long page = sysconf(_SC_PAGESIZE);
    populate(buf, pos - pos % page, 4LL << 20, end);
    Gather g;
    gather_init(&g, cls, &sk, &ow, &ev, ethernet);
    long long read = 0, frontier = pos;
    while (!g.failed && read < max_records && end - pos >= 16) {
        prefetch_ahead(buf, pos, end, &frontier);
        const uint8_t *h = buf + pos;
        uint32_t caplen = rd32e(h + 8, big);
        if (caplen > max_caplen || pos + 16 + (long long)caplen > end) break;
        int64_t ts = (int64_t)rd32e(h, big) * 1000000000LL + (int64_t)rd32e(h + 4, big) * mul;
        number++;
        read++;
        gather_record(&g, buf, pos + 16, caplen, number, ts, rd32e(h + 12, big));
        pos += 16 + caplen;
    }
    PyBuffer_Release(&view);
    PyBuffer_Release(&sk);
    PyBuffer_Release(&ow);
    PyBuffer_Release(&ev);
    return gather_result(&g, pos, number);
}

/* ng_batch(buffer, pos, big_endian, skip, own, evict, number, max_blocks, max_caplen, interfaces,
 *          Segment)
 *   -> (items, own_ts, pos, number, first_ts, last_ts)
 * batch() for a pcapng file, from `pos` in a section of the given byte order whose
 * interfaces (all Ethernet: the first pass planned only such files) have timestamps
 * units * mul // div + off, `interfaces` a sequence of (mul, div, off). Reads Enhanced Packet
 * Blocks and the blocks that change nothing for the reader (capture._pcapng_frames numbers
 * some of them as frames), and stops before any other block (a section or interface header,
 * another kind of packet block) and before anything damaged: the reader takes that block
 * itself, so that its state and its damage reports stay its own. */
static PyObject *ng_batch(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer view, sk, ow, ev;
    long long pos, number, max_blocks, max_caplen;
    int big;
    PyObject *ifaces, *cls;
    if (!PyArg_ParseTuple(args, "y*Lpy*y*y*LLLOO", &view, &pos, &big, &sk, &ow, &ev, &number,
                          &max_blocks, &max_caplen, &ifaces, &cls))
        return NULL;
    Iface ifs[MAX_IFACES];
    Py_ssize_t nif = PySequence_Size(ifaces);
    if (nif < 0 || nif > MAX_IFACES) {
        PyBuffer_Release(&view);
        PyBuffer_Release(&sk);
        PyBuffer_Release(&ow);
        PyBuffer_Release(&ev);
        if (nif >= 0) PyErr_SetString(PyExc_ValueError, "too many interfaces");
        return NULL;
    }
    for (Py_ssize_t k = 0; k < nif; k++) {
        long long m, d, o;
        PyObject *it = PySequence_GetItem(ifaces, k);
        int ok = it && PyArg_ParseTuple(it, "LLL", &m, &d, &o);
        Py_XDECREF(it);
        if (!ok || d < 1) {
            PyBuffer_Release(&view);
            PyBuffer_Release(&sk);
            PyBuffer_Release(&ow);
            PyBuffer_Release(&ev);
            if (ok) PyErr_SetString(PyExc_ValueError, "bad interface");
            return NULL;
        }
        ifs[k].mul = m, ifs[k].div = d, ifs[k].off = o;
    }
    const uint8_t *buf = view.buf;
    long long end = view.len;
    long long page = sysconf(_SC_PAGESIZE);
    populate(buf, pos - pos % page, 4LL << 20, end);
    Gather g;
    gather_init(&g, cls, &sk, &ow, &ev, 1);
    long long read = 0, frontier = pos;
    while (!g.failed && read < max_blocks && end - pos >= 12) {
        prefetch_ahead(buf, pos, end, &frontier);
        const uint8_t *b = buf + pos;
        if (rd32(b) == BT_SHB) break; /* the reader's */
        uint32_t btype, blen;
        if (!ng_block(buf, pos, end, big, &btype, &blen)) break; /* damage: the reader's */
        if (btype == BT_EPB) {
            if (blen < 32) break;
            uint32_t ifid = rd32e(b + 8, big), caplen = rd32e(b + 20, big);
            int64_t ts;
            if (ifid >= (uint32_t)nif || caplen > blen - 32 || caplen > max_caplen ||
                !epb_time(b, big, &ifs[ifid], &ts))
                break; /* the reader's */
            number++;
            gather_record(&g, buf, pos + 28, caplen, number, ts, rd32e(b + 24, big));
        } else if (btype == BT_IDB || btype == BT_SPB || btype == BT_PB) {
            break; /* the reader's */
        } else if (numbered_non_packet(btype)) {
            number++;
        }
        read++;
        pos += blen;
    }
    PyBuffer_Release(&view);
    PyBuffer_Release(&sk);
    PyBuffer_Release(&ow);
    PyBuffer_Release(&ev);
    return gather_result(&g, pos, number);
}

static PyMethodDef methods[] = {
    {"triage", triage, METH_VARARGS, "Find the plain TCP connections of a pcap buffer."},
    {"batch", batch, METH_VARARGS, "Read a batch of records: Segments, raw records, skipped runs."},
    {"ng_batch", ng_batch, METH_VARARGS, "batch() for the packet blocks of a pcapng section."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_triage", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__triage(void) {
    PyObject *m = PyModule_Create(&module);
    /* Which Python definitions this module was built from (accel/shared.py): the first pass
     * runs only when they are still the ones in force. */
    if (m != NULL && PyModule_AddStringConstant(m, "SHARED_DIGEST", SHARED_DIGEST) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
