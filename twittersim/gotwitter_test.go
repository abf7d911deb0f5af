package twittersim

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dghubble/go-twitter/twitter"
)

// rewriteHost sends go-twitter's hard-coded https://stream.twitter.com requests to the
// simulator. It sits above the OAuth transport, as in the service, so the signature covers
// the URL the simulator receives.
type rewriteHost struct {
	target *url.URL
	base   http.RoundTripper
}

func (rt rewriteHost) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.URL.Scheme, r.URL.Host, r.Host = rt.target.Scheme, rt.target.Host, ""
	return rt.base.RoundTrip(r)
}

func goTwitterClient(t *testing.T, target string, c Credentials) *twitter.Client {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	signed := signedClient(t, c, nil)
	return twitter.NewClient(&http.Client{Transport: rewriteHost{target: u, base: signed.Transport}})
}

// tweetTexts gathers the full texts and links of a go-twitter tweet and its originals.
func tweetTexts(tw *twitter.Tweet) string {
	if tw == nil {
		return ""
	}
	s := tw.Text + " " + tw.FullText
	if tw.ExtendedTweet != nil {
		s += " " + tw.ExtendedTweet.FullText
	}
	// Links count: "café" matches https://www.example.com/café, whose path is a word.
	if tw.Entities != nil {
		for _, u := range tw.Entities.Urls {
			s += " " + u.ExpandedURL
		}
	}
	return s + " " + tweetTexts(tw.RetweetedStatus) + " " + tweetTexts(tw.QuotedStatus)
}

func TestServer_GoTwitterReceivesFilteredTweets(t *testing.T) {
	s, ts := newSim(t, Config{Rate: 500, Seed: 9, NoticeEvery: 3, KeepAlive: 10 * time.Millisecond})
	client := goTwitterClient(t, ts.URL, testCreds)
	st, err := client.Streams.Filter(&twitter.StreamFilterParams{Track: []string{"golang", "café"}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Stop()

	var tweets, deletes, limits int
	for tweets < 30 || deletes == 0 || limits == 0 {
		select {
		case m, ok := <-st.Messages:
			if !ok {
				t.Fatalf("stream closed after %d tweets", tweets)
			}
			switch m := m.(type) {
			case *twitter.Tweet:
				tweets++
				all := strings.ToLower(tweetTexts(m))
				if !strings.Contains(all, "golang") && !strings.Contains(all, "café") {
					t.Errorf("tweet %s carries no track word: %q", m.IDStr, all)
				}
				if m.IDStr != strconv.FormatInt(m.ID, 10) || m.User == nil || m.User.ScreenName == "" {
					t.Errorf("tweet: got id %d id_str %q user %v, want matching ids and a user", m.ID, m.IDStr, m.User)
				}
				if _, err := m.CreatedAtTime(); err != nil {
					t.Errorf("created_at %q: %v", m.CreatedAt, err)
				}
			case *twitter.StatusDeletion:
				deletes++
			case *twitter.StreamLimit:
				limits++
			default:
				t.Fatalf("unexpected message %T: %v", m, m)
			}
		case <-time.After(streamTimeout):
			t.Fatalf("timed out after %d tweets", tweets)
		}
	}
	if got, want := s.Stats().LastTrack, "golang,café"; got != want {
		t.Errorf("track sent by go-twitter: got %q, want %q", got, want)
	}
}

// go-twitter gives up on a 401 without a word: its Messages channel just closes. The
// simulator must produce exactly that, so the service's own source can be tested for doing
// better.
func TestServer_GoTwitterSeesRejectedCredentialsAsEmptyStream(t *testing.T) {
	s, ts := newSim(t, Config{Rate: 500})
	bad := testCreds
	bad.AccessTokenSecret = "wrong"
	st, err := goTwitterClient(t, ts.URL, bad).Streams.Filter(&twitter.StreamFilterParams{Track: []string{"golang"}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Stop()
	select {
	case m, ok := <-st.Messages:
		if ok {
			t.Fatalf("got message %v, want the channel closed", m)
		}
	case <-time.After(streamTimeout):
		t.Fatal("timed out waiting for go-twitter to give up")
	}
	if got := s.Stats().Unauthorized; got != 1 {
		t.Errorf("unauthorized: got %d, want 1", got)
	}
}
