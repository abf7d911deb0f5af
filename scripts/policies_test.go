package scripts_test

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/streammatch/streammatch/internal/mototest"
	"github.com/streammatch/streammatch/scripts"
)

// Sample values for every placeholder the templates use, shaped like the real ARNs.
const (
	sampleRepositoryARN = "arn:aws:ecr:us-east-1:123456789012:repository/streammatch"
	sampleLogGroupARN   = "arn:aws:logs:us-east-1:123456789012:log-group:/ecs/streammatch"
	sampleSecretARN     = "arn:aws:secretsmanager:us-east-1:123456789012:secret:streammatch/twitter-AbCdEf"
	sampleParameterARN  = "arn:aws:ssm:us-east-1:123456789012:parameter/streammatch/twitter"
	sampleKMSKeyARN     = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	sampleTableARN      = "arn:aws:dynamodb:us-east-1:123456789012:table/twitterStream"
)

var sampleVars = map[string]string{
	"ACCOUNT_ID":           "123456789012",
	"REPOSITORY_ARN":       sampleRepositoryARN,
	"LOG_GROUP_ARN":        sampleLogGroupARN,
	"SECRET_ARN":           sampleSecretARN,
	"PARAMETER_ARN_PREFIX": sampleParameterARN,
	"KMS_KEY_ARN":          sampleKMSKeyARN,
	"TABLE_ARN":            sampleTableARN,
}

// grant is one Allow statement as far as least privilege is concerned.
type grant struct {
	Sid       string
	Actions   []string
	Resources []string
}

// templateStatement reads IAM's "one string or a list" for Action and Resource.
type templateStatement struct {
	Sid       string
	Effect    string
	Action    stringList
	Resource  stringList
	Principal map[string]stringList
	Condition map[string]map[string]stringList
}

type templateDocument struct {
	Version   string
	Statement []templateStatement
}

func decodePolicy(t *testing.T, doc string) templateDocument {
	t.Helper()
	var d templateDocument
	if err := json.Unmarshal([]byte(doc), &d); err != nil {
		t.Fatalf("not a policy document: %v\n%s", err, doc)
	}
	return d
}

func TestPolicy_EveryTemplateGrantsExactResources(t *testing.T) {
	want := map[string][]grant{
		"execution-pull-logs": {
			{"EcrAuth", []string{"ecr:GetAuthorizationToken"}, []string{"*"}},
			{"PullImage", []string{"ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"}, []string{sampleRepositoryARN}},
			{"WriteLogs", []string{"logs:CreateLogStream", "logs:PutLogEvents"}, []string{sampleLogGroupARN, sampleLogGroupARN + ":*"}},
		},
		"execution-secretsmanager": {
			{"ReadSourceSecret", []string{"secretsmanager:GetSecretValue"}, []string{sampleSecretARN}},
		},
		"execution-ssm": {
			{"ReadTwitterParameters", []string{"ssm:GetParameters"}, []string{
				sampleParameterARN + "/CONSUMERKEY", sampleParameterARN + "/CONSUMERSECRETKEY",
				sampleParameterARN + "/ACCESSTOKEN", sampleParameterARN + "/ACCESSTOKENSECRET",
			}},
		},
		// The other sources' parameters: one each, named after its key (the prefix is the
		// source's, /$APP_NAME/$SOURCE, filled in by create-roles.sh).
		"execution-ssm-x": {
			{"ReadXParameters", []string{"ssm:GetParameters"}, []string{sampleParameterARN + "/X_BEARER_TOKEN"}},
		},
		"execution-ssm-mastodon": {
			{"ReadMastodonParameters", []string{"ssm:GetParameters"}, []string{sampleParameterARN + "/MASTODON_ACCESS_TOKEN"}},
		},
		"execution-kms": {
			{"DecryptWithCustomerKey", []string{"kms:Decrypt"}, []string{sampleKMSKeyARN}},
		},
		"task-dynamodb": {
			{"WriteMatches", []string{"dynamodb:BatchWriteItem", "dynamodb:PutItem"}, []string{sampleTableARN}},
		},
		// The drift check: the secret's metadata (version stages and dates), on its ARN only.
		"task-secrets-describe": {
			{"DescribeInjectedSecret", []string{"secretsmanager:DescribeSecret", "secretsmanager:ListSecretVersionIds"}, []string{sampleSecretARN}},
		},
		"trust-ecs-tasks": nil, // checked below: it grants no action on a resource
	}
	names := scripts.PolicyNames()
	if !slices.Equal(names, slices.Sorted(maps.Keys(want))) {
		t.Fatalf("templates %v; want a case here for each of them and nothing else", names)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			doc, err := scripts.Policy(name, sampleVars)
			if err != nil {
				t.Fatal(err)
			}
			d := decodePolicy(t, doc)
			if d.Version != "2012-10-17" {
				t.Errorf("Version %q, want 2012-10-17", d.Version)
			}
			if name == "trust-ecs-tasks" {
				checkTrust(t, d, sampleVars["ACCOUNT_ID"])
				return
			}
			var got []grant
			for _, s := range d.Statement {
				if s.Effect != "Allow" || s.Principal != nil || s.Condition != nil {
					t.Errorf("statement %s: Effect %s, Principal %v, Condition %v; want a plain Allow", s.Sid, s.Effect, s.Principal, s.Condition)
				}
				for _, r := range s.Resource {
					if strings.Contains(r, "*") && !(slices.Equal(s.Action, []string{"ecr:GetAuthorizationToken"}) && r == "*") && r != sampleLogGroupARN+":*" {
						t.Errorf("statement %s grants %v on %q: a wildcard is allowed only for ecr:GetAuthorizationToken (account-wide by AWS design) and the log group's streams", s.Sid, s.Action, r)
					}
				}
				got = append(got, grant{s.Sid, s.Action, s.Resource})
			}
			if !slices.EqualFunc(got, want[name], func(a, b grant) bool {
				return a.Sid == b.Sid && slices.Equal(a.Actions, b.Actions) && slices.Equal(a.Resources, b.Resources)
			}) {
				t.Errorf("grants:\n got %+v\nwant %+v", got, want[name])
			}
		})
	}
}

// readsValues are the actions that return a secret's value (or decrypt one). The task role is
// what code in the container gets, so no task-* template may grant any of them, nor a wildcard
// that covers them.
var readsValues = []string{
	"secretsmanager:GetSecretValue", "secretsmanager:BatchGetSecretValue",
	"ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath", "ssm:GetParameterHistory",
	"kms:Decrypt",
}

func TestPolicyTemplates_TaskRoleReadsNoSecretValue(t *testing.T) {
	n := 0
	for _, name := range scripts.PolicyNames() {
		if !strings.HasPrefix(name, "task-") {
			continue
		}
		n++
		doc, err := scripts.Policy(name, sampleVars)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range decodePolicy(t, doc).Statement {
			for _, action := range s.Action {
				for _, bad := range readsValues {
					service, _, _ := strings.Cut(bad, ":")
					if action == bad || action == "*" || action == service+":*" || (strings.HasSuffix(action, "*") && strings.HasPrefix(bad, strings.TrimSuffix(action, "*"))) {
						t.Errorf("%s: statement %s grants %s, which covers %s: the task role must not read secret values", name, s.Sid, action, bad)
					}
				}
			}
		}
	}
	if n < 2 {
		t.Errorf("found %d task-* templates, want task-dynamodb and task-secrets-describe at least", n)
	}
}

// checkTrust checks that the trust policy lets only ECS tasks of the account assume the role.
func checkTrust(t *testing.T, d templateDocument, account string) {
	t.Helper()
	if len(d.Statement) != 1 {
		t.Fatalf("trust policy has %d statements, want 1", len(d.Statement))
	}
	s := d.Statement[0]
	if s.Effect != "Allow" || !slices.Equal(s.Action, []string{"sts:AssumeRole"}) ||
		!slices.Equal(s.Principal["Service"], []string{"ecs-tasks.amazonaws.com"}) || len(s.Principal) != 1 ||
		!slices.Equal(s.Condition["StringEquals"]["aws:SourceAccount"], []string{account}) {
		t.Errorf("trust statement %+v; want ecs-tasks.amazonaws.com to sts:AssumeRole, only with aws:SourceAccount %s", s, account)
	}
}

func TestPolicy_RefusesMissingOrEmptyValues(t *testing.T) {
	tests := []struct {
		name     string
		template string
		vars     map[string]string
		wantErr  string // substring; empty: no error
	}{
		{"missing value names the placeholder", "execution-pull-logs", map[string]string{"REPOSITORY_ARN": sampleRepositoryARN}, "no value for placeholder ${LOG_GROUP_ARN}"},
		{"empty value names the placeholder", "task-dynamodb", map[string]string{"TABLE_ARN": ""}, "placeholder ${TABLE_ARN} has an empty value"},
		{"unknown template", "execution-everything", sampleVars, "no such template"},
		{"extra values are ignored", "task-dynamodb", sampleVars, ""},
		{"a value is escaped for JSON", "task-dynamodb", map[string]string{"TABLE_ARN": `a"b\c`}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := scripts.Policy(tt.template, tt.vars)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			d := decodePolicy(t, doc)
			if got := d.Statement[0].Resource; !slices.Equal(got, []string{tt.vars["TABLE_ARN"]}) {
				t.Errorf("Resource %q, want %q", got, tt.vars["TABLE_ARN"])
			}
		})
	}
}

// create-roles.sh merges templates without a JSON tool: a document's statements are the text
// between `"Statement": [` and its last `]`. Every template must keep that layout.
func TestPolicyTemplates_KeepTheLayoutTheShellMerges(t *testing.T) {
	for _, name := range scripts.PolicyNames() {
		t.Run(name, func(t *testing.T) {
			text, err := scripts.PolicyTemplate(name)
			if err != nil {
				t.Fatal(err)
			}
			const open = `"Statement": [`
			if n := strings.Count(text, open); n != 1 {
				t.Fatalf("%q appears %d times, want once", open, n)
			}
			// Placeholders sit inside JSON strings, so a template is valid JSON before rendering.
			var whole struct{ Statement []any }
			if err := json.Unmarshal([]byte(text), &whole); err != nil {
				t.Fatalf("the template is not JSON: %v", err)
			}
			body := text[strings.Index(text, open)+len(open):]
			body = body[:strings.LastIndex(body, "]")]
			var cut []any
			if err := json.Unmarshal([]byte("["+body+"]"), &cut); err != nil {
				t.Fatalf("the text the shell would cut out is not the statement list: %v\n%s", err, body)
			}
			if g, w := mustJSON(t, cut), mustJSON(t, whole.Statement); g != w {
				t.Errorf("the shell would merge\n%s\nbut the document's statements are\n%s", g, w)
			}
		})
	}
}

// Each source's SSM template lists one parameter per credential: the same keys, in the same
// order, as that source's SECRET_KEYS list in lib.sh, which names the parameters
// create-secrets.sh writes; lib.sh's SOURCE case picks the template.
func TestPolicyTemplates_SSMNamesEverySecretKey(t *testing.T) {
	lib, err := os.ReadFile(filepath.Join(repoRoot(t), "scripts", "lib.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ source, list, template string }{
		{"twitter", "TWITTER_SECRET_KEYS", "execution-ssm"},
		{"x", "X_SECRET_KEYS", "execution-ssm-x"},
		{"mastodon", "MASTODON_SECRET_KEYS", "execution-ssm-mastodon"},
	} {
		t.Run(tt.source, func(t *testing.T) {
			m := regexp.MustCompile(`(?m)^readonly ` + tt.list + `=\(([^)]*)\)`).FindSubmatch(lib)
			if m == nil {
				t.Fatalf("lib.sh has no readonly %s=(...) line", tt.list)
			}
			keys := strings.Fields(string(m[1]))
			if !slices.Equal(keys, sourceKeys[tt.source]) {
				t.Errorf("lib.sh %s = %q, want config.go's secret names of SOURCE=%s %q", tt.list, keys, tt.source, sourceKeys[tt.source])
			}
			if !regexp.MustCompile(`(?m)^\s+SECRET_KEYS=\("\$\{` + tt.list + `\[@\]\}"\).*\n.*EXECUTION_SSM_POLICY=` + tt.template + `\s*$`).Match(lib) {
				t.Errorf("lib.sh's SOURCE case does not pair %s with the policy template %s", tt.list, tt.template)
			}
			doc, err := scripts.Policy(tt.template, sampleVars)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, k := range keys {
				want = append(want, sampleParameterARN+"/"+k)
			}
			if got := decodePolicy(t, doc).Statement[0].Resource; !slices.Equal(got, want) {
				t.Errorf("%s.json grants on\n%q\nwant one ARN per %s entry of lib.sh:\n%q", tt.template, got, tt.list, want)
			}
		})
	}
}

func TestMergePolicies_KeepsEveryStatementInOrder(t *testing.T) {
	var docs []string
	for _, name := range []string{"execution-pull-logs", "execution-ssm", "execution-kms"} {
		doc, err := scripts.Policy(name, sampleVars)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, doc)
	}
	merged, err := scripts.MergePolicies(docs...)
	if err != nil {
		t.Fatal(err)
	}
	var sids []string
	d := decodePolicy(t, merged)
	for _, s := range d.Statement {
		sids = append(sids, s.Sid)
	}
	if want := []string{"EcrAuth", "PullImage", "WriteLogs", "ReadTwitterParameters", "DecryptWithCustomerKey"}; d.Version != "2012-10-17" || !slices.Equal(sids, want) {
		t.Errorf("merged Version %q, statements %v; want 2012-10-17 and %v", d.Version, sids, want)
	}
	if _, err := scripts.MergePolicies(docs[0], `{"Version":"2008-10-17","Statement":[]}`); err == nil {
		t.Error("merging documents of two Versions succeeded, want an error")
	}
}

// create-roles.sh must put exactly what the templates render: the same documents
// `go run ./local` takes from scripts.Policy. Each case runs the script against moto and
// compares what IAM stored with the Go rendering of the same templates.
func TestCreateRoles_PutsTheRenderedTemplates(t *testing.T) {
	requireTool(t, "moto_server", "pip install 'moto[server]'")
	moto := mototest.Start(t)
	secretsFile, _ := writeSecretsFile(t)
	setup := newHarness(t, moto.URL, "SECRETS_FILE="+secretsFile)
	setup.mustRun("create-secrets")
	var secret struct{ ARN string }
	setup.mustAWS(&secret, "secretsmanager", "describe-secret", "--secret-id", appName+"/twitter")

	vars := map[string]string{
		"ACCOUNT_ID":           account,
		"REPOSITORY_ARN":       "arn:aws:ecr:" + region + ":" + account + ":repository/" + appName,
		"LOG_GROUP_ARN":        "arn:aws:logs:" + region + ":" + account + ":log-group:/ecs/" + appName,
		"SECRET_ARN":           secret.ARN,
		"PARAMETER_ARN_PREFIX": "arn:aws:ssm:" + region + ":" + account + ":parameter/" + appName + "/twitter",
		"KMS_KEY_ARN":          "arn:aws:kms:" + region + ":" + account + ":key/1234abcd-12ab-34cd-56ef-1234567890ab",
		"TABLE_ARN":            "arn:aws:dynamodb:" + region + ":" + account + ":table/" + tableName,
	}
	// The cases run in order on one moto: the second also proves that moving to SSM removes
	// the first's drift permission on the secret.
	tests := []struct {
		name      string
		env       []string
		execution []string          // the templates merged into the execution role's policy
		task      map[string]string // the task role's inline policies and their templates
	}{
		{"secretsmanager", []string{"SECRET_STORE=secretsmanager"}, []string{"execution-pull-logs", "execution-secretsmanager"},
			map[string]string{"dynamodb-write": "task-dynamodb", "secrets-describe": "task-secrets-describe"}},
		{"ssm with a customer-managed key", []string{"SECRET_STORE=ssm", "KMS_KEY_ARN=" + vars["KMS_KEY_ARN"]}, []string{"execution-pull-logs", "execution-ssm", "execution-kms"},
			map[string]string{"dynamodb-write": "task-dynamodb"}},
	}
	render := func(name string) string {
		t.Helper()
		doc, err := scripts.Policy(name, vars)
		if err != nil {
			t.Fatal(err)
		}
		return doc
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, moto.URL, "IMAGE="+testImage)
			h.mustRun("create-roles", tt.env...)
			var parts []string
			for _, name := range tt.execution {
				parts = append(parts, render(name))
			}
			execution, err := scripts.MergePolicies(parts...)
			if err != nil {
				t.Fatal(err)
			}
			roles := []struct {
				role   string
				wanted map[string]string // inline policy name -> rendered document
			}{
				{appName + "-execution-role", map[string]string{"pull-logs-secrets": execution}},
				{appName + "-task-role", map[string]string{}},
			}
			for policy, template := range tt.task {
				roles[1].wanted[policy] = render(template)
			}
			for _, r := range roles {
				var names struct{ PolicyNames []string }
				h.mustAWS(&names, "iam", "list-role-policies", "--role-name", r.role)
				slices.Sort(names.PolicyNames)
				if want := slices.Sorted(maps.Keys(r.wanted)); !slices.Equal(names.PolicyNames, want) {
					t.Errorf("role %s: inline policies %v, want exactly %v", r.role, names.PolicyNames, want)
				}
				for policy, want := range r.wanted {
					var got struct{ PolicyDocument any }
					h.mustAWS(&got, "iam", "get-role-policy", "--role-name", r.role, "--policy-name", policy)
					if g, w := mustJSON(t, got.PolicyDocument), normalJSON(t, want); g != w {
						t.Errorf("role %s policy %s:\n got %s\nwant %s", r.role, policy, g, w)
					}
				}
				var role struct {
					Role struct{ AssumeRolePolicyDocument any }
				}
				h.mustAWS(&role, "iam", "get-role", "--role-name", r.role)
				if g, w := mustJSON(t, role.Role.AssumeRolePolicyDocument), normalJSON(t, render("trust-ecs-tasks")); g != w {
					t.Errorf("role %s trust policy:\n got %s\nwant %s", r.role, g, w)
				}
			}
		})
	}
}

// mustJSON encodes v; maps come out with sorted keys, so equal documents encode equally.
func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// normalJSON decodes and re-encodes doc, dropping its layout.
func normalJSON(t *testing.T, doc string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, doc)
	}
	return mustJSON(t, v)
}
