"""The AWS Compute Blog's twitterstream.py, ported minimally to tweepy 4, for bench/e2e.

The seed ("Securing credentials using AWS Secrets Manager with AWS Fargate") subclassed tweepy 3's
StreamListener and overrode on_data: for every line of the stream it decodes the JSON, prints the
user, date and ASCII-folded text, builds a new boto3 DynamoDB client and makes one put_item of
user, date (Twitter's created_at string) and text. That design is kept exactly. What changed, and
why, each marked "port:" or "bench:" below:

- port: tweepy 4 merged StreamListener into Stream. The class subclasses tweepy.Stream, which
  takes the four credentials itself (OAuthHandler is no longer passed to Stream), and keeps the
  seed's on_data (tweepy 4 still calls on_data with each raw line). on_error became
  on_request_error.
- bench: tweepy 4 hard-codes https://stream.twitter.com (Stream._connect). _connect is overridden
  to build the URL from TWITTER_STREAM_URL instead, before the request is signed, so the OAuth
  1.0a signature covers the URL the sender receives and the sender verifies it as Twitter did.
- bench: Debian's boto3 (1.26) predates AWS_ENDPOINT_URL, so the client is given endpoint_url
  explicitly (None, AWS's default, when the variable is unset).
"""
from __future__ import absolute_import, print_function

import json
import os

import boto3
import tweepy
from requests_oauthlib import OAuth1
from tweepy.streaming import BaseStream

# DynamoDB table name and Region
dynamoDBTable = os.environ['DYNAMODBTABLE']
region_name = os.environ['AWSREGION']

# Filter variable (the word for which to filter in your stream)
filter = os.environ['FILTER']

# Go to http://apps.twitter.com and create an app.
# The consumer key and secret are generated for you after
consumer_key = os.environ['CONSUMERKEY']
consumer_secret = os.environ['CONSUMERSECRETKEY']

# After the step above, you are redirected to your app page.
# Create an access token under the "Your access token" section
access_token = os.environ['ACCESSTOKEN']
access_token_secret = os.environ['ACCESSTOKENSECRET']

# bench: where the stream and DynamoDB are.
stream_url = os.environ.get('TWITTER_STREAM_URL', 'https://stream.twitter.com').rstrip('/')
endpoint_url = os.environ.get('AWS_ENDPOINT_URL') or None


class StdOutListener(tweepy.Stream):  # port: was StreamListener
    """ A listener handles tweets that are received from the stream.
    This is a basic listener that prints received tweets to stdout.
    """
    def on_data(self, data):
        j = json.loads(data)
        tweetuser = j['user']['screen_name']
        tweetdate = j['created_at']
        tweettext = j['text'].encode('ascii', 'ignore').decode('ascii')
        print(tweetuser)
        print(tweetdate)
        print(tweettext)
        dynamodb = boto3.client('dynamodb', region_name, endpoint_url=endpoint_url)  # bench: endpoint_url
        dynamodb.put_item(TableName=dynamoDBTable, Item={'user': {'S': tweetuser}, 'date': {'S': tweetdate}, 'text': {'S': tweettext}})
        return True

    def on_request_error(self, status):  # port: was on_error
        print(status)

    def _connect(self, method, endpoint, **kwargs):
        # bench: tweepy 4.12's Stream._connect with the host taken from TWITTER_STREAM_URL.
        auth = OAuth1(self.consumer_key, self.consumer_secret,
                      self.access_token, self.access_token_secret)
        url = f"{stream_url}/1.1/{endpoint}.json"
        BaseStream._connect(self, method, url, auth=auth, timeout=90, **kwargs)


if __name__ == '__main__':
    # port: tweepy 4's Stream takes the credentials; there is no separate listener.
    stream = StdOutListener(consumer_key, consumer_secret, access_token, access_token_secret)
    stream.filter(track=[filter])
