"""boto3's instance-metadata credentials, against rolecall's HTTP IMDS.

The instance is named by AWS_EC2_METADATA_SERVICE_ENDPOINT (a per-instance path prefix, or
169.254.169.254 from the instance's own network); nothing else can give boto3 credentials
(the test clears the environment and points the config and credentials files nowhere).
Prints one JSON line with what boto3 found (and, where ROLECALL_STS_ENDPOINT is set, whom
STS says they belong to). Then, for each line read from stdin (the test moved the server's
clock by that many seconds), moves botocore's clock by as much and prints the same again.
"""

import datetime
import json
import os
import sys

import boto3

session = boto3.Session(region_name="us-east-1")
sts_endpoint = os.environ.get("ROLECALL_STS_ENDPOINT")


def report(creds, ask_sts):
    frozen = creds.get_frozen_credentials()
    found = {"method": creds.method, "access_key": frozen.access_key, "token": bool(frozen.token)}
    if sts_endpoint and ask_sts:
        sts = session.client("sts", endpoint_url=sts_endpoint)
        found["arn"] = sts.get_caller_identity()["Arn"]
    print(json.dumps(found), flush=True)


creds = session.get_credentials()
if creds is None:
    print(json.dumps({"error": "Unable to locate credentials"}), flush=True)
    sys.exit(0)
report(creds, ask_sts=True)
offset = datetime.timedelta()
real_now = creds._time_fetcher
for line in sys.stdin:
    offset += datetime.timedelta(seconds=int(line))
    creds._time_fetcher = lambda: real_now() + offset
    # The server's clock has moved, ours (which signs) has not: STS would see skew.
    report(creds, ask_sts=False)
