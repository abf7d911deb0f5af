package scripts_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/streammatch/streammatch/internal/mototest"
	"github.com/streammatch/streammatch/internal/syncbuf"
	"github.com/streammatch/streammatch/secrets"
)

const (
	account   = "123456789012" // moto's account id
	region    = mototest.Region
	appName   = "streammatch"
	tableName = "twitterStream"
	// testImage is deployed with IMAGE=..., which skips build and push: moto has ECR's API but
	// no registry. The image path is covered by TestImage_BuildsOfflineRunsReadOnlyAndPushes.
	testImage = account + ".dkr.ecr." + region + ".amazonaws.com/" + appName + ":test"
)

var secretKeys = []string{"CONSUMERKEY", "CONSUMERSECRETKEY", "ACCESSTOKEN", "ACCESSTOKENSECRET"}

// sourceKeys are the secret keys of each SOURCE, as lib.sh and config.go name them.
var sourceKeys = map[string][]string{
	"twitter":  secretKeys,
	"x":        {"X_BEARER_TOKEN"},
	"mastodon": {"MASTODON_ACCESS_TOKEN"},
}

// requireTool returns the path of a tool the test needs. A missing tool skips the test on a
// developer machine but fails it in CI, where it means the machine is not set up.
func requireTool(t *testing.T, name, install string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	msg := fmt.Sprintf("%s is not on PATH (%s)", name, install)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
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
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// baseEnv keeps from the test's environment only what the AWS CLI (a pyenv shim), podman and
// the scripts need to start. Everything else, above all any real AWS credentials, profile or
// endpoint of the developer running the tests, stays out.
func baseEnv() []string {
	keep := map[string]bool{
		"PATH": true, "HOME": true, "USER": true, "TMPDIR": true, "LANG": true, "LC_ALL": true,
		"LC_CTYPE": true, "PYENV_ROOT": true, "PYENV_VERSION": true, "VIRTUAL_ENV": true,
		"PYTHONPATH": true, "XDG_RUNTIME_DIR": true, "CONTAINERS_CONF": true,
	}
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if keep[name] {
			env = append(env, kv)
		}
	}
	return env
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// harness runs the scripts with a fixed environment and an `aws` shim first on PATH that
// appends each call's argv to a file, so a test can prove what reached a command line.
type harness struct {
	t       *testing.T
	root    string
	env     []string
	argvLog string
	// source is the SOURCE the checks expect ("twitter" unless a test sets it), and wantEnv
	// the source's settings the task definition must carry besides the common ones.
	source  string
	wantEnv map[string]string

	mu     sync.Mutex
	output bytes.Buffer // everything every script printed, for the secret-leak check
}

func newHarness(t *testing.T, endpoint string, extraEnv ...string) *harness {
	t.Helper()
	realAWS := requireTool(t, "aws", "pip install awscli, or AWS CLI v2")
	requireTool(t, "bash", "apt-get install bash")
	dir := t.TempDir()
	shimDir := filepath.Join(dir, "bin")
	if err := os.Mkdir(shimDir, 0o755); err != nil {
		t.Fatal(err)
	}
	argvLog := filepath.Join(dir, "aws-argv.log")
	shim := "#!/usr/bin/env bash\nprintf '%s\\n' \"$*\" >>" + strconv.Quote(argvLog) + "\nexec " +
		strconv.Quote(realAWS) + " \"$@\"\n"
	if err := os.WriteFile(filepath.Join(shimDir, "aws"), []byte(shim), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(argvLog, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	env := baseEnv()
	for i, kv := range env {
		if strings.HasPrefix(kv, "PATH=") {
			env[i] = "PATH=" + shimDir + string(os.PathListSeparator) + strings.TrimPrefix(kv, "PATH=")
		}
	}
	env = append(env,
		"AWS_ENDPOINT_URL="+endpoint,
		"AWS_ACCESS_KEY_ID=testing",
		"AWS_SECRET_ACCESS_KEY=testing",
		"AWS_REGION="+region,
		"AWS_DEFAULT_REGION="+region,
		// No ~/.aws of the developer: nothing but the variables above configures the CLI.
		"AWS_CONFIG_FILE="+filepath.Join(dir, "no-config"),
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "no-credentials"),
		"TMPDIR="+dir,
	)
	env = append(env, extraEnv...)
	return &harness{t: t, root: repoRoot(t), env: env, argvLog: argvLog, source: "twitter"}
}

// keys are the secret keys of the harness's source.
func (h *harness) keys() []string { return sourceKeys[h.source] }

// secretName is the Secrets Manager secret of the harness's source; the SSM parameters live
// under "/" + secretName.
func (h *harness) secretName() string { return appName + "/" + h.source }

// run runs scripts/NAME.sh with extra NAME=value settings and returns its combined output.
func (h *harness) run(script string, extraEnv ...string) (string, error) {
	h.t.Helper()
	cmd := exec.Command("bash", filepath.Join(h.root, "scripts", script+".sh"))
	cmd.Dir = h.root
	cmd.Env = append(slices.Clone(h.env), extraEnv...)
	out, err := cmd.CombinedOutput()
	h.mu.Lock()
	h.output.Write(out)
	h.mu.Unlock()
	return string(out), err
}

// mustRun runs a script that must succeed.
func (h *harness) mustRun(script string, extraEnv ...string) string {
	h.t.Helper()
	out, err := h.run(script, extraEnv...)
	if err != nil {
		h.t.Fatalf("scripts/%s.sh: %v\n%s", script, err, out)
	}
	return out
}

// aws runs the AWS CLI with the harness's environment and decodes its JSON output into v.
func (h *harness) aws(v any, args ...string) error {
	h.t.Helper()
	cmd := exec.Command("aws", append(args, "--output", "json")...)
	cmd.Env = h.env
	cmd.Path = filepath.Join(filepath.Dir(h.argvLog), "bin", "aws")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("aws %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	if v == nil || len(bytes.TrimSpace(out)) == 0 {
		return nil
	}
	if err := json.Unmarshal(out, v); err != nil {
		return fmt.Errorf("aws %s: decode %q: %w", strings.Join(args, " "), out, err)
	}
	return nil
}

func (h *harness) mustAWS(v any, args ...string) {
	h.t.Helper()
	if err := h.aws(v, args...); err != nil {
		h.t.Fatal(err)
	}
}

// assertNoLeak fails when any secret value appears in what the scripts printed or in the argv
// of any aws process. The message names the key, never the value.
func (h *harness) assertNoLeak(secrets map[string]string) {
	h.t.Helper()
	argv, err := os.ReadFile(h.argvLog)
	if err != nil {
		h.t.Fatal(err)
	}
	h.mu.Lock()
	output := h.output.String()
	h.mu.Unlock()
	for key, value := range secrets {
		if strings.Contains(output, value) {
			h.t.Errorf("the value of %s appears in the scripts' output", key)
		}
		if strings.Contains(string(argv), value) {
			h.t.Errorf("the value of %s appears on an aws command line", key)
		}
	}
}

// writeSecretsFile writes a dotenv file with fresh values that need escaping in JSON (a quote,
// a backslash, a space) and returns the path and the values.
func writeSecretsFile(t *testing.T) (string, map[string]string) {
	t.Helper()
	values := map[string]string{
		"CONSUMERKEY":       "ck-" + randomHex(t, 8) + `"q`,
		"CONSUMERSECRETKEY": "cs-" + randomHex(t, 12) + `\b`,
		"ACCESSTOKEN":       "at-" + randomHex(t, 10),
		"ACCESSTOKENSECRET": "ats " + randomHex(t, 12),
	}
	var b strings.Builder
	b.WriteString("# test credentials\n")
	for _, key := range secretKeys {
		if key == "ACCESSTOKENSECRET" {
			fmt.Fprintf(&b, "export %s='%s'\n", key, values[key])
			continue
		}
		fmt.Fprintf(&b, "%s=%s\n", key, values[key])
	}
	path := filepath.Join(t.TempDir(), "twitter.env")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, values
}

func TestScripts_ShellcheckClean(t *testing.T) {
	shellcheck := requireTool(t, "shellcheck", "apt-get install shellcheck")
	root := repoRoot(t)
	var files []string
	for _, pattern := range []string{"scripts/*.sh", ".ci/*.sh", ".ci/run"} {
		matches, err := filepath.Glob(filepath.Join(root, pattern))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, matches...)
	}
	if len(files) < 12 {
		t.Fatalf("found %d scripts, want the 12 in scripts/ at least: %v", len(files), files)
	}
	// All files in one call, with -x, so that `source lib.sh` is followed and checked too.
	cmd := exec.Command(shellcheck, append([]string{"-x"}, files...)...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("shellcheck: %v\n%s", err, out)
	}
	for _, f := range files {
		if filepath.Ext(f) != ".sh" || strings.HasSuffix(f, "lib.sh") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(src, []byte("#!/usr/bin/env bash\n")) || !bytes.Contains(src, []byte("\nset -euo pipefail\n")) {
			t.Errorf("%s: want #!/usr/bin/env bash and set -euo pipefail", f)
		}
	}
}

// closedPortURL returns an http URL on which nothing listens: any AWS call would fail.
func closedPortURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String()
	l.Close()
	return url
}

func TestDeploy_DryRunMakesNoAWSCall(t *testing.T) {
	for _, store := range []string{"secretsmanager", "ssm"} {
		t.Run(store, func(t *testing.T) {
			secretsFile, secrets := writeSecretsFile(t)
			h := newHarness(t, closedPortURL(t),
				"DRY_RUN=1", "SECRET_STORE="+store, "SECRETS_FILE="+secretsFile, "IMAGE_TAG=dryrun")
			deploy := h.mustRun("deploy")
			teardown := h.mustRun("teardown")

			argv, err := os.ReadFile(h.argvLog)
			if err != nil {
				t.Fatal(err)
			}
			if len(argv) != 0 {
				t.Errorf("DRY_RUN=1 ran aws; got calls:\n%s\nwant none", argv)
			}
			for _, want := range []string{
				"[dry-run] + aws dynamodb create-table",
				"[dry-run] + aws iam create-role --role-name streammatch-execution-role",
				"[dry-run] + aws logs create-log-group --log-group-name /ecs/streammatch",
				"[dry-run] + aws ecr create-repository --repository-name streammatch --image-scanning-configuration scanOnPush=true",
				"[dry-run] + aws ecr get-login-password | docker login --username AWS --password-stdin",
				"[dry-run] + aws ecs create-cluster --cluster-name streammatch",
				"[dry-run] + aws ecs register-task-definition --cli-input-json file://",
				"[dry-run] + aws ecs run-task --cluster streammatch",
			} {
				if !strings.Contains(deploy, want) {
					t.Errorf("deploy output lacks %q; got:\n%s", want, deploy)
				}
			}
			wantSecret := "[dry-run] + aws secretsmanager create-secret --name streammatch/twitter"
			if store == "ssm" {
				wantSecret = "[dry-run] + aws ssm put-parameter --name /streammatch/twitter/CONSUMERKEY --type SecureString"
			}
			if !strings.Contains(deploy, wantSecret) {
				t.Errorf("deploy output lacks %q; got:\n%s", wantSecret, deploy)
			}
			if !strings.Contains(teardown, "[dry-run] + aws ecs list-tasks") {
				t.Errorf("teardown output lacks the list-tasks call; got:\n%s", teardown)
			}
			service := h.mustRun("deploy", "MODE=service")
			rotate := h.mustRun("rotate-secret", "MODE=service")
			for _, want := range []string{
				"[dry-run] + aws ecs create-service --cluster streammatch --service-name streammatch",
				"--deployment-configuration 'maximumPercent=100,minimumHealthyPercent=0,deploymentCircuitBreaker={enable=true,rollback=true}'",
			} {
				if !strings.Contains(service, want) || !strings.Contains(rotate, want) {
					t.Errorf("MODE=service deploy or rotate-secret output lacks %q; got:\n%s\n%s", want, service, rotate)
				}
			}
			if argv, _ := os.ReadFile(h.argvLog); len(argv) != 0 {
				t.Errorf("DRY_RUN=1 with MODE=service ran aws; got calls:\n%s\nwant none", argv)
			}
			h.assertNoLeak(secrets)
		})
	}
}

// The shapes of the AWS CLI answers the deploy test reads.
type (
	stringList []string
	statement  struct {
		Sid       string
		Effect    string
		Action    stringList
		Resource  stringList
		Principal map[string]stringList
		Condition map[string]map[string]stringList
	}
	policyDocument struct {
		Statement []statement
	}
	containerDefinition struct {
		Name        string
		Image       string
		Memory      int
		User        string
		Privileged  bool
		Environment []struct{ Name, Value string }
		Secrets     []struct{ Name, ValueFrom string }
		HealthCheck struct {
			Command                                 []string
			Interval, Timeout, Retries, StartPeriod int
		}
		ReadonlyRootFilesystem bool
		LinuxParameters        struct {
			Capabilities struct{ Drop []string }
		}
		LogConfiguration struct {
			LogDriver string
			Options   map[string]string
		}
	}
	taskDefinition struct {
		TaskDefinitionArn    string
		Revision             int
		NetworkMode          string
		Cpu, Memory          string
		ExecutionRoleArn     string
		TaskRoleArn          string
		ContainerDefinitions []containerDefinition
	}
)

// UnmarshalJSON accepts IAM's "one string or a list of strings".
func (l *stringList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*l = stringList{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*l = many
	return nil
}

// roleDetail is one role as get-account-authorization-details shows it: trust policy, inline
// and attached policies in one answer.
type roleDetail struct {
	RoleName                 string
	AssumeRolePolicyDocument policyDocument
	RolePolicyList           []struct {
		PolicyName     string
		PolicyDocument policyDocument
	}
	AttachedManagedPolicies []struct{ PolicyArn string }
}

// roles returns the account's roles by name, in one call.
func (h *harness) roles() map[string]roleDetail {
	h.t.Helper()
	var got struct{ RoleDetailList []roleDetail }
	h.mustAWS(&got, "iam", "get-account-authorization-details", "--filter", "Role")
	roles := map[string]roleDetail{}
	for _, r := range got.RoleDetailList {
		roles[r.RoleName] = r
	}
	return roles
}

// statements returns the Statement lists of the role's inline policies, and fails the test
// when it has managed policies attached: the scripts write inline policies only.
func (h *harness) statements(r roleDetail) []statement {
	h.t.Helper()
	if len(r.AttachedManagedPolicies) != 0 {
		h.t.Errorf("role %s has managed policies attached: %v; want inline policies only", r.RoleName, r.AttachedManagedPolicies)
	}
	var all []statement
	for _, p := range r.RolePolicyList {
		all = append(all, p.PolicyDocument.Statement...)
	}
	return all
}

// mutatingCall matches a printed AWS call that creates or changes a resource; a second deploy
// with the same inputs must print none of them.
var mutatingCall = regexp.MustCompile(`(?m)^\+ aws \S+ (create-\S+|put-secret-value|put-parameter|restore-secret|register-task-definition|run-task|stop-task|update-service|delete-\S+)\b.*$`)

func TestDeploy_TwiceThenTeardownAgainstMoto(t *testing.T) {
	t.Parallel() // each end-to-end test has its own moto; most of their time is the CLI's start-up
	requireTool(t, "moto_server", "pip install 'moto[server]'")
	for _, store := range []string{"secretsmanager", "ssm"} {
		t.Run(store, func(t *testing.T) {
			t.Parallel()
			testDeployTwiceThenTeardown(t, store)
		})
	}
}

// startECSMoto starts moto_server ready for the ECS steps. moto steps ECS tasks RUNNING ->
// STOPPED one step per describe call, which would fail `aws ecs wait tasks-running`; a manual
// transition keeps them RUNNING. MOTO_ECS_SERVICE_RUNNING=1 makes a new service count its one
// task as running, so that its deployment is COMPLETED (moto starts no task for a service).
func startECSMoto(t *testing.T) *mototest.Server {
	t.Helper()
	moto := mototest.Start(t, mototest.WithEnv("MOTO_ECS_SERVICE_RUNNING=1"))
	resp, err := http.Post(moto.URL+"/moto-api/state-manager/set-transition", "application/json",
		strings.NewReader(`{"model_name":"ecs::task","transition":{"progression":"manual","times":1000}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		t.Fatalf("set-transition: status %d", resp.StatusCode)
	}
	return moto
}

func testDeployTwiceThenTeardown(t *testing.T, store string) {
	moto := startECSMoto(t)

	secretsFile, secrets := writeSecretsFile(t)
	h := newHarness(t, moto.URL, "IMAGE="+testImage, "SECRET_STORE="+store, "SECRETS_FILE="+secretsFile)

	first := h.mustRun("deploy")
	if !strings.Contains(first, "+ aws ecs register-task-definition") {
		t.Errorf("first deploy registered no task definition; output:\n%s", first)
	}
	firstTasks := h.runningTasks()
	if len(firstTasks) != 1 {
		t.Fatalf("after the first deploy: running tasks %v, want 1", firstTasks)
	}

	second := h.mustRun("deploy")
	if calls := mutatingCall.FindAllString(second, -1); len(calls) != 0 {
		t.Errorf("second deploy changed things:\n%s\nwant no create/register/run calls", strings.Join(calls, "\n"))
	}
	for _, want := range []string{"exists, reusing", "task definition unchanged, reusing", "reusing it (FORCE_NEW_TASK=1 replaces it)"} {
		if !strings.Contains(second, want) {
			t.Errorf("second deploy output lacks %q; got:\n%s", want, second)
		}
	}
	if got := h.runningTasks(); !slices.Equal(got, firstTasks) {
		t.Errorf("running tasks after the second deploy: %v, want the first deploy's %v", got, firstTasks)
	}
	var revisions struct{ TaskDefinitionArns []string }
	h.mustAWS(&revisions, "ecs", "list-task-definitions", "--family-prefix", appName)
	if len(revisions.TaskDefinitionArns) != 1 {
		t.Errorf("task definition revisions: %v, want exactly one", revisions.TaskDefinitionArns)
	}

	secretRefs := h.checkSecretStore(store, secrets)
	h.checkRoles(store, secretRefs)
	h.checkTaskDefinition(secretRefs, secrets)
	h.checkLogGroupAndCluster()

	// Rotate and roll, MODE=task: the new values are written, then the task is stopped and a
	// new one run, in that order.
	newFile, newSecrets := writeSecretsFile(t)
	h.assertNoLeak(secrets) // before clearArgv drops the deploys' calls
	h.clearArgv()
	rotate := h.mustRun("rotate-secret", "SECRETS_FILE="+newFile)
	h.checkCallOrder("put-secret-value|put-parameter", "ecs stop-task", "ecs run-task")
	if got := h.runningTasks(); len(got) != 1 || slices.Equal(got, firstTasks) {
		t.Errorf("running tasks after the rotation: %v, want one new task in place of %v", got, firstTasks)
	}
	h.checkSecretStore(store, newSecrets)
	for _, key := range secretKeys {
		if !strings.Contains(rotate, "fingerprint "+key+": go run . fingerprint -source "+secretRefForKey(secretRefs, key)+" "+key+" < FILE") {
			t.Errorf("rotate-secret output lacks the fingerprint command for %s; got:\n%s", key, rotate)
		}
	}

	if store == "secretsmanager" {
		h.checkPreflightCatchesMissingKey(secretRefs)
	}

	teardown := h.mustRun("teardown", "FORCE_DELETE_SECRETS=1")
	h.checkAllGone(store, teardown)
	h.assertNoLeak(secrets)
	h.assertNoLeak(newSecrets)
}

// TestDeploy_EverySourceAgainstMoto deploys SOURCE=x and SOURCE=mastodon as the Twitter test
// deploys twitter: each with its own secret ($APP_NAME/$SOURCE), its own task definition
// template (deploy/taskdef.SOURCE.json) with its secrets, SECRET_SOURCES and settings, exact
// ARNs in the roles, a rotation (stop, then run) and a teardown that leaves nothing of it and
// does not touch another source's secret.
func TestDeploy_EverySourceAgainstMoto(t *testing.T) {
	requireTool(t, "moto_server", "pip install 'moto[server]'")
	tests := []struct {
		source, store string
		settings      []string          // the source's plain settings, as the user passes them
		wantEnv       map[string]string // what the task definition's environment must carry
	}{
		{"x", "secretsmanager", nil, map[string]string{"X_STREAM_URL": "https://api.x.com"}},
		{"mastodon", "secretsmanager", []string{"MASTODON_URL=https://mastodon.example"}, map[string]string{"MASTODON_URL": "https://mastodon.example"}},
		{"x", "ssm", []string{"X_STREAM_URL=https://api.x.example"}, map[string]string{"X_STREAM_URL": "https://api.x.example"}},
	}
	for _, tt := range tests {
		t.Run(tt.source+"/"+tt.store, func(t *testing.T) {
			t.Parallel()
			testDeploySource(t, tt.source, tt.store, tt.settings, tt.wantEnv)
		})
	}
}

func testDeploySource(t *testing.T, source, store string, settings []string, wantEnv map[string]string) {
	moto := startECSMoto(t)
	secretsFile, values := writeSourceSecretsFile(t, source)
	env := append([]string{"IMAGE=" + testImage, "SECRET_STORE=" + store, "SECRETS_FILE=" + secretsFile, "SOURCE=" + source}, settings...)
	h := newHarness(t, moto.URL, env...)
	h.source, h.wantEnv = source, wantEnv

	// Another source's secret in the same account and APP_NAME, which this source's deploy and
	// teardown must leave alone.
	twitterFile, twitterValues := writeSecretsFile(t)
	h.mustRun("create-secrets", "SOURCE=twitter", "SECRET_STORE=secretsmanager", "SECRETS_FILE="+twitterFile)
	var twitterSecret struct{ ARN string }
	h.mustAWS(&twitterSecret, "secretsmanager", "describe-secret", "--secret-id", appName+"/twitter")

	first := h.mustRun("deploy")
	if !strings.Contains(first, "render deploy/taskdef."+source+".json") {
		t.Errorf("deploy did not render deploy/taskdef.%s.json; output:\n%s", source, first)
	}
	if tasks := h.runningTasks(); len(tasks) != 1 {
		t.Fatalf("after the deploy: running tasks %v, want 1", tasks)
	}
	second := h.mustRun("deploy")
	if calls := mutatingCall.FindAllString(second, -1); len(calls) != 0 {
		t.Errorf("second deploy changed things:\n%s\nwant no create/register/run calls", strings.Join(calls, "\n"))
	}
	secretRefs := h.checkSecretStore(store, values)
	h.checkRoles(store, secretRefs)
	h.checkTaskDefinition(secretRefs, values)
	h.checkLogGroupAndCluster()

	// Rotate and roll (MODE=task): write, then stop the task and run a new one.
	before := h.runningTasks()
	newFile, newValues := writeSourceSecretsFile(t, source)
	h.assertNoLeak(values)
	h.assertNoLeak(twitterValues)
	h.clearArgv()
	rotate := h.mustRun("rotate-secret", "SECRETS_FILE="+newFile)
	h.checkCallOrder("put-secret-value|put-parameter", "ecs stop-task", "ecs run-task")
	if got := h.runningTasks(); len(got) != 1 || slices.Equal(got, before) {
		t.Errorf("running tasks after the rotation: %v, want one new task in place of %v", got, before)
	}
	h.checkSecretStore(store, newValues)
	for _, key := range h.keys() {
		if want := "fingerprint " + key + ": go run . fingerprint -source " + secretRefForKey(secretRefs, key) + " " + key + " < FILE"; !strings.Contains(rotate, want) {
			t.Errorf("rotate-secret output lacks %q; got:\n%s", want, rotate)
		}
	}

	teardown := h.mustRun("teardown", "FORCE_DELETE_SECRETS=1")
	h.checkAllGone(store, teardown)
	var kept struct{ ARN string }
	if err := h.aws(&kept, "secretsmanager", "describe-secret", "--secret-id", appName+"/twitter"); err != nil || kept.ARN != twitterSecret.ARN {
		t.Errorf("the twitter secret after the %s teardown: %+v, %v; want it untouched (%s)", source, kept, err, twitterSecret.ARN)
	}
	if want := "kept secret " + appName + "/twitter of SOURCE=twitter"; !strings.Contains(teardown, want) {
		t.Errorf("teardown output lacks %q; got:\n%s", want, teardown)
	}
	h.assertNoLeak(values)
	h.assertNoLeak(newValues)
	h.assertNoLeak(twitterValues)
}

// writeSourceSecretsFile writes a dotenv file with a fresh value for each key of source, with
// characters that need escaping in JSON, and returns the path and the values.
func writeSourceSecretsFile(t *testing.T, source string) (string, map[string]string) {
	t.Helper()
	values := map[string]string{}
	var b strings.Builder
	b.WriteString("# test credentials for SOURCE=" + source + "\n")
	for _, key := range sourceKeys[source] {
		values[key] = "tok-" + randomHex(t, 16) + `"q\b ` + randomHex(t, 4)
		fmt.Fprintf(&b, "export %s='%s'\n", key, values[key])
	}
	path := filepath.Join(t.TempDir(), source+".env")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, values
}

// secretRefForKey is the valueFrom of the task definition's secret key: the secret's ARN with
// the JSON key for Secrets Manager, the parameter ARN for SSM.
func secretRefForKey(secretRefs map[string]string, key string) string {
	ref := secretRefs[key]
	if strings.Contains(ref, ":secretsmanager:") {
		ref += ":" + key + "::"
	}
	return ref
}

// clearArgv empties the aws argv log, so that the next checks see only the calls after it.
// assertNoLeak reads the log too: call it before each clearArgv that drops calls it must see.
func (h *harness) clearArgv() {
	h.t.Helper()
	if err := os.WriteFile(h.argvLog, nil, 0o600); err != nil {
		h.t.Fatal(err)
	}
}

// argv returns the logged aws command lines, one per call, without the region and endpoint
// flags' values mattering.
func (h *harness) argv() []string {
	h.t.Helper()
	b, err := os.ReadFile(h.argvLog)
	if err != nil {
		h.t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// callsMatching returns the logged aws command lines that match the regular expression re.
func (h *harness) callsMatching(re string) []string {
	h.t.Helper()
	var out []string
	rx := regexp.MustCompile(re)
	for _, line := range h.argv() {
		if rx.MatchString(line) {
			out = append(out, line)
		}
	}
	return out
}

// checkCallOrder fails unless, in the argv log, a call matching each regular expression comes
// after a call matching the one before it.
func (h *harness) checkCallOrder(res ...string) {
	h.t.Helper()
	lines := h.argv()
	i := 0
	for _, re := range res {
		rx := regexp.MustCompile(re)
		for i < len(lines) && !rx.MatchString(lines[i]) {
			i++
		}
		if i == len(lines) {
			h.t.Errorf("aws calls lack %q after the ones before it in %q; calls:\n%s", re, res, strings.Join(lines, "\n"))
			return
		}
		i++
	}
}

// TestDeploy_ServiceRotateAndRollThenTeardownAgainstMoto deploys the worker as a one-off task,
// moves it to an ECS service (MODE=service), rotates the secret with rotate-secret.sh and tears
// it all down. moto keeps no deploymentConfiguration and starts no task for a service, so the
// settings are checked on the arguments the scripts pass to the aws shim; the rotation is
// checked in moto itself (AWSCURRENT moved, the service's primary deployment replaced).
func TestDeploy_ServiceRotateAndRollThenTeardownAgainstMoto(t *testing.T) {
	t.Parallel()
	requireTool(t, "moto_server", "pip install 'moto[server]'")
	moto := startECSMoto(t)
	secretsFile, oldSecrets := writeSecretsFile(t)
	h := newHarness(t, moto.URL, "IMAGE="+testImage, "SECRETS_FILE="+secretsFile)

	// MODE=task first, as the README's first deploy does; then the move to a service stops
	// that task before the service starts one (one stream connection per credentials).
	h.mustRun("deploy")
	oneOff := h.runningTasks()
	if len(oneOff) != 1 {
		t.Fatalf("after the task-mode deploy: running tasks %v, want 1", oneOff)
	}
	h.mustRun("deploy", "MODE=service")
	h.checkCallOrder("ecs stop-task .*"+regexp.QuoteMeta(oneOff[0]), "ecs create-service")
	if got := h.runningTasks(); len(got) != 0 {
		t.Errorf("one-off tasks still running beside the service: %v", got)
	}

	runTask := h.callsMatching(` ecs run-task `)
	createService := h.callsMatching(` ecs create-service `)
	if len(runTask) != 1 || len(createService) != 1 {
		t.Fatalf("run-task calls %d, create-service calls %d; want 1 each", len(runTask), len(createService))
	}
	netRe := regexp.MustCompile(`--network-configuration (\S+)`)
	taskNet, serviceNet := netRe.FindStringSubmatch(runTask[0]), netRe.FindStringSubmatch(createService[0])
	if taskNet == nil || serviceNet == nil || taskNet[1] != serviceNet[1] || !strings.Contains(serviceNet[1], "assignPublicIp=ENABLED") {
		t.Errorf("create-service network %q, want run-task's %q (with a public IP)", serviceNet, taskNet)
	}
	for _, want := range []string{
		"--service-name " + appName, "--desired-count 1", "--launch-type FARGATE",
		"--deployment-configuration maximumPercent=100,minimumHealthyPercent=0,deploymentCircuitBreaker={enable=true,rollback=true}",
		"--task-definition arn:aws:ecs:" + region + ":" + account + ":task-definition/" + appName + ":1",
	} {
		if !strings.Contains(createService[0], want) {
			t.Errorf("create-service call lacks %q:\n%s", want, createService[0])
		}
	}
	svc := h.service()
	if svc.Status != "ACTIVE" || svc.DesiredCount != 1 || !strings.HasSuffix(svc.TaskDefinition, ":task-definition/"+appName+":1") || svc.LaunchType != "FARGATE" {
		t.Errorf("service %+v, want ACTIVE, desiredCount 1, FARGATE, revision 1", svc)
	}

	// Idempotent: a second service deploy changes nothing, and run-task refuses to add a task.
	h.assertNoLeak(oldSecrets)
	h.clearArgv()
	second := h.mustRun("deploy", "MODE=service")
	if calls := mutatingCall.FindAllString(second, -1); len(calls) != 0 {
		t.Errorf("second service deploy changed things:\n%s\nwant no create/update calls", strings.Join(calls, "\n"))
	}
	if !strings.Contains(second, "already runs") {
		t.Errorf("second service deploy does not say it reuses the service; got:\n%s", second)
	}
	if out, err := h.run("run-task"); err == nil || !strings.Contains(out, "MODE=service") {
		t.Errorf("run-task.sh beside the service: err %v, want a refusal naming MODE=service; got:\n%s", err, out)
	}

	// Rotate and roll: new values in, AWSCURRENT moves, the service gets a new deployment, and
	// the fingerprints come from a streammatch on PATH that gets each value on stdin.
	beforeVersion := h.currentVersion()
	beforeDeployment := svc.primaryDeployment()
	fpDir, fpLog := fingerprintShim(t, h.argvLog)
	newFile, newSecrets := writeSecretsFile(t)
	rotate := h.mustRun("rotate-secret", "SECRETS_FILE="+newFile, "PATH="+fpDir+string(os.PathListSeparator)+h.path())
	h.checkCallOrder("secretsmanager put-secret-value", "ecs update-service .*--force-new-deployment")
	force := h.callsMatching(`ecs update-service .*--force-new-deployment`)
	if len(force) != 1 || !strings.Contains(force[0], "--deployment-configuration maximumPercent=100,minimumHealthyPercent=0,deploymentCircuitBreaker={enable=true,rollback=true}") {
		t.Errorf("update-service --force-new-deployment calls %q, want one that keeps the deployment configuration", force)
	}
	if h.callsMatching(`ecs (run-task|stop-task) `) != nil {
		t.Errorf("rotating a service ran or stopped tasks itself: %q", h.callsMatching(`ecs (run-task|stop-task) `))
	}
	if after := h.currentVersion(); after == beforeVersion || after == "" {
		t.Errorf("AWSCURRENT version %q after the rotation, want a new one (was %q)", after, beforeVersion)
	}
	if after := h.service().primaryDeployment(); after == beforeDeployment || after == "" {
		t.Errorf("primary deployment %q after the rotation, want a new one (was %q)", after, beforeDeployment)
	}
	refs := h.checkSecretStore("secretsmanager", newSecrets)
	for _, key := range secretKeys {
		ref := secretRefForKey(refs, key)
		want := fmt.Sprintf("fingerprint %s fp3:shim-%x %s", key, sha256.Sum256([]byte(newSecrets[key])), ref)
		if !strings.Contains(rotate, want) {
			t.Errorf("rotate-secret output lacks %q; got:\n%s", want, rotate)
		}
		if got := fpLog(key); got != "fingerprint -source "+ref+" "+key {
			t.Errorf("streammatch argv for %s: %q, want fingerprint -source %s %s", key, got, ref, key)
		}
	}

	// Teardown: the service is scaled to 0 and deleted before the cluster goes.
	teardown := h.mustRun("teardown", "FORCE_DELETE_SECRETS=1")
	h.checkCallOrder("ecs update-service .*--desired-count 0", "ecs delete-service", "ecs delete-cluster")
	if !strings.Contains(teardown, "removed service "+appName) {
		t.Errorf("teardown output lacks %q; got:\n%s", "removed service "+appName, teardown)
	}
	if svc := h.service(); svc.Status == "ACTIVE" || svc.Status == "DRAINING" {
		t.Errorf("service %s is %s after teardown, want it gone (INACTIVE)", appName, svc.Status)
	}
	h.checkAllGone("secretsmanager", teardown)
	h.assertNoLeak(oldSecrets)
	h.assertNoLeak(newSecrets)
}

// ecsService is the part of describe-services the service test reads.
type ecsService struct {
	Status, TaskDefinition, LaunchType string
	DesiredCount                       int
	Deployments                        []struct{ Id, Status string }
}

func (s ecsService) primaryDeployment() string {
	for _, d := range s.Deployments {
		if d.Status == "PRIMARY" {
			return d.Id
		}
	}
	return ""
}

// service describes the app's service; after teardown the cluster is gone too, and the zero
// value comes back.
func (h *harness) service() ecsService {
	h.t.Helper()
	var got struct{ Services []ecsService }
	if err := h.aws(&got, "ecs", "describe-services", "--cluster", appName, "--services", appName); err != nil || len(got.Services) == 0 {
		return ecsService{}
	}
	return got.Services[0]
}

// currentVersion returns the version id of the secret that holds AWSCURRENT.
func (h *harness) currentVersion() string {
	h.t.Helper()
	var got struct{ VersionIdsToStages map[string][]string }
	h.mustAWS(&got, "secretsmanager", "describe-secret", "--secret-id", h.secretName())
	for id, stages := range got.VersionIdsToStages {
		if slices.Contains(stages, "AWSCURRENT") {
			return id
		}
	}
	return ""
}

// path returns the PATH the harness runs the scripts with.
func (h *harness) path() string {
	for _, kv := range h.env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			return v
		}
	}
	return ""
}

// fingerprintShim writes a `streammatch` that stands in for the service binary's fingerprint
// command: it appends its argv to argvLog (where assertNoLeak looks), keeps it per secret name
// for the test, and prints "fp3:shim-" and the SHA-256 of what it read on stdin, so that the
// test can tell that the exact value arrived there and nowhere else. It returns the directory
// to put first on PATH and a function giving the argv the shim got for a name.
func fingerprintShim(t *testing.T, argvLog string) (string, func(name string) string) {
	t.Helper()
	dir := t.TempDir()
	script := "#!/usr/bin/env bash\nset -euo pipefail\nprintf 'streammatch %s\\n' \"$*\" >>" + strconv.Quote(argvLog) + "\n" +
		"printf '%s' \"$*\" >" + strconv.Quote(dir) + "/\"argv-${!#}\"\n" +
		"printf 'fp3:shim-%s\\n' \"$(sha256sum | cut -d' ' -f1)\"\n"
	if err := os.WriteFile(filepath.Join(dir, "streammatch"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, "argv-"+name))
		if err != nil {
			t.Errorf("streammatch was not called for %s: %v", name, err)
		}
		return string(b)
	}
}

func (h *harness) runningTasks() []string {
	h.t.Helper()
	var got struct{ TaskArns []string }
	h.mustAWS(&got, "ecs", "list-tasks", "--cluster", appName, "--desired-status", "RUNNING")
	slices.Sort(got.TaskArns)
	return got.TaskArns
}

// checkSecretStore checks the stored values and returns the resource ARN of each key's
// secret: the secret's full ARN for Secrets Manager, the parameter ARN for SSM.
func (h *harness) checkSecretStore(store string, want map[string]string) map[string]string {
	h.t.Helper()
	refs := map[string]string{}
	if store == "ssm" {
		for _, key := range h.keys() {
			var got struct {
				Parameter struct{ Type, Value, ARN string }
			}
			h.mustAWS(&got, "ssm", "get-parameter", "--name", "/"+h.secretName()+"/"+key, "--with-decryption")
			if got.Parameter.Type != "SecureString" {
				h.t.Errorf("parameter %s: type %q, want SecureString", key, got.Parameter.Type)
			}
			if got.Parameter.Value != want[key] {
				h.t.Errorf("parameter %s: the stored value differs from SECRETS_FILE's", key)
			}
			refs[key] = got.Parameter.ARN
		}
		return refs
	}
	var secret struct{ ARN, SecretString string }
	h.mustAWS(&secret, "secretsmanager", "get-secret-value", "--secret-id", h.secretName())
	var values map[string]string
	if err := json.Unmarshal([]byte(secret.SecretString), &values); err != nil {
		h.t.Fatalf("secret %s is not a JSON object of strings: %v", h.secretName(), err)
	}
	for _, key := range h.keys() {
		if values[key] != want[key] {
			h.t.Errorf("secret key %s: the stored value differs from SECRETS_FILE's", key)
		}
		refs[key] = secret.ARN
	}
	if len(values) != len(h.keys()) {
		h.t.Errorf("secret has %d keys, want %d (%v)", len(values), len(h.keys()), h.keys())
	}
	return refs
}

func (h *harness) checkRoles(store string, secretRefs map[string]string) {
	h.t.Helper()
	roles := h.roles()
	for _, role := range []string{appName + "-execution-role", appName + "-task-role"} {
		if _, ok := roles[role]; !ok {
			h.t.Fatalf("role %s does not exist", role)
		}
		trust := roles[role].AssumeRolePolicyDocument.Statement
		if len(trust) != 1 || !slices.Equal(trust[0].Principal["Service"], stringList{"ecs-tasks.amazonaws.com"}) ||
			!slices.Equal(trust[0].Condition["StringEquals"]["aws:SourceAccount"], stringList{account}) {
			h.t.Errorf("role %s trust policy: %+v; want ecs-tasks.amazonaws.com with aws:SourceAccount %s", role, trust, account)
		}
	}

	var wantSecretResources []string
	for _, key := range h.keys() {
		if !slices.Contains(wantSecretResources, secretRefs[key]) {
			wantSecretResources = append(wantSecretResources, secretRefs[key])
		}
	}
	slices.Sort(wantSecretResources)
	wantAction := "secretsmanager:GetSecretValue"
	if store == "ssm" {
		wantAction = "ssm:GetParameters"
	}
	var gotSecretResources []string
	for _, st := range h.statements(roles[appName+"-execution-role"]) {
		for _, action := range st.Action {
			service, _, _ := strings.Cut(action, ":")
			if service != "secretsmanager" && service != "ssm" && service != "kms" {
				continue
			}
			if action != wantAction {
				h.t.Errorf("execution role allows %s; want only %s on secrets (and no kms:Decrypt without KMS_KEY_ARN)", action, wantAction)
			}
			for _, r := range st.Resource {
				if strings.Contains(r, "*") {
					h.t.Errorf("execution role allows %s on %q: want exact ARNs, no wildcard", action, r)
				}
			}
			gotSecretResources = append(gotSecretResources, st.Resource...)
		}
	}
	slices.Sort(gotSecretResources)
	if !slices.Equal(gotSecretResources, wantSecretResources) {
		h.t.Errorf("execution role reads secrets %v, want exactly %v", gotSecretResources, wantSecretResources)
	}

	// The task role writes to the table and, with Secrets Manager, describes the secret for the
	// rotation drift check (metadata only); it never reads a value. SSM gets no drift grant:
	// ssm:DescribeParameters cannot be limited to a parameter.
	tableARN := "arn:aws:dynamodb:" + region + ":" + account + ":table/" + tableName
	wantTask := map[string]stringList{"dynamodb:BatchWriteItem": {tableARN}, "dynamodb:PutItem": {tableARN}}
	if store == "secretsmanager" {
		for _, action := range []string{"secretsmanager:DescribeSecret", "secretsmanager:ListSecretVersionIds"} {
			wantTask[action] = stringList{secretRefs[h.keys()[0]]}
		}
	}
	gotTask := map[string]stringList{}
	for _, st := range h.statements(roles[appName+"-task-role"]) {
		for _, action := range st.Action {
			gotTask[action] = append(gotTask[action], st.Resource...)
		}
	}
	if !maps.EqualFunc(gotTask, wantTask, func(a, b stringList) bool { return slices.Equal(a, b) }) {
		h.t.Errorf("task role grants %v, want exactly %v (nothing that returns a secret value)", gotTask, wantTask)
	}
}

func (h *harness) checkTaskDefinition(secretRefs, values map[string]string) {
	h.t.Helper()
	var raw json.RawMessage
	h.mustAWS(&raw, "ecs", "describe-task-definition", "--task-definition", appName)
	for key, value := range values {
		if bytes.Contains(raw, []byte(value)) {
			h.t.Errorf("the value of %s appears in the registered task definition", key)
		}
	}
	var got struct{ TaskDefinition taskDefinition }
	if err := json.Unmarshal(raw, &got); err != nil {
		h.t.Fatal(err)
	}
	td := got.TaskDefinition
	if td.NetworkMode != "awsvpc" || td.Cpu != "256" || td.Memory != "512" {
		h.t.Errorf("task definition: networkMode %q cpu %q memory %q, want awsvpc 256 512", td.NetworkMode, td.Cpu, td.Memory)
	}
	if want := "arn:aws:iam::" + account + ":role/" + appName + "-execution-role"; td.ExecutionRoleArn != want {
		h.t.Errorf("executionRoleArn %q, want %q", td.ExecutionRoleArn, want)
	}
	if want := "arn:aws:iam::" + account + ":role/" + appName + "-task-role"; td.TaskRoleArn != want {
		h.t.Errorf("taskRoleArn %q, want %q", td.TaskRoleArn, want)
	}
	if len(td.ContainerDefinitions) != 1 {
		h.t.Fatalf("container definitions: %d, want 1", len(td.ContainerDefinitions))
	}
	c := td.ContainerDefinitions[0]
	if c.Image != testImage {
		h.t.Errorf("image %q, want %q", c.Image, testImage)
	}
	gotSecrets := map[string]string{}
	for _, s := range c.Secrets {
		gotSecrets[s.Name] = s.ValueFrom
	}
	if len(c.Secrets) != len(h.keys()) {
		h.t.Errorf("secrets %v, want exactly the keys of SOURCE=%s: %v", c.Secrets, h.source, h.keys())
	}
	for _, key := range h.keys() {
		want := secretRefs[key]
		if strings.Contains(want, ":secretsmanager:") {
			want += ":" + key + "::"
		}
		if gotSecrets[key] != want {
			h.t.Errorf("secret %s valueFrom %q, want %q", key, gotSecrets[key], want)
		}
	}
	env := map[string]string{}
	for _, e := range c.Environment {
		env[e.Name] = e.Value
		if slices.Contains(slices.Concat(sourceKeys["twitter"], sourceKeys["x"], sourceKeys["mastodon"]), e.Name) {
			h.t.Errorf("credential %s is in environment; want it only in secrets", e.Name)
		}
	}
	wantEnv := map[string]string{"DYNAMODBTABLE": tableName, "AWSREGION": region, "FILTER": "Cloud Computing", "SOURCE": h.source}
	maps.Copy(wantEnv, h.wantEnv)
	for name, want := range wantEnv {
		if env[name] != want {
			h.t.Errorf("environment %s=%q, want %q", name, env[name], want)
		}
	}
	if env["GOMEMLIMIT"] == "" {
		h.t.Errorf("environment has no GOMEMLIMIT")
	}
	// SECRET_SOURCES names each secret's valueFrom exactly, rendered by the shell byte for byte
	// as secrets.SecretSources renders it, and the registered definition passes the lint.
	var sources map[string]string
	if err := json.Unmarshal([]byte(env[secrets.SecretSourcesVar]), &sources); err != nil {
		h.t.Errorf("environment %s is not JSON: %v", secrets.SecretSourcesVar, err)
	}
	if !maps.Equal(sources, gotSecrets) {
		h.t.Errorf("environment %s = %v, want the secrets' valueFrom %v", secrets.SecretSourcesVar, sources, gotSecrets)
	}
	var registered struct{ TaskDefinition secrets.TaskDefinition }
	if err := json.Unmarshal(raw, &registered); err != nil {
		h.t.Fatal(err)
	}
	if want := secrets.SecretSources(registered.TaskDefinition.ContainerDefinitions[0].Secrets); env[secrets.SecretSourcesVar] != want {
		h.t.Errorf("environment %s = %s, want secrets.SecretSources' rendering %s", secrets.SecretSourcesVar, env[secrets.SecretSourcesVar], want)
	}
	for _, f := range secrets.Lint(&registered.TaskDefinition) {
		h.t.Errorf("the registered task definition: %s", f)
	}
	if want := []string{"CMD", "/streammatch", "healthcheck"}; !slices.Equal(c.HealthCheck.Command, want) ||
		c.HealthCheck.Interval == 0 || c.HealthCheck.Timeout == 0 || c.HealthCheck.Retries == 0 || c.HealthCheck.StartPeriod == 0 {
		h.t.Errorf("healthCheck %+v, want command %v with interval, timeout, retries and startPeriod", c.HealthCheck, want)
	}
	if !c.ReadonlyRootFilesystem || c.Privileged || c.User != "65532:65532" || !slices.Equal(c.LinuxParameters.Capabilities.Drop, []string{"ALL"}) {
		h.t.Errorf("hardening: readonlyRootFilesystem %v privileged %v user %q drop %v; want true false 65532:65532 [ALL]",
			c.ReadonlyRootFilesystem, c.Privileged, c.User, c.LinuxParameters.Capabilities.Drop)
	}
	if c.Memory == 0 {
		h.t.Errorf("container-level memory is not set")
	}
	if c.LogConfiguration.LogDriver != "awslogs" || c.LogConfiguration.Options["awslogs-group"] != "/ecs/"+appName {
		h.t.Errorf("logConfiguration %+v, want awslogs to /ecs/%s", c.LogConfiguration, appName)
	}
}

func (h *harness) checkLogGroupAndCluster() {
	h.t.Helper()
	var groups struct {
		LogGroups []struct {
			LogGroupName    string
			RetentionInDays int
		}
	}
	h.mustAWS(&groups, "logs", "describe-log-groups", "--log-group-name-prefix", "/ecs/"+appName)
	if len(groups.LogGroups) != 1 || groups.LogGroups[0].RetentionInDays == 0 {
		h.t.Errorf("log groups %+v, want /ecs/%s with a retention", groups.LogGroups, appName)
	}
	var clusters struct {
		Clusters []struct{ ClusterName, Status string }
	}
	h.mustAWS(&clusters, "ecs", "describe-clusters", "--clusters", appName)
	if len(clusters.Clusters) != 1 || clusters.Clusters[0].Status != "ACTIVE" {
		h.t.Errorf("clusters %+v, want %s ACTIVE", clusters.Clusters, appName)
	}
}

// checkPreflightCatchesMissingKey stores a secret version without ACCESSTOKEN and expects
// register-taskdef.sh to refuse, naming the key and the fix, instead of registering a task
// definition whose task would fail to start.
func (h *harness) checkPreflightCatchesMissingKey(secretRefs map[string]string) {
	h.t.Helper()
	payload := filepath.Join(h.t.TempDir(), "partial.json")
	if err := os.WriteFile(payload, []byte(`{"CONSUMERKEY":"a","CONSUMERSECRETKEY":"b","ACCESSTOKENSECRET":"d"}`), 0o600); err != nil {
		h.t.Fatal(err)
	}
	h.mustAWS(nil, "secretsmanager", "put-secret-value", "--secret-id", secretRefs["CONSUMERKEY"],
		"--secret-string", "file://"+payload)
	out, err := h.run("register-taskdef", "FILTER=something else")
	if err == nil {
		h.t.Errorf("register-taskdef.sh succeeded with a secret lacking ACCESSTOKEN; want a preflight failure\n%s", out)
	}
	for _, want := range []string{"preflight found 1 problem", "has no JSON key ACCESSTOKEN", "Fix: UPDATE_SECRETS=1 scripts/create-secrets.sh"} {
		if !strings.Contains(out, want) {
			h.t.Errorf("preflight output lacks %q; got:\n%s", want, out)
		}
	}
	if strings.Contains(out, "+ aws ecs register-task-definition") {
		h.t.Errorf("register-task-definition ran despite the preflight failure")
	}
}

func (h *harness) checkAllGone(store, teardown string) {
	h.t.Helper()
	for _, want := range []string{"removed cluster", "removed role " + appName + "-execution-role", "removed log group", "removed table"} {
		if !strings.Contains(teardown, want) {
			h.t.Errorf("teardown output lacks %q; got:\n%s", want, teardown)
		}
	}
	if tasks := h.runningTasks(); len(tasks) != 0 {
		h.t.Errorf("running tasks after teardown: %v", tasks)
	}
	var clusters struct{ Clusters []struct{ Status string } }
	h.mustAWS(&clusters, "ecs", "describe-clusters", "--clusters", appName)
	for _, c := range clusters.Clusters {
		if c.Status == "ACTIVE" {
			h.t.Errorf("cluster %s still ACTIVE after teardown", appName)
		}
	}
	var revisions struct{ TaskDefinitionArns []string }
	h.mustAWS(&revisions, "ecs", "list-task-definitions", "--family-prefix", appName, "--status", "ACTIVE")
	if len(revisions.TaskDefinitionArns) != 0 {
		h.t.Errorf("active task definitions after teardown: %v", revisions.TaskDefinitionArns)
	}
	var groups struct {
		LogGroups []struct{ LogGroupName string }
	}
	h.mustAWS(&groups, "logs", "describe-log-groups", "--log-group-name-prefix", "/ecs/"+appName)
	if len(groups.LogGroups) != 0 {
		h.t.Errorf("log groups after teardown: %v", groups.LogGroups)
	}
	roles := h.roles()
	for _, role := range []string{appName + "-execution-role", appName + "-task-role"} {
		if _, ok := roles[role]; ok {
			h.t.Errorf("role %s still exists after teardown", role)
		}
	}
	if err := h.aws(nil, "dynamodb", "describe-table", "--table-name", tableName); err == nil {
		h.t.Errorf("table %s still exists after teardown", tableName)
	}
	if err := h.aws(nil, "secretsmanager", "describe-secret", "--secret-id", h.secretName()); err == nil {
		h.t.Errorf("secret %s still exists after teardown with FORCE_DELETE_SECRETS=1", h.secretName())
	}
	var params struct{ Parameters []struct{ Name string } }
	h.mustAWS(&params, "ssm", "get-parameters-by-path", "--path", "/"+appName, "--recursive")
	if len(params.Parameters) != 0 {
		h.t.Errorf("SSM parameters after teardown: %v", params.Parameters)
	}
	var groupsEC2 struct{ SecurityGroups []struct{ GroupId string } }
	h.mustAWS(&groupsEC2, "ec2", "describe-security-groups", "--filters", "Name=group-name,Values="+appName+"-task")
	if len(groupsEC2.SecurityGroups) != 0 {
		h.t.Errorf("security groups after teardown: %v", groupsEC2.SecurityGroups)
	}
}

// containersConf returns CONTAINERS_CONF, or writes the configuration .ci/podman-setup.sh
// writes (runc, cgroupfs, rlimits conmon can set) to a temporary file.
func containersConf(t *testing.T) string {
	t.Helper()
	if conf := os.Getenv("CONTAINERS_CONF"); conf != "" {
		return conf
	}
	conf := filepath.Join(t.TempDir(), "containers.conf")
	const text = "[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n" +
		"[engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\n"
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return conf
}

// maxImageBytes guards the image size: the target is 20 MB; above 25 MB something big (a
// toolchain, a shell) got into the final stage.
const maxImageBytes = 25_000_000

func TestImage_BuildsOfflineRunsReadOnlyAndPushes(t *testing.T) {
	t.Parallel()
	podman := requireTool(t, "podman", "apt-get install podman runc")
	goBin := requireTool(t, "go", "https://go.dev/dl/")
	root := repoRoot(t)
	env := append(baseEnv(), "CONTAINERS_CONF="+containersConf(t))

	podmanCmd := func(args ...string) *exec.Cmd {
		cmd := exec.Command(podman, args...)
		cmd.Env = env
		return cmd
	}
	for _, image := range []string{"docker.io/library/golang:1.26-bookworm", "gcr.io/distroless/static-debian12:nonroot"} {
		if podmanCmd("image", "exists", image).Run() == nil {
			continue
		}
		msg := "base image " + image + " is missing: run .ci/base-images.sh (no registry is reachable here)"
		if os.Getenv("CI") != "" || os.Getenv("STREAMMATCH_CONTAINER_TESTS") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg + "; STREAMMATCH_CONTAINER_TESTS=1 makes this a failure")
	}

	// The build runs with --network none over the host's module cache, so the cache must hold
	// every module go.mod lists; the host can still reach the module proxy.
	goEnv := append(os.Environ(), "GOFLAGS=-mod=mod")
	download := exec.Command(goBin, "mod", "download")
	download.Dir = root
	download.Env = goEnv
	if out, err := download.CombinedOutput(); err != nil {
		t.Fatalf("go mod download (fills the module cache the offline build mounts): %v\n%s", err, out)
	}
	modCache, err := exec.Command(goBin, "env", "GOMODCACHE").Output()
	if err != nil {
		t.Fatal(err)
	}

	registry := startRegistry(t, goBin)
	tag := "test-" + randomHex(t, 4)
	image := registry + "/" + appName + ":" + tag
	t.Cleanup(func() { _ = podmanCmd("rmi", "--force", image).Run() })

	h := newHarness(t, closedPortURL(t), "CONTAINERS_CONF="+containersConf(t))
	out := h.mustRun("build-push",
		"CONTAINER_CLI=podman", "REGISTRY="+registry, "IMAGE_TAG="+tag, "AWS_ACCOUNT_ID="+account,
		"BUILD_FLAGS=--network none --pull=never --build-arg GOPROXY=off -v "+strings.TrimSpace(string(modCache))+":/go/pkg/mod:ro")
	if argv, _ := os.ReadFile(h.argvLog); len(argv) != 0 {
		t.Errorf("build-push with REGISTRY ran aws:\n%s\nwant no AWS call", argv)
	}
	if !strings.Contains(out, "pushed "+image) {
		t.Errorf("build-push output lacks %q; got:\n%s", "pushed "+image, out)
	}

	t.Run("size", func(t *testing.T) {
		size, err := podmanCmd("image", "inspect", "--format", "{{.Size}}", image).Output()
		if err != nil {
			t.Fatal(err)
		}
		n, err := strconv.Atoi(strings.TrimSpace(string(size)))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("image %s: %d bytes uncompressed (%.1f MB)", image, n, float64(n)/1e6)
		if n > maxImageBytes {
			t.Errorf("image is %d bytes, want at most %d (target 20 MB)", n, maxImageBytes)
		}
	})

	t.Run("in registry", func(t *testing.T) {
		req, err := http.NewRequest(http.MethodHead, "http://"+registry+"/v2/"+appName+"/manifests/"+tag, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("HEAD manifest %s: status %d, want 200", tag, resp.StatusCode)
		}
	})

	t.Run("version", func(t *testing.T) {
		out, err := podmanCmd("run", "--rm", "--network", "none", image, "version").CombinedOutput()
		if err != nil || !strings.Contains(string(out), tag) {
			t.Errorf("podman run %s version: %v, output %q; want the tag %q", image, err, out, tag)
		}
	})

	t.Run("runs read-only as 65532 and answers its healthcheck", func(t *testing.T) {
		// The configuration the task definition gives, with dummy credentials passed through
		// podman's environment (-e NAME without a value), not its command line, and endpoints
		// that refuse connections: the process must stay up and healthy (degraded at worst)
		// without any network.
		run := podmanCmd("run", "--detach", "--network", "none", "--user", "65532:65532", "--read-only",
			"--cap-drop", "ALL", "--security-opt", "no-new-privileges",
			"-e", "DYNAMODBTABLE="+tableName, "-e", "AWSREGION="+region, "-e", "FILTER=cloud computing",
			"-e", "SOURCE=twitter", "-e", "GOMEMLIMIT=400MiB",
			"-e", "TWITTER_STREAM_URL=http://127.0.0.1:9", "-e", "AWS_ENDPOINT_URL=http://127.0.0.1:9",
			"-e", "CONSUMERKEY", "-e", "CONSUMERSECRETKEY", "-e", "ACCESSTOKEN", "-e", "ACCESSTOKENSECRET",
			"-e", "AWS_ACCESS_KEY_ID", "-e", "AWS_SECRET_ACCESS_KEY",
			image)
		run.Env = append(slices.Clone(env), "CONSUMERKEY=ck", "CONSUMERSECRETKEY=cs", "ACCESSTOKEN=at",
			"ACCESSTOKENSECRET=ats", "AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing")
		out, err := run.Output()
		if err != nil {
			t.Fatalf("podman run: %v %s", err, exitStderr(err))
		}
		id := strings.TrimSpace(string(out))
		t.Cleanup(func() {
			if t.Failed() {
				logs, _ := podmanCmd("logs", id).CombinedOutput()
				t.Logf("container logs:\n%s", logs)
			}
			_ = podmanCmd("rm", "--force", "--time", "2", id).Run()
		})

		user, err := podmanCmd("exec", id, "/streammatch", "version").CombinedOutput()
		if err != nil {
			t.Fatalf("podman exec version: %v %s", err, user)
		}
		inspect, err := podmanCmd("inspect", "--format", "{{.Config.User}} {{.HostConfig.ReadonlyRootfs}}", id).Output()
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(inspect)); got != "65532:65532 true" {
			t.Errorf("container user and read-only root: %q, want %q", got, "65532:65532 true")
		}

		// Poll the binary's own health check, as ECS would, with a generous deadline.
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		var last []byte
		for {
			last, err = podmanCmd("exec", id, "/streammatch", "healthcheck").CombinedOutput()
			if err == nil {
				return
			}
			select {
			case <-ctx.Done():
				t.Fatalf("healthcheck never passed; last: %v %s", err, last)
			case <-time.After(500 * time.Millisecond):
			}
		}
	})
}

func exitStderr(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(ee.Stderr)
	}
	return ""
}

// startRegistry builds go-containerregistry's in-memory registry (the stand-in for ECR's
// registry, which moto lacks), starts it on a free port and returns "localhost:PORT".
func startRegistry(t *testing.T, goBin string) string {
	t.Helper()
	bin := t.TempDir()
	install := exec.Command(goBin, "install", "github.com/google/go-containerregistry/cmd/registry@v0.22.1")
	install.Env = append(os.Environ(), "GOBIN="+bin, "GOFLAGS=")
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("go install registry: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	out := &syncbuf.Buffer{}
	cmd := exec.Command(filepath.Join(bin, "registry"), "-port", strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	})

	addr := "localhost:" + strconv.Itoa(port)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return addr
			}
		}
		select {
		case <-exited:
			t.Fatalf("registry exited: %s", out.String())
		case <-ctx.Done():
			t.Fatalf("registry did not answer on %s: %s", addr, out.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
