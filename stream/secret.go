package stream

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
)

// Secret is a credential a source holds: an OAuth 1.0a key or token, an X bearer token, a
// Mastodon access token. They come from Secrets Manager or SSM through the task definition and
// must never reach a log line, an error, a page or JSON, so every way of printing a Secret (fmt
// verbs, slog, encoding/json) gives the same redacted form. string(s) is the value; only the code
// that signs or authorises a request converts it.
type Secret string

const redactedSecret = "REDACTED"

// String returns a redacted form.
func (Secret) String() string { return redactedSecret }

// GoString returns a redacted form, for %#v.
func (Secret) GoString() string { return redactedSecret }

// Format prints the redacted form for every verb, so that %x or %q cannot print the value.
func (Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redactedSecret) }

// LogValue keeps slog from printing the value.
func (Secret) LogValue() slog.Value { return slog.StringValue(redactedSecret) }

// MarshalJSON keeps encoding/json from printing the value.
func (Secret) MarshalJSON() ([]byte, error) { return json.Marshal(redactedSecret) }

// Empty reports whether the secret is empty or only white space.
func (s Secret) Empty() bool {
	for _, c := range s {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return false
		}
	}
	return true
}
