package main

// The end-to-end tests of the secret audit and the drift check: run() against moto_server's
// Secrets Manager and a task metadata endpoint (local/agent, the one the local run serves).

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/streammatch/streammatch/fingerprint"
	"github.com/streammatch/streammatch/internal/leakcheck"
	"github.com/streammatch/streammatch/local/agent"
	"github.com/streammatch/streammatch/rotation"
	"github.com/streammatch/streammatch/twittersim"
)

// rotatedCreds are the values PutSecretValue writes mid-run; the leak checks search for them
// too.
var rotatedCreds = twittersim.Credentials{
	ConsumerKey:       "CK-rotated-leakcheck-51c2ee",
	ConsumerSecret:    "CS-rotated-leakcheck-0a9b7d+/=",
	AccessToken:       "AT-rotated-leakcheck-66f0a3",
	AccessTokenSecret: "ATS-rotated-leakcheck-d1e2f3&?",
}

// secretJSON is the blog's secret: one JSON object with the four keys.
func secretJSON(t *testing.T, c twittersim.Credentials) string {
	t.Helper()
	b, err := json.Marshal(map[string]string{
		"CONSUMERKEY": c.ConsumerKey, "CONSUMERSECRETKEY": c.ConsumerSecret,
		"ACCESSTOKEN": c.AccessToken, "ACCESSTOKENSECRET": c.AccessTokenSecret,
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// auditStatus is the secrets part of /api/status with the audit fields.
type auditStatus struct {
	Health  struct{ Status string } `json:"health"`
	Secrets []struct {
		Name          string    `json:"name"`
		Fingerprint   string    `json:"fingerprint"`
		Source        string    `json:"source"`
		State         string    `json:"state"`
		Detail        string    `json:"detail"`
		RotatedAt     time.Time `json:"rotated_at"`
		TaskStartedAt time.Time `json:"task_started_at"`
		CheckedAt     time.Time `json:"checked_at"`
	} `json:"secrets"`
	Counters struct{ Matched, Written uint64 } `json:"counters"`
}

func (s *service) audit() auditStatus {
	s.t.Helper()
	code, body := s.get("/api/status")
	if code != 200 {
		s.t.Fatalf("/api/status: %d %s", code, body)
	}
	var st auditStatus
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		s.t.Fatalf("/api/status: %v\n%s", err, body)
	}
	return st
}

func (s *service) waitAudit(what string, cond func(auditStatus) bool) auditStatus {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var st auditStatus
	for time.Now().Before(deadline) {
		if st = s.audit(); cond(st) {
			return st
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("timed out waiting for %s; last %+v\nlogs:\n%s", what, st.Secrets, tail(s.stdout.String(), 30))
	return st
}

// allSecrets reports whether every secret has state and, when fingerprinted is set, a
// fingerprint.
func allSecrets(st auditStatus, state string, fingerprinted bool) bool {
	if len(st.Secrets) != 4 {
		return false
	}
	for _, sec := range st.Secrets {
		if sec.State != state || (fingerprinted && sec.Fingerprint == "") {
			return false
		}
	}
	return true
}

// withSecretInMoto creates the blog's secret with testCreds in the fixture's moto and sets
// SECRET_SOURCES to its four keys, as register-taskdef.sh renders it. It returns the client and
// the secret's ARN.
func withSecretInMoto(f *fixture) (*secretsmanager.Client, string) {
	f.t.Helper()
	sm := secretsmanager.NewFromConfig(f.moto.AWSConfig(f.t))
	out, err := sm.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{
		Name: aws.String("streammatch/twitter"), SecretString: aws.String(secretJSON(f.t, testCreds)),
	})
	if err != nil {
		f.t.Fatalf("CreateSecret: %v", err)
	}
	arn := aws.ToString(out.ARN)
	sources := map[string]string{}
	for _, name := range secretNames {
		sources[name] = arn + ":" + name + "::"
	}
	b, _ := json.Marshal(sources)
	f.env["SECRET_SOURCES"] = string(b)
	return sm, arn
}

// withTaskStartingNow serves task metadata v4 for a task whose image pull and container start
// are now, after the secret was created, and points ECS_CONTAINER_METADATA_URI_V4 at it.
func withTaskStartingNow(f *fixture) time.Time {
	f.t.Helper()
	pull := time.Now().UTC()
	started := pull.Add(20 * time.Millisecond)
	srv, err := agent.New(agent.Config{
		Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", ""),
		Token:       "metadata-test-token",
		Task:        agent.TaskMetadata{Family: "streammatch", Revision: "1", LaunchType: "FARGATE", PullStartedAt: &pull},
		Container:   agent.ContainerMetadata{Name: "streammatch", StartedAt: &started},
	}, "127.0.0.1:0")
	if err != nil {
		f.t.Fatalf("agent.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	f.t.Cleanup(func() { cancel(); <-done })
	f.env["ECS_CONTAINER_METADATA_URI_V4"] = srv.MetadataURL("127.0.0.1")
	return started
}

// putRotated writes rotatedCreds as the secret's new AWSCURRENT version.
func putRotated(t *testing.T, sm *secretsmanager.Client, arn string) {
	t.Helper()
	if _, err := sm.PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(arn), SecretString: aws.String(secretJSON(t, rotatedCreds)),
	}); err != nil {
		t.Fatalf("PutSecretValue: %v", err)
	}
}

// assertNoSecretEither searches every output for the values before and after the rotation.
func (s *service) assertNoSecretEither() {
	s.t.Helper()
	s.assertNoLeak()
	s.bodyMu.Lock()
	outputs := map[string]string{"stdout": s.stdout.String(), "stderr": s.stderr.String(), "http": strings.Join(s.bodies, "\n")}
	s.bodyMu.Unlock()
	leakcheck.Assert(s.t, []string{rotatedCreds.ConsumerKey, rotatedCreds.ConsumerSecret, rotatedCreds.AccessToken, rotatedCreds.AccessTokenSecret}, outputs)
}

// logCount counts the JSON log records with message msg and, if name is not "", that name.
func logCount(logs, msg, name string) int {
	n := 0
	for _, line := range strings.Split(logs, "\n") {
		var rec struct{ Msg, Name string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == msg && (name == "" || rec.Name == name) {
			n++
		}
	}
	return n
}

func TestService_SecretRotationShowsRotatedAndHealthStays200(t *testing.T) {
	f := newFixture(t, testCreds, withEnv("ROTATION_CHECK_INTERVAL", "1s"))
	sm, arn := withSecretInMoto(f)
	started := withTaskStartingNow(f)
	s := f.start()

	st := s.waitAudit("every secret current and fingerprinted", func(st auditStatus) bool { return allSecrets(st, "current", true) })
	values := map[string]string{"CONSUMERKEY": testCreds.ConsumerKey, "CONSUMERSECRETKEY": testCreds.ConsumerSecret,
		"ACCESSTOKEN": testCreds.AccessToken, "ACCESSTOKENSECRET": testCreds.AccessTokenSecret}
	for _, sec := range st.Secrets {
		source := arn + ":" + sec.Name + "::"
		if sec.Source != source {
			t.Errorf("%s: source %q, want %q", sec.Name, sec.Source, source)
		}
		if want := fingerprint.Of(sec.Name, source, values[sec.Name]); sec.Fingerprint != want {
			t.Errorf("%s: fingerprint %q, want %q (fp3 salted with the source)", sec.Name, sec.Fingerprint, want)
		}
		if !sec.TaskStartedAt.Equal(started) || sec.CheckedAt.IsZero() || !sec.RotatedAt.IsZero() {
			t.Errorf("%s: task_started_at %v checked_at %v rotated_at %v, want %v, a check time, none", sec.Name, sec.TaskStartedAt, sec.CheckedAt, sec.RotatedAt, started)
		}
	}

	putRotated(t, sm, arn)
	st = s.waitAudit("every secret rotated", func(st auditStatus) bool { return allSecrets(st, "rotated", true) })
	for _, sec := range st.Secrets {
		if sec.RotatedAt.IsZero() || !sec.TaskStartedAt.Equal(started) || !strings.Contains(sec.Detail, "restart") {
			t.Errorf("%s: rotated_at %v task_started_at %v detail %q, want both times and a restart hint", sec.Name, sec.RotatedAt, sec.TaskStartedAt, sec.Detail)
		}
	}
	if code, body := s.get("/healthz"); code != 200 {
		t.Errorf("/healthz with rotated secrets: %d %s, want 200", code, body)
	}
	if _, page := s.get("/"); !strings.Contains(page, "this task started at") || !strings.Contains(page, "restart to pick it up") || !strings.Contains(page, arn) {
		t.Errorf("status page lacks the rotation message or the source:\n%s", page)
	}
	// Two more checks: the rotation is logged once per secret, not once per check.
	time.Sleep(2200 * time.Millisecond)
	for _, name := range secretNames {
		if n := logCount(s.stdout.String(), "secret rotated", name); n != 1 {
			t.Errorf("'secret rotated' for %s logged %d times, want once", name, n)
		}
	}
	if st := s.audit(); st.Health.Status != "ok" {
		t.Errorf("health with rotated secrets: %q, want ok", st.Health.Status)
	}
	s.stop()
	s.assertNoSecretEither()
}

func TestService_SecretRotationWithActionExitDrainsAndReturnsNil(t *testing.T) {
	f := newFixture(t, testCreds, withEnv("ROTATION_CHECK_INTERVAL", "1s", "ROTATION_ACTION", "exit"))
	sm, arn := withSecretInMoto(f)
	withTaskStartingNow(f)
	s := f.start()
	s.waitAudit("current secrets and some writes", func(st auditStatus) bool {
		return allSecrets(st, "current", false) && st.Counters.Written >= 10
	})

	putRotated(t, sm, arn)
	select {
	case err := <-s.done:
		s.stopped = true
		if err != nil {
			t.Fatalf("run after a rotation with ROTATION_ACTION=exit: %v, want nil (exit 0)", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("run did not return after the rotation; logs:\n%s", tail(s.stdout.String(), 20))
	}
	logs := s.stdout.String()
	if logCount(logs, "secret rotated", "") == 0 || logCount(logs, "shutting down: a secret was rotated", "") != 1 {
		t.Errorf("logs do not say why the service stopped:\n%s", tail(logs, 20))
	}
	last := finalCounters(t, logs)
	if last.Failed != 0 || last.Matched != last.Written {
		t.Errorf("after the exit: matched %d, written %d, failed %d; want every match written", last.Matched, last.Written, last.Failed)
	}
	if got := uint64(len(s.scanIDs())); got != last.Written {
		t.Errorf("items in the table: %d, want written=%d", got, last.Written)
	}
	if got := s.sim.Stats().MaxConnections; got > 1 {
		t.Errorf("the simulator saw %d connections at once, want at most 1", got)
	}
	s.assertNoSecretEither()
}

func TestService_SecretStateUnknownWithoutSourcesOrMetadata(t *testing.T) {
	t.Run("no SECRET_SOURCES", func(t *testing.T) {
		s := startService(t, testCreds)
		st := s.waitAudit("fingerprints", func(st auditStatus) bool { return allSecrets(st, "unknown", true) })
		for _, sec := range st.Secrets {
			if sec.Source != "" || sec.Detail != rotation.DetailNoSources || !sec.CheckedAt.IsZero() {
				t.Errorf("%s: source %q detail %q checked_at %v, want no source and %q", sec.Name, sec.Source, sec.Detail, sec.CheckedAt, rotation.DetailNoSources)
			}
		}
		s.stop()
		s.assertNoLeak()
	})
	t.Run("no metadata endpoint, an SSM parameter, an entry missing", func(t *testing.T) {
		f := newFixture(t, testCreds)
		_, arn := withSecretInMoto(f)
		sources, _ := json.Marshal(map[string]string{
			"CONSUMERKEY":       arn + ":CONSUMERKEY::",
			"CONSUMERSECRETKEY": "/streammatch/CONSUMERSECRETKEY",
			"ACCESSTOKEN":       arn + ":ACCESSTOKEN::",
		})
		f.env["SECRET_SOURCES"] = string(sources)
		s := f.start()
		want := map[string]string{
			"CONSUMERKEY":       rotation.DetailNoMetadata,
			"CONSUMERSECRETKEY": rotation.DetailParameterStore,
			"ACCESSTOKEN":       rotation.DetailNoMetadata,
			"ACCESSTOKENSECRET": rotation.DetailNoEntry,
		}
		st := s.waitAudit("the first check", func(st auditStatus) bool {
			if !allSecrets(st, "unknown", true) {
				return false
			}
			for _, sec := range st.Secrets {
				if sec.Detail != want[sec.Name] {
					return false
				}
			}
			return true
		})
		for _, sec := range st.Secrets {
			if sec.Name == "CONSUMERKEY" && (sec.CheckedAt.IsZero() || !sec.TaskStartedAt.IsZero()) {
				t.Errorf("%s: checked_at %v task_started_at %v, want checked and no task start", sec.Name, sec.CheckedAt, sec.TaskStartedAt)
			}
		}
		if code, _ := s.get("/healthz"); code != 200 {
			t.Errorf("/healthz: %d, want 200", code)
		}
		s.stop()
		s.assertNoLeak()
	})
}
