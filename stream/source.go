package stream

import (
	"context"
	"time"
)

// Source produces records from one external stream. Run connects, reconnects by the stream's
// rules, and returns only when ctx ends (nil) or on an error it cannot recover from. It calls
// emit for every record, in order, from a single goroutine; emit may block (back-pressure), and
// the source must then stop reading rather than buffer. Status is safe to call concurrently.
type Source interface {
	Name() string
	Run(ctx context.Context, emit func(context.Context, Record)) error
	Status() SourceStatus
}

// SourceStatus is a source's connection state for /api/status and the page.
type SourceStatus struct {
	Source string `json:"source"`
	State  State  `json:"state"`
	// LastError describes why the last connection ended or failed, e.g.
	// "credentials rejected (401)", "stalled: no data for 90s", "connection reset". It never
	// holds a credential.
	LastError string `json:"last_error"`
	// Since is when State was entered.
	Since time.Time `json:"since"`
	// Connects counts successful connections (HTTP 200) since start.
	Connects int64 `json:"connects"`
	// RetryIn is the wait before the next attempt while State is backoff or rejected.
	RetryIn time.Duration `json:"retry_in_ns,omitempty"`
}
