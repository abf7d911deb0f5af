package twittersim

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Credentials are the four OAuth 1.0a values a Twitter app uses in user context. The simulator
// only compares them; it never logs them or puts them in a response or an error.
type Credentials struct {
	ConsumerKey       string
	ConsumerSecret    string
	AccessToken       string
	AccessTokenSecret string
}

// timestampWindow is how far oauth_timestamp may be from the server's clock. Twitter rejected
// requests whose clock was off by more than about 15 minutes.
const timestampWindow = 15 * time.Minute

// authError says why a request was not authenticated. Reason is a fixed snake_case word chosen
// by the verifier, never a value taken from the request, so it is safe to log.
type authError struct{ reason string }

func (e *authError) Error() string { return "oauth: " + e.reason }

func authFailed(reason string) error { return &authError{reason: reason} }

// verifier checks OAuth 1.0a HMAC-SHA1 signatures (RFC 5849, section 3). It is written from the
// RFC rather than borrowed from the client library, so that it is an independent check on the
// client: a bug shared by signer and verifier would otherwise go unnoticed.
type verifier struct {
	creds Credentials
	now   func() time.Time

	mu sync.Mutex
	// nonces maps "timestamp:nonce" to the timestamp, for replay detection. Entries older than
	// the timestamp window are pruned: a replay of those fails the timestamp check anyway.
	nonces    map[string]int64
	lastPrune int64
}

func newVerifier(creds Credentials, now func() time.Time) *verifier {
	return &verifier{creds: creds, now: now, nonces: make(map[string]int64)}
}

// param is one name/value pair of the signature base string. A slice of pairs rather than a
// map keeps duplicated names, which RFC 5849 3.4.1.3.2 sorts by value.
type param struct{ name, value string }

// verify checks the request's Authorization header against the configured credentials. body
// holds the parameters of an application/x-www-form-urlencoded body (nil when there is none).
func (v *verifier) verify(r *http.Request, body url.Values) error {
	oauth, err := parseAuthorization(r.Header.Get("Authorization"))
	if err != nil {
		return err
	}
	get := func(name string) (string, bool) {
		for _, p := range oauth {
			if p.name == name {
				return p.value, true
			}
		}
		return "", false
	}
	if method, _ := get("oauth_signature_method"); method != "HMAC-SHA1" {
		return authFailed("unsupported_signature_method")
	}
	if version, ok := get("oauth_version"); ok && version != "1.0" {
		return authFailed("unsupported_version")
	}
	// The identity checks use constant time too: they are not secret, but there is no reason
	// to leak how much of a guess was right.
	consumerKey, _ := get("oauth_consumer_key")
	if subtle.ConstantTimeCompare([]byte(consumerKey), []byte(v.creds.ConsumerKey)) != 1 {
		return authFailed("wrong_consumer_key")
	}
	token, _ := get("oauth_token")
	if subtle.ConstantTimeCompare([]byte(token), []byte(v.creds.AccessToken)) != 1 {
		return authFailed("wrong_token")
	}
	tsText, _ := get("oauth_timestamp")
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return authFailed("malformed_timestamp")
	}
	now := v.now()
	if d := now.Sub(time.Unix(ts, 0)); d > timestampWindow || d < -timestampWindow {
		return authFailed("timestamp_out_of_window")
	}
	nonce, _ := get("oauth_nonce")
	if nonce == "" {
		return authFailed("missing_nonce")
	}
	sigText, _ := get("oauth_signature")
	got, err := base64.StdEncoding.DecodeString(sigText)
	if err != nil || len(got) != sha1.Size {
		return authFailed("malformed_signature")
	}

	params, err := requestParams(r, body)
	if err != nil {
		return err
	}
	for _, p := range oauth {
		// The realm and the signature itself are not signed (RFC 5849 3.4.1.3.1).
		if p.name != "realm" && p.name != "oauth_signature" {
			params = append(params, p)
		}
	}
	base := signatureBase(r.Method, baseURI(r), params)
	key := percentEncode(v.creds.ConsumerSecret) + "&" + percentEncode(v.creds.AccessTokenSecret)
	mac := hmac.New(sha1.New, []byte(key))
	mac.Write([]byte(base))
	if !hmac.Equal(mac.Sum(nil), got) {
		return authFailed("bad_signature")
	}
	// The nonce is recorded only once the signature is good, so that forged requests cannot
	// use up a legitimate client's nonces.
	if !v.remember(ts, nonce, now.Unix()) {
		return authFailed("reused_nonce")
	}
	return nil
}

// remember records a nonce and reports whether it was new.
func (v *verifier) remember(ts int64, nonce string, now int64) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	window := int64(timestampWindow / time.Second)
	if now-v.lastPrune > window {
		for k, t := range v.nonces {
			if now-t > window || t-now > window {
				delete(v.nonces, k)
			}
		}
		v.lastPrune = now
	}
	k := strconv.FormatInt(ts, 10) + ":" + nonce
	if _, seen := v.nonces[k]; seen {
		return false
	}
	v.nonces[k] = ts
	return true
}

// parseAuthorization parses an `OAuth k="v", ...` header (RFC 5849 3.5.1). Names and values are
// percent-decoded. A protocol parameter given twice is an error, as the RFC requires.
func parseAuthorization(h string) ([]param, error) {
	const prefix = "oauth "
	if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return nil, authFailed("missing_oauth_header")
	}
	var params []param
	seen := make(map[string]bool)
	for _, part := range strings.Split(h[len(prefix):], ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, value, ok := strings.Cut(part, "=")
		if !ok {
			return nil, authFailed("malformed_oauth_header")
		}
		name = strings.TrimSpace(name)
		value = strings.TrimSpace(value)
		if len(value) < 2 || value[0] != '"' || value[len(value)-1] != '"' {
			return nil, authFailed("malformed_oauth_header")
		}
		dn, err1 := url.PathUnescape(name)
		dv, err2 := url.PathUnescape(value[1 : len(value)-1])
		if err1 != nil || err2 != nil {
			return nil, authFailed("malformed_oauth_header")
		}
		if seen[dn] {
			return nil, authFailed("duplicate_oauth_param")
		}
		seen[dn] = true
		params = append(params, param{dn, dv})
	}
	return params, nil
}

// requestParams collects the query parameters and the form body parameters (RFC 5849
// 3.4.1.3.1), decoded as application/x-www-form-urlencoded.
func requestParams(r *http.Request, body url.Values) ([]param, error) {
	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, authFailed("malformed_query")
	}
	var params []param
	for _, vals := range []url.Values{query, body} {
		for name, vs := range vals {
			for _, v := range vs {
				params = append(params, param{name, v})
			}
		}
	}
	return params, nil
}

// baseURI rebuilds the base string URI (RFC 5849 3.4.1.2) from the request as this server
// received it: the scheme from the connection, the Host header lower-cased with the scheme's
// default port dropped, and the path as sent on the request line.
func baseURI(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	host := strings.ToLower(r.Host)
	if h, port, ok := strings.Cut(host, ":"); ok && !strings.Contains(port, ":") &&
		(scheme == "http" && port == "80" || scheme == "https" && port == "443") {
		host = h
	}
	path := r.URL.EscapedPath()
	if strings.HasPrefix(r.RequestURI, "/") {
		path, _, _ = strings.Cut(r.RequestURI, "?")
	}
	return scheme + "://" + host + path
}

// signatureBase builds the signature base string (RFC 5849 3.4.1.1): method, encoded base URI
// and the encoded, sorted, normalised parameter string.
func signatureBase(method, baseURI string, params []param) string {
	enc := make([]param, len(params))
	for i, p := range params {
		enc[i] = param{percentEncode(p.name), percentEncode(p.value)}
	}
	sort.Slice(enc, func(i, j int) bool {
		if enc[i].name != enc[j].name {
			return enc[i].name < enc[j].name
		}
		return enc[i].value < enc[j].value
	})
	var ps strings.Builder
	for i, p := range enc {
		if i > 0 {
			ps.WriteByte('&')
		}
		ps.WriteString(p.name)
		ps.WriteByte('=')
		ps.WriteString(p.value)
	}
	return strings.ToUpper(method) + "&" + percentEncode(baseURI) + "&" + percentEncode(ps.String())
}

// percentEncode encodes every byte except the RFC 3986 unreserved characters, with upper-case
// hex digits (RFC 5849 3.6). url.QueryEscape differs: it writes a space as '+'.
func percentEncode(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}
