package secrets_test

// The task definition lint as a gate on the repository's own taskdef.json: it must pass, and
// each way of weakening it that Security Hub flags must trip exactly the one matching rule.

import (
	"encoding/json"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/streammatch/streammatch/secrets"
	"github.com/streammatch/streammatch/secrets/valuefrom"
)

// twitterSecretNames are the credentials the repository's task definition injects (SOURCE=twitter).
var twitterSecretNames = []string{"CONSUMERKEY", "CONSUMERSECRETKEY", "ACCESSTOKEN", "ACCESSTOKENSECRET"}

// repoTaskDefinition loads taskdef.json with example values for its placeholders, as the
// deploy script fills them, and returns it as generic JSON for the cases to change.
func repoTaskDefinition(t *testing.T) map[string]any {
	t.Helper()
	return loadTemplate(t, "../taskdef.json")
}

// loadTemplate is repoTaskDefinition for any of the repository's task definition templates.
func loadTemplate(t *testing.T, path string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the repository's task definition: %v", err)
	}
	vars := map[string]string{}
	for _, name := range secrets.Placeholders(string(raw)) {
		vars[name] = "example"
	}
	// SECRET_SOURCES is left to LoadTaskDefinition, which renders it from the secrets as
	// register-taskdef.sh does.
	delete(vars, secrets.SecretSourcesVar)
	for k, v := range map[string]string{
		"AWS_REGION": "us-east-1", "AWS_ACCOUNT_ID": "123456789012", "APP_NAME": "streammatch", "CPU_ARCHITECTURE": "X86_64",
		"EXECUTION_ROLE_ARN": "arn:aws:iam::123456789012:role/streammatch-execution-role",
		"TASK_ROLE_ARN":      "arn:aws:iam::123456789012:role/streammatch-task-role",
		"SECRET_ARN":         "arn:aws:secretsmanager:us-east-1:123456789012:secret:streammatch/twitter-AbCdEf",
		"IMAGE":              "123456789012.dkr.ecr.us-east-1.amazonaws.com/streammatch:abc",
		"TABLE_NAME":         "twitterStream", "LOG_GROUP": "/ecs/streammatch", "FILTER": "golang", "SOURCE": "twitter",
		"X_STREAM_URL": "https://api.x.com", "MASTODON_URL": "https://mastodon.social",
	} {
		if _, used := vars[k]; used {
			vars[k] = v
		}
	}
	td, err := secrets.LoadTaskDefinition(path, vars)
	if err != nil {
		t.Fatalf("LoadTaskDefinition(%s): %v", path, err)
	}
	for _, e := range td.ContainerDefinitions[0].Environment {
		if e.Name == secrets.SecretSourcesVar {
			vars[e.Name] = e.Value
		}
	}
	filled := string(raw)
	for k, v := range vars {
		quoted, _ := json.Marshal(v)
		filled = strings.ReplaceAll(filled, "${"+k+"}", string(quoted[1:len(quoted)-1]))
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(filled), &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(td.ContainerDefinitions) != 1 {
		t.Fatalf("%s has %d containers; these cases change the first and expect one", path, len(td.ContainerDefinitions))
	}
	return doc
}

func lintJSON(t *testing.T, doc map[string]any) (*secrets.TaskDefinition, []string) {
	t.Helper()
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	var td secrets.TaskDefinition
	if err := json.Unmarshal(b, &td); err != nil {
		t.Fatal(err)
	}
	var rules []string
	for _, f := range secrets.Lint(&td) {
		rules = append(rules, f.Rule)
	}
	return &td, rules
}

func container(doc map[string]any) map[string]any {
	return doc["containerDefinitions"].([]any)[0].(map[string]any)
}

func addEnv(name, value string) func(map[string]any) {
	return func(doc map[string]any) {
		c := container(doc)
		env, _ := c["environment"].([]any)
		c["environment"] = append(env, map[string]any{"name": name, "value": value})
	}
}

// setEnv sets the value of the first container's environment variable name.
func setEnv(name, value string) func(map[string]any) {
	return func(doc map[string]any) {
		for _, e := range container(doc)["environment"].([]any) {
			if e := e.(map[string]any); e["name"] == name {
				e["value"] = value
			}
		}
	}
}

// removeEnv removes the first container's environment variable name.
func removeEnv(name string) func(map[string]any) {
	return func(doc map[string]any) {
		c := container(doc)
		var kept []any
		for _, e := range c["environment"].([]any) {
			if e.(map[string]any)["name"] != name {
				kept = append(kept, e)
			}
		}
		c["environment"] = kept
	}
}

func TestTaskDefinition_LintGatesTheRepositoryFile(t *testing.T) {
	set := func(key string, v any) func(map[string]any) {
		return func(doc map[string]any) { container(doc)[key] = v }
	}
	unset := func(key string) func(map[string]any) {
		return func(doc map[string]any) { delete(container(doc), key) }
	}
	tests := []struct {
		name   string
		change func(map[string]any)
		want   []string
	}{
		{"as committed", func(map[string]any) {}, nil},
		{"API key in environment", addEnv("TWITTER_API_KEY", "abc"), []string{secrets.RuleCredentialInEnvironment}},
		{"secret in environment", addEnv("CLIENT_SECRET", "abc"), []string{secrets.RuleCredentialInEnvironment}},
		{"token in environment", addEnv("X_BEARER_TOKEN", "abc"), []string{secrets.RuleCredentialInEnvironment}},
		{"password in environment", addEnv("DB_PASSWORD", "abc"), []string{secrets.RuleCredentialInEnvironment}},
		{"writable root filesystem", set("readonlyRootFilesystem", false), []string{secrets.RuleWritableRootFilesystem}},
		{"root filesystem left to the default", unset("readonlyRootFilesystem"), []string{secrets.RuleWritableRootFilesystem}},
		{"root user", set("user", "0:0"), []string{secrets.RuleRootUser}},
		{"root by name", set("user", "root"), []string{secrets.RuleRootUser}},
		{"user left to the image", unset("user"), []string{secrets.RuleRootUser}},
		{"privileged", set("privileged", true), []string{secrets.RulePrivileged}},
		{"secret ARN read by the app", addEnv("TWITTER_CREDENTIALS", "arn:aws:secretsmanager:us-east-1:123456789012:secret:streammatch/twitter-AbCdEf"),
			[]string{secrets.RuleSecretNotByValueFrom}},
		{"parameter ARN read by the app", addEnv("TWITTER_SETTINGS", "arn:aws:ssm:us-east-1:123456789012:parameter/streammatch/twitter/CONSUMERKEY"),
			[]string{secrets.RuleSecretNotByValueFrom}},
		{"host network", func(doc map[string]any) { doc["networkMode"] = "host" }, []string{secrets.RuleHostNetwork}},
		{"SECRET_SOURCES removed", removeEnv(secrets.SecretSourcesVar), []string{secrets.RuleSecretSources}},
		{"SECRET_SOURCES not JSON", setEnv(secrets.SecretSourcesVar, "arn:aws:secretsmanager:us-east-1:123456789012:secret:streammatch/twitter-AbCdEf"),
			[]string{secrets.RuleSecretSources}},
		{"a secret added without SECRET_SOURCES", func(doc map[string]any) {
			c := container(doc)
			c["secrets"] = append(c["secrets"].([]any), map[string]any{"name": "BEARERTOKEN", "valueFrom": "arn:aws:ssm:us-east-1:123456789012:parameter/streammatch/x/BEARERTOKEN"})
		}, []string{secrets.RuleSecretSources}},
		{"a secret pointed elsewhere", func(doc map[string]any) {
			s := container(doc)["secrets"].([]any)[0].(map[string]any)
			s["valueFrom"] = s["valueFrom"].(string)[:len(s["valueFrom"].(string))-1] + "AWSPREVIOUS:"
		}, []string{secrets.RuleSecretSources}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc := repoTaskDefinition(t)
			tc.change(doc)
			_, rules := lintJSON(t, doc)
			if !slices.Equal(rules, tc.want) {
				t.Errorf("Lint rules: got %q, want %q", rules, tc.want)
			}
		})
	}
}

// TestTaskDefinition_AppSecretsOnlyThroughValueFrom checks the repository's task definition by
// name rather than by Lint's heuristics: every variable the service treats as a secret comes
// from secrets[].valueFrom, never from environment.
func TestTaskDefinition_AppSecretsOnlyThroughValueFrom(t *testing.T) {
	td, _ := lintJSON(t, repoTaskDefinition(t))
	c := td.ContainerDefinitions[0]
	fromSecrets := map[string]bool{}
	for _, s := range c.Secrets {
		fromSecrets[s.Name] = true
		if _, err := valuefrom.Parse(s.ValueFrom); err != nil {
			t.Errorf("secret %s: valueFrom does not parse: %v", s.Name, err)
		}
	}
	for _, name := range twitterSecretNames {
		if !fromSecrets[name] {
			t.Errorf("%s is not among the container's secrets", name)
		}
	}
	for _, e := range c.Environment {
		if slices.Contains(twitterSecretNames, e.Name) {
			t.Errorf("%s is in environment, where anyone with ecs:DescribeTaskDefinition reads it", e.Name)
		}
	}
}

// TestTaskDefinition_SecretSourcesNameEverySecret checks the rendering the service reads: the
// repository's SECRET_SOURCES, filled as the scripts fill it, is a JSON object with exactly the
// container's secrets and their valueFrom, each of which parses.
func TestTaskDefinition_SecretSourcesNameEverySecret(t *testing.T) {
	td, _ := lintJSON(t, repoTaskDefinition(t))
	c := td.ContainerDefinitions[0]
	var raw string
	for _, e := range c.Environment {
		if e.Name == secrets.SecretSourcesVar {
			raw = e.Value
		}
	}
	var got map[string]string
	if err := json.Unmarshal([]byte(raw), &got); err != nil {
		t.Fatalf("%s = %q is not a JSON object: %v", secrets.SecretSourcesVar, raw, err)
	}
	want := map[string]string{}
	for _, s := range c.Secrets {
		want[s.Name] = s.ValueFrom
		if _, err := valuefrom.Parse(got[s.Name]); err != nil {
			t.Errorf("%s[%s]: %v", secrets.SecretSourcesVar, s.Name, err)
		}
	}
	if !maps.Equal(got, want) {
		t.Errorf("%s = %v, want the container's secrets %v", secrets.SecretSourcesVar, got, want)
	}
	for _, name := range twitterSecretNames {
		if _, ok := got[name]; !ok {
			t.Errorf("%s lacks %s", secrets.SecretSourcesVar, name)
		}
	}
}

// sourceTemplates are the task definition templates of each SOURCE, as scripts/lib.sh picks
// them, with the secret names config.go reads for the source and its plain settings.
var sourceTemplates = []struct {
	source, path string
	secrets      []string
	settings     []string // environment entries only this source's template has
}{
	{"twitter", "../taskdef.json", twitterSecretNames, nil},
	{"x", "../deploy/taskdef.x.json", []string{"X_BEARER_TOKEN"}, []string{"X_STREAM_URL"}},
	{"mastodon", "../deploy/taskdef.mastodon.json", []string{"MASTODON_ACCESS_TOKEN"}, []string{"MASTODON_URL"}},
}

// TestTaskDefinition_EverySourceTemplatePassesTheLint holds each source's template to the
// lint and to its source: exactly the source's secrets (by valueFrom), its settings in
// environment, SOURCE naming it, and SECRET_SOURCES matching the secrets.
func TestTaskDefinition_EverySourceTemplatePassesTheLint(t *testing.T) {
	for _, tt := range sourceTemplates {
		t.Run(tt.source, func(t *testing.T) {
			td, rules := lintJSON(t, loadTemplate(t, tt.path))
			if len(rules) != 0 {
				t.Errorf("Lint rules: got %q, want none", rules)
			}
			c := td.ContainerDefinitions[0]
			var names []string
			for _, s := range c.Secrets {
				names = append(names, s.Name)
				if _, err := valuefrom.Parse(s.ValueFrom); err != nil {
					t.Errorf("secret %s: valueFrom does not parse: %v", s.Name, err)
				}
			}
			if !slices.Equal(names, tt.secrets) {
				t.Errorf("secrets %q, want the secret names of SOURCE=%s %q", names, tt.source, tt.secrets)
			}
			env := map[string]string{}
			for _, e := range c.Environment {
				env[e.Name] = e.Value
			}
			if tt.source != "twitter" && env["SOURCE"] != tt.source {
				t.Errorf("SOURCE = %q, want %q: the template is this source's", env["SOURCE"], tt.source)
			}
			for _, name := range tt.settings {
				if env[name] == "" {
					t.Errorf("environment lacks the setting %s", name)
				}
			}
		})
	}
}

// TestTaskDefinition_SourceTemplatesDifferOnlyInSecretsAndSettings keeps the per-source copies
// honest: apart from secrets, SOURCE and the source's settings, each is taskdef.json exactly,
// so that a hardening change to taskdef.json that is not copied fails here.
func TestTaskDefinition_SourceTemplatesDifferOnlyInSecretsAndSettings(t *testing.T) {
	strip := func(t *testing.T, path string) string {
		t.Helper()
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		c := container(doc)
		delete(c, "secrets")
		var kept []any
		for _, e := range c["environment"].([]any) {
			switch e.(map[string]any)["name"] {
			case "SOURCE", "X_STREAM_URL", "MASTODON_URL":
				continue
			}
			kept = append(kept, e)
		}
		c["environment"] = kept
		b, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	want := strip(t, "../taskdef.json")
	for _, tt := range sourceTemplates[1:] {
		t.Run(tt.source, func(t *testing.T) {
			if got := strip(t, tt.path); got != want {
				t.Errorf("%s differs from taskdef.json beyond secrets and settings:\n got %s\nwant %s", tt.path, got, want)
			}
		})
	}
}
