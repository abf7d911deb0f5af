package web

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"math"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/streammatch/streammatch/stream"
)

// The template files the server needs. They are parsed from the templates package's embedded
// file system; tests substitute another fs.FS.
const (
	statusTemplate = "status.html"
	errorTemplate  = "error.html"
	stylesheetFile = "style.css"
)

// pageMatchLimit is how many recent matches the status page shows.
const pageMatchLimit = 20

// statusPage is the data behind GET /.
type statusPage struct {
	Title   string
	Report  Report
	Matches []MatchView
	// Refresh is the meta-refresh interval in seconds: the page updates itself without any
	// script, which the CSP forbids.
	Refresh int
}

// errorPage is the data behind an HTML error response.
type errorPage struct {
	Title   string
	Code    int
	Message string
}

// templateFuncs are the helpers the templates may call. None of them returns template.HTML or
// template.URL: everything they produce is still escaped by html/template in context.
var templateFuncs = template.FuncMap{
	"uptime":      formatUptime,
	"ago":         formatAgo,
	"count":       formatCount,
	"timestamp":   formatTimestamp,
	"iso":         formatISO,
	"duration":    formatDuration,
	"tweetURL":    tweetURL,
	"healthClass": healthClass,
	"stateClass":  stateClass,
	"secretClass": secretClass,
	"join":        strings.Join,
}

// parseTemplates parses every *.html file in fsys and renders each page once with empty data.
// html/template escapes a template lazily, on its first Execute; the dry run moves those errors
// (and missing templates) to start-up.
func parseTemplates(fsys fs.FS) (*template.Template, error) {
	t, err := template.New("").Funcs(templateFuncs).ParseFS(fsys, "*.html")
	if err != nil {
		return nil, fmt.Errorf("parse templates: %w", err)
	}
	dryRuns := map[string]any{
		statusTemplate: statusPage{},
		errorTemplate:  errorPage{},
	}
	for name, data := range dryRuns {
		if t.Lookup(name) == nil {
			return nil, fmt.Errorf("parse templates: %s is missing", name)
		}
		var buf bytes.Buffer
		if err := t.ExecuteTemplate(&buf, name, data); err != nil {
			return nil, fmt.Errorf("check template %s: %w", name, err)
		}
	}
	return t, nil
}

// formatUptime renders seconds as "3d 4h 5m", "4h 5m", "5m 6s" or "6s".
func formatUptime(seconds float64) string {
	if seconds < 0 || math.IsNaN(seconds) {
		return "0s"
	}
	d := time.Duration(seconds) * time.Second
	days := int(d / (24 * time.Hour))
	h := int(d/time.Hour) % 24
	m := int(d/time.Minute) % 60
	s := int(d/time.Second) % 60
	switch {
	case days > 0:
		return fmt.Sprintf("%dd %dh %dm", days, h, m)
	case h > 0:
		return fmt.Sprintf("%dh %dm", h, m)
	case m > 0:
		return fmt.Sprintf("%dm %ds", m, s)
	default:
		return fmt.Sprintf("%ds", s)
	}
}

// formatAgo renders how long ago t was, e.g. "2h 5m ago", to the granularity of formatUptime.
func formatAgo(t time.Time) string {
	return formatUptime(time.Since(t).Seconds()) + " ago"
}

// formatCount renders a counter with thousands separators, e.g. "1,048,576", so that large
// numbers stay readable at a glance.
func formatCount(v any) string {
	var digits string
	switch n := v.(type) {
	case uint64:
		digits = strconv.FormatUint(n, 10)
	case int64:
		digits = strconv.FormatInt(n, 10)
	case int:
		digits = strconv.Itoa(n)
	default:
		return fmt.Sprint(v)
	}
	sign := ""
	if strings.HasPrefix(digits, "-") {
		sign, digits = "-", digits[1:]
	}
	var b strings.Builder
	for i, d := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(d)
	}
	return sign + b.String()
}

// formatTimestamp renders a time in UTC to the second; the zero time renders as a dash.
func formatTimestamp(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// formatISO renders a time for a <time datetime> attribute.
func formatISO(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// formatDuration renders a wait such as a retry delay, rounded to what a reader cares about.
func formatDuration(d time.Duration) string {
	if d >= time.Second {
		return d.Round(time.Second).String()
	}
	return d.Round(time.Millisecond).String()
}

// Twitter screen names are 1-15 letters, digits and underscores; tweet ids are decimal.
var (
	screenNamePattern = regexp.MustCompile(`^[A-Za-z0-9_]{1,15}$`)
	tweetIDPattern    = regexp.MustCompile(`^[0-9]{1,20}$`)
)

// tweetURL links a match to its tweet. The user name and id come from the stream, which anyone
// can write to, so a link is built only when both have the shape Twitter gives them and the
// result is an https URL; otherwise the page shows plain text. html/template would also neuter a
// javascript: URL, but not relying on that alone keeps the rule visible here.
func tweetURL(m MatchView) string {
	if !screenNamePattern.MatchString(m.User) || !tweetIDPattern.MatchString(m.ID) {
		return ""
	}
	u := &url.URL{Scheme: "https", Host: "twitter.com", Path: "/" + m.User + "/status/" + m.ID}
	return httpURL(u.String())
}

// httpURL returns raw if it is an absolute http or https URL with a host, and "" otherwise.
func httpURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return ""
	}
	if s := strings.ToLower(u.Scheme); s != "http" && s != "https" {
		return ""
	}
	return raw
}

// healthClass maps a health status to one of a fixed set of CSS classes.
func healthClass(h HealthStatus) string {
	switch h {
	case HealthOK:
		return "good"
	case HealthDegraded:
		return "warn"
	default:
		return "bad"
	}
}

// stateClass maps a stream state to one of a fixed set of CSS classes.
func stateClass(s stream.State) string {
	switch s {
	case stream.StateConnected:
		return "good"
	case stream.StateConnecting, stream.StateBackoff:
		return "warn"
	case stream.StateStalled, stream.StateRejected:
		return "bad"
	default:
		return "muted"
	}
}

// secretClass maps a secret's drift state to one of a fixed set of CSS classes.
func secretClass(s SecretState) string {
	switch s {
	case SecretCurrent:
		return "good"
	case SecretRotated:
		return "warn"
	default:
		return "muted"
	}
}
