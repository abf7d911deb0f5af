package twitter

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"

	"github.com/streammatch/streammatch/internal/syncbuf"
	"github.com/streammatch/streammatch/stream/internal/streamtest"
)

// testCreds are distinctive values, so that a leak is easy to search for.
var testCreds = Credentials{
	ConsumerKey:       "ck-Zq7xLEAKCHECKconsumerkey",
	ConsumerSecret:    "cs-Wv3yLEAKCHECKconsumersecret",
	AccessToken:       "at-Pp9tLEAKCHECKaccesstoken",
	AccessTokenSecret: "as-Rr2sLEAKCHECKaccesssecret",
}

func credentialValues(c Credentials) []string {
	return []string{string(c.ConsumerKey), string(c.ConsumerSecret), string(c.AccessToken), string(c.AccessTokenSecret)}
}

// newStreamServer is a v1.1 statuses/filter endpoint answering with script.
func newStreamServer(t *testing.T, script ...http.HandlerFunc) *streamtest.Server {
	t.Helper()
	s := streamtest.NewServer(t, http.MethodPost, "/1.1/statuses/filter.json", script...)
	s.RejectBody = `{"errors":[{"code":32,"message":"Could not authenticate you."}]}`
	return s
}

// verifying makes srv refuse every request not signed with c.
func verifying(srv *streamtest.Server, c Credentials) {
	srv.Check = func(r *http.Request) error { return verifyOAuth1(r, c) }
}

// newTestSource builds a source against url with test credentials, a fake clock and a JSON
// logger writing into logs.
func newTestSource(t *testing.T, baseURL string, clock *streamtest.Clock, logs *syncbuf.Buffer, mutate ...func(*Config)) *Source {
	t.Helper()
	cfg := Config{
		BaseURL:     baseURL,
		Credentials: testCreds,
		Track:       []string{"golang", "twitter api"},
		After:       clock.After,
	}
	if logs != nil {
		cfg.Logger = streamtest.SlogJSON(logs)
	}
	for _, m := range mutate {
		m(&cfg)
	}
	src, err := NewSource(cfg)
	if err != nil {
		t.Fatalf("NewSource: %v", err)
	}
	return src
}

// tweetLine is a minimal v1.1 tweet as one stream line.
func tweetLine(id, user, text string) string {
	return fmt.Sprintf(`{"created_at":"Wed Oct 10 20:19:24 +0000 2018","id":%s,"id_str":%q,"text":%q,`+
		`"user":{"id":1,"screen_name":%q},"entities":{"hashtags":[],"urls":[],"user_mentions":[]},`+
		`"retweet_count":0,"favorite_count":0,"lang":"en"}`, id, id, text, user)
}

// verifyOAuth1 checks an OAuth 1.0a HMAC-SHA1 signature (RFC 5849 section 3.4), written from
// the RFC so that it checks the client library rather than repeats it.
func verifyOAuth1(r *http.Request, c Credentials) error {
	h := r.Header.Get("Authorization")
	if !strings.HasPrefix(h, "OAuth ") {
		return fmt.Errorf("no OAuth authorization")
	}
	oauth := map[string]string{}
	for _, part := range strings.Split(strings.TrimPrefix(h, "OAuth "), ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return fmt.Errorf("bad authorization parameter")
		}
		uv, err := url.QueryUnescape(strings.Trim(v, `"`))
		if err != nil {
			return err
		}
		ku, _ := url.QueryUnescape(k)
		oauth[ku] = uv
	}
	if oauth["oauth_consumer_key"] != string(c.ConsumerKey) || oauth["oauth_token"] != string(c.AccessToken) {
		return fmt.Errorf("unknown key or token")
	}
	if oauth["oauth_signature_method"] != "HMAC-SHA1" {
		return fmt.Errorf("signature method")
	}
	// Section 3.4.1.3.2: encode each name and value, sort by name then value, join.
	var params [][2]string
	for k, v := range oauth {
		if k != "oauth_signature" && k != "realm" {
			params = append(params, [2]string{rfc3986(k), rfc3986(v)})
		}
	}
	for k, vs := range r.URL.Query() {
		for _, v := range vs {
			params = append(params, [2]string{rfc3986(k), rfc3986(v)})
		}
	}
	sort.Slice(params, func(i, j int) bool {
		if params[i][0] != params[j][0] {
			return params[i][0] < params[j][0]
		}
		return params[i][1] < params[j][1]
	})
	joined := make([]string, len(params))
	for i, p := range params {
		joined[i] = p[0] + "=" + p[1]
	}
	base := r.Method + "&" + rfc3986("http://"+strings.ToLower(r.Host)+r.URL.Path) + "&" + rfc3986(strings.Join(joined, "&"))
	mac := hmac.New(sha1.New, []byte(rfc3986(string(c.ConsumerSecret))+"&"+rfc3986(string(c.AccessTokenSecret))))
	mac.Write([]byte(base))
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(want), []byte(oauth["oauth_signature"])) {
		return fmt.Errorf("signature does not verify")
	}
	return nil
}

func rfc3986(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
