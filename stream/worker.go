package stream

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
)

// recentSize is how many matches the worker keeps in memory for /api/matches.
const recentSize = 100

// Counters is a snapshot of what the worker has taken off the stream. Every record is counted
// once: Received = Matched + Unmatched + Skipped. Notices (delete, limit, ...) are records that
// are never stored, so they count as skipped, with the reason "notice_<type>".
type Counters struct {
	Received        uint64            `json:"received"`
	Matched         uint64            `json:"matched"`
	Unmatched       uint64            `json:"unmatched"`
	Skipped         uint64            `json:"skipped"`
	SkippedByReason map[string]uint64 `json:"skipped_by_reason"`
	// HandoffFailed counts matches the sink refused (it was shut down before it could queue
	// them); they are failed, and the status adds them to the store's failed count.
	HandoffFailed uint64 `json:"handoff_failed"`
	// LimitMissed sums the undelivered counts of limit notices: tweets that matched but that
	// Twitter did not send because the stream was over its rate.
	LimitMissed int64 `json:"limit_missed"`
}

// Worker reads a Source, matches each message, and writes matches to a Sink.
type Worker struct {
	source  Source
	matcher *Matcher
	sink    Sink
	logger  *slog.Logger

	received, matched, unmatched, skipped, handoffFailed atomic.Uint64
	limitMissed                                          atomic.Int64

	mu       sync.Mutex
	byReason map[string]uint64
	recent   [recentSize]Match
	next     int // index in recent of the next write
	filled   int
}

// NewWorker returns a worker; nothing runs until Run.
func NewWorker(source Source, matcher *Matcher, sink Sink, logger *slog.Logger) *Worker {
	return &Worker{source: source, matcher: matcher, sink: sink, logger: logger, byReason: map[string]uint64{}}
}

// Run reads the source until ctx ends. A match already taken off the stream when ctx ends is
// still handed to the sink: shutdown stops reading, it does not drop what was read.
func (w *Worker) Run(ctx context.Context) error {
	return w.source.Run(ctx, w.handle)
}

// Source returns the worker's source, for its status.
func (w *Worker) Source() Source { return w.source }

func (w *Worker) handle(ctx context.Context, rec Record) {
	w.received.Add(1)
	switch rec.Kind {
	case KindMessage:
		terms := w.matcher.Match(&rec.Message)
		if len(terms) == 0 {
			w.unmatched.Add(1)
			return
		}
		w.matched.Add(1)
		m := Match{Message: rec.Message, Terms: terms}
		w.remember(m)
		// The record is already off the stream: hand it over even if shutdown has begun, so
		// that it ends written or failed rather than silently dropped. The sink still applies
		// back-pressure, and it is drained after the worker stops.
		if err := w.sink.Write(context.WithoutCancel(ctx), m); err != nil {
			w.handoffFailed.Add(1)
			w.logger.Error("match not queued", "id", m.Message.ID, "err", err)
		}
	case KindNotice:
		w.skip("notice_" + rec.Notice)
		if rec.LimitMissed > 0 {
			w.limitMissed.Add(rec.LimitMissed)
		}
	default:
		reason := rec.Reason
		if reason == "" {
			reason = "unknown"
		}
		w.skip(reason)
	}
}

func (w *Worker) skip(reason string) {
	w.skipped.Add(1)
	w.mu.Lock()
	w.byReason[reason]++
	w.mu.Unlock()
}

func (w *Worker) remember(m Match) {
	w.mu.Lock()
	w.recent[w.next] = m
	w.next = (w.next + 1) % recentSize
	if w.filled < recentSize {
		w.filled++
	}
	w.mu.Unlock()
}

// Counters returns a consistent-enough snapshot: each field is read atomically, and received is
// read last so that, for a quiescent worker, the sum always adds up.
func (w *Worker) Counters() Counters {
	c := Counters{
		Matched:       w.matched.Load(),
		Unmatched:     w.unmatched.Load(),
		Skipped:       w.skipped.Load(),
		HandoffFailed: w.handoffFailed.Load(),
		LimitMissed:   w.limitMissed.Load(),
	}
	w.mu.Lock()
	c.SkippedByReason = make(map[string]uint64, len(w.byReason))
	for k, v := range w.byReason {
		c.SkippedByReason[k] = v
	}
	w.mu.Unlock()
	c.Received = w.received.Load()
	return c
}

// Recent returns up to limit of the most recent matches, newest first.
func (w *Worker) Recent(limit int) []Match {
	w.mu.Lock()
	defer w.mu.Unlock()
	if limit > w.filled {
		limit = w.filled
	}
	out := make([]Match, 0, max(limit, 0))
	for i := 1; i <= limit; i++ {
		out = append(out, w.recent[(w.next-i+recentSize)%recentSize])
	}
	return out
}
