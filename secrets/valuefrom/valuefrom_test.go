package valuefrom

import (
	"strings"
	"testing"
)

// The valueFrom examples come from the ECS developer guide ("Pass Secrets Manager secrets
// through Amazon ECS environment variables", "Pass Systems Manager parameters ...") and from
// seed 002; the error cases pin the ECS agent's grammar (asmsecret.go getASMParametersFromInput).
const (
	docARN     = "arn:aws:secretsmanager:us-east-1:123456789012:secret:appauthexample-AbCdEf"
	docVersion = "9d4cb84b-ad69-40c0-a0ab-cead36b967e8"
)

func TestParseValueFrom(t *testing.T) {
	tests := []struct {
		name      string
		valueFrom string
		want      Ref
		wantStage string // EffectiveVersionStage
		wantErr   string // a substring of the error; "" means success
	}{
		{
			name:      "docs: full ARN, whole secret",
			valueFrom: docARN,
			want:      Ref{Store: SecretsManager, ID: docARN, Region: "us-east-1", Account: "123456789012", Name: "appauthexample-AbCdEf"},
			wantStage: "AWSCURRENT",
		},
		{
			name:      "docs: JSON key",
			valueFrom: docARN + ":username1::",
			want:      Ref{Store: SecretsManager, ID: docARN, Region: "us-east-1", Account: "123456789012", Name: "appauthexample-AbCdEf", JSONKey: "username1"},
			wantStage: "AWSCURRENT",
		},
		{
			name:      "docs: version stage",
			valueFrom: docARN + "::AWSPREVIOUS:",
			want:      Ref{Store: SecretsManager, ID: docARN, Region: "us-east-1", Account: "123456789012", Name: "appauthexample-AbCdEf", VersionStage: "AWSPREVIOUS"},
			wantStage: "AWSPREVIOUS",
		},
		{
			name:      "docs: version id",
			valueFrom: docARN + ":::" + docVersion,
			want:      Ref{Store: SecretsManager, ID: docARN, Region: "us-east-1", Account: "123456789012", Name: "appauthexample-AbCdEf", VersionID: docVersion},
			wantStage: "",
		},
		{
			name:      "docs: JSON key and version stage",
			valueFrom: docARN + ":username1:AWSPREVIOUS:",
			want:      Ref{Store: SecretsManager, ID: docARN, Region: "us-east-1", Account: "123456789012", Name: "appauthexample-AbCdEf", JSONKey: "username1", VersionStage: "AWSPREVIOUS"},
			wantStage: "AWSPREVIOUS",
		},
		{
			name:      "docs: JSON key and version id",
			valueFrom: docARN + ":username1::" + docVersion,
			want:      Ref{Store: SecretsManager, ID: docARN, Region: "us-east-1", Account: "123456789012", Name: "appauthexample-AbCdEf", JSONKey: "username1", VersionID: docVersion},
		},
		{
			name:      "seed 002: partial ARN (no random suffix) with JSON key",
			valueFrom: "arn:aws:secretsmanager:us-east-1:123456789012:secret:my-database-credentials:password::",
			want: Ref{Store: SecretsManager, ID: "arn:aws:secretsmanager:us-east-1:123456789012:secret:my-database-credentials",
				Region: "us-east-1", Account: "123456789012", Name: "my-database-credentials", JSONKey: "password"},
			wantStage: "AWSCURRENT",
		},
		{
			name:      "three empty selector fields mean the whole secret",
			valueFrom: docARN + ":::",
			want:      Ref{Store: SecretsManager, ID: docARN, Region: "us-east-1", Account: "123456789012", Name: "appauthexample-AbCdEf"},
			wantStage: "AWSCURRENT",
		},
		{
			name:      "secret name with a path",
			valueFrom: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:streammatch/twitter-AbCdEf:CONSUMERKEY::",
			want: Ref{Store: SecretsManager, ID: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:streammatch/twitter-AbCdEf",
				Region: "eu-west-1", Account: "123456789012", Name: "streammatch/twitter-AbCdEf", JSONKey: "CONSUMERKEY"},
			wantStage: "AWSCURRENT",
		},
		{
			name:      "China partition",
			valueFrom: "arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:app-AbCdEf",
			want:      Ref{Store: SecretsManager, ID: "arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:app-AbCdEf", Region: "cn-north-1", Account: "123456789012", Name: "app-AbCdEf"},
			wantStage: "AWSCURRENT",
		},
		{
			name:      "GovCloud partition",
			valueFrom: "arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:app-AbCdEf::AWSPENDING:",
			want: Ref{Store: SecretsManager, ID: "arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:app-AbCdEf",
				Region: "us-gov-west-1", Account: "123456789012", Name: "app-AbCdEf", VersionStage: "AWSPENDING"},
			wantStage: "AWSPENDING",
		},
		{
			name:      "docs: parameter name in the task's region",
			valueFrom: "awesome-parameter",
			want:      Ref{Store: ParameterStore, ID: "awesome-parameter", Name: "awesome-parameter"},
		},
		{
			name:      "parameter name with a path",
			valueFrom: "/streammatch/prod/consumer_key",
			want:      Ref{Store: ParameterStore, ID: "/streammatch/prod/consumer_key", Name: "/streammatch/prod/consumer_key"},
		},
		{
			name:      "a plain name is a parameter, never a Secrets Manager secret",
			valueFrom: "my-database-credentials",
			want:      Ref{Store: ParameterStore, ID: "my-database-credentials", Name: "my-database-credentials"},
		},
		{
			name:      "docs: parameter ARN",
			valueFrom: "arn:aws:ssm:us-east-1:123456789012:parameter/awesome-parameter",
			want:      Ref{Store: ParameterStore, ID: "arn:aws:ssm:us-east-1:123456789012:parameter/awesome-parameter", Region: "us-east-1", Account: "123456789012", Name: "awesome-parameter"},
		},
		{
			name:      "parameter ARN with a path",
			valueFrom: "arn:aws:ssm:us-west-2:123456789012:parameter/streammatch/prod/token",
			want:      Ref{Store: ParameterStore, ID: "arn:aws:ssm:us-west-2:123456789012:parameter/streammatch/prod/token", Region: "us-west-2", Account: "123456789012", Name: "/streammatch/prod/token"},
		},
		{name: "stage and id are mutually exclusive", valueFrom: docARN + "::AWSPREVIOUS:" + docVersion, wantErr: "mutually exclusive"},
		{name: "seed 002's prose form NAME:KEY has too few fields", valueFrom: "arn:aws:secretsmanager:us-east-1:123456789012:secret:my-plain-text-secret:password", wantErr: "exactly three fields"},
		{name: "two selector fields are too few", valueFrom: docARN + ":password:", wantErr: "exactly three fields"},
		{name: "four selector fields are too many", valueFrom: docARN + ":password:AWSCURRENT::", wantErr: "exactly three fields"},
		{name: "empty secret name", valueFrom: "arn:aws:secretsmanager:us-east-1:123456789012:secret:", wantErr: "empty secret name"},
		{name: "secret name with a space", valueFrom: "arn:aws:secretsmanager:us-east-1:123456789012:secret:my secret", wantErr: "characters Secrets Manager does not allow"},
		{name: "not a secret resource", valueFrom: "arn:aws:secretsmanager:us-east-1:123456789012:rotation:x", wantErr: "resource type"},
		{name: "wrong service", valueFrom: "arn:aws:s3:::streammatch-config/twitter.json", wantErr: "secretsmanager or ssm"},
		{name: "unknown partition", valueFrom: "arn:aws-iso:secretsmanager:us-iso-east-1:123456789012:secret:x", wantErr: "partition"},
		{name: "missing region", valueFrom: "arn:aws:secretsmanager::123456789012:secret:x", wantErr: "region"},
		{name: "short account", valueFrom: "arn:aws:secretsmanager:us-east-1:12345:secret:x", wantErr: "12-digit account"},
		{name: "truncated ARN", valueFrom: "arn:aws:secretsmanager:us-east-1", wantErr: "not a valid ARN"},
		{name: "SSM ARN of a document", valueFrom: "arn:aws:ssm:us-east-1:123456789012:document/x", wantErr: "not of a parameter"},
		{name: "empty", valueFrom: "", wantErr: "empty"},
		{name: "trailing space", valueFrom: docARN + " ", wantErr: "white space"},
		{name: "parameter path without leading slash", valueFrom: "streammatch/prod/token", wantErr: "must begin with '/'"},
		{name: "parameter path with an empty level", valueFrom: "/streammatch//token", wantErr: "non-empty"},
		{name: "parameter name with a space", valueFrom: "my parameter", wantErr: "only letters"},
		{name: "secret name pasted without ARN but with selectors", valueFrom: "my-database-credentials:password::", wantErr: "Parameter Store name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.valueFrom)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("Parse(%q) = %+v, want an error containing %q", tt.valueFrom, got, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse(%q) error = %q, want it to contain %q", tt.valueFrom, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q) error = %v, want %+v", tt.valueFrom, err, tt.want)
			}
			if got != tt.want {
				t.Fatalf("Parse(%q)\n got  %+v\n want %+v", tt.valueFrom, got, tt.want)
			}
			if stage := got.EffectiveVersionStage(); stage != tt.wantStage {
				t.Errorf("EffectiveVersionStage() = %q, want %q", stage, tt.wantStage)
			}
		})
	}
}

func TestRef_StringRendersTheAgentGrammar(t *testing.T) {
	tests := []struct {
		valueFrom string
		want      string
	}{
		{docARN, docARN},
		{docARN + ":username1::", docARN + ":username1::"},
		{docARN + "::AWSPREVIOUS:", docARN + "::AWSPREVIOUS:"},
		{docARN + ":::" + docVersion, docARN + ":::" + docVersion},
		{docARN + ":::", docARN},
		{"/a/b", "/a/b"},
		{"arn:aws:ssm:us-east-1:123456789012:parameter/a/b", "arn:aws:ssm:us-east-1:123456789012:parameter/a/b"},
	}
	for _, tt := range tests {
		t.Run(tt.valueFrom, func(t *testing.T) {
			ref, err := Parse(tt.valueFrom)
			if err != nil {
				t.Fatal(err)
			}
			if got := ref.String(); got != tt.want {
				t.Fatalf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

func FuzzParseValueFrom(f *testing.F) {
	for _, seed := range []string{
		docARN, docARN + ":username1::", docARN + "::AWSPREVIOUS:", docARN + ":::" + docVersion,
		docARN + ":k:AWSPREVIOUS:" + docVersion, docARN + ":a:b", docARN + ":a:b:c:d",
		"arn:aws:secretsmanager:us-east-1:123456789012:secret:", "arn:aws:ssm:us-east-1:123456789012:parameter/a/b",
		"arn:aws:ssm:us-east-1:123456789012:parameter//a", "/a/b", "a", "", "arn:", "arn:::::", ":::",
		"arn:aws:s3:::bucket", "arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:x:é::",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, valueFrom string) {
		ref, err := Parse(valueFrom)
		if err != nil {
			return
		}
		if ref.ID == "" || ref.Name == "" || (ref.Store != SecretsManager && ref.Store != ParameterStore) {
			t.Fatalf("Parse(%q) = %+v: a parsed Ref needs a store, an ID and a name", valueFrom, ref)
		}
		if ref.VersionStage != "" && ref.VersionID != "" {
			t.Fatalf("Parse(%q) = %+v: stage and id are mutually exclusive", valueFrom, ref)
		}
		again, err := Parse(ref.String())
		if err != nil {
			t.Fatalf("Parse(%q) = %+v, but its String() %q does not parse: %v", valueFrom, ref, ref.String(), err)
		}
		if again != ref {
			t.Fatalf("round trip of %q through %q:\n got  %+v\n want %+v", valueFrom, ref.String(), again, ref)
		}
	})
}
