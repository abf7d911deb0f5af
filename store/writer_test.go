package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"go.uber.org/goleak"
)

// These tests inject faults that moto cannot produce on demand (throttling, unprocessed
// items, outages) through fakeDynamo, a small stand-in that enforces the BatchWriteItem rules
// the Writer depends on. TestClassify_SDKErrors checks that the errors the fake returns are
// classified like the ones the real SDK produces.

// fakeDynamo stores items like a table keyed by user and date, and enforces DynamoDB's
// BatchWriteItem validation: at most 25 puts, no two puts for one key, no empty key
// attribute, no item over 400 KB. A ValidationException rejects the whole batch, as in
// DynamoDB.
type fakeDynamo struct {
	mu    sync.Mutex
	items map[itemKey]map[string]types.AttributeValue
	// batches records the keys of every BatchWriteItem call; puts those of every PutItem call.
	batches [][]itemKey
	puts    []itemKey
	// batch decides the outcome of the n-th valid BatchWriteItem call (from 0): the keys
	// returned unprocessed, or an error. nil stores everything.
	batch func(n int, keys []itemKey) (unprocessed []itemKey, err error)
	// put decides the outcome of the n-th valid PutItem call. nil stores the item.
	put func(n int, key itemKey) error
	// validBatches and validPuts count the calls that passed validation.
	validBatches, validPuts int
}

func newFakeDynamo() *fakeDynamo {
	return &fakeDynamo{items: map[itemKey]map[string]types.AttributeValue{}}
}

func (f *fakeDynamo) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	reqs := in.RequestItems[blogTable]
	keys := make([]itemKey, len(reqs))
	byKey := map[itemKey]map[string]types.AttributeValue{}
	for i, r := range reqs {
		keys[i] = keyOf(r.PutRequest.Item)
		byKey[keys[i]] = r.PutRequest.Item
	}
	f.batches = append(f.batches, keys)
	switch {
	case len(reqs) == 0 || len(reqs) > 25 || len(in.RequestItems) != 1:
		return nil, apiError("ValidationException", "Too many items requested for the BatchWriteItem call")
	case len(byKey) != len(keys):
		return nil, apiError("ValidationException", "Provided list of item keys contains duplicates")
	}
	for _, r := range reqs {
		if err := validate(r.PutRequest.Item); err != nil {
			return nil, err
		}
	}
	n := f.validBatches
	f.validBatches++
	var left []itemKey
	if f.batch != nil {
		var err error
		if left, err = f.batch(n, keys); err != nil {
			return nil, err
		}
	}
	out := &dynamodb.BatchWriteItemOutput{UnprocessedItems: map[string][]types.WriteRequest{}}
	for _, k := range keys {
		if slices.Contains(left, k) {
			out.UnprocessedItems[blogTable] = append(out.UnprocessedItems[blogTable],
				types.WriteRequest{PutRequest: &types.PutRequest{Item: byKey[k]}})
			continue
		}
		f.items[k] = byKey[k]
	}
	return out, nil
}

func (f *fakeDynamo) PutItem(ctx context.Context, in *dynamodb.PutItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	k := keyOf(in.Item)
	f.puts = append(f.puts, k)
	if err := validate(in.Item); err != nil {
		return nil, err
	}
	n := f.validPuts
	f.validPuts++
	if f.put != nil {
		if err := f.put(n, k); err != nil {
			return nil, err
		}
	}
	f.items[k] = in.Item
	return &dynamodb.PutItemOutput{}, nil
}

func (f *fakeDynamo) stored() map[itemKey]map[string]types.AttributeValue {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[itemKey]map[string]types.AttributeValue, len(f.items))
	for k, v := range f.items {
		out[k] = v
	}
	return out
}

func (f *fakeDynamo) batchSizes() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []int
	for _, b := range f.batches {
		out = append(out, len(b))
	}
	return out
}

func validate(item map[string]types.AttributeValue) error {
	k := keyOf(item)
	if k.user == "" || k.date == "" {
		return apiError("ValidationException", "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty string value. Key: user")
	}
	size := 0
	for name, v := range item {
		size += len(name)
		if s, ok := v.(*types.AttributeValueMemberS); ok {
			size += len(s.Value)
		}
	}
	if size > 400*1024 {
		return apiError("ValidationException", "Item size has exceeded the maximum allowed size")
	}
	return nil
}

// apiError is a DynamoDB error as the SDK surfaces an HTTP 400 answer.
func apiError(code, msg string) error {
	return responseError(400, &smithy.GenericAPIError{Code: code, Message: msg})
}

// responseError wraps err the way the SDK does: an operation error around an HTTP response error.
func responseError(status int, err error) error {
	return &smithy.OperationError{
		ServiceID:     "DynamoDB",
		OperationName: "BatchWriteItem",
		Err: &awshttp.ResponseError{
			ResponseError: &smithyhttp.ResponseError{
				Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
				Err:      err,
			},
		},
	}
}

// networkError is what the SDK returns when DynamoDB cannot be reached: a response error
// with status 0 around the dial error.
func networkError() error {
	return responseError(0, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED})
}

// fakeClock is the Writer's clock and sleep: sleeping advances the clock at once.
type fakeClock struct {
	mu     sync.Mutex
	t      time.Time
	sleeps []time.Duration
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	c.sleeps = append(c.sleeps, d)
	return nil
}

func (c *fakeClock) waits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.sleeps)
}

// newFakeWriter returns a Writer on api with a fake clock and a jitter of one half, so that
// each wait is half the exponential cap: 50ms, 100ms, 200ms, ...
func newFakeWriter(api batchWriteAPI, cfg Config) (*Writer, *fakeClock) {
	cfg.Table = blogTable
	if cfg.FlushInterval == 0 {
		cfg.FlushInterval = time.Hour // only full batches and the drain write
	}
	w := NewWriter(api, cfg, discard())
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	w.now, w.sleep = clock.now, clock.sleep
	w.jitter = func() float64 { return 0.5 }
	return w, clock
}

func keysOf(ms int) []itemKey {
	var out []itemKey
	for _, m := range matches(ms) {
		u, d := ItemKey(m.Message)
		out = append(out, itemKey{u, d})
	}
	return out
}

func TestWriter_RetriesUnprocessedItems(t *testing.T) {
	api := newFakeDynamo()
	all := keysOf(25)
	api.batch = func(n int, keys []itemKey) ([]itemKey, error) {
		switch n {
		case 0:
			return all[15:], nil // ten unprocessed
		case 1:
			return all[20:23], nil // three still unprocessed
		}
		return nil, nil
	}
	w, clock := newFakeWriter(api, Config{})
	running(t, w)
	writeAll(t, w, matches(25))
	waitFor(t, "25 items written", func() bool { return w.Stats().Written == 25 })

	if got, want := api.batchSizes(), []int{25, 10, 3}; !slices.Equal(got, want) {
		t.Errorf("batch sizes: got %v, want %v (each retry sends only the unprocessed items)", got, want)
	}
	if got, want := clock.waits(), []time.Duration{50 * time.Millisecond, 100 * time.Millisecond}; !slices.Equal(got, want) {
		t.Errorf("waits: got %v, want %v (exponential, jittered)", got, want)
	}
	s := w.Stats()
	if s.Retries != 2 || s.Requests != 3 || s.Failed != 0 {
		t.Errorf("got retries %d, requests %d, failed %d; want 2, 3, 0", s.Retries, s.Requests, s.Failed)
	}
	if !strings.Contains(s.LastError, "unprocessed") {
		t.Errorf("last error: got %q, want it to mention unprocessed items", s.LastError)
	}
	if got := len(api.stored()); got != 25 {
		t.Errorf("stored items: got %d, want 25", got)
	}
}

func TestWriter_RetriesThrottledBatch(t *testing.T) {
	tests := []struct {
		name string
		err  error
	}{
		{"provisioned throughput exceeded", apiError("ProvisionedThroughputExceededException", "The level of configured provisioned throughput for the table was exceeded.")},
		{"throttling", apiError("ThrottlingException", "Rate of requests exceeds the allowed throughput.")},
		{"request limit exceeded", apiError("RequestLimitExceeded", "Throughput exceeds the current throughput limit for your account.")},
		{"internal server error", responseError(500, &smithy.GenericAPIError{Code: "InternalServerError"})},
		{"service unavailable", responseError(503, &smithy.GenericAPIError{Code: "ServiceUnavailable"})},
		{"connection refused", networkError()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newFakeDynamo()
			api.batch = func(n int, _ []itemKey) ([]itemKey, error) {
				if n < 2 {
					return nil, tt.err
				}
				return nil, nil
			}
			w, _ := newFakeWriter(api, Config{})
			writeAll(t, w, matches(25))
			if err := running(t, w)(); err != nil {
				t.Fatalf("Run: %v", err)
			}
			s := w.Stats()
			if s.Written != 25 || s.Failed != 0 || s.Retries != 2 {
				t.Errorf("got written %d, failed %v, retries %d; want 25, none, 2", s.Written, s.FailedByReason, s.Retries)
			}
		})
	}
}

func TestWriter_FailsAfterMaxRetryTimeWithReason(t *testing.T) {
	tests := []struct {
		name      string
		outcome   func(keys []itemKey) ([]itemKey, error)
		reason    string
		retryable bool
	}{
		{"always unprocessed", func(keys []itemKey) ([]itemKey, error) { return keys, nil }, ReasonThrottled, true},
		{"always throttled", func([]itemKey) ([]itemKey, error) {
			return nil, apiError("ProvisionedThroughputExceededException", "exceeded")
		}, ReasonThrottled, true},
		{"always 503", func([]itemKey) ([]itemKey, error) {
			return nil, responseError(503, &smithy.GenericAPIError{Code: "ServiceUnavailable"})
		}, ReasonUnavailable, true},
		{"never reachable", func([]itemKey) ([]itemKey, error) { return nil, networkError() }, ReasonUnreachable, true},
		{"access denied fails at once", func([]itemKey) ([]itemKey, error) {
			return nil, apiError("AccessDeniedException", "User is not authorized to perform: dynamodb:BatchWriteItem")
		}, ReasonAccessDenied, false},
		{"missing table fails at once", func([]itemKey) ([]itemKey, error) {
			return nil, apiError("ResourceNotFoundException", "Requested resource not found")
		}, ReasonTableNotFound, false},
		{"other client error fails at once", func([]itemKey) ([]itemKey, error) {
			return nil, apiError("SerializationException", "bad request")
		}, ReasonRejected, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newFakeDynamo()
			api.batch = func(_ int, keys []itemKey) ([]itemKey, error) { return tt.outcome(keys) }
			w, clock := newFakeWriter(api, Config{MaxRetryTime: 2 * time.Minute})
			start := clock.now()
			writeAll(t, w, matches(25))
			if err := running(t, w)(); err != nil {
				t.Fatalf("Run: %v", err)
			}

			s := w.Stats()
			if s.Written != 0 || s.Failed != 25 || s.FailedByReason[tt.reason] != 25 {
				t.Errorf("got written %d, failed %v; want 0 written and 25 %s", s.Written, s.FailedByReason, tt.reason)
			}
			if s.LastError == "" {
				t.Error("last error is empty")
			}
			elapsed := clock.now().Sub(start)
			if tt.retryable {
				if s.Retries < 5 || elapsed > 2*time.Minute || elapsed < time.Minute {
					t.Errorf("got %d retries over %s, want several, within the 2m budget but near it", s.Retries, elapsed)
				}
			} else if s.Retries != 0 || s.Requests != 1 {
				t.Errorf("got %d retries and %d requests, want one request and no retry", s.Retries, s.Requests)
			}
		})
	}
}

func TestWriter_IsolatesInvalidItem(t *testing.T) {
	oversized := strings.Repeat("x", 401*1024) // over DynamoDB's 400 KB item limit
	tests := []struct {
		name      string
		put       func(n int, key itemKey) error
		wantPuts  int
		wantRetry uint64
	}{
		{name: "bad item fails alone", wantPuts: 5},
		{
			name: "throttled put is retried",
			put: func(n int, _ itemKey) error {
				if n == 1 {
					return apiError("ThrottlingException", "slow down")
				}
				return nil
			},
			wantPuts:  6,
			wantRetry: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newFakeDynamo()
			api.put = tt.put
			w, _ := newFakeWriter(api, Config{})
			ms := matches(5)
			ms[2].Message.Text = oversized
			writeAll(t, w, ms)
			if err := running(t, w)(); err != nil {
				t.Fatalf("Run: %v", err)
			}

			s := w.Stats()
			if s.Written != 4 || s.Failed != 1 || s.FailedByReason[ReasonInvalidItem] != 1 {
				t.Errorf("got written %d, failed %v; want 4 written and 1 invalid_item", s.Written, s.FailedByReason)
			}
			if got := len(api.puts); got != tt.wantPuts {
				t.Errorf("PutItem calls: got %d, want %d", got, tt.wantPuts)
			}
			if s.Retries != tt.wantRetry {
				t.Errorf("retries: got %d, want %d", s.Retries, tt.wantRetry)
			}
			stored := api.stored()
			for i, m := range ms {
				u, d := ItemKey(m.Message)
				_, ok := stored[itemKey{u, d}]
				if want := i != 2; ok != want {
					t.Errorf("item %d stored: got %v, want %v", i, ok, want)
				}
			}
			if strings.Contains(s.LastError, "xxxx") {
				t.Errorf("last error holds item text: %.80q", s.LastError)
			}
		})
	}
}

func TestWriter_DedupesSameKeyInBatch(t *testing.T) {
	// DynamoDB rejects a batch with two puts for one key ("Provided list of item keys contains
	// duplicates"). moto 5 compares whole serialized items instead, and the SDK serializes
	// attributes in random order, so moto cannot be relied on to show it: the fake does.
	api := newFakeDynamo()
	w, _ := newFakeWriter(api, Config{})
	ms := matches(3)
	again := ms[1]
	again.Message.Text = "delivered again, edited"
	ms = append(ms, ms[1], again)
	writeAll(t, w, ms)
	if err := running(t, w)(); err != nil {
		t.Fatalf("Run: %v", err)
	}

	s := w.Stats()
	if s.Written != 5 || s.Failed != 0 || s.Requests != 1 {
		t.Errorf("got written %d, failed %v, requests %d; want 5, none, 1", s.Written, s.FailedByReason, s.Requests)
	}
	stored := api.stored()
	if len(stored) != 3 {
		t.Errorf("stored items: got %d, want 3", len(stored))
	}
	u, d := ItemKey(again.Message)
	if got := str(stored[itemKey{u, d}], "text"); got != again.Message.Text {
		t.Errorf("text of the duplicated key: got %q, want the last write's %q", got, again.Message.Text)
	}
}

func TestWriter_CountsUndrainedItemsAsShutdownDeadline(t *testing.T) {
	api := &blockingDynamo{started: make(chan struct{}, 10)}
	w, _ := newFakeWriter(api, Config{DrainTimeout: 20 * time.Millisecond})
	stop := running(t, w)
	writeAll(t, w, matches(60))
	<-api.started // a batch is in flight and will never be answered

	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	s := w.Stats()
	if s.Failed != 60 || s.FailedByReason[ReasonShutdownDeadline] != 60 || s.Queued != 0 {
		t.Errorf("got failed %v, queued %d; want 60 shutdown_deadline and nothing queued", s.FailedByReason, s.Queued)
	}
}

// blockingDynamo answers no call until the caller gives up.
type blockingDynamo struct{ started chan struct{} }

func (b *blockingDynamo) BatchWriteItem(ctx context.Context, _ *dynamodb.BatchWriteItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	select {
	case b.started <- struct{}{}:
	default:
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

func (b *blockingDynamo) PutItem(ctx context.Context, _ *dynamodb.PutItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestWriter_CountersAddUp(t *testing.T) {
	api := newFakeDynamo()
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(1, 2))
	api.batch = func(n int, keys []itemKey) ([]itemKey, error) {
		mu.Lock()
		defer mu.Unlock()
		switch r := rng.IntN(100); {
		case r < 5:
			return nil, apiError("AccessDeniedException", "denied")
		case r < 20:
			return nil, apiError("ProvisionedThroughputExceededException", "exceeded")
		case r < 50:
			return keys[:rng.IntN(len(keys))+1], nil
		}
		return nil, nil
	}
	api.put = func(int, itemKey) error {
		mu.Lock()
		defer mu.Unlock()
		if rng.IntN(100) < 20 {
			return apiError("ThrottlingException", "slow down")
		}
		return nil
	}
	w, _ := newFakeWriter(api, Config{QueueSize: 40, FlushInterval: time.Millisecond, MaxRetryTime: time.Second})
	running(t, w)

	const writers, perWriter = 4, 200
	done := make(chan struct{})
	var observed int
	var observer sync.WaitGroup
	observer.Go(func() {
		var last Stats
		for {
			s := w.Stats()
			checkBalanced(t, s)
			if s.Written < last.Written || s.Failed < last.Failed || s.Accepted < last.Accepted {
				t.Errorf("counters went down: %+v after %+v", s, last)
			}
			if s.Queued > 40 {
				t.Errorf("queued %d over the queue size 40", s.Queued)
			}
			last = s
			observed++
			time.Sleep(50 * time.Microsecond)
			select {
			case <-done:
				return
			default:
			}
		}
	})
	var producers sync.WaitGroup
	for g := range writers {
		producers.Go(func() {
			ms := matches(perWriter)
			for i := range ms {
				ms[i].Message.User = fmt.Sprintf("%s_w%d", ms[i].Message.User, g)
				switch {
				case i%50 == 13:
					ms[i].Message.User = "" // invalid: DynamoDB rejects an empty key
				case i%10 == 7:
					ms[i] = ms[i-1] // a duplicate, often in the same batch
				}
				if err := w.Write(context.Background(), ms[i]); err != nil {
					t.Errorf("Write: %v", err)
					return
				}
			}
		})
	}
	producers.Wait()
	waitFor(t, "every item written or failed", func() bool { return w.Stats().Queued == 0 })
	close(done)
	observer.Wait()

	s := w.Stats()
	checkBalanced(t, s)
	if s.Accepted != writers*perWriter || s.Written+s.Failed != s.Accepted {
		t.Errorf("got accepted %d, written %d, failed %d; want %d accepted, all written or failed",
			s.Accepted, s.Written, s.Failed, writers*perWriter)
	}
	if len(s.FailedByReason) < 2 {
		t.Errorf("failed by reason: got %v, want the injected faults to fail items for several reasons", s.FailedByReason)
	}
	t.Logf("%d snapshots; %+v", observed, s)
}

func TestWriter_WriteHonoursContext(t *testing.T) {
	w, _ := newFakeWriter(newFakeDynamo(), Config{QueueSize: 1})
	if err := w.Write(context.Background(), matches(1)[0]); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := w.Write(ctx, matches(2)[1]); !errors.Is(err, context.Canceled) {
		t.Errorf("Write into a full queue with a cancelled context: got %v, want context.Canceled", err)
	}
}

func TestConfig_Defaults(t *testing.T) {
	got := Config{BatchSize: 100}.withDefaults()
	want := Config{BatchSize: 25, FlushInterval: time.Second, QueueSize: 2000, MaxRetryTime: 2 * time.Minute, DrainTimeout: 8 * time.Second}
	if got != want {
		t.Errorf("defaults: got %+v, want %+v", got, want)
	}
}

func TestWriter_RunLeavesNoGoroutines(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	api := newFakeDynamo()
	api.batch = func(n int, keys []itemKey) ([]itemKey, error) {
		if n == 0 {
			return keys[:1], nil // one retry, so the backoff path runs too
		}
		return nil, nil
	}
	w, _ := newFakeWriter(api, Config{})
	stop := running(t, w)
	writeAll(t, w, matches(40))
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if s := w.Stats(); s.Written != 40 {
		t.Errorf("written: got %d, want 40", s.Written)
	}
}
