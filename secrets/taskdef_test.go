package secrets

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/streammatch/streammatch/secrets/valuefrom"
)

func ptr[T any](v T) *T { return &v }

const hardenedSecretARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:streammatch/twitter-AbCdEf"

// replaceEnv replaces the first container's environment with env, keeping its SECRET_SOURCES
// (which Lint checks against the secrets, not the environment).
func replaceEnv(td *TaskDefinition, env []EnvVar) {
	c := &td.ContainerDefinitions[0]
	for _, e := range c.Environment {
		if e.Name == SecretSourcesVar {
			env = append(env, e)
		}
	}
	c.Environment = env
}

// hardenedTaskDefinition is a valid Fargate task definition that passes Lint; each test case
// breaks one thing in a copy.
func hardenedTaskDefinition() TaskDefinition {
	return TaskDefinition{
		Family:                  "streammatch",
		TaskRoleArn:             "arn:aws:iam::123456789012:role/streammatch-task",
		ExecutionRoleArn:        "arn:aws:iam::123456789012:role/streammatch-execution",
		NetworkMode:             "awsvpc",
		RequiresCompatibilities: []string{"FARGATE"},
		Cpu:                     "256",
		Memory:                  "512",
		ContainerDefinitions: []ContainerDefinition{{
			Name:                   "streammatch",
			Image:                  "123456789012.dkr.ecr.us-east-1.amazonaws.com/streammatch:1",
			Essential:              ptr(true),
			User:                   "65532:65532",
			ReadonlyRootFilesystem: ptr(true),
			Privileged:             ptr(false),
			PortMappings:           []PortMapping{{ContainerPort: 8080, HostPort: 8080, Protocol: "tcp"}},
			Environment: []EnvVar{{Name: "DYNAMODBTABLE", Value: "twitterStream"}, {Name: "HTTP_ADDR", Value: ":8080"},
				{Name: SecretSourcesVar, Value: `{"CONSUMERKEY":"` + hardenedSecretARN + `:CONSUMERKEY::"}`}},
			Secrets: []Secret{
				{Name: "CONSUMERKEY", ValueFrom: hardenedSecretARN + ":CONSUMERKEY::"},
			},
			HealthCheck: &HealthCheck{Command: []string{"CMD", "/streammatch", "healthcheck"}, Interval: ptr(30), Timeout: ptr(5), Retries: ptr(3)},
			StopTimeout: ptr(30),
			Memory:      ptr(512),
		}},
	}
}

func writeJSON(t *testing.T, v any) string {
	t.Helper()
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, string(data))
}

func writeFile(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "taskdef.json")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadTaskDefinition_FillsPlaceholders(t *testing.T) {
	path := writeFile(t, `{
  "family": "${APP_NAME}",
  "executionRoleArn": "arn:aws:iam::${AWS_ACCOUNT_ID}:role/${APP_NAME}-execution",
  "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"], "cpu": "256", "memory": "512",
  "containerDefinitions": [{
    "name": "${APP_NAME}", "image": "${IMAGE}", "memory": 512,
    "environment": [{"name": "FILTER", "value": "${FILTER}"}, {"name": "AWSREGION", "value": "${AWS_REGION}"}],
    "secrets": [{"name": "CONSUMERKEY", "valueFrom": "${SECRET_ARN}:CONSUMERKEY::"}],
    "logConfiguration": {"logDriver": "awslogs"}
  }]
}`)
	vars := map[string]string{
		"APP_NAME": "streammatch", "AWS_ACCOUNT_ID": "123456789012", "IMAGE": "streammatch:dev", "AWS_REGION": "us-east-1",
		"SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:streammatch/twitter-AbCdEf",
		// A value with JSON's special characters must arrive intact, not break the document.
		"FILTER": `golang,"quoted" \ back`,
	}
	td, err := LoadTaskDefinition(path, vars)
	if err != nil {
		t.Fatalf("LoadTaskDefinition: %v", err)
	}
	c := td.ContainerDefinitions[0]
	checks := []struct{ field, got, want string }{
		{"family", td.Family, "streammatch"},
		{"executionRoleArn", td.ExecutionRoleArn, "arn:aws:iam::123456789012:role/streammatch-execution"},
		{"image", c.Image, "streammatch:dev"},
		{"environment FILTER", c.Environment[0].Value, vars["FILTER"]},
		{"secret valueFrom", c.Secrets[0].ValueFrom, vars["SECRET_ARN"] + ":CONSUMERKEY::"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %q, want %q", ch.field, ch.got, ch.want)
		}
	}
	if !c.IsEssential() {
		t.Errorf("essential left out: IsEssential() = false, want ECS's default true")
	}
}

func TestLoadTaskDefinition_NamesEveryUnknownPlaceholder(t *testing.T) {
	path := writeFile(t, `{"family": "${APP_NAME}", "taskRoleArn": "${TASK_ROLE_ARN}", "cpu": "${CPU}", "memory": "${CPU}"}`)
	_, err := LoadTaskDefinition(path, map[string]string{"APP_NAME": "streammatch"})
	if err == nil {
		t.Fatal("LoadTaskDefinition succeeded, want an error for the placeholders without values")
	}
	if want := "no value for placeholder ${TASK_ROLE_ARN}, ${CPU}"; !strings.Contains(err.Error(), want) {
		t.Errorf("error = %q, want it to contain %q", err, want)
	}
}

func TestPlaceholders(t *testing.T) {
	got := Placeholders(`{"a": "${A}:${B_2}", "b": "${A}", "c": "$NOT", "d": "${1X}", "e": "${}"}`)
	if want := []string{"A", "B_2"}; !slices.Equal(got, want) {
		t.Errorf("Placeholders = %q, want %q", got, want)
	}
}

func TestLoadTaskDefinition_ValidatesLikeECS(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(td *TaskDefinition)
		want   []string // substrings, one per expected problem
	}{
		{"valid", func(*TaskDefinition) {}, nil},
		{"duplicate environment names", func(td *TaskDefinition) {
			c := &td.ContainerDefinitions[0]
			c.Environment = append(c.Environment, EnvVar{Name: "HTTP_ADDR", Value: ":9090"})
		}, []string{"environment variable HTTP_ADDR is set twice"}},
		{"secret and environment variable with one name", func(td *TaskDefinition) {
			c := &td.ContainerDefinitions[0]
			c.Environment = append(c.Environment, EnvVar{Name: "CONSUMERKEY", Value: "x"})
		}, []string{"CONSUMERKEY is both a secret and an environment variable"}},
		{"secret without valueFrom", func(td *TaskDefinition) {
			td.ContainerDefinitions[0].Secrets[0].ValueFrom = ""
		}, []string{"secret CONSUMERKEY has no valueFrom"}},
		{"secret with a malformed valueFrom", func(td *TaskDefinition) {
			td.ContainerDefinitions[0].Secrets[0].ValueFrom = "arn:aws:secretsmanager:us-east-1:123456789012:secret:x:CONSUMERKEY"
		}, []string{"secret CONSUMERKEY: valueFrom \"arn:aws:secretsmanager:us-east-1:123456789012:secret:x:CONSUMERKEY\": an invalid ARN format"}},
		{"duplicate secret names", func(td *TaskDefinition) {
			c := &td.ContainerDefinitions[0]
			c.Secrets = append(c.Secrets, c.Secrets[0])
		}, []string{"secret CONSUMERKEY is set twice"}},
		{"larger than 64 KiB", func(td *TaskDefinition) {
			c := &td.ContainerDefinitions[0]
			c.Environment = append(c.Environment, EnvVar{Name: "BIG", Value: strings.Repeat("x", 64*1024)})
		}, []string{"more than ECS's limit of 65536 (64 KiB)"}},
		{"Fargate needs awsvpc", func(td *TaskDefinition) { td.NetworkMode = "bridge" }, []string{`networkMode "bridge": Fargate requires awsvpc`}},
		{"Fargate size combination", func(td *TaskDefinition) { td.Memory = "4096" }, []string{`memory "4096" is not allowed with cpu "256"`}},
		{"Fargate size in vCPU and GB", func(td *TaskDefinition) { td.Cpu, td.Memory = "0.25 vCPU", "0.5 GB" }, nil},
		{"unknown Fargate cpu", func(td *TaskDefinition) { td.Cpu = "300" }, []string{`cpu "300" is not a Fargate size`}},
		{"awsvpc hostPort must match", func(td *TaskDefinition) { td.ContainerDefinitions[0].PortMappings[0].HostPort = 80 }, []string{"hostPort 80 must equal containerPort 8080"}},
		{"health check command", func(td *TaskDefinition) {
			td.ContainerDefinitions[0].HealthCheck.Command = []string{"/streammatch", "healthcheck"}
		}, []string{`healthCheck.command must begin with "CMD" or "CMD-SHELL"`}},
		{"health check interval", func(td *TaskDefinition) { td.ContainerDefinitions[0].HealthCheck.Interval = ptr(1) }, []string{"healthCheck.interval 1 is outside ECS's 5 to 300"}},
		{"no essential container", func(td *TaskDefinition) { td.ContainerDefinitions[0].Essential = ptr(false) }, []string{"no container is essential"}},
		{"missing image", func(td *TaskDefinition) { td.ContainerDefinitions[0].Image = "" }, []string{"image is missing"}},
		{"secrets without execution role", func(td *TaskDefinition) { td.ExecutionRoleArn = "" }, []string{"executionRoleArn is missing"}},
		{"privileged on Fargate", func(td *TaskDefinition) { td.ContainerDefinitions[0].Privileged = ptr(true) }, []string{"privileged containers are not supported on Fargate"}},
		{"stopTimeout over Fargate's limit", func(td *TaskDefinition) { td.ContainerDefinitions[0].StopTimeout = ptr(200) }, []string{"stopTimeout 200 is outside Fargate's 2 to 120 seconds"}},
		{"bad family", func(td *TaskDefinition) { td.Family = "stream match" }, []string{`family "stream match"`}},
		{"every problem at once", func(td *TaskDefinition) {
			td.Family = ""
			td.ContainerDefinitions[0].Image = ""
			td.ContainerDefinitions[0].Secrets[0].ValueFrom = ""
		}, []string{"family", "image is missing", "has no valueFrom"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			td := hardenedTaskDefinition()
			tt.mutate(&td)
			got, err := LoadTaskDefinition(writeJSON(t, td), nil)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("LoadTaskDefinition: %v, want no error", err)
				}
				if got.Family != td.Family {
					t.Errorf("family %q, want %q", got.Family, td.Family)
				}
				return
			}
			var invalid *InvalidTaskDefinitionError
			if !errors.As(err, &invalid) {
				t.Fatalf("LoadTaskDefinition error = %v, want *InvalidTaskDefinitionError with %q", err, tt.want)
			}
			if len(invalid.Problems) != len(tt.want) {
				t.Fatalf("problems:\n got  %q\n want one each for %q", invalid.Problems, tt.want)
			}
			for i, want := range tt.want {
				if !strings.Contains(invalid.Problems[i], want) {
					t.Errorf("problem %d:\n got  %q\n want it to contain %q", i, invalid.Problems[i], want)
				}
			}
		})
	}
}

func TestLint(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(td *TaskDefinition)
		want   []string // rules, in order
	}{
		{"hardened", func(*TaskDefinition) {}, nil},
		{"credential names in environment", func(td *TaskDefinition) {
			replaceEnv(td, []EnvVar{
				{Name: "CONSUMER_KEY"}, {Name: "apiKey"}, {Name: "APIKey"}, {Name: "DB_PASSWORD"}, {Name: "ACCESS_TOKEN2"},
				{Name: "client_secrets"}, {Name: "Secret"},
				// Not credentials: the word is only part of a longer word.
				{Name: "MONKEY"}, {Name: "TURKEY"}, {Name: "KEYBOARD_LAYOUT"}, {Name: "TOKENIZER"}, {Name: "PASSWORDLESS_LOGIN"}, {Name: "SECRETARY"},
			})
		}, []string{RuleCredentialInEnvironment, RuleCredentialInEnvironment, RuleCredentialInEnvironment, RuleCredentialInEnvironment,
			RuleCredentialInEnvironment, RuleCredentialInEnvironment, RuleCredentialInEnvironment}},
		{"seed's run-together variable names in environment", func(td *TaskDefinition) {
			// The blog's names run the words together: the most likely ones to be moved into
			// environment by mistake, so Lint must catch them.
			replaceEnv(td, []EnvVar{{Name: "CONSUMERKEY"}, {Name: "CONSUMERSECRETKEY"}, {Name: "ACCESSTOKEN"}, {Name: "ACCESSTOKENSECRET"}})
		}, []string{RuleCredentialInEnvironment, RuleCredentialInEnvironment, RuleCredentialInEnvironment, RuleCredentialInEnvironment}},
		{"writable root filesystem", func(td *TaskDefinition) { td.ContainerDefinitions[0].ReadonlyRootFilesystem = ptr(false) }, []string{RuleWritableRootFilesystem}},
		{"root filesystem left at the default", func(td *TaskDefinition) { td.ContainerDefinitions[0].ReadonlyRootFilesystem = nil }, []string{RuleWritableRootFilesystem}},
		{"no user", func(td *TaskDefinition) { td.ContainerDefinitions[0].User = "" }, []string{RuleRootUser}},
		{"root by name", func(td *TaskDefinition) { td.ContainerDefinitions[0].User = "root" }, []string{RuleRootUser}},
		{"root by uid and gid", func(td *TaskDefinition) { td.ContainerDefinitions[0].User = "0:0" }, []string{RuleRootUser}},
		{"uid 0 with a non-root group", func(td *TaskDefinition) { td.ContainerDefinitions[0].User = "0:65532" }, []string{RuleRootUser}},
		{"non-root uid with root group", func(td *TaskDefinition) { td.ContainerDefinitions[0].User = "65532:0" }, nil},
		{"privileged", func(td *TaskDefinition) { td.ContainerDefinitions[0].Privileged = ptr(true) }, []string{RulePrivileged}},
		{"secret ARN in an environment value", func(td *TaskDefinition) {
			replaceEnv(td, []EnvVar{{Name: "TWITTER_CREDENTIALS_ARN", Value: "arn:aws:secretsmanager:us-east-1:123456789012:secret:streammatch/twitter-AbCdEf"}})
		}, []string{RuleSecretNotByValueFrom}},
		{"parameter ARN in an environment value", func(td *TaskDefinition) {
			replaceEnv(td, []EnvVar{{Name: "CONFIG", Value: "arn:aws:ssm:us-east-1:123456789012:parameter/streammatch/token"}})
		}, []string{RuleSecretNotByValueFrom}},
		{"CloudFormation dynamic reference in an environment value", func(td *TaskDefinition) {
			replaceEnv(td, []EnvVar{{Name: "CONSUMER", Value: "{{resolve:secretsmanager:streammatch/twitter:SecretString:CONSUMERKEY}}"}})
		}, []string{RuleSecretNotByValueFrom}},
		{"host network", func(td *TaskDefinition) { td.NetworkMode = "host" }, []string{RuleHostNetwork}},
		// SECRET_SOURCES names references, not values: neither environment rule applies to it,
		// but it must match the secrets exactly.
		{"SECRET_SOURCES missing", func(td *TaskDefinition) {
			td.ContainerDefinitions[0].Environment = td.ContainerDefinitions[0].Environment[:2]
		},
			[]string{RuleSecretSources}},
		{"no secrets and no SECRET_SOURCES", func(td *TaskDefinition) {
			c := &td.ContainerDefinitions[0]
			c.Secrets, c.Environment = nil, c.Environment[:2]
		}, nil},
		{"SECRET_SOURCES not JSON", func(td *TaskDefinition) { setSources(td, hardenedSecretARN+":CONSUMERKEY::") }, []string{RuleSecretSources}},
		{"SECRET_SOURCES a JSON list", func(td *TaskDefinition) { setSources(td, `["CONSUMERKEY"]`) }, []string{RuleSecretSources}},
		{"SECRET_SOURCES null", func(td *TaskDefinition) { setSources(td, `null`) }, []string{RuleSecretSources}},
		{"SECRET_SOURCES lacks a secret", func(td *TaskDefinition) { setSources(td, `{}`) }, []string{RuleSecretSources}},
		{"SECRET_SOURCES names another valueFrom", func(td *TaskDefinition) {
			setSources(td, `{"CONSUMERKEY":"`+hardenedSecretARN+`:CONSUMERKEY:AWSPREVIOUS:"}`)
		}, []string{RuleSecretSources}},
		{"SECRET_SOURCES names a secret the container lacks", func(td *TaskDefinition) {
			setSources(td, `{"CONSUMERKEY":"`+hardenedSecretARN+`:CONSUMERKEY::","ACCESSTOKEN":"`+hardenedSecretARN+`:ACCESSTOKEN::"}`)
		}, []string{RuleSecretSources}},
		{"SECRET_SOURCES in another order and spacing", func(td *TaskDefinition) {
			c := &td.ContainerDefinitions[0]
			c.Secrets = append(c.Secrets, Secret{Name: "ACCESSTOKEN", ValueFrom: "arn:aws:ssm:us-east-1:123456789012:parameter/streammatch/twitter/ACCESSTOKEN"})
			setSources(td, `{ "ACCESSTOKEN": "arn:aws:ssm:us-east-1:123456789012:parameter/streammatch/twitter/ACCESSTOKEN", "CONSUMERKEY": "`+hardenedSecretARN+`:CONSUMERKEY::" }`)
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			td := hardenedTaskDefinition()
			tt.mutate(&td)
			findings := Lint(&td)
			var got []string
			for _, f := range findings {
				got = append(got, f.Rule)
				if f.Container != "streammatch" && f.Rule != RuleHostNetwork {
					t.Errorf("finding %v names container %q, want streammatch", f, f.Container)
				}
				for _, e := range td.ContainerDefinitions[0].Environment {
					if e.Value != "" && strings.Contains(f.Message, e.Value) {
						t.Errorf("finding %q quotes an environment value", f.Message)
					}
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("Lint rules\n got  %q\n want %q\nfindings: %v", got, tt.want, findings)
			}
		})
	}
}

// setSources sets the first container's SECRET_SOURCES value.
func setSources(td *TaskDefinition, value string) {
	env := td.ContainerDefinitions[0].Environment
	for i := range env {
		if env[i].Name == SecretSourcesVar {
			env[i].Value = value
		}
	}
}

func TestLint_SecretSourcesMessageNamesTheSecrets(t *testing.T) {
	td := hardenedTaskDefinition()
	c := &td.ContainerDefinitions[0]
	c.Secrets = append(c.Secrets, Secret{Name: "ACCESSTOKEN", ValueFrom: hardenedSecretARN + ":ACCESSTOKEN::"})
	setSources(&td, `{"CONSUMERKEY":"`+hardenedSecretARN+`:CONSUMERKEY:AWSPREVIOUS:","BEARERTOKEN":"x"}`)
	findings := Lint(&td)
	if len(findings) != 1 || findings[0].Rule != RuleSecretSources {
		t.Fatalf("findings %v, want one %s", findings, RuleSecretSources)
	}
	for _, want := range []string{"lacks the secret ACCESSTOKEN", "valueFrom for CONSUMERKEY", "names BEARERTOKEN", "register-taskdef.sh"} {
		if !strings.Contains(findings[0].Message, want) {
			t.Errorf("message %q lacks %q", findings[0].Message, want)
		}
	}
}

func TestSecretSources_RendersCompactJSONInSecretsOrder(t *testing.T) {
	got := SecretSources([]Secret{
		{Name: "CONSUMERSECRETKEY", ValueFrom: hardenedSecretARN + ":CONSUMERSECRETKEY::"},
		{Name: "ACCESSTOKEN", ValueFrom: "arn:aws:ssm:us-east-1:123456789012:parameter/a&b<c>"},
	})
	want := `{"CONSUMERSECRETKEY":"` + hardenedSecretARN + `:CONSUMERSECRETKEY::","ACCESSTOKEN":"arn:aws:ssm:us-east-1:123456789012:parameter/a&b<c>"}`
	if got != want {
		t.Errorf("SecretSources:\n got %s\nwant %s", got, want)
	}
	if got := SecretSources(nil); got != "{}" {
		t.Errorf("SecretSources(nil) = %q, want {}", got)
	}
}

const sourcesTaskDefinition = `{
  "family": "streammatch", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"], "cpu": "256", "memory": "512",
  "executionRoleArn": "arn:aws:iam::123456789012:role/streammatch-execution",
  "containerDefinitions": [{
    "name": "streammatch", "image": "streammatch:dev", "memory": 512, "user": "65532", "readonlyRootFilesystem": true,
    "environment": [{"name": "SECRET_SOURCES", "value": "${SECRET_SOURCES}"}],
    "secrets": [
      {"name": "CONSUMERKEY", "valueFrom": "${SECRET_ARN}:CONSUMERKEY::"},
      {"name": "ACCESSTOKEN", "valueFrom": "/streammatch/twitter/ACCESSTOKEN"}
    ]
  }]
}`

func TestLoadTaskDefinition_RendersSecretSourcesFromTheFilledSecrets(t *testing.T) {
	path := writeFile(t, sourcesTaskDefinition)
	td, err := LoadTaskDefinition(path, map[string]string{"SECRET_ARN": hardenedSecretARN})
	if err != nil {
		t.Fatalf("LoadTaskDefinition without SECRET_SOURCES: %v", err)
	}
	c := td.ContainerDefinitions[0]
	want := `{"CONSUMERKEY":"` + hardenedSecretARN + `:CONSUMERKEY::","ACCESSTOKEN":"/streammatch/twitter/ACCESSTOKEN"}`
	if got := c.Environment[0].Value; got != want {
		t.Errorf("SECRET_SOURCES = %s, want %s", got, want)
	}
	if findings := Lint(td); len(findings) != 0 {
		t.Errorf("Lint of the rendered task definition: %v, want none", findings)
	}

	// A value given in vars is used as it is (and Lint judges it).
	td, err = LoadTaskDefinition(path, map[string]string{"SECRET_ARN": hardenedSecretARN, "SECRET_SOURCES": `{}`})
	if err != nil {
		t.Fatalf("LoadTaskDefinition with SECRET_SOURCES: %v", err)
	}
	if got := td.ContainerDefinitions[0].Environment[0].Value; got != `{}` {
		t.Errorf("SECRET_SOURCES = %s, want the given {}", got)
	}

	// The other placeholders still need their values.
	if _, err := LoadTaskDefinition(path, nil); err == nil || !strings.Contains(err.Error(), "no value for placeholder ${SECRET_ARN}") ||
		strings.Contains(err.Error(), "${SECRET_SOURCES}") {
		t.Errorf("LoadTaskDefinition(nil vars) error = %v, want one naming ${SECRET_ARN} only", err)
	}
}

func TestLoadTaskDefinition_RefusesSecretSourcesInsideAnotherValue(t *testing.T) {
	path := writeFile(t, strings.Replace(sourcesTaskDefinition, `"value": "${SECRET_SOURCES}"`, `"value": "x${SECRET_SOURCES}"`, 1))
	_, err := LoadTaskDefinition(path, map[string]string{"SECRET_ARN": hardenedSecretARN})
	if err == nil || !strings.Contains(err.Error(), "whole value of an environment variable") {
		t.Errorf("error = %v, want one saying ${SECRET_SOURCES} must be a whole environment value", err)
	}
}

// exampleVars fills the placeholders the repository's taskdef.json is known to use with
// realistic values.
var exampleVars = map[string]string{
	"AWS_ACCOUNT_ID":     "123456789012",
	"AWS_REGION":         "us-east-1",
	"APP_NAME":           "streammatch",
	"IMAGE":              "123456789012.dkr.ecr.us-east-1.amazonaws.com/streammatch:dev",
	"EXECUTION_ROLE_ARN": "arn:aws:iam::123456789012:role/streammatch-execution",
	"TASK_ROLE_ARN":      "arn:aws:iam::123456789012:role/streammatch-task",
	"SECRET_ARN":         "arn:aws:secretsmanager:us-east-1:123456789012:secret:streammatch/twitter-AbCdEf",
	"TABLE_NAME":         "twitterStream",
	"CPU_ARCHITECTURE":   "X86_64",
	"LOG_GROUP":          "/ecs/streammatch",
	"FILTER":             "golang",
	"SOURCE":             "twitter",
}

// TestLint_RepositoryTaskDefinition holds the repository's own taskdef.json to the rules: it
// must load, validate, reference its secrets with a valid valueFrom, and pass Lint.
func TestLint_RepositoryTaskDefinition(t *testing.T) {
	path := filepath.Join(repoRoot(t), "taskdef.json")
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		t.Skipf("no %s yet", path)
	}
	if err != nil {
		t.Fatal(err)
	}
	vars := make(map[string]string)
	for _, name := range Placeholders(string(raw)) {
		if name == SecretSourcesVar {
			continue // rendered from the secrets by LoadTaskDefinition, as the scripts render it
		}
		v, ok := exampleVars[name]
		if !ok {
			v = "example"
			t.Logf("placeholder ${%s} has no example value here; using %q", name, v)
		}
		vars[name] = v
	}
	td, err := LoadTaskDefinition(path, vars)
	if err != nil {
		t.Fatalf("LoadTaskDefinition(%s): %v", path, err)
	}
	for _, c := range td.ContainerDefinitions {
		for _, s := range c.Secrets {
			if _, err := valuefrom.Parse(s.ValueFrom); err != nil {
				t.Errorf("container %s secret %s: %v", c.Name, s.Name, err)
			}
		}
	}
	for _, f := range Lint(td) {
		t.Errorf("%s: %s", path, f)
	}
}

// repoRoot walks up from the package directory to the directory holding go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the package directory")
		}
		dir = parent
	}
}
