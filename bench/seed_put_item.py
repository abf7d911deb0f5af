#!/usr/bin/env python3
"""The seed's DynamoDB write pattern, for comparison with streammatch's store.Writer.

twitterstream.py (the seed) did this for every matched tweet: build a new boto3 resource
(a new session and client, so a new connection), then one put_item of user, date (Twitter's
created_at text) and text. This script replays the tweets of a {"statuses":[...]} file the
same way against AWS_ENDPOINT_URL and prints one JSON object: items and seconds.

Usage: seed_put_item.py TWEETS_JSON TABLE COUNT
"""
import json
import os
import sys
import time

import boto3


def main():
    path, table_name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open(path, encoding="utf-8") as f:
        statuses = json.load(f)["statuses"]
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    region = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
    start = time.monotonic()
    for i in range(count):
        tweet = statuses[i % len(statuses)]
        # As in the seed: a new resource per item. The date gets the index so that items of
        # one user in one second do not overwrite each other here (the seed's did).
        dynamodb = boto3.resource("dynamodb", region_name=region, endpoint_url=endpoint)
        table = dynamodb.Table(table_name)
        table.put_item(Item={
            "user": tweet["user"]["screen_name"],
            "date": "%s #%d" % (tweet["created_at"], i),
            "text": tweet["text"],
        })
    print(json.dumps({"items": count, "seconds": time.monotonic() - start}))


if __name__ == "__main__":
    main()
