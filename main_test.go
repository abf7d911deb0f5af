package main

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/streammatch/streammatch/fingerprint"
)

var dateKey = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ#\d+$`)

func TestService_WritesMatchesFromSignedStreamToDynamoDB(t *testing.T) {
	s := startService(t, testCreds)

	if code, body := s.get("/healthz"); code != 200 || !strings.Contains(body, `"ok"`) {
		t.Errorf("/healthz: got %d %s, want 200 ok", code, body)
	}
	st := s.waitFor("20 written items and fingerprints", func(st apiStatus) bool {
		done := st.Counters.Written >= 20
		for _, sec := range st.Secrets {
			done = done && sec.Fingerprint != ""
		}
		return done
	})
	if st.Stream.State != "connected" {
		t.Errorf("stream state: got %q, want connected", st.Stream.State)
	}
	want := map[string]string{
		"CONSUMERKEY": testCreds.ConsumerKey, "CONSUMERSECRETKEY": testCreds.ConsumerSecret,
		"ACCESSTOKEN": testCreds.AccessToken, "ACCESSTOKENSECRET": testCreds.AccessTokenSecret,
	}
	if len(st.Secrets) != 4 {
		t.Errorf("secrets: got %d entries, want 4", len(st.Secrets))
	}
	for _, sec := range st.Secrets {
		if got, w := sec.Fingerprint, fingerprint.Of(sec.Name, "", want[sec.Name]); got != w || !sec.Set {
			t.Errorf("fingerprint of %s: got %q (set %v), want %q", sec.Name, got, sec.Set, w)
		}
	}
	for _, path := range []string{"/", "/api/matches?limit=5", "/no-such-page", "/api/matches?limit=abc"} {
		s.get(path)
	}

	s.stop()
	items := s.items()
	if len(items) < 20 {
		t.Fatalf("items in DynamoDB: got %d, want at least 20", len(items))
	}
	nonASCII := 0
	for _, it := range items {
		user, _ := it["user"].(*types.AttributeValueMemberS)
		date, _ := it["date"].(*types.AttributeValueMemberS)
		text, _ := it["text"].(*types.AttributeValueMemberS)
		matched, _ := it["matched"].(*types.AttributeValueMemberSS)
		if user == nil || user.Value == "" || date == nil || !dateKey.MatchString(date.Value) {
			t.Errorf("item key: got user=%v date=%v, want a screen name and RFC3339#id", it["user"], it["date"])
			continue
		}
		if text == nil || !utf8.ValidString(text.Value) || matched == nil || len(matched.Value) == 0 {
			t.Errorf("item %s/%s: text or matched missing: %v", user.Value, date.Value, it)
			continue
		}
		if strings.IndexFunc(text.Value, func(r rune) bool { return r > 127 }) >= 0 {
			nonASCII++
		}
	}
	if nonASCII == 0 {
		t.Errorf("no stored text has a non-ASCII character; the simulator sends some, and the blog's bug was dropping them")
	}
	s.assertNoLeak()
}

func TestService_CountersAddUpAfterShutdown(t *testing.T) {
	s := startService(t, testCreds)
	s.waitFor("some matches", func(st apiStatus) bool { return st.Counters.Matched >= 10 })
	// Keep the HTTP server for one last look: stop reading and draining happen first, and run
	// returns only after the page is down, so read the counters from the log's final line.
	s.stop()
	last := finalCounters(t, s.stdout.String())
	if last.Matched != last.Written+last.Failed {
		t.Errorf("after shutdown: matched %d != written %d + failed %d (the queue must be empty)", last.Matched, last.Written, last.Failed)
	}
	if got := uint64(len(s.items())); got != last.Written {
		t.Errorf("items in table: got %d, want written=%d (keys are unique per message)", got, last.Written)
	}
	if last.Received < last.Matched+last.Skipped {
		t.Errorf("received %d < matched %d + skipped %d", last.Received, last.Matched, last.Skipped)
	}
}

func TestService_WrongCredentialsAreRejectedAndNothingIsWritten(t *testing.T) {
	wrong := testCreds
	wrong.ConsumerSecret = "CS-wrong-value-0000"
	s := startService(t, wrong)
	st := s.waitFor("the stream to be rejected", func(st apiStatus) bool { return st.Stream.State == "rejected" })
	if !strings.Contains(st.Stream.LastError, "401") {
		t.Errorf("last_error: got %q, want it to name the 401", st.Stream.LastError)
	}
	if st.Health.Status != "degraded" {
		t.Errorf("health: got %q, want degraded (not dead: a restart would not fix credentials)", st.Health.Status)
	}
	if code, body := s.get("/healthz"); code != 200 {
		t.Errorf("/healthz: got %d %s, want 200 while degraded", code, body)
	}
	s.get("/")
	if st.Counters.Written != 0 || len(s.items()) != 0 {
		t.Errorf("written: got %d counted, %d in table; want nothing", st.Counters.Written, len(s.items()))
	}
	if got := s.sim.Stats(); got.Unauthorized == 0 {
		t.Errorf("simulator answered 401 to %d requests, want at least 1", got.Unauthorized)
	}
	s.stop()
	s.assertNoLeak()
	if strings.Contains(s.stdout.String()+s.stderr.String(), wrong.ConsumerSecret) {
		t.Errorf("output contains the wrong secret value")
	}
}
