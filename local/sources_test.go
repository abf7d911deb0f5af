package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// TestLocal_EverySourceEndToEnd runs -source x and -source mastodon in process mode, each
// against its simulator: the app gets its source's secret from streammatch/SOURCE through
// the execution role, its stream setting points at the simulator, the simulator accepts only
// the secret's token, and matching posts end up in DynamoDB.
func TestLocal_EverySourceEndToEnd(t *testing.T) {
	requireMoto(t)
	tests := []struct {
		source, key, value, setting string
	}{
		// Values with characters that URL and JSON encoding change, for the leak check.
		{"x", "X_BEARER_TOKEN", "AAAAAAAAAAAAAAAAAAAAAxleak%2Bq7c0ffee+/=", "X_STREAM_URL"},
		{"mastodon", "MASTODON_ACCESS_TOKEN", "mleak-9f2e_c41d&?<token", "MASTODON_URL"},
	}
	for _, tt := range tests {
		t.Run(tt.source, func(t *testing.T) {
			creds := map[string]string{tt.key: tt.value}
			file := filepath.Join(t.TempDir(), tt.source+".env")
			if err := os.WriteFile(file, []byte(fmt.Sprintf("%s=%s\n", tt.key, tt.value)), 0o600); err != nil {
				t.Fatal(err)
			}
			r := startLocal(t, "-source", tt.source, "-aws", "moto", "-run", "process", "-addr", "127.0.0.1:0",
				"-secrets", file, "-filter", testFilter, "-rate", "40", "-keepalive", "1s")
			r.creds = creds
			checkSourceRun(t, r, tt.source, tt.key, tt.setting)
			if err := r.stop(); err != nil {
				t.Errorf("run after Ctrl-C = %v, want nil", err)
			}
			checkSummaryAndTeardown(t, r)
			r.assertNoLeak(t)
		})
	}
}

func checkSourceRun(t *testing.T, r *localRun, source, key, setting string) {
	t.Helper()
	endpoint := r.waitLine(reEndpoint, 2*time.Minute)[1]
	base := r.waitLine(rePage, 4*time.Minute)[1]
	pid, _ := strconv.Atoi(r.waitLine(rePID, time.Second)[1])
	sim := r.waitLine(reSim, time.Second)[1]

	st := r.waitStatus(base, "the "+source+" secret fingerprinted and 3 items written", func(st apiStatus) bool {
		return len(st.Secrets) == 1 && st.Secrets[0].Fingerprint != "" && st.Counters.Written >= 3
	})
	if s := st.Secrets[0]; s.Name != key || !s.Set {
		t.Errorf("page secret %+v, want %s set", s, key)
	}
	checkFingerprints(t, st, r.creds)
	if st.Counters.Matched >= st.Counters.Received {
		t.Errorf("received %d, matched %d: the simulator also sends posts the filter drops, want fewer matched", st.Counters.Received, st.Counters.Matched)
	}

	db := dynamodb.NewFromConfig(emulatorConfig(endpoint, "us-east-1"))
	out, err := db.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String("twitterStream")})
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	if len(out.Items) < 3 {
		t.Fatalf("table holds %d items, want at least 3", len(out.Items))
	}
	for _, it := range out.Items {
		matched, _ := it["matched"].(*ddbtypes.AttributeValueMemberSS)
		if matched == nil || len(matched.Value) == 0 {
			t.Fatalf("item without matched phrases: %v", it)
		}
		for _, m := range matched.Value {
			if !strings.Contains(","+testFilter+",", ","+m+",") {
				t.Errorf("item matched %q, which is not a phrase of the filter %q", m, testFilter)
			}
		}
	}

	env := appEnviron(t, pid)
	if env[key] != r.creds[key] {
		t.Errorf("%s in the app's environment is not the value from the secrets file", key)
	}
	if env["SOURCE"] != source || env[setting] != sim {
		t.Errorf("SOURCE=%q %s=%q, want %s and the simulator %s", env["SOURCE"], setting, env[setting], source, sim)
	}
	for _, other := range []string{"CONSUMERKEY", "X_BEARER_TOKEN", "MASTODON_ACCESS_TOKEN"} {
		if _, ok := env[other]; ok && other != key {
			t.Errorf("the app's environment holds %s, a secret of another source", other)
		}
	}
	var sources map[string]string
	if err := json.Unmarshal([]byte(env["SECRET_SOURCES"]), &sources); err != nil || len(sources) != 1 {
		t.Fatalf("SECRET_SOURCES %q: %v, want one entry", env["SECRET_SOURCES"], err)
	}
	re := regexp.MustCompile(`^arn:aws:secretsmanager:us-east-1:123456789012:secret:streammatch/` + source + `-[A-Za-z0-9]{6}:` + key + `::$`)
	if !re.MatchString(sources[key]) {
		t.Errorf("SECRET_SOURCES[%s] = %q, want the ARN of streammatch/%s with :%s::", key, sources[key], source, key)
	}

	// The simulator: its counters, and a request without the token refused.
	code, body := r.fetch(http.MethodGet, sim+controlPrefix+"status", nil)
	var counters struct {
		Stats struct{ Streams, Posts, Unauthorized, Rules int }
	}
	if err := json.Unmarshal([]byte(body), &counters); code != http.StatusOK || err != nil {
		t.Fatalf("simulator status = %d %s (%v)", code, body, err)
	}
	if counters.Stats.Streams < 1 || counters.Stats.Posts < 3 || counters.Stats.Unauthorized != 0 {
		t.Errorf("simulator counters %+v, want a stream, posts and no refusal", counters.Stats)
	}
	if source == "x" && counters.Stats.Rules != 2 {
		t.Errorf("simulator holds %d rules, want one per FILTER phrase (2): the app syncs them before it streams", counters.Stats.Rules)
	}
	path := xStreamPath
	if source == "mastodon" {
		path = mastodonPath
	}
	if code, _ := r.fetch(http.MethodGet, sim+path, map[string]string{"Authorization": "Bearer wrong"}); code != http.StatusUnauthorized {
		t.Errorf("GET %s with a wrong token = %d, want 401", path, code)
	}
}
