package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	"github.com/cenkalti/backoff/v4"
)

// Backoff between retries of one batch: exponential from retryInitial, doubling, capped at
// retryMaxInterval, with full jitter (each wait is uniform in [0, cap)), the variant AWS
// recommends so that many throttled writers do not retry in lockstep.
const (
	retryInitial     = 100 * time.Millisecond
	retryMaxInterval = 10 * time.Second
	// callTimeout bounds one API call (the SDK's attempts included), so that a connection
	// that hangs without an error cannot stall the writer.
	callTimeout = 30 * time.Second
	// maxErrorText bounds the error text kept in Stats.LastError and logs.
	maxErrorText = 240
)

// writeBatch writes entries with BatchWriteItem and accounts for every one of them.
//
// BatchWriteItem rather than PutItem: one call carries up to 25 items, so a burst of matches
// costs one round trip instead of 25 and the writer keeps up with the stream from a single
// goroutine. The price is that a batch is not atomic: DynamoDB may store some items and return
// the rest in UnprocessedItems (under throttling), which are retried here with backoff; and a
// ValidationException rejects the whole batch for one bad item, which is why the batch then
// falls back to one PutItem per item.
func (w *Writer) writeBatch(ctx context.Context, entries []entry) {
	// DynamoDB rejects a batch with two puts for one key ("Provided list of item keys contains
	// duplicates"). The same message twice in one batch is the same item, so the later copy
	// is kept and the earlier is counted as written along with it.
	remaining := dedupe(entries)
	bo := w.newBackOff()
	for {
		callCtx, cancel := context.WithTimeout(ctx, callTimeout)
		out, err := w.api.BatchWriteItem(callCtx, &dynamodb.BatchWriteItemInput{
			RequestItems: map[string][]types.WriteRequest{w.cfg.Table: putRequests(remaining)},
		})
		cancel()
		w.countRequest()

		var reason string
		var lastErr error
		if err == nil {
			left := unprocessed(remaining, out.UnprocessedItems[w.cfg.Table])
			w.finish(written(remaining, left), "", nil)
			if len(left) == 0 {
				return
			}
			reason = ReasonThrottled
			lastErr = fmt.Errorf("BatchWriteItem: %d of %d items unprocessed", len(left), len(remaining))
			remaining = left
		} else {
			var retryable bool
			reason, retryable = classify(ctx, err)
			lastErr = fmt.Errorf("BatchWriteItem: %w", err)
			if reason == ReasonInvalidItem {
				w.recordError(describe(lastErr))
				w.putEach(ctx, bo, remaining)
				return
			}
			if !retryable {
				w.recordError(describe(lastErr))
				w.finish(remaining, reason, lastErr)
				return
			}
		}
		w.recordError(describe(lastErr))
		if !w.wait(ctx, bo, remaining, reason, lastErr) {
			return
		}
	}
}

// putEach writes entries one PutItem at a time, so that an invalid item fails alone
// (ReasonInvalidItem) and the others are written. Throttling and network errors are retried
// with the batch's backoff, within the batch's time budget.
func (w *Writer) putEach(ctx context.Context, bo backoff.BackOff, entries []entry) {
	for i := 0; i < len(entries); {
		e := entries[i]
		callCtx, cancel := context.WithTimeout(ctx, callTimeout)
		_, err := w.api.PutItem(callCtx, &dynamodb.PutItemInput{TableName: aws.String(w.cfg.Table), Item: e.item.attributes()})
		cancel()
		w.countRequest()
		if err == nil {
			w.finish(entries[i:i+1], "", nil)
			i++
			continue
		}
		lastErr := fmt.Errorf("PutItem: %w", err)
		w.recordError(describe(lastErr))
		reason, retryable := classify(ctx, err)
		switch {
		case reason == ReasonInvalidItem:
			w.finish(entries[i:i+1], reason, lastErr)
			i++
		case !retryable:
			w.finish(entries[i:], reason, lastErr)
			return
		default:
			if !w.wait(ctx, bo, entries[i:], reason, lastErr) {
				return
			}
		}
	}
}

// wait sleeps before the next retry of remaining. When the batch's time budget is spent, or
// ctx ends while waiting, it fails remaining and returns false.
func (w *Writer) wait(ctx context.Context, bo backoff.BackOff, remaining []entry, reason string, lastErr error) bool {
	d := bo.NextBackOff()
	if d == backoff.Stop {
		w.finish(remaining, reason, fmt.Errorf("gave up after %s: %w", w.cfg.MaxRetryTime, lastErr))
		return false
	}
	w.logger.Debug("dynamodb retry", "reason", reason, "items", len(remaining), "wait", d)
	if err := w.sleep(ctx, d); err != nil {
		w.finish(remaining, ReasonShutdownDeadline, lastErr)
		return false
	}
	w.countRetry()
	return true
}

// classify says why a call failed and whether retrying can help. ctx is the writer's context:
// once it has ended (DrainTimeout after shutdown), nothing is retried.
func classify(ctx context.Context, err error) (reason string, retryable bool) {
	if ctx.Err() != nil {
		return ReasonShutdownDeadline, false
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		code := apiErr.ErrorCode()
		if _, ok := retry.DefaultThrottleErrorCodes[code]; ok {
			return ReasonThrottled, true
		}
		switch code {
		case "ValidationException":
			return ReasonInvalidItem, false
		case "ResourceNotFoundException":
			return ReasonTableNotFound, false
		case "AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException",
			"MissingAuthenticationTokenException":
			return ReasonAccessDenied, false
		case "ExpiredTokenException":
			// Role credentials are refreshed by the SDK; the next attempt gets fresh ones.
			return ReasonAccessDenied, true
		}
	}
	switch status := httpStatus(err); {
	case status >= 500:
		return ReasonUnavailable, true
	case status >= 400:
		return ReasonRejected, false
	}
	// No HTTP answer at all: connection refused or reset, DNS, a timeout, or credentials that
	// could not be fetched from the container endpoint. (The SDK reports these as a response
	// error with status 0.)
	return ReasonUnreachable, true
}

// httpStatus returns the HTTP status of the answer that caused err, or 0 when there was none.
func httpStatus(err error) int {
	var respErr *awshttp.ResponseError
	if errors.As(err, &respErr) && respErr.ResponseError != nil && respErr.Response != nil && respErr.Response.Response != nil {
		return respErr.Response.StatusCode
	}
	return 0
}

// describe renders err for Stats.LastError and logs: the API error code and message when
// there is one (they name attributes, never values), bounded in length.
func describe(err error) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		op := "DynamoDB"
		var opErr *smithy.OperationError
		if errors.As(err, &opErr) {
			op = opErr.OperationName
		}
		s = op + ": " + apiErr.ErrorCode() + ": " + apiErr.ErrorMessage()
	}
	if len(s) > maxErrorText {
		s = s[:maxErrorText] + "..."
	}
	return s
}

func (w *Writer) newBackOff() backoff.BackOff {
	exp := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(retryInitial),
		backoff.WithMultiplier(2),
		backoff.WithMaxInterval(retryMaxInterval),
		backoff.WithRandomizationFactor(0), // the jitter is applied on top, in full
		backoff.WithMaxElapsedTime(0),      // the budget is checked on the jittered wait
	)
	b := &fullJitter{exp: exp, now: w.now, jitter: w.jitter, budget: w.cfg.MaxRetryTime}
	b.Reset()
	return b
}

// fullJitter turns cenkalti's exponential backoff into "full jitter": each wait is uniform
// between zero and the exponential cap. cenkalti's own randomization only spreads the wait
// around the cap (±factor), which keeps retries of many clients bunched together. It also
// enforces the time budget with the injected clock, so tests need not sleep.
type fullJitter struct {
	exp    *backoff.ExponentialBackOff
	now    func() time.Time
	jitter func() float64
	budget time.Duration
	start  time.Time
}

// NextBackOff returns the next wait, or backoff.Stop when waiting would exceed the budget.
func (b *fullJitter) NextBackOff() time.Duration {
	d := time.Duration(b.jitter() * float64(b.exp.NextBackOff()))
	if b.now().Sub(b.start)+d > b.budget {
		return backoff.Stop
	}
	return d
}

// Reset starts a new budget.
func (b *fullJitter) Reset() {
	b.exp.Reset()
	b.start = b.now()
}

func dedupe(entries []entry) []entry {
	out := make([]entry, 0, len(entries))
	at := make(map[itemKey]int, len(entries))
	for _, e := range entries {
		if i, ok := at[e.key]; ok {
			e.weight += out[i].weight
			out[i] = e
			continue
		}
		at[e.key] = len(out)
		out = append(out, e)
	}
	return out
}

func putRequests(entries []entry) []types.WriteRequest {
	reqs := make([]types.WriteRequest, len(entries))
	for i, e := range entries {
		reqs[i] = types.WriteRequest{PutRequest: &types.PutRequest{Item: e.item.attributes()}}
	}
	return reqs
}

// unprocessed returns the entries whose items DynamoDB handed back unprocessed.
func unprocessed(entries []entry, reqs []types.WriteRequest) []entry {
	if len(reqs) == 0 {
		return nil
	}
	back := make(map[itemKey]bool, len(reqs))
	for _, r := range reqs {
		if r.PutRequest != nil {
			back[keyOf(r.PutRequest.Item)] = true
		}
	}
	var left []entry
	for _, e := range entries {
		if back[e.key] {
			left = append(left, e)
		}
	}
	return left
}

// written returns the entries not in left.
func written(entries, left []entry) []entry {
	if len(left) == 0 {
		return entries
	}
	skip := make(map[itemKey]bool, len(left))
	for _, e := range left {
		skip[e.key] = true
	}
	var done []entry
	for _, e := range entries {
		if !skip[e.key] {
			done = append(done, e)
		}
	}
	return done
}

func keyOf(item map[string]types.AttributeValue) itemKey {
	str := func(name string) string {
		if v, ok := item[name].(*types.AttributeValueMemberS); ok {
			return v.Value
		}
		return ""
	}
	return itemKey{user: str(attrUser), date: str(attrDate)}
}
