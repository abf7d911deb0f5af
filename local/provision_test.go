package main

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/streammatch/streammatch/internal/mototest"
	"github.com/streammatch/streammatch/scripts"
	"github.com/streammatch/streammatch/secrets"
)

func TestLocalPolicies_GrantExactlyOneResourceEach(t *testing.T) {
	const secretARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:streammatch/twitter-AbCdEf"
	const tableARN = "arn:aws:dynamodb:us-east-1:123456789012:table/twitterStream"
	docs, err := localPolicies("123456789012", secretARN, tableARN)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, doc  string
		wantAction string
		wantRes    string
	}{
		{"execution role reads the secret", docs.Execution, `"secretsmanager:GetSecretValue"`, `"` + secretARN + `"`},
		{"task role writes the table", docs.Task, `["dynamodb:BatchWriteItem","dynamodb:PutItem"]`, `"` + tableARN + `"`},
		{"task role describes the secret, never reads it", docs.TaskDescribe, `["secretsmanager:DescribeSecret","secretsmanager:ListSecretVersionIds"]`, `"` + secretARN + `"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var doc struct{ Statement []map[string]json.RawMessage }
			if err := json.Unmarshal([]byte(compactJSON(t, tt.doc)), &doc); err != nil {
				t.Fatal(err)
			}
			if len(doc.Statement) != 1 {
				t.Fatalf("statements = %d, want 1: %s", len(doc.Statement), tt.doc)
			}
			s := doc.Statement[0]
			if string(s["Action"]) != tt.wantAction || string(s["Resource"]) != tt.wantRes {
				t.Errorf("Action %s Resource %s; want %s on %s", s["Action"], s["Resource"], tt.wantAction, tt.wantRes)
			}
		})
	}
	if trust := compactJSON(t, docs.Trust); !strings.Contains(trust, `"Service":"ecs-tasks.amazonaws.com"`) || !strings.Contains(trust, `"aws:SourceAccount":"123456789012"`) {
		t.Errorf("trust policy %s: want ecs-tasks.amazonaws.com limited to the account", trust)
	}
}

func TestProvision_IsIdempotentAndStoresThisRunsValues(t *testing.T) {
	moto := mototest.Start(t)
	cfg := emulatorConfig(moto.URL, mototest.Region)
	ctx := context.Background()
	n := namesFor("streammatch", "twitter", "twitterStream")

	first, err := provision(ctx, cfg, n, testCreds)
	if err != nil {
		t.Fatalf("first provision: %v", err)
	}
	other, _ := randomCredentials("twitter")
	second, err := provision(ctx, cfg, n, other)
	if err != nil {
		t.Fatalf("second provision: %v", err)
	}
	if first != second {
		t.Errorf("second run changed the resources:\n got %+v\nwant %+v", second, first)
	}

	got, err := secretsmanager.NewFromConfig(cfg).GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(first.SecretARN)})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := secretJSON(other)
	if aws.ToString(got.SecretString) != want {
		t.Errorf("the secret does not hold the second run's values")
	}

	im := iam.NewFromConfig(cfg)
	for role, want := range map[string][]string{n.ExecutionRole: {executionPolicyName}, n.TaskRole: {taskPolicyName, taskDescribePolicyName}} {
		if got := inlinePolicyNames(t, im, role); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
			t.Errorf("role %s has inline policies %q, want exactly %q", role, got, want)
		}
	}
}

// The local run's roles must carry, as IAM stores them, exactly the documents rendered from
// scripts/policies/ (the templates create-roles.sh deploys), rendered here independently of
// provision with the ARNs it reported.
func TestProvision_RolesCarryTheScriptsTemplates(t *testing.T) {
	moto := mototest.Start(t)
	cfg := emulatorConfig(moto.URL, mototest.Region)
	ctx := context.Background()
	n := namesFor("streammatch", "twitter", "twitterStream")
	p, err := provision(ctx, cfg, n, testCreds)
	if err != nil {
		t.Fatalf("provision: %v", err)
	}

	render := func(name string, vars map[string]string) string {
		t.Helper()
		doc, err := scripts.Policy(name, vars)
		if err != nil {
			t.Fatal(err)
		}
		return doc
	}
	trust := render("trust-ecs-tasks", map[string]string{"ACCOUNT_ID": p.Account})
	tests := []struct {
		role, policyName string
		want             string
	}{
		{n.ExecutionRole, executionPolicyName, render("execution-secretsmanager", map[string]string{"SECRET_ARN": p.SecretARN})},
		{n.TaskRole, taskPolicyName, render("task-dynamodb", map[string]string{"TABLE_ARN": p.TableARN})},
		{n.TaskRole, taskDescribePolicyName, render("task-secrets-describe", map[string]string{"SECRET_ARN": p.SecretARN})},
	}
	im := iam.NewFromConfig(cfg)
	for _, tt := range tests {
		t.Run(tt.role+"/"+tt.policyName, func(t *testing.T) {
			role, err := im.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(tt.role)})
			if err != nil {
				t.Fatal(err)
			}
			if got := iamDocument(t, role.Role.AssumeRolePolicyDocument); got != compactJSON(t, trust) {
				t.Errorf("trust policy:\n got %s\nwant %s", got, compactJSON(t, trust))
			}
			policy, err := im.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(tt.role), PolicyName: aws.String(tt.policyName)})
			if err != nil {
				t.Fatal(err)
			}
			if got := iamDocument(t, policy.PolicyDocument); got != compactJSON(t, tt.want) {
				t.Errorf("inline policy %s:\n got %s\nwant %s", tt.policyName, got, compactJSON(t, tt.want))
			}
		})
	}
}

// Least privilege of the local run's roles, under moto's IAM enforcement, as iam_test.go at
// the repository root proves it for the roles scripts/create-roles.sh creates: the execution
// role reads the secret and cannot write the table, the task role the other way round; the
// task role may describe the secret (the rotation drift check), which returns no value.
func TestProvision_LeastPrivilegeUnderIAMEnforcement(t *testing.T) {
	// Enforcement starts only when the test asks for it (enforceIAM below): provisioning runs
	// as moto's unchecked root, as an administrator would.
	moto := mototest.Start(t, mototest.WithEnv("INITIAL_NO_AUTH_ACTION_COUNT=1000000"))
	cfg := emulatorConfig(moto.URL, mototest.Region)
	ctx := context.Background()
	n := namesFor("streammatch", "twitter", "twitterStream")
	p, err := provision(ctx, cfg, n, testCreds)
	if err != nil {
		t.Fatalf("provision: %v", err)
	}

	// moto 5.2 authorizes DynamoDB and Secrets Manager calls against the resource "*", so a
	// statement scoped to an ARN never matches there (see iam_test.go). The exact ARNs are
	// checked by TestProvision_RolesCarryTheScriptsTemplates; here each role's policy is put
	// back with its actions unchanged and its resources widened to "*", which keeps the
	// question moto can answer: which actions each role may perform at all.
	im := iam.NewFromConfig(cfg)
	for _, role := range []string{n.ExecutionRole, n.TaskRole} {
		for _, policyName := range inlinePolicyNames(t, im, role) {
			widenForMoto(t, im, role, policyName)
		}
	}

	roleCfg := map[string]aws.Config{}
	for role, arn := range map[string]string{n.ExecutionRole: p.ExecutionRoleARN, n.TaskRole: p.TaskRoleARN} {
		c := cfg.Copy()
		c.Credentials = assumeRole(cfg, arn, "least-privilege-test")
		// moto cannot check a trust policy whose principal is a service, so the role is
		// assumed before enforcement starts.
		if _, err := c.Credentials.Retrieve(ctx); err != nil {
			t.Fatalf("assume %s: %v", role, err)
		}
		roleCfg[role] = c
	}

	moto.EnforceIAM(t)
	if _, err := secretsmanager.NewFromConfig(cfg).GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(p.SecretARN)}); err == nil {
		t.Fatal("moto answered a caller that is not an IAM identity: enforcement is not on, and nothing below would prove anything")
	}

	refs := []secrets.Secret{{Name: "CONSUMERKEY", ValueFrom: p.SecretARN + ":CONSUMERKEY::"}}
	tests := []struct {
		role                                            string
		canReadSecret, canWriteTable, canDescribeSecret bool
	}{
		{n.TaskRole, false, true, true},
		{n.ExecutionRole, true, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.role, func(t *testing.T) {
			c := roleCfg[tt.role]
			_, err := secretsmanager.NewFromConfig(c).GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(p.SecretARN)})
			mototest.CheckAllowed(t, "secretsmanager:GetSecretValue on the secret", err, tt.canReadSecret)

			// The drift check's two calls: metadata only.
			sm := secretsmanager.NewFromConfig(c)
			_, err = sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(p.SecretARN)})
			mototest.CheckAllowed(t, "secretsmanager:DescribeSecret on the secret", err, tt.canDescribeSecret)
			_, err = sm.ListSecretVersionIds(ctx, &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String(p.SecretARN)})
			mototest.CheckAllowed(t, "secretsmanager:ListSecretVersionIds on the secret", err, tt.canDescribeSecret)

			_, err = dynamodb.NewFromConfig(c).BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{
				RequestItems: map[string][]types.WriteRequest{n.Table: {{PutRequest: &types.PutRequest{Item: map[string]types.AttributeValue{
					"user": &types.AttributeValueMemberS{Value: "alice"}, "date": &types.AttributeValueMemberS{Value: "2024-05-01T12:00:00Z#1"},
				}}}}},
			})
			mototest.CheckAllowed(t, "dynamodb:BatchWriteItem on the table", err, tt.canWriteTable)

			// What the local run does with the execution role: resolve the task definition's
			// secrets as the ECS agent would.
			env, err := secrets.NewResolver(c).Resolve(ctx, refs)
			switch {
			case tt.canReadSecret && (err != nil || len(env) != 1 || env[0].Value != testCreds["CONSUMERKEY"]):
				t.Errorf("Resolve: %d values, err %v; want the one value", len(env), err)
			case !tt.canReadSecret && err == nil:
				t.Errorf("Resolve returned %d values, want a refusal", len(env))
			}
		})
	}
}

// inlinePolicyNames lists the role's inline policies, sorted.
func inlinePolicyNames(t *testing.T, im *iam.Client, role string) []string {
	t.Helper()
	out, err := im.ListRolePolicies(context.Background(), &iam.ListRolePoliciesInput{RoleName: aws.String(role)})
	if err != nil {
		t.Fatal(err)
	}
	return slices.Sorted(slices.Values(out.PolicyNames))
}

// widenForMoto replaces the role's inline policy with one that allows the same actions on "*".
func widenForMoto(t *testing.T, im *iam.Client, role, policyName string) {
	t.Helper()
	ctx := context.Background()
	got, err := im.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String(policyName)})
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Version   string
		Statement []map[string]any
	}
	if err := json.Unmarshal([]byte(iamDocument(t, got.PolicyDocument)), &doc); err != nil {
		t.Fatal(err)
	}
	for _, s := range doc.Statement {
		s["Resource"] = "*"
	}
	widened, _ := json.Marshal(doc)
	if _, err := im.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String(policyName), PolicyDocument: aws.String(string(widened))}); err != nil {
		t.Fatal(err)
	}
}

// iamDocument decodes a policy document as IAM returns it (URL-encoded) and returns it as
// compact JSON with sorted keys, for comparison.
func iamDocument(t *testing.T, doc *string) string {
	t.Helper()
	s, err := url.QueryUnescape(aws.ToString(doc))
	if err != nil {
		t.Fatalf("decode policy document: %v", err)
	}
	return compactJSON(t, s)
}

// compactJSON returns doc re-encoded from its decoded value, so that two documents that differ
// only in layout compare equal.
func compactJSON(t *testing.T, doc string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, doc)
	}
	b, _ := json.Marshal(v)
	return string(b)
}
