package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strings"
)

// secretKeys are the JSON keys of the secret and the variables the app receives for
// SOURCE=twitter, as in scripts/lib.sh (TWITTER_SECRET_KEYS).
var secretKeys = []string{"CONSUMERKEY", "CONSUMERSECRETKEY", "ACCESSTOKEN", "ACCESSTOKENSECRET"}

// sourceSecretKeys are the secret keys of each -source: scripts/lib.sh's lists, the names
// the service reads (config.go's sourceSecretNames).
var sourceSecretKeys = map[string][]string{
	"twitter":  secretKeys,
	"x":        {"X_BEARER_TOKEN"},
	"mastodon": {"MASTODON_ACCESS_TOKEN"},
}

// sourceLabels name each source's credentials in local's messages.
var sourceLabels = map[string]string{
	"twitter":  "Twitter credentials",
	"x":        "X bearer token",
	"mastodon": "Mastodon access token",
}

// secretValues holds a source's secret values by key. Its String never shows them, so that
// printing it by mistake (%v in an error) leaks nothing.
type secretValues map[string]string

func (c secretValues) String() string { return fmt.Sprintf("[%d credentials hidden]", len(c)) }

func (c secretValues) GoString() string { return c.String() }

// readSecretsFile reads a dotenv file: NAME=value lines, optionally prefixed with "export ",
// values optionally in matching single or double quotes, '#' comments and blank lines. It
// returns the values of keys and warnings (names and line numbers only: a value never
// appears in a warning or an error).
func readSecretsFile(path string, keys []string) (secretValues, []string, error) {
	var warnings []string
	info, err := os.Stat(path)
	if err != nil {
		return nil, nil, fmt.Errorf("-secrets: %w", err)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		warnings = append(warnings, fmt.Sprintf("%s is readable or writable by others (mode %04o); restrict it with: chmod 600 %s", path, perm, path))
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("-secrets: %w", err)
	}
	creds := secretValues{}
	seen := map[string]bool{}
	var problems []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		name, value, ok := strings.Cut(line, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			problems = append(problems, fmt.Sprintf("line %d is not NAME=value", n))
			continue
		}
		value = strings.TrimSpace(value)
		if len(value) >= 2 && (value[0] == '"' || value[0] == '\'') && value[len(value)-1] == value[0] {
			value = value[1 : len(value)-1]
		}
		known := false
		for _, k := range keys {
			known = known || k == name
		}
		if !known {
			warnings = append(warnings, fmt.Sprintf("%s line %d: %s is not one of %s; ignored", path, n, name, strings.Join(keys, ", ")))
			continue
		}
		seen[name] = true
		if value == "" {
			problems = append(problems, fmt.Sprintf("line %d: %s is empty", n, name))
			continue
		}
		creds[name] = value
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("-secrets %s: %w", path, err)
	}
	for _, k := range keys {
		if !seen[k] {
			problems = append(problems, k+" is missing")
		}
	}
	if len(problems) > 0 {
		return nil, warnings, errors.New("-secrets " + path + ": want NAME=value lines for " + strings.Join(keys, ", ") + ":\n  - " + strings.Join(problems, "\n  - "))
	}
	return creds, warnings, nil
}

// alnum is the alphabet of the random credentials.
const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// randomCredentials makes fresh values of source's keys from crypto/rand, shaped like the real
// ones: for twitter a 25-character consumer key, a 50-character consumer secret, a
// "USERID-..." access token and a 45-character token secret; for x an app-only bearer token
// (a run of "A", then 91 characters); for mastodon a 43-character access token. They exist only
// in the emulator, the simulator and the app's environment.
func randomCredentials(source string) (secretValues, error) {
	switch source {
	case "x", "mastodon":
		alphabet, n, prefix := alnum, 91, "AAAAAAAAAAAAAAAAAAAAA"
		if source == "mastodon" {
			alphabet, n, prefix = alnum+"-_", 43, ""
		}
		v, err := randomString(alphabet, n)
		if err != nil {
			return nil, err
		}
		return secretValues{sourceSecretKeys[source][0]: prefix + v}, nil
	}
	userID, err := randomString("0123456789", 19)
	if err != nil {
		return nil, err
	}
	out := secretValues{}
	for name, n := range map[string]int{"CONSUMERKEY": 25, "CONSUMERSECRETKEY": 50, "ACCESSTOKEN": 40, "ACCESSTOKENSECRET": 45} {
		v, err := randomString(alnum, n)
		if err != nil {
			return nil, err
		}
		out[name] = v
	}
	out["ACCESSTOKEN"] = "1" + userID[1:] + "-" + out["ACCESSTOKEN"]
	return out, nil
}

func randomString(alphabet string, n int) (string, error) {
	b := make([]byte, n)
	max := big.NewInt(int64(len(alphabet)))
	for i := range b {
		k, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", fmt.Errorf("random credentials: %w", err)
		}
		b[i] = alphabet[k.Int64()]
	}
	return string(b), nil
}
