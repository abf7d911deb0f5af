package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/streammatch/streammatch/internal/faultproxy"
	"github.com/streammatch/streammatch/internal/mototest"
	"github.com/streammatch/streammatch/store"
	"github.com/streammatch/streammatch/stream"
	"github.com/streammatch/streammatch/stream/twitter"
)

// TestDynamoDBVersusSeed is a measurement, not a check: bench/run.sh runs it with
// BENCH_DDB_OUT set to a file, and it writes its figures there as JSON. Without the variable it
// is skipped, so `go test ./...` stays quick. It runs streammatch's store.Writer and the seed's
// pattern (bench/seed_put_item.py: a new boto3 client and one put_item per item) against the
// same moto_server, each through a counting proxy, then throttles DynamoDB and sends a 10x burst
// to record the memory the Writer's bounded queue allows.
func TestDynamoDBVersusSeed(t *testing.T) {
	out := os.Getenv("BENCH_DDB_OUT")
	if out == "" {
		t.Skip("BENCH_DDB_OUT not set: run bench/run.sh")
	}
	goItems, seedItems := envInt("BENCH_DDB_GO_ITEMS", 5000), envInt("BENCH_DDB_SEED_ITEMS", 300)
	corpus, err := corpusPath()
	if err != nil {
		t.Fatal(err)
	}
	lines := corpusLines(t)
	msgs := make([]stream.Message, 0, len(lines))
	for _, l := range lines {
		if rec := twitter.DecodeLine(l, ReplaySourceName); rec.Kind == stream.KindMessage {
			msgs = append(msgs, rec.Message)
		}
	}

	// store.NewClient takes credentials from the default chain, as the service does.
	t.Setenv("AWS_ACCESS_KEY_ID", "testing")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "testing")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	moto := mototest.Start(t)
	client := dynamodb.NewFromConfig(moto.AWSConfig(t))
	ctx := context.Background()
	results := map[string]any{}

	// streammatch: one client, BatchWriteItem of 25, through its own proxy.
	createTable(t, client, "streammatch")
	proxy := faultproxy.Start(t, moto.URL)
	writerClient, err := store.NewClient(ctx, "us-east-1", proxy.URL)
	if err != nil {
		t.Fatal(err)
	}
	w := store.NewWriter(writerClient, store.Config{Table: "streammatch"}, slog.New(slog.DiscardHandler))
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(runCtx) }()
	start := time.Now()
	for i := range goItems {
		m := msgs[i%len(msgs)]
		m.ID = fmt.Sprintf("%s-%d", m.ID, i) // distinct keys, as distinct tweets have
		if err := w.Write(ctx, stream.Match{Message: m, Terms: []string{"bench"}}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool { s := w.Stats(); return s.Written+s.Failed >= uint64(goItems) })
	goSeconds := time.Since(start).Seconds()
	stop()
	<-done
	goRequests := totalRequests(proxy.Stats())
	goWCU, goBytes := tableWriteUnits(t, client, "streammatch")
	results["go_items"] = goItems
	results["go_items_per_s"] = float64(goItems) / goSeconds
	results["go_requests_per_item"] = float64(goRequests) / float64(goItems)
	results["go_wcu_per_item"] = goWCU
	results["go_bytes_per_item"] = goBytes

	// The seed: a new boto3 client and a put_item per item, through a second proxy.
	createTable(t, client, "twitterStream")
	seedProxy := faultproxy.Start(t, moto.URL)
	script, err := filepath.Abs("seed_put_item.py")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("python3", script, corpus, "twitterStream", strconv.Itoa(seedItems))
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"AWS_ENDPOINT_URL=" + seedProxy.URL, "AWS_DEFAULT_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing",
	}
	outBytes, err := cmd.Output()
	if err != nil {
		t.Fatalf("seed script: %v", err)
	}
	var seed struct {
		Items   int     `json:"items"`
		Seconds float64 `json:"seconds"`
	}
	if err := json.Unmarshal(outBytes, &seed); err != nil {
		t.Fatalf("seed script output %q: %v", outBytes, err)
	}
	seedWCU, seedBytes := tableWriteUnits(t, client, "twitterStream")
	results["seed_items"] = seed.Items
	results["seed_items_per_s"] = float64(seed.Items) / seed.Seconds
	results["seed_requests_per_item"] = float64(totalRequests(seedProxy.Stats())) / float64(seed.Items)
	results["seed_wcu_per_item"] = seedWCU
	results["seed_bytes_per_item"] = seedBytes

	// A 10x burst (10 x a queue of 5000) while every write is throttled: Write
	// blocks once the queue is full, so memory stays bounded by the queue, not by the burst.
	createTable(t, client, "burst")
	burstProxy := faultproxy.Start(t, moto.URL)
	burstClient, err := store.NewClient(ctx, "us-east-1", burstProxy.URL)
	if err != nil {
		t.Fatal(err)
	}
	const queue = 5000
	bw := store.NewWriter(burstClient, store.Config{Table: "burst", QueueSize: queue}, slog.New(slog.DiscardHandler))
	burstProxy.ThrottleNext(-1)
	burstCtx, stopBurst := context.WithCancel(ctx)
	burstDone := make(chan error, 1)
	go func() { burstDone <- bw.Run(burstCtx) }()
	runtime.GC()
	hwmBefore := procStatusKiB(t, "VmHWM")
	rssBefore := procStatusKiB(t, "VmRSS")
	writeCtx, cancelWrites := context.WithTimeout(ctx, 20*time.Second)
	accepted := 0
	for i := range 10 * queue {
		m := msgs[i%len(msgs)]
		m.ID = fmt.Sprintf("%s-b%d", m.ID, i)
		if bw.Write(writeCtx, stream.Match{Message: m, Terms: []string{"bench"}}) != nil {
			break // the queue is full and stays full while throttled: back-pressure
		}
		accepted++
	}
	cancelWrites()
	hwm := procStatusKiB(t, "VmHWM")
	burstProxy.Clear()
	stopBurst()
	<-burstDone
	results["burst_offered"] = 10 * queue
	results["burst_accepted_while_throttled"] = accepted
	results["burst_queue_size"] = queue
	results["burst_rss_before_mib"] = float64(rssBefore) / 1024
	results["burst_peak_rss_mib"] = float64(hwm) / 1024
	results["burst_peak_rss_before_mib"] = float64(hwmBefore) / 1024
	results["burst_throttled_answers"] = burstProxy.Stats().Throttled

	data, err := json.MarshalIndent(results, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, data, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", data)
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

func createTable(t *testing.T, client *dynamodb.Client, name string) {
	t.Helper()
	_, err := client.CreateTable(context.Background(), &dynamodb.CreateTableInput{
		TableName: aws.String(name),
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String("user"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("date"), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String("user"), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String("date"), KeyType: types.KeyTypeRange},
		},
		BillingMode: types.BillingModePayPerRequest,
	})
	if err != nil {
		t.Fatal(err)
	}
}

func totalRequests(s faultproxy.Stats) int {
	n := 0
	for _, c := range s.Requests {
		n += c
	}
	return n
}

// tableWriteUnits scans a table and returns the mean write units per item (one per started KB
// of item size) and the mean item size, by DynamoDB's sizing rule: the UTF-8 bytes of every
// attribute name plus those of its string values.
func tableWriteUnits(t *testing.T, client *dynamodb.Client, table string) (wcu, size float64) {
	t.Helper()
	p := dynamodb.NewScanPaginator(client, &dynamodb.ScanInput{TableName: aws.String(table)})
	var items, units, bytes int
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, item := range page.Items {
			n := 0
			for name, v := range item {
				n += len(name)
				switch v := v.(type) {
				case *types.AttributeValueMemberS:
					n += len(v.Value)
				case *types.AttributeValueMemberSS:
					for _, s := range v.Value {
						n += len(s)
					}
				case *types.AttributeValueMemberN:
					n += len(v.Value)
				}
			}
			items++
			bytes += n
			units += (n + 1023) / 1024
		}
	}
	if items == 0 {
		t.Fatalf("table %s is empty", table)
	}
	return float64(units) / float64(items), float64(bytes) / float64(items)
}

// procStatusKiB reads a field of /proc/self/status, in KiB.
func procStatusKiB(t *testing.T, field string) int {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return n
		}
	}
	t.Fatalf("%s not in /proc/self/status", field)
	return 0
}

// waitFor polls cond with a generous deadline.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 5 minutes")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
