package rotation

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/streammatch/streammatch/internal/syncbuf"
	"github.com/streammatch/streammatch/local/agent"
	"github.com/streammatch/streammatch/secrets/valuefrom"
)

// fakeSecrets is a secretsAPI over one in-memory secret per ARN, with switches for the faults
// moto cannot produce on demand. It records every call.
type fakeSecrets struct {
	mu          sync.Mutex
	secrets     map[string]*fakeSecret
	describeErr error
	listErr     error
	pageSize    int // versions per ListSecretVersionIds page; 0 means all
	calls       []string
	regions     []string
}

type fakeSecret struct {
	stages      map[string][]string
	created     map[string]time.Time
	lastChanged time.Time
}

func newFakeSecrets() *fakeSecrets { return &fakeSecrets{secrets: map[string]*fakeSecret{}} }

// put adds version id, created at created, and moves AWSCURRENT to it (AWSPREVIOUS to the
// version that had AWSCURRENT), as PutSecretValue does.
func (f *fakeSecrets) put(arn, id string, created time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.secrets[arn]
	if s == nil {
		s = &fakeSecret{stages: map[string][]string{}, created: map[string]time.Time{}}
		f.secrets[arn] = s
	}
	for v, labels := range s.stages {
		var keep []string
		for _, l := range labels {
			switch l {
			case "AWSCURRENT":
				keep = append(keep, "AWSPREVIOUS")
			case "AWSPREVIOUS":
			default:
				keep = append(keep, l)
			}
		}
		s.stages[v] = keep
	}
	s.stages[id] = []string{"AWSCURRENT"}
	s.created[id] = created
	s.lastChanged = created
}

// moveStage moves stage to version id, as UpdateSecretVersionStage does, at time at.
func (f *fakeSecrets) moveStage(arn, stage, id string, at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.secrets[arn]
	for v, labels := range s.stages {
		var keep []string
		for _, l := range labels {
			if l != stage {
				keep = append(keep, l)
			}
		}
		s.stages[v] = keep
	}
	s.stages[id] = append(s.stages[id], stage)
	s.lastChanged = at
}

func (f *fakeSecrets) setErrors(describe, list error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.describeErr, f.listErr = describe, list
}

func (f *fakeSecrets) callCount(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c == name {
			n++
		}
	}
	return n
}

func (f *fakeSecrets) DescribeSecret(_ context.Context, in *secretsmanager.DescribeSecretInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("DescribeSecret", optFns)
	if f.describeErr != nil {
		return nil, f.describeErr
	}
	s := f.secrets[aws.ToString(in.SecretId)]
	if s == nil {
		return nil, &types.ResourceNotFoundException{Message: aws.String("Secrets Manager can't find the specified secret.")}
	}
	stages := map[string][]string{}
	for v, labels := range s.stages {
		if len(labels) > 0 {
			stages[v] = append([]string(nil), labels...)
		}
	}
	return &secretsmanager.DescribeSecretOutput{ARN: in.SecretId, VersionIdsToStages: stages, LastChangedDate: aws.Time(s.lastChanged)}, nil
}

func (f *fakeSecrets) ListSecretVersionIds(_ context.Context, in *secretsmanager.ListSecretVersionIdsInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.ListSecretVersionIdsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("ListSecretVersionIds", optFns)
	if f.listErr != nil {
		return nil, f.listErr
	}
	s := f.secrets[aws.ToString(in.SecretId)]
	if s == nil {
		return nil, &types.ResourceNotFoundException{Message: aws.String("Secrets Manager can't find the specified secret.")}
	}
	var all []types.SecretVersionsListEntry
	for v, created := range s.created {
		all = append(all, types.SecretVersionsListEntry{VersionId: aws.String(v), CreatedDate: aws.Time(created), VersionStages: s.stages[v]})
	}
	// Pages in a stable order: version ids sort as they were named in the tests.
	sortEntries(all)
	start := 0
	if in.NextToken != nil {
		_ = json.Unmarshal([]byte(*in.NextToken), &start)
	}
	end := len(all)
	if f.pageSize > 0 && start+f.pageSize < end {
		end = start + f.pageSize
	}
	out := &secretsmanager.ListSecretVersionIdsOutput{Versions: all[start:end]}
	if end < len(all) {
		b, _ := json.Marshal(end)
		out.NextToken = aws.String(string(b))
	}
	return out, nil
}

func (f *fakeSecrets) record(call string, optFns []func(*secretsmanager.Options)) {
	f.calls = append(f.calls, call)
	var o secretsmanager.Options
	for _, fn := range optFns {
		fn(&o)
	}
	f.regions = append(f.regions, o.Region)
}

func sortEntries(e []types.SecretVersionsListEntry) {
	for i := 1; i < len(e); i++ {
		for j := i; j > 0 && aws.ToString(e[j].VersionId) < aws.ToString(e[j-1].VersionId); j-- {
			e[j], e[j-1] = e[j-1], e[j]
		}
	}
}

var _ secretsAPI = (*fakeSecrets)(nil)

// startMetadata serves the task metadata endpoint v4 with local/agent, the same server the
// local run gives the app, and returns ECS_CONTAINER_METADATA_URI_V4. A nil time is left out
// of the answer.
func startMetadata(t *testing.T, pullStartedAt, startedAt *time.Time) (string, *agent.Server) {
	t.Helper()
	srv, err := agent.New(agent.Config{
		Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", ""),
		Token:       "metadata-test-token",
		Task:        agent.TaskMetadata{Family: "streammatch", Revision: "1", LaunchType: "FARGATE", PullStartedAt: pullStartedAt},
		Container:   agent.ContainerMetadata{Name: "streammatch", StartedAt: startedAt},
	}, "127.0.0.1:0")
	if err != nil {
		t.Fatalf("agent.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent Run: %v", err)
		}
	})
	return srv.MetadataURL("127.0.0.1"), srv
}

// ref parses a valueFrom or fails the test.
func ref(t *testing.T, name, valueFrom string) Secret {
	t.Helper()
	r, err := valuefrom.Parse(valueFrom)
	if err != nil {
		t.Fatalf("valuefrom.Parse(%q): %v", valueFrom, err)
	}
	return Secret{Name: name, Source: valueFrom, Ref: r}
}

// newTestChecker builds a checker that logs JSON into the returned buffer.
func newTestChecker(api secretsAPI, cfg Config) (*Checker, *syncbuf.Buffer) {
	logs := &syncbuf.Buffer{}
	cfg.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	if cfg.Interval == 0 {
		cfg.Interval = time.Hour
	}
	return NewChecker(api, cfg), logs
}

// logLines returns the log records with message msg.
func logLines(t *testing.T, logs string, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

func statusOf(t *testing.T, c *Checker, name string) Status {
	t.Helper()
	for _, s := range c.Statuses() {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no status for %s in %+v", name, c.Statuses())
	return Status{}
}
