package rotation

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/smithy-go"
	"go.uber.org/goleak"

	"github.com/streammatch/streammatch/local/agent"
)

const (
	twitterARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:streammatch/twitter-AbCdEf"
	otherARN   = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:other-XyZ123"
)

// taskTimes returns a pull start and a container start a minute ago, ten seconds apart.
func taskTimes() (pull, started time.Time) {
	started = time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
	return started.Add(-10 * time.Second), started
}

func TestChecker_DriftRule(t *testing.T) {
	pull, started := taskTimes()
	tests := []struct {
		name      string
		created   time.Time
		noPull    bool
		want      State
		wantIn    string
		rotatedAt bool
	}{
		{name: "created long before the pull", created: pull.Add(-time.Hour), want: Current, wantIn: "created before this task started"},
		{name: "created after the container started", created: started.Add(time.Second), want: Rotated, wantIn: "restart the task", rotatedAt: true},
		{name: "created while the task was starting", created: pull.Add(time.Second), want: Unknown, wantIn: DetailWhileStarting},
		{name: "no pull time: StartedAt decides", created: pull.Add(time.Second), noPull: true, want: Current},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newFakeSecrets()
			api.put(twitterARN, "v1", tt.created)
			p := &pull
			if tt.noPull {
				p = nil
			}
			url, _ := startMetadata(t, p, &started)
			c, logs := newTestChecker(api, Config{Secrets: []Secret{ref(t, "CONSUMERKEY", twitterARN+":CONSUMERKEY::")}, MetadataURL: url})
			c.check(context.Background())
			st := statusOf(t, c, "CONSUMERKEY")
			if st.State != tt.want || !strings.Contains(st.Detail, tt.wantIn) {
				t.Errorf("got %s (%q), want %s with %q", st.State, st.Detail, tt.want, tt.wantIn)
			}
			if !st.TaskStartedAt.Equal(started) || st.CheckedAt.IsZero() {
				t.Errorf("task_started_at %v checked_at %v, want %v and a check time", st.TaskStartedAt, st.CheckedAt, started)
			}
			if got := !st.RotatedAt.IsZero(); got != tt.rotatedAt {
				t.Errorf("rotated_at %v, want set=%v", st.RotatedAt, tt.rotatedAt)
			}
			if tt.rotatedAt && !st.RotatedAt.Equal(tt.created) {
				t.Errorf("rotated_at %v, want the version's creation %v", st.RotatedAt, tt.created)
			}
			select {
			case <-c.Rotated():
				if tt.want != Rotated {
					t.Errorf("Rotated() closed for state %s", tt.want)
				}
			default:
				if tt.want == Rotated {
					t.Errorf("Rotated() not closed after a rotation")
				}
			}
			if n := len(logLines(t, logs.String(), "secret rotated")); (n == 1) != (tt.want == Rotated) {
				t.Errorf("'secret rotated' logged %d times for state %s", n, tt.want)
			}
		})
	}
}

func TestChecker_PutDuringRunIsRotatedAndLoggedOnce(t *testing.T) {
	pull, started := taskTimes()
	api := newFakeSecrets()
	api.put(twitterARN, "v1", pull.Add(-time.Hour))
	url, _ := startMetadata(t, &pull, &started)
	names := []string{"CONSUMERKEY", "CONSUMERSECRETKEY", "ACCESSTOKEN", "ACCESSTOKENSECRET"}
	var secs []Secret
	for _, n := range names {
		secs = append(secs, ref(t, n, twitterARN+":"+n+"::"))
	}
	c, logs := newTestChecker(api, Config{Secrets: secs, MetadataURL: url})
	ctx := context.Background()

	c.check(ctx)
	for _, n := range names {
		if st := statusOf(t, c, n); st.State != Current {
			t.Fatalf("%s before rotation: got %s (%s), want current", n, st.State, st.Detail)
		}
	}
	// Four references to one secret cost one DescribeSecret per check, not four.
	if got := api.callCount("DescribeSecret"); got != 1 {
		t.Errorf("DescribeSecret calls in one check: got %d, want 1", got)
	}

	rotated := time.Now().UTC().Truncate(time.Millisecond)
	api.put(twitterARN, "v2", rotated)
	for range 3 {
		c.check(ctx)
	}
	for _, n := range names {
		st := statusOf(t, c, n)
		if st.State != Rotated || !st.RotatedAt.Equal(rotated) || !st.TaskStartedAt.Equal(started) {
			t.Errorf("%s after rotation: got %s at %v (task %v), want rotated at %v", n, st.State, st.RotatedAt, st.TaskStartedAt, rotated)
		}
		if !strings.Contains(st.Detail, "restart") {
			t.Errorf("%s detail %q does not say to restart", n, st.Detail)
		}
	}
	lines := logLines(t, logs.String(), "secret rotated")
	if len(lines) != len(names) {
		t.Fatalf("'secret rotated' lines: got %d, want one per secret (%d) over three checks:\n%s", len(lines), len(names), logs)
	}
	for _, l := range lines {
		for _, k := range []string{"name", "source", "rotated_at", "task_started_at"} {
			if _, ok := l[k]; !ok {
				t.Errorf("'secret rotated' lacks %s: %v", k, l)
			}
		}
	}
	select {
	case <-c.Rotated():
	default:
		t.Error("Rotated() not closed")
	}
}

func TestChecker_StageMovedBackIsCurrentAgain(t *testing.T) {
	pull, started := taskTimes()
	api := newFakeSecrets()
	api.put(twitterARN, "v1", pull.Add(-2*time.Hour))
	api.put(twitterARN, "v2", pull.Add(-time.Hour)) // the task started with v2
	url, _ := startMetadata(t, &pull, &started)
	c, logs := newTestChecker(api, Config{Secrets: []Secret{ref(t, "CONSUMERKEY", twitterARN+":CONSUMERKEY::")}, MetadataURL: url})
	ctx := context.Background()
	c.check(ctx)
	if st := statusOf(t, c, "CONSUMERKEY"); st.State != Current {
		t.Fatalf("at start: got %s (%s), want current", st.State, st.Detail)
	}
	// A stage moved by hand to an older version (UpdateSecretVersionStage): its creation date
	// says nothing, but the task holds v2, so the move is a rotation, dated by the change.
	moved := time.Now().UTC().Truncate(time.Millisecond)
	api.moveStage(twitterARN, "AWSCURRENT", "v1", moved)
	c.check(ctx)
	if st := statusOf(t, c, "CONSUMERKEY"); st.State != Rotated || !st.RotatedAt.Equal(moved) {
		t.Errorf("after moving AWSCURRENT to v1: got %s at %v, want rotated at %v", st.State, st.RotatedAt, moved)
	}
	api.moveStage(twitterARN, "AWSCURRENT", "v2", time.Now())
	c.check(ctx)
	if st := statusOf(t, c, "CONSUMERKEY"); st.State != Current || !st.RotatedAt.IsZero() {
		t.Errorf("after moving AWSCURRENT back to v2: got %s at %v, want current", st.State, st.RotatedAt)
	}
	if n := len(logLines(t, logs.String(), "secret current")); n != 2 {
		t.Errorf("'secret current' lines: got %d, want 2 (at start, after the move back)", n)
	}
}

func TestChecker_ReferenceStageAndPinnedVersion(t *testing.T) {
	pull, started := taskTimes()
	api := newFakeSecrets()
	api.put(twitterARN, "v1", pull.Add(-2*time.Hour))
	api.put(twitterARN, "v2", pull.Add(-time.Hour))
	url, _ := startMetadata(t, &pull, &started)
	c, _ := newTestChecker(api, Config{MetadataURL: url, Secrets: []Secret{
		ref(t, "PREVIOUS", twitterARN+":CONSUMERKEY:AWSPREVIOUS:"),
		ref(t, "PINNED", twitterARN+":CONSUMERKEY::v1"),
		ref(t, "PENDING", twitterARN+"::AWSPENDING:"),
	}})
	ctx := context.Background()
	c.check(ctx)
	api.put(twitterARN, "v3", time.Now()) // AWSPREVIOUS moves from v1 to v2
	c.check(ctx)
	if st := statusOf(t, c, "PREVIOUS"); st.State != Rotated || !strings.Contains(st.Detail, "AWSPREVIOUS") {
		t.Errorf("AWSPREVIOUS after a put: got %s (%s), want rotated naming AWSPREVIOUS", st.State, st.Detail)
	}
	if st := statusOf(t, c, "PINNED"); st.State != Current || st.Detail != DetailPinned {
		t.Errorf("pinned version: got %s (%s), want current (%s)", st.State, st.Detail, DetailPinned)
	}
	if st := statusOf(t, c, "PENDING"); st.State != Unknown || !strings.Contains(st.Detail, "no version of the secret holds stage AWSPENDING") {
		t.Errorf("missing stage: got %s (%s), want unknown naming AWSPENDING", st.State, st.Detail)
	}
}

func TestChecker_FaultsAreUnknownNamingTheCallAndCode(t *testing.T) {
	pull, started := taskTimes()
	denied := &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "User: arn:aws:sts::123456789012:assumed-role/task is not authorized to perform: secretsmanager:DescribeSecret"}
	throttled := &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded"}
	tests := []struct {
		name             string
		describe, list   error
		want, wantAbsent string
	}{
		{name: "DescribeSecret denied", describe: denied, want: "DescribeSecret: AccessDeniedException (the task role needs secretsmanager:DescribeSecret"},
		{name: "ListSecretVersionIds denied", list: denied, want: "ListSecretVersionIds: AccessDeniedException"},
		{name: "throttled", describe: throttled, want: "DescribeSecret: ThrottlingException", wantAbsent: "task role needs"},
		{name: "network", describe: errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), want: "DescribeSecret: dial tcp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newFakeSecrets()
			api.put(twitterARN, "v1", pull.Add(-time.Hour))
			url, _ := startMetadata(t, &pull, &started)
			c, logs := newTestChecker(api, Config{Secrets: []Secret{ref(t, "CONSUMERKEY", twitterARN+":CONSUMERKEY::")}, MetadataURL: url})
			api.setErrors(tt.describe, tt.list)
			c.check(context.Background())
			c.check(context.Background())
			st := statusOf(t, c, "CONSUMERKEY")
			if st.State != Unknown || !strings.HasPrefix(st.Detail, tt.want) {
				t.Errorf("got %s (%q), want unknown starting %q", st.State, st.Detail, tt.want)
			}
			if tt.wantAbsent != "" && strings.Contains(st.Detail, tt.wantAbsent) {
				t.Errorf("detail %q mentions %q", st.Detail, tt.wantAbsent)
			}
			if n := len(logLines(t, logs.String(), "secret drift unknown")); n != 1 {
				t.Errorf("'secret drift unknown' lines over two failed checks: got %d, want 1", n)
			}
			// The next check that works recovers.
			api.setErrors(nil, nil)
			c.check(context.Background())
			if st := statusOf(t, c, "CONSUMERKEY"); st.State != Current {
				t.Errorf("after the fault cleared: got %s (%s), want current", st.State, st.Detail)
			}
		})
	}
}

func TestChecker_UnknownWithoutSourceMetadataOrForSSM(t *testing.T) {
	api := newFakeSecrets()
	api.put(twitterARN, "v1", time.Now().Add(-time.Hour))
	tests := []struct {
		name     string
		cfg      Config
		want     string
		anyCalls bool
	}{
		{name: "SECRET_SOURCES not set", cfg: Config{NoSources: true, Secrets: []Secret{{Name: "CONSUMERKEY"}}}, want: DetailNoSources},
		{name: "no entry", cfg: Config{Secrets: []Secret{{Name: "CONSUMERKEY"}}}, want: DetailNoEntry},
		{name: "SSM parameter", cfg: Config{Secrets: []Secret{ref(t, "CONSUMERKEY", "/streammatch/CONSUMERKEY")}}, want: DetailParameterStore},
		{name: "SSM parameter ARN", cfg: Config{Secrets: []Secret{ref(t, "CONSUMERKEY", "arn:aws:ssm:us-east-1:123456789012:parameter/streammatch/CONSUMERKEY")}}, want: DetailParameterStore},
		{name: "check off", cfg: Config{Interval: -1, Secrets: []Secret{ref(t, "CONSUMERKEY", twitterARN+":CONSUMERKEY::")}}, want: DetailOff},
		{name: "no metadata endpoint", cfg: Config{Secrets: []Secret{ref(t, "CONSUMERKEY", twitterARN+":CONSUMERKEY::")}}, want: DetailNoMetadata, anyCalls: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := api.callCount("DescribeSecret")
			c, _ := newTestChecker(api, tt.cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- c.Run(ctx) }()
			deadline := time.Now().Add(2 * time.Second)
			for time.Now().Before(deadline) && statusOf(t, c, "CONSUMERKEY").Detail == DetailNotChecked {
				time.Sleep(5 * time.Millisecond)
			}
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
			st := statusOf(t, c, "CONSUMERKEY")
			if st.State != Unknown || st.Detail != tt.want {
				t.Errorf("got %s (%q), want unknown (%q)", st.State, st.Detail, tt.want)
			}
			if called := api.callCount("DescribeSecret") > before; called != tt.anyCalls {
				t.Errorf("DescribeSecret called: %v, want %v", called, tt.anyCalls)
			}
		})
	}
}

func TestChecker_NoMetadataStillSeesAChangeDuringTheRun(t *testing.T) {
	api := newFakeSecrets()
	api.put(twitterARN, "v1", time.Now().Add(-time.Hour))
	c, _ := newTestChecker(api, Config{Secrets: []Secret{ref(t, "CONSUMERKEY", twitterARN+":CONSUMERKEY::")}})
	c.check(context.Background())
	api.put(twitterARN, "v2", time.Now())
	c.check(context.Background())
	if st := statusOf(t, c, "CONSUMERKEY"); st.State != Rotated || !st.TaskStartedAt.IsZero() {
		t.Errorf("got %s (%s), task start %v; want rotated with no task start", st.State, st.Detail, st.TaskStartedAt)
	}
}

func TestChecker_MetadataWithoutStartedAtIsRetried(t *testing.T) {
	pull, started := taskTimes()
	api := newFakeSecrets()
	api.put(twitterARN, "v1", pull.Add(-time.Hour))
	url, srv := startMetadata(t, &pull, nil)
	c, _ := newTestChecker(api, Config{Secrets: []Secret{ref(t, "CONSUMERKEY", twitterARN+":CONSUMERKEY::")}, MetadataURL: url})
	c.check(context.Background())
	if st := statusOf(t, c, "CONSUMERKEY"); st.State != Unknown || !strings.Contains(st.Detail, "no StartedAt") {
		t.Errorf("before the container started: got %s (%q), want unknown saying there is no StartedAt", st.State, st.Detail)
	}
	srv.SetContainer(func(m *agent.ContainerMetadata) { m.StartedAt = &started })
	c.check(context.Background())
	if st := statusOf(t, c, "CONSUMERKEY"); st.State != Current {
		t.Errorf("once started: got %s (%q), want current", st.State, st.Detail)
	}
}

func TestChecker_CreationDateIsBoundedByLastChange(t *testing.T) {
	// moto answers the time of the call as every version's CreatedDate; the secret's last
	// change bounds it.
	pull, started := taskTimes()
	api := newFakeSecrets()
	api.put(twitterARN, "v1", time.Now().Add(time.Hour))
	api.mu.Lock()
	api.secrets[twitterARN].lastChanged = pull.Add(-time.Hour)
	api.mu.Unlock()
	url, _ := startMetadata(t, &pull, &started)
	c, _ := newTestChecker(api, Config{Secrets: []Secret{ref(t, "CONSUMERKEY", twitterARN+":CONSUMERKEY::")}, MetadataURL: url})
	c.check(context.Background())
	if st := statusOf(t, c, "CONSUMERKEY"); st.State != Current {
		t.Errorf("got %s (%q), want current", st.State, st.Detail)
	}
}

func TestChecker_ListsEveryPageAndCallsTheSecretsRegion(t *testing.T) {
	pull, started := taskTimes()
	api := newFakeSecrets()
	api.pageSize = 1
	api.put(otherARN, "v1", pull.Add(-3*time.Hour))
	api.put(otherARN, "v2", pull.Add(-2*time.Hour))
	api.put(otherARN, "v3", pull.Add(-time.Hour))
	url, _ := startMetadata(t, &pull, &started)
	c, _ := newTestChecker(api, Config{Secrets: []Secret{ref(t, "X_BEARER_TOKEN", otherARN)}, MetadataURL: url})
	c.check(context.Background())
	if st := statusOf(t, c, "X_BEARER_TOKEN"); st.State != Current {
		t.Errorf("got %s (%q), want current (v3 is on the last page)", st.State, st.Detail)
	}
	if got := api.callCount("ListSecretVersionIds"); got != 3 {
		t.Errorf("ListSecretVersionIds pages: got %d calls, want 3", got)
	}
	for _, r := range api.regions {
		if r != "eu-west-1" {
			t.Errorf("call sent to region %q, want the ARN's eu-west-1", r)
		}
	}
}

func TestChecker_RunChecksEveryIntervalAndLeavesNothingRunning(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	api := newFakeSecrets()
	api.put(twitterARN, "v1", time.Now().Add(-time.Hour))
	c, _ := newTestChecker(api, Config{Interval: 10 * time.Millisecond, Secrets: []Secret{ref(t, "CONSUMERKEY", twitterARN+":CONSUMERKEY::")}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for api.callCount("DescribeSecret") < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if got := api.callCount("DescribeSecret"); got < 3 {
		t.Errorf("DescribeSecret calls: got %d, want a check every interval", got)
	}
}
