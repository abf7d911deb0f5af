package store

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/streammatch/streammatch/internal/mototest"
	"github.com/streammatch/streammatch/stream"
)

// blogTable is the seed blog's table name; its schema is created by newMotoTable.
const blogTable = "twitterStream"

// waitTimeout is generous on purpose: the machines are noisy, and a poll that succeeds
// returns at once.
const waitTimeout = 30 * time.Second

// newMotoTable starts moto_server and creates the blog's table: HASH user (S), RANGE date (S).
func newMotoTable(t testing.TB) *dynamodb.Client {
	t.Helper()
	srv := mototest.Start(t)
	client := dynamodb.NewFromConfig(srv.AWSConfig(t))
	_, err := client.CreateTable(context.Background(), &dynamodb.CreateTableInput{
		TableName: aws.String(blogTable),
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String("user"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("date"), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String("user"), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String("date"), KeyType: types.KeyTypeRange},
		},
		ProvisionedThroughput: &types.ProvisionedThroughput{
			ReadCapacityUnits:  aws.Int64(5),
			WriteCapacityUnits: aws.Int64(5),
		},
	})
	if err != nil {
		t.Fatalf("create table %s: %v", blogTable, err)
	}
	return client
}

// discard is the logger for tests: the writer's logs are not what they check.
func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// running starts w.Run and returns a function that ends it and returns Run's error.
func running(t testing.TB, w *Writer) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			err = <-done
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// waitFor polls cond until it holds, failing the test after waitTimeout.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", waitTimeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// match builds a match of user's message id at created.
func match(user, id string, created time.Time, text string, terms ...string) stream.Match {
	return stream.Match{
		Message: stream.Message{
			ID:        id,
			User:      user,
			CreatedAt: created,
			Text:      text,
			Lang:      "en",
			Source:    "replay",
		},
		Terms: terms,
	}
}

// matches builds n matches of distinct users, one second apart.
func matches(n int) []stream.Match {
	base := time.Date(2013, 8, 3, 12, 0, 0, 0, time.UTC)
	out := make([]stream.Match, n)
	for i := range out {
		out[i] = match(fmt.Sprintf("user%03d", i%7), fmt.Sprintf("3637%014d", i),
			base.Add(time.Duration(i)*time.Second), fmt.Sprintf("tweet number %d", i), "tweet")
	}
	return out
}

func writeAll(t testing.TB, w *Writer, ms []stream.Match) {
	t.Helper()
	for _, m := range ms {
		if err := w.Write(context.Background(), m); err != nil {
			t.Fatalf("Write(%s): %v", m.Message.ID, err)
		}
	}
}

// getItem reads the item for m from the table, or fails the test.
func getItem(t testing.TB, client *dynamodb.Client, m stream.Message) map[string]types.AttributeValue {
	t.Helper()
	user, date := ItemKey(m)
	out, err := client.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName:      aws.String(blogTable),
		ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{
			"user": &types.AttributeValueMemberS{Value: user},
			"date": &types.AttributeValueMemberS{Value: date},
		},
	})
	if err != nil {
		t.Fatalf("GetItem(%q, %q): %v", user, date, err)
	}
	if out.Item == nil {
		t.Fatalf("GetItem(%q, %q): no item", user, date)
	}
	return out.Item
}

// countItems scans the table.
func countItems(t testing.TB, client *dynamodb.Client) int {
	t.Helper()
	n := 0
	p := dynamodb.NewScanPaginator(client, &dynamodb.ScanInput{TableName: aws.String(blogTable), Select: types.SelectCount})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("Scan: %v", err)
		}
		n += int(page.Count)
	}
	return n
}

func str(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return fmt.Sprintf("<%s: not a string: %T>", name, item[name])
}

// fixedClock returns a clock that always reads t.
func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

// checkBalanced fails when a snapshot does not account for every accepted item exactly once.
func checkBalanced(t testing.TB, s Stats) {
	t.Helper()
	if s.Queued < 0 || s.Accepted != s.Written+s.Failed+uint64(s.Queued) {
		t.Errorf("accepted %d != written %d + failed %d + queued %d", s.Accepted, s.Written, s.Failed, s.Queued)
	}
	var byReason uint64
	for _, n := range s.FailedByReason {
		byReason += n
	}
	if byReason != s.Failed {
		t.Errorf("failed %d != sum of failed_by_reason %d (%v)", s.Failed, byReason, s.FailedByReason)
	}
}
