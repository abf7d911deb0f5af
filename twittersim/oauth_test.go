package twittersim

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dghubble/oauth1"
)

// The published examples are the independent check: a verifier that agrees with the client
// library but not with these would share the library's bug.
func TestVerifier_AcceptsPublishedExamples(t *testing.T) {
	tests := []struct {
		name   string
		creds  Credentials
		now    time.Time
		method string
		url    string
		body   string
		header string
	}{
		{
			// Twitter's "Creating a signature" guide: a form body, a query and an https URL.
			name: "twitter docs",
			creds: Credentials{
				ConsumerKey:       "xvz1evFS4wEEPTGEFPHBog",
				ConsumerSecret:    "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw",
				AccessToken:       "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb",
				AccessTokenSecret: "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE",
			},
			now:    time.Unix(1318622958, 0),
			method: http.MethodPost,
			url:    "https://api.twitter.com/1.1/statuses/update.json?include_entities=true",
			body:   "status=Hello%20Ladies%20%2b%20Gentlemen%2c%20a%20signed%20OAuth%20request%21",
			header: `OAuth oauth_consumer_key="xvz1evFS4wEEPTGEFPHBog", oauth_nonce="kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg", oauth_signature="hCtSmYh%2BiHYCEqBWrE7C7hYmtUk%3D", oauth_signature_method="HMAC-SHA1", oauth_timestamp="1318622958", oauth_token="370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb", oauth_version="1.0"`,
		},
		{
			// The OAuth Core 1.0 appendix example (photos.example.net), with a realm, which is
			// not signed, and an explicit default port, which is dropped.
			name: "oauth core appendix",
			creds: Credentials{
				ConsumerKey:       "dpf43f3p2l4k3l03",
				ConsumerSecret:    "kd94hf93k423kf44",
				AccessToken:       "nnch734d00sl2jdk",
				AccessTokenSecret: "pfkkdhi9sl3r4s00",
			},
			now:    time.Unix(1191242096, 0),
			method: http.MethodGet,
			url:    "http://PHOTOS.example.net:80/photos?file=vacation.jpg&size=original",
			header: `OAuth realm="http://photos.example.net/", oauth_consumer_key="dpf43f3p2l4k3l03",oauth_token="nnch734d00sl2jdk",oauth_signature_method="HMAC-SHA1",oauth_signature="tR3%2BTy81lMeYAr%2FFid0kMTYa%2FWM%3D",oauth_timestamp="1191242096",oauth_nonce="kllo9940pd9333jh",oauth_version="1.0"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.url, strings.NewReader(tt.body))
			r.Header.Set("Authorization", tt.header)
			body, _ := url.ParseQuery(tt.body)
			v := newVerifier(tt.creds, func() time.Time { return tt.now })
			if err := v.verify(r, body); err != nil {
				t.Fatalf("verify: got %v, want nil", err)
			}
			if err := v.verify(r, body); err == nil || !strings.Contains(err.Error(), "reused_nonce") {
				t.Fatalf("verify replay: got %v, want reused_nonce", err)
			}
		})
	}
}

func TestPercentEncode(t *testing.T) {
	tests := []struct{ in, want string }{
		{"abcXYZ019-._~", "abcXYZ019-._~"},
		{"a b+c", "a%20b%2Bc"},
		{"Ladies + Gentlemen, a signed OAuth request!", "Ladies%20%2B%20Gentlemen%2C%20a%20signed%20OAuth%20request%21"},
		{"café", "caf%C3%A9"},
		{"&=*", "%26%3D%2A"},
	}
	for _, tt := range tests {
		if got := percentEncode(tt.in); got != tt.want {
			t.Errorf("percentEncode(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestServer_AcceptsRequestSignedByOAuth1(t *testing.T) {
	_, ts := newSim(t, Config{Rate: 200, Seed: 1})
	resp := openStream(t, ts, testCreds, "golang")
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status: got %d (%s), want 200", resp.StatusCode, b)
	}
	if got := resp.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type: got %q, want application/json", got)
	}
	if got := resp.TransferEncoding; len(got) != 1 || got[0] != "chunked" {
		t.Errorf("Transfer-Encoding: got %v, want [chunked]", got)
	}
	newLineReader(resp.Body).nextData(t)
}

// tamper is a transport below the signer: it changes the request after it was signed.
type tamper struct {
	base http.RoundTripper
	edit func(*http.Request)
}

func (tr tamper) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	tr.edit(r)
	return tr.base.RoundTrip(r)
}

func TestServer_RejectsWhatDoesNotVerify(t *testing.T) {
	wrong := func(edit func(*Credentials)) Credentials {
		c := testCreds
		edit(&c)
		return c
	}
	plain := &http.Transport{}
	t.Cleanup(plain.CloseIdleConnections)
	tests := []struct {
		name   string
		creds  Credentials
		clock  time.Duration // offset of the server's clock from the client's
		signer oauth1.Signer
		edit   func(*http.Request)
	}{
		{name: "wrong consumer key", creds: wrong(func(c *Credentials) { c.ConsumerKey += "x" })},
		{name: "wrong consumer secret", creds: wrong(func(c *Credentials) { c.ConsumerSecret += "x" })},
		{name: "wrong access token", creds: wrong(func(c *Credentials) { c.AccessToken += "x" })},
		{name: "wrong access token secret", creds: wrong(func(c *Credentials) { c.AccessTokenSecret += "x" })},
		{name: "tampered query", creds: testCreds, edit: func(r *http.Request) { r.URL.RawQuery = "track=other" }},
		{name: "added query parameter", creds: testCreds, edit: func(r *http.Request) { r.URL.RawQuery += "&delimited=length" }},
		{name: "tampered track case", creds: testCreds, edit: func(r *http.Request) { r.URL.RawQuery = "track=GOLANG" }},
		{name: "tampered host", creds: testCreds, edit: func(r *http.Request) { r.Host = "localhost:1" }},
		{name: "tampered method", creds: testCreds, edit: func(r *http.Request) { r.Method = http.MethodGet }},
		{name: "HMAC-SHA256", creds: testCreds, signer: &oauth1.HMAC256Signer{ConsumerSecret: testCreds.ConsumerSecret}},
		{name: "server clock 16 minutes ahead", creds: testCreds, clock: 16 * time.Minute},
		{name: "server clock 16 minutes behind", creds: testCreds, clock: -16 * time.Minute},
		{name: "no authorization header", creds: testCreds, edit: func(r *http.Request) { r.Header.Del("Authorization") }},
		{name: "bearer token", creds: testCreds, edit: func(r *http.Request) { r.Header.Set("Authorization", "Bearer AAAA") }},
		{name: "oauth_version 2.0", creds: testCreds, edit: func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), `oauth_version="1.0"`, `oauth_version="2.0"`, 1))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			offset := tt.clock
			s, ts := newSim(t, Config{Rate: -1, Now: func() time.Time { return time.Now().Add(offset) }})
			var base http.RoundTripper = plain
			if tt.edit != nil {
				base = tamper{base: plain, edit: tt.edit}
			}
			ctx := context.WithValue(context.Background(), oauth1.HTTPClient, &http.Client{Transport: base})
			cfg := oauth1.NewConfig(tt.creds.ConsumerKey, tt.creds.ConsumerSecret)
			cfg.Signer = tt.signer
			client := cfg.Client(ctx, oauth1.NewToken(tt.creds.AccessToken, tt.creds.AccessTokenSecret))
			resp := doStream(t, client, http.MethodPost, ts.URL+FilterPath+"?track=golang")
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status: got %d, want 401", resp.StatusCode)
			}
			if want := `{"errors":[{"code":32,"message":"Could not authenticate you."}]}`; string(body) != want {
				t.Errorf("body: got %s, want %s", body, want)
			}
			assertNoSecrets(t, string(body))
			if got := s.Stats(); got.Unauthorized != 1 || got.Connects != 0 {
				t.Errorf("stats: got unauthorized %d connects %d, want 1 and 0", got.Unauthorized, got.Connects)
			}
		})
	}
}

// recorder is a transport below the signer that keeps the last signed request, to replay it.
type recorder struct {
	base http.RoundTripper
	mu   sync.Mutex
	last *http.Request
}

func (tr *recorder) RoundTrip(r *http.Request) (*http.Response, error) {
	tr.mu.Lock()
	tr.last = r.Clone(context.Background())
	tr.mu.Unlock()
	return tr.base.RoundTrip(r)
}

func TestServer_RejectsReplayedNonce(t *testing.T) {
	s, ts := newSim(t, Config{Rate: -1})
	plain := &http.Transport{}
	t.Cleanup(plain.CloseIdleConnections)
	rec := &recorder{base: plain}
	resp := doStream(t, signedClient(t, testCreds, rec), http.MethodPost, ts.URL+FilterPath+"?track=golang")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("first request: got %d, want 200", resp.StatusCode)
	}
	replay := rec.last.Clone(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), streamTimeout)
	defer cancel()
	replayResp, err := plain.RoundTrip(replay.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer replayResp.Body.Close()
	if replayResp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("replay: got %d, want 401", replayResp.StatusCode)
	}
	if got := s.Stats().Unauthorized; got != 1 {
		t.Errorf("unauthorized: got %d, want 1", got)
	}
}

func TestServer_AcceptsTrackInSignedFormBody(t *testing.T) {
	s, ts := newSim(t, Config{Rate: 500, Seed: 3})
	client := signedClient(t, testCreds, nil)
	ctx, cancel := context.WithTimeout(context.Background(), streamTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ts.URL+FilterPath, strings.NewReader("track=caf%C3%A9+cr%C3%A8me%2Cgolang"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status: got %d, want 200", resp.StatusCode)
	}
	if got, want := s.Stats().LastTrack, "café crème,golang"; got != want {
		t.Errorf("track: got %q, want %q", got, want)
	}
	newLineReader(resp.Body).nextData(t)

	// The body is signed too: changing it after signing must fail.
	req2, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.URL+FilterPath, strings.NewReader("track=golang"))
	req2.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	plain := &http.Transport{}
	defer plain.CloseIdleConnections()
	bad := signedClient(t, testCreds, tamper{base: plain, edit: func(r *http.Request) {
		r.Body = io.NopCloser(strings.NewReader("track=other"))
		r.ContentLength = int64(len("track=other"))
	}})
	resp2, err := bad.Do(req2)
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	if resp2.StatusCode != http.StatusUnauthorized {
		t.Fatalf("tampered body: got %d, want 401", resp2.StatusCode)
	}
}

func TestNew_RequiresAllCredentials(t *testing.T) {
	c := testCreds
	c.AccessTokenSecret = ""
	_, err := New(Config{Credentials: c})
	if err == nil {
		t.Fatal("New without a token secret: got nil error, want one")
	}
	assertNoSecrets(t, err.Error())
	var ae *authError
	if errors.As(err, &ae) {
		t.Errorf("New error: got an authError, want a configuration error")
	}
}

func TestServer_AcceptsClockSkewWithinWindow(t *testing.T) {
	for _, skew := range []time.Duration{14 * time.Minute, -14 * time.Minute} {
		t.Run(skew.String(), func(t *testing.T) {
			_, ts := newSim(t, Config{Rate: -1, Now: func() time.Time { return time.Now().Add(skew) }})
			if got := openStream(t, ts, testCreds, "golang").StatusCode; got != http.StatusOK {
				t.Fatalf("status: got %d, want 200", got)
			}
		})
	}
}
