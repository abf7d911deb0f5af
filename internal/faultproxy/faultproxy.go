// Package faultproxy is an HTTP proxy for tests that sits in front of a DynamoDB endpoint
// (moto_server) and injects the faults DynamoDB shows in production but an emulator cannot
// produce on demand: throttling, partially processed batches, internal errors, slow answers
// and an endpoint that cannot be reached at all.
//
// Point the code under test at Proxy.URL (AWS_ENDPOINT_URL, or store.NewClient's endpoint)
// and arm faults while it runs. Requests that no fault applies to are passed to the target
// unchanged, so everything that is written is really written to the emulator, and a test can
// check the table afterwards.
package faultproxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The DynamoDB operations the faults apply to: the writes. Reads and table management (the
// test's own Scan or CreateTable, if sent through the proxy) always pass.
var faultedOperations = map[string]bool{"BatchWriteItem": true, "PutItem": true}

// DynamoDB's error answers, with the shapes the real service sends: HTTP status, the
// x-amzn-ErrorType header, and a JSON body whose __type carries the namespace.
const (
	throttleType    = "ProvisionedThroughputExceededException"
	throttleMessage = "The level of configured provisioned throughput for the table was exceeded. " +
		"Consider increasing your provisioning level with the UpdateTable API."
	internalType    = "InternalServerError"
	internalMessage = "Internal server error"
	errorNamespace  = "com.amazonaws.dynamodb.v20120810#"
	jsonContentType = "application/x-amz-json-1.0"
)

// Stats counts what the proxy has seen and done since Start.
type Stats struct {
	// Requests counts the requests that reached the proxy, by DynamoDB operation.
	Requests map[string]int
	// Throttled, Failed and Unprocessed count the answers of each fault; UnprocessedItems the
	// put requests handed back unprocessed.
	Throttled        int
	Failed           int
	Unprocessed      int
	UnprocessedItems int
	// Forwarded counts the requests passed to the target.
	Forwarded int
	// Refused counts the times the proxy went down (see Down).
	Refused int
}

// Proxy is a running fault-injecting proxy. Its methods are safe for concurrent use.
type Proxy struct {
	// URL is the proxy's base URL, e.g. "http://127.0.0.1:41234".
	URL string

	addr   string
	target *url.URL
	proxy  *httputil.ReverseProxy

	mu          sync.Mutex
	srv         *http.Server
	throttle    int // answers left; negative means until Clear
	fail        int
	unprocessed int
	delay       time.Duration
	stats       Stats
	// released is closed by Clear, Up and Close, to end delays early.
	released chan struct{}
}

// Start serves a proxy to target on a free loopback port until the test ends.
func Start(t testing.TB, target string) *Proxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		t.Fatalf("faultproxy: target %q is not a URL", target)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("faultproxy: listen: %v", err)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	p := &Proxy{
		URL:      "http://" + ln.Addr().String(),
		addr:     ln.Addr().String(),
		target:   u,
		released: make(chan struct{}),
		stats:    Stats{Requests: map[string]int{}},
	}
	p.proxy = &httputil.ReverseProxy{
		Rewrite:   func(r *httputil.ProxyRequest) { r.SetURL(u); r.Out.Host = u.Host },
		Transport: transport,
		// A request whose client went away is not the target's failure: answer 502 quietly.
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, _ error) { w.WriteHeader(http.StatusBadGateway) },
	}
	p.serve(ln)
	t.Cleanup(func() {
		p.Close()
		transport.CloseIdleConnections()
	})
	return p
}

func (p *Proxy) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(p.handle), ReadHeaderTimeout: 10 * time.Second}
	p.mu.Lock()
	p.srv = srv
	p.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// ThrottleNext answers the next n write requests with ProvisionedThroughputExceededException
// (HTTP 400). A negative n throttles every write until Clear.
func (p *Proxy) ThrottleNext(n int) { p.set(func() { p.throttle = n }) }

// FailNext answers the next n write requests with HTTP 500 InternalServerError. A negative n
// fails every write until Clear.
func (p *Proxy) FailNext(n int) { p.set(func() { p.fail = n }) }

// UnprocessedNext makes the next n BatchWriteItem requests only partly processed: the first
// half of the batch (rounded down) is passed to the target and written, and the rest comes
// back in UnprocessedItems, as DynamoDB does under throttling. A batch of one item is handed
// back whole. A negative n applies until Clear.
func (p *Proxy) UnprocessedNext(n int) { p.set(func() { p.unprocessed = n }) }

// SetDelay holds every write request for d before it is answered (0: no delay).
func (p *Proxy) SetDelay(d time.Duration) { p.set(func() { p.delay = d }) }

// Clear disarms every fault and releases the requests being delayed.
func (p *Proxy) Clear() {
	p.mu.Lock()
	p.throttle, p.fail, p.unprocessed, p.delay = 0, 0, 0, 0
	p.releaseLocked()
	p.mu.Unlock()
}

// Down makes the endpoint unreachable: the listener is closed, so new connections are
// refused, and open connections are cut. Up brings it back on the same address.
func (p *Proxy) Down() {
	p.mu.Lock()
	srv := p.srv
	p.srv = nil
	if srv != nil {
		p.stats.Refused++
	}
	p.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// Up listens again on the proxy's address after Down; it does nothing while the proxy is up.
// It retries briefly: the port was just released and nobody else should have taken it.
func (p *Proxy) Up() error {
	p.mu.Lock()
	up := p.srv != nil
	p.mu.Unlock()
	if up {
		return nil
	}
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("faultproxy: listen again on %s: %w", p.addr, err)
	}
	p.serve(ln)
	return nil
}

// Close stops the proxy and releases delayed requests.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.releaseLocked()
	p.mu.Unlock()
	p.Down()
}

// Stats returns a snapshot of the counters.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.Requests = make(map[string]int, len(p.stats.Requests))
	for k, v := range p.stats.Requests {
		s.Requests[k] = v
	}
	return s
}

func (p *Proxy) set(f func()) {
	p.mu.Lock()
	f()
	p.mu.Unlock()
}

func (p *Proxy) releaseLocked() {
	close(p.released)
	p.released = make(chan struct{})
}

// take consumes one use of a counted fault: n > 0 counts down, n < 0 is sustained.
func take(n *int) bool {
	switch {
	case *n > 0:
		*n--
		return true
	case *n < 0:
		return true
	}
	return false
}

type action int

const (
	pass action = iota
	throttle
	fail
	partial
)

func (p *Proxy) handle(w http.ResponseWriter, r *http.Request) {
	op := operation(r)
	p.mu.Lock()
	p.stats.Requests[op]++
	act, delay, released := pass, time.Duration(0), p.released
	if faultedOperations[op] {
		delay = p.delay
		switch {
		case take(&p.throttle):
			act = throttle
			p.stats.Throttled++
		case take(&p.fail):
			act = fail
			p.stats.Failed++
		case op == "BatchWriteItem" && take(&p.unprocessed):
			act = partial
		}
	}
	p.mu.Unlock()

	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-released:
		case <-r.Context().Done():
		}
		t.Stop()
	}
	switch act {
	case throttle:
		writeError(w, http.StatusBadRequest, throttleType, throttleMessage)
	case fail:
		writeError(w, http.StatusInternalServerError, internalType, internalMessage)
	case partial:
		p.partialBatch(w, r)
	default:
		p.forward(w, r)
	}
}

func (p *Proxy) forward(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.stats.Forwarded++
	p.mu.Unlock()
	p.proxy.ServeHTTP(w, r)
}

// operation returns the DynamoDB operation named in X-Amz-Target ("DynamoDB_20120810.PutItem").
func operation(r *http.Request) string {
	target := r.Header.Get("X-Amz-Target")
	if i := strings.LastIndexByte(target, '.'); i >= 0 {
		return target[i+1:]
	}
	return "unknown"
}

// writeError answers like DynamoDB does for a failed call. The SDK takes the error code from
// x-amzn-ErrorType, or else from the body's __type, so both are set.
func writeError(w http.ResponseWriter, status int, code, message string) {
	body := fmt.Sprintf(`{"__type":%q,"message":%q}`, errorNamespace+code, message)
	h := w.Header()
	h.Set("Content-Type", jsonContentType)
	h.Set("x-amzn-ErrorType", code+":")
	h.Set("x-amzn-RequestId", "faultproxy-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	h.Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE([]byte(body))), 10))
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// batchBody is the part of a BatchWriteItem request and response the proxy rewrites. The
// write requests stay raw JSON, so that items pass through byte for byte.
type batchBody struct {
	RequestItems     map[string][]json.RawMessage `json:"RequestItems,omitempty"`
	UnprocessedItems map[string][]json.RawMessage `json:"UnprocessedItems,omitempty"`
}

// partialBatch passes the first half of each table's write requests to the target and
// answers with the target's response plus the other half in UnprocessedItems.
func (p *Proxy) partialBatch(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(r.Body)
	_ = r.Body.Close()
	var in batchBody
	if err != nil || json.Unmarshal(raw, &in) != nil {
		writeError(w, http.StatusBadRequest, "SerializationException", "faultproxy: cannot read the batch")
		return
	}
	forward := batchBody{RequestItems: map[string][]json.RawMessage{}}
	back := map[string][]json.RawMessage{}
	held := 0
	for table, reqs := range in.RequestItems {
		keep := len(reqs) / 2
		if keep > 0 {
			forward.RequestItems[table] = reqs[:keep]
		}
		if rest := reqs[keep:]; len(rest) > 0 {
			back[table] = rest
			held += len(rest)
		}
	}

	var out batchBody
	if len(forward.RequestItems) > 0 {
		body, _ := json.Marshal(forward)
		fwd := r.Clone(r.Context())
		fwd.Body = io.NopCloser(bytes.NewReader(body))
		fwd.ContentLength = int64(len(body))
		fwd.Header.Set("Content-Length", strconv.Itoa(len(body)))
		rec := &recorder{header: http.Header{}, status: http.StatusOK}
		p.forward(rec, fwd)
		if rec.status != http.StatusOK {
			// The target refused the half batch: pass its answer on unchanged.
			copyHeader(w.Header(), rec.header)
			w.WriteHeader(rec.status)
			_, _ = w.Write(rec.body.Bytes())
			return
		}
		if err := json.Unmarshal(rec.body.Bytes(), &out); err != nil {
			writeError(w, http.StatusInternalServerError, internalType, "faultproxy: target answer unreadable")
			return
		}
	}
	if out.UnprocessedItems == nil {
		out.UnprocessedItems = map[string][]json.RawMessage{}
	}
	for table, reqs := range back {
		out.UnprocessedItems[table] = append(out.UnprocessedItems[table], reqs...)
	}
	p.mu.Lock()
	p.stats.Unprocessed++
	p.stats.UnprocessedItems += held
	p.mu.Unlock()

	body, _ := json.Marshal(struct {
		UnprocessedItems map[string][]json.RawMessage `json:"UnprocessedItems"`
	}{out.UnprocessedItems})
	h := w.Header()
	h.Set("Content-Type", jsonContentType)
	h.Set("x-amzn-RequestId", "faultproxy-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	// The SDK checks DynamoDB's response CRC32 when the header is present; the body changed,
	// so the checksum is computed again.
	h.Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE(body)), 10))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// recorder is a minimal http.ResponseWriter that keeps the answer in memory.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) WriteHeader(status int)      { r.status = status }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }

func copyHeader(dst, src http.Header) {
	for k, v := range src {
		dst[k] = append([]string(nil), v...)
	}
}
