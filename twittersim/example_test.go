package twittersim_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"

	"github.com/dghubble/go-twitter/twitter"
	"github.com/dghubble/oauth1"

	"github.com/streammatch/streammatch/twittersim"
)

// rewrite points go-twitter's hard-coded https://stream.twitter.com at the simulator. It wraps
// the OAuth transport, so the signature covers the URL the simulator receives.
type rewrite struct {
	target *url.URL
	base   http.RoundTripper
}

func (rt rewrite) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.URL.Scheme, r.URL.Host, r.Host = rt.target.Scheme, rt.target.Host, ""
	return rt.base.RoundTrip(r)
}

// A go-twitter client reading the simulator, as the service's integration tests do.
func Example() {
	creds := twittersim.Credentials{
		ConsumerKey: "ck", ConsumerSecret: "cs", AccessToken: "at", AccessTokenSecret: "ats",
	}
	sim, err := twittersim.New(twittersim.Config{Credentials: creds, Rate: 100, Seed: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	ts := httptest.NewServer(sim)
	defer ts.Close()
	defer sim.Close() // first: it ends the open streams, which ts.Close waits for

	target, _ := url.Parse(ts.URL)
	signed := oauth1.NewConfig(creds.ConsumerKey, creds.ConsumerSecret).
		Client(context.Background(), oauth1.NewToken(creds.AccessToken, creds.AccessTokenSecret))
	client := twitter.NewClient(&http.Client{Transport: rewrite{target: target, base: signed.Transport}})

	stream, err := client.Streams.Filter(&twitter.StreamFilterParams{Track: []string{"golang"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stream.Stop()
	for m := range stream.Messages {
		if tweet, ok := m.(*twitter.Tweet); ok {
			fmt.Println("got a tweet:", tweet.IDStr != "")
			break
		}
	}
	// Output: got a tweet: true
}
