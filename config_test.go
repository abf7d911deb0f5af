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
		c.StallTimeout != 90*time.Second || c.QueueSize != 2000 {
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

// testSecretARN is a Secrets Manager ARN with the random suffix, as create-secrets.sh makes it.
const testSecretARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:streammatch/twitter-AbCdEf"

func TestLoadConfig_SecretSources(t *testing.T) {
	all := `{"CONSUMERKEY":"` + testSecretARN + `:CONSUMERKEY::","CONSUMERSECRETKEY":"` + testSecretARN + `:CONSUMERSECRETKEY::",` +
		`"ACCESSTOKEN":"/streammatch/ACCESSTOKEN","ACCESSTOKENSECRET":"` + testSecretARN + `:ACCESSTOKENSECRET:AWSPREVIOUS:"}`
	tests := []struct {
		name    string
		env     map[string]string
		wantSet bool
		want    map[string]string // name -> source
	}{
		{name: "absent", env: validEnv(), want: map[string]string{"CONSUMERKEY": "", "ACCESSTOKEN": ""}},
		{name: "empty counts as absent", env: with(validEnv(), "SECRET_SOURCES", "  "), want: map[string]string{"CONSUMERKEY": ""}},
		{name: "every secret", env: with(validEnv(), "SECRET_SOURCES", all), wantSet: true, want: map[string]string{
			"CONSUMERKEY": testSecretARN + ":CONSUMERKEY::", "ACCESSTOKEN": "/streammatch/ACCESSTOKEN",
			"ACCESSTOKENSECRET": testSecretARN + ":ACCESSTOKENSECRET:AWSPREVIOUS:"}},
		{name: "an entry missing", env: with(validEnv(), "SECRET_SOURCES", `{"CONSUMERKEY":"`+testSecretARN+`"}`), wantSet: true,
			want: map[string]string{"CONSUMERKEY": testSecretARN, "ACCESSTOKEN": ""}},
		{name: "x", env: with(validEnv(), "SOURCE", "x", "X_BEARER_TOKEN", "xb", "SECRET_SOURCES", `{"X_BEARER_TOKEN":"`+testSecretARN+`:X_BEARER_TOKEN::"}`), wantSet: true,
			want: map[string]string{"X_BEARER_TOKEN": testSecretARN + ":X_BEARER_TOKEN::"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadConfig(envOf(tt.env))
			if err != nil {
				t.Fatalf("loadConfig: %v", err)
			}
			if c.SecretSourcesSet != tt.wantSet {
				t.Errorf("SecretSourcesSet: got %v, want %v", c.SecretSourcesSet, tt.wantSet)
			}
			if len(c.Secrets) != len(c.SecretNames) {
				t.Fatalf("secrets: got %d, want one per name %v", len(c.Secrets), c.SecretNames)
			}
			for i, s := range c.Secrets {
				if s.Name != c.SecretNames[i] {
					t.Errorf("secrets[%d] = %s, want %s (the order of the names)", i, s.Name, c.SecretNames[i])
				}
				if want, ok := tt.want[s.Name]; ok && s.Source != want {
					t.Errorf("source of %s: got %q, want %q", s.Name, s.Source, want)
				}
				if s.Source != "" && s.Ref.ID == "" {
					t.Errorf("source of %s is not parsed: %+v", s.Name, s.Ref)
				}
			}
		})
	}
}

func TestLoadConfig_RotationSettings(t *testing.T) {
	tests := []struct {
		name         string
		env          map[string]string
		wantInterval time.Duration
		wantAction   string
		wantMetadata string
	}{
		{name: "defaults", env: validEnv(), wantInterval: 5 * time.Minute, wantAction: "report"},
		{name: "off", env: with(validEnv(), "ROTATION_CHECK_INTERVAL", "0"), wantInterval: 0, wantAction: "report"},
		{name: "local run's 5s and exit", env: with(validEnv(), "ROTATION_CHECK_INTERVAL", "5s", "ROTATION_ACTION", "EXIT"), wantInterval: 5 * time.Second, wantAction: "exit"},
		{name: "metadata endpoint", env: with(validEnv(), "ECS_CONTAINER_METADATA_URI_V4", "http://169.254.170.2/v4/abc"),
			wantInterval: 5 * time.Minute, wantAction: "report", wantMetadata: "http://169.254.170.2/v4/abc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadConfig(envOf(tt.env))
			if err != nil {
				t.Fatalf("loadConfig: %v", err)
			}
			if c.RotationCheckInterval != tt.wantInterval || c.RotationAction != tt.wantAction || c.MetadataURL != tt.wantMetadata {
				t.Errorf("got interval %v action %q metadata %q, want %v %q %q", c.RotationCheckInterval, c.RotationAction, c.MetadataURL,
					tt.wantInterval, tt.wantAction, tt.wantMetadata)
			}
		})
	}
}

func TestLoadConfig_SecretLifecycleProblemsAtOnceWithoutValues(t *testing.T) {
	// A value pasted where a reference belongs must not be printed back.
	const pasted = "ck-SECRET-VALUE-1"
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{name: "not JSON", env: with(validEnv(), "SECRET_SOURCES", `{"CONSUMERKEY":`+pasted), want: []string{"SECRET_SOURCES is not a JSON object", "invalid JSON at byte"}},
		{name: "not an object", env: with(validEnv(), "SECRET_SOURCES", `["`+pasted+`"]`), want: []string{"SECRET_SOURCES is not a JSON object", "a JSON array"}},
		{name: "null", env: with(validEnv(), "SECRET_SOURCES", `null`), want: []string{"SECRET_SOURCES is not a JSON object", "it is null"}},
		{name: "not a string", env: with(validEnv(), "SECRET_SOURCES", `{"CONSUMERKEY":12}`), want: []string{`SECRET_SOURCES entry "CONSUMERKEY" is not a JSON string (it is a JSON number)`}},
		{name: "all at once", env: with(validEnv(),
			"SECRET_SOURCES", `{"CONSUMERKEY":"`+pasted+` with spaces","X_BEARER_TOKEN":"`+testSecretARN+`","ACCESSTOKEN":"arn:aws:s3:::bucket"}`,
			"ROTATION_CHECK_INTERVAL", "500ms", "ROTATION_ACTION", "restart", "ECS_CONTAINER_METADATA_URI_V4", "169.254.170.2/v4"),
			want: []string{
				`SECRET_SOURCES entry "CONSUMERKEY" is not a valueFrom`,
				`SECRET_SOURCES entry "ACCESSTOKEN" is not a valueFrom`,
				`SECRET_SOURCES has an entry "X_BEARER_TOKEN", which is not a secret of SOURCE twitter`,
				`ROTATION_CHECK_INTERVAL "500ms" is not a duration of at least 1s`,
				`ROTATION_ACTION "restart" is not known; want report`,
				`ECS_CONTAINER_METADATA_URI_V4 "169.254.170.2/v4" is not an http URL`,
			}},
		{name: "negative interval", env: with(validEnv(), "ROTATION_CHECK_INTERVAL", "-5m"), want: []string{`ROTATION_CHECK_INTERVAL "-5m"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadConfig(envOf(tt.env))
			if err == nil || !isConfigError(err) {
				t.Fatalf("loadConfig: got %v, want a configuration error", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
			if strings.Contains(err.Error(), pasted) || strings.Contains(err.Error(), "SECRET-VALUE") {
				t.Errorf("error quotes a value:\n%v", err)
			}
		})
	}
}
