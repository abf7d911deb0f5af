package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/streammatch/streammatch/fingerprint"
)

func runCmd(t *testing.T, env map[string]string, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, envOf(env), strings.NewReader(stdin), &out, &errb)
	code = exitCode(err, &errb)
	return out.String(), errb.String(), code
}

func TestRun_BadConfigExits2BeforeAnyNetworkCall(t *testing.T) {
	env := with(validEnv(), "DYNAMODBTABLE", "<unset>", "SOURCE", "nope",
		// A network call would fail loudly and differently: these point nowhere.
		"AWS_ENDPOINT_URL", "http://127.0.0.1:1", "TWITTER_STREAM_URL", "http://127.0.0.1:1")
	_, stderr, code := runCmd(t, env, "")
	if code != 2 {
		t.Fatalf("exit code: got %d, want 2; stderr:\n%s", code, stderr)
	}
	for _, want := range []string{"DYNAMODBTABLE is not set", `SOURCE "nope" is not known`} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not mention %q:\n%s", want, stderr)
		}
	}
	for _, name := range secretNames {
		if strings.Contains(stderr, env[name]) {
			t.Errorf("stderr leaks %s", name)
		}
	}
}

func TestRun_HelpEverywhere(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"help"}, {"serve", "-h"}, {"healthcheck", "-h"}, {"fingerprint", "-h"}, {"version", "-h"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			stdout, stderr, code := runCmd(t, nil, "", args...)
			if code != 0 || !strings.Contains(stdout, "streammatch") {
				t.Errorf("got code %d stdout %q stderr %q, want 0 and usage", code, stdout, stderr)
			}
		})
	}
}

func TestRun_UnknownCommandExits2(t *testing.T) {
	_, stderr, code := runCmd(t, nil, "", "frobnicate")
	if code != 2 || !strings.Contains(stderr, `unknown command "frobnicate"`) {
		t.Errorf("got code %d stderr %q", code, stderr)
	}
}

func TestFingerprint_ReadsStdinAndTrimsOneNewline(t *testing.T) {
	a, _, code := runCmd(t, nil, "s3cr3t-value\n", "fingerprint", "CONSUMERKEY")
	b, _, _ := runCmd(t, nil, "s3cr3t-value", "fingerprint", "CONSUMERKEY")
	if code != 0 || a != b || strings.TrimSpace(a) == "" {
		t.Fatalf("got %q and %q (code %d), want the same non-empty fingerprint", a, b, code)
	}
	if strings.Contains(a, "s3cr3t") {
		t.Errorf("fingerprint output contains the value: %q", a)
	}
	c, _, _ := runCmd(t, nil, "s3cr3t-value", "fingerprint", "ACCESSTOKEN")
	if c == a {
		t.Errorf("fingerprints of one value under two names are equal: %q", a)
	}
	if _, stderr, code := runCmd(t, nil, "", "fingerprint", "CONSUMERKEY"); code != 2 || !strings.Contains(stderr, "no value on stdin") {
		t.Errorf("empty stdin: got code %d stderr %q", code, stderr)
	}
}

func TestFingerprint_SourceReproducesThePage(t *testing.T) {
	const source = "arn:aws:secretsmanager:us-east-1:123456789012:secret:streammatch/twitter-AbCdEf:CONSUMERKEY::"
	// The known answer of package fingerprint, cross-checked with the reference argon2 CLI.
	const want = "fp3:c5f2cc364dab864b\n"
	for _, args := range [][]string{
		{"fingerprint", "-source", source, "CONSUMERKEY"},
		{"fingerprint", "CONSUMERKEY", "-source", source},
		{"fingerprint", "-source=" + source, "CONSUMERKEY"},
	} {
		t.Run(strings.Join(args[1:], " "), func(t *testing.T) {
			stdout, stderr, code := runCmd(t, nil, "xvz1evFS4wEEPTGEFPHBog\n", args...)
			if code != 0 || stdout != want {
				t.Errorf("got %q (code %d, stderr %q), want %q", stdout, code, stderr, want)
			}
		})
	}
	withSource, _, _ := runCmd(t, nil, "v", "fingerprint", "-source", source, "CONSUMERKEY")
	without, _, _ := runCmd(t, nil, "v", "fingerprint", "CONSUMERKEY")
	if withSource == without {
		t.Errorf("the source does not change the fingerprint: %q", withSource)
	}
	if got, w := strings.TrimSpace(without), fingerprint.Of("CONSUMERKEY", "", "v"); got != w {
		t.Errorf("without -source: got %q, want %q (the page of a task without SECRET_SOURCES)", got, w)
	}
}

func TestFingerprint_RejectsABadSourceAndExtraArguments(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"source not a valueFrom", []string{"fingerprint", "-source", "arn:aws:s3:::bucket", "CONSUMERKEY"}, "-source: valueFrom"},
		{"two names", []string{"fingerprint", "CONSUMERKEY", "ACCESSTOKEN"}, "exactly one argument"},
		{"no name", []string{"fingerprint", "-source", "/p"}, "exactly one argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := runCmd(t, nil, "s3cr3t-value", tt.args...)
			if code != 2 || !strings.Contains(stderr, tt.want) {
				t.Errorf("got code %d stderr %q, want 2 and %q", code, stderr, tt.want)
			}
			if strings.Contains(stderr, "s3cr3t") {
				t.Errorf("stderr contains the value: %q", stderr)
			}
		})
	}
}

func TestHealthcheck(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   int
	}{
		{"ok", 200, `{"status":"ok"}`, 0},
		{"degraded is healthy", 200, `{"status":"degraded","detail":"stream: credentials rejected (401)"}`, 0},
		{"unhealthy", 503, `{"status":"unhealthy"}`, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/healthz" {
					http.NotFound(w, r)
					return
				}
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			_, stderr, code := runCmd(t, nil, "", "healthcheck", "-url", srv.URL+"/healthz")
			if code != tt.want {
				t.Errorf("exit: got %d, want %d (stderr %q)", code, tt.want, stderr)
			}
			// The default URL comes from the port of HTTP_ADDR.
			port := srv.Listener.Addr().String()[strings.LastIndex(srv.Listener.Addr().String(), ":"):]
			_, stderr, code = runCmd(t, map[string]string{"HTTP_ADDR": port}, "", "healthcheck")
			if code != tt.want {
				t.Errorf("default url: got %d, want %d (stderr %q)", code, tt.want, stderr)
			}
		})
	}
	if _, _, code := runCmd(t, map[string]string{"HTTP_ADDR": "127.0.0.1:1"}, "", "healthcheck"); code != 1 {
		t.Errorf("nothing listening: got %d, want 1", code)
	}
}
