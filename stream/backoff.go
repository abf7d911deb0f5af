package stream

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Twitter's reconnect schedules (developer documentation, "Connecting to a streaming
// endpoint"), as facts.md lists them.
const (
	// networkStep and networkMax: back off linearly for TCP/IP errors, +250 ms a try, to 16 s.
	networkStep = 250 * time.Millisecond
	networkMax  = 16 * time.Second
	// httpInitial and httpMax: back off exponentially for HTTP errors, from 5 s to 320 s.
	httpInitial = 5 * time.Second
	httpMax     = 320 * time.Second
	// rateInitial and rateMax: back off exponentially from 1 minute for 420 and 429. Twitter
	// names no cap; 16 minutes is go-twitter's, and past it a rate limit window has long reset.
	rateInitial = time.Minute
	rateMax     = 16 * time.Minute
)

// linearBackOff waits initial, then step longer on each try, up to max. It implements
// backoff.BackOff: the library has constant and exponential policies but no linear one.
type linearBackOff struct {
	initial, step, max time.Duration
	next               time.Duration
}

var _ backoff.BackOff = (*linearBackOff)(nil)

func newLinearBackOff(initial, step, max time.Duration) *linearBackOff {
	b := &linearBackOff{initial: initial, step: step, max: max}
	b.Reset()
	return b
}

// NextBackOff returns the wait before the next try.
func (b *linearBackOff) NextBackOff() time.Duration {
	d := b.next
	b.next = min(b.next+b.step, b.max)
	return d
}

// Reset starts the schedule again.
func (b *linearBackOff) Reset() { b.next = b.initial }

// newTwitterExponential returns an exponential schedule without jitter that never gives up:
// Twitter documents exact waits, a single worker has no thundering herd to spread, and a
// service must keep trying however long the outage.
func newTwitterExponential(initial, max time.Duration) *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(initial),
		backoff.WithMultiplier(2),
		backoff.WithMaxInterval(max),
		backoff.WithRandomizationFactor(0),
		backoff.WithMaxElapsedTime(0),
	)
	b.Reset()
	return b
}

// endKind says how a connection attempt ended.
type endKind int

const (
	// endStopped: the source's context ended; nothing is retried.
	endStopped endKind = iota
	// endNetwork: no HTTP response (refused, reset, TLS, or no headers within the stall timeout).
	endNetwork
	// endHTTP: a response other than 200.
	endHTTP
	// endDropped: a 200 response whose body then ended (EOF, reset or stall).
	endDropped
)

// connEnd is the observer's account of one connection attempt.
type connEnd struct {
	kind endKind
	// status is the HTTP status for endHTTP.
	status int
	// twitterCode is the code in Twitter's error JSON ({"errors":[{"code":32,...}]}), if any.
	twitterCode int
	// err is the network or body error, if any. It never holds a credential: the request URL
	// carries only the track terms, and the Authorization header is not part of any error.
	err error
	// stalled is set when the stall watchdog cut the connection.
	stalled bool
	// lines counts the complete non-blank lines the connection delivered.
	lines int64
}

// reconnectPolicy decides the wait after each connection ends, following Twitter's rules. It
// holds one schedule per class of failure; all belong to the supervisor goroutine.
type reconnectPolicy struct {
	stallTimeout time.Duration
	// dropped: after an established connection drops, reconnect at once, then slow down
	// linearly if the reconnects keep failing.
	dropped *linearBackOff
	network *linearBackOff
	http    backoff.BackOff
	rate    backoff.BackOff
}

func newReconnectPolicy(stallTimeout time.Duration) *reconnectPolicy {
	return &reconnectPolicy{
		stallTimeout: stallTimeout,
		dropped:      newLinearBackOff(0, networkStep, networkMax),
		network:      newLinearBackOff(networkStep, networkStep, networkMax),
		http:         newTwitterExponential(httpInitial, httpMax),
		rate:         newTwitterExponential(rateInitial, rateMax),
	}
}

// next returns the wait before the next attempt, the state to show meanwhile, and the reason
// for the status page.
func (p *reconnectPolicy) next(end connEnd) (wait time.Duration, state State, reason string) {
	switch end.kind {
	case endStopped:
		return 0, StateStopped, ""
	case endNetwork:
		wait = p.network.NextBackOff()
		if end.stalled {
			return wait, StateStalled, "stalled: no response for " + formatSeconds(p.stallTimeout)
		}
		return wait, StateBackoff, "network error: " + describeNetErr(end.err)
	case endHTTP:
		reason = statusReason(end.status)
		switch end.status {
		case http.StatusTooManyRequests, 420:
			return p.rate.NextBackOff(), StateBackoff, reason
		case http.StatusUnauthorized, http.StatusForbidden:
			// Retrying at all (rather than giving up) lets a rotated secret or a fixed clock
			// recover without a restart; the HTTP schedule keeps it from hammering Twitter.
			return p.http.NextBackOff(), StateRejected, reason
		}
		return p.http.NextBackOff(), StateBackoff, reason
	}
	// endDropped: the connection was established, so the HTTP schedules start again.
	p.http.Reset()
	p.rate.Reset()
	if end.lines > 0 {
		// It delivered data: whatever failed before is over, and this drop is the first.
		p.network.Reset()
		p.dropped.Reset()
	}
	if end.stalled {
		// A stall is a TCP/IP-level failure (the connection went silent), so it takes the
		// linear network schedule, which starts at 250 ms rather than at once. The source
		// closed this connection itself; the pause also lets the server see that close before
		// the next connection arrives, so that not even the server counts two at once.
		return p.network.NextBackOff(), StateStalled, "stalled: no data for " + formatSeconds(p.stallTimeout)
	}
	wait = p.dropped.NextBackOff()
	switch {
	case end.err != nil:
		return wait, StateBackoff, "connection lost: " + describeNetErr(end.err)
	case end.lines == 0:
		return wait, StateBackoff, "connection closed before any data"
	}
	return wait, StateBackoff, "connection closed by server"
}

// statusReason is the status page's wording for a non-200 response.
func statusReason(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return "credentials rejected (401)"
	case http.StatusForbidden:
		return "forbidden (403)"
	case 420, http.StatusTooManyRequests:
		return fmt.Sprintf("rate limited (%d)", status)
	case http.StatusServiceUnavailable:
		return "service unavailable (503)"
	}
	return fmt.Sprintf("http error (%d)", status)
}

// formatSeconds prints whole seconds as "90s" rather than Duration's "1m30s", to match how
// STALL_TIMEOUT is usually written.
func formatSeconds(d time.Duration) string {
	if d >= time.Second && d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return d.String()
}

// waitOrDone waits d using after (time.After unless a test injects a clock), and reports false if
// ctx ended first.
func waitOrDone(ctx context.Context, after func(time.Duration) <-chan time.Time, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-after(d):
		return ctx.Err() == nil
	}
}
