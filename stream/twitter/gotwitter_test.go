package twitter

import (
	"errors"
	"net/http"
	"net/url"

	gotwitter "github.com/dghubble/go-twitter/twitter"

	"github.com/streammatch/streammatch/stream"
)

// DecodeTweet turns a tweet decoded by go-twitter into a stream.Message. reason is non-empty (and the
// stream.Message zero) when the tweet cannot be used: go-twitter ignores type errors, so a tweet can
// arrive without its id, user, text or date, and such a tweet is skipped, not stored.
func DecodeTweet(t *gotwitter.Tweet, source string) (stream.Message, string) {
	if t == nil {
		return stream.Message{}, stream.ReasonInvalidTweet
	}
	return buildMessage(wireFromTwitter(t, 0), source)
}

// wireFromTwitter copies the fields streammatch uses out of a go-twitter Tweet.
func wireFromTwitter(t *gotwitter.Tweet, depth int) *wireTweet {
	if t == nil || depth > maxTweetDepth {
		return nil
	}
	w := &wireTweet{
		IDStr:            t.IDStr,
		CreatedAt:        t.CreatedAt,
		Text:             t.Text,
		FullText:         t.FullText,
		Truncated:        t.Truncated,
		Lang:             t.Lang,
		Entities:         wireFromEntities(t.Entities),
		ExtendedEntities: wireFromMedia(t.ExtendedEntities),
		RetweetedStatus:  wireFromTwitter(t.RetweetedStatus, depth+1),
		QuotedStatus:     wireFromTwitter(t.QuotedStatus, depth+1),
	}
	if t.User != nil {
		w.User = &wireUser{ScreenName: t.User.ScreenName}
	}
	if x := t.ExtendedTweet; x != nil {
		w.ExtendedTweet = &wireExtended{
			FullText:         x.FullText,
			Entities:         wireFromEntities(x.Entities),
			ExtendedEntities: wireFromMedia(x.ExtendedEntities),
		}
	}
	return w
}

func wireFromEntities(e *gotwitter.Entities) *wireEntities {
	if e == nil {
		return nil
	}
	w := &wireEntities{}
	for _, h := range e.Hashtags {
		w.Hashtags = append(w.Hashtags, wireHashtag{Text: h.Text})
	}
	for _, m := range e.UserMentions {
		w.UserMentions = append(w.UserMentions, wireMention{ScreenName: m.ScreenName})
	}
	for _, u := range e.Urls {
		w.URLs = append(w.URLs, wireURL{ExpandedURL: u.ExpandedURL, DisplayURL: u.DisplayURL})
	}
	for _, m := range e.Media {
		w.Media = append(w.Media, wireURL{ExpandedURL: m.ExpandedURL, DisplayURL: m.DisplayURL})
	}
	return w
}

func wireFromMedia(e *gotwitter.ExtendedEntity) *wireEntities {
	if e == nil {
		return nil
	}
	w := &wireEntities{}
	for _, m := range e.Media {
		w.Media = append(w.Media, wireURL{ExpandedURL: m.ExpandedURL, DisplayURL: m.DisplayURL})
	}
	return w
}

// goTwitterRecord maps what go-twitter puts on Messages to a Record, as the Twitter source did
// when it read through go-twitter's Streams.Filter. ok is false for go-twitter's
// transport errors, which are not stream records: the session has the cause.
func goTwitterRecord(msg any) (rec stream.Record, ok bool) {
	switch m := msg.(type) {
	case *gotwitter.Tweet:
		message, reason := DecodeTweet(m, SourceName)
		if reason != "" {
			return stream.Skip(reason), true
		}
		return stream.Record{Kind: stream.KindMessage, Message: message}, true
	case *gotwitter.StatusDeletion:
		return stream.Notice("delete"), true
	case *gotwitter.StreamLimit:
		rec := stream.Notice("limit")
		if m != nil {
			rec.LimitMissed = max(m.Track, 0)
		}
		return rec, true
	case *gotwitter.StallWarning:
		return stream.Notice("warning"), true
	case *gotwitter.StreamDisconnect:
		return stream.Notice("disconnect"), true
	case *gotwitter.StatusWithheld:
		return stream.Notice("status_withheld"), true
	case *gotwitter.UserWithheld:
		return stream.Notice("user_withheld"), true
	case *gotwitter.LocationDeletion:
		return stream.Notice("scrub_geo"), true
	case error:
		var ue *url.Error
		if errors.As(m, &ue) {
			return stream.Record{}, false
		}
		return stream.Skip(stream.ReasonInvalidJSON), true
	}
	return stream.Notice("other"), true
}

// rewriteHost sends go-twitter's hard-coded https://stream.twitter.com requests to base.
type rewriteHost struct{ base *url.URL }

func (t rewriteHost) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.URL.Scheme, r.URL.Host, r.Host = t.base.Scheme, t.base.Host, ""
	return http.DefaultTransport.RoundTrip(r)
}
