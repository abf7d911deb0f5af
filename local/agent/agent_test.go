package agent

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/endpointcreds"
)

// countingProvider hands out numbered credentials that expire after ttl, so a test can see
// when the Server refreshed them.
type countingProvider struct {
	calls atomic.Int32
	ttl   time.Duration
	fail  bool
}

func (p *countingProvider) Retrieve(context.Context) (aws.Credentials, error) {
	n := p.calls.Add(1)
	if p.fail {
		return aws.Credentials{}, errors.New("AccessDenied: not authorized to perform sts:AssumeRole on role/task")
	}
	return aws.Credentials{
		AccessKeyID: "ASIATASK" + string(rune('0'+n)), SecretAccessKey: "task-secret", SessionToken: "task-session",
		CanExpire: true, Expires: time.Now().Add(p.ttl),
	}, nil
}

func startServer(t *testing.T, prov aws.CredentialsProvider, window time.Duration) *Server {
	t.Helper()
	s, err := New(Config{
		Credentials:  prov,
		RoleArn:      "arn:aws:iam::123456789012:role/streammatch-task-role",
		Token:        "token-123",
		ExpiryWindow: window,
		Task:         TaskMetadata{Family: "streammatch", Revision: "1", LaunchType: "FARGATE", TaskARN: "arn:aws:ecs:us-east-1:123456789012:task/streammatch/abc"},
		Container:    ContainerMetadata{Name: "streammatch", DockerID: "abc-1"},
	}, "127.0.0.1:0")
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return s
}

func get(t *testing.T, url, auth string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServer_CredentialsNeedTheAuthorizationToken(t *testing.T) {
	s := startServer(t, &countingProvider{ttl: time.Hour}, 0)
	tests := []struct {
		name string
		auth string
		want int
	}{
		{"no header", "", http.StatusUnauthorized},
		{"wrong token", "token-124", http.StatusUnauthorized},
		{"token as prefix", "token-1234", http.StatusUnauthorized},
		{"right token", "token-123", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := get(t, s.CredentialsURL("127.0.0.1"), tt.auth)
			if code != tt.want {
				t.Fatalf("status = %d, want %d; body %s", code, tt.want, body)
			}
			if code != http.StatusOK && strings.Contains(body, "ASIA") {
				t.Errorf("a refused request got keys: %s", body)
			}
		})
	}
}

func TestServer_CredentialsHaveTheSDKShape(t *testing.T) {
	s := startServer(t, &countingProvider{ttl: time.Hour}, 0)
	code, body := get(t, s.CredentialsURL("127.0.0.1"), "token-123")
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	var got map[string]string
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	for _, k := range []string{"AccessKeyId", "SecretAccessKey", "Token", "Expiration", "RoleArn"} {
		if got[k] == "" {
			t.Errorf("field %s missing in %s", k, body)
		}
	}
	if _, err := time.Parse(time.RFC3339, got["Expiration"]); err != nil {
		t.Errorf("Expiration %q is not RFC 3339: %v", got["Expiration"], err)
	}

	// The SDK's own provider, as the app's default chain uses it, accepts the answer.
	p := endpointcreds.New(s.CredentialsURL("127.0.0.1"), func(o *endpointcreds.Options) { o.AuthorizationToken = "token-123" })
	c, err := p.Retrieve(context.Background())
	if err != nil {
		t.Fatalf("endpointcreds: %v", err)
	}
	if c.AccessKeyID != got["AccessKeyId"] || !c.CanExpire {
		t.Errorf("endpointcreds got %q (CanExpire %v), want %q and an expiry", c.AccessKeyID, c.CanExpire, got["AccessKeyId"])
	}
}

func TestServer_RefreshesCredentialsBeforeTheyExpire(t *testing.T) {
	// Credentials that live 2 minutes are inside the 5-minute window at once: every request
	// must fetch fresh ones rather than hand out keys about to expire.
	prov := &countingProvider{ttl: 2 * time.Minute}
	s := startServer(t, prov, 5*time.Minute)
	_, first := get(t, s.CredentialsURL("127.0.0.1"), "token-123")
	_, second := get(t, s.CredentialsURL("127.0.0.1"), "token-123")
	if got := prov.calls.Load(); got != 2 {
		t.Errorf("provider called %d times, want 2 (a refresh for each request inside the window)", got)
	}
	if first == second {
		t.Errorf("both answers are the same: %s", first)
	}

	// Long-lived credentials are cached.
	prov2 := &countingProvider{ttl: time.Hour}
	s2 := startServer(t, prov2, 5*time.Minute)
	for range 3 {
		get(t, s2.CredentialsURL("127.0.0.1"), "token-123")
	}
	if got := prov2.calls.Load(); got != 1 {
		t.Errorf("provider called %d times for credentials valid an hour, want 1", got)
	}
}

func TestServer_AssumeRoleFailureIsA500WithoutKeys(t *testing.T) {
	s := startServer(t, &countingProvider{fail: true}, 0)
	code, body := get(t, s.CredentialsURL("127.0.0.1"), "token-123")
	if code != http.StatusInternalServerError || !strings.Contains(body, "cannot assume the task role") {
		t.Errorf("got %d %s, want 500 naming the task role", code, body)
	}
}

func TestServer_TaskMetadataV4(t *testing.T) {
	s := startServer(t, &countingProvider{ttl: time.Hour}, 0)
	s.SetContainer(func(c *ContainerMetadata) { c.DockerID = "container-id-1" })
	s.SetKnownStatus("RUNNING")

	code, body := get(t, s.MetadataURL("127.0.0.1")+"/task", "")
	if code != http.StatusOK {
		t.Fatalf("task: %d %s", code, body)
	}
	var task TaskMetadata
	if err := json.Unmarshal([]byte(body), &task); err != nil {
		t.Fatal(err)
	}
	if task.Family != "streammatch" || task.Revision != "1" || task.LaunchType != "FARGATE" || task.KnownStatus != "RUNNING" {
		t.Errorf("task = %+v, want family streammatch revision 1 FARGATE RUNNING", task)
	}
	if len(task.Containers) != 1 || task.Containers[0].DockerID != "container-id-1" || task.Containers[0].Name != "streammatch" {
		t.Errorf("containers = %+v, want the one container with its id", task.Containers)
	}

	code, body = get(t, s.MetadataURL("127.0.0.1"), "")
	if code != http.StatusOK || !strings.Contains(body, `"DockerId":"container-id-1"`) {
		t.Errorf("container: %d %s", code, body)
	}
}

// The drift check reads the task's start from these times: the container's StartedAt on its
// own endpoint and in /task, and the task's PullStartedAt and PullStoppedAt.
func TestServer_TaskMetadataV4_CarriesTheStartTimes(t *testing.T) {
	s := startServer(t, &countingProvider{ttl: time.Hour}, 0)
	pullStarted := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	pullStopped, started := pullStarted.Add(2*time.Second), pullStarted.Add(3*time.Second)
	s.SetTask(func(t *TaskMetadata) { t.PullStartedAt, t.PullStoppedAt = &pullStarted, &pullStopped })
	s.SetContainer(func(c *ContainerMetadata) { c.StartedAt = &started })

	_, body := get(t, s.MetadataURL("127.0.0.1")+"/task", "")
	var task TaskMetadata
	if err := json.Unmarshal([]byte(body), &task); err != nil {
		t.Fatal(err)
	}
	if task.PullStartedAt == nil || !task.PullStartedAt.Equal(pullStarted) || task.PullStoppedAt == nil || !task.PullStoppedAt.Equal(pullStopped) {
		t.Errorf("PullStartedAt %v PullStoppedAt %v, want %v and %v", task.PullStartedAt, task.PullStoppedAt, pullStarted, pullStopped)
	}
	if len(task.Containers) != 1 || task.Containers[0].StartedAt == nil || !task.Containers[0].StartedAt.Equal(started) {
		t.Errorf("Containers = %+v, want one with StartedAt %v", task.Containers, started)
	}
	_, body = get(t, s.MetadataURL("127.0.0.1"), "")
	var c ContainerMetadata
	if err := json.Unmarshal([]byte(body), &c); err != nil || c.StartedAt == nil || !c.StartedAt.Equal(started) {
		t.Errorf("container endpoint StartedAt = %v (%v), want %v", c.StartedAt, err, started)
	}
}

func TestServer_UnknownPathsAre404(t *testing.T) {
	s := startServer(t, &countingProvider{ttl: time.Hour}, 0)
	base := "http://" + s.Addr()
	for _, p := range []string{"/", "/v2/credentials/guess", "/v4/guess/task", "/v2/credentials/"} {
		if code, body := get(t, base+p, "token-123"); code != http.StatusNotFound || strings.Contains(body, "ASIA") {
			t.Errorf("GET %s = %d %s, want 404 without keys", p, code, body)
		}
	}
}
