package twittersim

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dghubble/oauth1"
)

// testCreds are made-up credentials; the simulator must never show any of them.
var testCreds = Credentials{
	ConsumerKey:       "ck-test-key",
	ConsumerSecret:    "cs-test-s3cr3t+/=",
	AccessToken:       "12345-at-test-token",
	AccessTokenSecret: "ats-test-s3cr3t&~",
}

// streamTimeout bounds every stream a test opens, so that a bug hangs a test for a while and
// fails it, instead of hanging the whole run. It is generous: the machine is slow and shared.
const streamTimeout = 60 * time.Second

// newSim starts a simulator behind an httptest.Server. Cleanup closes the simulator first, so
// that the httptest.Server's Close does not wait on open streams.
func newSim(t *testing.T, cfg Config) (*Server, *httptest.Server) {
	t.Helper()
	if cfg.Credentials == (Credentials{}) {
		cfg.Credentials = testCreds
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(func() {
		s.Close()
		ts.Close()
	})
	return s, ts
}

// signedClient returns an HTTP client that signs with dghubble/oauth1, the library the service
// uses, over base (nil: a fresh transport closed at cleanup).
func signedClient(t *testing.T, c Credentials, base http.RoundTripper) *http.Client {
	t.Helper()
	if base == nil {
		tr := &http.Transport{}
		t.Cleanup(tr.CloseIdleConnections)
		base = tr
	}
	ctx := context.WithValue(context.Background(), oauth1.HTTPClient, &http.Client{Transport: base})
	return oauth1.NewConfig(c.ConsumerKey, c.ConsumerSecret).Client(ctx, oauth1.NewToken(c.AccessToken, c.AccessTokenSecret))
}

// openStream POSTs a signed filter request for track and returns the response; the body is
// closed at cleanup.
func openStream(t *testing.T, ts *httptest.Server, c Credentials, track string) *http.Response {
	t.Helper()
	return doStream(t, signedClient(t, c, nil), http.MethodPost, ts.URL+FilterPath+"?track="+url.QueryEscape(track))
}

func doStream(t *testing.T, client *http.Client, method, u string) *http.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), streamTimeout)
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("%s %s: %v", method, u, err)
	}
	t.Cleanup(func() {
		cancel()
		resp.Body.Close()
	})
	return resp
}

// lineReader splits a stream body into messages the way go-twitter does: a message ends with
// "\r\n" and may contain a bare '\n'.
type lineReader struct{ br *bufio.Reader }

func newLineReader(r io.Reader) *lineReader { return &lineReader{br: bufio.NewReader(r)} }

// next returns the next message without its delimiter (empty for a keep-alive). On an error it
// returns what it read of an unfinished message.
func (l *lineReader) next() ([]byte, error) {
	var buf []byte
	for {
		chunk, err := l.br.ReadBytes('\n')
		buf = append(buf, chunk...)
		if err != nil {
			return buf, err
		}
		if bytes.HasSuffix(buf, []byte("\r\n")) {
			return buf[:len(buf)-2], nil
		}
	}
}

// nextData skips keep-alives and returns the next message.
func (l *lineReader) nextData(t *testing.T) []byte {
	t.Helper()
	for {
		line, err := l.next()
		if err != nil {
			t.Fatalf("read message: %v (partial %q)", err, line)
		}
		if len(line) > 0 {
			return line
		}
	}
}

// waitFor polls cond until it holds, failing after a generous deadline. It is how tests wait
// for the server's counters: no test depends on how fast anything happens.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// decodeTweet decodes a message with the simulator's own tweet struct.
func decodeTweet(t *testing.T, line []byte) *tweetJSON {
	t.Helper()
	var tw tweetJSON
	if err := json.Unmarshal(line, &tw); err != nil {
		t.Fatalf("decode %q: %v", line, err)
	}
	return &tw
}

// assertNoSecrets fails if text shows any credential value.
func assertNoSecrets(t *testing.T, text string) {
	t.Helper()
	for _, v := range []string{testCreds.ConsumerKey, testCreds.ConsumerSecret, testCreds.AccessToken, testCreds.AccessTokenSecret} {
		if strings.Contains(text, v) {
			t.Errorf("text shows a credential: %q", text)
		}
	}
}

// sharedTwitterJSON finds ../shared/testdata/twitter.json beside the repository root (the
// directory holding go.mod), and skips the test when it is absent.
func sharedTwitterJSON(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("no go.mod above the package directory")
		}
		dir = parent
	}
	path := filepath.Join(dir, "..", "shared", "testdata", "twitter.json")
	if _, err := os.Stat(path); err != nil {
		t.Skipf("corpus %s not available: %v", path, err)
	}
	return path
}
