package main

import (
	"strings"
	"testing"
	"time"
)

// envOf returns a lookup function over a fixed map, so tests never touch the real environment.
func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// validEnv is a complete configuration; tests copy and change it.
func validEnv() map[string]string {
	return map[string]string{
		"DYNAMODBTABLE":     "twitterStream",
		"AWSREGION":         "us-west-2",
		"FILTER":            "aws,fargate secrets",
		"CONSUMERKEY":       "ck-SECRET-VALUE-1",
		"CONSUMERSECRETKEY": "cs-SECRET-VALUE-2",
		"ACCESSTOKEN":       "at-SECRET-VALUE-3",
		"ACCESSTOKENSECRET": "ats-SECRET-VALUE-4",
	}
}

func with(m map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "<unset>" {
			delete(out, kv[i])
			continue
		}
		out[kv[i]] = kv[i+1]
	}
	return out
}

func TestLoadConfig_Defaults(t *testing.T) {
	c, err := loadConfig(envOf(validEnv()))
	if err != nil {
		t.Fatalf("loadConfig: %v", err)
	}
	if c.Source != "twitter" || c.StreamURL != "https://stream.twitter.com" || c.HTTPAddr != ":8080" ||
		c.StallTimeout != 90*time.Second || c.QueueSize != 5000 {
		t.Errorf("defaults: got source=%q url=%q addr=%q stall=%v queue=%d", c.Source, c.StreamURL, c.HTTPAddr, c.StallTimeout, c.QueueSize)
	}
	if got, want := strings.Join(c.Track, "|"), "aws|fargate secrets"; got != want {
		t.Errorf("track: got %q, want %q", got, want)
	}
}

func TestLoadConfig_RegionFallbacks(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"AWSREGION wins", with(validEnv(), "AWS_REGION", "eu-west-1"), "us-west-2"},
		{"empty AWSREGION falls back to AWS_REGION", with(validEnv(), "AWSREGION", "", "AWS_REGION", "eu-west-1"), "eu-west-1"},
		{"then AWS_DEFAULT_REGION", with(validEnv(), "AWSREGION", "<unset>", "AWS_DEFAULT_REGION", "ap-northeast-1"), "ap-northeast-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadConfig(envOf(tt.env))
			if err != nil {
				t.Fatalf("loadConfig: %v", err)
			}
			if c.Region != tt.want {
				t.Errorf("region: got %q, want %q", c.Region, tt.want)
			}
		})
	}
}

func TestLoadConfig_ReportsEveryProblemAtOnce(t *testing.T) {
	long := strings.Repeat("x", 61)
	many := strings.TrimSuffix(strings.Repeat("t,", 401), ",")
	tests := []struct {
		name string
		env  map[string]string
		want []string // each must appear as part of one problem line
	}{
		{"missing", map[string]string{}, []string{
			"DYNAMODBTABLE is not set", "AWSREGION is not set", "FILTER is not set",
			"CONSUMERKEY is not set", "CONSUMERSECRETKEY is not set", "ACCESSTOKEN is not set", "ACCESSTOKENSECRET is not set"}},
		{"set but empty", with(validEnv(), "DYNAMODBTABLE", "", "CONSUMERKEY", "  ", "FILTER", ""), []string{
			"DYNAMODBTABLE is set but empty", "CONSUMERKEY is set but empty", "FILTER is set but empty"}},
		{"unknown source lists the valid ones", with(validEnv(), "SOURCE", "myspace"), []string{`SOURCE "myspace" is not known; want one of: twitter, x, mastodon`}},
		{"term over 60 bytes", with(validEnv(), "FILTER", "ok,"+long), []string{"FILTER: ", "61 bytes", "1-60 bytes"}},
		{"more than 400 terms", with(validEnv(), "FILTER", many), []string{"FILTER: ", "400"}},
		{"bad values", with(validEnv(), "HTTP_ADDR", "8080", "STALL_TIMEOUT", "soon", "LOG_LEVEL", "loud", "AWSREGION", "Oregon", "TWITTER_STREAM_URL", "ftp://x/y", "QUEUE_SIZE", "3"), []string{
			`HTTP_ADDR "8080" is not host:port`, `STALL_TIMEOUT "soon"`, `LOG_LEVEL "loud"`, `AWSREGION "Oregon"`, `TWITTER_STREAM_URL "ftp://x/y"`, `QUEUE_SIZE "3"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadConfig(envOf(tt.env))
			if err == nil {
				t.Fatal("loadConfig: got nil error, want problems")
			}
			if !isConfigError(err) {
				t.Errorf("error type: got %T, want *configError", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
			for _, name := range secretNames {
				if v := validEnv()[name]; strings.Contains(err.Error(), v) {
					t.Errorf("error leaks the value of %s:\n%v", name, err)
				}
			}
		})
	}
}

func TestLoadConfig_EachSourceNeedsItsOwnSecrets(t *testing.T) {
	noTwitter := with(validEnv(), "CONSUMERKEY", "<unset>", "CONSUMERSECRETKEY", "<unset>", "ACCESSTOKEN", "<unset>", "ACCESSTOKENSECRET", "<unset>")
	tests := []struct {
		name        string
		env         map[string]string
		wantErr     []string
		wantSecrets []string
		wantStall   time.Duration
		check       func(t *testing.T, c config)
	}{
		{name: "twitter keeps the blog's four names", env: validEnv(),
			wantSecrets: []string{"CONSUMERKEY", "CONSUMERSECRETKEY", "ACCESSTOKEN", "ACCESSTOKENSECRET"}, wantStall: 90 * time.Second},
		{name: "x", env: with(noTwitter, "SOURCE", "x", "X_BEARER_TOKEN", "xb-SECRET-VALUE-5"),
			wantSecrets: []string{"X_BEARER_TOKEN"}, wantStall: 60 * time.Second,
			check: func(t *testing.T, c config) {
				if string(c.XBearerToken) != "xb-SECRET-VALUE-5" || c.XStreamURL != "https://api.x.com" {
					t.Errorf("x: got url %q and a token of %d bytes", c.XStreamURL, len(c.XBearerToken))
				}
			}},
		{name: "x needs its token, not Twitter's", env: with(noTwitter, "SOURCE", "x"),
			wantErr: []string{"X_BEARER_TOKEN is not set"}},
		{name: "x URL must be a base URL", env: with(noTwitter, "SOURCE", "x", "X_BEARER_TOKEN", "t", "X_STREAM_URL", "https://api.x.com/2/tweets"),
			wantErr: []string{`X_STREAM_URL "https://api.x.com/2/tweets" is not a base URL`}},
		{name: "mastodon", env: with(noTwitter, "SOURCE", "mastodon", "MASTODON_URL", "https://mastodon.example", "MASTODON_ACCESS_TOKEN", "mt-SECRET-VALUE-6", "STALL_TIMEOUT", "30s"),
			wantSecrets: []string{"MASTODON_ACCESS_TOKEN"}, wantStall: 30 * time.Second,
			check: func(t *testing.T, c config) {
				if string(c.MastodonToken) != "mt-SECRET-VALUE-6" || c.MastodonURL != "https://mastodon.example" {
					t.Errorf("mastodon: got url %q and a token of %d bytes", c.MastodonURL, len(c.MastodonToken))
				}
			}},
		{name: "mastodon needs an instance and a token", env: with(noTwitter, "SOURCE", "mastodon"),
			wantErr: []string{"MASTODON_URL is not set", "MASTODON_ACCESS_TOKEN is not set"}},
		{name: "mastodon URL without user info", env: with(noTwitter, "SOURCE", "mastodon", "MASTODON_ACCESS_TOKEN", "t", "MASTODON_URL", "https://u:p@m.example"),
			wantErr: []string{"MASTODON_URL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadConfig(envOf(tt.env))
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatal("loadConfig: got nil error, want problems")
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error does not mention %q:\n%v", w, err)
					}
				}
				for _, v := range []string{"xb-SECRET", "mt-SECRET", "SECRET-VALUE"} {
					if strings.Contains(err.Error(), v) {
						t.Errorf("error leaks a secret value:\n%v", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("loadConfig: %v", err)
			}
			if strings.Join(c.SecretNames, ",") != strings.Join(tt.wantSecrets, ",") {
				t.Errorf("secret names: got %v, want %v", c.SecretNames, tt.wantSecrets)
			}
			if c.StallTimeout != tt.wantStall {
				t.Errorf("stall timeout: got %v, want %v", c.StallTimeout, tt.wantStall)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}
