package xv2

import (
	"net/http"
	"testing"
	"time"

	"github.com/streammatch/streammatch/stream/internal/streamtest"
)

// The shared test kit, under the names these tests use.
type (
	fakeClock = streamtest.Clock
	recorder  = streamtest.Recorder
)

var (
	sendLines  = streamtest.SendLines
	holdOpen   = streamtest.HoldOpen
	silent     = streamtest.Silent
	status     = streamtest.Status
	hijack     = streamtest.Hijack
	runSource  = streamtest.RunSource
	eventually = streamtest.Eventually
	slogJSON   = streamtest.SlogJSON
)

const testToken = streamtest.TestToken

// The documented reconnect schedules the tests expect: exponential from 5 s for HTTP errors,
// linear in steps of 250 ms for network errors.
const (
	httpInitial = 5 * time.Second
	networkStep = 250 * time.Millisecond
)

// newBearerServer is a stream at path that accepts only the test token; api answers other paths.
func newBearerServer(t *testing.T, path string, api http.Handler, script ...http.HandlerFunc) *streamtest.Server {
	t.Helper()
	s := streamtest.NewServer(t, http.MethodGet, path, script...)
	s.Check = streamtest.Bearer(string(testToken))
	s.RejectBody = `{"title":"Unauthorized","type":"about:blank","status":401,"detail":"Unauthorized"}`
	s.API = api
	return s
}

// assertNoToken fails if any output holds the test token.
func assertNoToken(t *testing.T, outputs ...string) {
	t.Helper()
	streamtest.AssertNoSecret(t, []string{string(testToken)}, outputs...)
}
