package scripts_test

// Least privilege, proved against moto_server with IAM enforcement on: the two roles are
// created by scripts/create-roles.sh itself, so the policies tested are the ones a deployment
// gets. With the task role's credentials the app can write to its table and describe the
// secret (the rotation drift check: metadata only) and cannot read the secret's value; with the
// execution role's, ECS can read the secret and cannot write to the table or describe it.
//
// The documents come from the templates in scripts/policies/, and the test first checks that
// IAM holds exactly their rendering (scripts.Policy). `go run ./local` provisions its roles
// from the same templates; local/provision_test.go checks that and repeats the enforcement
// checks on the local run's roles.

import (
	"context"
	"encoding/json"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/streammatch/streammatch/internal/leakcheck"
	"github.com/streammatch/streammatch/internal/mototest"
	"github.com/streammatch/streammatch/scripts"
	"github.com/streammatch/streammatch/secrets"
	"github.com/streammatch/streammatch/store"
)

const (
	motoAccount   = "123456789012"
	executionRole = "streammatch-execution-role"
	taskRole      = "streammatch-task-role"
)

// requireTool finds a tool the test needs; without it the test is skipped, except in CI.

// iamCreds are the secret values the role test stores.
var iamCreds = struct{ ConsumerKey, ConsumerSecret, AccessToken, AccessTokenSecret string }{
	"CK-leakcheck-7f3a9c", "CS-leakcheck-b41e08+/=", "AT-leakcheck-2d6f51", "ATS-leakcheck-c98e17&?",
}

func TestRoles_LeastPrivilegeUnderIAMEnforcement(t *testing.T) {
	requireTool(t, "aws", "pip install awscli, or apt-get install awscli")
	script, err := filepath.Abs("create-roles.sh")
	if err != nil {
		t.Fatal(err)
	}

	// Enforcement starts only when the test asks for it (reset-auth below): the set-up calls
	// run as moto's unchecked root, as an administrator would.
	moto := mototest.Start(t, mototest.WithEnv("INITIAL_NO_AUTH_ACTION_COUNT=1000000"))
	ctx := context.Background()
	admin := moto.AWSConfig(t)
	secretValue, _ := json.Marshal(map[string]string{
		"CONSUMERKEY": iamCreds.ConsumerKey, "CONSUMERSECRETKEY": iamCreds.ConsumerSecret,
		"ACCESSTOKEN": iamCreds.AccessToken, "ACCESSTOKENSECRET": iamCreds.AccessTokenSecret,
	})
	created, err := secretsmanager.NewFromConfig(admin).CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String("streammatch/twitter"), SecretString: aws.String(string(secretValue)),
	})
	if err != nil {
		t.Fatalf("create secret: %v", err)
	}
	secretARN := aws.ToString(created.ARN)
	tableARN := "arn:aws:dynamodb:" + mototest.Region + ":" + motoAccount + ":table/twitterStream"
	if _, err := store.EnsureTable(ctx, dynamodb.NewFromConfig(admin), "twitterStream"); err != nil {
		t.Fatalf("create table: %v", err)
	}

	// The deployment's own script creates both roles and their inline policies.
	cmd := exec.Command("bash", script)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + t.TempDir(),
		"AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing", "AWS_REGION=" + mototest.Region,
		"AWS_ENDPOINT_URL=" + moto.URL, "AWS_CONFIG_FILE=" + filepath.Join(t.TempDir(), "none"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(t.TempDir(), "none"),
	}
	for _, name := range []string{"PYENV_ROOT", "PYENV_VERSION"} {
		if v, ok := os.LookupEnv(name); ok {
			cmd.Env = append(cmd.Env, name+"="+v)
		}
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/create-roles.sh: %v\n%s", err, out)
	}

	// What the script granted, read back from IAM: exact resources, nothing more. A role's
	// policyDocument here is the statements of all its inline policies.
	iamc := iam.NewFromConfig(admin)
	policies := map[string]policyDocument{}
	rendered := renderedRolePolicies(t, secretARN, tableARN)
	for _, role := range []string{executionRole, taskRole} {
		names, err := iamc.ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: aws.String(role)})
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(names.PolicyNames)
		if want := slices.Sorted(maps.Keys(rendered[role])); !slices.Equal(names.PolicyNames, want) {
			t.Fatalf("role %s: inline policies %v; want exactly %v", role, names.PolicyNames, want)
		}
		attached, err := iamc.ListAttachedRolePolicies(ctx, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(role)})
		if err != nil || len(attached.AttachedPolicies) != 0 {
			t.Errorf("role %s: attached managed policies %v (err %v), want none", role, attached, err)
		}
		var all policyDocument
		for _, name := range names.PolicyNames {
			got, err := iamc.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String(name)})
			if err != nil {
				t.Fatal(err)
			}
			doc, _ := url.QueryUnescape(aws.ToString(got.PolicyDocument))
			if g, w := normalJSON(t, doc), normalJSON(t, rendered[role][name]); g != w {
				t.Errorf("role %s policy %s: IAM holds\n%s\nwant the rendering of scripts/policies/\n%s", role, name, g, w)
			}
			var p policyDocument
			if err := json.Unmarshal([]byte(doc), &p); err != nil {
				t.Fatalf("role %s policy %s: %v\n%s", role, name, err, doc)
			}
			all.Statement = append(all.Statement, p.Statement...)
		}
		policies[role] = all
	}
	grants := func(p policyDocument) map[string][]string {
		out := map[string][]string{}
		for _, s := range p.Statement {
			if s.Effect != "Allow" {
				continue
			}
			for _, a := range s.Action {
				out[a] = append(out[a], s.Resource...)
			}
		}
		return out
	}
	taskGrants, execGrants := grants(policies[taskRole]), grants(policies[executionRole])
	describe := []string{"secretsmanager:DescribeSecret", "secretsmanager:ListSecretVersionIds"}
	for action, res := range taskGrants {
		switch {
		case slices.Contains(describe, action):
			if !slices.Equal(res, []string{secretARN}) {
				t.Errorf("task role grants %s on %v; want exactly the secret %s", action, res, secretARN)
			}
		case !strings.HasPrefix(action, "dynamodb:") || !slices.Equal(res, []string{tableARN}):
			t.Errorf("task role grants %s on %v; want only DynamoDB writes on %s and the secret's metadata", action, res, tableARN)
		}
	}
	for _, action := range describe {
		if len(taskGrants[action]) == 0 {
			t.Errorf("task role does not grant %s (the rotation drift check): %v", action, taskGrants)
		}
	}
	if len(taskGrants["dynamodb:BatchWriteItem"]) == 0 {
		t.Errorf("task role does not grant dynamodb:BatchWriteItem: %v", taskGrants)
	}
	if res := execGrants["secretsmanager:GetSecretValue"]; !slices.Equal(res, []string{secretARN}) {
		t.Errorf("execution role grants GetSecretValue on %v, want exactly the secret %s", res, secretARN)
	}
	for action, res := range execGrants {
		if strings.HasPrefix(action, "dynamodb:") || (slices.Contains(res, "*") && action != "ecr:GetAuthorizationToken") {
			t.Errorf("execution role grants %s on %v; want no table access and no wildcard beyond ecr:GetAuthorizationToken", action, res)
		}
	}

	// moto 5.2 authorizes DynamoDB and Secrets Manager calls against the resource "*" (it has
	// no per-request resource ARN for them), so a statement scoped to an ARN never matches
	// there. The resource scoping is checked above; for the enforced calls below, each
	// policy is put back with its actions unchanged and its resources widened to "*". That
	// keeps the question moto can answer: which actions each role may perform at all.
	for role, p := range policies {
		widened := map[string]any{"Version": "2012-10-17"}
		var stmts []map[string]any
		for _, s := range p.Statement {
			stmts = append(stmts, map[string]any{"Effect": s.Effect, "Action": []string(s.Action), "Resource": "*"})
		}
		widened["Statement"] = stmts
		doc, _ := json.Marshal(widened)
		if _, err := iamc.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(role),
			PolicyName: aws.String("widened-for-moto"), PolicyDocument: aws.String(string(doc))}); err != nil {
			t.Fatal(err)
		}
		names, _ := iamc.ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: aws.String(role)})
		for _, n := range names.PolicyNames {
			if n != "widened-for-moto" {
				if _, err := iamc.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String(n)}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}

	// Credentials of each role, as ECS hands them to the agent and to the container. moto
	// cannot check a trust policy whose principal is a service (ecs-tasks.amazonaws.com), so
	// the roles are assumed before enforcement starts.
	roleCfg := map[string]aws.Config{}
	for _, role := range []string{executionRole, taskRole} {
		out, err := sts.NewFromConfig(admin).AssumeRole(ctx, &sts.AssumeRoleInput{
			RoleArn: aws.String("arn:aws:iam::" + motoAccount + ":role/" + role), RoleSessionName: aws.String("least-privilege-test"),
		})
		if err != nil {
			t.Fatalf("assume %s: %v", role, err)
		}
		cfg := admin.Copy()
		c := out.Credentials
		cfg.Credentials = credentials.NewStaticCredentialsProvider(aws.ToString(c.AccessKeyId), aws.ToString(c.SecretAccessKey), aws.ToString(c.SessionToken))
		roleCfg[role] = cfg
	}

	moto.EnforceIAM(t)
	if _, err := secretsmanager.NewFromConfig(admin).GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(secretARN)}); err == nil {
		t.Fatal("moto answered a caller that is not an IAM identity: enforcement is not on, and nothing below would prove anything")
	}

	ref := secretARN + ":CONSUMERKEY::"
	taskDefSecrets := []secrets.Secret{
		{Name: "CONSUMERKEY", ValueFrom: ref}, {Name: "ACCESSTOKENSECRET", ValueFrom: secretARN + ":ACCESSTOKENSECRET::"},
	}
	tests := []struct {
		role           string
		canReadSecret  bool
		canWriteTable  bool
		resolveSecrets bool
	}{
		{taskRole, false, true, false},
		{executionRole, true, false, true},
	}
	// Whoever may describe the secret: the task role, for the drift check. The execution role
	// only reads the value at task start.
	canDescribe := map[string]bool{taskRole: true, executionRole: false}
	for _, tc := range tests {
		t.Run(tc.role, func(t *testing.T) {
			cfg := roleCfg[tc.role]
			_, err := secretsmanager.NewFromConfig(cfg).GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(secretARN)})
			mototest.CheckAllowed(t, "secretsmanager:GetSecretValue on the secret", err, tc.canReadSecret)

			sm := secretsmanager.NewFromConfig(cfg)
			described, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(secretARN)})
			mototest.CheckAllowed(t, "secretsmanager:DescribeSecret on the secret", err, canDescribe[tc.role])
			versions, err := sm.ListSecretVersionIds(ctx, &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String(secretARN)})
			mototest.CheckAllowed(t, "secretsmanager:ListSecretVersionIds on the secret", err, canDescribe[tc.role])
			if canDescribe[tc.role] && err == nil {
				// What the drift check reads: which version holds AWSCURRENT, and when it was made.
				current := ""
				for id, stages := range described.VersionIdsToStages {
					if slices.Contains(stages, "AWSCURRENT") {
						current = id
					}
				}
				found := false
				for _, v := range versions.Versions {
					found = found || (aws.ToString(v.VersionId) == current && v.CreatedDate != nil)
				}
				if current == "" || !found {
					t.Errorf("DescribeSecret stages %v and ListSecretVersionIds %d versions: want AWSCURRENT's version with its CreatedDate", described.VersionIdsToStages, len(versions.Versions))
				}
			}

			_, err = dynamodb.NewFromConfig(cfg).BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{
				RequestItems: map[string][]types.WriteRequest{"twitterStream": {{PutRequest: &types.PutRequest{Item: map[string]types.AttributeValue{
					"user": &types.AttributeValueMemberS{Value: "alice"}, "date": &types.AttributeValueMemberS{Value: "2024-05-01T12:00:00Z#1"},
				}}}}},
			})
			mototest.CheckAllowed(t, "dynamodb:BatchWriteItem on the table", err, tc.canWriteTable)

			// The local run resolves the task definition's secrets as the ECS agent does, with
			// this role: only the execution role gets values, and a refusal names the secret's
			// ARN, never a value.
			env, err := secrets.NewResolver(cfg).Resolve(ctx, taskDefSecrets)
			if tc.resolveSecrets {
				if err != nil || len(env) != 2 || env[0].Value != iamCreds.ConsumerKey || env[1].Value != iamCreds.AccessTokenSecret {
					t.Errorf("Resolve with the execution role: %d values, err %v; want both values", len(env), err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Resolve with the task role returned %d values, want a refusal", len(env))
			}
			if msg := err.Error(); !strings.Contains(msg, secretARN) {
				t.Errorf("the refusal does not name the secret's ARN:\n%s", leakcheck.Redact(msg, iamSecretValues()...))
			}
			leakcheck.Assert(t, iamSecretValues(), map[string]string{"Resolve error": err.Error()})
		})
	}
}

// renderedRolePolicies renders, from scripts/policies/, the inline policies create-roles.sh
// should have put on each role (role -> policy name -> document) with
// SECRET_STORE=secretsmanager, no KMS_KEY_ARN and the account's own ECR repository.
func renderedRolePolicies(t *testing.T, secretARN, tableARN string) map[string]map[string]string {
	t.Helper()
	const prefix = ":" + mototest.Region + ":" + motoAccount + ":"
	vars := map[string]string{
		"REPOSITORY_ARN": "arn:aws:ecr" + prefix + "repository/streammatch",
		"LOG_GROUP_ARN":  "arn:aws:logs" + prefix + "log-group:/ecs/streammatch",
		"SECRET_ARN":     secretARN,
		"TABLE_ARN":      tableARN,
	}
	var parts []string
	for _, name := range []string{"execution-pull-logs", "execution-secretsmanager", "task-dynamodb", "task-secrets-describe"} {
		doc, err := scripts.Policy(name, vars)
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, doc)
	}
	execution, err := scripts.MergePolicies(parts[:2]...)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]map[string]string{
		executionRole: {"pull-logs-secrets": execution},
		taskRole:      {"dynamodb-write": parts[2], "secrets-describe": parts[3]},
	}
}

// iamSecretValues are the stored secret values.
func iamSecretValues() []string {
	return []string{iamCreds.ConsumerKey, iamCreds.ConsumerSecret, iamCreds.AccessToken, iamCreds.AccessTokenSecret}
}
