package rotation

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/streammatch/streammatch/internal/leakcheck"
	"github.com/streammatch/streammatch/internal/mototest"
)

// The values are distinctive so that the leak check can search every output for them.
const (
	motoValueBefore = `{"CONSUMERKEY":"CK-rotation-moto-1a2b3c","ACCESSTOKEN":"AT-rotation-moto-4d5e6f"}`
	motoValueAfter  = `{"CONSUMERKEY":"CK-rotation-moto-7a8b9c","ACCESSTOKEN":"AT-rotation-moto-0d1e2f"}`
)

func TestChecker_OnMoto_PutSecretValueTurnsCurrentIntoRotated(t *testing.T) {
	moto := mototest.Start(t)
	sm := secretsmanager.NewFromConfig(moto.AWSConfig(t))
	ctx := context.Background()
	created, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("streammatch/twitter"), SecretString: aws.String(motoValueBefore)})
	if err != nil {
		t.Fatalf("CreateSecret: %v", err)
	}
	arn := aws.ToString(created.ARN)

	// The task starts after the secret exists, as on ECS.
	pull := time.Now().UTC()
	started := pull.Add(50 * time.Millisecond)
	url, _ := startMetadata(t, &pull, &started)
	c, logs := newTestChecker(sm, Config{
		Interval:    100 * time.Millisecond,
		MetadataURL: url,
		Secrets: []Secret{
			ref(t, "CONSUMERKEY", arn+":CONSUMERKEY::"),
			ref(t, "ACCESSTOKEN", arn+":ACCESSTOKEN::"),
			ref(t, "PINNED", arn+":CONSUMERKEY::"+aws.ToString(created.VersionId)),
		},
	})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	waitState(t, c, "CONSUMERKEY", Current)
	// moto answers the time of the call as every version's CreatedDate, in whole seconds: past
	// the next second it would be after the task's start, and only the bound by the secret's
	// LastChangedDate keeps the secret current.
	time.Sleep(1100 * time.Millisecond)
	if st := statusOf(t, c, "CONSUMERKEY"); st.State != Current {
		t.Fatalf("still before the rotation: got %s (%s), want current", st.State, st.Detail)
	}
	if _, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(arn), SecretString: aws.String(motoValueAfter)}); err != nil {
		t.Fatalf("PutSecretValue: %v", err)
	}
	for _, name := range []string{"CONSUMERKEY", "ACCESSTOKEN"} {
		st := waitState(t, c, name, Rotated)
		if st.RotatedAt.IsZero() || !st.TaskStartedAt.Equal(started) || st.Source != arn+":"+name+"::" {
			t.Errorf("%s: got rotated_at %v task_started_at %v source %q", name, st.RotatedAt, st.TaskStartedAt, st.Source)
		}
	}
	if st := statusOf(t, c, "PINNED"); st.State != Current {
		t.Errorf("pinned version after the put: got %s (%s), want current", st.State, st.Detail)
	}
	select {
	case <-c.Rotated():
	default:
		t.Error("Rotated() not closed")
	}
	time.Sleep(300 * time.Millisecond) // a few more checks: still one log line per secret
	if n := len(logLines(t, logs.String(), "secret rotated")); n != 2 {
		t.Errorf("'secret rotated' lines: got %d, want 2 (one per secret)\n%s", n, logs)
	}
	var details []string
	for _, st := range c.Statuses() {
		details = append(details, st.Detail, st.Source)
	}
	leakcheck.Assert(t, []string{"CK-rotation-moto-1a2b3c", "AT-rotation-moto-4d5e6f", "CK-rotation-moto-7a8b9c", "AT-rotation-moto-0d1e2f"},
		map[string]string{"logs": logs.String(), "statuses": strings.Join(details, "\n")})
}

func TestChecker_OnMoto_UnknownSecretIsResourceNotFound(t *testing.T) {
	moto := mototest.Start(t)
	sm := secretsmanager.NewFromConfig(moto.AWSConfig(t))
	c, _ := newTestChecker(sm, Config{Secrets: []Secret{ref(t, "CONSUMERKEY", "arn:aws:secretsmanager:us-east-1:123456789012:secret:gone-AbCdEf:CONSUMERKEY::")}})
	c.check(context.Background())
	if st := statusOf(t, c, "CONSUMERKEY"); st.State != Unknown || st.Detail != "DescribeSecret: ResourceNotFoundException" {
		t.Errorf("got %s (%q), want unknown with DescribeSecret: ResourceNotFoundException", st.State, st.Detail)
	}
}

// waitState polls the checker until name has state want.
func waitState(t *testing.T, c *Checker, name string, want State) Status {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var st Status
	for time.Now().Before(deadline) {
		if st = statusOf(t, c, name); st.State == want {
			return st
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: timed out waiting for %s; last %s (%s)", name, want, st.State, st.Detail)
	return st
}
