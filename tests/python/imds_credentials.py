"""botocore's instance-metadata credentials, against rolecall's HTTP IMDS.

The instance is named by AWS_EC2_METADATA_SERVICE_ENDPOINT (a per-instance path prefix);
nothing else can give botocore credentials (the test clears the environment and points the
config and credentials files nowhere). Prints one JSON line with what botocore found. Then,
for each line read from stdin (the test moved the server's clock by that many seconds), moves
botocore's clock by as much and prints what botocore serves then.
"""

import datetime
import json
import sys

import botocore.session


def report(creds):
    frozen = creds.get_frozen_credentials()
    print(json.dumps({"method": creds.method, "access_key": frozen.access_key, "token": bool(frozen.token)}), flush=True)


creds = botocore.session.get_session().get_credentials()
if creds is None:
    print(json.dumps({"error": "Unable to locate credentials"}), flush=True)
    sys.exit(0)
report(creds)
offset = datetime.timedelta()
real_now = creds._time_fetcher
for line in sys.stdin:
    offset += datetime.timedelta(seconds=int(line))
    creds._time_fetcher = lambda: real_now() + offset
    report(creds)
