package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/streammatch/streammatch/internal/syncbuf"
)

func TestRun_NamesMissingCredentials(t *testing.T) {
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"-addr", "127.0.0.1:0"}, func(k string) string {
		if k == "CONSUMERKEY" {
			return "ck-value-123"
		}
		return ""
	}, &out, &errb)
	if err == nil {
		t.Fatal("run: got nil error, want the missing credentials named")
	}
	for _, name := range []string{"CONSUMERSECRETKEY", "ACCESSTOKEN", "ACCESSTOKENSECRET"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
	if strings.Contains(err.Error()+out.String()+errb.String(), "ck-value-123") {
		t.Error("output contains a credential value")
	}
}

func TestRun_ServesTheEndpointAndStopsOnCancel(t *testing.T) {
	env := map[string]string{"CONSUMERKEY": "a", "CONSUMERSECRETKEY": "b", "ACCESSTOKEN": "c", "ACCESSTOKENSECRET": "d"}
	out := &syncbuf.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-rate", "1"}, func(k string) string { return env[k] }, out, out)
	}()
	var url string
	for deadline := time.Now().Add(10 * time.Second); url == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, line := range strings.Split(out.String(), "\n") {
			var rec struct{ Msg, URL string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "twittersim listening" {
				url = rec.URL
			}
		}
	}
	if url == "" {
		t.Fatalf("no listening line in output:\n%s", out.String())
	}
	// An unsigned request is refused: the simulator only streams to the four credentials.
	resp, err := http.Post(url+"/1.1/statuses/filter.json?track=x", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unsigned request: got %d, want 401", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after cancel")
	}
}
