package conn

import (
	"errors"
	"net/url"
)

// ParseBaseURL checks a source's base URL. field names the setting in errors (e.g.
// "TwitterConfig.BaseURL") and example is a good value to suggest; the URL itself is never
// quoted, since user info or a query in it could hold a credential.
func ParseBaseURL(field, example, raw string) (*url.URL, error) {
	want := "want an http(s) URL such as " + example
	if raw == "" {
		return nil, errors.New(field + " is empty; " + want)
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil, u.Scheme != "http" && u.Scheme != "https", u.Host == "":
		return nil, errors.New(field + " is not a valid URL; " + want)
	case u.User != nil:
		// User info would be a credential in a URL, which ends up in error strings.
		return nil, errors.New(field + " must not contain user info")
	case u.RawQuery != "" || u.Fragment != "":
		return nil, errors.New(field + " must not have a query or fragment; " + want)
	}
	return u, nil
}

// OrDefault returns v, or def when v is the zero value.
func OrDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}
