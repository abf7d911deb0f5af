// Package store writes matches to DynamoDB. Its Writer is the stream worker's Sink: a bounded
// queue in front of BatchWriteItem, with back-pressure when the queue is full, retries with
// backoff for throttling and unprocessed items, and an account of every item it accepted.
package store

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/streammatch/streammatch/stream"
)

// The Writer is the stream worker's Sink.
var _ stream.Sink = (*Writer)(nil)

// maxBatchSize is BatchWriteItem's limit of put requests per call.
const maxBatchSize = 25

// Defaults for the zero values of Config.
const (
	defaultFlushInterval = time.Second
	defaultQueueSize     = 2000
	defaultMaxRetryTime  = 2 * time.Minute
	defaultDrainTimeout  = 8 * time.Second
)

// Reasons an item failed, the keys of Stats.FailedByReason.
const (
	// ReasonThrottled: DynamoDB kept throttling the table or returning the item unprocessed
	// for longer than Config.MaxRetryTime.
	ReasonThrottled = "throttled"
	// ReasonUnavailable: DynamoDB kept answering with 5xx errors for longer than MaxRetryTime.
	ReasonUnavailable = "unavailable"
	// ReasonUnreachable: no answer from DynamoDB (network errors, timeouts, no credentials)
	// for longer than MaxRetryTime.
	ReasonUnreachable = "unreachable"
	// ReasonInvalidItem: DynamoDB rejected this one item (ValidationException on PutItem).
	ReasonInvalidItem = "invalid_item"
	// ReasonAccessDenied: the credentials may not write to the table (check the task role).
	ReasonAccessDenied = "access_denied"
	// ReasonTableNotFound: the table does not exist in this region and account.
	ReasonTableNotFound = "table_not_found"
	// ReasonRejected: any other client error, which a retry would not fix.
	ReasonRejected = "rejected"
	// ReasonShutdownDeadline: the item was still queued or being retried when
	// Config.DrainTimeout ran out after shutdown began.
	ReasonShutdownDeadline = "shutdown_deadline"
)

// ErrClosed is returned by Write once Run has stopped accepting matches (its ctx ended).
var ErrClosed = errors.New("store writer stopped accepting matches")

// Config tunes a Writer. Zero values take the defaults given on each field.
type Config struct {
	// Table is the DynamoDB table, keyed HASH user (S), RANGE date (S).
	Table string
	// BatchSize is the number of items per BatchWriteItem call: at most 25, default 25.
	BatchSize int
	// FlushInterval is the longest a partial batch waits before it is written: default 1s.
	FlushInterval time.Duration
	// QueueSize bounds the items accepted but not yet written or failed (queued and in
	// flight): default 2000. Write blocks while it is reached. 2000 is 35 s of matches at the
	// 1% filter rate of the firehose's average (57 a second), and what a task loses at most
	// on SIGKILL; a full queue holds about 2 MB of heap (4 MB at the GC's goal), which keeps
	// the task's peak RSS under 32 MiB while DynamoDB throttles (5000 reached 32 MiB).
	QueueSize int
	// MaxRetryTime bounds how long one batch is retried: default 2m.
	MaxRetryTime time.Duration
	// DrainTimeout bounds how long Run keeps writing after its ctx ends: default 8s, well
	// inside ECS's default stopTimeout of 30s between SIGTERM and SIGKILL.
	DrainTimeout time.Duration
}

func (c Config) withDefaults() Config {
	if c.BatchSize <= 0 || c.BatchSize > maxBatchSize {
		c.BatchSize = maxBatchSize
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = defaultFlushInterval
	}
	if c.QueueSize <= 0 {
		c.QueueSize = defaultQueueSize
	}
	if c.MaxRetryTime <= 0 {
		c.MaxRetryTime = defaultMaxRetryTime
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = defaultDrainTimeout
	}
	return c
}

// Stats is a consistent snapshot of a Writer's counters. At every snapshot
// Accepted == Written + Failed + Queued: every accepted item is counted exactly once, as
// written, as failed (with a reason), or as still queued.
type Stats struct {
	// Accepted counts the matches Write took.
	Accepted uint64 `json:"accepted"`
	// Written counts the items DynamoDB stored.
	Written uint64 `json:"written"`
	// Failed counts the items given up on; FailedByReason splits them by Reason*.
	Failed         uint64            `json:"failed"`
	FailedByReason map[string]uint64 `json:"failed_by_reason"`
	// Queued counts the items accepted but not yet written or failed, in flight included.
	Queued int `json:"queued"`
	// Requests counts BatchWriteItem and PutItem calls. The SDK may make up to three HTTP
	// attempts inside one call for a transient error; those are not counted apart.
	Requests uint64 `json:"requests"`
	// Retries counts the Writer's own retries after backoff.
	Retries uint64 `json:"retries"`
	// LastError describes the last error or unprocessed batch, e.g.
	// "BatchWriteItem: ProvisionedThroughputExceededException: ...". It never holds item text.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
}

// Writer queues matches and writes them to DynamoDB in batches. Write is safe for concurrent
// use; Run must be called once, and owns the only goroutine that talks to DynamoDB, so one
// batch is in flight at a time. At about 10 ms per call that is some 2,500 items/s, above
// statuses/filter's ceiling of about 1% of the firehose (~1,400 tweets/s at its all-time peak).
type Writer struct {
	api    batchWriteAPI
	cfg    Config
	logger *slog.Logger

	// Injected in tests: the clock for ingested_at and retry budgets, the wait between
	// retries, and the jitter source.
	now    func() time.Time
	sleep  func(context.Context, time.Duration) error
	jitter func() float64

	// space holds one token per accepted, unfinished item: Write blocks on it when the queue
	// is full, and finishing an item gives its token back.
	space chan struct{}
	// ready tells Run that a full batch is pending.
	ready chan struct{}
	// closed is closed when Run stops accepting, to wake blocked Writes.
	closed    chan struct{}
	closeOnce sync.Once

	mu       sync.Mutex
	pending  []entry
	inFlight int // accepted items taken off pending and not yet finished
	stopped  bool
	stats    Stats
}

// entry is one queued item.
type entry struct {
	key  itemKey
	id   string
	item item
	// weight is the number of accepted matches the entry stands for: 1, plus the duplicates
	// of its key that were dropped from its batch.
	weight int
}

type itemKey struct{ user, date string }

// NewWriter returns a Writer that writes to cfg.Table through api, normally the
// *dynamodb.Client from NewClient. Nothing is written until Run is called.
func NewWriter(api batchWriteAPI, cfg Config, logger *slog.Logger) *Writer {
	cfg = cfg.withDefaults()
	return &Writer{
		api:    api,
		cfg:    cfg,
		logger: logger,
		now:    time.Now,
		sleep:  sleepContext,
		jitter: rand.Float64,
		space:  make(chan struct{}, cfg.QueueSize),
		ready:  make(chan struct{}, 1),
		closed: make(chan struct{}),
		stats:  Stats{FailedByReason: map[string]uint64{}},
	}
}

// Write queues m. It blocks while the queue is full, which is the back-pressure that makes
// the stream worker stop reading while DynamoDB is slow. It returns ctx's error if ctx ends
// before m was queued, and ErrClosed once Run has stopped accepting; in both cases m was not
// accepted and is not counted.
func (w *Writer) Write(ctx context.Context, m stream.Match) error {
	select {
	case <-w.closed:
		return ErrClosed
	default:
	}
	select {
	case w.space <- struct{}{}:
	case <-w.closed:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	user, date := ItemKey(m.Message)
	e := entry{
		key:    itemKey{user, date},
		id:     m.Message.ID,
		item:   newItem(m, w.now()),
		weight: 1,
	}

	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		<-w.space
		return ErrClosed
	}
	w.pending = append(w.pending, e)
	w.stats.Accepted++
	full := len(w.pending) >= w.cfg.BatchSize
	w.mu.Unlock()

	if full {
		select {
		case w.ready <- struct{}{}:
		default: // Run has been told already.
		}
	}
	return nil
}

// Run writes queued items until ctx ends. A batch is written as soon as BatchSize items are
// queued, and a partial batch after at most FlushInterval. When ctx ends, Run stops accepting
// (Write returns ErrClosed), writes everything still queued, and gives up after DrainTimeout:
// what is left then is counted as failed with ReasonShutdownDeadline. Failed items are
// counted, not returned, so Run returns nil.
func (w *Writer) Run(ctx context.Context) error {
	// Writes outlive ctx by up to DrainTimeout, so that a batch in flight or in backoff when
	// shutdown begins can still finish.
	writeCtx, cancelWrites := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWrites()
	runDone := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case <-ctx.Done():
		case <-runDone:
			return
		}
		t := time.NewTimer(w.cfg.DrainTimeout)
		defer t.Stop()
		select {
		case <-t.C:
			cancelWrites()
		case <-runDone:
		}
	})
	defer wg.Wait()
	defer close(runDone)

	ticker := time.NewTicker(w.cfg.FlushInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			w.stopAccepting()
			w.flush(context.Background(), writeCtx, 1)
			return nil
		case <-w.ready:
			w.flush(ctx, writeCtx, w.cfg.BatchSize)
		case <-ticker.C:
			w.flush(ctx, writeCtx, 1)
		}
	}
}

// Stats returns a snapshot of the counters.
func (w *Writer) Stats() Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.stats
	s.FailedByReason = maps.Clone(w.stats.FailedByReason)
	s.Queued = len(w.pending) + w.inFlight
	return s
}

func (w *Writer) stopAccepting() {
	w.closeOnce.Do(func() {
		w.mu.Lock()
		w.stopped = true
		w.mu.Unlock()
		close(w.closed)
	})
}

// flush writes batches while at least atLeast items are pending. It stops early when loopCtx
// ends, so that Run turns to draining; once writeCtx has ended, everything pending fails.
func (w *Writer) flush(loopCtx, writeCtx context.Context, atLeast int) {
	for loopCtx.Err() == nil {
		if err := writeCtx.Err(); err != nil {
			w.failPending(err)
			return
		}
		batch := w.take(atLeast)
		if batch == nil {
			return
		}
		w.writeBatch(writeCtx, batch)
	}
}

// take removes up to BatchSize pending entries, or returns nil when fewer than atLeast are
// pending.
func (w *Writer) take(atLeast int) []entry {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.pending) == 0 || len(w.pending) < atLeast {
		return nil
	}
	n := min(w.cfg.BatchSize, len(w.pending))
	batch := slices.Clone(w.pending[:n])
	clear(w.pending[:n]) // let the taken items be collected
	w.pending = w.pending[n:]
	w.inFlight += n
	return batch
}

func (w *Writer) failPending(err error) {
	w.mu.Lock()
	rest := w.pending
	w.pending = nil
	w.inFlight += len(rest)
	w.mu.Unlock()
	if len(rest) > 0 {
		w.finish(rest, ReasonShutdownDeadline, err)
	}
}

// finish counts entries as written (reason "") or failed with reason, and gives their queue
// space back.
func (w *Writer) finish(entries []entry, reason string, err error) {
	n := 0
	for _, e := range entries {
		n += e.weight
	}
	if n == 0 {
		return
	}
	w.mu.Lock()
	w.inFlight -= n
	if reason == "" {
		w.stats.Written += uint64(n)
	} else {
		w.stats.Failed += uint64(n)
		w.stats.FailedByReason[reason] += uint64(n)
	}
	w.mu.Unlock()
	for range n {
		<-w.space
	}
	if reason != "" {
		// Item text is attacker-controlled and never logged; the id is enough to find the
		// message in the source.
		attrs := []any{"reason", reason, "items", n, "error", describe(err)}
		if len(entries) == 1 {
			attrs = append(attrs, "id", entries[0].id)
		}
		w.logger.Warn("dynamodb items failed", attrs...)
	}
}

func (w *Writer) countRequest() {
	w.mu.Lock()
	w.stats.Requests++
	w.mu.Unlock()
}

func (w *Writer) countRetry() {
	w.mu.Lock()
	w.stats.Retries++
	w.mu.Unlock()
}

func (w *Writer) recordError(msg string) {
	w.mu.Lock()
	w.stats.LastError = msg
	w.stats.LastErrorAt = w.now()
	w.mu.Unlock()
}

func sleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
