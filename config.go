package main

import (
	"encoding/json"
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

	"github.com/streammatch/streammatch/rotation"
	"github.com/streammatch/streammatch/secrets/valuefrom"
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

// The drift check's settings: every 5 minutes by default (a few DescribeSecret calls an hour
// cost nothing and a stale secret shows within minutes), never more often than once a second.
const (
	defaultRotationCheckInterval = "5m"
	minRotationCheckInterval     = time.Second
)

// rotationActions are the valid values of ROTATION_ACTION.
var rotationActions = []string{"report", "exit"}

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
	SecretNames []string
	// Secrets are SecretNames with where each came from (SECRET_SOURCES), in the same order;
	// a secret without an entry has Source "".
	Secrets []rotation.Secret
	// SecretSourcesSet says whether SECRET_SOURCES was set at all.
	SecretSourcesSet bool
	// RotationCheckInterval is the time between drift checks (ROTATION_CHECK_INTERVAL); 0
	// turns them off. RotationAction is "report" or "exit" (ROTATION_ACTION).
	RotationCheckInterval time.Duration
	RotationAction        string
	// MetadataURL is ECS_CONTAINER_METADATA_URI_V4, the task metadata endpoint v4 that ECS
	// gives every container; "" outside ECS.
	MetadataURL  string
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
	c.Secrets, c.SecretSourcesSet = readSecretSources(lookup, c.Source, c.SecretNames, add)

	interval := optional("ROTATION_CHECK_INTERVAL", defaultRotationCheckInterval)
	if d, err := time.ParseDuration(interval); err != nil || d < 0 || (d > 0 && d < minRotationCheckInterval) {
		add("ROTATION_CHECK_INTERVAL %q is not a duration of at least 1s; want e.g. 5m, or 0 to turn the drift check off", interval)
	} else {
		c.RotationCheckInterval = d
	}
	c.RotationAction = strings.ToLower(optional("ROTATION_ACTION", "report"))
	if !slices.Contains(rotationActions, c.RotationAction) {
		add("ROTATION_ACTION %q is not known; want report (show a rotated secret on the page) or exit (drain and exit 0, so that an ECS service starts a task with the new value)", c.RotationAction)
	}
	c.MetadataURL = strings.TrimSpace(getenv("ECS_CONTAINER_METADATA_URI_V4"))
	if c.MetadataURL != "" && !isHTTPURL(c.MetadataURL) {
		add("ECS_CONTAINER_METADATA_URI_V4 %s is not an http URL; ECS sets it, e.g. http://169.254.170.2/v4/ID", quoteURL(c.MetadataURL))
	}

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

	queue := optional("QUEUE_SIZE", "2000")
	if n, err := strconv.Atoi(queue); err != nil || n < 25 || n > 1_000_000 {
		add("QUEUE_SIZE %q is not a whole number from 25 to 1000000; want e.g. 2000", queue)
	} else {
		c.QueueSize = n
	}

	if len(problems) > 0 {
		return config{}, &configError{problems: problems}
	}
	return c, nil
}

// exampleSecretSources is what a good SECRET_SOURCES looks like, for error messages.
const exampleSecretSources = `{"CONSUMERKEY":"arn:aws:secretsmanager:us-east-1:123456789012:secret:streammatch/twitter-AbCdEf:CONSUMERKEY::", ...}`

// readSecretSources reads SECRET_SOURCES, the JSON object that maps each injected secret's
// name to the valueFrom of its task-definition entry. It is rendered from the task
// definition's own `secrets` when the task definition is registered, so that the service learns
// where its secrets came from without ecs:DescribeTaskDefinition (which takes Resource "*" and
// would show the task every task definition in the account). Problems name the variable and the
// entry, never a valueFrom or any other value: if a value was pasted where a reference belongs,
// the error must not print it.
func readSecretSources(lookup func(string) (string, bool), source string, names []string, add func(string, ...any)) ([]rotation.Secret, bool) {
	out := make([]rotation.Secret, 0, len(names))
	for _, n := range names {
		out = append(out, rotation.Secret{Name: n})
	}
	raw, ok := lookup("SECRET_SOURCES")
	if !ok || strings.TrimSpace(raw) == "" {
		return out, false
	}
	var entries map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &entries); err != nil || entries == nil {
		add("SECRET_SOURCES is not a JSON object of secret names to valueFrom strings (%s); want e.g. %s", jsonProblem(err), exampleSecretSources)
		return out, true
	}
	keys := make([]string, 0, len(entries))
	for k := range entries {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, name := range keys {
		i := slices.Index(names, name)
		if i < 0 {
			if slices.Contains(sources, source) {
				add("SECRET_SOURCES has an entry %q, which is not a secret of SOURCE %s; want only %s", name, source, strings.Join(names, ", "))
			}
			continue
		}
		var valueFrom string
		if err := json.Unmarshal(entries[name], &valueFrom); err != nil {
			add("SECRET_SOURCES entry %q is not a JSON string (%s); want the valueFrom of its task-definition entry", name, jsonProblem(err))
			continue
		}
		ref, err := valuefrom.Parse(valueFrom)
		if err != nil {
			add("SECRET_SOURCES entry %q is not a valueFrom ECS accepts; want a Secrets Manager secret ARN, optionally with :JSON_KEY:VERSION_STAGE:VERSION_ID, or an SSM parameter name or ARN", name)
			continue
		}
		out[i].Source, out[i].Ref = valueFrom, ref
	}
	return out, true
}

// jsonProblem describes a JSON decoding error without quoting the input.
func jsonProblem(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case err == nil:
		return "it is null"
	case errors.As(err, &syntax):
		return fmt.Sprintf("invalid JSON at byte %d", syntax.Offset)
	case errors.As(err, &typ):
		return "it is a JSON " + typ.Value
	default:
		return "it is not valid JSON"
	}
}

// isHTTPURL reports whether raw is an absolute http(s) URL with a host.
func isHTTPURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
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
