package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// tableAPI is the part of the DynamoDB API that EnsureTable uses.
type tableAPI interface {
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
}

// EnsureTable creates the blog's table (HASH user, RANGE date, both strings, on-demand) when it
// is absent, waits until it is ACTIVE, and returns its ARN. An existing table with other keys is
// an error: the writer's items would not fit it. The service itself never calls this (on AWS
// the table comes from scripts/create-table.sh); the local run and the tests do.
func EnsureTable(ctx context.Context, db tableAPI, name string) (string, error) {
	d, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
	var nf *types.ResourceNotFoundException
	switch {
	case errors.As(err, &nf):
		out, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
			TableName: aws.String(name),
			AttributeDefinitions: []types.AttributeDefinition{
				{AttributeName: aws.String(attrUser), AttributeType: types.ScalarAttributeTypeS},
				{AttributeName: aws.String(attrDate), AttributeType: types.ScalarAttributeTypeS},
			},
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String(attrUser), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String(attrDate), KeyType: types.KeyTypeRange},
			},
			BillingMode: types.BillingModePayPerRequest,
		})
		if err != nil {
			return "", fmt.Errorf("create table %s: %w", name, err)
		}
		w := dynamodb.NewTableExistsWaiter(db, func(o *dynamodb.TableExistsWaiterOptions) {
			o.MinDelay = 200 * time.Millisecond
			o.MaxDelay = 2 * time.Second
		})
		if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, 2*time.Minute); err != nil {
			return "", fmt.Errorf("wait for table %s: %w", name, err)
		}
		return aws.ToString(out.TableDescription.TableArn), nil
	case err != nil:
		return "", fmt.Errorf("describe table %s: %w", name, err)
	}
	var keys []string
	for _, k := range d.Table.KeySchema {
		keys = append(keys, string(k.KeyType)+" "+aws.ToString(k.AttributeName))
	}
	if want := "HASH " + attrUser + ", RANGE " + attrDate; strings.Join(keys, ", ") != want {
		return "", fmt.Errorf("table %s exists with keys %q; streammatch needs %s", name, strings.Join(keys, ", "), want)
	}
	return aws.ToString(d.Table.TableArn), nil
}
