package store

// These tests put a fault-injecting proxy (internal/faultproxy) between the Writer and
// moto_server, so that every fault is a real HTTP answer in DynamoDB's wire format and every
// item that gets through is really stored. They check the Writer's promises under each fault:
// every accepted match ends in the table exactly once or counted as failed with a reason, the
// queue never grows past QueueSize (Write blocks instead), and the counters add up at every
// moment.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/streammatch/streammatch/internal/faultproxy"
	"github.com/streammatch/streammatch/internal/mototest"
	"github.com/streammatch/streammatch/stream"
)

// faultyDynamo is moto_server with the fault proxy in front of it. direct talks to moto
// itself, for creating tables and checking what was stored.
type faultyDynamo struct {
	direct *dynamodb.Client
	proxy  *faultproxy.Proxy
}

func startFaultyDynamo(t *testing.T) faultyDynamo {
	t.Helper()
	moto := mototest.Start(t)
	// NewClient takes credentials from the SDK's default chain, as in production; here the
	// chain finds these.
	isolateAWSEnv(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "testing")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "testing")
	return faultyDynamo{direct: dynamodb.NewFromConfig(moto.AWSConfig(t)), proxy: faultproxy.Start(t, moto.URL)}
}

// createTable creates a table with the blog's key schema, named for one test case.
func (d faultyDynamo) createTable(t *testing.T, name string) {
	t.Helper()
	_, err := EnsureTable(context.Background(), d.direct, name)
	if err != nil {
		t.Fatalf("create table %s: %v", name, err)
	}
}

// storedIDs scans a table and returns how many items hold each message id.
func (d faultyDynamo) storedIDs(t *testing.T, table string) map[string]int {
	t.Helper()
	ids := map[string]int{}
	p := dynamodb.NewScanPaginator(d.direct, &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("scan %s: %v", table, err)
		}
		for _, it := range page.Items {
			_, date, _ := strings.Cut(str(it, attrDate), "#")
			ids[date]++
		}
	}
	return ids
}

// quickSDKRetries keeps the client's retryer (NewClient's, without a retry quota) and only caps
// the SDK's wait between its own attempts, which is up to seconds for throttling: the faults
// here are real, but the test should not spend its time in the SDK's sleeps.
type quickSDKRetries struct{ client *dynamodb.Client }

func capSDKBackoff(o *dynamodb.Options) {
	o.Retryer = retry.AddWithMaxBackoffDelay(o.Retryer, 20*time.Millisecond)
}

func (q quickSDKRetries) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	return q.client.BatchWriteItem(ctx, in, append(optFns, capSDKBackoff)...)
}

func (q quickSDKRetries) PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	return q.client.PutItem(ctx, in, append(optFns, capSDKBackoff)...)
}

// sampled is what a sampler saw while a Writer ran.
type sampled struct {
	maxQueued int
	samples   int
}

func TestWriter_Faults_EveryMatchStoredOnceOrFailedWithReason(t *testing.T) {
	d := startFaultyDynamo(t)
	client, err := NewClient(context.Background(), mototest.Region, d.proxy.URL)
	if err != nil {
		t.Fatal(err)
	}
	api := quickSDKRetries{client}

	const n, queueSize = 120, 50
	tests := []struct {
		name         string
		maxRetryTime time.Duration
		// arm injects the fault before the first write; lift ends it (nil: the fault ends by
		// itself, or lasts). Both get the writer, to wait for it to see the fault.
		arm  func(w *Writer)
		lift func(t *testing.T, w *Writer)
		// wantFailed maps reasons to counts; nil means every match is written.
		wantFailed map[string]uint64
		check      func(t *testing.T, s Stats, p faultproxy.Stats)
	}{
		{
			name: "ProvisionedThroughputExceeded then recovers",
			arm:  func(*Writer) { d.proxy.ThrottleNext(8) },
			check: func(t *testing.T, s Stats, p faultproxy.Stats) {
				if p.Throttled != 8 || s.Retries == 0 {
					t.Errorf("throttled answers %d, writer retries %d; want 8 and some", p.Throttled, s.Retries)
				}
			},
		},
		{
			name: "part of each batch unprocessed",
			arm:  func(*Writer) { d.proxy.UnprocessedNext(6) },
			check: func(t *testing.T, s Stats, p faultproxy.Stats) {
				if p.Unprocessed != 6 || p.UnprocessedItems == 0 || s.Retries == 0 {
					t.Errorf("partial batches %d (%d items held back), retries %d; want 6, some, some", p.Unprocessed, p.UnprocessedItems, s.Retries)
				}
			},
		},
		{
			name: "HTTP 500 then recovers",
			arm:  func(*Writer) { d.proxy.FailNext(7) },
			check: func(t *testing.T, s Stats, p faultproxy.Stats) {
				if p.Failed != 7 {
					t.Errorf("500 answers %d, want 7", p.Failed)
				}
			},
		},
		{
			name: "slow answers",
			arm:  func(*Writer) { d.proxy.SetDelay(150 * time.Millisecond) },
			lift: func(*testing.T, *Writer) {},
		},
		{
			name: "unreachable for a second",
			arm:  func(*Writer) { d.proxy.Down() },
			lift: func(t *testing.T, w *Writer) {
				waitFor(t, "the writer to meet the refused connection", func() bool { return w.Stats().LastError != "" })
				time.Sleep(time.Second) // the outage itself: what is tested is that it ends
				if err := d.proxy.Up(); err != nil {
					t.Fatal(err)
				}
			},
			check: func(t *testing.T, s Stats, _ faultproxy.Stats) {
				if s.Retries == 0 {
					t.Errorf("retries %d, want some while the endpoint was down", s.Retries)
				}
			},
		},
		{
			name:         "sustained throttling fails after MaxRetryTime",
			maxRetryTime: 500 * time.Millisecond,
			arm:          func(*Writer) { d.proxy.ThrottleNext(-1) },
			wantFailed:   map[string]uint64{ReasonThrottled: n},
			check: func(t *testing.T, s Stats, _ faultproxy.Stats) {
				if !strings.Contains(s.LastError, "ProvisionedThroughputExceededException") {
					t.Errorf("last error %q, want it to name ProvisionedThroughputExceededException", s.LastError)
				}
			},
		},
		{
			name:         "unreachable past MaxRetryTime",
			maxRetryTime: 500 * time.Millisecond,
			arm:          func(*Writer) { d.proxy.Down() },
			lift: func(t *testing.T, w *Writer) {
				waitFor(t, "every match to fail", func() bool { return w.Stats().Failed == n })
				if err := d.proxy.Up(); err != nil {
					t.Fatal(err)
				}
			},
			wantFailed: map[string]uint64{ReasonUnreachable: n},
		},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			table := fmt.Sprintf("faults%d", i)
			d.createTable(t, table)
			t.Cleanup(func() {
				d.proxy.Clear()
				if err := d.proxy.Up(); err != nil {
					t.Error(err)
				}
			})
			before := d.proxy.Stats()
			w := NewWriter(api, Config{Table: table, QueueSize: queueSize, FlushInterval: 20 * time.Millisecond,
				MaxRetryTime: cmp(tc.maxRetryTime, 30*time.Second)}, discard())
			tc.arm(w)
			stop := running(t, w)

			ms := distinctMatches(n, i)
			produced := make(chan struct{})
			go func() {
				defer close(produced)
				for _, m := range ms {
					if err := w.Write(context.Background(), m); err != nil {
						t.Errorf("Write(%s): %v", m.Message.ID, err)
						return
					}
				}
			}()
			var seen sampled
			var wg sync.WaitGroup
			sampling := make(chan struct{})
			wg.Go(func() { seen = sample(t, w, queueSize, sampling) })
			if tc.lift != nil {
				tc.lift(t, w)
				d.proxy.Clear()
			}
			<-produced
			waitFor(t, "every match written or failed", func() bool {
				s := w.Stats()
				return s.Queued == 0 && s.Written+s.Failed == n
			})
			close(sampling)
			wg.Wait()
			if err := stop(); err != nil {
				t.Errorf("Run: %v", err)
			}

			s := w.Stats()
			checkBalanced(t, s)
			if seen.maxQueued != queueSize {
				t.Errorf("largest queue seen: got %d, want the limit %d (Write must block there, not grow it)", seen.maxQueued, queueSize)
			}
			wantWritten := uint64(n)
			for reason, count := range tc.wantFailed {
				wantWritten -= count
				if got := s.FailedByReason[reason]; got != count {
					t.Errorf("failed as %s: got %d, want %d (all failures: %v)", reason, got, count, s.FailedByReason)
				}
			}
			if s.Written != wantWritten || s.Accepted != n {
				t.Errorf("accepted %d, written %d; want %d and %d", s.Accepted, s.Written, n, wantWritten)
			}
			stored := d.storedIDs(t, table)
			if uint64(len(stored)) != s.Written {
				t.Errorf("items in the table: got %d, want written=%d", len(stored), s.Written)
			}
			want := map[string]bool{}
			for _, m := range ms {
				want[m.Message.ID] = true
			}
			for id, count := range stored {
				if !want[id] || count != 1 {
					t.Errorf("table holds id %s %d times; want each sent id exactly once", id, count)
				}
			}
			if tc.check != nil {
				p := d.proxy.Stats()
				p.Throttled -= before.Throttled
				p.Failed -= before.Failed
				p.Unprocessed -= before.Unprocessed
				p.UnprocessedItems -= before.UnprocessedItems
				tc.check(t, s, p)
			}
		})
	}
}

// sample polls the writer's stats until done is closed, checking at every snapshot that the
// counters add up and the queue stays within its limit.
func sample(t *testing.T, w *Writer, queueSize int, done <-chan struct{}) sampled {
	var seen sampled
	for {
		s := w.Stats()
		seen.samples++
		seen.maxQueued = max(seen.maxQueued, s.Queued)
		if s.Queued > queueSize || s.Accepted != s.Written+s.Failed+uint64(s.Queued) {
			t.Errorf("snapshot %d: queued %d (limit %d), accepted %d != written %d + failed %d + queued",
				seen.samples, s.Queued, queueSize, s.Accepted, s.Written, s.Failed)
			return seen
		}
		select {
		case <-done:
			return seen
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// distinctMatches builds n matches whose ids are unique across test cases.
func distinctMatches(n, salt int) []stream.Match {
	base := time.Date(2013, 8, 3, 12, 0, 0, 0, time.UTC)
	out := make([]stream.Match, n)
	for i := range out {
		out[i] = match(fmt.Sprintf("user%02d", i%9), fmt.Sprintf("9%03d%06d", salt, i),
			base.Add(time.Duration(i)*time.Second), fmt.Sprintf("fault case %d tweet %d", salt, i), "tweet")
	}
	return out
}

func cmp(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// TestNewClient_NoRetryQuotaUnderSustainedThrottling shows why NewClient disables the SDK's
// client-side retry quota, with DynamoDB's real throttling answer: the SDK's default client
// runs its token bucket dry and then fails calls with "retry quota exceeded" without even
// sending them, while NewClient's keeps sending (and the Writer's own backoff paces it).
func TestNewClient_NoRetryQuotaUnderSustainedThrottling(t *testing.T) {
	d := startFaultyDynamo(t)
	d.createTable(t, blogTable)
	d.proxy.ThrottleNext(-1)
	ctx := context.Background()

	sdkDefaults, err := config.LoadDefaultConfig(ctx, config.WithRegion(mototest.Region), config.WithBaseEndpoint(d.proxy.URL))
	if err != nil {
		t.Fatal(err)
	}
	ours, err := NewClient(ctx, mototest.Region, d.proxy.URL)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		client    *dynamodb.Client
		wantQuota bool
	}{
		{"SDK default retryer", dynamodb.NewFromConfig(sdkDefaults), true},
		{"NewClient", ours, false},
	}
	item := putRequests([]entry{{item: newItem(match("alice", "1", time.Now(), "x", "x"), time.Now())}})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			quota, throttled := 0, 0
			sentBefore := d.proxy.Stats().Requests["BatchWriteItem"]
			const calls = 80
			for range calls {
				_, err := tc.client.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{
					RequestItems: map[string][]types.WriteRequest{blogTable: item},
				}, capSDKBackoff)
				var q ratelimit.QuotaExceededError
				switch reason, _ := classify(ctx, err); {
				case errors.As(err, &q) || strings.Contains(fmt.Sprint(err), "retry quota exceeded"):
					quota++
				case reason == ReasonThrottled:
					throttled++
				default:
					t.Fatalf("call failed with %v (classified %q), want throttling or the quota", err, reason)
				}
			}
			sent := d.proxy.Stats().Requests["BatchWriteItem"] - sentBefore
			t.Logf("%d calls: %d throttled, %d refused by the retry quota; %d HTTP requests", calls, throttled, quota, sent)
			if got := quota > 0; got != tc.wantQuota {
				t.Errorf("calls refused by the retry quota: got %d, want any: %v", quota, tc.wantQuota)
			}
			if !tc.wantQuota && sent != 3*calls {
				t.Errorf("HTTP requests: got %d, want %d (three attempts per call, none refused)", sent, 3*calls)
			}
		})
	}
}
