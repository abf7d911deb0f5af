package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/streammatch/streammatch/stream"
	"github.com/streammatch/streammatch/stream/mastodon"
	"github.com/streammatch/streammatch/stream/twitter"
	"github.com/streammatch/streammatch/stream/xv2"
)

// secretNames are the variables ECS injects from Secrets Manager (or SSM) through the task
// definition's `secrets` for SOURCE=twitter (the blog's names). Their values are never printed:
// not in errors, logs, pages or JSON.
var secretNames = []string{"CONSUMERKEY", "CONSUMERSECRETKEY", "ACCESSTOKEN", "ACCESSTOKENSECRET"}

// sourceSecretNames are the secret variables each SOURCE reads; the status page lists the
// running source's, so that an operator sees exactly the secrets the task needs.
var sourceSecretNames = map[string][]string{
	"twitter":  secretNames,
	"x":        {"X_BEARER_TOKEN"},
	"mastodon": {"MASTODON_ACCESS_TOKEN"},
}

// sources lists the valid values of SOURCE.
var sources = []string{"twitter", "x", "mastodon"}

// defaultStallTimeouts are three heartbeat intervals of each stream: Twitter v1.1 sent a
// keep-alive every 30 s, X v2 sends one every 20 s, Mastodon a ":thump" every 15 s.
var defaultStallTimeouts = map[string]string{
	"twitter":  twitter.DefaultStallTimeout.String(),
	"x":        xv2.DefaultStallTimeout.String(),
	"mastodon": mastodon.DefaultStallTimeout.String(),
}

// regionPattern accepts AWS region names such as us-west-2, eu-central-1, us-gov-west-1.
var regionPattern = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)

// config is everything the service reads from its environment, read in one place and handed
// down as plain values. The variable names of the blog's task definition are kept, so that its
// task definition works unchanged.
type config struct {
	Table       string
	Region      string
	Track       []string
	Source      string
	Credentials twitter.Credentials
	StreamURL   string
	// XBearerToken is the app-only token for SOURCE=x; XStreamURL is the API host.
	XBearerToken stream.Secret
	XStreamURL   string
	// MastodonURL is the instance for SOURCE=mastodon; MastodonToken a user access token.
	MastodonURL   string
	MastodonToken stream.Secret
	// SecretNames are the secret variables of Source, for the status page.
	SecretNames  []string
	HTTPAddr     string
	LogLevel     slog.Level
	StallTimeout time.Duration
	QueueSize    int
	// EndpointURL is AWS_ENDPOINT_URL, passed to the SDK explicitly so that run() honours the
	// getenv it is given (the SDK would also read the real environment itself).
	EndpointURL string
}

// configError lists every configuration problem at once, one line each.
type configError struct{ problems []string }

func (e *configError) Error() string {
	return "invalid configuration:\n  - " + strings.Join(e.problems, "\n  - ")
}

// loadConfig reads and validates the configuration. It makes no network call. Problems name
// the variable and what a good value looks like; they never quote a secret's value.
func loadConfig(lookup func(string) (string, bool)) (config, error) {
	getenv := func(name string) string { v, _ := lookup(name); return v }
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	// required reads a variable that must be set and non-empty.
	required := func(name, want string) string {
		v, ok := lookup(name)
		switch {
		case !ok:
			add("%s is not set; want %s", name, want)
		case strings.TrimSpace(v) == "":
			add("%s is set but empty; want %s", name, want)
		}
		return v
	}
	// optional reads a variable with a default; set-but-empty counts as unset.
	optional := func(name, def string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return def
	}

	c := config{
		Table:       required("DYNAMODBTABLE", "the DynamoDB table name, e.g. twitterStream"),
		Source:      optional("SOURCE", "twitter"),
		StreamURL:   optional("TWITTER_STREAM_URL", "https://stream.twitter.com"),
		HTTPAddr:    optional("HTTP_ADDR", ":8080"),
		EndpointURL: strings.TrimSpace(getenv("AWS_ENDPOINT_URL")),
	}

	c.Region = firstSet(getenv, "AWSREGION", "AWS_REGION", "AWS_DEFAULT_REGION")
	switch {
	case c.Region == "":
		add("AWSREGION is not set (nor AWS_REGION, AWS_DEFAULT_REGION); want an AWS region such as us-west-2")
	case !regionPattern.MatchString(c.Region):
		add("AWSREGION %q is not a region name; want e.g. us-west-2", c.Region)
	}

	if filter := required("FILTER", "comma-separated track phrases, e.g. aws,fargate secrets"); strings.TrimSpace(filter) != "" {
		terms, err := stream.ParseTrack(filter)
		if err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				add("FILTER: %s", line)
			}
		}
		c.Track = terms
	}

	if !slices.Contains(sources, c.Source) {
		add("SOURCE %q is not known; want one of: %s", c.Source, strings.Join(sources, ", "))
	}
	if c.Source == "twitter" {
		c.Credentials = twitter.Credentials{
			ConsumerKey:       stream.Secret(required("CONSUMERKEY", "the Twitter API consumer key, injected from Secrets Manager")),
			ConsumerSecret:    stream.Secret(required("CONSUMERSECRETKEY", "the Twitter API consumer secret, injected from Secrets Manager")),
			AccessToken:       stream.Secret(required("ACCESSTOKEN", "the Twitter access token, injected from Secrets Manager")),
			AccessTokenSecret: stream.Secret(required("ACCESSTOKENSECRET", "the Twitter access token secret, injected from Secrets Manager")),
		}
		if !isBaseURL(c.StreamURL) {
			add("TWITTER_STREAM_URL %s is not a base URL; want scheme and host only, e.g. https://stream.twitter.com", quoteURL(c.StreamURL))
		}
	}
	if c.Source == "x" {
		c.XBearerToken = stream.Secret(required("X_BEARER_TOKEN", "the X app-only bearer token, injected from Secrets Manager"))
		c.XStreamURL = optional("X_STREAM_URL", "https://api.x.com")
		if !isBaseURL(c.XStreamURL) {
			add("X_STREAM_URL %s is not a base URL; want scheme and host only, e.g. https://api.x.com", quoteURL(c.XStreamURL))
		}
	}
	if c.Source == "mastodon" {
		c.MastodonToken = stream.Secret(required("MASTODON_ACCESS_TOKEN", "a Mastodon user access token with read:statuses, injected from Secrets Manager"))
		c.MastodonURL = strings.TrimSpace(required("MASTODON_URL", "the instance's base URL, e.g. https://mastodon.social"))
		if c.MastodonURL != "" && !isBaseURL(c.MastodonURL) {
			add("MASTODON_URL %s is not a base URL; want scheme and host only, e.g. https://mastodon.social", quoteURL(c.MastodonURL))
		}
	}
	c.SecretNames = sourceSecretNames[c.Source]

	if _, port, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		add("HTTP_ADDR %q is not host:port; want e.g. :8080 or 127.0.0.1:8080", c.HTTPAddr)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		add("HTTP_ADDR %q has no valid port; want a port 0-65535, e.g. :8080", c.HTTPAddr)
	}

	switch lvl := strings.ToLower(optional("LOG_LEVEL", "info")); lvl {
	case "debug":
		c.LogLevel = slog.LevelDebug
	case "info":
		c.LogLevel = slog.LevelInfo
	case "warn", "warning":
		c.LogLevel = slog.LevelWarn
	case "error":
		c.LogLevel = slog.LevelError
	default:
		add("LOG_LEVEL %q is not a level; want debug, info, warn or error", lvl)
	}

	stall := optional("STALL_TIMEOUT", orString(defaultStallTimeouts[c.Source], "90s"))
	if d, err := time.ParseDuration(stall); err != nil || d <= 0 {
		add("STALL_TIMEOUT %q is not a positive duration; want e.g. 90s (Twitter's rule)", stall)
	} else {
		c.StallTimeout = d
	}

	queue := optional("QUEUE_SIZE", "5000")
	if n, err := strconv.Atoi(queue); err != nil || n < 25 || n > 1_000_000 {
		add("QUEUE_SIZE %q is not a whole number from 25 to 1000000; want e.g. 5000", queue)
	} else {
		c.QueueSize = n
	}

	if len(problems) > 0 {
		return config{}, &configError{problems: problems}
	}
	return c, nil
}

// isBaseURL reports whether raw is an http(s) URL with a host and no path, query or user info.
func isBaseURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.User == nil &&
		(u.Path == "" || u.Path == "/") && u.RawQuery == "" && u.Fragment == ""
}

func orString(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// quoteURL quotes a URL for an error message, unless it may carry a credential in its user
// info ("https://user:password@host"): then the value is not shown at all.
func quoteURL(raw string) string {
	if strings.Contains(raw, "@") {
		return "(value not shown: it contains '@', so it may hold a credential)"
	}
	return strconv.Quote(raw)
}

// firstSet returns the value of the first variable that is set and non-empty.
func firstSet(getenv func(string) string, names ...string) string {
	for _, n := range names {
		if v := strings.TrimSpace(getenv(n)); v != "" {
			return v
		}
	}
	return ""
}

// isConfigError reports whether err is a configuration problem (exit status 2).
func isConfigError(err error) bool {
	var ce *configError
	return errors.As(err, &ce)
}
